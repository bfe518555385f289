#pragma once
// Kernels of the class-id losses (cross_entropy, nll_loss and the comp-sum family).
//
// Shared contract:
//   * scores (logits or log-probabilities) are contiguous [outer, C, inner] (losses/class_layout.h):
//     row r = o * inner + i reads scores[o, :, i];
//   * target is contiguous int64 with outer * inner entries; weight is contiguous [C] in the
//     scores' dtype, or undefined (every weight 1);
//   * a target is valid when it lies in [0, C), or equals ignore_index while has_ignore_index;
//     an ignored row has loss 0, weight 0 and gradient 0;
//   * forward kernels return -1, or the flat index of the first invalid target (then nothing
//     else they wrote is meaningful);
//   * per-row outputs (loss, grad_loss) are contiguous with outer * inner entries; `lse` is
//     contiguous float64 [outer * inner, 2]: per row (max_c x_c, log sum_c exp(x_c - max)), kept
//     apart so that a confident row's loss and softmax keep their relative accuracy in float32
//     (lse rounded to one float is only good to ulp(max));
//     `denominator` is a 0-d tensor receiving the sum of weight[target] over valid rows (the
//     count of valid rows without a weight): PyTorch's divisor for reduction = mean.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember::losses {

struct ClassTargetParams {
  int64_t ignore_index = -100;
  bool has_ignore_index = true;
  double label_smoothing = 0.0;  // cross_entropy only
};

// Per row with p = softmax(x), W = sum_c w_c, eps = label_smoothing:
//   loss = (1 - eps) w_y (lse - x_y) + (eps / C) sum_c w_c (lse - x_c),  lse = log sum exp x,
// with lse - x_c evaluated as log_sum - (x_c - max).
// The smoothing sum is skipped entirely when eps = 0 (so a -inf logit cannot make 0 * inf).
using CrossEntropyForwardFn = int64_t (*)(const Tensor& loss, const Tensor& lse, const Tensor& denominator,
                                          const Tensor& logits, const Tensor& target, const Tensor& weight,
                                          const ClassTargetParams& params);
// grad_logits (contiguous, the logits' layout) = g_row * d loss_row / d x:
//   p_c ((1 - eps) w_y + eps W / C) - (1 - eps) w_y [c = y] - eps w_c / C.
using CrossEntropyBackwardFn = void (*)(const Tensor& grad_logits, const Tensor& grad_loss,
                                        const Tensor& logits, const Tensor& lse, const Tensor& target,
                                        const Tensor& weight, const ClassTargetParams& params);
// Per row: loss = -w_y * log_probs[y].
using NLLForwardFn = int64_t (*)(const Tensor& loss, const Tensor& denominator, const Tensor& log_probs,
                                 const Tensor& target, const Tensor& weight, const ClassTargetParams& params);
// grad_log_probs (contiguous, zero except at the targets) = -g_row * w_y at [o, y, i].
using NLLBackwardFn = void (*)(const Tensor& grad_log_probs, const Tensor& grad_loss, const Tensor& target,
                               const Tensor& weight, const ClassTargetParams& params);

EMBER_DECLARE_STUB(cross_entropy_forward_stub, CrossEntropyForwardFn);
EMBER_DECLARE_STUB(cross_entropy_backward_stub, CrossEntropyBackwardFn);
EMBER_DECLARE_STUB(nll_forward_stub, NLLForwardFn);
EMBER_DECLARE_STUB(nll_backward_stub, NLLBackwardFn);

}  // namespace ember::losses
