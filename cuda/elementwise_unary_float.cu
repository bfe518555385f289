// CUDA kernels for the floating-point unary ops. Each case is one `__device__` lambda handed to
// gpu_map (cuda/loops.cuh); the formulas are those of ops/cpu/elementwise.cpp, written with the
// device math of cuda/math.cuh.
#include "cuda/elementwise.h"
#include "cuda/loops.cuh"
#include "cuda/math.cuh"

namespace ember::cuda {
namespace {

using namespace dmath;

template <class T>
void unary_float(const KernelContext& ctx, UnaryOp op, const Tensor& out, const Tensor& x, double a) {
  auto map = [&](auto f) { gpu_map<T, T>(ctx, f, out, {&x}); };
  switch (op) {
    case UnaryOp::exp:
      return map([] __device__(T v) { return exp(v); });
    case UnaryOp::log:
      return map([] __device__(T v) { return log(v); });
    case UnaryOp::log1p:
      return map([] __device__(T v) { return log1p(v); });
    case UnaryOp::expm1:
      return map([] __device__(T v) { return expm1(v); });
    case UnaryOp::sqrt:
      return map([] __device__(T v) { return sqrt(v); });
    case UnaryOp::rsqrt:
      return map([] __device__(T v) { return T(1) / sqrt(v); });
    case UnaryOp::sin:
      return map([] __device__(T v) { return sin(v); });
    case UnaryOp::cos:
      return map([] __device__(T v) { return cos(v); });
    case UnaryOp::erf:
      return map([] __device__(T v) { return erf(v); });
    case UnaryOp::sigmoid:
      return map([] __device__(T v) { return sigmoid(v); });
    case UnaryOp::tanh:
      return map([] __device__(T v) { return tanh(v); });
    case UnaryOp::silu:
      return map([] __device__(T v) { return v * sigmoid(v); });
    case UnaryOp::softplus:
      return map([] __device__(T v) { return softplus(v); });
    case UnaryOp::logsigmoid:
      return map([] __device__(T v) { return -softplus(-v); });
    case UnaryOp::gelu:
      return map([] __device__(T v) { return T(0.5) * v * (T(1) + erf(v / T(kSqrt2))); });
    case UnaryOp::gelu_tanh:
      return map([] __device__(T v) {
        return T(0.5) * v * (T(1) + tanh(T(kSqrt2OverPi) * (v + T(0.044715) * v * v * v)));
      });
    case UnaryOp::tan:
      return map([] __device__(T v) { return tan(v); });
    case UnaryOp::asin:
      return map([] __device__(T v) { return asin(v); });
    case UnaryOp::acos:
      return map([] __device__(T v) { return acos(v); });
    case UnaryOp::atan:
      return map([] __device__(T v) { return atan(v); });
    case UnaryOp::sinh:
      return map([] __device__(T v) { return sinh(v); });
    case UnaryOp::cosh:
      return map([] __device__(T v) { return cosh(v); });
    case UnaryOp::asinh:
      return map([] __device__(T v) { return asinh(v); });
    case UnaryOp::acosh:
      return map([] __device__(T v) { return acosh(v); });
    case UnaryOp::atanh:
      return map([] __device__(T v) { return atanh(v); });
    case UnaryOp::exp2:
      return map([] __device__(T v) { return exp2(v); });
    case UnaryOp::log2:
      return map([] __device__(T v) { return log2(v); });
    case UnaryOp::log10:
      return map([] __device__(T v) { return log10(v); });
    case UnaryOp::erfc:
      return map([] __device__(T v) { return erfc(v); });
    case UnaryOp::erfinv:
      return map([] __device__(T v) { return erfinv(v); });
    case UnaryOp::frac:
      return map([] __device__(T v) { return v - trunc(v); });
    case UnaryOp::reciprocal:
      return map([] __device__(T v) { return T(1) / v; });
    case UnaryOp::pow_scalar: {
      if (a == 2.0) return map([] __device__(T v) { return v * v; });
      return map([p = T(a)] __device__(T v) { return pow(v, p); });
    }
    case UnaryOp::rpow_scalar:
      return map([base = T(a)] __device__(T v) { return pow(base, v); });
    case UnaryOp::rdiv_scalar:
      return map([num = T(a)] __device__(T v) { return num / v; });
    default:
      fail("unary kernel (cuda): op {} is not a float op", static_cast<int>(op));
  }
}

}  // namespace

void unary_float_cuda(UnaryOp op, const Tensor& out, const Tensor& x, double a, double) {
  KernelContext ctx(out, "unary");
  EMBER_CHECK(out.dtype() == x.dtype(), "unary (cuda): output dtype {} differs from input dtype {}",
              out.dtype(), x.dtype());
  dispatch_floating(x.dtype(), "unary", [&]<class T>() { unary_float<T>(ctx, op, out, x, a); });
}

}  // namespace ember::cuda
