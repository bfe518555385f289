#include "nn/data/file_bytes.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace ember::data::detail {
namespace {

bool is_gzip(const std::vector<uint8_t>& b) { return b.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

// Inflates every gzip member of `in` (a file may hold several, concatenated) into `file`, stopping
// once it holds more than `size_from_header` allows.
void gunzip(const std::vector<uint8_t>& in, FileBytes& file, std::string_view op,
            const SizeFromHeader& size_from_header) {
  const std::string& path = file.path;
  std::vector<uint8_t>& out = file.bytes;
  out.clear();
  std::optional<uint64_t> limit;
  // The gzip trailer holds the uncompressed size mod 2^32: a good first guess for the buffer.
  if (in.size() >= 18) {
    size_t n = in.size();
    uint32_t isize =
        in[n - 4] | (in[n - 3] << 8) | (in[n - 2] << 16) | (static_cast<uint32_t>(in[n - 1]) << 24);
    // Only a hint: a corrupt trailer must not make us reserve gigabytes (deflate can expand 1032:1,
    // but real data rarely beyond 8:1; the buffer grows if it must).
    out.reserve(std::min<uint64_t>({isize, static_cast<uint64_t>(in.size()) * 8, uint64_t{1} << 28}));
  }
  z_stream zs{};
  // 15 + 16: a gzip (not zlib) wrapper, 32 KiB window.
  if (inflateInit2(&zs, 15 + 16) != Z_OK) fail("{}: {}: zlib initialisation failed", op, path);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  uint8_t chunk[1 << 16];
  for (;;) {
    zs.next_out = chunk;
    zs.avail_out = sizeof(chunk);
    int rc = inflate(&zs, Z_NO_FLUSH);
    out.insert(out.end(), chunk, chunk + (sizeof(chunk) - zs.avail_out));
    if (size_from_header && !limit) limit = size_from_header(out);
    if (limit && out.size() > *limit) {  // (the chunk that crossed it stays: the parser reads on to it)
      file.complete = false;
      break;
    }
    uint64_t consumed = in.size() - zs.avail_in;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // another member follows
      continue;
    }
    if (rc == Z_OK) continue;
    std::string message = zs.msg ? zs.msg : "";
    inflateEnd(&zs);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0)
      fail(
          "{}: {}: truncated gzip stream: the compressed data ends at byte offset {} before the end of the "
          "stream",
          op, path, consumed);
    fail("{}: {}: corrupt gzip data near compressed byte offset {}: {}", op, path, consumed,
         message.empty() ? fmt::format("zlib error {}", rc) : message);
  }
  inflateEnd(&zs);
}

}  // namespace

std::string FileBytes::where(uint64_t offset) const {
  return gzipped ? fmt::format("byte offset {} of the decompressed data", offset)
                 : fmt::format("byte offset {}", offset);
}

FileBytes read_file_bytes(const std::string& path, std::string_view op,
                          const SizeFromHeader& size_from_header) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open {}: {}", op, path, std::strerror(errno));
  FileBytes file;
  file.path = path;
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size < 0) fail("{}: cannot determine the size of {}", op, path);
  file.bytes.resize(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(file.bytes.data()), size))
    fail("{}: {}: read error after {} of {} bytes", op, path, in.gcount(), size);
  if (is_gzip(file.bytes)) {
    const std::vector<uint8_t> compressed = std::move(file.bytes);
    file.gzipped = true;
    gunzip(compressed, file, op, size_from_header);
  }
  return file;
}

uint8_t ByteCursor::u8(std::string_view what) { return *take(1, what); }

uint32_t ByteCursor::u32_be(std::string_view what) {
  const uint8_t* p = take(4, what);
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

const uint8_t* ByteCursor::take(uint64_t n, std::string_view what) {
  if (n > remaining())
    fail_at(offset_, "truncated: expected {} ({} bytes), but the data ends at byte offset {}", what, n,
            file_.bytes.size());
  const uint8_t* p = file_.bytes.data() + offset_;
  offset_ += n;
  return p;
}

}  // namespace ember::data::detail
