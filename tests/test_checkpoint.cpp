// safetensors checkpoints: round trips of every dtype, the exact byte layout, files written by
// PyTorch (tests/fixtures/make_torch_models.py), strict rejection of malformed and truncated
// files, and atomic writes that leave the previous file intact when writing fails.
#include <ember/checkpoint.h>
#include <ember/data.h>
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/optim.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "harness.h"
#include "nn_test_util.h"

namespace ember::testing {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test, removed afterwards.
class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("ember_ckpt_{}_{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  // Writes a file: 8-byte length (of `header`, unless overridden), header, data.
  std::string raw_file(const std::string& header, const std::string& data = "",
                       std::optional<uint64_t> length = std::nullopt) const {
    std::string p = path("raw.safetensors");
    std::ofstream out(p, std::ios::binary);
    uint64_t n = length.value_or(header.size());
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
    out << header << data;
    return p;
  }
  std::string bytes(const std::string& p) const {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path dir_;
};

TEST_F(Checkpoint, RoundTripsEveryDtype) {
  std::map<std::string, Tensor> t{
      {"f32", tensor<float>({1.5f, -2.25f, 3, 4, 5, 6}, {2, 3})},
      {"f64", scalar_tensor(3.141592653589793, DType::float64)},
      {"i64", tensor<int64_t>({-1, 0, int64_t{1} << 40, 7})},
      {"i32", tensor<int32_t>({1, -2, 3, -4}, {2, 2})},
      {"u8", tensor<uint8_t>({0, 128, 255})},
      {"bool", tensor<bool>({true, false, true, true, false})},
      {"empty", zeros({0, 3})},
      {"strided", tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).t()},  // written in logical order
  };
  save_safetensors(path("all.safetensors"), t, {{"note", "hello"}, {"epoch", "3"}});
  StateDict back = load_safetensors(path("all.safetensors"));
  ASSERT_EQ(back.tensors.size(), t.size());
  for (const auto& [name, value] : t) {
    const Tensor& got = back.tensors.at(name);
    EXPECT_EQ(got.dtype(), value.dtype()) << name;
    EXPECT_EQ(got.shape(), value.shape()) << name;
    EXPECT_TRUE(equal(got, value)) << name;
  }
  EXPECT_EQ(back.metadata, (std::map<std::string, std::string>{{"note", "hello"}, {"epoch", "3"}}));
  EXPECT_EQ(files(), std::vector<std::string>{"all.safetensors"});  // no temporary left behind
}

TEST_F(Checkpoint, ExactByteLayout) {
  save_safetensors(path("one.safetensors"), {{"b", tensor<uint8_t>({7})}, {"a", tensor<float>({1.0f})}});
  // Larger elements first (a: F32 at 0..4, then b: U8 at 4..5); keys in the JSON are sorted;
  // the header is padded with spaces to a multiple of 8 bytes.
  std::string json =
      R"({"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]},"b":{"data_offsets":[4,5],"dtype":"U8","shape":[1]}})";
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string expected(8, '\0');
  for (int i = 0; i < 8; ++i) expected[i] = static_cast<char>(json.size() >> (8 * i));
  expected += json;
  expected += std::string("\x00\x00\x80\x3f\x07", 5);  // 1.0f little-endian, then 7
  EXPECT_EQ(bytes(path("one.safetensors")), expected);
}

TEST_F(Checkpoint, LoadsAFileWrittenByPyTorch) {
  StateDict f = load_safetensors(fixture("torch_cnn.safetensors"));
  EXPECT_EQ(f.metadata.at("format"), "pt");
  auto model = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(2, 3, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(3),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(12, 4));
  model->to(DType::float64);
  model->load_state_dict(f.extract("model.").tensors);  // strict: PyTorch's keys are exactly ours
  auto bn = model->at<nn::BatchNorm2d>(1);
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 2);
  EXPECT_FALSE(equal(bn->running_var, ones({3}, DType::float64)));
  model->eval();
  EXPECT_TRUE(tensors_close(model->forward(f.tensors.at("input")), f.tensors.at("output_eval"), 1e-10));
}

TEST_F(Checkpoint, ModuleSaveLoad) {
  manual_seed(61);
  auto a = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4),
                                            std::make_shared<nn::BatchNorm1d>(4));
  a->forward(randn({5, 3}));  // move the running statistics away from their defaults
  save(*a, path("model.safetensors"));
  StateDict raw = load_safetensors(path("model.safetensors"));
  EXPECT_EQ(raw.metadata.at("format"), "pt");
  EXPECT_EQ(raw.tensors.size(), 7u);
  EXPECT_EQ(raw.tensors.at("1.num_batches_tracked").dtype(), DType::int64);
  EXPECT_EQ(raw.tensors.at("1.num_batches_tracked").shape(), Shape{});
  auto b = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4),
                                            std::make_shared<nn::BatchNorm1d>(4));
  load(*b, path("model.safetensors"));
  for (const auto& [n, t] : a->state_dict()) EXPECT_TRUE(equal(t, b->state_dict().at(n))) << n;
  auto c = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4));
  EMBER_EXPECT_THROW_MSG(load(*c, path("model.safetensors")),
                         "load(module): " + path("model.safetensors") +
                             ": Sequential.load_state_dict: missing keys []; "
                             "unexpected keys [1.bias, 1.num_batches_tracked");
  load(*c, path("model.safetensors"), /*strict=*/false);
  EXPECT_TRUE(equal(c->at<nn::Linear>(0)->weight, a->at<nn::Linear>(0)->weight));
}

TEST_F(Checkpoint, OptimizerAndSchedulerResumeFromFiles) {
  manual_seed(62);
  auto make = [] { return std::make_shared<nn::Linear>(4, 2); };
  auto net = make();
  optim::AdamW opt(net->parameters(), optim::AdamWOptions{0.05});
  optim::StepLR sched(opt, 2, 0.5);
  Tensor x = randn({6, 4}), y = randn({6, 2});
  auto step = [&](nn::Linear& m, optim::Optimizer& o, optim::LRScheduler& s) {
    o.zero_grad();
    Tensor loss = (m.forward(x) - y).square().mean();
    loss.backward();
    o.step();
    s.step();
    return loss.item<float>();
  };
  for (int i = 0; i < 3; ++i) step(*net, opt, sched);
  save(*net, path("m.safetensors"));
  save(opt, path("o.safetensors"));
  save(sched, path("s.safetensors"));

  auto net2 = make();
  optim::AdamW opt2(net2->parameters());
  optim::StepLR sched2(opt2, 2, 0.5);
  load(*net2, path("m.safetensors"));
  load(opt2, path("o.safetensors"));
  load(sched2, path("s.safetensors"));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(step(*net, opt, sched), step(*net2, opt2, sched2)) << "step " << i;  // bit for bit
  EXPECT_TRUE(equal(net->weight, net2->weight));
  optim::SGD sgd(net2->parameters());
  EMBER_EXPECT_THROW_MSG(load(sgd, path("o.safetensors")),
                         "load(optimizer): " + path("o.safetensors") +
                             ": SGD.load_state_dict: the state is for a AdamW optimizer");
}

// Everything a training run needs to continue: a model with Dropout (so the global RNG matters), Adam
// with a per-batch StepLR, and a DataLoader with a seeded shuffle over a small in-memory dataset.
struct TrainingRun {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::Adam> opt;
  std::unique_ptr<optim::StepLR> sched;
  std::unique_ptr<data::DataLoader> loader;

  // `init_seed` seeds the fresh weights; the loader's shuffle seed is fixed (a resumed run reloads it).
  explicit TrainingRun(uint64_t init_seed) {
    manual_seed(init_seed);
    model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(4, 8), std::make_shared<nn::ReLU>(),
                                             std::make_shared<nn::Dropout>(0.3),
                                             std::make_shared<nn::Linear>(8, 3));
    opt = std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions{0.05});
    sched = std::make_unique<optim::StepLR>(*opt, 3, 0.5);
    // 20 examples in batches of 6: 4 batches per epoch, the last one of 2.
    std::vector<float> x;
    std::vector<int64_t> y;
    for (int i = 0; i < 20; ++i) {
      for (int f = 0; f < 4; ++f) x.push_back(static_cast<float>(std::sin(1.7 * i + 0.9 * f)));
      y.push_back(i % 3);
    }
    auto dataset = std::make_shared<data::TensorDataset>(tensor<float>(x, {20, 4}), tensor<int64_t>(y, {20}));
    loader = std::make_unique<data::DataLoader>(
        dataset, data::DataLoaderOptions{.batch_size = 6, .shuffle = true, .seed = 17});
  }

  float step() {
    std::optional<data::Batch> batch = loader->next();
    if (!batch) batch = loader->next();  // the end of an epoch: the next call starts the next one
    opt->zero_grad();
    Tensor loss = losses::cross_entropy(model->forward(batch->data), batch->target);
    loss.backward();
    opt->step();
    sched->step();
    return loss.item<float>();
  }

  // One file: model, optimizer, scheduler, data loader position and the global RNG state (as exact
  // decimal text, like every other scalar in a checkpoint).
  void save_all(const std::string& path) const {
    StateDict all;
    all.insert("model.", {model->state_dict(), {}});
    all.insert("optim.", opt->state_dict());
    all.insert("sched.", sched->state_dict());
    all.insert("data.", loader->state_dict());
    const GeneratorState rng = get_rng_state();
    all.metadata["rng.seed"] = std::to_string(rng.seed);
    all.metadata["rng.offset"] = std::to_string(rng.offset);
    save_safetensors(path, all);
  }
  void load_all(const std::string& path, bool restore_rng = true) {
    const StateDict all = load_safetensors(path);
    model->load_state_dict(all.extract("model.").tensors);
    opt->load_state_dict(all.extract("optim."));
    sched->load_state_dict(all.extract("sched."));
    loader->load_state_dict(all.extract("data."));
    if (restore_rng)
      set_rng_state({std::stoull(all.metadata.at("rng.seed")), std::stoull(all.metadata.at("rng.offset"))});
  }
};

TEST_F(Checkpoint, FullTrainingStateResumesBitForBit) {
  constexpr int kSteps = 11, kStop = 6;  // stop in the middle of the second epoch
  std::vector<float> uninterrupted;
  {
    TrainingRun run(70);
    for (int i = 0; i < kSteps; ++i) uninterrupted.push_back(run.step());
  }

  std::vector<float> resumed;
  {
    TrainingRun run(70);
    for (int i = 0; i < kStop; ++i) resumed.push_back(run.step());
    EXPECT_EQ(run.loader->state(), (data::DataLoaderState{17, 1, 2}));
    run.save_all(path("all.safetensors"));
  }
  // Fresh objects with other weights and a moved generator: everything must come from the file.
  TrainingRun fresh(71);
  randn({5});
  fresh.load_all(path("all.safetensors"));
  EXPECT_EQ(fresh.sched->last_epoch(), kStop);
  for (int i = kStop; i < kSteps; ++i) resumed.push_back(fresh.step());
  EXPECT_EQ(resumed, uninterrupted);  // bit for bit

  // The RNG is part of the state: without it the dropout masks, and so the losses, differ.
  TrainingRun no_rng(71);
  no_rng.load_all(path("all.safetensors"), /*restore_rng=*/false);
  std::vector<float> drifted(uninterrupted.begin(), uninterrupted.begin() + kStop);
  for (int i = kStop; i < kSteps; ++i) drifted.push_back(no_rng.step());
  EXPECT_NE(drifted, uninterrupted);
}

TEST_F(Checkpoint, RejectsMalformedHeaders) {
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\0');
  auto expect_bad = [&](const std::string& file, const std::string& needle) {
    EMBER_EXPECT_THROW_MSG(load_safetensors(file), "load_safetensors: " + file + ": " + needle);
  };
  // Sanity: the well-formed version of these files loads.
  EXPECT_EQ(load_safetensors(raw_file("{" + ok_entry + "}", data8)).tensors.at("a").shape(), Shape{2});

  {
    std::ofstream(path("short.safetensors"), std::ios::binary) << "abc";
    expect_bad(path("short.safetensors"), "file is 3 bytes, too short for the 8-byte header length");
  }
  expect_bad(raw_file("{}", "", 1000), "header length 1000 runs past the end of the file (10 bytes)");
  expect_bad(raw_file("{}", "", uint64_t{1} << 62),
             "header length 4611686018427387904 exceeds the 100000000-byte limit");
  expect_bad(raw_file("{", ""), "header length 1 is too small");
  expect_bad(raw_file("{\"a\": [1,", ""), "header is not valid JSON");
  expect_bad(raw_file("[1, 2]", ""), "header is not a JSON object");
  expect_bad(raw_file(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "1234"),
             "tensor 'a' has dtype F16, which ember does not support");
  expect_bad(raw_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", data8),
             "tensor 'a' has no dtype string");
  expect_bad(raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8),
             "tensor 'a' has shape [-2], which is not a list of non-negative integers");
  // Found by fuzzing: printing a deeply nested value overflowed the stack (dump() recurses).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_bad(raw_file(R"({"a":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,8]}})", data8),
             "tensor 'a' has shape (an array of 1 values, not all numbers), which is not a list");
  // Zero bytes (a dim is 0), but the other dims' product, the largest stride, overflows int64. The
  // error used to come from the tensor constructor without the file's name.
  expect_bad(raw_file(R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})", ""),
             "tensor 'a' has shape [0,4611686018427387904,4], which has more elements than a 64-bit count");
  expect_bad(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data8),
             "tensor 'a' needs data_offsets [begin, end]");
  expect_bad(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}})", data8),
             "tensor 'a' has data_offsets [4, 0] with begin after end");
  expect_bad(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data8),
             "tensor 'a' has data_offsets [8, 16] beyond the 8-byte data section");
  expect_bad(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
             "tensor 'a' (F32 x [3]) needs 12 bytes but data_offsets [0, 8] span 8");
  expect_bad(raw_file(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", data8),
             "tensor 'a' of shape [4611686018427387904] is too large");
  expect_bad(raw_file("{" + ok_entry + R"(,"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", data8),
             "tensors 'a' and 'b' overlap (data_offsets [0, 8] and [4, 8])");
  expect_bad(raw_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", data8),
             "bytes [0, 4) of the data section belong to no tensor");
  expect_bad(raw_file("{" + ok_entry + "}", data8 + "xyz"),
             "bytes [8, 11) of the data section belong to no tensor");
  expect_bad(raw_file("{" + ok_entry + "," + ok_entry + "}", data8), "header names 'a' twice");
  expect_bad(raw_file(R"({"__metadata__":{"k":1}})", ""), "__metadata__ entry 'k' is not a string");
  expect_bad(
      raw_file(R"({"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", std::string("\x01\x02", 2)),
      "BOOL tensor 'a' holds byte 2 at element 1");
  expect_bad(path("missing.safetensors"), "cannot open");
  expect_bad(dir_.string(), "not a regular file");
}

TEST_F(Checkpoint, EveryTruncationIsAnError) {
  save_safetensors(path("full.safetensors"), {{"w", tensor<float>({1, 2, 3})}, {"n", tensor<int64_t>({4})}});
  std::string full = bytes(path("full.safetensors"));
  for (size_t cut = 0; cut < full.size(); ++cut) {
    {
      std::ofstream out(path("cut.safetensors"), std::ios::binary);
      out.write(full.data(), static_cast<std::streamsize>(cut));
    }
    EMBER_EXPECT_THROW_MSG(load_safetensors(path("cut.safetensors")),
                           "load_safetensors: " + path("cut.safetensors"))
        << "cut at " << cut;
  }
}

TEST_F(Checkpoint, FailedWriteLeavesThePreviousFileIntact) {
  const std::string target = path("ckpt.safetensors");
  save_safetensors(target, {{"w", tensor<float>({1, 2, 3})}});
  const std::string before = bytes(target);

  // 1. An error found before writing (an undefined tensor).
  EMBER_EXPECT_THROW_MSG(save_safetensors(target, {{"w", Tensor()}}), "tensor 'w' is undefined");
  EXPECT_EQ(bytes(target), before);

  // 2. The disk "fills up" mid-write: a 4 KiB file-size limit makes writing 64 KiB fail.
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // report EFBIG instead of killing the process
  struct rlimit small = old;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  std::string message;
  try {
    save_safetensors(target, {{"big", zeros({16384})}});
  } catch (const Error& e) {
    threw = true;
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_NE(message.find("save_safetensors: " + target), std::string::npos) << message;
  EXPECT_EQ(bytes(target), before);
  EXPECT_EQ(files(), std::vector<std::string>{"ckpt.safetensors"});  // the temporary file was removed
  EXPECT_TRUE(equal(load_safetensors(target).tensors.at("w"), tensor<float>({1, 2, 3})));

  // 3. A folder that does not exist.
  EMBER_EXPECT_THROW_MSG(save_safetensors(path("nowhere/x.safetensors"), {{"w", zeros({1})}}),
                         "cannot create the temporary file");

  // A successful save replaces the file.
  save_safetensors(target, {{"w", tensor<float>({9})}});
  EXPECT_TRUE(equal(load_safetensors(target).tensors.at("w"), tensor<float>({9})));
  EXPECT_EQ(files(), std::vector<std::string>{"ckpt.safetensors"});
}

TEST_F(Checkpoint, RejectsBadNamesOnSave) {
  EMBER_EXPECT_THROW_MSG(save_safetensors(path("x"), {{"__metadata__", zeros({1})}}),
                         "cannot be used as a tensor name");
  EMBER_EXPECT_THROW_MSG(save_safetensors(path("x"), {{"", zeros({1})}}), "cannot be used as a tensor name");
  // JSON needs UTF-8: a name or a metadata string that is not used to escape as nlohmann's
  // json::type_error (not an ember::Error, and without the file's name).
  EMBER_EXPECT_THROW_MSG(
      save_safetensors(path("x"), {{std::string("w\xff"), zeros({1})}}),
      "save_safetensors: " + path("x") + ": a tensor name or metadata string is not valid UTF-8");
  EMBER_EXPECT_THROW_MSG(
      save_safetensors(path("x"), {{"w", zeros({1})}}, {{"note", std::string("caf\xc3")}}),
      "save_safetensors: " + path("x") + ": a tensor name or metadata string is not valid UTF-8");
  EXPECT_TRUE(files().empty());
}

TEST(StateDictPrefixes, InsertAndExtract) {
  StateDict model{{{"fc.weight", ones({2})}}, {}};
  StateDict optim{{{"state.0.step", zeros({})}}, {{"optimizer", "SGD"}}};
  StateDict all;
  all.insert("model.", model);
  all.insert("optim.", optim);
  EXPECT_EQ(all.tensors.size(), 2u);
  EXPECT_EQ(all.metadata.at("optim.optimizer"), "SGD");
  StateDict back = all.extract("optim.");
  EXPECT_EQ(back.metadata.at("optimizer"), "SGD");
  EXPECT_EQ(back.tensors.count("state.0.step"), 1u);
  EXPECT_TRUE(all.extract("model.").tensors.at("fc.weight").is_same(model.tensors.at("fc.weight")));
  EMBER_EXPECT_THROW_MSG(all.insert("model.", model), "tensor key 'model.fc.weight' is already present");
}

}  // namespace
}  // namespace ember::testing
