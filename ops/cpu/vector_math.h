#pragma once
// exp, log and the normal distribution's CDF for float, written so that GCC can vectorise a loop
// that calls them: no branches, no calls, no floating-point comparisons (GCC will not if-convert
// those under the default -ftrapping-math), only arithmetic, integer compares and bit casts. A
// libm call per element is what bounds the loss kernels and GELU otherwise; with 4-wide SSE2 these
// are several times cheaper. exp and log use the classic Cephes reductions and polynomials
// (relative error below 1e-7), so they are as accurate as a float result can be.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

// EMBER_VECTOR_CLONES on a hot row kernel compiles it three times, for baseline x86-64 (SSE2: 4
// floats a vector), AVX2 (8) and AVX-512 (16), and picks one when the library loads (function
// multiversioning, GCC >= 6 on ELF; clang builds the baseline alone). The library is built without -march
// flags so that it runs on any x86-64; this keeps that guarantee while the loops above get the wider vectors
// wherever the CPU has them. Helpers inlined into the kernel are compiled for its target too. No FMA in any
// clone (the library is built with -ffp-contract=off, which the AVX-512 one needs: that target implies FMA),
// so all compute the same roundings element by element, and the explicit partial sums below fix the order of
// every reduction whatever the vector width. Define EMBER_NO_VECTOR_CLONES to build the baseline alone (to
// test or time it on a newer machine, or for a toolchain without ifunc support).
#if defined(__x86_64__) && defined(__ELF__) && defined(__has_attribute) && \
    !defined(EMBER_NO_VECTOR_CLONES) &&                                    \
    !defined(__clang__)  // (clang 14 rejects target_clones on function templates)
#if __has_attribute(target_clones)
#define EMBER_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef EMBER_VECTOR_CLONES
#define EMBER_VECTOR_CLONES
#endif
// The helpers below are always inlined, so that each clone of a kernel gets them in its own vector
// width: left to itself GCC stopped inlining normal_cdf_float into the AVX-512 clone of GELU's
// backward and called it once per element, unvectorised (5x slower).
#define EMBER_VECTOR_INLINE [[gnu::always_inline]]

namespace ember::cpu {

// Picks a where the mask is all ones, b where it is 0, bit by bit: a branch-free select.
EMBER_VECTOR_INLINE inline float select_bits(int32_t mask, float a, float b) {
  return std::bit_cast<float>((mask & std::bit_cast<int32_t>(a)) | (~mask & std::bit_cast<int32_t>(b)));
}

// The core both exps below share: x = n ln2 + r with n = round(x / ln2), and p = e^r on
// |r| <= ln2 / 2 (Cephes' polynomial). |x| is first capped at 200 on its bits (so a NaN loses its
// NaN here: the callers mask it back), which keeps t, and the integer difference that gives n, far
// from overflow: without the cap, x near -1e7 made that difference overflow and exp gave inf.
struct ExpReduced {
  float p;    // e^r
  int32_t n;  // in [-289, 289]
};
EMBER_VECTOR_INLINE inline ExpReduced exp_reduce(float x) {
  const int32_t bits = std::bit_cast<int32_t>(x);
  x = std::bit_cast<float>((bits & INT32_MIN) | std::min(bits & 0x7fffffff, 0x43480000));  // 200.0f
  // adding 1.5 * 2^23 rounds x / ln2 to an integer that then sits in the low mantissa bits of t,
  // so n is also an integer subtraction away
  constexpr float kRound = 12582912.0f;
  const float t = x * 1.44269504088896341f + kRound;
  const float n = t - kRound;
  // r = x - n ln2, with ln2 split in two so the product is exact
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  return {p, std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound)};
}

// All ones where x is a NaN.
EMBER_VECTOR_INLINE inline int32_t nan_mask(float x) {
  return -static_cast<int32_t>((std::bit_cast<int32_t>(x) & 0x7fffffff) > 0x7f800000);
}

// e^x on the domain x <= 88.3 (plus NaN, which stays NaN). Results below FLT_MIN (x < -87.3) are
// flushed to 0 instead of becoming subnormal, and -inf gives 0. Above the domain the value is not
// meaningful; the loss kernels only call it on x - max(x) <= 0.
EMBER_VECTOR_INLINE inline float exp_float(float x) {
  const ExpReduced e = exp_reduce(x);
  // times 2^n, built from its exponent bits (n capped so they cannot wrap); n < -126 gives 0
  const int32_t n = std::min(e.n, 128);
  const int32_t keep = -static_cast<int32_t>(n >= -126);
  const float scaled = e.p * std::bit_cast<float>((n + 127) << 23);
  return select_bits(nan_mask(x), x, std::bit_cast<float>(std::bit_cast<int32_t>(scaled) & keep));
}

// e^x over the whole float range, like libm's expf: +inf above ln(FLT_MAX), subnormal results
// below FLT_MIN (not flushed), 0 below half the smallest subnormal, NaN stays NaN. For the generic
// exp op; the loss kernels keep exp_float, whose flush spares them slow subnormal arithmetic.
EMBER_VECTOR_INLINE inline float exp_float_full(float x) {
  const ExpReduced e = exp_reduce(x);
  const int32_t n = std::clamp(e.n, -200, 200);
  // 2^n as 2^(n - s) 2^s, both normal floats: s = -64 where the result is subnormal (the second
  // product then rounds once, into the subnormal range), s = 1 for n = 128 (2^128 is no float)
  const int32_t low = -static_cast<int32_t>(n < -126), high = -static_cast<int32_t>(n > 127);
  const int32_t s = (low & -64) | (high & 1);
  const float scaled =
      e.p * std::bit_cast<float>((n - s + 127) << 23) * std::bit_cast<float>((s + 127) << 23);
  const int32_t overflow = -static_cast<int32_t>(std::bit_cast<int32_t>(x) > 0x42b17217);  // x > ln(FLT_MAX)
  const int32_t underflow = -static_cast<int32_t>(n < -190);  // below half the smallest subnormal
  const float finite = std::bit_cast<float>(std::bit_cast<int32_t>(scaled) & ~underflow);
  return select_bits(nan_mask(x), x, select_bits(overflow, std::numeric_limits<float>::infinity(), finite));
}

// ln(x) for positive, normal, finite x (the loss kernels call it on sums of exps >= FLT_MIN).
EMBER_VECTOR_INLINE inline float log_positive_float(float x) {
  // x = 2^e * m with m in [sqrt(1/2), sqrt(2)), so that f = m - 1 is small
  const int32_t bits = std::bit_cast<int32_t>(x);
  const int32_t mantissa = bits & 0x007fffff;
  const int32_t high = -static_cast<int32_t>(mantissa > 0x3504f3);  // all ones when 1.mantissa > sqrt(2)
  const float m = std::bit_cast<float>(mantissa | (0x3f800000 - (high & 0x00800000)));
  const float e = static_cast<float>((bits >> 23) - 127 - high);
  const float f = m - 1.0f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y = y - 2.12194440e-4f * e;  // e ln2, split like in exp_float
  y = y - 0.5f * z;
  return f + y + 0.693359375f * e;
}

// Phi(x), the standard normal CDF (GELU's gate), to within a few float ulps; NaN stays NaN.
//  * |x| < sqrt(2): Phi(x) = 1/2 + x Q(x^2), Q a polynomial (Phi is odd about 1/2 there).
//  * beyond: Phi(-|x|) = t exp(-x^2 / 2 + P(t)) with t = 1 / (1 + |x| / (2 sqrt 2)), so that t runs
//    over (0, 2/3] for the whole tail, and Phi(|x|) = 1 - Phi(-|x|). The exponential carries the
//    Gaussian decay and P(t) is smooth, so the lower tail keeps its relative accuracy where
//    1/2 (1 + erf(x / sqrt 2)) cancels to 0 (x < -5.4 in float).
// Q and P are least-squares fits on Chebyshev nodes, reweighted towards minimax (Lawson), against
// 40-digit values: absolute error 4e-10 (Q) and 2e-8 (P, in the exponent). In float arithmetic,
// measured against 30-digit values: relative error 2e-7 for |x| < 1, 7e-7 for -3 < x < -1, 2e-6
// for -6 < x < -3 (where x^2 / 2 in float is no more exact), 1e-7 for x > 1.
EMBER_VECTOR_INLINE inline float normal_cdf_float(float x) {
  const float u = x * x;
  float q = 4.358163892e-07f;
  q = q * u - 8.861861716e-06f;
  q = q * u + 1.146736104e-04f;
  q = q * u - 1.186809968e-03f;
  q = q * u + 9.973388165e-03f;
  q = q * u - 6.649035960e-02f;
  q = q * u + 3.989422917e-01f;
  const float near = 0.5f + x * q;

  const int32_t abs_bits = std::bit_cast<int32_t>(x) & 0x7fffffff;
  const float t = 1.0f / (1.0f + std::bit_cast<float>(abs_bits) * 0.353553391f);
  float p = -2.512292862e-01f;
  p = p * t + 6.937044859e-01f;
  p = p * t - 5.388031006e-01f;
  p = p * t + 1.834102347e-02f;
  p = p * t - 1.195678413e-01f;
  p = p * t + 8.721540123e-02f;
  p = p * t + 3.747763038e-01f;
  p = p * t + 1.000005007e+00f;
  p = p * t - 1.958659291e+00f;
  const float lower = t * exp_float(-0.5f * u + p);  // Phi(-|x|); the argument is below -2
  const float far = select_bits(std::bit_cast<int32_t>(x) >> 31, lower, 1.0f - lower);

  constexpr int32_t kSqrt2Bits = 0x3fb504f3;
  return select_bits(-static_cast<int32_t>(abs_bits < kSqrt2Bits), near, far);
}

// phi(x), the standard normal density.
EMBER_VECTOR_INLINE inline float normal_pdf_float(float x) { return 0.398942280f * exp_float(-0.5f * x * x); }

// The same interface for double, where libm is the right tool (double is the precision of record
// in the tests; its speed matters less).
EMBER_VECTOR_INLINE inline float exp_of(float x) { return exp_float(x); }
EMBER_VECTOR_INLINE inline float exp_full_range(float x) { return exp_float_full(x); }
EMBER_VECTOR_INLINE inline double exp_full_range(double x) { return std::exp(x); }
EMBER_VECTOR_INLINE inline double exp_of(double x) { return std::exp(x); }
EMBER_VECTOR_INLINE inline float log_positive(float x) { return log_positive_float(x); }
EMBER_VECTOR_INLINE inline double log_positive(double x) { return std::log(x); }
EMBER_VECTOR_INLINE inline float normal_cdf(float x) { return normal_cdf_float(x); }
EMBER_VECTOR_INLINE inline double normal_cdf(double x) { return 0.5 * std::erfc(-x * 0.70710678118654752); }
EMBER_VECTOR_INLINE inline float normal_pdf(float x) { return normal_pdf_float(x); }
EMBER_VECTOR_INLINE inline double normal_pdf(double x) {
  return 0.39894228040143268 * std::exp(-0.5 * x * x);
}

// sum_k term(k) over k in [0, n), accumulated in Acc. Eight interleaved partial sums (added at the
// end) let the loop vectorise: one running sum would be a chain of dependent additions that the
// compiler may not reorder. Their order is fixed, so every vector width gives the same bits.
// Inline into an EMBER_VECTOR_CLONES kernel.
template <class Acc, class F>
EMBER_VECTOR_INLINE inline Acc sum_of(int64_t n, F term) {
  constexpr int kLanes = 8;
  Acc part[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; ++l) part[l] += static_cast<Acc>(term(k + l));
  Acc sum = 0;
  for (; k < n; ++k) sum += static_cast<Acc>(term(k));
  for (int l = 0; l < kLanes; ++l) sum += part[l];
  return sum;
}

// sum_c exp(x[c] - shift) over a contiguous row, accumulated in Acc.
template <class Acc, class T>
EMBER_VECTOR_INLINE inline Acc sum_exp(const T* x, int64_t n, T shift) {
  return sum_of<Acc>(n, [&](int64_t c) { return exp_of(x[c] - shift); });
}

}  // namespace ember::cpu
