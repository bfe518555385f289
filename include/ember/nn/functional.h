#pragma once
// ember::nn::functional: the normalisation ops behind BatchNorm and LayerNorm and the softmax
// behind MultiheadAttention, as fused kernels (one forward and one backward kernel each, behind
// dispatch stubs; see ops/kernels/norm.h and ops/kernels/masked_softmax.h).
#include "ember/tensor.h"

namespace ember::nn::functional {

// Batch normalisation over dim 1 of input [N, C, *]: statistics per channel over N and the
// trailing dims. weight/bias ([C]) may be undefined (no affine transform).
//   training = true:  normalises with the batch mean and biased variance; if running_mean and
//                     running_var ([C]) are defined, updates them in place:
//                       running = (1 - momentum) * running + momentum * batch
//                     with the unbiased variance (n / (n - 1)), as PyTorch does.
//   training = false: normalises with running_mean / running_var (which must be defined).
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

// Layer normalisation over the trailing dims `normalized_shape` of input; weight/bias have shape
// normalized_shape (or are undefined).
Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// The attention weights of scaled dot-product attention, in one pass over the scores:
//   out = softmax(scale * scores, dim = -1) over the keys each query may see
// for scores [B, H, Tq, Tk] (= Q K^T per head). Query i does not see key j when
//   causal and j > i + (Tk - Tq)   (the last query lines up with the last key; Tq == Tk: j > i)
//   key_padding_mask[b, j] is true (bool [B, Tk], true = padding, PyTorch's convention).
// A query that sees no key, or only -inf scores, gets all-zero weights and a zero gradient
// (PyTorch gives NaN there). Differentiable in scores.
Tensor masked_softmax(const Tensor& scores, double scale, bool causal = false,
                      const Tensor& key_padding_mask = {});

}  // namespace ember::nn::functional
