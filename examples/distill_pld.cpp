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
// channel repeated three times (FashionToCifar in image_classification.h, which holds the model zoo,
// the data and the training loop this program shares with opl_classify.cpp). Left in --out-dir:
//   metrics.jsonl                                   one line per epoch of each run ("run": teacher,
//                                                   baseline or pld)
//   teacher.safetensors, student_baseline.safetensors, student_pld.safetensors   the final weights
// A saved teacher can be reused with --teacher-checkpoint, which skips the teacher's training.
#include <ember/checkpoint.h>
#include <ember/losses/pld.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include "image_classification.h"

namespace nn = ember::nn;
namespace data = ember::data;
namespace train = ember::train;
namespace fs = std::filesystem;

using examples::Data;
using examples::LossFn;
using examples::Recipe;
using examples::RunResult;

int main(int argc, char** argv) {
  CLI::App app{
      "Distill a CIFAR ResNet teacher into a smaller student with PLD, against a cross-entropy baseline."};
  examples::CommonOptions opts;
  opts.out_dir = "distill_pld_out";
  std::string teacher_checkpoint;
  std::string teacher_name = "resnet20", student_name = "resnet8";
  int teacher_epochs = 5, student_epochs = 5;
  double temperature = 1.0;
  Recipe recipe;
  app.add_option("--teacher", teacher_name, "the teacher model")
      ->check(CLI::IsMember(examples::model_names()))
      ->capture_default_str();
  app.add_option("--student", student_name, "the student model")
      ->check(CLI::IsMember(examples::model_names()))
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
  examples::add_common_options(app, opts, recipe);
  if (std::optional<int> exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;
  examples::resolve_data_dir(opts);
  if (recipe.lr <= 0) recipe.lr = recipe.optimizer == "sgd" ? 0.05 : 1e-3;
  if (teacher_checkpoint.empty() && teacher_epochs == 0) {
    std::cerr << "error: --teacher-epochs 0 needs --teacher-checkpoint\n";
    return 1;
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    ember::set_num_threads(opts.threads);
    fs::create_directories(opts.out_dir);
    const Data d = examples::load_data(opts.dataset, opts.data_dir, opts.limit, opts.test_limit);
    std::cout << fmt::format(
        "{}: {} training and {} test images; teacher {}, student {}; {} lr {} (cosine), weight decay {}, "
        "batch {}; PLD tau {}; {} threads\n",
        d.name, d.train->size(), d.test->size(), teacher_name, student_name, recipe.optimizer, recipe.lr,
        recipe.weight_decay, recipe.batch_size, temperature, opts.threads);

    const std::string metrics_path = (fs::path(opts.out_dir) / "metrics.jsonl").string();
    fs::remove(metrics_path);  // one file per run
    train::MetricsLogger metrics(metrics_path);
    const LossFn cross_entropy = [](const examples::StepOutput& out) {
      return ember::losses::cross_entropy(out.logits, out.batch.target);
    };

    // 1. The teacher, with cross-entropy.
    ember::manual_seed(recipe.seed);
    std::shared_ptr<nn::Module> teacher = examples::make_model(teacher_name, d.num_classes);
    RunResult teacher_run;
    if (!teacher_checkpoint.empty()) {
      ember::load(*teacher, teacher_checkpoint);
      data::DataLoader test_loader(d.test, {.batch_size = 500, .transform = d.test_transform});
      teacher_run.test_accuracy.push_back(train::evaluate_classifier(*teacher, test_loader).accuracy);
      std::cout << fmt::format("teacher loaded from {}: test accuracy {:.2f}%\n", teacher_checkpoint,
                               100 * teacher_run.test_accuracy.back());
    } else {
      teacher_run =
          examples::run_training("teacher", *teacher, teacher_epochs, cross_entropy, d, recipe, metrics);
      ember::save(*teacher, (fs::path(opts.out_dir) / "teacher.safetensors").string());
    }
    // From here on the teacher is frozen: eval mode (BatchNorm reads its running statistics and
    // stops updating them) and, below, forward passes without a graph.
    teacher->eval();

    // 2. The student twice, from the same initial weights (the same seed before construction) and,
    //    through run_training's seeded loader, on the same batches.
    ember::manual_seed(recipe.seed + 1);
    std::shared_ptr<nn::Module> baseline = examples::make_model(student_name, d.num_classes);
    ember::manual_seed(recipe.seed + 1);
    std::shared_ptr<nn::Module> distilled = examples::make_model(student_name, d.num_classes);

    // (a) Cross-entropy only.
    const RunResult baseline_run =
        examples::run_training("baseline", *baseline, student_epochs, cross_entropy, d, recipe, metrics);
    ember::save(*baseline, (fs::path(opts.out_dir) / "student_baseline.safetensors").string());

    // (b) PLD. Its first choice step is the cross-entropy of the label, so it replaces the CE term
    //     rather than adding to it: no mixing weight, only the teacher's temperature.
    const ember::losses::PLDOptions pld_options{.temperature = temperature};
    const LossFn pld = [&](const examples::StepOutput& out) {
      ember::Tensor teacher_logits;
      {
        ember::NoGradGuard no_grad;  // the teacher is a constant: no graph, no memory for one
        teacher_logits = teacher->forward(out.batch.data);
      }
      return ember::losses::pld(out.logits, teacher_logits, out.batch.target, pld_options);
    };
    const RunResult pld_run =
        examples::run_training("pld", *distilled, student_epochs, pld, d, recipe, metrics);
    ember::save(*distilled, (fs::path(opts.out_dir) / "student_pld.safetensors").string());

    // 3. The summary: test accuracy after each epoch, and the last one.
    std::cout << fmt::format("\n{} test accuracy (%) after each epoch\n", d.name);
    std::cout << fmt::format("{:<18} {:<11} {:>9}  {:>7}  {}\n", "run", "model", "params", "final",
                             "per epoch");
    const auto row = [&](const std::string& run, const std::string& model_name, const nn::Module& model,
                         const RunResult& r) {
      std::string per_epoch;
      for (double a : r.test_accuracy) per_epoch += fmt::format(" {:6.2f}", 100 * a);
      std::cout << fmt::format("{:<18} {:<11} {:>9}  {:>7.2f} {} ({})\n", run, model_name,
                               examples::count_parameters(model), 100 * r.test_accuracy.back(), per_epoch,
                               train::format_duration(r.seconds));
    };
    row("teacher (CE)", teacher_name, *teacher, teacher_run);
    row("student (CE)", student_name, *baseline, baseline_run);
    row("student (PLD)", student_name, *distilled, pld_run);
    std::cout << fmt::format("PLD - CE: {:+.2f} points (one seed; the paper averages 3 runs of 250 epochs)\n",
                             100 * (pld_run.test_accuracy.back() - baseline_run.test_accuracy.back()));
    std::cout << fmt::format("done in {}; metrics and checkpoints in {}\n",
                             train::format_duration(examples::seconds_since(start)), opts.out_dir);
  } catch (const ember::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
