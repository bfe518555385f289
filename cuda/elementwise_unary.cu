// CUDA kernels for the unary ops defined on every numeric type, the ops with a bool result, and
// the entry point registered with unary_stub. Semantics match ops/cpu/elementwise.cpp exactly
// (same casts, same NaN behaviour); the float-only ops are in elementwise_unary_float.cu.
#include <type_traits>

#include "cuda/elementwise.h"
#include "cuda/loops.cuh"
#include "cuda/math.cuh"
#include "ops/kernels/integer_cast.h"

namespace ember::cuda {
namespace {

template <class T>
void unary_numeric(const KernelContext& ctx, UnaryOp op, const Tensor& out, const Tensor& x, double a,
                   double b) {
  auto map = [&](auto f) { gpu_map<T, T>(ctx, f, out, {&x}); };
  switch (op) {
    case UnaryOp::neg:
      return map([] __device__(T v) { return static_cast<T>(-v); });
    case UnaryOp::abs:
      if constexpr (std::is_unsigned_v<T>)
        return map([] __device__(T v) { return v; });
      else
        return map([] __device__(T v) { return v < T(0) ? static_cast<T>(-v) : v; });
    case UnaryOp::sign:
      if constexpr (std::is_unsigned_v<T>)
        return map([] __device__(T v) { return static_cast<T>(v > T(0)); });
      else
        return map([] __device__(T v) { return static_cast<T>((T(0) < v) - (v < T(0))); });
    case UnaryOp::relu:
      return map([] __device__(T v) { return v <= T(0) ? T(0) : v; });  // NaN stays NaN
    case UnaryOp::square:
      return map([] __device__(T v) { return static_cast<T>(v * v); });
    case UnaryOp::floor:
    case UnaryOp::ceil:
    case UnaryOp::trunc:
    case UnaryOp::round:
      if constexpr (std::is_floating_point_v<T>) {
        if (op == UnaryOp::floor) return map([] __device__(T v) { return dmath::floor(v); });
        if (op == UnaryOp::ceil) return map([] __device__(T v) { return dmath::ceil(v); });
        if (op == UnaryOp::trunc) return map([] __device__(T v) { return dmath::trunc(v); });
        return map([] __device__(T v) { return dmath::nearbyint(v); });  // half to even
      } else {
        return map([] __device__(T v) { return v; });  // integers are already whole
      }
    case UnaryOp::affine:
      if constexpr (std::is_floating_point_v<T>) {
        return map([s = T(a), t = T(b)] __device__(T v) { return v * s + t; });
      } else {
        return map([a, b] __device__(T v) { return integer_from<T>(static_cast<double>(v) * a + b); });
      }
    case UnaryOp::clamp:
      return map([a, b] __device__(T v) {
        double d = static_cast<double>(v);
        if (dmath::isnan(d)) return v;
        double lo = d < a ? a : d;                  // std::max(d, a)
        if constexpr (std::is_floating_point_v<T>)  // a NaN bound makes NaN, as on the CPU
          return dmath::isnan(a) || dmath::isnan(b) ? static_cast<T>(a + b) : static_cast<T>(b < lo ? b : lo);
        else
          return integer_from<T>(b < lo ? b : lo);
      });
    case UnaryOp::leaky_relu:
      return map([s = T(a)] __device__(T v) { return v > T(0) ? v : T(v * s); });
    default:
      fail("unary kernel (cuda): op {} is not defined for integer tensors", static_cast<int>(op));
  }
}

// Comparisons with a scalar and tests, on the value converted to double (as on the CPU).
template <class T>
void unary_to_bool(const KernelContext& ctx, UnaryOp op, const Tensor& out, const Tensor& x, double a) {
  auto map = [&](auto f) { gpu_map<bool, T>(ctx, f, out, {&x}); };
  switch (op) {
    case UnaryOp::eq_scalar:
      return map([a] __device__(T v) { return static_cast<double>(v) == a; });
    case UnaryOp::ne_scalar:
      return map([a] __device__(T v) { return static_cast<double>(v) != a; });
    case UnaryOp::lt_scalar:
      return map([a] __device__(T v) { return static_cast<double>(v) < a; });
    case UnaryOp::le_scalar:
      return map([a] __device__(T v) { return static_cast<double>(v) <= a; });
    case UnaryOp::gt_scalar:
      return map([a] __device__(T v) { return static_cast<double>(v) > a; });
    case UnaryOp::ge_scalar:
      return map([a] __device__(T v) { return static_cast<double>(v) >= a; });
    case UnaryOp::logical_not:
      return map([] __device__(T v) { return static_cast<double>(v) == 0; });
    case UnaryOp::isnan:
      return map([] __device__(T v) { return dmath::isnan(static_cast<double>(v)); });
    case UnaryOp::isinf:
      return map([] __device__(T v) { return dmath::isinf(static_cast<double>(v)); });
    case UnaryOp::isfinite:
      return map([] __device__(T v) { return dmath::isfinite(static_cast<double>(v)); });
    default:
      fail("unary kernel (cuda): op {} does not return bool", static_cast<int>(op));
  }
}

void unary_cuda(UnaryOp op, const Tensor& out, const Tensor& x, double a, double b) {
  if (out.shape() != x.shape())
    fail("unary (cuda): output shape {} differs from input shape {}", shape_str(out.shape()),
         shape_str(x.shape()));
  if (unary_float_only(op)) return unary_float_cuda(op, out, x, a, b);
  KernelContext ctx(out, "unary");
  if (unary_returns_bool(op)) {
    EMBER_CHECK(out.dtype() == DType::boolean, "unary (cuda): expected a bool output, got {}", out.dtype());
    dispatch_all(x.dtype(), "unary", [&]<class T>() { unary_to_bool<T>(ctx, op, out, x, a); });
    return;
  }
  EMBER_CHECK(out.dtype() == x.dtype(), "unary (cuda): output dtype {} differs from input dtype {}",
              out.dtype(), x.dtype());
  dispatch_numeric(x.dtype(), "unary", [&]<class T>() { unary_numeric<T>(ctx, op, out, x, a, b); });
}

}  // namespace

EMBER_REGISTER_KERNEL(unary_stub, cuda, &unary_cuda);

}  // namespace ember::cuda
