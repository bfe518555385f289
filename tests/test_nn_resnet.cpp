// CifarResNet and WideResNet (CRD's CIFAR zoo) against PyTorch: parameter counts, the state dict
// names and shapes, and logits with identical weights in eval and train mode. The PyTorch values
// come from tests/fixtures/make_resnet_reference.py (resnet_reference.json), whose models were
// checked to give the same keys and bit-identical outputs as RepDistiller's models/resnet.py and
// models/wrn.py.
#include <ember/losses.h>
#include <ember/nn/resnet.h>
#include <ember/optim.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "nn_test_util.h"

namespace ember::testing {
namespace {

using json = nlohmann::json;

const json& reference() {
  static const json data = read_json_fixture("resnet_reference.json");
  return data;
}

int64_t count_parameters(const nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters()) n += p.numel();
  return n;
}

// The fixture script's fill_value(): element i of state entry k (in sorted-name order).
double fill_value(const std::string& name, const Shape& shape, size_t k, int64_t i) {
  double s = std::sin(2.3 * static_cast<double>(i) + 0.7 * static_cast<double>(k) + 0.1);
  auto ends_with = [&](const std::string& suffix) { return name.ends_with(suffix); };
  if (shape.size() >= 2) {
    int64_t fan_in = 1;
    for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
    return s * std::sqrt(3.0 / static_cast<double>(fan_in));
  }
  if (ends_with("running_var")) return 1.0 + 0.25 * s;
  if (ends_with("running_mean") || ends_with("bias")) return 0.1 * s;
  return 1.0 + 0.2 * s;
}

// Sets every parameter and buffer as the fixture script's fill() does. state_dict() is a sorted
// map, the same order as Python's sorted() on these ASCII names.
void fill(nn::Module& model) {
  size_t k = 0;
  for (const auto& [name, t] : model.state_dict()) {
    if (!name.ends_with("num_batches_tracked")) {
      std::vector<double> v(static_cast<size_t>(t.numel()));
      for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = fill_value(name, t.shape(), k, i);
      set_values(t, v);
    }
    ++k;
  }
}

Tensor make_input(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = std::sin(1.7 * static_cast<double>(i) + 0.5);
  return tensor<double>(v, shape).to(DType::float32);
}

double max_abs_diff(const Tensor& actual, const json& expected) {
  std::vector<double> a = actual.to_vector<double>();
  EXPECT_EQ(a.size(), expected.size());
  double gap = 0;
  for (size_t i = 0; i < a.size() && i < expected.size(); ++i)
    gap = std::max(gap, std::abs(a[i] - expected[i].get<double>()));
  return std::isnan(gap) ? INFINITY : gap;
}

// ---- construction ----

TEST(CifarResNet, ParameterCountsMatchPyTorch) {
  // Counted from the PyTorch models with num_classes = 100 (make_resnet_reference.py prints them;
  // the fixture repeats them under "param_counts").
  const std::vector<std::pair<std::string, std::pair<std::shared_ptr<nn::Module>, int64_t>>> cases = {
      {"resnet8", {nn::resnet8(), 83892}},         {"resnet14", {nn::resnet14(), 181108}},
      {"resnet20", {nn::resnet20(), 278324}},      {"resnet32", {nn::resnet32(), 472756}},
      {"resnet44", {nn::resnet44(), 667188}},      {"resnet56", {nn::resnet56(), 861620}},
      {"resnet110", {nn::resnet110(), 1736564}},   {"resnet8x4", {nn::resnet8x4(), 1233540}},
      {"resnet32x4", {nn::resnet32x4(), 7433860}}, {"wrn_16_1", {nn::wrn_16_1(), 180916}},
      {"wrn_16_2", {nn::wrn_16_2(), 703284}},      {"wrn_40_1", {nn::wrn_40_1(), 569780}},
      {"wrn_40_2", {nn::wrn_40_2(), 2255156}},
  };
  for (const auto& [name, c] : cases) {
    EXPECT_EQ(count_parameters(*c.first), c.second) << name;
    EXPECT_EQ(c.second, reference()["param_counts"][name].get<int64_t>()) << name;
  }
  EXPECT_EQ(count_parameters(*nn::resnet20(10)), 278324 - 90 * 65) << "fc shrinks to 64 -> 10";
}

// Names and shapes, in order: named_parameters() / named_buffers() in PyTorch's registration
// order (which also fixes the optimizer's parameter order), and the whole state dict key set.
TEST(CifarResNet, StateDictNamesMatchPyTorch) {
  const std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> models = {
      {"resnet20", nn::resnet20()}, {"resnet8x4", nn::resnet8x4()}, {"wrn_16_2", nn::wrn_16_2()}};
  for (const auto& [name, model] : models) {
    SCOPED_TRACE(name);
    const json& ref = reference()["structure"][name];
    auto check = [&](const nn::NamedTensors& ours, const json& theirs) {
      ASSERT_EQ(ours.size(), theirs.size());
      for (size_t i = 0; i < ours.size(); ++i) {
        EXPECT_EQ(ours[i].first, theirs[i][0].get<std::string>()) << "entry " << i;
        EXPECT_EQ(ours[i].second.shape(), theirs[i][1].get<Shape>()) << ours[i].first;
      }
    };
    check(model->named_parameters(), ref["parameters"]);
    check(model->named_buffers(), ref["buffers"]);
    std::vector<std::string> keys;
    for (const auto& [key, t] : model->state_dict()) keys.push_back(key);
    EXPECT_EQ(keys, ref["state_dict"].get<std::vector<std::string>>());
  }
}

TEST(CifarResNet, InitFollowsReference) {
  manual_seed(0);
  auto net = nn::resnet32x4();
  // kaiming_normal(fan_out, relu): std sqrt(2 / (256 * 9)) on the largest conv (590k draws).
  Tensor w = net->layer3->at<nn::CifarBasicBlock>(1)->conv2->weight.to(DType::float64);
  double std = std::sqrt((w * w).mean().item<double>());
  EXPECT_NEAR(std / std::sqrt(2.0 / (256 * 9)), 1.0, 0.01);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 1e-4);
  EXPECT_TRUE(equal(net->bn1->weight, ones_like(net->bn1->weight)));
  EXPECT_FALSE(equal(net->fc->bias, zeros_like(net->fc->bias))) << "resnet.py keeps Linear's default bias";
  auto wrn = nn::wrn_16_2();
  EXPECT_TRUE(equal(wrn->fc->bias, zeros_like(wrn->fc->bias))) << "wrn.py zeroes the fc bias";
  EXPECT_EQ(wrn->block2->layer->at<nn::WideBasicBlock>(0)->conv_shortcut->weight.shape(),
            (Shape{64, 32, 1, 1}));
  EXPECT_EQ(wrn->block2->layer->at<nn::WideBasicBlock>(1)->conv_shortcut, nullptr);
}

// ---- forward parity with PyTorch ----

void expect_parity(nn::Module& model, const std::function<Tensor(const Tensor&)>& features,
                   const std::string& name) {
  const json& ref = reference()["parity"][name];
  fill(model);
  Tensor x = make_input({2, 3, 32, 32});
  NoGradGuard no_grad;
  model.eval();
  double eval_gap = max_abs_diff(model.forward(x), ref["eval_logits"]);
  double feat_gap = max_abs_diff(features(x), ref["eval_features"]);
  model.train();
  double train_gap = max_abs_diff(model.forward(x), ref["train_logits"]);
  // The running statistics the train pass updated (momentum 0.1, unbiased variance).
  auto state = model.state_dict();
  std::string bn = ref["last_bn"].get<std::string>();
  double stats_gap = std::max(max_abs_diff(state.at(bn + ".running_mean"), ref["last_bn_running_mean"]),
                              max_abs_diff(state.at(bn + ".running_var"), ref["last_bn_running_var"]));
  EXPECT_EQ(state.at(bn + ".num_batches_tracked").item<int64_t>(), 1);
  std::cout << name << " max |ember - torch|: eval logits " << eval_gap << ", eval features " << feat_gap
            << ", train logits " << train_gap << ", running stats " << stats_gap << "\n";
  EXPECT_LT(eval_gap, 1e-4);
  EXPECT_LT(feat_gap, 1e-4);
  EXPECT_LT(train_gap, 1e-4);
  EXPECT_LT(stats_gap, 1e-4);
}

TEST(CifarResNet, Resnet8MatchesPyTorch) {
  auto net = nn::resnet8();
  expect_parity(
      *net, [&](const Tensor& x) { return net->features(x); }, "resnet8");
}

TEST(WideResNet, Wrn16x1MatchesPyTorch) {
  auto net = nn::wrn_16_1();
  expect_parity(
      *net, [&](const Tensor& x) { return net->features(x); }, "wrn_16_1");
}

// ---- features, backward, training ----

TEST(CifarResNet, FeaturesFeedTheClassifier) {
  manual_seed(1);
  Tensor x = randn({3, 3, 32, 32});
  NoGradGuard no_grad;
  auto net = nn::resnet8(10);
  net->eval();
  Tensor f = net->features(x);
  EXPECT_EQ(f.shape(), (Shape{3, 64}));
  EXPECT_TRUE(equal(net->fc->forward(f), net->forward(x)));
  EXPECT_EQ(net->forward(x).shape(), (Shape{3, 10}));
  auto wrn = nn::wrn_16_2(7);
  wrn->eval();
  Tensor g = wrn->features(x);
  EXPECT_EQ(g.shape(), (Shape{3, 128}));
  EXPECT_TRUE(equal(wrn->fc->forward(g), wrn->forward(x)));
  // Post-ReLU pooled features are non-negative (OPL relies on it: its three variants then agree).
  EXPECT_GE(f.min().item<double>(), 0.0);
  EXPECT_GE(g.min().item<double>(), 0.0);
}

// One backward gives a finite, non-zero gradient to every parameter, and a few SGD steps lower the
// loss on a fixed batch (a float64 gradcheck through the whole net would be too slow).
template <class Net>
void expect_trains(std::shared_ptr<Net> net) {
  manual_seed(3);
  Tensor x = randn({8, 3, 32, 32}), y = randint(0, 10, {8});
  net->train();
  losses::cross_entropy(net->forward(x), y).backward();
  for (const auto& [name, p] : net->named_parameters()) {
    Tensor g = p.grad();
    ASSERT_TRUE(g.defined()) << name;
    EXPECT_TRUE(isfinite(g).all().item<bool>()) << name;
    EXPECT_GT(g.abs().max().item<double>(), 0.0) << name;
  }
  optim::SGD opt(net->parameters(), {0.05, 0.9});
  double first = 0, last = 0;
  for (int step = 0; step < 6; ++step) {
    net->zero_grad();
    Tensor loss = losses::cross_entropy(net->forward(x), y);
    (step == 0 ? first : last) = loss.item<double>();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, first);
}

TEST(CifarResNet, BackwardAndTrainStep) { expect_trains(nn::resnet8(10)); }
TEST(WideResNet, BackwardAndTrainStep) { expect_trains(nn::wrn_16_1(10)); }

TEST(WideResNet, DropoutOnlyInTraining) {
  manual_seed(4);
  Tensor x = randn({2, 3, 32, 32});
  auto plain = nn::wrn_16_1(10), dropped = nn::wrn_16_1(10, 0.3);
  dropped->load_state_dict(plain->state_dict());
  NoGradGuard no_grad;
  plain->eval();
  dropped->eval();
  EXPECT_TRUE(equal(plain->forward(x), dropped->forward(x)));
  plain->train();
  dropped->train();
  EXPECT_FALSE(equal(plain->forward(x), dropped->forward(x)));
}

// ---- errors ----

TEST(CifarResNet, Errors) {
  EMBER_EXPECT_THROW_MSG(nn::CifarResNet(21, {16, 16, 32, 64}), "depth must be 6n + 2");
  EMBER_EXPECT_THROW_MSG(nn::CifarResNet(2, {16, 16, 32, 64}), "got 2");
  EMBER_EXPECT_THROW_MSG(nn::WideResNet(18, 2), "depth must be 6n + 4");
  EMBER_EXPECT_THROW_MSG(nn::WideResNet(4, 1), "got 4");
  EMBER_EXPECT_THROW_MSG(nn::WideResNet(16, 0), "widen_factor");
  EMBER_EXPECT_THROW_MSG(nn::wrn_16_1(10, 1.0), "dropout");
  EMBER_EXPECT_THROW_MSG(nn::resnet8()->forward(zeros({1, 1, 32, 32})), "Conv2d");
  EMBER_EXPECT_THROW_MSG(nn::wrn_16_1()->forward(zeros({1, 4, 32, 32})), "Conv2d");
}

// ---- timing (run by hand: test_nn_resnet --gtest_also_run_disabled_tests --gtest_filter='*Time*') ----

TEST(CifarResNet, DISABLED_TimeResnet20OneThread) {
  set_num_threads(1);
  manual_seed(0);
  auto net = nn::resnet20();
  Tensor x = randn({64, 3, 32, 32}), y = randint(0, 100, {64});
  std::vector<double> fwd, total;
  for (int i = 0; i < 8; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    Tensor loss = losses::cross_entropy(net->forward(x), y);
    auto t1 = std::chrono::steady_clock::now();
    loss.backward();
    auto t2 = std::chrono::steady_clock::now();
    fwd.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    total.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
  }
  auto median = [](std::vector<double> v) {  // of the runs after two warm-ups
    std::sort(v.begin() + 2, v.end());
    return v[2 + (v.size() - 2) / 2];
  };
  std::cout << "ember resnet20 [64,3,32,32], 1 thread: forward " << median(fwd) << " ms, forward+backward "
            << median(total) << " ms (median of 6)\n";
}

}  // namespace
}  // namespace ember::testing
