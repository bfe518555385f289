// ember::train: the progress bar (plain and terminal modes), the metrics log, accuracy helpers and
// the training-curve plot.
#include <ember/data.h>
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/train.h>

#include <cmath>
#include <sstream>

#include "data_files.h"
#include "harness.h"

namespace ember::testing {
namespace {

using train::MetricRow;
using train::ProgressBar;
using train::ProgressOptions;

// ================================================================================== progress ====

TEST(Progress, PlainLinesPerIntervalWhenNotATerminal) {
  std::ostringstream out;
  double now = 0;
  ProgressOptions o;
  o.out = &out;
  o.interval_s = 1.0;
  o.clock = [&] { return now; };
  {
    ProgressBar bar(4, "epoch 1/2", o);
    now = 0.5;
    bar.update(32, 2.0);  // 0.5 s since the start: too soon for a line
    now = 1.0;
    bar.update(32, 1.0);  // 64 items in 1 s; 0.5 s per step, 2 steps left; mean loss 1.5
    now = 1.5;
    bar.update(32, 3.0);
    now = 4.0;
    bar.update(16);  // the last step: its line is the summary below
    EXPECT_DOUBLE_EQ(bar.running_loss(), 2.0);
    EXPECT_DOUBLE_EQ(bar.items_per_second(), 28.0);
  }  // the destructor finishes the bar
  EXPECT_EQ(out.str(),
            "epoch 1/2 2/4 (50%)  64.0 items/s  ETA 0:01  loss 1.5000\n"
            "epoch 1/2 4/4 (100%)  28.0 items/s  took 0:04  loss 2.0000\n");
}

TEST(Progress, InteractiveBarRedrawsOneLine) {
  std::ostringstream out;
  double now = 0;
  ProgressOptions o;
  o.out = &out;
  o.interactive = true;
  o.bar_width = 10;
  o.unit = "img";
  o.clock = [&] { return now; };
  ProgressBar bar(4, "train", o);
  now = 1;
  bar.update(100, 0.5);
  EXPECT_EQ(out.str(), "\rtrain [==>       ] 1/4 (25%)  100 img/s  ETA 0:03  loss 0.5000\x1b[K");
  now = 2;
  bar.update(100, 0.25);
  bar.finish();
  bar.finish();  // idempotent
  EXPECT_EQ(out.str().substr(out.str().rfind('\r')),
            "\rtrain [=====>    ] 2/4 (50%)  100 img/s  took 0:02  loss 0.3750\x1b[K\n");
  EMBER_EXPECT_THROW_MSG(bar.update(1), "the bar 'train' is already finished");
}

TEST(Progress, DurationsAndBadArguments) {
  EXPECT_EQ(train::format_duration(0), "0:00");
  EXPECT_EQ(train::format_duration(65.4), "1:05");
  EXPECT_EQ(train::format_duration(3 * 3600 + 7), "3:00:07");
  EXPECT_EQ(train::format_duration(NAN), "-:--");
  EMBER_EXPECT_THROW_MSG(ProgressBar(-1, "x"), "total must be non-negative, got -1");
  std::ostringstream out;
  ProgressBar bar(2, "x", {.out = &out});
  EMBER_EXPECT_THROW_MSG(bar.update(-3), "items must be non-negative, got -3");
  EXPECT_TRUE(std::isnan(bar.running_loss()));
}

// =================================================================================== metrics ====

TEST(Metrics, JsonlRowsAppendInOrder) {
  TempDir dir("metrics");
  const std::string path = dir.file("run.jsonl");
  {
    train::MetricsLogger log(path);
    EXPECT_EQ(log.format(), train::MetricsFormat::jsonl);
    log.log({{"epoch", 1}, {"loss", 0.5}, {"split", "train"}});
    log.log({{"epoch", 2}, {"loss", NAN}});
  }
  train::MetricsLogger(path).log({{"epoch", 3}, {"acc", 0.875}});  // a second run appends
  EXPECT_EQ(read_text(path),
            "{\"epoch\":1,\"loss\":0.5,\"split\":\"train\"}\n"
            "{\"epoch\":2,\"loss\":null}\n"
            "{\"epoch\":3,\"acc\":0.875}\n");
  std::vector<MetricRow> rows = train::read_metrics(path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (MetricRow{{"epoch", int64_t{1}}, {"loss", 0.5}, {"split", std::string("train")}}));
  EXPECT_EQ(rows[1], (MetricRow{{"epoch", int64_t{2}}}));  // null is left out
  EMBER_EXPECT_THROW_MSG(train::MetricsLogger(path).log({{"a", 1}, {"a", 2}}), "the key 'a' appears twice");
  write_text(dir.file("bad.jsonl"), "{\"a\":1}\n[1,2]\n");
  EMBER_EXPECT_THROW_MSG(train::read_metrics(dir.file("bad.jsonl")), "bad.jsonl:2: not a JSON object");
}

TEST(Metrics, CsvKeepsItsColumnsAcrossRuns) {
  TempDir dir("metrics");
  const std::string path = dir.file("run.csv");
  {
    train::MetricsLogger log(path);
    log.log({{"epoch", 1}, {"loss", 0.25}, {"note", "a,b"}});
    log.log({{"epoch", 2}});
  }
  train::MetricsLogger resumed(path);  // reads the existing header
  resumed.log({{"loss", 0.125}, {"epoch", 3}});
  EXPECT_EQ(read_text(path), "epoch,loss,note\n1,0.25,\"a,b\"\n2,,\n3,0.125,\n");
  EMBER_EXPECT_THROW_MSG(resumed.log({{"lr", 0.1}}),
                         "'lr' is not one of the CSV columns (epoch, loss, note)");
  std::vector<MetricRow> rows = train::read_metrics(path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (MetricRow{{"epoch", int64_t{1}}, {"loss", 0.25}, {"note", std::string("a,b")}}));
  EXPECT_EQ(rows[2], (MetricRow{{"epoch", int64_t{3}}, {"loss", 0.125}}));
  EMBER_EXPECT_THROW_MSG(train::read_metrics(dir.file("none.csv")), "read_metrics: cannot open");
  // the file is read line by line, so a line break in a field is refused before anything is written
  EMBER_EXPECT_THROW_MSG(resumed.log({{"epoch", 4}, {"note", "two\nlines"}}), "'note' holds a line break");
  EXPECT_EQ(train::read_metrics(path).size(), 3u);
  EMBER_EXPECT_THROW_MSG(train::MetricsLogger(dir.file("new.csv")).log({{"a\rb", 1}}),
                         "'a\rb' holds a line break");
}

// ================================================================================== accuracy ====

TEST(Accuracy, TopOneAndTopKWithTies) {
  // Row 0: the target (3) is the largest. Row 1: the target ties with a lower class -> second.
  // Row 2: the target ties with a higher class (which does not beat it) but 1 beats it -> second.
  // Row 3: the target is the largest.
  Tensor logits = tensor<float>({1, 3, 2, 5, 0, 5, 0, 0, 1, 2, 1, 0}, {4, 3});
  Tensor targets = tensor<int64_t>({1, 2, 0, 0}, {4});
  EXPECT_EQ(train::count_correct(logits, targets), 2);
  EXPECT_DOUBLE_EQ(train::accuracy(logits, targets), 0.5);
  EXPECT_DOUBLE_EQ(train::topk_accuracy(logits, targets, 2), 1.0);
  EXPECT_DOUBLE_EQ(train::topk_accuracy(logits.to(kFloat64), targets.to(kInt32), 1), 0.5);
  EXPECT_EQ(train::count_correct(logits.to(kBFloat16), targets), 2);  // a bf16 model's scores
  EXPECT_DOUBLE_EQ(train::topk_accuracy(logits.to(kBFloat16), targets, 2), 1.0);
  EXPECT_EQ(train::count_correct(tensor<float>({NAN, 0}, {1, 2}), tensor<int64_t>({0}, {1})), 0);
  EMBER_EXPECT_THROW_MSG(train::topk_accuracy(logits, targets, 4),
                         "k must be in [1, 3] for 3 classes, got 4");
  EMBER_EXPECT_THROW_MSG(train::accuracy(logits, tensor<int64_t>({1, 2, 3, 0}, {4})),
                         "target 3 of row 2 is out of range [0, 3)");
  EMBER_EXPECT_THROW_MSG(train::accuracy(logits, targets.to(kFloat32)),
                         "targets must be integer class indices");
  EMBER_EXPECT_THROW_MSG(train::accuracy(logits, zeros({3}, kInt64)),
                         "logits [4,3] need targets [4], got [3]");
  EMBER_EXPECT_THROW_MSG(train::accuracy(zeros({4}), targets), "expected logits [N, C], got [4]");
}

// The logits are the inputs themselves (an identity model with a Dropout that eval mode turns off),
// so the same tensors give the expected values: the mean cross-entropy over all 4 examples, in
// batches of 3 and 1, and the accuracy of TopOneAndTopKWithTies's rows.
TEST(Accuracy, EvaluateClassifierOverALoader) {
  Tensor logits = tensor<float>({1, 3, 2, 5, 0, 5, 0, 0, 1, 2, 1, 0}, {4, 3});
  Tensor targets = tensor<int64_t>({1, 2, 0, 0}, {4});
  auto model = std::make_shared<nn::Sequential>(std::make_shared<nn::Dropout>(0.5));
  data::DataLoader loader(std::make_shared<data::TensorDataset>(logits, targets), {.batch_size = 3});
  const train::Evaluation e = train::evaluate_classifier(*model, loader);
  EXPECT_NEAR(e.loss, losses::cross_entropy(logits, targets).item<double>(), 1e-6);
  EXPECT_DOUBLE_EQ(e.accuracy, 0.5);
  EXPECT_TRUE(model->is_training());  // restored
  model->eval();
  train::evaluate_classifier(*model, loader);
  EXPECT_FALSE(model->is_training());
  data::DataLoader empty(std::make_shared<data::TensorDataset>(zeros({0, 3}), zeros({0}, kInt64)), {});
  EMBER_EXPECT_THROW_MSG(train::evaluate_classifier(*model, empty),
                         "evaluate_classifier: the loader gave no examples");
}

// ==================================================================== binary classification ====

// The expected values are sklearn 1.2's (confusion_matrix, precision_score, fbeta_score,
// balanced_accuracy_score, roc_auc_score, log_loss(eps=1e-7)) on the same arrays. Row 4's p = 0.5 is
// predicted negative; rows 1 and 8 tie at 0.4 across the classes, which roc_auc counts as half.
TEST(BinaryMetrics, ConfusionCountsAucAndLogLossMatchSklearn) {
  const Tensor p = tensor<float>({0.9f, 0.4f, 0.65f, 0.2f, 0.5f, 0.8f, 0.3f, 0.55f, 0.4f, 0.0f}, {10});
  const Tensor y = tensor<int64_t>({1, 0, 1, 0, 1, 0, 0, 0, 1, 1}, {10});
  const train::BinaryCounts c = train::binary_counts(p, y);
  EXPECT_EQ(c.tp, 2);
  EXPECT_EQ(c.fp, 2);
  EXPECT_EQ(c.tn, 3);
  EXPECT_EQ(c.fn, 3);
  EXPECT_EQ(c.total(), 10);
  EXPECT_DOUBLE_EQ(c.accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(c.precision(), 0.5);
  EXPECT_DOUBLE_EQ(c.recall(), 0.4);
  EXPECT_DOUBLE_EQ(c.specificity(), 0.6);
  EXPECT_DOUBLE_EQ(c.f_beta(), 0.4444444444444445);
  EXPECT_DOUBLE_EQ(c.f_beta(2), 0.4166666666666667);
  EXPECT_DOUBLE_EQ(c.f_beta(0.5), 0.47619047619047616);
  EXPECT_DOUBLE_EQ(c.g_mean(), 0.48989794855663565);
  EXPECT_DOUBLE_EQ(c.balanced_accuracy(), 0.5);
  EXPECT_NEAR(train::roc_auc(p, y), 0.58, 1e-12);
  EXPECT_NEAR(train::log_loss(p, y), 2.176226672281351, 1e-6);  // p was rounded to float32
  const Tensor p64 = tensor<double>({0.9, 0.4, 0.65, 0.2, 0.5, 0.8, 0.3, 0.55, 0.4, 0.0}, {10});
  EXPECT_NEAR(train::log_loss(p64, y.to(kBool)), 2.176226672281351, 1e-12);
  // A [N, 1] column (a model's output) reads as [N]; a threshold moves the cut.
  EXPECT_EQ(train::binary_counts(p.reshape({10, 1}), y.to(kFloat32), 0.45).tp, 3);
  // An AUC depends only on the scores' order, so logits or any increasing map give the same value.
  EXPECT_NEAR(train::roc_auc(exp(p * 3.0) - 1.0, y), 0.58, 1e-12);
}

TEST(BinaryMetrics, EdgeCasesAndErrors) {
  // No predicted positive: precision 0 (sklearn's zero_division=0), not NaN.
  const train::BinaryCounts none = train::binary_counts(zeros({3}), tensor<int64_t>({1, 0, 1}, {3}));
  EXPECT_EQ(none.fn, 2);
  EXPECT_DOUBLE_EQ(none.precision(), 0.0);
  EXPECT_DOUBLE_EQ(none.f_beta(), 0.0);
  EXPECT_DOUBLE_EQ(none.g_mean(), 0.0);
  EXPECT_DOUBLE_EQ(none.balanced_accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(train::roc_auc(tensor<float>({0.1f, 0.9f}, {2}), tensor<int64_t>({0, 1}, {2})), 1.0);
  EXPECT_DOUBLE_EQ(train::roc_auc(tensor<float>({0.3f, 0.3f}, {2}), tensor<int64_t>({0, 1}, {2})), 0.5);
  EXPECT_NEAR(train::log_loss(tensor<double>({1.0, 0.0}, {2}), tensor<int64_t>({0, 1}, {2})), -std::log(1e-7),
              1e-9);  // clipped, not infinite
  EMBER_EXPECT_THROW_MSG(train::roc_auc(ones({3}), ones({3}, kInt64)),
                         "roc_auc: needs both classes, got 3 positives and 0 negatives");
  EMBER_EXPECT_THROW_MSG(train::roc_auc(tensor<float>({NAN, 1}, {2}), tensor<int64_t>({0, 1}, {2})),
                         "roc_auc: score of row 0 is NaN");
  EMBER_EXPECT_THROW_MSG(train::binary_counts(ones({3}), tensor<int64_t>({0, 2, 1}, {3})),
                         "binary_counts: target must hold 0 or 1, got 2 at row 1");
  EMBER_EXPECT_THROW_MSG(train::log_loss(ones({3}), ones({4})),
                         "log_loss: expected scores [N] and target [N], got [3] and [4]");
  EMBER_EXPECT_THROW_MSG(train::binary_counts(ones({3}, kInt64), ones({3})), "expected floating scores");
  EMBER_EXPECT_THROW_MSG(train::log_loss(zeros({0}), zeros({0})), "log_loss: no rows");
  EMBER_EXPECT_THROW_MSG(none.f_beta(0), "f_beta: beta must be > 0, got 0");
}

// ====================================================================================== plot ====

uint32_t be32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

TEST(Plot, WritesAPngOfLossAndAccuracy) {
  TempDir dir("plot");
  const std::string metrics = dir.file("m.jsonl"), png = dir.file("curves.png");
  train::MetricsLogger log(metrics);
  for (int e = 1; e <= 3; ++e)
    log.log(
        {{"epoch", e}, {"train_loss", 1.0 / e}, {"test_loss", 1.2 / e}, {"test_accuracy", 0.8 + 0.05 * e}});
  log.log({{"step", 10}, {"train_loss", 0.1}});  // no epoch: skipped
  train::PlotResult r = train::plot_training_curves(metrics, png);
  if (!r.written && r.message.find("not found") != std::string::npos) GTEST_SKIP() << r.message;
  ASSERT_TRUE(r.written) << r.message;
  EXPECT_EQ(r.message, "wrote " + png);
  const std::string bytes = read_text(png);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(be32(bytes, 16), 1200u);  // IHDR width: two 600-pixel panels
  EXPECT_EQ(be32(bytes, 20), 450u);
  EXPECT_FALSE(std::filesystem::exists(png + ".plot-data.tmp"));  // temporary files are cleaned up
}

TEST(Plot, ExplainsWhyThereIsNoPlot) {
  TempDir dir("plot");
  const std::string metrics = dir.file("m.csv"), png = dir.file("curves.png");
  train::MetricsLogger(metrics).log({{"epoch", 1}, {"loss", 0.5}});
  train::PlotResult missing = train::plot_training_curves(metrics, png, {.gnuplot = "/nonexistent/gnuplot"});
  EXPECT_FALSE(missing.written);
  EXPECT_NE(missing.message.find("'/nonexistent/gnuplot' was not found on PATH"), std::string::npos)
      << missing.message;
  EXPECT_FALSE(std::filesystem::exists(png));
  train::PlotResult no_x = train::plot_training_curves(metrics, png, {.x = "step"});
  EXPECT_NE(no_x.message.find("has no rows with 'step' and a loss or accuracy column"), std::string::npos);
  train::PlotResult no_file = train::plot_training_curves(dir.file("none.jsonl"), png);
  EXPECT_NE(no_file.message.find("no plot: read_metrics: cannot open"), std::string::npos);
}

}  // namespace
}  // namespace ember::testing
