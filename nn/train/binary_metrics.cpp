// Metrics of binary classifiers: the confusion matrix at a threshold, ROC AUC and log loss. They run
// once per evaluation over host copies in float64, so exactness and clear errors matter more than
// speed here (roc_auc's sort is the only super-linear step).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ember/error.h"
#include "ember/train.h"

namespace ember::train {
namespace {

double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }

// [N] or [N, 1]: a classifier's single output column reads as a vector.
Tensor as_column(const Tensor& t) { return t.dim() == 2 && t.size(1) == 1 ? t.reshape({t.size(0)}) : t; }

struct Pair {
  std::vector<double> score, label;  // label: 0 or 1
};

// The two inputs as float64 host vectors, after checking shapes, dtypes and the labels' values.
Pair read_pair(const char* op, const Tensor& scores_in, const Tensor& target_in) {
  if (!scores_in.defined() || !target_in.defined()) fail("{}: scores and target must be defined", op);
  const Tensor scores = as_column(scores_in), target = as_column(target_in);
  if (!is_floating(scores.dtype()))
    fail("{}: expected floating scores/probabilities, got {}", op, scores.dtype());
  if (scores.dim() != 1 || target.dim() != 1 || scores.size(0) != target.size(0))
    fail("{}: expected scores [N] and target [N], got {} and {}", op, shape_str(scores_in.shape()),
         shape_str(target_in.shape()));
  Pair pair{scores.to_vector<double>(), target.to_vector<double>()};  // (host copies, as float64)
  for (size_t i = 0; i < pair.label.size(); ++i)
    if (pair.label[i] != 0.0 && pair.label[i] != 1.0)
      fail("{}: target must hold 0 or 1, got {} at row {}", op, pair.label[i], i);
  return pair;
}

}  // namespace

double BinaryCounts::accuracy() const {
  return ratio(static_cast<double>(tp + tn), static_cast<double>(total()));
}
double BinaryCounts::precision() const {
  return ratio(static_cast<double>(tp), static_cast<double>(tp + fp));
}
double BinaryCounts::recall() const { return ratio(static_cast<double>(tp), static_cast<double>(tp + fn)); }
double BinaryCounts::specificity() const {
  return ratio(static_cast<double>(tn), static_cast<double>(tn + fp));
}

double BinaryCounts::f_beta(double beta) const {
  if (!(beta > 0)) fail("BinaryCounts::f_beta: beta must be > 0, got {}", beta);
  // (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP): the counts form avoids 0/0 in precision and recall.
  const double b2 = beta * beta;
  const double weighted_tp = (1 + b2) * static_cast<double>(tp);
  return ratio(weighted_tp, weighted_tp + b2 * static_cast<double>(fn) + static_cast<double>(fp));
}

double BinaryCounts::g_mean() const { return std::sqrt(recall() * specificity()); }
double BinaryCounts::balanced_accuracy() const { return (recall() + specificity()) / 2; }

BinaryCounts binary_counts(const Tensor& probabilities, const Tensor& target, double threshold) {
  const Pair pair = read_pair("binary_counts", probabilities, target);
  BinaryCounts c;
  for (size_t i = 0; i < pair.score.size(); ++i) {
    const bool predicted = pair.score[i] > threshold, actual = pair.label[i] == 1.0;
    c.tp += predicted && actual;
    c.fp += predicted && !actual;
    c.tn += !predicted && !actual;
    c.fn += !predicted && actual;
  }
  return c;
}

double roc_auc(const Tensor& scores, const Tensor& target) {
  const Pair pair = read_pair("roc_auc", scores, target);
  const size_t n = pair.score.size();
  for (size_t i = 0; i < n; ++i)
    if (std::isnan(pair.score[i])) fail("roc_auc: score of row {} is NaN", i);
  const double positives = std::accumulate(pair.label.begin(), pair.label.end(), 0.0);
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0)
    fail("roc_auc: needs both classes, got {} positives and {} negatives", positives, negatives);

  // AUC = P(score of a random positive > that of a random negative) + P(tie) / 2, which is the
  // Mann-Whitney U over the ranks: sum the positives' ranks, tied scores sharing their mean rank.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pair.score[a] < pair.score[b]; });
  double positive_rank_sum = 0;
  for (size_t begin = 0; begin < n;) {
    size_t end = begin + 1;
    while (end < n && pair.score[order[end]] == pair.score[order[begin]]) ++end;
    const double mean_rank = (static_cast<double>(begin + 1) + static_cast<double>(end)) / 2;  // 1-based
    for (size_t k = begin; k < end; ++k) positive_rank_sum += pair.label[order[k]] * mean_rank;
    begin = end;
  }
  return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

double log_loss(const Tensor& probabilities, const Tensor& target, double eps) {
  if (!(eps >= 0 && eps < 0.5)) fail("log_loss: eps must be in [0, 0.5), got {}", eps);
  const Pair pair = read_pair("log_loss", probabilities, target);
  if (pair.score.empty()) fail("log_loss: no rows");
  double sum = 0;
  for (size_t i = 0; i < pair.score.size(); ++i) {
    const double p = std::clamp(pair.score[i], eps, 1 - eps);
    sum -= pair.label[i] == 1.0 ? std::log(p) : std::log1p(-p);
  }
  return sum / static_cast<double>(pair.score.size());
}

}  // namespace ember::train
