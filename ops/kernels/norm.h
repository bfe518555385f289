#pragma once
// Normalisation kernels (BatchNorm, LayerNorm, GroupNorm). Contract for every kernel here: all tensors are
// contiguous, on one device, of one floating dtype; weight and bias may be undefined (meaning 1
// and 0); outputs that are undefined are not computed. Kernels accumulate sums in double.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

// ---- batch norm: x and grad_out are [N, C, S]; per-channel tensors are [C] ----
// Writes the mean and the biased variance of each channel over its N * S values.
using BatchNormStatsFn = void (*)(const Tensor& x, const Tensor& mean, const Tensor& var);
// out = (x - mean) * invstd * weight + bias, per channel.
using BatchNormApplyFn = void (*)(const Tensor& x, const Tensor& mean, const Tensor& invstd,
                                  const Tensor& weight, const Tensor& bias, const Tensor& out);
// With M = N * S, xhat = (x - mean) * invstd, dy = grad_out, per channel:
//   grad_bias   = sum(dy)
//   grad_weight = sum(dy * xhat)
//   grad_input  = weight * invstd * (dy - (grad_bias + xhat * grad_weight) / M)   if batch_stats
//               = weight * invstd * dy                                            otherwise
// batch_stats says whether mean/invstd are this batch's own statistics (training), which makes
// them functions of x and adds the second term.
using BatchNormBackwardFn = void (*)(const Tensor& grad_out, const Tensor& x, const Tensor& mean,
                                     const Tensor& invstd, const Tensor& weight, bool batch_stats,
                                     const Tensor& grad_input, const Tensor& grad_weight,
                                     const Tensor& grad_bias);
EMBER_DECLARE_STUB(batch_norm_stats_stub, BatchNormStatsFn);
EMBER_DECLARE_STUB(batch_norm_apply_stub, BatchNormApplyFn);
EMBER_DECLARE_STUB(batch_norm_backward_stub, BatchNormBackwardFn);

// ---- layer norm: x and grad_out are [M, N], each of the M rows normalised on its own ----
// weight/bias are [N]; mean and rstd are [M] outputs (rstd = 1 / sqrt(var + eps), biased var).
//   out = (x - mean) * rstd * weight + bias
using LayerNormForwardFn = void (*)(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                                    const Tensor& out, const Tensor& mean, const Tensor& rstd);
// With xhat = (x - mean) * rstd and g = grad_out * weight, per row (means over the N columns):
//   grad_input  = rstd * (g - mean(g) - xhat * mean(g * xhat))
//   grad_weight = sum over rows of grad_out * xhat;   grad_bias = sum over rows of grad_out
using LayerNormBackwardFn = void (*)(const Tensor& grad_out, const Tensor& x, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& weight, const Tensor& grad_input,
                                     const Tensor& grad_weight, const Tensor& grad_bias);
EMBER_DECLARE_STUB(layer_norm_forward_stub, LayerNormForwardFn);
EMBER_DECLARE_STUB(layer_norm_backward_stub, LayerNormBackwardFn);

// ---- group norm: x and grad_out are [N, C, S]; the C channels form `groups` groups of C / groups
// consecutive channels, and each sample's group (its M = C / groups * S values, contiguous) is
// normalised on its own, then scaled and shifted per channel. weight/bias are [C]; mean and rstd
// are [N, groups] outputs (rstd = 1 / sqrt(var + eps), biased var).
//   out = (x - mean) * rstd * weight[c] + bias[c]
using GroupNormForwardFn = void (*)(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                                    double eps, const Tensor& out, const Tensor& mean, const Tensor& rstd);
// With xhat = (x - mean) * rstd and g = grad_out * weight[c], per sample and group (means over its
// M values): layer norm's formulas with a per-channel weight,
//   grad_input  = rstd * (g - mean(g) - xhat * mean(g * xhat))
//   grad_weight[c] = sum over samples and S of grad_out * xhat;   grad_bias[c] = sum of grad_out
using GroupNormBackwardFn = void (*)(const Tensor& grad_out, const Tensor& x, int64_t groups,
                                     const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                     const Tensor& grad_input, const Tensor& grad_weight,
                                     const Tensor& grad_bias);
EMBER_DECLARE_STUB(group_norm_forward_stub, GroupNormForwardFn);
EMBER_DECLARE_STUB(group_norm_backward_stub, GroupNormBackwardFn);

}  // namespace ember
