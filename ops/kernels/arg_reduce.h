#pragma once
// Arg-reductions along one dim: the extreme value of each lane and where it is.
// Contract: `in` is contiguous with size >= 1 along `dim` (dim is 0 for a 0-d tensor); `values`
// (dtype of `in`) and `indices` (int64) are contiguous with the keepdim shape (size 1 at dim).
// Ties go to the first index, and NaN counts as larger (for max) or smaller (for min) than any
// number, so a lane holding NaN gives NaN and the index of its first NaN, as PyTorch's CPU does.
#include <cstdint>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {
enum class ArgReduceOp { max, min };
using ArgReduceFn = void (*)(ArgReduceOp op, const Tensor& values, const Tensor& indices, const Tensor& in,
                             int64_t dim);
EMBER_DECLARE_STUB(arg_reduce_stub, ArgReduceFn);
}  // namespace ember
