#pragma once
// Device math with one name per function for float and double (expf vs exp, ...), so that the
// kernels can be written once for T and read like the CPU kernels in ops/cpu/. Also the few
// composite functions (sigmoid, softplus) with the same numerically stable formulas as the CPU.
#include <cuda_runtime.h>

namespace ember::cuda::dmath {

#define EMBER_DMATH_UNARY(name, fname, dname)                           \
  __device__ __forceinline__ float name(float x) { return ::fname(x); } \
  __device__ __forceinline__ double name(double x) { return ::dname(x); }
EMBER_DMATH_UNARY(exp, expf, exp)
EMBER_DMATH_UNARY(log, logf, log)
EMBER_DMATH_UNARY(log1p, log1pf, log1p)
EMBER_DMATH_UNARY(expm1, expm1f, expm1)
EMBER_DMATH_UNARY(sqrt, sqrtf, sqrt)
EMBER_DMATH_UNARY(sin, sinf, sin)
EMBER_DMATH_UNARY(cos, cosf, cos)
EMBER_DMATH_UNARY(erf, erff, erf)
EMBER_DMATH_UNARY(tanh, tanhf, tanh)
EMBER_DMATH_UNARY(fabs, fabsf, fabs)
EMBER_DMATH_UNARY(tan, tanf, tan)
EMBER_DMATH_UNARY(asin, asinf, asin)
EMBER_DMATH_UNARY(acos, acosf, acos)
EMBER_DMATH_UNARY(atan, atanf, atan)
EMBER_DMATH_UNARY(sinh, sinhf, sinh)
EMBER_DMATH_UNARY(cosh, coshf, cosh)
EMBER_DMATH_UNARY(asinh, asinhf, asinh)
EMBER_DMATH_UNARY(acosh, acoshf, acosh)
EMBER_DMATH_UNARY(atanh, atanhf, atanh)
EMBER_DMATH_UNARY(exp2, exp2f, exp2)
EMBER_DMATH_UNARY(log2, log2f, log2)
EMBER_DMATH_UNARY(log10, log10f, log10)
EMBER_DMATH_UNARY(erfc, erfcf, erfc)
EMBER_DMATH_UNARY(erfinv, erfinvf, erfinv)
EMBER_DMATH_UNARY(floor, floorf, floor)
EMBER_DMATH_UNARY(ceil, ceilf, ceil)
EMBER_DMATH_UNARY(trunc, truncf, trunc)
EMBER_DMATH_UNARY(nearbyint, nearbyintf, nearbyint)  // half to even
#undef EMBER_DMATH_UNARY

#define EMBER_DMATH_BINARY(name, fname, dname)                                      \
  __device__ __forceinline__ float name(float x, float y) { return ::fname(x, y); } \
  __device__ __forceinline__ double name(double x, double y) { return ::dname(x, y); }
EMBER_DMATH_BINARY(pow, powf, pow)
EMBER_DMATH_BINARY(atan2, atan2f, atan2)
EMBER_DMATH_BINARY(hypot, hypotf, hypot)
EMBER_DMATH_BINARY(fmod, fmodf, fmod)
#undef EMBER_DMATH_BINARY

// Classification on doubles (integers are converted first, as on the CPU).
__device__ __forceinline__ bool isnan(double x) { return x != x; }
__device__ __forceinline__ bool isinf(double x) {
  return ::fabs(x) == __longlong_as_double(0x7ff0000000000000LL);
}
__device__ __forceinline__ bool isfinite(double x) {
  return ::fabs(x) < __longlong_as_double(0x7ff0000000000000LL);
}

template <class T>
__device__ __forceinline__ T sigmoid(T x) {
  // Stable for large |x|: never exponentiates a large positive number.
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  T e = exp(x);
  return e / (T(1) + e);
}

template <class T>
__device__ __forceinline__ T softplus(T x) {            // log(1 + e^x) without overflow
  return (x < T(0) ? T(0) : x) + log1p(exp(-fabs(x)));  // the first term is std::max(x, 0)
}

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2Pi = 0.3989422804014327;

// Associative combine functions shared by the reductions and the scans.
struct SumOp {
  template <class A>
  __device__ A operator()(A a, A b) const {
    return a + b;
  }
};
struct ProdOp {
  template <class A>
  __device__ A operator()(A a, A b) const {
    return a * b;
  }
};

}  // namespace ember::cuda::dmath
