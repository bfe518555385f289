#pragma once
// Whole-file reading for the data readers: gunzips transparently and gives a bounds-checked cursor
// whose errors name the file and the byte offset, and the pixel conversion the image readers share.
// Internal to ember.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/error.h"

namespace ember::data::detail {

struct FileBytes {
  std::string path;
  std::vector<uint8_t> bytes;  // decompressed when the file was gzipped
  bool gzipped = false;
  // false when decompression stopped early, past the size the file's header promises: `bytes`
  // then holds more than that (up to 64 KiB more), but not the whole stream
  bool complete = true;
  // "byte offset 16" or, for a gzipped file, "byte offset 16 of the decompressed data"
  std::string where(uint64_t offset) const;
};

// For formats whose header gives the length of the whole file: that length, from the first
// (decompressed) bytes, or nullopt while they are too few to tell. A bound on what is worth
// inflating, so that a small gzip bomb (deflate expands up to 1032:1) behind a header that promises
// little is not inflated in full; a malformed header may give 0 (stop at once, the parser reports it).
using SizeFromHeader = std::function<std::optional<uint64_t>(std::span<const uint8_t> prefix)>;

// Reads `path` completely; a gzip stream (magic 1f 8b) is decompressed, only until it runs past
// what `size_from_header` allows when that is given. Errors start with `op`.
FileBytes read_file_bytes(const std::string& path, std::string_view op,
                          const SizeFromHeader& size_from_header = {});

// Image bytes as floats in [0, 1]: byte / 255, divided as torchvision's ToTensor does
// (x.float().div(255)); multiplying by a rounded 1 / 255 instead differs in the last bit for 126 of
// the 256 byte values. For the IDX and CIFAR readers.
inline void pixels_to_unit_range(const uint8_t* bytes, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(bytes[i]) / 255.0f;
}

// Sequential big-endian reads that never run past the end: a short read throws
// "op: path: truncated at byte offset N: expected <what> (k bytes), but the file ends at M".
class ByteCursor {
 public:
  ByteCursor(const FileBytes& file, std::string_view op) : file_(file), op_(op) {}
  uint8_t u8(std::string_view what);
  uint32_t u32_be(std::string_view what);
  // Returns a pointer to the next n bytes and skips them.
  const uint8_t* take(uint64_t n, std::string_view what);
  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return file_.bytes.size() - offset_; }
  // Throws "op: path: byte offset N: message".
  template <class... Args>
  [[noreturn]] void fail_at(uint64_t offset, fmt::format_string<Args...> format, Args&&... args) const {
    ember::fail("{}: {}: {}: {}", op_, file_.path, file_.where(offset),
                fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  const FileBytes& file_;
  std::string_view op_;
  uint64_t offset_ = 0;
};

}  // namespace ember::data::detail
