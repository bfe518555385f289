#pragma once
// What the image-classification experiments (distill_pld.cpp, opl_classify.cpp) share: the CIFAR
// model zoo by name, Fashion-MNIST / CIFAR-100 as the CIFAR models read them, the SGD / AdamW
// recipe and one training loop that prints and logs the test accuracy after every epoch.
// Header-only (every function inline): examples/CMakeLists.txt builds each *.cpp as its own program.
#include <ember/data.h>
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/nn/resnet.h>
#include <ember/optim.h>
#include <ember/train.h>

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "example_util.h"

namespace examples {

// ---- models ----

// The model zoo by name, in the order of nn/resnet.h. Every factory takes the number of classes
// (the WRNs also a dropout rate, left at the reference's 0).
using ModelFactory = std::function<std::shared_ptr<ember::nn::Module>(int64_t num_classes)>;

inline const std::vector<std::pair<std::string, ModelFactory>>& model_zoo() {
  namespace nn = ember::nn;
  static const std::vector<std::pair<std::string, ModelFactory>> zoo = {
      {"resnet8", [](int64_t c) { return nn::resnet8(c); }},
      {"resnet14", [](int64_t c) { return nn::resnet14(c); }},
      {"resnet20", [](int64_t c) { return nn::resnet20(c); }},
      {"resnet32", [](int64_t c) { return nn::resnet32(c); }},
      {"resnet44", [](int64_t c) { return nn::resnet44(c); }},
      {"resnet56", [](int64_t c) { return nn::resnet56(c); }},
      {"resnet110", [](int64_t c) { return nn::resnet110(c); }},
      {"resnet8x4", [](int64_t c) { return nn::resnet8x4(c); }},
      {"resnet32x4", [](int64_t c) { return nn::resnet32x4(c); }},
      {"wrn_16_1", [](int64_t c) { return nn::wrn_16_1(c); }},
      {"wrn_16_2", [](int64_t c) { return nn::wrn_16_2(c); }},
      {"wrn_40_1", [](int64_t c) { return nn::wrn_40_1(c); }},
      {"wrn_40_2", [](int64_t c) { return nn::wrn_40_2(c); }},
  };
  return zoo;
}

inline std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : model_zoo()) names.push_back(name);
  return names;
}

inline std::shared_ptr<ember::nn::Module> make_model(const std::string& name, int64_t num_classes) {
  for (const auto& [n, factory] : model_zoo())
    if (n == name) return factory(num_classes);
  throw std::invalid_argument("unknown model " + name);  // unreachable: CLI11 checked the name
}

// A forward pass that keeps the pooled feature vector `fc` reads (OPL's feature) next to the
// logits. Both model families compute forward(x) as fc(features(x)), so the logits are the very
// numbers forward() gives. Another module gives its forward() and undefined features.
struct ForwardResult {
  ember::Tensor logits;    // [N, num_classes]
  ember::Tensor features;  // [N, D], or undefined
};

inline ForwardResult forward_with_features(ember::nn::Module& model, const ember::Tensor& x) {
  if (auto* m = dynamic_cast<ember::nn::CifarResNet*>(&model)) {
    ember::Tensor f = m->features(x);
    return {m->fc->forward(f), f};
  }
  if (auto* m = dynamic_cast<ember::nn::WideResNet*>(&model)) {
    ember::Tensor f = m->features(x);
    return {m->fc->forward(f), f};
  }
  return {model.forward(x), ember::Tensor()};
}

// ---- data ----

// Fashion-MNIST's pixel statistics on the training set (after scaling to [0, 1]), as in
// fashion_mnist.cpp; and CIFAR-100's per channel (those of the CRD reference code).
inline constexpr double kFashionMean = 0.2860, kFashionStd = 0.3530;
inline const std::vector<double> kCifar100Mean = {0.5071, 0.4867, 0.4408};
inline const std::vector<double> kCifar100Std = {0.2675, 0.2565, 0.2761};

// Turns a Fashion-MNIST image [1, 28, 28] in [0, 1] into what the CIFAR models read: [3, 32, 32],
// normalised. It pads *before* normalising, so the border has the value of the images' own black
// background (padding after would paint a gray frame round every image), and it repeats the gray
// channel as a broadcast view (expand): the loader's stacking of the batch makes the one copy.
// Done per example in the loader's background thread, it overlaps with the training step and keeps
// the dataset at its original 28x28x1 size (a padded, 3-channel copy of it would be 4x larger).
class FashionToCifar : public ember::data::Transform {
 public:
  ember::Tensor apply(const ember::Tensor& x, ember::data::RandomStream& rng) const override {
    const int64_t h = x.size(1), w = x.size(2);
    const ember::Tensor rows = ember::zeros({1, 2, w});             // 2 px above and below
    ember::Tensor padded = ember::cat({rows, x, rows}, /*dim=*/1);  // [1, 32, 28]
    const ember::Tensor cols = ember::zeros({1, h + 4, 2});         // 2 px left and right
    padded = ember::cat({cols, padded, cols}, /*dim=*/2);           // [1, 32, 32]
    return normalize_.apply(padded, rng).expand({3, h + 4, w + 4});
  }

 private:
  ember::data::Normalize normalize_{{kFashionMean}, {kFashionStd}};
};

struct Data {
  std::shared_ptr<const ember::data::Dataset> train, test;
  std::shared_ptr<const ember::data::Transform> train_transform, test_transform;
  int64_t num_classes = 0;
  std::string name;
};

// Only the first `limit` examples (0: all), for quick runs. The tensors are views: nothing is copied.
inline std::shared_ptr<const ember::data::Dataset> first_n(
    const std::shared_ptr<ember::data::TensorDataset>& set, int64_t limit) {
  if (limit <= 0 || limit >= set->size()) return set;
  return std::make_shared<ember::data::TensorDataset>(set->data().narrow(0, 0, limit),
                                                      set->targets().narrow(0, 0, limit));
}

// dataset: "fashion-mnist" (the IDX files in `dir`) or "cifar100" (the binary version in `dir`).
// limit / test_limit: use only the first N training / test images (0: all).
inline Data load_data(const std::string& dataset, const std::string& dir, int64_t limit,
                      int64_t test_limit = 0) {
  namespace data = ember::data;
  Data d;
  if (dataset == "fashion-mnist") {
    d.name = "Fashion-MNIST";
    d.train = first_n(std::make_shared<data::MNIST>(dir, /*train=*/true), limit);
    d.test = first_n(std::make_shared<data::MNIST>(dir, /*train=*/false), test_limit);
    d.train_transform = d.test_transform = std::make_shared<FashionToCifar>();
    d.num_classes = 10;
  } else {  // cifar100, with the papers' augmentation: random crop (4 px padding) and flip
    d.name = "CIFAR-100";
    d.train = first_n(std::make_shared<data::CIFAR100>(dir, /*train=*/true), limit);
    d.test = first_n(std::make_shared<data::CIFAR100>(dir, /*train=*/false), test_limit);
    auto normalize = std::make_shared<data::Normalize>(kCifar100Mean, kCifar100Std);
    d.train_transform = std::make_shared<data::Compose>(std::vector<std::shared_ptr<const data::Transform>>{
        std::make_shared<data::RandomCrop>(std::array<int64_t, 2>{32, 32}, 4),
        std::make_shared<data::RandomHorizontalFlip>(), normalize});
    d.test_transform = normalize;
    d.num_classes = 100;
  }
  return d;
}

// ---- training ----

// The learning-rate schedule of a run, made once its optimizer and the number of batches per
// epoch are known, and stepped after every batch.
using ScheduleFactory = std::function<std::unique_ptr<ember::optim::LRScheduler>(
    ember::optim::Optimizer& optimizer, int64_t batches_per_epoch, int epochs)>;

// Cosine decay from the peak lr to 0 over the whole run, stepped per batch (as in the PLD paper's
// recipe, which anneals over its 250 epochs): the last epochs take small steps and settle.
inline std::unique_ptr<ember::optim::LRScheduler> cosine_schedule(ember::optim::Optimizer& optimizer,
                                                                  int64_t batches_per_epoch, int epochs) {
  return std::make_unique<ember::optim::CosineAnnealingLR>(optimizer, epochs * batches_per_epoch);
}

struct Recipe {
  std::string optimizer = "sgd";  // sgd (momentum 0.9) or adamw
  double lr = 0, weight_decay = 5e-4;
  int64_t batch_size = 64;
  uint64_t seed = 0;
  ScheduleFactory schedule = cosine_schedule;
};

inline std::unique_ptr<ember::optim::Optimizer> make_optimizer(const Recipe& r,
                                                               const std::vector<ember::Tensor>& params) {
  if (r.optimizer == "adamw") {
    ember::optim::AdamWOptions o;
    o.lr = r.lr;
    o.weight_decay = r.weight_decay;
    return std::make_unique<ember::optim::AdamW>(params, o);
  }
  ember::optim::SGDOptions o;
  o.lr = r.lr;
  o.momentum = 0.9;
  o.weight_decay = r.weight_decay;
  return std::make_unique<ember::optim::SGD>(params, o);
}

// ---- the command line both experiments share ----

struct CommonOptions {
  std::string dataset = "fashion-mnist", data_dir, out_dir;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t limit = 0, test_limit = 0;  // 0: every image
};

// Adds the data, size, output and recipe options (--weight-decay, --batch-size, --limit,
// --test-limit, --dataset, --data-dir, --out-dir, --threads, --seed) with the defaults already in
// `o` and `recipe`.
inline void add_common_options(CLI::App& app, CommonOptions& o, Recipe& recipe) {
  app.add_option("--weight-decay", recipe.weight_decay, "weight decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--batch-size", recipe.batch_size, "examples per training step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--limit", o.limit, "train on the first N training images only (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--test-limit", o.test_limit, "evaluate on the first N test images only (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--dataset", o.dataset, "fashion-mnist, or cifar100 (the binary version, from --data-dir)")
      ->check(CLI::IsMember({"fashion-mnist", "cifar100"}))
      ->capture_default_str();
  app.add_option("--data-dir", o.data_dir,
                 "folder with the data (default for fashion-mnist: /usr/share/datasets/fashion-mnist, from "
                 "the Debian package dataset-fashion-mnist; for cifar100: cifar-100-binary)");
  app.add_option("--out-dir", o.out_dir, "where the metrics and checkpoints go")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads for the math")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", recipe.seed, "seeds initialisation and shuffling")->capture_default_str();
}

// After parsing: the data folder's default for the chosen data set.
inline void resolve_data_dir(CommonOptions& o) {
  if (o.data_dir.empty())
    o.data_dir = o.dataset == "fashion-mnist" ? "/usr/share/datasets/fashion-mnist" : "cifar-100-binary";
}

// What a training loss sees of one step: the model's logits, its pooled features (undefined for a
// model without features(), see forward_with_features) and the batch itself (so that a PLD run can
// ask its teacher about the same images).
struct StepOutput {
  const ember::Tensor& logits;
  const ember::Tensor& features;
  const ember::data::Batch& batch;
};
using LossFn = std::function<ember::Tensor(const StepOutput& out)>;

// What run_training measures on the test set after every epoch: the mean cross-entropy and top-1
// accuracy, and any further numbers (`extra`, by name), which go into the printed line and the
// metrics file.
struct TestReport {
  double loss = 0, accuracy = 0;
  std::vector<std::pair<std::string, double>> extra;
};
using Evaluator = std::function<TestReport(ember::nn::Module& model, ember::data::DataLoader& test_loader)>;

// The default evaluator: train::evaluate_classifier (eval mode, no recording, mode restored).
inline TestReport evaluate_accuracy(ember::nn::Module& model, ember::data::DataLoader& test_loader) {
  const ember::train::Evaluation e = ember::train::evaluate_classifier(model, test_loader);
  return {e.loss, e.accuracy, {}};
}

struct RunResult {
  std::vector<double> test_accuracy;  // per epoch
  std::vector<TestReport> tests;      // per epoch
  double seconds = 0;
};

// Trains `model` for `epochs` with `loss_fn` and the recipe, printing and logging what `evaluate`
// measures on the test set after every epoch. Every run builds its loader with the same seed, so
// every run sees the same batches in the same order: runs with the same initial weights differ
// only in their loss.
inline RunResult run_training(const std::string& run, ember::nn::Module& model, int epochs,
                              const LossFn& loss_fn, const Data& d, const Recipe& recipe,
                              ember::train::MetricsLogger& metrics,
                              const Evaluator& evaluate = evaluate_accuracy) {
  namespace data = ember::data;
  namespace train = ember::train;
  const auto start = std::chrono::steady_clock::now();
  data::DataLoader train_loader(d.train, {.batch_size = recipe.batch_size,
                                          .shuffle = true,
                                          .seed = recipe.seed,
                                          .transform = d.train_transform});
  data::DataLoader test_loader(d.test, {.batch_size = 500, .transform = d.test_transform});
  auto optimizer = make_optimizer(recipe, model.parameters());
  std::unique_ptr<ember::optim::LRScheduler> schedule =
      recipe.schedule(*optimizer, train_loader.num_batches(), epochs);
  model.train();

  RunResult result;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    train::ProgressBar bar(train_loader.num_batches(), fmt::format("{} epoch {}/{}", run, epoch, epochs));
    int64_t correct = 0, seen = 0;
    for (data::Batch& batch : train_loader) {
      const ForwardResult out = forward_with_features(model, batch.data);
      ember::Tensor loss = loss_fn(StepOutput{out.logits, out.features, batch});
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      schedule->step();
      correct += train::count_correct(out.logits.detach(), batch.target);
      seen += batch.size();
      bar.update(batch.size(), loss.item<double>());
    }
    bar.finish();
    const double train_loss = bar.running_loss(), train_accuracy = static_cast<double>(correct) / seen;
    const TestReport test = evaluate(model, test_loader);
    const double epoch_seconds = seconds_since(epoch_start);
    std::string extra_text;
    for (const auto& [name, value] : test.extra) extra_text += fmt::format(", {} {:.4f}", name, value);
    std::cout << fmt::format(
        "{} epoch {}/{}: train loss {:.4f}, train accuracy {:.2f}%, test loss {:.4f}, "
        "test accuracy {:.2f}%{} ({:.1f} s)\n",
        run, epoch, epochs, train_loss, 100 * train_accuracy, test.loss, 100 * test.accuracy, extra_text,
        epoch_seconds);
    train::MetricRow row{{"run", run},
                         {"epoch", epoch},
                         {"train_loss", train_loss},
                         {"train_accuracy", train_accuracy},
                         {"test_loss", test.loss},
                         {"test_accuracy", test.accuracy}};
    for (const auto& [name, value] : test.extra) row.emplace_back(name, value);
    row.emplace_back("lr", schedule->get_last_lr()[0]);
    row.emplace_back("seconds", epoch_seconds);
    metrics.log(row);
    result.test_accuracy.push_back(test.accuracy);
    result.tests.push_back(test);
  }
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace examples
