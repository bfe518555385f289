#pragma once
// Small row reductions for the loss kernels. Each keeps several independent partial results
// (vector lanes, or four explicit chains): a single running sum is a chain of dependent
// instructions (one add per 4 cycles), four chains run in parallel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace ember::losses::cpu {

// The max and min of x[0, n) and whether any element is NaN, in one pass. When has_nan is set,
// max and min are unspecified (the callers never use them then). Always inlined, so that it
// takes the vector width of its caller (see EMBER_VECTOR_CLONES in vector_math.h).
template <class T>
struct RowStats {
  T max, min;
  bool has_nan;
  bool all_finite() const { return !has_nan && std::isfinite(max) && std::isfinite(min); }
};
template <class T>
[[gnu::always_inline]] inline RowStats<T> row_stats(const T* x, int64_t n) {
  T hi = -std::numeric_limits<T>::infinity(), lo = std::numeric_limits<T>::infinity();
  int nan = 0;
  // `omp simd` licenses the vector max/min (whose NaN handling differs from std::max's, which
  // is why GCC does not vectorise the plain loop; NaN is detected separately)
#pragma omp simd reduction(max : hi) reduction(min : lo) reduction(| : nan)
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    hi = std::max(hi, v);
    lo = std::min(lo, v);
    nan |= v != v;
  }
  return {hi, lo, nan != 0};
}

// sum_i x[i] * (y ? y[i] : 1) in double, over four partial sums (an in-order double sum is one
// long chain of dependent adds).
template <class T>
double sum_of(const T* x, int64_t n, const T* y = nullptr) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  if (y) {
    for (; i + 4 <= n; i += 4) {
      s0 += static_cast<double>(x[i]) * y[i];
      s1 += static_cast<double>(x[i + 1]) * y[i + 1];
      s2 += static_cast<double>(x[i + 2]) * y[i + 2];
      s3 += static_cast<double>(x[i + 3]) * y[i + 3];
    }
    for (; i < n; ++i) s0 += static_cast<double>(x[i]) * y[i];
  } else {
    for (; i + 4 <= n; i += 4) {
      s0 += x[i];
      s1 += x[i + 1];
      s2 += x[i + 2];
      s3 += x[i + 3];
    }
    for (; i < n; ++i) s0 += x[i];
  }
  return (s0 + s1) + (s2 + s3);
}

// Running sums as four interleaved chains: the array is cut into four blocks whose sums run side
// by side (a single running sum is one long chain of dependent adds); each block then adds the
// total of the blocks before (prefix) or after it (suffix). That second step is fused with the
// caller's use of the sums: f(i, sum) is called for i = 0..n-1 in order, block by block, with a
// loop-invariant offset per block, so f's loop stays element-wise independent and vectorises
// when f does. `local` is scratch space (n entries). Always inlined, so that f's loop takes its
// caller's vector width.
//   for_each_suffix_sum: sum = sum_{j >= i} x[j], in double;
//   for_each_prefix_sum: sum = sum_{j <= i} x[j], in double.
template <class T, class F>
[[gnu::always_inline]] inline void for_each_suffix_sum(const T* x, int64_t n, double* local, F&& f) {
  const int64_t len = (n + 3) / 4;
  double s[4] = {0, 0, 0, 0};
  for (int64_t i = len - 1; i >= 0; --i)
    for (int q = 0; q < 4; ++q) {
      const int64_t at = q * len + i;
      if (at < n) local[at] = s[q] += x[at];
    }
  double later[4];
  later[3] = 0;
  for (int q = 3; q > 0; --q) later[q - 1] = later[q] + s[q];
  for (int q = 0; q < 4; ++q) {
    const int64_t begin = std::min(n, q * len), end = std::min(n, (q + 1) * len);
    const double offset = later[q];
    for (int64_t i = begin; i < end; ++i) f(i, local[i] + offset);
  }
}
template <class T, class F>
[[gnu::always_inline]] inline void for_each_prefix_sum(const T* x, int64_t n, double* local, F&& f) {
  const int64_t len = (n + 3) / 4;
  double s[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < len; ++i)
    for (int q = 0; q < 4; ++q) {
      const int64_t at = q * len + i;
      if (at < n) local[at] = s[q] += x[at];
    }
  double earlier = 0;
  for (int q = 0; q < 4; ++q) {
    const int64_t begin = std::min(n, q * len), end = std::min(n, (q + 1) * len);
    const double offset = earlier;
    for (int64_t i = begin; i < end; ++i) f(i, local[i] + offset);
    earlier += s[q];
  }
}

// The first-order linear recurrence out[0] = add[0], out[k] = mult[k - 1] * out[k - 1] + add[k].
// Run directly it is one chain of dependent multiply-adds. Here it is cut into four blocks that
// run side by side from a zero start, each also carrying the product of its multipliers
// (`scratch`, n entries); then each block adds its true start value times that product:
//   out[k] = local[k] + out[block start - 1] * prod(mult[block start - 1 .. k - 1]).
template <class T>
void linear_recurrence(const T* mult, const T* add, int64_t n, T* out, T* scratch) {
  const int64_t len = (n + 3) / 4;
  T local[4], product[4];
  for (int q = 0; q < 4; ++q) {
    const int64_t k = q * len;
    if (k >= n) continue;
    out[k] = local[q] = add[k];
    scratch[k] = product[q] = k > 0 ? mult[k - 1] : T(0);
  }
  for (int64_t i = 1; i < len; ++i)
    for (int q = 0; q < 4; ++q) {
      const int64_t k = q * len + i;
      if (k >= n) continue;
      out[k] = local[q] = mult[k - 1] * local[q] + add[k];
      scratch[k] = product[q] = mult[k - 1] * product[q];
    }
  T incoming = 0;  // out[-1]: nothing
  for (int q = 0; q < 4; ++q) {
    const int64_t begin = std::min(n, q * len), end = std::min(n, (q + 1) * len);
    for (int64_t k = begin; k < end; ++k) out[k] += incoming * scratch[k];
    if (end > begin) incoming = out[end - 1];
  }
}

}  // namespace ember::losses::cpu
