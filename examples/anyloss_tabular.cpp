// The experiment of the AnyLoss paper's section 4.2 (docs/losses/anyloss.md) in one command: the
// paper's small Keras MLP trained on an imbalanced tabular set once per training loss (MSE, BCE, and
// AnyLoss aimed at each metric: accuracy, F1, F0.5, F2, G-mean, balanced accuracy), evaluated by
// stratified K-fold cross-validation, and a table of the mean test metrics, one row per loss.
//
//   ./anyloss_tabular                                    # Breast Cancer Wisconsin, 10 folds, 100 epochs
//   ./anyloss_tabular --dataset synthetic --folds 3 --epochs 5 --losses bce,f1   # a quick look
//   ./anyloss_tabular --dataset csv --data-path ds7.csv  # a CSV, the label (0/1) in its last column
//
// The protocol, as in the paper's code (the MLP notebooks of doheonhan/anyloss), except where noted:
//   * features z-scored with the whole data set's mean and standard deviation (before the split, as
//     the paper does; a stricter protocol would use each training fold's);
//   * the minority class is relabelled 1 (the class the F-scores are about);
//   * the model Linear(F, 2) (he_normal) -> BatchNorm1d(2) -> sigmoid -> Linear(2, 1) (glorot_uniform)
//     -> sigmoid; the MSE model's output stays linear (its prediction is output > 0.5, as the paper
//     rounds it at 0.5); Adam, 100 epochs, lr 1e-3 for AnyLoss, 3e-3 for BCE, 5e-3 for MSE;
//   * batches of int(0.05 x training fold), except AnyLoss-G (ceil(0.45 x data set)) and AnyLoss-BAcc
//     (the whole training fold), reshuffled every epoch;
//   * AnyLoss with L = 73 and n = the batch size (ember's default; the official code uses n = the
//     whole training fold with every batch size, which --official-n reproduces);
//   * every loss of a fold starts from the same initial weights and sees the same batch order (the
//     official code keeps training one Keras model across losses and folds: a quirk not copied);
//   * stratified folds from a seeded shuffle (--seed, default 2), not scikit-learn's exact folds;
//   * test metrics at threshold 0.5 (predicted positive: p > 0.5), averaged over the folds.
// --batch-fraction F gives every loss batches of int(F x training fold) instead of the paper's rules.
// Left in --out-dir: metrics.jsonl, one line per loss and fold.
#include <ember/data.h>
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/losses/anyloss.h>
#include <ember/nn.h>
#include <ember/optim.h>
#include <ember/train.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "example_util.h"

namespace nn = ember::nn;
namespace data = ember::data;
namespace losses = ember::losses;
namespace train = ember::train;
namespace fs = std::filesystem;

namespace {

// ---- data ----

// A binary data set in memory: rows of features and 0/1 labels, 1 = the minority class.
struct Table {
  std::string name;
  int64_t rows = 0, features = 0;
  std::vector<double> x;  // [rows, features], row-major
  std::vector<int> y;     // [rows], 0/1
};

int64_t count_positives(const std::vector<int>& y) { return std::count(y.begin(), y.end(), 1); }

// The features (every column but the last) and the 0/1 label (the last) of a numeric table.
Table table_from_csv(const data::CsvTable& csv, const std::string& name, const std::string& path) {
  if (!csv.categorical_columns.empty())
    ember::fail("{}: column '{}' is not numeric (every column must be a number; the label, 0/1, last)", path,
                csv.categorical_columns.front());
  const int64_t columns = static_cast<int64_t>(csv.numeric_columns.size());
  if (columns < 2) ember::fail("{}: expected at least one feature column and the label column", path);
  if (csv.rows < 1) ember::fail("{}: the file has no rows", path);
  Table t;
  t.name = name;
  t.rows = csv.rows;
  t.features = columns - 1;
  const std::vector<double> values = csv.numeric.contiguous().to_vector<double>();
  for (int64_t i = 0; i < t.rows; ++i) {
    for (int64_t j = 0; j < t.features; ++j) {
      const double v = values[i * columns + j];
      if (!std::isfinite(v))
        ember::fail("{}: row {}, column '{}': {} is not a finite number", path, i + 1, csv.numeric_columns[j],
                    v);
      t.x.push_back(v);
    }
    const double label = values[i * columns + t.features];
    if (label != 0 && label != 1)
      ember::fail("{}: row {}: the label (last column '{}') must be 0 or 1, found {}", path, i + 1,
                  csv.numeric_columns.back(), label);
    t.y.push_back(static_cast<int>(label));
  }
  return t;
}

// scikit-learn's breast_cancer.csv (Debian: python3-sklearn): a first line "569,30,malignant,benign"
// (rows, features, the names of targets 0 and 1), then rows of 30 features and the target, where
// 0 = malignant. The first line is checked here and skipped by read_csv. As in the paper, malignant
// (the minority, 212 of 569) becomes class 1.
Table load_breast_cancer(const std::string& path) {
  std::ifstream in(path);
  if (!in) ember::fail("cannot open {}", path);
  std::string line;
  if (!std::getline(in, line)) ember::fail("{}: the file is empty", path);
  int64_t declared_rows = 0, declared_features = 0;
  if (std::sscanf(line.c_str(), "%" SCNd64 ",%" SCNd64, &declared_rows, &declared_features) != 2 ||
      declared_rows < 1 || declared_features < 1)
    ember::fail("{}:1: expected 'rows,features,...' (scikit-learn's breast_cancer.csv format), found '{}'",
                path, line);
  data::CsvOptions options;
  options.skip_rows = 1;
  options.header = false;
  options.numeric_dtype = ember::DType::float64;
  Table t = table_from_csv(data::read_csv(path, options), "Breast Cancer Wisconsin", path);
  if (t.features != declared_features || t.rows != declared_rows)
    ember::fail("{}: the first line declares {} rows of {} features, the file has {} of {}", path,
                declared_rows, declared_features, t.rows, t.features);
  for (int& v : t.y) v = 1 - v;  // malignant (0 in the file) is the positive class
  return t;
}

// A CSV with a header line and the label (0/1) in the last column, every column numeric (the format
// of the paper's data_num/ds{i}.csv). As the paper does, the minority class is relabelled 1 (with
// exactly balanced classes the labels stay as they are).
Table load_csv(const std::string& path) {
  data::CsvOptions options;
  options.numeric_dtype = ember::DType::float64;
  Table t = table_from_csv(data::read_csv(path, options), fs::path(path).filename().string(), path);
  const int64_t positives = count_positives(t.y);
  if (positives > t.rows - positives && positives < t.rows) {
    for (int& v : t.y) v = 1 - v;
    std::cout << fmt::format("{}: label 1 is the majority ({} of {}): relabelled so that the minority is 1\n",
                             t.name, positives, t.rows);
  }
  return t;
}

// A stand-in for the paper's synthetic set (scikit-learn's make_classification, then PCA to 2-D),
// which is not reproduced: 2-D points, 90% negatives around (0, 0) and 10% positives around
// (2, 1.5), both unit-variance Gaussians (centres 2.5 standard deviations apart, so the classes
// overlap), drawn from ember's seeded generator.
Table make_synthetic(int64_t rows, uint64_t seed) {
  Table t;
  t.name = "synthetic 2-D Gaussians (90:10; not scikit-learn's make_classification)";
  t.rows = rows;
  t.features = 2;
  const int64_t positives = (rows + 5) / 10;
  ember::manual_seed(seed);
  const std::vector<float> noise = ember::randn({rows, 2}).to_vector<float>();
  for (int64_t i = 0; i < rows; ++i) {
    const bool positive = i >= rows - positives;
    t.x.push_back(noise[2 * i] + (positive ? 2.0 : 0.0));
    t.x.push_back(noise[2 * i + 1] + (positive ? 1.5 : 0.0));
    t.y.push_back(positive ? 1 : 0);
  }
  return t;
}

// Z-scores every feature with the whole data set's mean and (population) standard deviation, as the
// paper does before cross-validation (scikit-learn's StandardScaler; a constant column becomes 0).
void standardize(Table& t) {
  for (int64_t j = 0; j < t.features; ++j) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < t.rows; ++i) mean += t.x[i * t.features + j];
    mean /= t.rows;
    for (int64_t i = 0; i < t.rows; ++i) var += std::pow(t.x[i * t.features + j] - mean, 2);
    const double sd = std::sqrt(var / t.rows);
    for (int64_t i = 0; i < t.rows; ++i)
      t.x[i * t.features + j] = (t.x[i * t.features + j] - mean) / (sd > 0 ? sd : 1);
  }
}

// Fisher-Yates with a 64-bit Mersenne Twister (not std::shuffle, whose draws differ between standard
// libraries), so a seed gives the same folds and batches everywhere.
void shuffle(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

// Stratified K-fold: each class's rows are shuffled and dealt to the folds in turn (the second class
// continuing where the first stopped), so fold sizes and per-class counts differ by at most one. Not
// scikit-learn's exact assignment (StratifiedKFold(shuffle=True, random_state=2) in the paper).
std::vector<std::vector<int64_t>> stratified_folds(const std::vector<int>& y, int folds, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int64_t>> out(folds);
  int next = 0;
  for (int c = 0; c < 2; ++c) {
    std::vector<int64_t> rows;
    for (size_t i = 0; i < y.size(); ++i)
      if (y[i] == c) rows.push_back(static_cast<int64_t>(i));
    shuffle(rows, rng);
    for (int64_t r : rows) {
      out[next].push_back(r);
      next = (next + 1) % folds;
    }
  }
  for (auto& f : out) std::sort(f.begin(), f.end());
  return out;
}

// ---- the losses and their recipes ----

enum class Kind { mse, bce, anyloss };

struct LossSpec {
  std::string key, label;
  Kind kind;
  losses::Metric metric = losses::Metric::accuracy;
  double beta = 1.0;
  double lr;
  std::string batch_rule;  // "5%", "45% of data", "fold"
};

const std::vector<LossSpec>& all_losses() {
  using M = losses::Metric;
  static const std::vector<LossSpec> specs = {
      {"mse", "MSE", Kind::mse, M::accuracy, 1.0, 5e-3, "5%"},
      {"bce", "BCE", Kind::bce, M::accuracy, 1.0, 3e-3, "5%"},
      {"acc", "AnyLoss-Acc", Kind::anyloss, M::accuracy, 1.0, 1e-3, "5%"},
      {"f1", "AnyLoss-F1", Kind::anyloss, M::f_beta, 1.0, 1e-3, "5%"},
      {"f0.5", "AnyLoss-F0.5", Kind::anyloss, M::f_beta, 0.5, 1e-3, "5%"},
      {"f2", "AnyLoss-F2", Kind::anyloss, M::f_beta, 2.0, 1e-3, "5%"},
      {"g", "AnyLoss-G", Kind::anyloss, M::g_mean, 1.0, 1e-3, "45% of data"},
      {"bacc", "AnyLoss-BAcc", Kind::anyloss, M::balanced_accuracy, 1.0, 1e-3, "fold"},
  };
  return specs;
}

std::vector<std::string> loss_keys() {
  std::vector<std::string> keys;
  for (const LossSpec& s : all_losses()) keys.push_back(s.key);
  return keys;
}

// The paper's batch size for a loss: int(0.05 x the training fold) for most, ceil(0.45 x the whole
// data set) for G-mean (at most the fold), the whole training fold for balanced accuracy. A positive
// `fraction` (--batch-fraction) replaces these rules for every loss: int(fraction x the training fold).
int64_t batch_size(const LossSpec& s, int64_t train_rows, int64_t all_rows, double fraction) {
  if (fraction > 0)
    return std::clamp<int64_t>(static_cast<int64_t>(fraction * static_cast<double>(train_rows)), 1,
                               train_rows);
  if (s.batch_rule == "fold") return train_rows;
  if (s.batch_rule == "45% of data")
    return std::min(train_rows, static_cast<int64_t>(std::ceil(0.45 * static_cast<double>(all_rows))));
  return std::max<int64_t>(1, static_cast<int64_t>(0.05 * static_cast<double>(train_rows)));
}

// G-mean and balanced accuracy divide by each class's count in the batch: 0/0 without one class.
bool needs_both_classes(const LossSpec& s) {
  return s.kind == Kind::anyloss &&
         (s.metric == losses::Metric::g_mean || s.metric == losses::Metric::balanced_accuracy);
}

// ---- the model ----

// The paper's Keras MLP without its final sigmoid: Dense(2, he_normal) -> BatchNormalization ->
// sigmoid -> Dense(1, glorot_uniform), biases zero. Keras's he_normal is a normal truncated at two
// standard deviations, scaled so that the truncated draw has variance 2 / fan_in; its batch norm has
// epsilon 1e-3 and a moving-average momentum of 0.99 (PyTorch's convention: 0.01). The score it
// returns is a logit: sigmoid(score) is the probability (BCE uses the fused, stable form).
std::shared_ptr<nn::Sequential> make_model(int64_t features) {
  auto hidden = std::make_shared<nn::Linear>(features, 2);
  const double sd = std::sqrt(2.0 / static_cast<double>(features)) / 0.87962566103423978;
  nn::init::trunc_normal_(hidden->weight, 0.0, sd, -2 * sd, 2 * sd);
  nn::init::zeros_(hidden->bias);
  auto out = std::make_shared<nn::Linear>(2, 1);
  nn::init::xavier_uniform_(out->weight);
  nn::init::zeros_(out->bias);
  return std::make_shared<nn::Sequential>(hidden, std::make_shared<nn::BatchNorm1d>(2, 1e-3, 0.01),
                                          std::make_shared<nn::Sigmoid>(), out);
}

// ---- one training run and its test metrics ----

struct Settings {
  int epochs = 100;
  double batch_fraction = 0;  // 0: the paper's rule per loss
  double amplifier = 73.0;
  bool official_n = false;
  uint64_t seed = 2;
};

struct FoldResult {
  train::BinaryCounts counts;
  double auc = 0, log_loss = 0, train_loss = 0, seconds = 0;
  int64_t batch = 0, steps = 0, skipped = 0;
};

using examples::seconds_since;

// Trains a fresh model (initial weights from `init_seed`) with one loss on the training rows, then
// scores the test rows. The epoch orders come from `order_seed`: every loss of a fold sees the same
// shuffles (and so, with the same batch size, the same batches).
FoldResult run_fold(const LossSpec& spec, const ember::Tensor& x, const ember::Tensor& y,
                    const std::vector<int64_t>& train_rows, const std::vector<int64_t>& test_rows,
                    int64_t all_rows, const Settings& settings, uint64_t init_seed, uint64_t order_seed) {
  const auto start = std::chrono::steady_clock::now();
  FoldResult r;
  const int64_t n = static_cast<int64_t>(train_rows.size());
  r.batch = batch_size(spec, n, all_rows, settings.batch_fraction);

  ember::manual_seed(init_seed);
  std::shared_ptr<nn::Sequential> model = make_model(x.size(1));
  ember::optim::Adam optimizer(model->parameters(), {.lr = spec.lr, .eps = 1e-7});  // Keras's epsilon
  losses::AnyLossOptions any;
  any.metric = spec.metric;
  any.beta = spec.beta;
  any.amplifier = settings.amplifier;
  if (settings.official_n) any.fixed_n = n;

  std::mt19937_64 rng(order_seed);
  std::vector<int64_t> order = train_rows;
  model->train();
  for (int epoch = 0; epoch < settings.epochs; ++epoch) {
    shuffle(order, rng);
    double loss_sum = 0;
    int64_t loss_count = 0;
    for (int64_t begin = 0, size = 0; begin < n; begin += size) {
      // Batches in order, the last one possibly smaller, as Keras cuts them; but a last batch of one row
      // joins the one before (BatchNorm's batch variance needs two rows; Keras would return beta).
      size = n - begin - r.batch == 1 ? r.batch + 1 : std::min(r.batch, n - begin);
      const ember::Tensor index =
          ember::tensor<int64_t>(std::vector<int64_t>(order.begin() + begin, order.begin() + begin + size));
      const ember::Tensor xb = x.index_select(0, index), yb = y.index_select(0, index);
      if (needs_both_classes(spec)) {
        const double positives = yb.sum().item<double>();
        if (positives == 0 || positives == static_cast<double>(size)) {  // 0/0: skip the batch
          ++r.skipped;
          continue;
        }
      }
      const ember::Tensor score = model->forward(xb).squeeze(1);
      ember::Tensor loss;
      if (spec.kind == Kind::mse)
        loss = losses::mse_loss(score, yb);
      else if (spec.kind == Kind::bce)
        loss = losses::binary_cross_entropy_with_logits(score, yb);
      else
        loss = losses::anyloss(ember::sigmoid(score), yb, any);
      const double value = loss.item<double>();
      if (!std::isfinite(value))
        ember::fail("{}: the training loss is {} (epoch {})", spec.label, value, epoch + 1);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += value;
      ++loss_count;
      ++r.steps;
    }
    r.train_loss = loss_count ? loss_sum / loss_count : std::nan("");
  }

  // Test: batch norm on its running statistics, no graph.
  model->eval();
  ember::NoGradGuard no_grad;
  const ember::Tensor index = ember::tensor<int64_t>(test_rows);
  const ember::Tensor yt = y.index_select(0, index);
  const ember::Tensor score = model->forward(x.index_select(0, index)).squeeze(1);
  // The MSE model's output is not a probability: its prediction is score > 0.5, which clamping to
  // [0, 1] keeps. The ROC AUC ranks the raw scores (sigmoids saturated at 1.0 in float32 would tie).
  const ember::Tensor p = spec.kind == Kind::mse ? score.clamp(0.0, 1.0) : ember::sigmoid(score);
  r.counts = train::binary_counts(p, yt, 0.5);
  r.auc = train::roc_auc(score, yt);
  r.log_loss = spec.kind == Kind::mse ? std::nan("") : train::log_loss(p, yt);
  r.seconds = seconds_since(start);
  return r;
}

// ---- the summary ----

struct MetricColumn {
  std::string name, key;  // in the table, in metrics.jsonl
  double (*value)(const FoldResult&);
};

const std::vector<MetricColumn>& metric_columns() {
  static const std::vector<MetricColumn> columns = {
      {"Acc", "accuracy", [](const FoldResult& r) { return r.counts.accuracy(); }},
      {"F1", "f1", [](const FoldResult& r) { return r.counts.f_beta(1.0); }},
      {"F0.5", "f0.5", [](const FoldResult& r) { return r.counts.f_beta(0.5); }},
      {"F2", "f2", [](const FoldResult& r) { return r.counts.f_beta(2.0); }},
      {"G-mean", "g_mean", [](const FoldResult& r) { return r.counts.g_mean(); }},
      {"BAcc", "balanced_accuracy", [](const FoldResult& r) { return r.counts.balanced_accuracy(); }},
      {"AUC", "roc_auc", [](const FoldResult& r) { return r.auc; }},
  };
  return columns;
}

// The metric column an AnyLoss row aims at (-1: none).
int target_column(const LossSpec& s) {
  if (s.kind != Kind::anyloss) return -1;
  if (s.metric == losses::Metric::accuracy) return 0;
  if (s.metric == losses::Metric::f_beta) return s.beta == 1.0 ? 1 : s.beta == 0.5 ? 2 : 3;
  if (s.metric == losses::Metric::g_mean) return 4;
  return 5;
}

struct MeanStd {
  double mean = 0, std = 0;  // std: sample standard deviation over the folds (0 for one fold)
};

MeanStd mean_std(const std::vector<FoldResult>& runs, double (*value)(const FoldResult&)) {
  MeanStd m;
  for (const FoldResult& r : runs) m.mean += value(r);
  m.mean /= static_cast<double>(runs.size());
  if (runs.size() > 1) {
    for (const FoldResult& r : runs) m.std += std::pow(value(r) - m.mean, 2);
    m.std = std::sqrt(m.std / static_cast<double>(runs.size() - 1));
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "The AnyLoss paper's tabular experiment: an MLP trained with MSE, BCE and AnyLoss for each metric, "
      "scored by stratified K-fold cross-validation."};
  std::string dataset = "breast-cancer", data_path, out_dir = "anyloss_tabular_out";
  std::vector<std::string> chosen = loss_keys();
  int folds = 10, threads = 1;
  int64_t samples = 10000;
  Settings settings;
  app.add_option("--dataset", dataset,
                 "breast-cancer (scikit-learn's copy), csv (--data-path; header line, label 0/1 last) or "
                 "synthetic (2-D Gaussians, 90:10)")
      ->check(CLI::IsMember({"breast-cancer", "csv", "synthetic"}))
      ->capture_default_str();
  app.add_option("--data-path", data_path,
                 "the data file (default for breast-cancer: "
                 "/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv, from the Debian "
                 "package python3-sklearn)");
  app.add_option("--samples", samples, "rows of the synthetic set")
      ->check(CLI::Range(int64_t{20}, int64_t{10000000}))
      ->capture_default_str();
  app.add_option("--losses", chosen, "the training losses, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(loss_keys()))
      ->capture_default_str();
  app.add_option("--folds", folds, "K of the stratified K-fold cross-validation")
      ->check(CLI::Range(2, 1000))
      ->capture_default_str();
  app.add_option("--epochs", settings.epochs, "passes over the training fold")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--batch-fraction", settings.batch_fraction,
                 "batch = int(this x the training fold) for every loss (default: the paper's rule per loss)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--L", settings.amplifier, "AnyLoss's amplifier L (steepness of sigmoid(L (p - 1/2)))")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--official-n", settings.official_n,
               "AnyLoss with n = the whole training fold, as the official code (default: n = the batch)");
  app.add_option("--out-dir", out_dir, "where metrics.jsonl goes")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for the math (the model is tiny: 1 is fastest)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", settings.seed, "seeds the folds, the initial weights and the batch order")
      ->capture_default_str();
  if (std::optional<int> exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;
  if (dataset == "breast-cancer" && data_path.empty())
    data_path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv";
  if (dataset == "csv" && data_path.empty()) {
    std::cerr << "error: --dataset csv needs --data-path\n";
    return 1;
  }
  // The chosen losses, in the table's order, each once.
  std::vector<LossSpec> specs;
  for (const LossSpec& s : all_losses())
    if (std::find(chosen.begin(), chosen.end(), s.key) != chosen.end()) specs.push_back(s);

  try {
    const auto start = std::chrono::steady_clock::now();
    ember::set_num_threads(threads);
    if (dataset != "synthetic" && !fs::is_regular_file(data_path)) ember::fail("no such file: {}", data_path);
    Table t = dataset == "breast-cancer" ? load_breast_cancer(data_path)
              : dataset == "csv"         ? load_csv(data_path)
                                         : make_synthetic(samples, settings.seed);
    const int64_t positives = count_positives(t.y), negatives = t.rows - positives;
    if (positives == 0 || negatives == 0)
      ember::fail("{}: every row has label {}: a binary classifier needs both classes", t.name,
                  positives ? 1 : 0);
    if (std::min(positives, negatives) < folds)
      ember::fail("{}: the minority class has {} rows, fewer than the {} folds", t.name,
                  std::min(positives, negatives), folds);
    standardize(t);
    std::vector<float> xf(t.x.begin(), t.x.end()), yf(t.y.begin(), t.y.end());
    const ember::Tensor x = ember::tensor<float>(xf, {t.rows, t.features}), y = ember::tensor<float>(yf);
    const std::vector<std::vector<int64_t>> fold_rows = stratified_folds(t.y, folds, settings.seed);

    std::cout << fmt::format(
        "{}: {} rows, {} features, {} positives (class 1, the minority: {:.1f}%); features z-scored over the "
        "whole set\n",
        t.name, t.rows, t.features, positives, 100.0 * positives / t.rows);
    const int64_t train_rows = t.rows - static_cast<int64_t>(fold_rows[0].size());
    std::cout << fmt::format(
        "{}-fold stratified CV (seed {}), {} epochs, Adam; AnyLoss L = {}, n = {}; {} thread(s)\n", folds,
        settings.seed, settings.epochs, settings.amplifier,
        settings.official_n ? "the training fold (--official-n)" : "the batch", threads);
    std::cout << fmt::format("{:<14} {:>7}  {:>6}  {}\n", "loss", "lr", "batch",
                             "(fold 1; the paper's rule)");
    for (const LossSpec& s : specs)
      std::cout << fmt::format("{:<14} {:>7}  {:>6}  {}\n", s.label, s.lr,
                               batch_size(s, train_rows, t.rows, settings.batch_fraction),
                               settings.batch_fraction > 0     ? "--batch-fraction"
                               : s.batch_rule == "fold"        ? "the whole training fold"
                               : s.batch_rule == "45% of data" ? "ceil(0.45 x data set)"
                                                               : "int(0.05 x training fold)");

    const std::string metrics_path = (fs::path(out_dir) / "metrics.jsonl").string();
    fs::create_directories(out_dir);
    fs::remove(metrics_path);  // one file per run
    train::MetricsLogger metrics(metrics_path);

    std::vector<std::vector<FoldResult>> results(specs.size());
    for (int k = 0; k < folds; ++k) {
      std::vector<int64_t> train_idx;
      for (int j = 0; j < folds; ++j)
        if (j != k) train_idx.insert(train_idx.end(), fold_rows[j].begin(), fold_rows[j].end());
      std::sort(train_idx.begin(), train_idx.end());
      const uint64_t init_seed = settings.seed * 1000003 + static_cast<uint64_t>(k);
      const uint64_t order_seed = settings.seed * 7919 + static_cast<uint64_t>(k) + 1;
      for (size_t i = 0; i < specs.size(); ++i) {
        const LossSpec& s = specs[i];
        const FoldResult r =
            run_fold(s, x, y, train_idx, fold_rows[k], t.rows, settings, init_seed, order_seed);
        results[i].push_back(r);
        std::cout << fmt::format(
            "fold {}/{} {:<13} train loss {:.4f}  test Acc {:.4f} F1 {:.4f} G {:.4f} BAcc {:.4f} AUC "
            "{:.4f}{} "
            "({:.1f} s)\n",
            k + 1, folds, s.label, r.train_loss, r.counts.accuracy(), r.counts.f_beta(1.0), r.counts.g_mean(),
            r.counts.balanced_accuracy(), r.auc,
            r.skipped ? fmt::format(", {} one-class batches skipped", r.skipped) : "", r.seconds);
        train::MetricRow row = {{"loss", s.key},
                                {"fold", int64_t{k + 1}},
                                {"lr", s.lr},
                                {"batch_size", r.batch},
                                {"steps", r.steps},
                                {"skipped_batches", r.skipped},
                                {"train_loss", r.train_loss},
                                {"tp", r.counts.tp},
                                {"fp", r.counts.fp},
                                {"tn", r.counts.tn},
                                {"fn", r.counts.fn}};
        for (const MetricColumn& c : metric_columns()) row.emplace_back(c.key, c.value(r));
        row.emplace_back("log_loss", r.log_loss);  // null for MSE (its output is not a probability)
        row.emplace_back("seconds", r.seconds);
        metrics.log(row);
      }
    }

    // The summary: mean (standard deviation) over the folds; [brackets] mark the metric a loss aims at.
    std::cout << fmt::format("\n{}: mean (std) test metrics over {} folds, threshold 0.5\n", t.name, folds);
    std::cout << fmt::format("{:<14}", "loss");
    for (const MetricColumn& c : metric_columns()) std::cout << fmt::format(" {:>16}", c.name);
    std::cout << "\n";
    for (size_t i = 0; i < specs.size(); ++i) {
      std::cout << fmt::format("{:<14}", specs[i].label);
      for (size_t c = 0; c < metric_columns().size(); ++c) {
        const MeanStd m = mean_std(results[i], metric_columns()[c].value);
        const bool aimed = static_cast<int>(c) == target_column(specs[i]);
        std::cout << fmt::format(
            " {:>16}", fmt::format("{}{:.4f} ({:.3f}){}", aimed ? "[" : "", m.mean, m.std, aimed ? "]" : ""));
      }
      std::cout << "\n";
    }
    // Each AnyLoss row on its own metric against BCE's, the paper's comparison.
    const auto bce =
        std::find_if(specs.begin(), specs.end(), [](const LossSpec& s) { return s.kind == Kind::bce; });
    if (bce != specs.end()) {
      std::string line;
      for (size_t i = 0; i < specs.size(); ++i) {
        const int c = target_column(specs[i]);
        if (c < 0) continue;
        const auto value = metric_columns()[c].value;
        line += fmt::format(
            "  {} {:+.4f}", metric_columns()[c].name,
            mean_std(results[i], value).mean - mean_std(results[bce - specs.begin()], value).mean);
      }
      if (!line.empty()) std::cout << "AnyLoss aimed at a metric minus BCE on it:" << line << "\n";
    }
    if (dataset == "breast-cancer")
      std::cout << "paper (official README, Cancer, AnyLoss at L = 73, each loss on its own metric): "
                   "Acc 1.000, F1 .989, BAcc 1.000\n";
    std::cout << fmt::format("done in {}; metrics in {}\n", train::format_duration(seconds_since(start)),
                             metrics_path);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
