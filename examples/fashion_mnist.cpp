// Train an MLP or a small CNN on Fashion-MNIST (the Debian package dataset-fashion-mnist), showing
// progress, printing test accuracy per epoch, and leaving in --out-dir:
//   model.safetensors / optimizer.safetensors   the latest checkpoint (loads in PyTorch, see below)
//   metrics.jsonl                                one line per epoch
//   curves.png                                   loss and accuracy per epoch (needs gnuplot)
//
//   ./fashion_mnist                      # the CNN, 91%+ test accuracy
//   ./fashion_mnist --model mlp          # the MLP, 88%+
//
// The models are nn::Sequential, so parameter names ("0.weight", ...) match the same nn.Sequential
// in PyTorch, and `model.load_state_dict(safetensors.torch.load_file("model.safetensors"))` works.
#include <ember/checkpoint.h>
#include <ember/data.h>
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/optim.h>
#include <ember/train.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "example_util.h"

namespace nn = ember::nn;
namespace data = ember::data;
namespace train = ember::train;

namespace {

// Fashion-MNIST's pixel statistics on the training set (after scaling to [0, 1]).
constexpr double kMean = 0.2860, kStd = 0.3530;

std::shared_ptr<nn::Sequential> make_mlp() {
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Flatten>(),  //
      std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(256, 256), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(256, 10));
}

// 28x28 -> conv3 -> 26x26x32 -> conv3 -> 24x24x64 -> pool2 -> 12x12x64 = 9216 -> 128 -> 10
std::shared_ptr<nn::Sequential> make_cnn() {
  return std::make_shared<nn::Sequential>(
      std::make_shared<nn::Conv2d>(1, 32, 3), std::make_shared<nn::ReLU>(),   //
      std::make_shared<nn::Conv2d>(32, 64, 3), std::make_shared<nn::ReLU>(),  //
      std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),    //
      std::make_shared<nn::Linear>(9216, 128), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(128, 10));
}

std::unique_ptr<ember::optim::Optimizer> make_optimizer(const std::string& name,
                                                        const std::vector<ember::Tensor>& params, double lr) {
  if (name == "sgd") {
    ember::optim::SGDOptions o;
    o.lr = lr;
    o.momentum = 0.9;
    return std::make_unique<ember::optim::SGD>(params, o);
  }
  if (name == "adamw") {
    ember::optim::AdamWOptions o;
    o.lr = lr;
    return std::make_unique<ember::optim::AdamW>(params, o);
  }
  ember::optim::AdamOptions o;
  o.lr = lr;
  return std::make_unique<ember::optim::Adam>(params, o);
}

using examples::seconds_since;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train an MLP or a small CNN on Fashion-MNIST with ember."};
  std::string model_name = "cnn", optimizer_name = "adam";
  std::string data_dir = "/usr/share/datasets/fashion-mnist", out_dir = "fashion_mnist_out";
  int epochs = 0, threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t batch_size = 64;
  double lr = 1e-3;
  uint64_t seed = 0;
  app.add_option("--model", model_name, "mlp (784-256-256-10) or cnn (two 3x3 convs, max-pool, two linears)")
      ->check(CLI::IsMember({"mlp", "cnn"}))
      ->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training set (default: 3 for the CNN, 10 for the MLP)");
  app.add_option("--batch-size", batch_size, "examples per training step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lr", lr, "peak learning rate (cosine-annealed to 0 over the run)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--optimizer", optimizer_name, "adam, adamw or sgd (with momentum 0.9)")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}))
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]")
      ->capture_default_str();
  app.add_option("--out-dir", out_dir, "where the checkpoint, metrics and plot go")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for the math")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", seed, "seeds initialisation and shuffling")->capture_default_str();
  if (std::optional<int> exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;
  if (epochs <= 0) epochs = model_name == "cnn" ? 3 : 10;

  try {
    const auto start = std::chrono::steady_clock::now();
    ember::set_num_threads(threads);
    ember::manual_seed(seed);
    std::filesystem::create_directories(out_dir);

    auto train_set = std::make_shared<data::MNIST>(data_dir, /*train=*/true);
    auto test_set = std::make_shared<data::MNIST>(data_dir, /*train=*/false);
    auto normalize = std::make_shared<data::Normalize>(std::vector<double>{kMean}, std::vector<double>{kStd});
    data::DataLoader train_loader(train_set,
                                  {.batch_size = batch_size, .shuffle = true, .transform = normalize});
    data::DataLoader test_loader(test_set, {.batch_size = 1000, .transform = normalize});

    std::shared_ptr<nn::Sequential> model = model_name == "cnn" ? make_cnn() : make_mlp();
    auto optimizer = make_optimizer(optimizer_name, model->parameters(), lr);
    // Cosine decay from --lr to 0 over the whole run, stepped per batch: the small steps at the end
    // settle the weights, so the last epoch is the best one rather than a noisy sample.
    ember::optim::CosineAnnealingLR schedule(*optimizer, epochs * train_loader.num_batches());
    std::cout << fmt::format(
        "Fashion-MNIST: {} training and {} test images; {} threads, OpenBLAS {} kernels\n{}\n",
        train_set->size(), test_set->size(), threads, ember::blas_core_name(), model->str());

    const std::string metrics_path = (std::filesystem::path(out_dir) / "metrics.jsonl").string();
    std::filesystem::remove(metrics_path);  // one file per run
    train::MetricsLogger metrics(metrics_path);

    for (int epoch = 1; epoch <= epochs; ++epoch) {
      const auto epoch_start = std::chrono::steady_clock::now();
      train::ProgressBar bar(train_loader.num_batches(), fmt::format("epoch {}/{}", epoch, epochs));
      int64_t correct = 0, seen = 0;
      for (data::Batch& batch : train_loader) {
        ember::Tensor logits = model->forward(batch.data);
        ember::Tensor loss = ember::losses::cross_entropy(logits, batch.target);
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
      const train::Evaluation test = train::evaluate_classifier(*model, test_loader);
      const double epoch_seconds = seconds_since(epoch_start);
      std::cout << fmt::format(
          "epoch {}/{}: train loss {:.4f}, train accuracy {:.2f}%, test loss {:.4f}, "
          "test accuracy {:.2f}% ({:.1f} s)\n",
          epoch, epochs, train_loss, 100 * train_accuracy, test.loss, 100 * test.accuracy, epoch_seconds);
      metrics.log({{"epoch", epoch},
                   {"train_loss", train_loss},
                   {"train_accuracy", train_accuracy},
                   {"test_loss", test.loss},
                   {"test_accuracy", test.accuracy},
                   {"lr", schedule.get_last_lr()[0]},
                   {"seconds", epoch_seconds}});
      ember::save(*model, (std::filesystem::path(out_dir) / "model.safetensors").string());
      ember::save(*optimizer, (std::filesystem::path(out_dir) / "optimizer.safetensors").string());
    }

    const std::string png = (std::filesystem::path(out_dir) / "curves.png").string();
    train::PlotOptions plot;
    plot.title = fmt::format("Fashion-MNIST, {} ({})", model_name, optimizer_name);
    const train::PlotResult plotted = train::plot_training_curves(metrics_path, png, plot);
    std::cout << plotted.message << "\n";
    std::cout << fmt::format("done in {}; checkpoint and metrics in {}\n",
                             train::format_duration(seconds_since(start)), out_dir);
  } catch (const ember::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
