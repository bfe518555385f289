#include "ember/data/cifar.h"

#include <filesystem>

#include "nn/data/file_bytes.h"

namespace ember::data {
namespace {

constexpr int64_t kPixels = 3 * 32 * 32;

struct Layout {
  int64_t label_bytes;  // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, then fine)
  int64_t fine_classes;
  int64_t coarse_classes;
};

Layout layout_of(CifarFormat f) { return f == CifarFormat::cifar10 ? Layout{1, 10, 0} : Layout{2, 100, 20}; }

}  // namespace

CifarData read_cifar(const std::vector<std::string>& paths, CifarFormat format) {
  if (paths.empty()) fail("read_cifar: no files given");
  const Layout layout = layout_of(format);
  const int64_t record = layout.label_bytes + kPixels;
  std::vector<detail::FileBytes> files;
  int64_t total = 0;
  for (const std::string& path : paths) {
    files.push_back(detail::read_file_bytes(path, "read_cifar"));
    const detail::FileBytes& f = files.back();
    const int64_t size = static_cast<int64_t>(f.bytes.size());
    if (size % record != 0)
      fail("read_cifar: {}: truncated record {} at {}: a {} record is {} bytes, and {} bytes are left over",
           path, size / record, f.where(static_cast<uint64_t>(size / record * record)),
           format == CifarFormat::cifar10 ? "CIFAR-10" : "CIFAR-100", record, size % record);
    total += size / record;
  }
  CifarData out;
  out.images = empty({total, 3, 32, 32}, TensorOptions(DType::float32));
  out.labels = empty({total}, TensorOptions(DType::int64));
  if (format == CifarFormat::cifar100) out.coarse_labels = empty({total}, TensorOptions(DType::int64));
  float* images = out.images.data_ptr<float>();
  int64_t* labels = out.labels.data_ptr<int64_t>();
  int64_t* coarse = format == CifarFormat::cifar100 ? out.coarse_labels.data_ptr<int64_t>() : nullptr;
  int64_t n = 0;
  for (const detail::FileBytes& f : files) {
    const int64_t records = static_cast<int64_t>(f.bytes.size()) / record;
    for (int64_t r = 0; r < records; ++r, ++n) {
      const uint8_t* rec = f.bytes.data() + r * record;
      const uint64_t at = static_cast<uint64_t>(r * record);
      if (coarse) {
        if (rec[0] >= layout.coarse_classes)
          fail("read_cifar: {}: {}: coarse label {} out of range [0, {})", f.path, f.where(at), rec[0],
               layout.coarse_classes);
        coarse[n] = rec[0];
      }
      const uint8_t fine = rec[layout.label_bytes - 1];
      if (fine >= layout.fine_classes)
        fail("read_cifar: {}: {}: label {} out of range [0, {})", f.path,
             f.where(at + layout.label_bytes - 1), fine, layout.fine_classes);
      labels[n] = fine;
      const uint8_t* px = rec + layout.label_bytes;
      float* dst = images + n * kPixels;
      detail::pixels_to_unit_range(px, kPixels, dst);
    }
  }
  return out;
}

namespace {

std::vector<std::string> in_root(const std::string& root, const std::vector<std::string>& names) {
  std::vector<std::string> paths;
  for (const std::string& name : names) paths.push_back((std::filesystem::path(root) / name).string());
  return paths;
}

TensorDataset load_cifar10(const std::string& root, bool train) {
  std::vector<std::string> names =
      train ? std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin"}
            : std::vector<std::string>{"test_batch.bin"};
  CifarData d = read_cifar(in_root(root, names), CifarFormat::cifar10);
  return TensorDataset(d.images, d.labels);
}

TensorDataset load_cifar100(const std::string& root, bool train, bool coarse) {
  CifarData d = read_cifar(in_root(root, {train ? "train.bin" : "test.bin"}), CifarFormat::cifar100);
  return TensorDataset(d.images, coarse ? d.coarse_labels : d.labels);
}

}  // namespace

CIFAR10::CIFAR10(const std::string& root, bool train) : TensorDataset(load_cifar10(root, train)) {}
CIFAR100::CIFAR100(const std::string& root, bool train, bool coarse)
    : TensorDataset(load_cifar100(root, train, coarse)) {}

}  // namespace ember::data
