// ember::data: IDX / CIFAR / CSV readers (including malformed files), the DataLoader (batching,
// shuffling, resuming, the background thread) and the transforms.
#include <ember/data.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <set>

#include "data_files.h"
#include "harness.h"

namespace ember::testing {
namespace {

using data::Batch;
using data::DataLoader;
using data::DataLoaderOptions;
using data::Example;
using data::TensorDataset;

// ======================================================================================= IDX ====

TEST(Idx, ReadsPlainImagesScaledToUnitRange) {
  TempDir dir("idx");
  // Two 2x3 images.
  const std::string path = write_file(dir.file("images"), idx_bytes(0x08, {2, 2, 3},
                                                                    {0, 51, 102, 153, 204, 255,  //
                                                                     255, 0, 0, 0, 0, 17}));
  Tensor images = data::read_idx_images(path);
  EXPECT_EQ(images.dtype(), kFloat32);
  EXPECT_EQ(images.shape(), (Shape{2, 1, 2, 3}));
  EXPECT_TRUE(tensors_close(
      images,
      tensor<float>({0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f, 1.0f, 0, 0, 0, 0, 17 / 255.0f}, {2, 1, 2, 3}),
      1e-7));
}

TEST(Idx, PixelsAreExactlyTheBytesDividedBy255) {
  // As torchvision's ToTensor: x.float().div(255), bit for bit (a multiply by the rounded 1 / 255
  // was one ulp off for 126 of the 256 byte values).
  TempDir dir("idx");
  Bytes payload;
  for (int i = 0; i < 256; ++i) payload.push_back(static_cast<uint8_t>(i));
  std::vector<float> v =
      data::read_idx_images(write_file(dir.file("all"), idx_bytes(0x08, {1, 16, 16}, payload)))
          .to_vector<float>();
  for (int i = 0; i < 256; ++i) ASSERT_EQ(v[i], static_cast<float>(i) / 255.0f) << "byte " << i;
}

TEST(Idx, ReadsGzippedLabelsAsInt64) {
  TempDir dir("idx");
  const std::string path =
      write_file(dir.file("labels.gz"), gzip_stored(idx_bytes(0x08, {4}, {3, 0, 9, 255})));
  Tensor labels = data::read_idx_labels(path);
  EXPECT_EQ(labels.dtype(), kInt64);
  EXPECT_EQ(labels.to_vector<int64_t>(), (std::vector<int64_t>{3, 0, 9, 255}));
}

TEST(Idx, GzipWithManyBlocksAndMembers) {
  TempDir dir("idx");
  // 70000 bytes need two stored blocks; a second gzip member appended must be read as well.
  Bytes pixels(70000);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  Bytes whole = idx_bytes(0x08, {70000 + 4}, {});
  Bytes first(whole.begin(), whole.end());
  first.insert(first.end(), pixels.begin(), pixels.end());
  Bytes gz = gzip_stored(first), tail = gzip_stored({1, 2, 3, 4});
  gz.insert(gz.end(), tail.begin(), tail.end());
  Tensor t = data::read_idx(write_file(dir.file("multi.gz"), gz));
  ASSERT_EQ(t.shape(), (Shape{70004}));
  std::vector<uint8_t> v = t.to_vector<uint8_t>();
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[69999], static_cast<uint8_t>(69999 * 7));
  EXPECT_EQ(v[70000], 1);
  EXPECT_EQ(v[70003], 4);
}

TEST(Idx, EveryElementTypeIsDecodedBigEndian) {
  TempDir dir("idx");
  // int8: -1, 5
  EXPECT_EQ(
      data::read_idx(write_file(dir.file("i8"), idx_bytes(0x09, {2}, {0xff, 0x05}))).to_vector<int32_t>(),
      (std::vector<int32_t>{-1, 5}));
  // int16: -2, 258
  EXPECT_EQ(data::read_idx(write_file(dir.file("i16"), idx_bytes(0x0B, {2}, {0xff, 0xfe, 0x01, 0x02})))
                .to_vector<int32_t>(),
            (std::vector<int32_t>{-2, 258}));
  // int32: 16909060, -1 in a 1x2 matrix
  Tensor i32 = data::read_idx(
      write_file(dir.file("i32"), idx_bytes(0x0C, {1, 2}, {1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff})));
  EXPECT_EQ(i32.shape(), (Shape{1, 2}));
  EXPECT_EQ(i32.to_vector<int32_t>(), (std::vector<int32_t>{16909060, -1}));
  // float32: 1.5 = 0x3FC00000, -2 = 0xC0000000
  EXPECT_EQ(
      data::read_idx(write_file(dir.file("f32"), idx_bytes(0x0D, {2}, {0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0})))
          .to_vector<float>(),
      (std::vector<float>{1.5f, -2.0f}));
  // float64: 0.25 = 0x3FD0000000000000
  Tensor f64 =
      data::read_idx(write_file(dir.file("f64"), idx_bytes(0x0E, {1}, {0x3f, 0xd0, 0, 0, 0, 0, 0, 0})));
  EXPECT_EQ(f64.dtype(), kFloat64);
  EXPECT_EQ(f64.to_vector<double>(), (std::vector<double>{0.25}));
}

TEST(Idx, MalformedFilesNameTheFileAndOffset) {
  TempDir dir("idx");
  auto file = [&](const std::string& name, const Bytes& b) { return write_file(dir.file(name), b); };
  const std::string bad_magic = file("bad_magic", {1, 0, 8, 1, 0, 0, 0, 1, 7});
  EMBER_EXPECT_THROW_MSG(data::read_idx(bad_magic),
                         bad_magic + ": byte offset 0: bad magic number 0x01000801");
  const std::string bad_type = file("bad_type", {0, 0, 0x42, 1, 0, 0, 0, 1, 7});
  EMBER_EXPECT_THROW_MSG(data::read_idx(bad_type),
                         bad_type + ": byte offset 2: unknown IDX element type code 0x42");
  const std::string no_dims = file("no_dims", {0, 0, 8, 0});
  EMBER_EXPECT_THROW_MSG(data::read_idx(no_dims), no_dims + ": byte offset 3: the number of dimensions is 0");
  const std::string short_magic = file("short_magic", {0, 0});
  EMBER_EXPECT_THROW_MSG(data::read_idx(short_magic), short_magic + ": byte offset 0: truncated");
  // The header promises 3 dims but the file ends inside the second one.
  const std::string short_header = file("short_header", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
  EMBER_EXPECT_THROW_MSG(
      data::read_idx(short_header),
      short_header + ": byte offset 8: truncated: expected the size of dimension 1 of 3 (4 bytes)");
  // 2x3 uint8 promises 6 data bytes from offset 12; only 3 are there.
  const std::string short_data = file("short_data", idx_bytes(0x08, {2, 3}, {1, 2, 3}));
  EMBER_EXPECT_THROW_MSG(data::read_idx(short_data),
                         short_data +
                             ": byte offset 12: truncated: the header (uint8 [2,3]) promises 6 data bytes, "
                             "but only 3 remain");
  const std::string extra = file("extra", idx_bytes(0x08, {2}, {1, 2, 3}));
  EMBER_EXPECT_THROW_MSG(data::read_idx(extra),
                         extra + ": byte offset 10: 1 unexpected bytes after the data");
  // Sizes whose product would overflow are refused before any allocation.
  const std::string huge = file("huge", idx_bytes(0x0E, {0xffffffff, 0xffffffff, 0xffffffff}, {}));
  EMBER_EXPECT_THROW_MSG(data::read_idx(huge),
                         huge +
                             ": byte offset 8: size 4294967295 of dimension 1 makes the data "
                             "of float64 [4294967295]... exceed 2^63 bytes");
  EMBER_EXPECT_THROW_MSG(data::read_idx(dir.file("missing")), "read_idx: cannot open " + dir.file("missing"));
  // Found by fuzzing: a zero dim hid the overflow of the others (strides of 2^96), and an empty
  // uint8 file handed memcpy a null buffer.
  const std::string zero_dim = file("zero_dim", idx_bytes(0x08, {0, 0xffffffff, 0xffffffff, 0xffffffff}, {}));
  // (The error used to come from the tensor constructor, without the file's name.)
  EMBER_EXPECT_THROW_MSG(data::read_idx(zero_dim),
                         zero_dim + ": byte offset 12: size 4294967295 of dimension 2");
  EXPECT_EQ(data::read_idx(file("empty", idx_bytes(0x08, {0}, {}))).shape(), Shape{0});
}

TEST(Idx, WrongKindOfFileIsRefused) {
  TempDir dir("idx");
  const std::string labels = write_file(dir.file("labels"), idx_bytes(0x08, {2}, {1, 2}));
  EMBER_EXPECT_THROW_MSG(
      data::read_idx_images(labels),
      labels +
          ": byte offset 2: expected images (a 3-d uint8 IDX file, magic 0x00000803), got a "
          "1-d uint8 file of shape [2]");
  const std::string floats = write_file(dir.file("floats"), idx_bytes(0x0D, {1}, {0, 0, 0, 0}));
  EMBER_EXPECT_THROW_MSG(data::read_idx_labels(floats), "got a 1-d float32 file");
}

TEST(Idx, CorruptAndTruncatedGzip) {
  TempDir dir("idx");
  Bytes gz = gzip_stored(idx_bytes(0x08, {4}, {1, 2, 3, 4}));
  Bytes truncated(gz.begin(), gz.begin() + 16);
  const std::string t = write_file(dir.file("truncated.gz"), truncated);
  EMBER_EXPECT_THROW_MSG(data::read_idx(t), "read_idx: " + t + ": truncated gzip stream");
  Bytes corrupt = gz;
  corrupt[13] ^= 0xff;  // the stored block's NLEN no longer complements LEN
  const std::string c = write_file(dir.file("corrupt.gz"), corrupt);
  EMBER_EXPECT_THROW_MSG(data::read_idx(c),
                         "read_idx: " + c + ": corrupt gzip data near compressed byte offset");
  Bytes bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 1;
  EMBER_EXPECT_THROW_MSG(data::read_idx(write_file(dir.file("crc.gz"), bad_crc)), "incorrect data check");
  // Offsets inside a gzipped file count decompressed bytes.
  const std::string short_data = write_file(dir.file("short.gz"), gzip_stored(idx_bytes(0x08, {5}, {1, 2})));
  EMBER_EXPECT_THROW_MSG(data::read_idx(short_data),
                         short_data + ": byte offset 8 of the decompressed data: truncated");
}

// A gzipped IDX file is inflated only until it runs past the size its header promises: a gzip bomb
// (a few MiB that inflate to GiB) behind a small header costs one 64 KiB chunk, not the whole stream.
TEST(Idx, GzipStopsPastTheSizeTheHeaderPromises) {
  TempDir dir("idx");
  Bytes bomb = idx_bytes(0x08, {4}, {1, 2, 3, 4});
  bomb.resize(bomb.size() + (1 << 20));  // 1 MiB that the header does not mention
  const std::string path = write_file(dir.file("bomb.gz"), gzip_stored(bomb));
  EMBER_EXPECT_THROW_MSG(data::read_idx(path), path +
                                                   ": byte offset 12 of the decompressed data: unexpected "
                                                   "bytes after the data of uint8 [4] (decompression "
                                                   "stopped there)");
  EMBER_EXPECT_THROW_MSG(data::read_idx_labels(path), "(decompression stopped there)");
  // A malformed header stops the reading at once and is reported as such.
  Bytes bad = bomb;
  bad[2] = 0x42;
  EMBER_EXPECT_THROW_MSG(data::read_idx(write_file(dir.file("bad.gz"), gzip_stored(bad))),
                         "byte offset 2 of the decompressed data: unknown IDX element type code 0x42");
  // A file exactly as long as its header says is read whole (the data check at its end included).
  const Bytes exact = idx_bytes(0x08, {70000}, Bytes(70000, 7));
  EXPECT_EQ(data::read_idx(write_file(dir.file("exact.gz"), gzip_stored(exact))).numel(), 70000);
}

TEST(Idx, MnistDatasetFromADirectory) {
  TempDir dir("mnist");
  Bytes pixels(3 * 2 * 2);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 20);
  write_file(dir.file("t10k-images-idx3-ubyte.gz"), gzip_stored(idx_bytes(0x08, {3, 2, 2}, pixels)));
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x08, {3}, {7, 1, 4}));
  data::MNIST test(dir.str(), /*train=*/false);
  ASSERT_EQ(test.size(), 3);
  Example e = test.get(2);
  EXPECT_EQ(e.target.item<int64_t>(), 4);
  EXPECT_TRUE(tensors_close(
      e.data, tensor<float>({160 / 255.f, 180 / 255.f, 200 / 255.f, 220 / 255.f}, {1, 2, 2}), 1e-7));
  EMBER_EXPECT_THROW_MSG(data::MNIST(dir.str(), true),
                         "MNIST: found neither " + dir.file("train-images-idx3-ubyte") + " nor");
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_bytes(0x08, {2}, {7, 1}));
  EMBER_EXPECT_THROW_MSG(data::MNIST(dir.str(), false), "holds 3 images but");
}

TEST(Idx, RealFashionMnist) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed";
  data::MNIST test(root, false);
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(test.data().shape(), (Shape{10000, 1, 28, 28}));
  // The test set holds exactly 1000 images of each of the 10 classes.
  std::vector<int64_t> counts(10, 0);
  for (int64_t label : test.targets().to_vector<int64_t>()) {
    ASSERT_TRUE(label >= 0 && label < 10);
    ++counts[static_cast<size_t>(label)];
  }
  EXPECT_EQ(counts, std::vector<int64_t>(10, 1000));
  EXPECT_EQ(test.data().amin({}).item<float>(), 0.0f);
  EXPECT_EQ(test.data().amax({}).item<float>(), 1.0f);
}

// ===================================================================================== CIFAR ====

// One record: label byte(s), then 3072 pixels; pixel value = (seed + channel * 10 + i) mod 256.
Bytes cifar_record(std::vector<uint8_t> labels, uint8_t seed) {
  Bytes r = labels;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 1024; ++i) r.push_back(static_cast<uint8_t>(seed + c * 10 + i));
  return r;
}

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(Cifar, Cifar10RecordsAcrossFiles) {
  TempDir dir("cifar");
  const std::string a = write_file(dir.file("a.bin"), concat({cifar_record({3}, 0), cifar_record({9}, 100)}));
  const std::string b = write_file(dir.file("b.bin"), cifar_record({0}, 200));
  data::CifarData d = data::read_cifar({a, b}, data::CifarFormat::cifar10);
  EXPECT_EQ(d.images.shape(), (Shape{3, 3, 32, 32}));
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{3, 9, 0}));
  EXPECT_FALSE(d.coarse_labels.defined());
  // Record 1, green channel (c = 1), row 0 col 5: (100 + 10 + 5) / 255; row 1 col 0: (100 + 10 + 32) / 255.
  std::vector<float> v = d.images.to_vector<float>();
  EXPECT_FLOAT_EQ(v[3072 + 1024 + 5], 115 / 255.0f);
  EXPECT_FLOAT_EQ(v[3072 + 1024 + 32], 142 / 255.0f);
  // Record 2, blue (c = 2), last pixel: (200 + 20 + 1023) mod 256 = 219.
  EXPECT_FLOAT_EQ(v[2 * 3072 + 3071], 219 / 255.0f);
}

TEST(Cifar, PixelsAreExactlyTheBytesDividedBy255) {
  // torchvision's ToTensor computes x.float().div(255). Multiplying by a rounded 1 / 255 instead
  // differed in the last bit for 126 of the 256 byte values (EXPECT_FLOAT_EQ allows 4 ulps, so
  // the test above did not notice). Record 0's red channel runs through every byte value.
  TempDir dir("cifar");
  const std::string a = write_file(dir.file("a.bin"), cifar_record({1}, 0));
  std::vector<float> v = data::read_cifar({a}, data::CifarFormat::cifar10).images.to_vector<float>();
  for (int i = 0; i < 1024; ++i) ASSERT_EQ(v[i], static_cast<float>(i % 256) / 255.0f) << "byte " << i % 256;
}

TEST(Cifar, Cifar100HasCoarseAndFineLabels) {
  TempDir dir("cifar");
  write_file(dir.file("test.bin"), concat({cifar_record({19, 99}, 1), cifar_record({4, 30}, 2)}));
  data::CifarData d = data::read_cifar({dir.file("test.bin")}, data::CifarFormat::cifar100);
  EXPECT_EQ(d.coarse_labels.to_vector<int64_t>(), (std::vector<int64_t>{19, 4}));
  EXPECT_EQ(d.labels.to_vector<int64_t>(), (std::vector<int64_t>{99, 30}));
  EXPECT_FLOAT_EQ(d.images.to_vector<float>()[3072], 2 / 255.0f);  // record 1's first pixel
  data::CIFAR100 fine(dir.str(), false), coarse(dir.str(), false, true);
  EXPECT_EQ(fine.targets().to_vector<int64_t>(), (std::vector<int64_t>{99, 30}));
  EXPECT_EQ(coarse.targets().to_vector<int64_t>(), (std::vector<int64_t>{19, 4}));
}

TEST(Cifar, Cifar10DatasetLayout) {
  TempDir dir("cifar");
  for (int k = 1; k <= 5; ++k)
    write_file(dir.file("data_batch_" + std::to_string(k) + ".bin"),
               cifar_record({static_cast<uint8_t>(k)}, 0));
  write_file(dir.file("test_batch.bin"), concat({cifar_record({0}, 0), cifar_record({8}, 0)}));
  EXPECT_EQ(data::CIFAR10(dir.str(), true).targets().to_vector<int64_t>(),
            (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(data::CIFAR10(dir.str(), false).size(), 2);
}

TEST(Cifar, TruncatedRecordsAndBadLabels) {
  TempDir dir("cifar");
  Bytes two = concat({cifar_record({1}, 0), cifar_record({2}, 0)});
  const std::string cut = write_file(dir.file("cut.bin"), Bytes(two.begin(), two.end() - 100));
  EMBER_EXPECT_THROW_MSG(
      data::read_cifar({cut}, data::CifarFormat::cifar10),
      cut +
          ": truncated record 1 at byte offset 3073: a CIFAR-10 record is 3073 bytes, and 2973 "
          "bytes are left over");
  const std::string label =
      write_file(dir.file("label.bin"), concat({cifar_record({1}, 0), cifar_record({10}, 0)}));
  EMBER_EXPECT_THROW_MSG(data::read_cifar({label}, data::CifarFormat::cifar10),
                         label + ": byte offset 3073: label 10 out of range [0, 10)");
  const std::string coarse = write_file(dir.file("coarse.bin"), cifar_record({20, 5}, 0));
  EMBER_EXPECT_THROW_MSG(data::read_cifar({coarse}, data::CifarFormat::cifar100),
                         coarse + ": byte offset 0: coarse label 20 out of range [0, 20)");
  const std::string fine = write_file(dir.file("fine.bin"), cifar_record({2, 100}, 0));
  EMBER_EXPECT_THROW_MSG(data::read_cifar({fine}, data::CifarFormat::cifar100),
                         fine + ": byte offset 1: label 100 out of range [0, 100)");
  EMBER_EXPECT_THROW_MSG(data::CIFAR10(dir.str(), false), "cannot open " + dir.file("test_batch.bin"));
}

// ======================================================================================= CSV ====

const char* kPeople =
    "age,color,score,city\n"
    "30,red,1.5,paris\n"
    "25,blue,2.5,rome\n"
    "40,red,-3,paris\n"
    "35,green,4e1,oslo\n";

TEST(Csv, InfersTypesAndBuildsVocabulariesWithMinCount) {
  TempDir dir("csv");
  const std::string path = write_text(dir.file("people.csv"), kPeople);
  data::CsvOptions o;
  o.min_count = 2;
  data::CsvTable t = data::read_csv(path, o);
  EXPECT_EQ(t.rows, 4);
  EXPECT_EQ(t.numeric_columns, (std::vector<std::string>{"age", "score"}));
  EXPECT_EQ(t.categorical_columns, (std::vector<std::string>{"color", "city"}));
  EXPECT_EQ(t.numeric.dtype(), kFloat32);
  EXPECT_EQ(t.numeric.to_vector<float>(), (std::vector<float>{30, 1.5f, 25, 2.5f, 40, -3, 35, 40}));
  // Only red and paris are seen twice; everything rarer is <unk> = 0.
  EXPECT_EQ(t.vocabularies.at("color").tokens(), (std::vector<std::string>{"<unk>", "red"}));
  EXPECT_EQ(t.categorical.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 0, 1, 1, 0, 0}));
  EXPECT_EQ(t.column("city").to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1, 0}));
  EXPECT_EQ(t.column("score").to_vector<float>(), (std::vector<float>{1.5f, 2.5f, -3, 40}));
  EMBER_EXPECT_THROW_MSG(t.column("height"), "no numeric or categorical column 'height'");

  // min_count 1: every value, most frequent first, ties in byte order.
  data::CsvTable all = data::read_csv(path);
  EXPECT_EQ(all.vocabularies.at("color").tokens(),
            (std::vector<std::string>{"<unk>", "red", "blue", "green"}));
  EXPECT_EQ(all.column("color").to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 1, 3}));
}

TEST(Csv, ExplicitTypesAndGivenVocabularies) {
  TempDir dir("csv");
  const std::string path = write_text(dir.file("people.csv"), kPeople);
  data::CsvOptions o;
  o.column_types = {{"age", data::ColumnType::categorical}, {"score", data::ColumnType::ignore}};
  o.vocabularies["city"] = data::Vocabulary::build({"rome", "oslo", "oslo"});  // oslo = 1, rome = 2
  o.numeric_dtype = kFloat64;
  data::CsvTable t = data::read_csv(path, o);
  EXPECT_TRUE(t.numeric_columns.empty());
  EXPECT_EQ(t.numeric.shape(), (Shape{4, 0}));
  EXPECT_EQ(t.categorical_columns, (std::vector<std::string>{"age", "color", "city"}));
  EXPECT_EQ(t.column("city").to_vector<int64_t>(), (std::vector<int64_t>{0, 2, 0, 1}));  // paris unknown -> 0
  EXPECT_EQ(t.vocabularies.at("age").token(t.column("age").to_vector<int64_t>()[1]), "25");

  data::CsvOptions bad;
  bad.column_types = {{"height", data::ColumnType::numeric}};
  EMBER_EXPECT_THROW_MSG(data::read_csv(path, bad), "column_types names 'height', which is not a column");
  data::CsvOptions numeric_city;
  numeric_city.column_types = {{"city", data::ColumnType::numeric}};
  EMBER_EXPECT_THROW_MSG(data::read_csv(path, numeric_city),
                         path + ":2: column 'city': 'paris' is not a number");
  // A leading '+' is allowed once, and not before another sign.
  const std::string signs = write_text(dir.file("signs.csv"), "x\n+5\n+-5\n");
  data::CsvOptions numeric_x;
  numeric_x.column_types = {{"x", data::ColumnType::numeric}};
  EMBER_EXPECT_THROW_MSG(data::read_csv(signs, numeric_x), signs + ":3: column 'x': '+-5' is not a number");
  EXPECT_EQ(data::read_csv(signs).vocabularies.at("x").tokens(),
            (std::vector<std::string>{"<unk>", "+-5", "+5"}));
}

TEST(Csv, QuotesCrlfTsvAndNoHeader) {
  TempDir dir("csv");
  const std::string quoted =
      write_text(dir.file("q.csv"), "name,n\r\n\"Smith, J.\",1\r\n\"say \"\"hi\"\"\",2\r\n\r\n");
  data::CsvTable q = data::read_csv(quoted);
  EXPECT_EQ(q.rows, 2);
  const data::Vocabulary& names = q.vocabularies.at("name");
  EXPECT_EQ(names.token(q.column("name").to_vector<int64_t>()[0]), "Smith, J.");
  EXPECT_EQ(names.token(q.column("name").to_vector<int64_t>()[1]), "say \"hi\"");
  EXPECT_EQ(q.column("n").to_vector<float>(), (std::vector<float>{1, 2}));

  const std::string tsv = write_text(dir.file("t.tsv"), "1.5\tx,y\n2\tz\n");
  data::CsvOptions no_header;
  no_header.header = false;
  data::CsvTable t = data::read_csv(tsv, no_header);
  EXPECT_EQ(t.numeric_columns, (std::vector<std::string>{"0"}));
  EXPECT_EQ(t.vocabularies.at("1").tokens(), (std::vector<std::string>{"<unk>", "x,y", "z"}));
}

TEST(Csv, SkipRowsIgnoresAPreamble) {
  // scikit-learn's layout: a count line (fewer fields than the rows), then headerless rows. Line
  // numbers in errors stay those of the file.
  TempDir dir("csv");
  const std::string path = write_text(dir.file("sk.csv"), "3,2,no,yes\n\n1.5,2,0\n-1,4,1\n0,0,1\n");
  data::CsvOptions o;
  o.skip_rows = 2;
  o.header = false;
  const data::CsvTable t = data::read_csv(path, o);
  EXPECT_EQ(t.rows, 3);
  EXPECT_EQ(t.numeric_columns, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(t.column("2").to_vector<float>(), (std::vector<float>{0, 1, 1}));
  o.skip_rows = 1;  // the blank line 2 is skipped anyway; the header is then line 3
  o.header = true;
  EXPECT_EQ(data::read_csv(path, o).numeric_columns, (std::vector<std::string>{"1.5", "2", "0"}));
  const std::string bad = write_text(dir.file("bad.csv"), "preamble\na,b\n1,2\n3\n");
  EMBER_EXPECT_THROW_MSG(data::read_csv(bad, o), bad + ":4: expected 2 fields, found 1");
}

TEST(Csv, MalformedLinesNameTheLine) {
  TempDir dir("csv");
  const std::string fields = write_text(dir.file("fields.csv"), "a,b,c\n1,2,3\n\n4,5\n");
  EMBER_EXPECT_THROW_MSG(data::read_csv(fields), fields + ":4: expected 3 fields, found 2");
  const std::string quote = write_text(dir.file("quote.csv"), "a,b\n1,\"open\n");
  EMBER_EXPECT_THROW_MSG(data::read_csv(quote), quote + ":2: the quote opened at column 3 is never closed");
  const std::string after = write_text(dir.file("after.csv"), "a,b\n\"x\"y,1\n");
  EMBER_EXPECT_THROW_MSG(data::read_csv(after),
                         after + ":2: unexpected character 'y' after the closing quote");
  const std::string dup = write_text(dir.file("dup.csv"), "a,a\n1,2\n");
  EMBER_EXPECT_THROW_MSG(data::read_csv(dup), dup + ":1: the column name 'a' appears twice");
  EMBER_EXPECT_THROW_MSG(data::read_csv(write_text(dir.file("empty.csv"), "")), "the file has no lines");
  data::CsvOptions skip_all;
  skip_all.skip_rows = 2;
  EMBER_EXPECT_THROW_MSG(data::read_csv(dup, skip_all), "the file has no lines after the 2 skipped");
  skip_all.skip_rows = -1;
  EMBER_EXPECT_THROW_MSG(data::read_csv(dup, skip_all), "skip_rows must be >= 0, got -1");
  EMBER_EXPECT_THROW_MSG(data::Vocabulary::build({"a"}, 0), "min_count must be at least 1");
}

// ================================================================================ DataLoader ====

// Ten examples: data[i] = {i, 10 i} (float), target[i] = i (int64).
std::shared_ptr<TensorDataset> ten() {
  std::vector<float> d;
  std::vector<int64_t> t;
  for (int i = 0; i < 10; ++i) {
    d.push_back(static_cast<float>(i));
    d.push_back(static_cast<float>(10 * i));
    t.push_back(i);
  }
  return std::make_shared<TensorDataset>(tensor<float>(d, {10, 2}), tensor<int64_t>(t, {10}));
}

std::vector<std::vector<int64_t>> epoch_targets(DataLoader& loader) {
  std::vector<std::vector<int64_t>> out;
  for (Batch& b : loader) out.push_back(b.target.to_vector<int64_t>());
  return out;
}

TEST(DataLoader, BatchesInOrderWithALastSmallBatch) {
  DataLoader loader(ten(), {.batch_size = 4});
  EXPECT_EQ(loader.num_batches(), 3);
  std::vector<Batch> batches;
  for (Batch& b : loader) batches.push_back(b);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].data.shape(), (Shape{4, 2}));
  EXPECT_EQ(batches[0].data.to_vector<float>(), (std::vector<float>{0, 0, 1, 10, 2, 20, 3, 30}));
  EXPECT_EQ(batches[1].target.to_vector<int64_t>(), (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(batches[2].data.shape(), (Shape{2, 2}));
  EXPECT_EQ(batches[2].target.to_vector<int64_t>(), (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(loader.state(), (data::DataLoaderState{loader.state().seed, 1, 0}));  // one epoch done
}

TEST(DataLoader, DropLast) {
  DataLoader loader(ten(), {.batch_size = 4, .drop_last = true});
  EXPECT_EQ(loader.num_batches(), 2);
  EXPECT_EQ(epoch_targets(loader), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}}));
  DataLoader too_small(ten(), {.batch_size = 11, .drop_last = true});
  EXPECT_TRUE(epoch_targets(too_small).empty());
}

TEST(DataLoader, ShuffleIsASeededPermutationPerEpoch) {
  DataLoader a(ten(), {.batch_size = 3, .shuffle = true, .seed = 42});
  DataLoader b(ten(), {.batch_size = 3, .shuffle = true, .seed = 42});
  DataLoader c(ten(), {.batch_size = 3, .shuffle = true, .seed = 43});
  auto flat = [](const std::vector<std::vector<int64_t>>& batches) {
    std::vector<int64_t> v;
    for (const auto& b : batches) v.insert(v.end(), b.begin(), b.end());
    return v;
  };
  std::vector<int64_t> a0 = flat(epoch_targets(a)), a1 = flat(epoch_targets(a));
  EXPECT_EQ(a0, flat(epoch_targets(b)));
  EXPECT_EQ(a1, flat(epoch_targets(b)));
  EXPECT_NE(a0, a1);                      // a new order each epoch
  EXPECT_NE(a0, flat(epoch_targets(c)));  // another seed, another order
  EXPECT_EQ(a0, a.epoch_order(0));        // the batches follow epoch_order
  std::vector<int64_t> sorted = a0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(DataLoader, UnseededLoaderFollowsManualSeed) {
  manual_seed(7);
  DataLoader a(ten(), {.shuffle = true});
  manual_seed(7);
  DataLoader b(ten(), {.shuffle = true});
  manual_seed(8);
  DataLoader c(ten(), {.shuffle = true});
  EXPECT_EQ(a.state().seed, b.state().seed);
  EXPECT_NE(a.state().seed, c.state().seed);
  EXPECT_EQ(a.epoch_order(3), b.epoch_order(3));
}

TEST(DataLoader, ResumedLoaderContinuesTheSameSequence) {
  // An uninterrupted run of 2.5 epochs...
  DataLoader full(ten(), {.batch_size = 3, .shuffle = true, .seed = 5});
  std::vector<std::vector<int64_t>> expected;
  for (int e = 0; e < 3; ++e)
    for (auto& b : epoch_targets(full)) expected.push_back(b);
  // ...against one that stops after batch 1 of epoch 1, saves its state and is rebuilt from it.
  std::vector<std::vector<int64_t>> seen;
  data::DataLoaderState saved;
  {
    DataLoader first(ten(), {.batch_size = 3, .shuffle = true, .seed = 5});
    for (auto& b : epoch_targets(first)) seen.push_back(b);
    for (Batch& b : first) {
      seen.push_back(b.target.to_vector<int64_t>());
      if (first.state().batch == 2) {
        saved = first.state();
        break;  // leaves a prefetched batch behind, which must not leak into the resumed run
      }
    }
  }
  EXPECT_EQ(saved.epoch, 1);
  DataLoader resumed(ten(), {.batch_size = 3, .shuffle = true, .seed = 999});  // the state's seed wins
  resumed.load_state(saved);
  for (auto& b : epoch_targets(resumed)) seen.push_back(b);
  for (auto& b : epoch_targets(resumed)) seen.push_back(b);
  EXPECT_EQ(seen, expected);
}

TEST(DataLoader, StateDictRoundTripsThroughMetadata) {
  DataLoader a(ten(), {.batch_size = 3, .shuffle = true, .seed = 18446744073709551615ULL});
  a.next();
  a.next();
  StateDict saved = a.state_dict();
  EXPECT_EQ(saved.metadata, (std::map<std::string, std::string>{
                                {"seed", "18446744073709551615"}, {"epoch", "0"}, {"batch", "2"}}));
  DataLoader b(ten(), {.batch_size = 3, .shuffle = true, .seed = 1});
  b.load_state_dict(saved);
  EXPECT_EQ(b.state(), a.state());
  EXPECT_TRUE(equal(b.next()->target, a.next()->target));
  saved.metadata["epoch"] = "-1";
  EMBER_EXPECT_THROW_MSG(b.load_state_dict(saved), "'epoch' is '-1', not a non-negative integer");
  saved.metadata["epoch"] = "0";
  saved.metadata.erase("batch");
  EMBER_EXPECT_THROW_MSG(b.load_state_dict(saved), "the metadata has no 'batch'");
}

TEST(DataLoader, BackgroundThreadMatchesSynchronousLoading) {
  auto t = std::make_shared<data::RandomHorizontalFlip>(0.5);
  auto images =
      std::make_shared<TensorDataset>(arange(0, 40, 1, kFloat32).view({10, 1, 2, 2}), arange(10, kInt64));
  DataLoader threaded(images, {.batch_size = 4, .shuffle = true, .seed = 1, .prefetch = 3, .transform = t});
  DataLoader inline_(images, {.batch_size = 4, .shuffle = true, .seed = 1, .prefetch = 0, .transform = t});
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::optional<Batch> x, y;
    while ((x = threaded.next())) {
      y = inline_.next();
      ASSERT_TRUE(y.has_value());
      EXPECT_TRUE(equal(x->data, y->data));
      EXPECT_TRUE(equal(x->target, y->target));
    }
    EXPECT_FALSE(inline_.next().has_value());
  }
}

TEST(DataLoader, TransformsAreReproducibleAndVaryByEpoch) {
  auto images =
      std::make_shared<TensorDataset>(arange(0, 32, 1, kFloat32).view({2, 1, 4, 4}), arange(2, kInt64));
  auto crop = std::make_shared<data::RandomCrop>(std::array<int64_t, 2>{4, 4}, 2);
  DataLoader a(images, {.batch_size = 2, .seed = 3, .transform = crop});
  DataLoader b(images, {.batch_size = 2, .seed = 3, .transform = crop});
  std::vector<Tensor> epochs;
  for (int e = 0; e < 4; ++e) {
    Tensor xa = a.next()->data, xb = b.next()->data;
    EXPECT_TRUE(equal(xa, xb));
    epochs.push_back(xa);
    EXPECT_FALSE(a.next().has_value());
    EXPECT_FALSE(b.next().has_value());
  }
  bool varies = false;
  for (int e = 1; e < 4; ++e) varies = varies || !equal(epochs[0], epochs[e]);
  EXPECT_TRUE(varies);
}

// A dataset that fails on one index, to check that errors cross the thread boundary.
struct Failing : data::Dataset {
  int64_t size() const override { return 6; }
  Example get(int64_t i) const override {
    if (i == 4) fail("Failing: example {} is broken", i);
    return Example{full({1}, static_cast<double>(i)), Tensor()};
  }
};

TEST(DataLoader, ErrorsFromTheBackgroundThreadReachTheCaller) {
  DataLoader loader(std::make_shared<Failing>(), {.batch_size = 2});
  Batch first = *loader.next();
  EXPECT_EQ(first.data.to_vector<float>(), (std::vector<float>{0, 1}));
  EXPECT_FALSE(first.target.defined());  // no targets in, no targets out
  ASSERT_TRUE(loader.next().has_value());
  EMBER_EXPECT_THROW_MSG(loader.next(), "Failing: example 4 is broken");
  EXPECT_EQ(loader.state().batch, 2);                                     // the failed batch was not consumed
  EMBER_EXPECT_THROW_MSG(loader.next(), "Failing: example 4 is broken");  // a retry fails the same way
}

TEST(DataLoader, BadOptionsAndStates) {
  EMBER_EXPECT_THROW_MSG(DataLoader(ten(), {.batch_size = 0}), "batch_size must be at least 1, got 0");
  EMBER_EXPECT_THROW_MSG(DataLoader(nullptr), "the dataset is null");
  EMBER_EXPECT_THROW_MSG(DataLoader(ten(), {.prefetch = -1}), "prefetch must be non-negative");
  DataLoader loader(ten(), {.batch_size = 4});
  EMBER_EXPECT_THROW_MSG(loader.load_state({1, 0, 4}),
                         "epoch 0 batch 4 is not a position in epochs of 3 batches");
  EMBER_EXPECT_THROW_MSG(TensorDataset(zeros({3, 2}), zeros({4})),
                         "differ in the number of examples (3 vs 4)");
  EMBER_EXPECT_THROW_MSG(ten()->get(10), "index 10 out of range for a dataset of 10 examples");
}

TEST(Collate, StacksEmptyExamples) {
  // Examples with no elements (features of width 0) stack to an empty batch. Found under UBSan:
  // collate handed memcpy the null buffer of an empty tensor.
  Batch b = data::collate({{zeros({0}), zeros({2, 0})}, {zeros({0}), zeros({2, 0})}});
  EXPECT_EQ(b.data.shape(), (Shape{2, 0}));
  EXPECT_EQ(b.target.shape(), (Shape{2, 2, 0}));
  auto ds = std::make_shared<TensorDataset>(zeros({3, 0}), tensor<int64_t>({7, 8, 9}));
  data::DataLoader loader(ds, {.batch_size = 2});
  std::vector<int64_t> targets;
  for (Batch& batch : loader) {
    EXPECT_EQ(batch.data.shape(), (Shape{batch.size(), 0}));
    for (int64_t t : batch.target.to_vector<int64_t>()) targets.push_back(t);
  }
  EXPECT_EQ(targets, (std::vector<int64_t>{7, 8, 9}));
}

TEST(Collate, StacksAndChecksShapes) {
  Batch b = data::collate({{tensor<float>({1, 2}, {2}), scalar_tensor(3, kInt64)},
                           {tensor<float>({4, 5}, {2}), scalar_tensor(6, kInt64)}});
  EXPECT_EQ(b.data.to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(b.target.shape(), (Shape{2}));
  EXPECT_EQ(b.size(), 2);
  // A non-contiguous example is copied in logical order.
  Tensor m = tensor<float>({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(data::collate({{m.t(), Tensor()}}).data.to_vector<float>(), (std::vector<float>{1, 3, 2, 4}));
  EMBER_EXPECT_THROW_MSG(
      data::collate({{zeros({2}), Tensor()}, {zeros({3}), Tensor()}}),
      "collate: example 1's data is float32 [3] on cpu, but example 0's is float32 [2] on cpu");
  EMBER_EXPECT_THROW_MSG(data::collate({{zeros({2}), Tensor()}, {zeros({2}), zeros({1})}}),
                         "example 0 has no target but example 1 has one");
  EMBER_EXPECT_THROW_MSG(data::collate({}), "collate: no examples to stack");
}

// ================================================================================ transforms ====

TEST(Transforms, NormalizePerChannel) {
  // Two channels of 2 values: (x - mean) / std with mean {1, 10}, std {2, 5}.
  Tensor x = tensor<float>({1, 3, 10, 20}, {2, 1, 2});
  data::Normalize n({1.0, 10.0}, {2.0, 5.0});
  EXPECT_TRUE(tensors_close(n(x), tensor<float>({0, 1, 0, 2}, {2, 1, 2}), 1e-7));
  // The same per channel of a batch [N, C, H, W], and one value for any shape.
  Tensor batch = tensor<double>({1, 3, 10, 20, 5, 5, 0, 0}, {2, 2, 1, 2});
  EXPECT_TRUE(tensors_close(n(batch), tensor<double>({0, 1, 0, 2, 2, 2, -2, -2}, {2, 2, 1, 2}), 1e-12));
  EXPECT_TRUE(tensors_close(data::Normalize({0.5}, {0.25})(tensor<float>({0, 1}, {2})),
                            tensor<float>({-2, 2}, {2}), 1e-7));
  EMBER_EXPECT_THROW_MSG(data::Normalize({0, 0}, {1, 0}), "Normalize: std[1] is 0");
  EMBER_EXPECT_THROW_MSG(data::Normalize({0}, {1, 1}), "the same positive number of values, got 1 and 2");
  EMBER_EXPECT_THROW_MSG(n(zeros({3, 2, 2})), "2 channel means need a tensor [..., 2, H, W], got [3,2,2]");
  EMBER_EXPECT_THROW_MSG(n(zeros({2, 2, 2}, kUInt8)), "expected a floating dtype");
  // bfloat16 (every input here exact in it) is normalised in float32 and rounded once: 4.75, 1 and 2
  // are exact, (11 - 10) / 5 = 0.2 rounds to bf16's nearest, 205 / 1024.
  Tensor half = tensor<float>({10.5f, 3, 11, 20}, {2, 1, 2}).to(kBFloat16);
  Tensor normalised = n(half);
  EXPECT_EQ(normalised.dtype(), kBFloat16);
  EXPECT_EQ(normalised.to(kFloat32).to_vector<float>(), (std::vector<float>{4.75f, 1, 205.f / 1024, 2}));
}

TEST(Transforms, NormalizeDividesLikeTorchvision) {
  // torchvision computes tensor.sub_(mean).div_(std) in the input's dtype. Multiplying by a
  // rounded 1 / std instead is one ulp off for many values: (0.1f - 0) * float(1 / 0.3) gives
  // 0.333333343f, where 0.1f / 0.3f is 0.333333313f.
  data::Normalize n({0.4914, 0.0}, {0.2470, 0.3});
  std::vector<float> values;
  for (int i = 0; i < 64; ++i) values.push_back(static_cast<float>(i) * 0.1f - 3.0f);
  Tensor x = tensor<float>(values, {2, 4, 8});
  std::vector<float> got = n(x).to_vector<float>();
  for (int i = 0; i < 64; ++i) {
    const float mean = i < 32 ? 0.4914f : 0.0f, std = i < 32 ? 0.2470f : 0.3f;
    ASSERT_EQ(got[i], (values[i] - mean) / std) << "element " << i;
  }
  // float64 likewise, in double.
  std::vector<double> got64 = n(x.to(kFloat64)).to_vector<double>();
  for (int i = 0; i < 64; ++i) {
    const double mean = i < 32 ? 0.4914 : 0.0, std = i < 32 ? 0.2470 : 0.3;
    ASSERT_EQ(got64[i], (static_cast<double>(values[i]) - mean) / std) << "element " << i;
  }
}

TEST(Transforms, RandomCropWithPadding) {
  Tensor x = tensor<float>({1, 2, 3, 4}, {1, 2, 2});
  // A crop as large as the padded image has one place to go: the zero-padded image itself.
  Tensor padded = data::RandomCrop({4, 4}, 1)(x);
  EXPECT_EQ(padded.to_vector<float>(), (std::vector<float>{0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0}));
  // A 2x2 crop of the padded 4x4: the stream draws top, then left, from [0, 3).
  data::RandomCrop crop({2, 2}, 1);
  for (uint64_t key = 0; key < 20; ++key) {
    data::RandomStream rng(key), twin(key);
    const int64_t top = static_cast<int64_t>(twin.below(3)), left = static_cast<int64_t>(twin.below(3));
    std::vector<float> expected;
    for (int64_t r = top; r < top + 2; ++r)
      for (int64_t c = left; c < left + 2; ++c) expected.push_back(padded.to_vector<float>()[r * 4 + c]);
    EXPECT_EQ(crop.apply(x, rng).to_vector<float>(), expected) << "key " << key;
  }
  // Integer images crop too, and every channel gets the same window.
  Tensor two = tensor<int64_t>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  data::RandomStream rng(11);
  std::vector<int64_t> v = data::RandomCrop({1, 1}, 0).apply(two, rng).to_vector<int64_t>();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1], v[0] + 4);
  EMBER_EXPECT_THROW_MSG(data::RandomCrop({5, 2}, 1)(x),
                         "a 5 x 2 crop does not fit a 2 x 2 image padded by 1");
  EMBER_EXPECT_THROW_MSG(data::RandomCrop({1, 1})(zeros({3})), "at least 2 dimensions, got [3]");
  EMBER_EXPECT_THROW_MSG(data::RandomCrop({0, 1}), "size must be positive");
}

TEST(Transforms, HorizontalFlip) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {1, 2, 3});
  EXPECT_EQ(data::RandomHorizontalFlip(1.0)(x).to_vector<float>(), (std::vector<float>{3, 2, 1, 6, 5, 4}));
  EXPECT_EQ(data::RandomHorizontalFlip(0.0)(x).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(data::RandomHorizontalFlip(1.0)(tensor<uint8_t>({1, 2}, {1, 2})).to_vector<uint8_t>(),
            (std::vector<uint8_t>{2, 1}));
  // p = 0.5 flips exactly when the stream's first uniform draw is below 0.5.
  data::RandomHorizontalFlip half(0.5);
  int flips = 0;
  for (uint64_t key = 0; key < 200; ++key) {
    data::RandomStream rng(key), twin(key);
    const bool flipped = half.apply(x, rng).to_vector<float>()[0] == 3;
    EXPECT_EQ(flipped, twin.uniform() < 0.5);
    flips += flipped;
  }
  EXPECT_GT(flips, 70);
  EXPECT_LT(flips, 130);
  EMBER_EXPECT_THROW_MSG(data::RandomHorizontalFlip(1.5), "p must be in [0, 1], got 1.5");
}

TEST(Transforms, DeterministicUnderManualSeedAndComposable) {
  auto pipeline =
      data::Compose({std::make_shared<data::RandomCrop>(std::array<int64_t, 2>{3, 3}, 2),
                     std::make_shared<data::RandomHorizontalFlip>(),
                     std::make_shared<data::Normalize>(std::vector<double>{1}, std::vector<double>{2})});
  Tensor x = arange(0, 9, 1, kFloat32).view({1, 3, 3});
  auto run = [&](uint64_t seed) {
    manual_seed(seed);
    std::vector<Tensor> out;
    for (int i = 0; i < 10; ++i) out.push_back(pipeline(x));
    return out;
  };
  std::vector<Tensor> a = run(1), b = run(1), c = run(2);
  bool differs = false;
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(equal(a[i], b[i]));
    differs = differs || !equal(a[i], c[i]);
  }
  EXPECT_TRUE(differs);
  EMBER_EXPECT_THROW_MSG(data::Compose({nullptr}), "Compose: transform 0 is null");
}

TEST(RandomStream, UnbiasedBoundedDraws) {
  data::RandomStream rng(123);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 6000; ++i) ++counts[rng.below(6)];
  for (int c : counts) {  // 1000 expected each; 5 standard deviations is about 150
    EXPECT_GT(c, 850);
    EXPECT_LT(c, 1150);
  }
  data::RandomStream one(9);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(one.below(1), 0u);
  double u = data::RandomStream(5).uniform();
  EXPECT_TRUE(u >= 0.0 && u < 1.0);
  EXPECT_EQ(data::RandomStream(77).next_u64(), data::RandomStream(77).next_u64());
  EXPECT_NE(data::mix_keys({1, 2}), data::mix_keys({2, 1}));
  EMBER_EXPECT_THROW_MSG(rng.below(0), "the range [0, n) is empty");
}

}  // namespace
}  // namespace ember::testing
