// CUDA kernels for the arithmetic binary ops, the fused activation backwards and `where`, plus
// the entry points registered with binary_stub and where_stub. Semantics match
// ops/cpu/elementwise.cpp exactly; comparisons are in elementwise_compare.cu.
#include <type_traits>

#include "cuda/elementwise.h"
#include "cuda/loops.cuh"
#include "cuda/math.cuh"
#include "ops/kernels/modulo.h"

namespace ember::cuda {
namespace {

using namespace dmath;

template <class T>
void binary_float(const KernelContext& ctx, BinaryOp op, const Tensor& out, const Tensor& g,
                  const Tensor& x) {
  auto map = [&](auto f) { gpu_map<T, T, T>(ctx, f, out, {&g, &x}); };
  switch (op) {
    case BinaryOp::div:
      return map([] __device__(T a, T b) { return a / b; });
    case BinaryOp::pow:
      return map([] __device__(T base, T e) { return pow(base, e); });
    case BinaryOp::atan2:
      return map([] __device__(T a, T b) { return atan2(a, b); });
    case BinaryOp::hypot:
      return map([] __device__(T a, T b) { return hypot(a, b); });
    case BinaryOp::sigmoid_backward:
      return map([] __device__(T gv, T y) { return gv * y * (T(1) - y); });
    case BinaryOp::tanh_backward:
      return map([] __device__(T gv, T y) { return gv * (T(1) - y * y); });
    case BinaryOp::silu_backward:
      return map([] __device__(T gv, T v) {
        T s = sigmoid(v);
        return gv * s * (T(1) + v * (T(1) - s));
      });
    case BinaryOp::softplus_backward:
      return map([] __device__(T gv, T v) { return gv * sigmoid(v); });
    case BinaryOp::gelu_backward:
      return map([] __device__(T gv, T v) {
        T cdf = T(0.5) * (T(1) + erf(v / T(kSqrt2)));
        T pdf = T(kInvSqrt2Pi) * exp(T(-0.5) * v * v);
        return gv * (cdf + v * pdf);
      });
    case BinaryOp::gelu_tanh_backward:
      return map([] __device__(T gv, T v) {
        T inner = T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v);
        T t = tanh(inner);
        T dinner = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * v * v);
        return gv * (T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * dinner);
      });
    default:
      fail("binary kernel (cuda): op {} is not a float op", static_cast<int>(op));
  }
}

template <class T>
void binary_numeric(const KernelContext& ctx, BinaryOp op, const Tensor& out, const Tensor& a,
                    const Tensor& b, double alpha) {
  auto map = [&](auto f) { gpu_map<T, T, T>(ctx, f, out, {&a, &b}); };
  switch (op) {
    case BinaryOp::add:
      if (alpha == 1.0) return map([] __device__(T x, T y) { return static_cast<T>(x + y); });
      return map([s = T(alpha)] __device__(T x, T y) { return static_cast<T>(x + s * y); });
    case BinaryOp::sub:
      if (alpha == 1.0) return map([] __device__(T x, T y) { return static_cast<T>(x - y); });
      return map([s = T(alpha)] __device__(T x, T y) { return static_cast<T>(x - s * y); });
    case BinaryOp::mul:
      return map([] __device__(T x, T y) { return static_cast<T>(x * y); });
    case BinaryOp::fmod:
      if constexpr (std::is_floating_point_v<T>)
        return map([] __device__(T x, T y) { return fmod(x, y); });
      else
        return map([] __device__(T x, T y) { return integer_fmod(x, y); });
    case BinaryOp::remainder:
      if constexpr (std::is_floating_point_v<T>)
        return map([] __device__(T x, T y) { return remainder_from_fmod(fmod(x, y), y); });
      else
        return map([] __device__(T x, T y) { return remainder_from_fmod(integer_fmod(x, y), y); });
    case BinaryOp::maximum:
      return map([] __device__(T x, T y) {
        if constexpr (std::is_floating_point_v<T>)
          if (dmath::isnan(x) || dmath::isnan(y)) return x + y;  // NaN propagates
        return x > y ? x : y;
      });
    case BinaryOp::minimum:
      return map([] __device__(T x, T y) {
        if constexpr (std::is_floating_point_v<T>)
          if (dmath::isnan(x) || dmath::isnan(y)) return x + y;
        return x < y ? x : y;
      });
    case BinaryOp::relu_backward:
      return map([] __device__(T gv, T v) { return v <= T(0) ? T(0) : gv; });  // as PyTorch at NaN
    case BinaryOp::leaky_relu_backward:
      return map([s = T(alpha)] __device__(T gv, T v) { return v > T(0) ? gv : T(gv * s); });
    default:
      if constexpr (std::is_floating_point_v<T>) {
        return binary_float<T>(ctx, op, out, a, b);
      } else {
        fail("binary kernel (cuda): op {} needs a floating dtype, got {}", static_cast<int>(op),
             dtype_of<T>());
      }
  }
}

template <class T>
void where_typed(const KernelContext& ctx, const Tensor& out, const Tensor& cond, const Tensor& a,
                 const Tensor& b) {
  gpu_map<T, bool, T, T>(ctx, [] __device__(bool c, T x, T y) { return c ? x : y; }, out, {&cond, &a, &b});
}

void check_binary_shapes(const char* op, const Tensor& out, const std::vector<const Tensor*>& ins) {
  for (const Tensor* t : ins)
    if (t->shape() != out.shape())
      fail("{} (cuda): input shape {} differs from output shape {} (inputs must be broadcast first)", op,
           shape_str(t->shape()), shape_str(out.shape()));
}

void binary_cuda(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  check_binary_shapes("binary", out, {&a, &b});
  EMBER_CHECK(a.dtype() == b.dtype(), "binary (cuda): operands must share a dtype, got {} and {}", a.dtype(),
              b.dtype());
  if (binary_returns_bool(op)) return binary_compare_cuda(op, out, a, b);
  EMBER_CHECK(out.dtype() == a.dtype(), "binary (cuda): output dtype {} differs from input dtype {}",
              out.dtype(), a.dtype());
  KernelContext ctx(out, "binary");
  dispatch_numeric(a.dtype(), "binary", [&]<class T>() { binary_numeric<T>(ctx, op, out, a, b, alpha); });
}

void where_cuda(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_binary_shapes("where", out, {&cond, &a, &b});
  EMBER_CHECK(cond.dtype() == DType::boolean, "where (cuda): condition must be bool, got {}", cond.dtype());
  EMBER_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(),
              "where (cuda): values must have the output dtype {}, got {} and {}", out.dtype(), a.dtype(),
              b.dtype());
  KernelContext ctx(out, "where");
  dispatch_all(out.dtype(), "where", [&]<class T>() { where_typed<T>(ctx, out, cond, a, b); });
}

}  // namespace

EMBER_REGISTER_KERNEL(binary_stub, cuda, &binary_cuda);
EMBER_REGISTER_KERNEL(where_stub, cuda, &where_cuda);

}  // namespace ember::cuda
