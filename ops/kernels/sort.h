#pragma once
// The sorting kernel behind sort, argsort and topk.
//
// For every line of `x` along `dim`, writes the first k entries of that line in sorted order:
// values[.., j, ..] and the position they came from, indices[.., j, ..] (int64). k == x.size(dim)
// is a full sort; smaller k is topk. `values` and `indices` are contiguous with x's shape except k
// along dim. The order is ascending, or descending when `descending`; NaN counts as larger than
// every number (PyTorch's order); and it is stable in both directions: equal values keep their
// original order, so ties come out lowest index first.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {
using SortFn = void (*)(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
                        bool descending);
EMBER_DECLARE_STUB(sort_stub, SortFn);
}  // namespace ember
