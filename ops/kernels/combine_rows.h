#pragma once
// combine_rows: each output row a weighted sum of input rows, along one dim of a tensor.
//
// x is [outer, in, inner] and y is [outer, out, inner], both contiguous, of one floating dtype, on
// one device. A sparse [out, in] matrix A in compressed rows gives the sums:
//   y[o, r, k] = sum over e in [offsets[r], offsets[r + 1]) of weights[e] * x[o, cols[e], k]
// added in e's order (so the result is the same bits on every run and thread count). offsets
// (out + 1 entries) and cols are int64, weights has x's dtype; all live on x's device.
//
// Linear interpolation along a dim is A with two entries per output row (the two source pixels
// and their weights), and its gradient is the same kernel with A's transpose, whose rows list the
// output positions each source pixel feeds.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

using CombineRowsFn = void (*)(const Tensor& x, const Tensor& offsets, const Tensor& cols,
                               const Tensor& weights, const Tensor& y);
EMBER_DECLARE_STUB(combine_rows_stub, CombineRowsFn);

}  // namespace ember
