#pragma once
// Elementwise kernels. Contract: `out` has the result shape; every input has been broadcast
// (an expanded view) to that shape and cast to the compute dtype; `out` may be the very same
// tensor as an input (in-place). Comparison and logical ops write bool.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

enum class UnaryOp {
  // float only
  exp, log, log1p, expm1, sqrt, rsqrt, sin, cos, erf, sigmoid, tanh, silu, softplus, logsigmoid,
  gelu, gelu_tanh, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, exp2, log2, log10, erfc,
  erfinv,
  frac,  // x - trunc(x) (integer inputs are rejected, not promoted, as in PyTorch)
  reciprocal,
  // any numeric type
  neg, abs, sign, relu, square,
  floor, ceil, trunc,
  round,  // half to even
  // with scalar parameters a, b
  affine,       // x * a + b
  pow_scalar,   // x ^ a
  rpow_scalar,  // a ^ x
  rdiv_scalar,  // a / x
  clamp,        // min(max(x, a), b)
  leaky_relu,   // x > 0 ? x : a * x
  // bool output
  eq_scalar, ne_scalar, lt_scalar, le_scalar, gt_scalar, ge_scalar,
  logical_not, isnan, isinf, isfinite,
};

enum class BinaryOp {
  add,  // a + alpha * b
  sub,  // a - alpha * b
  mul, div, pow, maximum, minimum,
  fmod,       // C's fmod: the sign of a (integers: the caller rules out b == 0)
  remainder,  // Python's %: the sign of b
  atan2, hypot,  // float only
  // bool output (inputs of any one dtype)
  eq, ne, lt, le, gt, ge, logical_and, logical_or, logical_xor,
  // fused backward helpers: (grad, x or y) -> grad_input
  relu_backward,        // g * (x > 0)
  leaky_relu_backward,  // g * (x > 0 ? 1 : alpha)
  sigmoid_backward,     // g * y * (1 - y), y = sigmoid(x)
  tanh_backward,        // g * (1 - y^2), y = tanh(x)
  silu_backward,        // g * s * (1 + x (1 - s)), s = sigmoid(x)
  softplus_backward,    // g * sigmoid(x)
  gelu_backward,        // g * gelu'(x)
  gelu_tanh_backward,   // g * d/dx gelu_tanh(x)
};

bool unary_returns_bool(UnaryOp op);
bool unary_float_only(UnaryOp op);
bool binary_returns_bool(BinaryOp op);

using UnaryFn = void (*)(UnaryOp op, const Tensor& out, const Tensor& x, double a, double b);
using BinaryFn = void (*)(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha);
using WhereFn = void (*)(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
EMBER_DECLARE_STUB(unary_stub, UnaryFn);
EMBER_DECLARE_STUB(binary_stub, BinaryFn);
EMBER_DECLARE_STUB(where_stub, WhereFn);

}  // namespace ember
