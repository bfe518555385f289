#pragma once
// bfloat16 inputs of the CPU Cut Cross-Entropy kernels. The CPU has no bf16 arithmetic worth
// using, so the kernels widen E, C and the bias to float32 once (O(N D + V D), never N x V), run
// the float32 algorithm, and round the float32 gradients to bfloat16 at the end: the same
// fp32-accumulation numerics as the CUDA tensor-core kernels.
#include <cstdint>

#include "core/parallel.h"
#include "core/tensor_impl.h"

namespace ember::cpu::cce {

// A float32 copy of a contiguous bfloat16 tensor (undefined stays undefined).
inline Tensor widened_to_float(const Tensor& t) {
  if (!t.defined()) return Tensor();
  Tensor out = empty_tensor(t.shape(), DType::float32, Device::cpu());
  const auto* src = static_cast<const bfloat16*>(t.raw_data());
  float* dst = static_cast<float*>(out.raw_data());
  parallel_for(0, t.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dst[i] = static_cast<float>(src[i]);
  });
  return out;
}

// A float32 tensor of out's shape to write results into before rounding (undefined stays undefined).
inline Tensor float_twin(const Tensor& out) {
  return out.defined() ? empty_tensor(out.shape(), DType::float32, Device::cpu()) : Tensor();
}

// out (bfloat16) = round-to-nearest-even(src (float32)); both contiguous, same size.
inline void round_into_bfloat16(const Tensor& src, const Tensor& out) {
  if (!out.defined()) return;
  const float* s = static_cast<const float*>(src.raw_data());
  auto* d = static_cast<bfloat16*>(out.raw_data());
  parallel_for(0, out.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) d[i] = bfloat16(s[i]);
  });
}

}  // namespace ember::cpu::cce
