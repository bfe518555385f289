// The safetensors format: an atomic writer and a strict reader (layout in ember/checkpoint.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/tensor_impl.h"
#include "ember/checkpoint.h"

namespace ember {

// The data section is raw memory: this build assumes a little-endian host, like every platform
// ember supports (x86-64, AArch64).
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using json = nlohmann::json;

// The reference implementation refuses larger headers; so do we, before allocating them.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeCode {
  DType dtype;
  const char* code;
};
constexpr DTypeCode kCodes[] = {{DType::float32, "F32"},  {DType::float64, "F64"}, {DType::int64, "I64"},
                                {DType::int32, "I32"},    {DType::uint8, "U8"},    {DType::boolean, "BOOL"},
                                {DType::bfloat16, "BF16"}};

const char* code_of(DType t) {
  for (const auto& c : kCodes)
    if (c.dtype == t) return c.code;
  fail("save_safetensors: dtype {} has no safetensors code", t);
}

std::optional<DType> dtype_of_code(const std::string& code) {
  for (const auto& c : kCodes)
    if (code == c.code) return c.dtype;
  return std::nullopt;
}

std::string errno_text() { return std::strerror(errno); }

// ---- writing ----

// Owns the temporary file until it is renamed into place; removes it on any failure.
class TempFile {
 public:
  TempFile(const std::filesystem::path& target, const std::string& path) : path_(path) {
    static std::atomic<uint64_t> counter{0};
    std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
    for (int attempt = 0; attempt < 100; ++attempt) {
      // Hidden, in the same folder (rename is only atomic within one file system), unique per
      // process and call; O_EXCL never reuses an existing file.
      tmp_ = dir / fmt::format(".{}.tmp.{}.{}", target.filename().string(), getpid(), counter++);
      int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        file_ = ::fdopen(fd, "wb");
        if (!file_) {
          ::close(fd);
          remove();
          fail("save_safetensors: {}: cannot open a stream on the temporary file: {}", path_, errno_text());
        }
        return;
      }
      if (errno != EEXIST)
        fail("save_safetensors: {}: cannot create the temporary file {}: {}", path_, tmp_.string(),
             errno_text());
    }
    fail("save_safetensors: {}: cannot find a free temporary file name in {}", path_, dir.string());
  }
  ~TempFile() {
    if (file_) std::fclose(file_);
    if (!committed_) remove();
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t n, const char* what) {
    if (n > 0 && std::fwrite(data, 1, n, file_) != n)
      fail("save_safetensors: {}: writing {} failed: {}", path_, what, errno_text());
  }

  // Flush to the disk, then atomically replace the target, then persist the rename itself.
  void commit(const std::filesystem::path& target) {
    if (std::fflush(file_) != 0) fail("save_safetensors: {}: flushing failed: {}", path_, errno_text());
    if (::fsync(::fileno(file_)) != 0) fail("save_safetensors: {}: fsync failed: {}", path_, errno_text());
    FILE* f = file_;
    file_ = nullptr;
    if (std::fclose(f) != 0)
      fail("save_safetensors: {}: closing the temporary file failed: {}", path_, errno_text());
    if (std::rename(tmp_.c_str(), target.c_str()) != 0)
      fail("save_safetensors: {}: renaming {} into place failed: {}", path_, tmp_.string(), errno_text());
    committed_ = true;
    std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {  // best effort: some file systems refuse fsync on directories
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  void remove() { ::unlink(tmp_.c_str()); }

  std::string path_;
  std::filesystem::path tmp_;
  FILE* file_ = nullptr;
  bool committed_ = false;
};

// ---- reading ----

class InFile {
 public:
  explicit InFile(const std::string& path) : f_(std::fopen(path.c_str(), "rb")) {
    if (!f_) fail("load_safetensors: {}: cannot open: {}", path, errno_text());
  }
  ~InFile() { std::fclose(f_); }
  InFile(const InFile&) = delete;
  InFile& operator=(const InFile&) = delete;
  FILE* get() const { return f_; }

 private:
  FILE* f_;
};

// A JSON value from the file, for an error message: dump() recurses, so a value nested a million
// deep would overflow the stack; only a short flat array of scalars is printed whole.
std::string shown(const json& j) {
  auto scalar = [](const json& e) { return e.is_number() || e.is_boolean() || e.is_null(); };
  if (j.is_array() && j.size() <= 16 && std::all_of(j.begin(), j.end(), scalar)) return j.dump();
  if (scalar(j)) return j.dump();
  return j.is_array() ? fmt::format("(an array of {} values, not all numbers)", j.size())
                      : fmt::format("(a JSON {})", j.type_name());
}

template <class... A>
[[noreturn]] void bad_file(const std::string& path, fmt::format_string<A...> what, A&&... args) {
  fail("load_safetensors: {}: {}", path, fmt::format(what, std::forward<A>(args)...));
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Gather CPU, contiguous data. Larger elements first, then by name: with the header padded to
  // a multiple of 8, every tensor then starts at a multiple of its element size.
  struct Item {
    std::string name;
    Tensor data;
  };
  std::vector<Item> items;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__")
      fail("save_safetensors: {}: '{}' cannot be used as a tensor name", path, name);
    if (!t.defined()) fail("save_safetensors: {}: tensor '{}' is undefined", path, name);
    items.push_back({name, t.detach().to(Device::cpu()).contiguous()});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return element_size(a.data.dtype()) > element_size(b.data.dtype());
  });

  json header = json::object();
  uint64_t offset = 0;
  for (const Item& it : items) {
    uint64_t nbytes = static_cast<uint64_t>(it.data.numel()) * element_size(it.data.dtype());
    header[it.name] = {{"dtype", code_of(it.data.dtype())},
                       {"shape", it.data.shape()},
                       {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  // JSON strings must be UTF-8: dump() throws nlohmann's own exception for a tensor name or a
  // metadata string that is not, which would escape as something other than ember::Error and
  // without the file's name. (Nothing has been written yet: the temporary file comes after.)
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail("save_safetensors: {}: a tensor name or metadata string is not valid UTF-8 ({})", path, e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // JSON allows trailing spaces

  std::filesystem::path target(path);
  TempFile tmp(target, path);
  uint64_t n = text.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  tmp.write(len, 8, "the header length");
  tmp.write(text.data(), text.size(), "the header");
  for (const Item& it : items)
    tmp.write(it.data.raw_data(), static_cast<size_t>(it.data.numel()) * element_size(it.data.dtype()),
              it.name.c_str());
  tmp.commit(target);
}

void save_safetensors(const std::string& path, const StateDict& state) {
  save_safetensors(path, state.tensors, state.metadata);
}

StateDict load_safetensors(const std::string& path) {
  InFile file(path);
  FILE* f = file.get();
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0) bad_file(path, "cannot stat: {}", errno_text());
  if (!S_ISREG(st.st_mode)) bad_file(path, "not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  // ---- header length ----
  if (size < 8) bad_file(path, "file is {} bytes, too short for the 8-byte header length", size);
  unsigned char len[8];
  if (std::fread(len, 1, 8, f) != 8) bad_file(path, "cannot read the header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n > kMaxHeaderBytes) bad_file(path, "header length {} exceeds the {}-byte limit", n, kMaxHeaderBytes);
  if (n > size - 8) bad_file(path, "header length {} runs past the end of the file ({} bytes)", n, size);
  if (n < 2) bad_file(path, "header length {} is too small for a JSON object", n);
  std::string text(n, '\0');
  if (std::fread(text.data(), 1, n, f) != n) bad_file(path, "cannot read the {}-byte header", n);

  // ---- header JSON ----
  json header;
  std::string duplicate;
  try {
    // nlohmann keeps the last of two equal keys; the callback notices the first repeat instead.
    std::set<std::string> top_keys;
    header = json::parse(text, [&](int depth, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key && depth == 1 &&
          !top_keys.insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const json::exception& e) {
    bad_file(path, "header is not valid JSON ({})", e.what());
  }
  if (!duplicate.empty()) bad_file(path, "header names '{}' twice", duplicate);
  if (!header.is_object()) bad_file(path, "header is not a JSON object");

  const uint64_t data_len = size - 8 - n;
  StateDict out;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) bad_file(path, "__metadata__ is not an object");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) bad_file(path, "__metadata__ entry '{}' is not a string", k);
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    if (!info.is_object()) bad_file(path, "entry '{}' is not an object", name);
    if (!info.contains("dtype") || !info["dtype"].is_string())
      bad_file(path, "tensor '{}' has no dtype string", name);
    const std::string code = info["dtype"].get<std::string>();
    std::optional<DType> dtype = dtype_of_code(code);
    if (!dtype)
      bad_file(path,
               "tensor '{}' has dtype {}, which ember does not support (F32, F64, I64, I32, U8, BOOL, BF16)",
               name, code);
    if (!info.contains("shape") || !info["shape"].is_array())
      bad_file(path, "tensor '{}' has no shape array", name);
    if (!info.contains("data_offsets") || !info["data_offsets"].is_array() ||
        info["data_offsets"].size() != 2)
      bad_file(path, "tensor '{}' needs data_offsets [begin, end]", name);
    // Byte count = element size x every dim, checked for overflow at each step.
    Shape shape;
    uint64_t nbytes = element_size(*dtype);
    for (const json& d : info["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        bad_file(path, "tensor '{}' has shape {}, which is not a list of non-negative integers", name,
                 shown(info["shape"]));
      uint64_t dim = d.get<uint64_t>();
      if (__builtin_mul_overflow(nbytes, dim, &nbytes))
        bad_file(path, "tensor '{}' of shape {} is too large", name, shown(info["shape"]));
      shape.push_back(static_cast<int64_t>(dim));
    }
    // A shape with a zero dim passes the byte count above (0 bytes) however large its other dims;
    // ember's tensors also need the product of the non-zero dims (the largest stride) to fit in
    // int64. Check it here, so that the error names the file like every other header problem.
    try {
      check_shape_valid(shape, "");
    } catch (const Error&) {
      bad_file(path, "tensor '{}' has shape {}, which has more elements than a 64-bit count can hold", name,
               shown(info["shape"]));
    }
    const json& offs = info["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      bad_file(path, "tensor '{}' has data_offsets {}, which are not non-negative integers", name,
               shown(offs));
    uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    if (begin > end)
      bad_file(path, "tensor '{}' has data_offsets [{}, {}] with begin after end", name, begin, end);
    if (end > data_len)
      bad_file(path, "tensor '{}' has data_offsets [{}, {}] beyond the {}-byte data section", name, begin,
               end, data_len);
    if (end - begin != nbytes)
      bad_file(path, "tensor '{}' ({} x {}) needs {} bytes but data_offsets [{}, {}] span {}", name, code,
               shown(info["shape"]), nbytes, begin, end, end - begin);
    entries.push_back({name, *dtype, std::move(shape), begin, end});
  }

  // The tensors must tile the data section exactly, as the reference implementation demands.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected)
      bad_file(path, "tensors '{}' and '{}' overlap (data_offsets [{}, {}] and [{}, {}])", previous->name,
               e.name, previous->begin, previous->end, e.begin, e.end);
    if (e.begin > expected)
      bad_file(path, "bytes [{}, {}) of the data section belong to no tensor", expected, e.begin);
    expected = e.end;
    previous = &e;
  }
  if (expected != data_len)
    bad_file(path, "bytes [{}, {}) of the data section belong to no tensor", expected, data_len);

  // ---- data (in file order, so reading is sequential) ----
  for (const Entry& e : entries) {
    Tensor t = empty_tensor(e.shape, e.dtype, Device::cpu());
    size_t nbytes = static_cast<size_t>(e.end - e.begin);
    if (nbytes > 0 && std::fread(t.raw_data(), 1, nbytes, f) != nbytes)
      bad_file(path, "file ended while reading tensor '{}' (bytes {} to {} of the data section)", e.name,
               e.begin, e.end);
    if (e.dtype == DType::boolean) {
      // Any byte but 0 or 1 is not a valid C++ bool.
      const auto* bytes = static_cast<const unsigned char*>(t.raw_data());
      for (size_t i = 0; i < nbytes; ++i)
        if (bytes[i] > 1) bad_file(path, "BOOL tensor '{}' holds byte {} at element {}", e.name, bytes[i], i);
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace ember
