#include "ember/data/idx.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>

#include "nn/data/file_bytes.h"

namespace ember::data {
namespace {

using detail::ByteCursor;
using detail::FileBytes;

struct IdxType {
  uint8_t code;
  const char* name;
  int64_t bytes;  // per element in the file
  DType dtype;    // what ember stores it as
};

constexpr IdxType kIdxTypes[] = {
    {0x08, "uint8", 1, DType::uint8},     {0x09, "int8", 1, DType::int32},
    {0x0B, "int16", 2, DType::int32},     {0x0C, "int32", 4, DType::int32},
    {0x0D, "float32", 4, DType::float32}, {0x0E, "float64", 8, DType::float64},
};

struct IdxHeader {
  IdxType type;
  Shape shape;
  int64_t numel;
  uint64_t data_offset;
};

// The header's fields; parse_header also checks the data against them.
IdxHeader read_header(ByteCursor& in) {
  const uint8_t* magic = in.take(4, "the 4-byte IDX magic number");
  if (magic[0] != 0 || magic[1] != 0)
    in.fail_at(0, "bad magic number 0x{:02x}{:02x}{:02x}{:02x}: an IDX file starts with two zero bytes",
               magic[0], magic[1], magic[2], magic[3]);
  IdxHeader h{};
  const IdxType* type = nullptr;
  for (const IdxType& t : kIdxTypes)
    if (t.code == magic[2]) type = &t;
  if (!type) in.fail_at(2, "unknown IDX element type code 0x{:02x}", magic[2]);
  h.type = *type;
  const int ndim = magic[3];
  if (ndim == 0) in.fail_at(3, "the number of dimensions is 0");
  h.numel = 1;
  // The product of the sizes with a zero counted as 1: once a dim is 0 numel stays 0 however large
  // the others are, but ember's tensors still need this product (the largest stride) to fit, so
  // it is guarded too (else the tensor constructor would fail without naming the file).
  int64_t span = 1;
  for (int d = 0; d < ndim; ++d) {
    uint64_t at = in.offset();
    int64_t size = in.u32_be(fmt::format("the size of dimension {} of {}", d, ndim));
    // Guard the product before it can overflow; real limits come from the file size below.
    if (size != 0 && span > std::numeric_limits<int64_t>::max() / type->bytes / size)
      in.fail_at(at, "size {} of dimension {} makes the data of {} {}... exceed 2^63 bytes", size, d,
                 type->name, shape_str(h.shape));
    h.numel *= size;
    span *= std::max<int64_t>(size, 1);
    h.shape.push_back(size);
  }
  h.data_offset = in.offset();
  return h;
}

uint64_t data_bytes(const IdxHeader& h) { return static_cast<uint64_t>(h.numel * h.type.bytes); }

IdxHeader parse_header(ByteCursor& in, const FileBytes& file) {
  const IdxHeader h = read_header(in);
  const IdxType* type = &h.type;
  const uint64_t need = data_bytes(h);
  if (!file.complete)
    in.fail_at(h.data_offset + need, "unexpected bytes after the data of {} {} (decompression stopped there)",
               type->name, shape_str(h.shape));
  if (in.remaining() < need)
    in.fail_at(h.data_offset, "truncated: the header ({} {}) promises {} data bytes, but only {} remain",
               type->name, shape_str(h.shape), need, in.remaining());
  if (in.remaining() > need)
    in.fail_at(h.data_offset + need, "{} unexpected bytes after the data of {} {}", in.remaining() - need,
               type->name, shape_str(h.shape));
  return h;
}

// The length of the whole file its header promises (see SizeFromHeader); 0 for a malformed header.
detail::SizeFromHeader idx_size(const std::string& path, std::string_view op) {
  return [path, op](std::span<const uint8_t> prefix) -> std::optional<uint64_t> {
    if (prefix.size() < 4 || prefix.size() < 4 + 4 * static_cast<size_t>(prefix[3])) return std::nullopt;
    const FileBytes head{path, {prefix.begin(), prefix.begin() + 4 + 4 * prefix[3]}, true};
    ByteCursor in(head, op);
    try {
      const IdxHeader h = read_header(in);
      return h.data_offset + data_bytes(h);
    } catch (const Error&) {
      return 0;  // parse_header reports it, with the same message, on the bytes read so far
    }
  };
}

FileBytes read_idx_file(const std::string& path, std::string_view op) {
  return detail::read_file_bytes(path, op, idx_size(path, op));
}

template <class T>
T load_be(const uint8_t* p, int64_t bytes) {
  uint64_t v = 0;
  for (int64_t i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  if constexpr (std::is_floating_point_v<T>) {
    if constexpr (sizeof(T) == 4) {
      uint32_t bits = static_cast<uint32_t>(v);
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    } else {
      double f;
      std::memcpy(&f, &v, 8);
      return f;
    }
  } else {
    return static_cast<T>(v);
  }
}

// Converts the big-endian file elements to the stored dtype.
Tensor decode(const IdxHeader& h, const uint8_t* data) {
  Tensor out = empty(h.shape, TensorOptions(h.type.dtype));
  const int64_t n = h.numel, w = h.type.bytes;
  switch (h.type.code) {
    case 0x08:
      if (n > 0) std::memcpy(out.raw_data(), data, static_cast<size_t>(n));  // (no buffer when empty)
      break;
    case 0x09: {
      int32_t* o = out.data_ptr<int32_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<int8_t>(data[i]);
      break;
    }
    case 0x0B: {
      int32_t* o = out.data_ptr<int32_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<int16_t>(load_be<uint16_t>(data + 2 * i, 2));
      break;
    }
    case 0x0C: {
      int32_t* o = out.data_ptr<int32_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<int32_t>(load_be<uint32_t>(data + 4 * i, 4));
      break;
    }
    case 0x0D: {
      float* o = out.data_ptr<float>();
      for (int64_t i = 0; i < n; ++i) o[i] = load_be<float>(data + w * i, w);
      break;
    }
    case 0x0E: {
      double* o = out.data_ptr<double>();
      for (int64_t i = 0; i < n; ++i) o[i] = load_be<double>(data + w * i, w);
      break;
    }
  }
  return out;
}

// Reads a uint8 IDX file of exactly `ndim` dimensions and returns its header and bytes.
std::pair<IdxHeader, FileBytes> read_uint8_idx(const std::string& path, int ndim, const char* op,
                                               const char* what) {
  FileBytes file = read_idx_file(path, op);
  ByteCursor in(file, op);
  IdxHeader h = parse_header(in, file);
  if (h.type.code != 0x08 || static_cast<int>(h.shape.size()) != ndim)
    in.fail_at(2, "expected {} (a {}-d uint8 IDX file, magic 0x0000080{}), got a {}-d {} file of shape {}",
               what, ndim, ndim, h.shape.size(), h.type.name, shape_str(h.shape));
  return {h, std::move(file)};
}

}  // namespace

Tensor read_idx(const std::string& path) {
  FileBytes file = read_idx_file(path, "read_idx");
  ByteCursor in(file, "read_idx");
  IdxHeader h = parse_header(in, file);
  return decode(h, file.bytes.data() + h.data_offset);
}

Tensor read_idx_images(const std::string& path) {
  auto [h, file] = read_uint8_idx(path, 3, "read_idx_images", "images");
  const int64_t n = h.shape[0], rows = h.shape[1], cols = h.shape[2];
  Tensor out = empty({n, 1, rows, cols}, TensorOptions(DType::float32));
  const uint8_t* src = file.bytes.data() + h.data_offset;
  float* dst = out.data_ptr<float>();
  detail::pixels_to_unit_range(src, h.numel, dst);
  return out;
}

Tensor read_idx_labels(const std::string& path) {
  auto [h, file] = read_uint8_idx(path, 1, "read_idx_labels", "labels");
  Tensor out = empty({h.shape[0]}, TensorOptions(DType::int64));
  const uint8_t* src = file.bytes.data() + h.data_offset;
  int64_t* dst = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < h.numel; ++i) dst[i] = src[i];
  return out;
}

namespace {

// root/name, or root/name.gz when only the compressed file exists.
std::string find_idx(const std::string& root, const std::string& name) {
  namespace fs = std::filesystem;
  fs::path plain = fs::path(root) / name, gz = fs::path(root) / (name + ".gz");
  if (fs::exists(plain)) return plain.string();
  if (fs::exists(gz)) return gz.string();
  fail("MNIST: found neither {} nor {}", plain.string(), gz.string());
}

TensorDataset load_mnist(const std::string& root, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_idx(root, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx(root, prefix + "-labels-idx1-ubyte");
  Tensor images = read_idx_images(images_path), labels = read_idx_labels(labels_path);
  if (images.size(0) != labels.size(0))
    fail("MNIST: {} holds {} images but {} holds {} labels", images_path, images.size(0), labels_path,
         labels.size(0));
  return TensorDataset(images, labels);
}

}  // namespace

MNIST::MNIST(const std::string& root, bool train) : TensorDataset(load_mnist(root, train)) {}

}  // namespace ember::data
