#pragma once
// Kernels of OPL (losses/opl.cpp; the math in docs/losses/opl.md).
//
// Contract: features is contiguous [B, D] (floating), labels contiguous int64 [B]. Pairs are the
// ordered pairs (i, j), i != j: "positive" when labels match, "negative" otherwise, with P and Q
// their counts.
//   forward writes normalized = f_i / max(|f_i|, 1e-12) [B, D], norms = |f_i| [B], the full
//   symmetric gram = normalized normalized^T [B, B], and the 0-d loss
//     1 - s + gamma d,  s = sum_pos G / P,  d = sum_neg c(G) / Q   (an empty mean is 0),
//   with c(G) = G, or |G| when absolute_inter.
//   backward writes grad_features [B, D] from the 0-d grad_loss: with
//     W_ij = -[pos] / P + gamma [neg] c'(G_ij) / Q   (c' = 1, or sign(G) with sign(0) = 0),
//   g = 2 W normalized, then each row through the normalisation:
//     (g_i - f^_i (f^_i . g_i)) / |f_i|, or g_i / 1e-12 where |f_i| <= 1e-12 (the clamp's slope).
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember::losses {

inline constexpr double kOPLNormFloor = 1e-12;  // PyTorch F.normalize's eps, as in the reference

using OPLForwardFn = void (*)(const Tensor& loss, const Tensor& normalized, const Tensor& norms,
                              const Tensor& gram, const Tensor& features, const Tensor& labels, double gamma,
                              bool absolute_inter);
using OPLBackwardFn = void (*)(const Tensor& grad_features, const Tensor& grad_loss, const Tensor& normalized,
                               const Tensor& norms, const Tensor& gram, const Tensor& labels, double gamma,
                               bool absolute_inter);

EMBER_DECLARE_STUB(opl_forward_stub, OPLForwardFn);
EMBER_DECLARE_STUB(opl_backward_stub, OPLBackwardFn);

}  // namespace ember::losses
