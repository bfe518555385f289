#pragma once
// ember::train — the training experience around a loop: a progress bar, a metrics log, accuracy
// helpers and a plot of the training curves.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ember/tensor.h"

namespace ember::nn {
class Module;
}
namespace ember::data {
class DataLoader;
}

namespace ember::train {

// ---- progress ----

struct ProgressOptions {
  std::ostream* out = nullptr;      // default: std::cout
  std::optional<bool> interactive;  // redraw one line in place; default: whether stdout is a terminal
                                    // (and `out` is std::cout)
  double interval_s = 10.0;         // not interactive: one plain line per interval (and one at the end)
  int bar_width = 30;
  std::string unit = "items";     // what update() counts, for the rate ("items/s")
  std::function<double()> clock;  // seconds; default std::chrono::steady_clock (tests inject one)
};

// A progress bar over `total` steps (batches) of one epoch, showing the rate in items per second,
// the estimated time left and the running loss (the mean of the losses reported so far):
//   epoch 2/10 [=========>          ] 150/469 (31%)  5821 items/s  ETA 0:07  loss 0.4127
// When the output is not a terminal it prints, instead, one plain line (the same text without the bar)
// per interval, and a last one with the time taken:
//   epoch 2/10 469/469 (100%)  5790 items/s  took 0:10  loss 0.3921
class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string label, ProgressOptions options = {});
  ~ProgressBar();  // finishes, if finish() was not called
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // One step done, covering `items` examples, with its loss (NaN or absent: no loss to report).
  void update(int64_t items, std::optional<double> loss = std::nullopt);
  // Prints the final state (with the elapsed time) and ends the line. Idempotent.
  void finish();

  int64_t steps() const { return steps_; }
  double running_loss() const;      // NaN before the first loss
  double items_per_second() const;  // since construction
  double eta_seconds() const;       // at the current rate
  std::string line() const;         // the text of the current state

 private:
  double now() const;
  std::string body() const;  // line() without the label
  void draw(bool final);

  int64_t total_;
  std::string label_;
  ProgressOptions options_;
  bool interactive_;
  double start_, last_draw_;
  int64_t steps_ = 0, items_ = 0, losses_ = 0;
  double loss_sum_ = 0;
  bool finished_ = false;
};

// "1:05", "12:00:03"
std::string format_duration(double seconds);

// ---- metrics ----

using MetricValue = std::variant<int64_t, double, std::string>;
using MetricRow = std::vector<std::pair<std::string, MetricValue>>;
enum class MetricsFormat { jsonl, csv };

// Appends one row per log() call to a file, flushed at once so a crash loses nothing already logged.
// JSONL: one JSON object per line. CSV: the first row fixes the columns and writes the header (an
// existing file keeps its header, so a resumed run appends under it); later rows may leave columns
// empty but may not add new ones. Non-finite doubles are written as null (JSONL) or empty (CSV).
class MetricsLogger {
 public:
  // The format defaults from the extension: ".csv" is CSV, anything else JSONL.
  explicit MetricsLogger(std::string path, std::optional<MetricsFormat> format = std::nullopt);
  void log(const MetricRow& row);
  const std::string& path() const { return path_; }
  MetricsFormat format() const { return format_; }

 private:
  std::string path_;
  MetricsFormat format_;
  std::vector<std::string> columns_;  // CSV only
};

// Reads a metrics file back (the format from the extension, as above). Numbers without a fraction or
// exponent come back as int64, other numbers as double, null / empty fields are left out.
std::vector<MetricRow> read_metrics(const std::string& path);

// ---- accuracy ----

// Rows of `logits` [N, C] whose target class (targets: integer [N]) is among the k largest logits.
// Ties rank the lower class index first, as argmax does.
int64_t count_correct(const Tensor& logits, const Tensor& targets, int64_t k = 1);
double accuracy(const Tensor& logits, const Tensor& targets);                  // in [0, 1]
double topk_accuracy(const Tensor& logits, const Tensor& targets, int64_t k);  // in [0, 1]

// A classifier's mean cross-entropy and top-1 accuracy over every batch of `loader`, computed in
// eval mode (BatchNorm's running statistics, no dropout) without recording; the model's mode is
// restored afterwards. Throws when the loader gives no examples.
struct Evaluation {
  double loss = 0, accuracy = 0;
};
Evaluation evaluate_classifier(nn::Module& model, data::DataLoader& loader);

// ---- binary classification ----

// The confusion matrix of a binary classifier and the metrics read from it. A ratio whose
// denominator is 0 (e.g. precision with no predicted positive) is 0, as sklearn's zero_division=0.
struct BinaryCounts {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  int64_t total() const { return tp + fp + tn + fn; }
  double accuracy() const;
  double precision() const;
  double recall() const;       // true-positive rate
  double specificity() const;  // true-negative rate
  double f_beta(double beta = 1.0) const;
  double g_mean() const;             // sqrt(recall * specificity)
  double balanced_accuracy() const;  // (recall + specificity) / 2
};

// probabilities: floating [N]; target: [N] of 0 and 1 (any numeric or bool dtype). A row is
// predicted positive when its probability is > threshold (so 0.5 itself is negative, as rounding
// half to even does in the papers' code). A NaN probability is predicted negative.
BinaryCounts binary_counts(const Tensor& probabilities, const Tensor& target, double threshold = 0.5);

// The area under the ROC curve of `scores` (any monotone score: probabilities or logits), computed
// as the Mann-Whitney statistic with tied scores sharing their average rank, as sklearn's
// roc_auc_score. Throws when one class is absent (the area is undefined) or a score is NaN.
double roc_auc(const Tensor& scores, const Tensor& target);

// The mean binary cross-entropy of probabilities clipped to [eps, 1 - eps], as sklearn's
// log_loss(eps=1e-7) (the value FuxiCTR reports as "logloss").
double log_loss(const Tensor& probabilities, const Tensor& target, double eps = 1e-7);

// ---- plots ----

struct PlotOptions {
  std::string x = "epoch";  // the x column; rows without it are skipped
  std::string title = "Training curves";
  std::string gnuplot = "gnuplot";  // the program (looked up on PATH)
};

struct PlotResult {
  bool written = false;
  std::string message;  // what was written, or why nothing was
};

// Draws the curves of a metrics file into a PNG with gnuplot: every numeric column whose name contains
// "loss" on the left, every one containing "acc" on the right, against `x`. Never throws for a
// missing or failing gnuplot: the result says why there is no plot, so a training run still succeeds.
PlotResult plot_training_curves(const std::string& metrics_path, const std::string& png_path,
                                const PlotOptions& options = {});

}  // namespace ember::train
