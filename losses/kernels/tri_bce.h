#pragma once
// Tri-BCE kernels (CPU: losses/cpu/tri_bce.cpp; a CUDA backend registers the same signatures).
#include <array>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

// Forward reduction. All tensors are contiguous, of one shape and of one floating dtype (the
// target already cast to it). Writes into `out` (float64 [5], same device):
//   out[0..2] = sum_i bce(z_k[i], y[i]) for z_0 = fused, z_1 = a, z_2 = b, where
//               bce(z, y) = max(z, 0) - z*y + log1p(exp(-|z|))   (the stable logit form);
//   out[3]    = how many targets lie outside [0, 1] (NaN included);
//   out[4]    = one such target value (0 when there is none), for the error message.
using TriBCESumsFn = void (*)(const Tensor& fused, const Tensor& a, const Tensor& b, const Tensor& target,
                              const Tensor& out);
EMBER_DECLARE_STUB(tri_bce_sums_stub, TriBCESumsFn);

// Backward: grad_k[i] = coef[k] * (sigmoid(z_k[i]) - y[i]) for every *defined* grad_k (the
// gradients are contiguous, preallocated, of the logits' shape and dtype).
using TriBCEBackwardFn = void (*)(const Tensor& fused, const Tensor& a, const Tensor& b, const Tensor& target,
                                  std::array<double, 3> coef, const Tensor& grad_fused, const Tensor& grad_a,
                                  const Tensor& grad_b);
EMBER_DECLARE_STUB(tri_bce_backward_stub, TriBCEBackwardFn);

}  // namespace ember
