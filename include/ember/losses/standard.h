#pragma once
// The standard losses, with PyTorch's semantics (same formulas, defaults, weighting and
// reduction rules), plus the comp-sum family of Mao, Mohri and Zhong (ICML 2023).
//
// Layout conventions shared by the classification losses:
//   * scores are [N, C] or [N, C, d1, ...] (class axis 1), or [C] for a single example;
//   * class targets are int64 class ids with the scores' shape minus the class axis;
//   * `Reduction::none` returns one loss per target position (the target's shape).
#include <cstdint>

#include "ember/losses/reduction.h"
#include "ember/tensor.h"

namespace ember::losses {

// ---- classification ----------------------------------------------------------------------

struct CrossEntropyOptions {
  Tensor weight;                 // [C] per-class weights (a constant: it receives no gradient)
  int64_t ignore_index = -100;   // class-id targets equal to this contribute nothing
  double label_smoothing = 0.0;  // in [0, 1]
  Reduction reduction = Reduction::mean;
};
// Softmax cross-entropy from raw logits. `target` is either int64 class ids, or class
// probabilities with the logits' own shape (a floating tensor; it does receive a gradient).
// With class ids, the mean is weighted: sum of losses / sum of weight[target] over the
// non-ignored positions (NaN when every position is ignored), as in PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& = {});

struct NLLOptions {
  Tensor weight;  // [C] per-class weights (constant)
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;
};
// Negative log-likelihood of class ids given log-probabilities: -weight[y] * log_probs[y].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const NLLOptions& = {});

// ---- binary --------------------------------------------------------------------------------

struct BCEWithLogitsOptions {
  Tensor weight;      // broadcast to the logits' shape; multiplies every term
  Tensor pos_weight;  // broadcast to the logits' shape (typically [C]); weighs the positive term
  Reduction reduction = Reduction::mean;
};
// -w [pos_weight * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))], computed without ever
// forming sigmoid(x), so it is finite for any finite logit. `target` has the logits' shape.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const BCEWithLogitsOptions& = {});

struct BCEOptions {
  Tensor weight;  // broadcast to the probabilities' shape (constant)
  Reduction reduction = Reduction::mean;
};
// -w [y log p + (1 - y) log(1 - p)] with each log clamped at -100, as PyTorch does, so p = 0 or
// 1 gives a finite loss. Every probability must lie in [0, 1].
Tensor binary_cross_entropy(const Tensor& probs, const Tensor& target, const BCEOptions& = {});

// ---- regression (input and target must have the same shape) --------------------------------

struct MSEOptions {
  Reduction reduction = Reduction::mean;
};
Tensor mse_loss(const Tensor& input, const Tensor& target, const MSEOptions& = {});

struct L1Options {
  Reduction reduction = Reduction::mean;
};
Tensor l1_loss(const Tensor& input, const Tensor& target, const L1Options& = {});

struct SmoothL1Options {
  Reduction reduction = Reduction::mean;
  double beta = 1.0;  // >= 0; quadratic below beta, linear above; beta = 0 is l1_loss
};
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1Options& = {});

struct HuberOptions {
  Reduction reduction = Reduction::mean;
  double delta = 1.0;  // > 0; quadratic below delta, linear above: delta * smooth_l1 with beta = delta
};
Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberOptions& = {});

// ---- distributions -------------------------------------------------------------------------

// kl_div has one reduction more than the others: batchmean (the sum divided by the batch size,
// which is the true KL divergence per example). PyTorch's default is mean, kept here.
enum class KLDivReduction { none, mean, sum, batchmean };
struct KLDivOptions {
  KLDivReduction reduction = KLDivReduction::mean;
  bool log_target = false;  // true: `target` holds log-probabilities
};
// KL(target || exp(log_input)) pointwise: target * (log target - log_input), with 0 where
// target = 0.
Tensor kl_div(const Tensor& log_input, const Tensor& target, const KLDivOptions& = {});

struct PoissonNLLOptions {
  bool log_input = true;  // true: input is log(rate), loss exp(input) - target * input;
                          // false: input is the rate, loss input - target * log(input + eps)
  bool full = false;      // add Stirling's approximation of log(target!) where target > 1
  double eps = 1e-8;
  Reduction reduction = Reduction::mean;
};
// Negative log-likelihood of target ~ Poisson(rate); target has the input's shape.
Tensor poisson_nll_loss(const Tensor& input, const Tensor& target, const PoissonNLLOptions& = {});

struct GaussianNLLOptions {
  bool full = false;  // add the constant log(2 pi) / 2
  double eps = 1e-6;  // var's value is clamped to at least eps; as in PyTorch (a clamp under no_grad)
                      // its gradient is that of the unclamped var
  Reduction reduction = Reduction::mean;
};
// Negative log-likelihood of target ~ N(input, var): (log var + (input - target)^2 / var) / 2.
// var has input's shape, or input's shape with the last dim 1, or input's shape minus the last dim
// (one variance per example); every var must be >= 0. target broadcasts against input (PyTorch's
// target with a dim of 1).
Tensor gaussian_nll_loss(const Tensor& input, const Tensor& target, const Tensor& var,
                         const GaussianNLLOptions& = {});

struct KDOptions {
  double temperature = 4.0;  // > 0
};
// Hinton knowledge distillation: T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged
// over examples (batchmean; for [N,C,d...] over every position). Gradients flow into both
// arguments: compute the teacher under NoGradGuard (or detach it) when it is fixed.
Tensor kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const KDOptions& = {});

// ---- comp-sum losses (cce.md "Related losses"): functions of nll = -log softmax(x)[y], mean
// over positions. Targets are class ids in [0, C); there is no ignore index.

// (1 - p_y^q) / q with q > 0 (Zhang & Sabuncu); q -> 0 is cross-entropy, q = 1 is mae_loss.
Tensor generalized_cross_entropy(const Tensor& logits, const Tensor& target, double q);
// 1 - p_y, the mean absolute error between softmax(x) and the one-hot target, halved.
Tensor mae_loss(const Tensor& logits, const Tensor& target);
// sum over y' != y of exp(x_y' - x_y) = 1/p_y - 1.
Tensor sum_exponential_loss(const Tensor& logits, const Tensor& target);

}  // namespace ember::losses
