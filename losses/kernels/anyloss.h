#pragma once
// AnyLoss kernels (CPU: losses/cpu/anyloss.cpp; a CUDA backend registers the same signatures).
// Both are single passes over the batch: the loss needs three sums, and its gradient with
// respect to each q_i depends only on whether y_i is 1 or 0.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

// p and y are contiguous, of one shape and one floating dtype. With q = sigmoid(L (p - 1/2))
// writes into `out` (float64 [6], same device):
//   out[0] = sum y,  out[1] = sum q,  out[2] = sum y q,
//   out[3] = how many p lie outside [0, 1] (NaN is let through: it yields a NaN loss),
//   out[4] = how many y lie outside [0, 1] (NaN included),
//   out[5] = one offending value, p first (0 when there is none), for the error message.
using AnyLossSumsFn = void (*)(const Tensor& p, const Tensor& y, double amplifier, const Tensor& out);
EMBER_DECLARE_STUB(anyloss_sums_stub, AnyLossSumsFn);

// grad[i] = (c_pos y[i] + c_neg (1 - y[i])) * dq/dp[i], where dq/dp = L sigmoid(t) sigmoid(-t)
// with t = L (p[i] - 1/2), evaluated without cancellation. c_pos and c_neg are d loss / d q for a
// positive and a negative sample (the upstream gradient already folded in).
using AnyLossBackwardFn = void (*)(const Tensor& p, const Tensor& y, double amplifier, double c_pos,
                                   double c_neg, const Tensor& grad);
EMBER_DECLARE_STUB(anyloss_backward_stub, AnyLossBackwardFn);

}  // namespace ember
