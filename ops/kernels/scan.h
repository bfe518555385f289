#pragma once
// Scans (running reductions) along one dim.
// Contract: `in` and `out` are contiguous with the same shape; dim is in range (0 for a 0-d
// tensor). With x the lane of `in` along dim and (+) the op:
//   inclusive: out[k] = x[0] (+) ... (+) x[k]
//   exclusive: out[k] = x[0] (+) ... (+) x[k-1]       (the identity at k = 0)
//   reverse runs from the other end: inclusive out[k] = x[k] (+) ... (+) x[n-1], and so on.
// sum and prod: floats accumulate in double and `out` has the input dtype; integers and bools
// accumulate in int64 and `out` is int64. logsumexp (floats only) is the running
// log(sum(exp(x))), computed stably; it stays -inf while every element so far is -inf.
#include <cstdint>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {
enum class ScanOp { sum, prod, logsumexp };
using ScanFn = void (*)(ScanOp op, const Tensor& out, const Tensor& in, int64_t dim, bool reverse,
                        bool exclusive);
EMBER_DECLARE_STUB(scan_stub, ScanFn);
}  // namespace ember
