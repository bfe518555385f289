#pragma once
// 2-D pooling kernels. Every kernel sees its tensors as stacks of planes: x (or grad_x) is
// [P, H, W], out (or grad_out, indices) is [P, Ho, Wo], where P = N*C; all contiguous, one device,
// every size >= 1 (ops/pool.cpp handles empty tensors). Backward kernels overwrite grad_x.
//
// Windows, for output position i of a dim with input size H:
//   max / avg pool:  rows [i*stride - pad, i*stride - pad + kernel), clipped to [0, H)
//   adaptive avg:    rows [floor(i*H/Ho), ceil((i+1)*H/Ho))              (PyTorch's formulas)
// max_pool2d takes the max over the clipped window (= padding with -inf; NaN wins, as in
// PyTorch) and records in `indices` (int64) the flat position h*W + w of the max in its plane.
// avg_pool2d divides by kernel_h*kernel_w (count_include_pad = true), adaptive by the window size.
#include <array>
#include <cstdint>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

struct Pool2dParams {
  std::array<int64_t, 2> kernel{1, 1};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
};

using MaxPool2dFn = void (*)(const Tensor& out, const Tensor& indices, const Tensor& x,
                             const Pool2dParams& p);
using MaxPool2dBackwardFn = void (*)(const Tensor& grad_x, const Tensor& grad_out, const Tensor& indices);
using AvgPool2dFn = void (*)(const Tensor& out, const Tensor& x, const Pool2dParams& p);
using AvgPool2dBackwardFn = void (*)(const Tensor& grad_x, const Tensor& grad_out, const Pool2dParams& p);
using AdaptiveAvgPool2dFn = void (*)(const Tensor& out, const Tensor& x);
using AdaptiveAvgPool2dBackwardFn = void (*)(const Tensor& grad_x, const Tensor& grad_out);

EMBER_DECLARE_STUB(max_pool2d_stub, MaxPool2dFn);
EMBER_DECLARE_STUB(max_pool2d_backward_stub, MaxPool2dBackwardFn);
EMBER_DECLARE_STUB(avg_pool2d_stub, AvgPool2dFn);
EMBER_DECLARE_STUB(avg_pool2d_backward_stub, AvgPool2dBackwardFn);
EMBER_DECLARE_STUB(adaptive_avg_pool2d_stub, AdaptiveAvgPool2dFn);
EMBER_DECLARE_STUB(adaptive_avg_pool2d_backward_stub, AdaptiveAvgPool2dBackwardFn);

}  // namespace ember
