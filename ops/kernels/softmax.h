#pragma once
// Fused softmax and log-softmax along one dim, forward and backward.
// Contract: every tensor is contiguous, floating, and of one shape and dtype; dim is in range
// (0 for a 0-d tensor). With sums running along the dim, m the lane's max and y the forward output:
//   softmax      y = exp(x - m) / sum(exp(x - m))       grad_in = y * (g - sum(g * y))
//   log_softmax  y = x - m - log(sum(exp(x - m)))       grad_in = g - exp(y) * sum(g)
// Subtracting m keeps exp from overflowing and does not change the result. A lane whose elements
// are all -inf has no softmax (0/0); its outputs are NaN, as in PyTorch. Float lanes accumulate
// their sums in double.
#include <cstdint>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {
using SoftmaxFn = void (*)(const Tensor& out, const Tensor& in, int64_t dim, bool log);
using SoftmaxBackwardFn = void (*)(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                   int64_t dim, bool log);
EMBER_DECLARE_STUB(softmax_stub, SoftmaxFn);
EMBER_DECLARE_STUB(softmax_backward_stub, SoftmaxBackwardFn);
}  // namespace ember
