#pragma once
// Reduction kernels. Contract: `out` is contiguous with the keepdim shape of `in` (size 1 in
// every reduced dim); reduce[d] says whether dim d is reduced. Sums of integers accumulate in
// int64, of floats in double.
#include <vector>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {
enum class ReduceOp { sum, prod, max, min, any, all };
using ReduceFn = void (*)(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<bool>& reduce);
EMBER_DECLARE_STUB(reduce_stub, ReduceFn);
}  // namespace ember
