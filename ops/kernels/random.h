#pragma once
// Random kernels. Element i of `out` (in row-major order; out is contiguous) is drawn from Philox
// counter block `offset + i / 4` (uniform) so that every backend produces the same stream.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {
enum class RandomDist { uniform, normal, bernoulli };  // uniform in [a, b); normal(mean a, std b); bernoulli(p = a)
using RandomFn = void (*)(RandomDist dist, const Tensor& out, double a, double b, uint64_t seed, uint64_t offset);
EMBER_DECLARE_STUB(random_stub, RandomFn);
// Reserves counter blocks for `numel` draws and returns the starting offset.
uint64_t reserve_random_offset(int64_t numel, uint64_t* seed);
}  // namespace ember
