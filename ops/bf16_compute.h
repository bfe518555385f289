#pragma once
// bfloat16 is a storage type in ember: no kernel is instantiated for it (that would double the
// template instances and the compile time for a type with no arithmetic of its own). An op that
// receives bfloat16 tensors runs its float32 kernel on upcast copies and rounds the floating
// result back to bfloat16 once -- the recipe of PyTorch's CPU kernels too (load as float32,
// compute, round), with reductions and matmul accumulating in float32.
//
//   Tensor unary_raw(UnaryOp op, const Tensor& x, ...) {
//     if (x.dtype() == DType::bfloat16)
//       return via_float32([&](const Tensor& f) { return unary_raw(op, f, ...); }, x);
//     ...
//
// The casts are Tensor::to, so they are differentiable: an op composed of other ops gets its
// backward for free (the bfloat16 gradient is upcast, the float32 backward runs, the input's
// gradient is rounded back to bfloat16). Raw, autograd-free helpers (unary_raw, reduce_raw, ...),
// whose callers record the graph themselves, use via_float32_raw, which records nothing.
#include <utility>

#include "ember/autograd.h"
#include "ember/tensor.h"

namespace ember {

inline bool is_bfloat16(const Tensor& t) { return t.defined() && t.dtype() == DType::bfloat16; }
template <class... Ts>
bool any_bfloat16(const Ts&... ts) {
  return (is_bfloat16(ts) || ...);
}

// A float32 copy of a bfloat16 tensor; any other tensor (or undefined) passes through.
inline Tensor bf16_upcast(const Tensor& t) { return is_bfloat16(t) ? t.to(DType::float32) : t; }

// Rounds a float32 result to bfloat16. Results of other dtypes -- bool masks, int64 indices --
// are already what a bfloat16 op returns, and pass through.
inline Tensor bf16_round(const Tensor& t) {
  return t.defined() && t.dtype() == DType::float32 ? t.to(DType::bfloat16) : t;
}
inline std::pair<Tensor, Tensor> bf16_round(std::pair<Tensor, Tensor> r) {  // (values, indices) pairs
  return {bf16_round(r.first), bf16_round(r.second)};
}

// fn(inputs with bfloat16 ones upcast to float32...), its float32 results rounded to bfloat16.
template <class Fn, class... Ts>
auto via_float32(Fn&& fn, const Ts&... inputs) {
  return bf16_round(std::forward<Fn>(fn)(bf16_upcast(inputs)...));
}
template <class Fn, class... Ts>
auto via_float32_raw(Fn&& fn, const Ts&... inputs) {
  NoGradGuard no_grad;
  return via_float32(std::forward<Fn>(fn), inputs...);
}

}  // namespace ember
