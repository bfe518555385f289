#pragma once
// 2-D convolution kernels (cross-correlation, as in every DL framework).
//
//   out[n, o, i, j] = bias[o] + sum_{c in group(o), a, b}
//                     w[o, c - group_start, a, b] * x[n, c, i*sh - ph + a*dh, j*sw - pw + b*dw]
// with x read as 0 outside the image. Channels are split into `groups` equal blocks; output
// channel block g sees only input channel block g.
//
// Contract (ops/conv.cpp guarantees it): x [N, C, H, W], w [O, C/groups, kh, kw], out
// [N, O, Ho, Wo], bias [O] or undefined; all contiguous, one floating dtype, one device; every
// size >= 1 (the op handles empty tensors itself); Ho, Wo as conv2d_output_size computes them.
// The backward kernels overwrite their output.
#include <array>
#include <cstdint>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

struct Conv2dParams {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};

// Output extent of one spatial dim: floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1.
inline int64_t conv2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  return (in + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1;
}

using Conv2dForwardFn = void (*)(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                                 const Conv2dParams& p);
// grad_x = d(sum(out * grad_out)) / dx
using Conv2dBackwardInputFn = void (*)(const Tensor& grad_x, const Tensor& grad_out, const Tensor& w,
                                       const Conv2dParams& p);
// grad_w = d(sum(out * grad_out)) / dw
using Conv2dBackwardWeightFn = void (*)(const Tensor& grad_w, const Tensor& grad_out, const Tensor& x,
                                        const Conv2dParams& p);
EMBER_DECLARE_STUB(conv2d_forward_stub, Conv2dForwardFn);
EMBER_DECLARE_STUB(conv2d_backward_input_stub, Conv2dBackwardInputFn);
EMBER_DECLARE_STUB(conv2d_backward_weight_stub, Conv2dBackwardWeightFn);

}  // namespace ember
