// The experiment of the PLD paper (Plackett-Luce distillation, docs/losses/pld.md) in miniature,
// in one command: train a teacher, then train the same student twice from the same initial
// weights on the same batches, once with cross-entropy alone (the baseline) and once with PLD from
// the frozen teacher's logits, and compare their test accuracies.
//
//   ./distill_pld                                   # resnet20 -> resnet8 on Fashion-MNIST
//   ./distill_pld --limit 6000 --teacher-epochs 2 --student-epochs 2 --threads 2   # a quick look
//   ./distill_pld --dataset cifar100 --data-dir cifar-100-binary --teacher resnet32x4 --student resnet8x4
//
// The models are the CIFAR ResNets / WRNs of the paper (include/ember/nn/resnet.h). They expect
// [N, 3, 32, 32] images, so Fashion-MNIST's 28x28 gray images are padded to 32x32 and their one
// channel repeated three times (see FashionToCifar below). Left in --out-dir:
//   metrics.jsonl                                   one line per epoch of each run ("run": teacher,
//                                                   baseline or pld)
//   teacher.safetensors, student_baseline.safetensors, student_pld.safetensors   the final weights
// A saved teacher can be reused with --teacher-checkpoint, which skips the teacher's training.
#include <ember/checkpoint.h>
#include <ember/data.h>
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/losses/pld.h>
#include <ember/nn.h>
#include <ember/nn/resnet.h>
#include <ember/optim.h>
#include <ember/train.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

namespace nn = ember::nn;
namespace data = ember::data;
namespace train = ember::train;
namespace fs = std::filesystem;

namespace {

// ---- models ----

// The model zoo by name, in the order of nn/resnet.h. Every factory takes the number of classes
// (the WRNs also a dropout rate, left at the reference's 0).
using ModelFactory = std::function<std::shared_ptr<nn::Module>(int64_t num_classes)>;

const std::vector<std::pair<std::string, ModelFactory>>& model_zoo() {
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

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : model_zoo()) names.push_back(name);
  return names;
}

std::shared_ptr<nn::Module> make_model(const std::string& name, int64_t num_classes) {
  for (const auto& [n, factory] : model_zoo())
    if (n == name) return factory(num_classes);
  throw std::invalid_argument("unknown model " + name);  // unreachable: CLI11 checked the name
}

int64_t count_parameters(const nn::Module& model) {
  int64_t n = 0;
  for (const ember::Tensor& p : model.parameters()) n += p.numel();
  return n;
}

// ---- data ----

// Fashion-MNIST's pixel statistics on the training set (after scaling to [0, 1]), as in
// fashion_mnist.cpp; and CIFAR-100's per channel (those of the CRD reference code).
constexpr double kFashionMean = 0.2860, kFashionStd = 0.3530;
const std::vector<double> kCifar100Mean = {0.5071, 0.4867, 0.4408};
const std::vector<double> kCifar100Std = {0.2675, 0.2565, 0.2761};

// Turns a Fashion-MNIST image [1, 28, 28] in [0, 1] into what the CIFAR models read: [3, 32, 32],
// normalised. It pads *before* normalising, so the border has the value of the images' own black
// background (padding after would paint a gray frame round every image), and it repeats the gray
// channel as a broadcast view (expand): the loader's stacking of the batch makes the one copy.
// Done per example in the loader's background thread, it overlaps with the training step and keeps
// the dataset at its original 28x28x1 size (a padded, 3-channel copy of it would be 4x larger).
class FashionToCifar : public data::Transform {
 public:
  ember::Tensor apply(const ember::Tensor& x, data::RandomStream& rng) const override {
    const int64_t h = x.size(1), w = x.size(2);
    const ember::Tensor rows = ember::zeros({1, 2, w});             // 2 px above and below
    ember::Tensor padded = ember::cat({rows, x, rows}, /*dim=*/1);  // [1, 32, 28]
    const ember::Tensor cols = ember::zeros({1, h + 4, 2});         // 2 px left and right
    padded = ember::cat({cols, padded, cols}, /*dim=*/2);           // [1, 32, 32]
    return normalize_.apply(padded, rng).expand({3, h + 4, w + 4});
  }

 private:
  data::Normalize normalize_{{kFashionMean}, {kFashionStd}};
};

struct Data {
  std::shared_ptr<const data::Dataset> train, test;
  std::shared_ptr<const data::Transform> train_transform, test_transform;
  int64_t num_classes = 0;
  std::string name;
};

// Only the first `limit` examples (0: all), for quick runs. The tensors are views: nothing is copied.
std::shared_ptr<const data::Dataset> first_n(const std::shared_ptr<data::TensorDataset>& set, int64_t limit) {
  if (limit <= 0 || limit >= set->size()) return set;
  return std::make_shared<data::TensorDataset>(set->data().narrow(0, 0, limit),
                                               set->targets().narrow(0, 0, limit));
}

Data load_data(const std::string& dataset, const std::string& dir, int64_t limit) {
  Data d;
  if (dataset == "fashion-mnist") {
    d.name = "Fashion-MNIST";
    d.train = first_n(std::make_shared<data::MNIST>(dir, /*train=*/true), limit);
    d.test = std::make_shared<data::MNIST>(dir, /*train=*/false);
    d.train_transform = d.test_transform = std::make_shared<FashionToCifar>();
    d.num_classes = 10;
  } else {  // cifar100, with the paper's augmentation: random crop (4 px padding) and flip
    d.name = "CIFAR-100";
    d.train = first_n(std::make_shared<data::CIFAR100>(dir, /*train=*/true), limit);
    d.test = std::make_shared<data::CIFAR100>(dir, /*train=*/false);
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

struct Recipe {
  std::string optimizer = "sgd";
  double lr = 0, weight_decay = 5e-4;
  int64_t batch_size = 64;
  uint64_t seed = 0;
};

std::unique_ptr<ember::optim::Optimizer> make_optimizer(const Recipe& r,
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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The training loss of one run, from the model's logits and the batch (it sees the batch so that the
// PLD run can ask the teacher about the same images).
using LossFn = std::function<ember::Tensor(const ember::Tensor& logits, const data::Batch& batch)>;

struct RunResult {
  std::vector<double> test_accuracy;  // per epoch
  double seconds = 0;
};

// Trains `model` for `epochs` with `loss_fn` and the recipe, printing and logging the test accuracy
// after every epoch. Every run builds its loader with the same seed, so every run sees the same
// batches in the same order: the two students differ only in their loss.
RunResult run_training(const std::string& run, nn::Module& model, int epochs, const LossFn& loss_fn,
                       const Data& d, const Recipe& recipe, train::MetricsLogger& metrics) {
  const auto start = std::chrono::steady_clock::now();
  data::DataLoader train_loader(d.train, {.batch_size = recipe.batch_size,
                                          .shuffle = true,
                                          .seed = recipe.seed,
                                          .transform = d.train_transform});
  data::DataLoader test_loader(d.test, {.batch_size = 500, .transform = d.test_transform});
  auto optimizer = make_optimizer(recipe, model.parameters());
  // Cosine decay from the peak lr to 0 over the whole run, stepped per batch (as in the paper's
  // recipe, which anneals over its 250 epochs): the last epochs take small steps and settle.
  ember::optim::CosineAnnealingLR schedule(*optimizer, epochs * train_loader.num_batches());
  model.train();

  RunResult result;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    train::ProgressBar bar(train_loader.num_batches(), fmt::format("{} epoch {}/{}", run, epoch, epochs));
    int64_t correct = 0, seen = 0;
    for (data::Batch& batch : train_loader) {
      ember::Tensor logits = model.forward(batch.data);
      ember::Tensor loss = loss_fn(logits, batch);
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      schedule.step();
      correct += train::count_correct(logits.detach(), batch.target);
      seen += batch.size();
      bar.update(batch.size(), loss.item<double>());
    }
    bar.finish();
    const double train_loss = bar.running_loss(), train_accuracy = static_cast<double>(correct) / seen;
    const train::Evaluation test = train::evaluate_classifier(model, test_loader);
    const double epoch_seconds = seconds_since(epoch_start);
    std::cout << fmt::format(
        "{} epoch {}/{}: train loss {:.4f}, train accuracy {:.2f}%, test loss {:.4f}, "
        "test accuracy {:.2f}% ({:.1f} s)\n",
        run, epoch, epochs, train_loss, 100 * train_accuracy, test.loss, 100 * test.accuracy, epoch_seconds);
    metrics.log({{"run", run},
                 {"epoch", epoch},
                 {"train_loss", train_loss},
                 {"train_accuracy", train_accuracy},
                 {"test_loss", test.loss},
                 {"test_accuracy", test.accuracy},
                 {"lr", schedule.get_last_lr()[0]},
                 {"seconds", epoch_seconds}});
    result.test_accuracy.push_back(test.accuracy);
  }
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Distill a CIFAR ResNet teacher into a smaller student with PLD, against a cross-entropy baseline."};
  std::string dataset = "fashion-mnist", data_dir, out_dir = "distill_pld_out", teacher_checkpoint;
  std::string teacher_name = "resnet20", student_name = "resnet8";
  int teacher_epochs = 5, student_epochs = 5;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t limit = 0;
  double temperature = 1.0;
  Recipe recipe;
  app.add_option("--teacher", teacher_name, "the teacher model")
      ->check(CLI::IsMember(model_names()))
      ->capture_default_str();
  app.add_option("--student", student_name, "the student model")
      ->check(CLI::IsMember(model_names()))
      ->capture_default_str();
  app.add_option("--teacher-epochs", teacher_epochs, "passes over the training set for the teacher")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--student-epochs", student_epochs, "passes over the training set for each student")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option(
         "--teacher-checkpoint", teacher_checkpoint,
         "load the teacher from this file (a teacher.safetensors of an earlier run) instead of training it")
      ->check(CLI::ExistingFile);
  app.add_option("--temperature", temperature,
                 "PLD's teacher temperature tau (1 as in the paper's code and ImageNet runs; its CIFAR-100 "
                 "set-up says 4)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--optimizer", recipe.optimizer,
                 "sgd (momentum 0.9, the CRD recipe) or adamw (the PLD paper's CIFAR-100 recipe)")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  app.add_option("--lr", recipe.lr,
                 "peak learning rate, cosine-annealed to 0 (default: 0.05 for sgd, 1e-3 for adamw)")
      ->check(CLI::PositiveNumber);
  app.add_option("--weight-decay", recipe.weight_decay, "weight decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--batch-size", recipe.batch_size, "examples per training step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--limit", limit, "train on the first N training images only (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--dataset", dataset, "fashion-mnist, or cifar100 (the binary version, from --data-dir)")
      ->check(CLI::IsMember({"fashion-mnist", "cifar100"}))
      ->capture_default_str();
  app.add_option("--data-dir", data_dir,
                 "folder with the data (default for fashion-mnist: /usr/share/datasets/fashion-mnist, from "
                 "the Debian package dataset-fashion-mnist; for cifar100: cifar-100-binary)");
  app.add_option("--out-dir", out_dir, "where the metrics and checkpoints go")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for the math")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", recipe.seed, "seeds initialisation and shuffling")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (data_dir.empty())
    data_dir = dataset == "fashion-mnist" ? "/usr/share/datasets/fashion-mnist" : "cifar-100-binary";
  if (recipe.lr <= 0) recipe.lr = recipe.optimizer == "sgd" ? 0.05 : 1e-3;
  if (teacher_checkpoint.empty() && teacher_epochs == 0) {
    std::cerr << "error: --teacher-epochs 0 needs --teacher-checkpoint\n";
    return 1;
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    ember::set_num_threads(threads);
    fs::create_directories(out_dir);
    const Data d = load_data(dataset, data_dir, limit);
    std::cout << fmt::format(
        "{}: {} training and {} test images; teacher {}, student {}; {} lr {} (cosine), weight decay {}, "
        "batch {}; PLD tau {}; {} threads\n",
        d.name, d.train->size(), d.test->size(), teacher_name, student_name, recipe.optimizer, recipe.lr,
        recipe.weight_decay, recipe.batch_size, temperature, threads);

    const std::string metrics_path = (fs::path(out_dir) / "metrics.jsonl").string();
    fs::remove(metrics_path);  // one file per run
    train::MetricsLogger metrics(metrics_path);
    const LossFn cross_entropy = [](const ember::Tensor& logits, const data::Batch& batch) {
      return ember::losses::cross_entropy(logits, batch.target);
    };

    // 1. The teacher, with cross-entropy.
    ember::manual_seed(recipe.seed);
    std::shared_ptr<nn::Module> teacher = make_model(teacher_name, d.num_classes);
    RunResult teacher_run;
    if (!teacher_checkpoint.empty()) {
      ember::load(*teacher, teacher_checkpoint);
      data::DataLoader test_loader(d.test, {.batch_size = 500, .transform = d.test_transform});
      teacher_run.test_accuracy.push_back(train::evaluate_classifier(*teacher, test_loader).accuracy);
      std::cout << fmt::format("teacher loaded from {}: test accuracy {:.2f}%\n", teacher_checkpoint,
                               100 * teacher_run.test_accuracy.back());
    } else {
      teacher_run = run_training("teacher", *teacher, teacher_epochs, cross_entropy, d, recipe, metrics);
      ember::save(*teacher, (fs::path(out_dir) / "teacher.safetensors").string());
    }
    // From here on the teacher is frozen: eval mode (BatchNorm reads its running statistics and
    // stops updating them) and, below, forward passes without a graph.
    teacher->eval();

    // 2. The student twice, from the same initial weights (the same seed before construction) and,
    //    through run_training's seeded loader, on the same batches.
    ember::manual_seed(recipe.seed + 1);
    std::shared_ptr<nn::Module> baseline = make_model(student_name, d.num_classes);
    ember::manual_seed(recipe.seed + 1);
    std::shared_ptr<nn::Module> distilled = make_model(student_name, d.num_classes);

    // (a) Cross-entropy only.
    const RunResult baseline_run =
        run_training("baseline", *baseline, student_epochs, cross_entropy, d, recipe, metrics);
    ember::save(*baseline, (fs::path(out_dir) / "student_baseline.safetensors").string());

    // (b) PLD. Its first choice step is the cross-entropy of the label, so it replaces the CE term
    //     rather than adding to it: no mixing weight, only the teacher's temperature.
    const ember::losses::PLDOptions pld_options{.temperature = temperature};
    const LossFn pld = [&](const ember::Tensor& logits, const data::Batch& batch) {
      ember::Tensor teacher_logits;
      {
        ember::NoGradGuard no_grad;  // the teacher is a constant: no graph, no memory for one
        teacher_logits = teacher->forward(batch.data);
      }
      return ember::losses::pld(logits, teacher_logits, batch.target, pld_options);
    };
    const RunResult pld_run = run_training("pld", *distilled, student_epochs, pld, d, recipe, metrics);
    ember::save(*distilled, (fs::path(out_dir) / "student_pld.safetensors").string());

    // 3. The summary: test accuracy after each epoch, and the last one.
    std::cout << fmt::format("\n{} test accuracy (%) after each epoch\n", d.name);
    std::cout << fmt::format("{:<18} {:<11} {:>9}  {:>7}  {}\n", "run", "model", "params", "final",
                             "per epoch");
    const auto row = [&](const std::string& run, const std::string& model_name, const nn::Module& model,
                         const RunResult& r) {
      std::string per_epoch;
      for (double a : r.test_accuracy) per_epoch += fmt::format(" {:6.2f}", 100 * a);
      std::cout << fmt::format("{:<18} {:<11} {:>9}  {:>7.2f} {} ({})\n", run, model_name,
                               count_parameters(model), 100 * r.test_accuracy.back(), per_epoch,
                               train::format_duration(r.seconds));
    };
    row("teacher (CE)", teacher_name, *teacher, teacher_run);
    row("student (CE)", student_name, *baseline, baseline_run);
    row("student (PLD)", student_name, *distilled, pld_run);
    std::cout << fmt::format("PLD - CE: {:+.2f} points (one seed; the paper averages 3 runs of 250 epochs)\n",
                             100 * (pld_run.test_accuracy.back() - baseline_run.test_accuracy.back()));
    std::cout << fmt::format("done in {}; metrics and checkpoints in {}\n",
                             train::format_duration(seconds_since(start)), out_dir);
  } catch (const ember::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
