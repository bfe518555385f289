// The CIFAR experiment of the OPL paper (orthogonal projection loss, docs/losses/opl.md) in one
// command: train the same model twice from the same initial weights on the same batches, once with
// cross-entropy alone and once with CE + lambda * OPL on the pooled features fc reads, and compare
// their test accuracies and what OPL optimises, measured on the test set's features:
//   s  the mean cosine of same-class pairs (OPL pushes it to 1)
//   d  the mean |cosine| of different-class pairs (OPL pushes it to 0)
//
//   ./opl_classify                                  # resnet8 on Fashion-MNIST, 5 epochs
//   ./opl_classify --limit 300 --test-limit 500 --epochs 1 --threads 1   # a smoke run (seconds)
//   ./opl_classify --dataset cifar100 --data-dir cifar-100-binary --model resnet56 --epochs 200
//                                                   # the paper's setting (see docs/losses/opl.md)
//
// The recipe is the paper's script (kahnchana/opl, classification/cifar): SGD momentum 0.9, weight
// decay 5e-4, lr 0.1, batch 128, lambda (opl_ratio) 1, gamma 0.5, the mean-|cos| variant of the
// inter-class term, lr x0.2 at 30% / 60% / 80% of the run (epochs 60/120/160 of its 200) after a
// 1-epoch linear warm-up. Left in --out-dir:
//   metrics.jsonl                                   one line per epoch of each run ("run": ce or opl),
//                                                   with test_s and test_d
//   model_ce.safetensors, model_opl.safetensors     the final weights
#include <ember/checkpoint.h>
#include <ember/losses/opl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "image_classification.h"

namespace nn = ember::nn;
namespace data = ember::data;
namespace train = ember::train;
namespace fs = std::filesystem;

namespace {

// What OPL optimises, measured on a whole set of features [N, D] with labels [N] (int64): s, the
// mean cosine over ordered pairs (i != j) of the same class, and d, the mean |cosine| over pairs of
// different classes (the reference's CIFAR variant; for post-ReLU features every cosine is >= 0,
// so it is also the plain mean). The Gram matrix of N = 10000 features would take 400 MB, so it is
// formed a block of rows at a time.
struct FeatureGeometry {
  double s = 0, d = 0;
};

FeatureGeometry feature_geometry(const ember::Tensor& features, const ember::Tensor& labels) {
  ember::NoGradGuard no_grad;
  const int64_t n = features.size(0);
  // F.normalize: f / max(|f|, 1e-12)
  const ember::Tensor unit =
      features / ember::clamp_min(ember::norm(features, 2.0, {1}, /*keepdim=*/true), 1e-12);
  const ember::Tensor unit_t = unit.t();
  const ember::Tensor columns = labels.reshape({1, n});
  const ember::Tensor column_index = ember::arange(0.0, static_cast<double>(n)).reshape({1, n});
  constexpr int64_t kBlock = 1000;
  double same_sum = 0, different_sum = 0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t rows = std::min(kBlock, n - start);
    const ember::Tensor gram = ember::matmul(unit.narrow(0, start, rows), unit_t);  // [rows, n]
    const ember::Tensor same = ember::eq(labels.narrow(0, start, rows).reshape({rows, 1}), columns);
    const ember::Tensor row_index =
        ember::arange(static_cast<double>(start), static_cast<double>(start + rows)).reshape({rows, 1});
    const ember::Tensor off_diagonal = ember::ne(row_index, column_index);
    same_sum += ember::sum(ember::where(ember::logical_and(same, off_diagonal), gram, 0.0)).item<double>();
    different_sum += ember::sum(ember::where(same, 0.0, ember::abs(gram))).item<double>();
  }
  // The pair counts from the class sizes n_c: P = sum n_c^2 - N, Q = N^2 - sum n_c^2.
  std::map<int64_t, int64_t> class_sizes;
  for (int64_t y : labels.to_vector<int64_t>()) ++class_sizes[y];
  double squares = 0;
  for (const auto& [y, count] : class_sizes)
    squares += static_cast<double>(count) * static_cast<double>(count);
  const double same_pairs = squares - static_cast<double>(n);
  const double different_pairs = static_cast<double>(n) * static_cast<double>(n) - squares;
  return {same_pairs > 0 ? same_sum / same_pairs : 0.0,
          different_pairs > 0 ? different_sum / different_pairs : 0.0};
}

// The test loss and accuracy (as train::evaluate_classifier) and the features' s and d, from one
// pass over the test set in eval mode without recording; the model's mode is restored.
examples::TestReport evaluate_with_geometry(nn::Module& model, data::DataLoader& test_loader) {
  ember::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  ember::losses::CrossEntropyOptions sum;
  sum.reduction = ember::losses::Reduction::sum;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  std::vector<ember::Tensor> features, labels;
  for (data::Batch& batch : test_loader) {
    const examples::ForwardResult out = examples::forward_with_features(model, batch.data);
    loss_sum += ember::losses::cross_entropy(out.logits, batch.target, sum).item<double>();
    correct += train::count_correct(out.logits, batch.target);
    seen += batch.size();
    features.push_back(out.features);
    labels.push_back(batch.target);
  }
  model.train(was_training);
  const FeatureGeometry g = feature_geometry(ember::cat(features), ember::cat(labels));
  return {loss_sum / static_cast<double>(seen),
          static_cast<double>(correct) / static_cast<double>(seen),
          {{"test_s", g.s}, {"test_d", g.d}}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Train a CIFAR ResNet with cross-entropy and with CE + lambda * OPL (orthogonal projection loss) from "
      "the "
      "same weights on the same batches; compare test accuracy and the test features' geometry."};
  examples::CommonOptions opts;
  opts.out_dir = "opl_classify_out";
  std::string model_name = "resnet8";
  std::string inter = "abs";
  int epochs = 5;
  double opl_lambda = 1.0, gamma = 0.5, lr_decay = 0.2, warmup_epochs = 1.0;
  std::vector<double> milestones = {0.3, 0.6, 0.8};
  examples::Recipe recipe;
  recipe.lr = 0.1;
  recipe.batch_size = 128;
  app.add_option("--model", model_name, "the model (the paper: resnet56, resnet110)")
      ->check(CLI::IsMember(examples::model_names()))
      ->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training set for each run (the paper: 200)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lambda", opl_lambda,
                 "OPL's weight in CE + lambda * OPL (the paper's script: opl_ratio 1)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--gamma", gamma, "the weight of OPL's inter-class term")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option(
         "--opl-inter", inter,
         "OPL's inter-class term: abs, the mean |cos| (the reference's CIFAR code), or mean, the mean "
         "cos (its loss.py); equal for post-ReLU features")
      ->check(CLI::IsMember({"abs", "mean"}))
      ->capture_default_str();
  app.add_option("--lr", recipe.lr, "peak learning rate (SGD, momentum 0.9)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lr-decay", lr_decay, "the lr's factor at each milestone")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--milestones", milestones,
                 "where the lr decays, as fractions of the run (the paper: epochs 60/120/160 of 200)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--warmup-epochs", warmup_epochs, "epochs of linear lr warm-up from 0")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  examples::add_common_options(app, opts, recipe);
  if (std::optional<int> exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;
  examples::resolve_data_dir(opts);
  recipe.optimizer = "sgd";
  recipe.schedule = [&](ember::optim::Optimizer& optimizer, int64_t batches_per_epoch, int run_epochs) {
    const int64_t total = batches_per_epoch * run_epochs;
    std::vector<int64_t> steps;
    for (double m : milestones) steps.push_back(std::llround(m * static_cast<double>(total)));
    std::sort(steps.begin(), steps.end());
    // The reference's schedule, stepped per batch: pytorch-cifar100's WarmUpLR over the first
    // `warmup` batches (lr = base * k / warmup at step k, so the very first batch runs at lr 0),
    // then MultiStepLR (lr = base * gamma^(milestones passed)). The milestones are in batches, so a
    // fraction of a short run may fall inside an epoch.
    const int64_t warmup = std::llround(warmup_epochs * static_cast<double>(batches_per_epoch));
    const double gamma = lr_decay;
    return std::make_unique<ember::optim::LambdaLR>(optimizer, [warmup, steps, gamma](int64_t step) {
      if (step < warmup) return static_cast<double>(step) / static_cast<double>(warmup);
      const auto passed = std::upper_bound(steps.begin(), steps.end(), step) - steps.begin();
      return std::pow(gamma, static_cast<double>(passed));
    });
  };

  try {
    const auto start = std::chrono::steady_clock::now();
    ember::set_num_threads(opts.threads);
    fs::create_directories(opts.out_dir);
    const examples::Data d = examples::load_data(opts.dataset, opts.data_dir, opts.limit, opts.test_limit);
    std::string milestone_text;
    for (double m : milestones) milestone_text += fmt::format("{}{:g}", milestone_text.empty() ? "" : "/", m);
    std::cout << fmt::format(
        "{}: {} training and {} test images; {}; {} epochs, sgd lr {} (x{} at {} of the run, {} warm-up "
        "epoch(s)), weight decay {}, batch {}; OPL lambda {}, gamma {}, inter-class {}; {} threads\n",
        d.name, d.train->size(), d.test->size(), model_name, epochs, recipe.lr, lr_decay, milestone_text,
        warmup_epochs, recipe.weight_decay, recipe.batch_size, opl_lambda, gamma,
        inter == "abs" ? "mean |cos|" : "mean cos", opts.threads);

    const std::string metrics_path = (fs::path(opts.out_dir) / "metrics.jsonl").string();
    fs::remove(metrics_path);  // one file per run
    train::MetricsLogger metrics(metrics_path);

    // The model twice, from the same initial weights (the same seed before construction) and,
    // through run_training's seeded loader, on the same batches (and the same augmentation draws).
    ember::manual_seed(recipe.seed);
    std::shared_ptr<nn::Module> ce_model = examples::make_model(model_name, d.num_classes);
    ember::manual_seed(recipe.seed);
    std::shared_ptr<nn::Module> opl_model = examples::make_model(model_name, d.num_classes);

    // The features of the initial weights, for reference (the same for both runs).
    data::DataLoader test_loader(d.test, {.batch_size = 500, .transform = d.test_transform});
    const examples::TestReport initial = evaluate_with_geometry(*ce_model, test_loader);
    std::cout << fmt::format("initial weights: test accuracy {:.2f}%, test_s {:.4f}, test_d {:.4f}\n",
                             100 * initial.accuracy, initial.extra[0].second, initial.extra[1].second);

    // (a) Cross-entropy only.
    const examples::LossFn cross_entropy = [](const examples::StepOutput& out) {
      return ember::losses::cross_entropy(out.logits, out.batch.target);
    };
    const examples::RunResult ce_run = examples::run_training("ce", *ce_model, epochs, cross_entropy, d,
                                                              recipe, metrics, evaluate_with_geometry);
    ember::save(*ce_model, (fs::path(opts.out_dir) / "model_ce.safetensors").string());

    // (b) CE + lambda * OPL on the pooled features (the features fc reads, after the last ReLU and
    //     the 8x8 average pool: 64-d for resnetN). OPL is computed per batch, as in the reference.
    const ember::losses::OPLOptions opl_options{.gamma = gamma, .absolute_inter = inter == "abs"};
    const examples::LossFn ce_opl = [&](const examples::StepOutput& out) {
      return ember::losses::cross_entropy(out.logits, out.batch.target) +
             ember::losses::opl(out.features, out.batch.target, opl_options) * opl_lambda;
    };
    const examples::RunResult opl_run =
        examples::run_training("opl", *opl_model, epochs, ce_opl, d, recipe, metrics, evaluate_with_geometry);
    ember::save(*opl_model, (fs::path(opts.out_dir) / "model_opl.safetensors").string());

    // The summary.
    std::cout << fmt::format(
        "\n{}, {} ({} parameters): test accuracy (%) after each epoch; s = mean cosine of same-class pairs, "
        "d = mean |cosine| of different-class pairs of the test set's pooled features\n",
        d.name, model_name, examples::count_parameters(*ce_model));
    std::cout << fmt::format("{:<16} {:>7}  {:>6}  {:>6}  {}\n", "run", "final", "s", "d", "per epoch");
    const auto row = [&](const std::string& run, const examples::TestReport& last,
                         const std::string& per_epoch) {
      std::cout << fmt::format("{:<16} {:>7.2f}  {:>6.3f}  {:>6.3f} {}\n", run, 100 * last.accuracy,
                               last.extra[0].second, last.extra[1].second, per_epoch);
    };
    const auto per_epoch = [](const examples::RunResult& r) {
      std::string text;
      for (double a : r.test_accuracy) text += fmt::format(" {:6.2f}", 100 * a);
      return text + fmt::format(" ({})", train::format_duration(r.seconds));
    };
    row("initial weights", initial, "");
    row("CE", ce_run.tests.back(), per_epoch(ce_run));
    row("CE + OPL", opl_run.tests.back(), per_epoch(opl_run));
    const examples::TestReport &ce_last = ce_run.tests.back(), &opl_last = opl_run.tests.back();
    std::cout << fmt::format(
        "CE + OPL - CE: {:+.2f} points, s {:+.3f}, d {:+.3f} (one seed; the paper trains 200 epochs on "
        "CIFAR-100)\n",
        100 * (opl_last.accuracy - ce_last.accuracy), opl_last.extra[0].second - ce_last.extra[0].second,
        opl_last.extra[1].second - ce_last.extra[1].second);
    std::cout << fmt::format("done in {}; metrics and checkpoints in {}\n",
                             train::format_duration(examples::seconds_since(start)), opts.out_dir);
  } catch (const ember::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
