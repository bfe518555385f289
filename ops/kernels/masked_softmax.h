#pragma once
// The fused softmax of scaled dot-product attention, forward and backward
// (nn::functional::masked_softmax). One "row" is the Tk scores of one query (b, h, i).
//
// Contract: scores, out, grad_in and grad_out are contiguous, floating, of one dtype and shape
// [B, H, Tq, Tk]; key_padding_mask is undefined or a contiguous bool [B, Tk] on the same device.
// Key j is visible to query i of batch b when
//     (!causal || j <= i + (Tk - Tq))  and  !key_padding_mask[b, j]
// (the causal offset Tk - Tq aligns the last query with the last key, as in a decoder that
// attends to a cache of earlier keys). With v_j = scale * x_j and m the max of v over visible j:
//     forward   y_j = exp(v_j - m) / sum_visible exp(v_k - m)  for visible j, 0 otherwise
//     backward  grad_x_j = scale * y_j * (g_j - sum_k g_k y_k)
// The backward needs only y: a masked key has y_j = 0, so its gradient is 0. A row with no
// visible key, or whose visible scores are all -inf, is all zeros forward and backward (PyTorch
// gives NaN there; zeros keep a padded batch trainable). A NaN among a row's visible scores makes
// every visible weight of the row NaN (hidden keys stay 0). Sums are accumulated in double; the
// backward kernels write 0 to causally hidden keys without reading them.
#include <cstdint>

#include "core/dispatch.h"
#include "core/host_device.h"
#include "ember/tensor.h"

namespace ember {
using MaskedSoftmaxFn = void (*)(const Tensor& out, const Tensor& scores, const Tensor& key_padding_mask,
                                 double scale, bool causal);
using MaskedSoftmaxBackwardFn = void (*)(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                         double scale, bool causal);
EMBER_DECLARE_STUB(masked_softmax_stub, MaskedSoftmaxFn);
EMBER_DECLARE_STUB(masked_softmax_backward_stub, MaskedSoftmaxBackwardFn);

// Keys [0, visible_keys) pass the causal test for query i (all Tk when not causal).
EMBER_HD int64_t visible_keys(int64_t i, int64_t Tq, int64_t Tk, bool causal) {
  if (!causal) return Tk;
  const int64_t last = i + (Tk - Tq);  // the last visible key; may be < 0 when Tq > Tk
  return last < 0 ? 0 : (last + 1 < Tk ? last + 1 : Tk);
}
}  // namespace ember
