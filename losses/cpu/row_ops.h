#pragma once
// Small row reductions for the loss kernels. Each keeps several independent partial results
// (vector lanes, or four explicit chains): a single running sum is a chain of dependent
// instructions (one add per 4 cycles), four chains run in parallel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

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

// sum_i x[i] (FourSums<T>) or sum_i x[i] * y[i] (FourSums<T, true>) in double, over four partial
// sums (an in-order double sum is one long chain of dependent adds): s_l sums the elements
// i = l (mod 4), in order, the tail goes to s_0, and the total is (s_0 + s_1) + (s_2 + s_3).
// A class, so that its steps can also ride along in the loop of a running sum below (`also`):
// both loops are little work per element spread over a few chains of dependent adds, and one loop
// that advances both sets of chains costs much less than two. Its four partial sums are one vector
// (four lanes that each add their own elements in order: the same result on every target, and
// written with GCC's vector extension because left to itself GCC vectorises them in some loops
// and not in others). Always inlined, so that it takes the vector width of its caller.
template <class T, bool kProducts = false>
class FourSums {
 public:
  FourSums(const T* x, int64_t n, const T* y = nullptr) : x_(x), y_(y), n_(n) {}
  // step(i) adds elements 4i .. 4i + 3: call it for i = 0 .. steps() - 1, in order, then total().
  int64_t steps() const { return n_ / 4; }
  [[gnu::always_inline]] void step(int64_t i) {
    using Vec = std::conditional_t<sizeof(T) == 4, Float4, Double4>;
    Vec v;
    std::memcpy(&v, x_ + 4 * i, sizeof v);
    Double4 d = __builtin_convertvector(v, Double4);
    if constexpr (kProducts) {
      std::memcpy(&v, y_ + 4 * i, sizeof v);
      d *= __builtin_convertvector(v, Double4);  // (exact for float: 24 + 24 bits)
    }
    s_ += d;
  }
  [[gnu::always_inline]] double total() {
    for (int64_t i = 4 * steps(); i < n_; ++i) {
      if constexpr (kProducts) {
        s_[0] += static_cast<double>(x_[i]) * y_[i];
      } else {
        s_[0] += static_cast<double>(x_[i]);
      }
    }
    return (s_[0] + s_[1]) + (s_[2] + s_[3]);
  }

 private:
  using Float4 = float __attribute__((vector_size(4 * sizeof(float))));
  using Double4 = double __attribute__((vector_size(4 * sizeof(double))));
  const T* x_;
  const T* y_;
  int64_t n_;
  Double4 s_ = {0, 0, 0, 0};
};
template <class T>
[[gnu::always_inline]] inline double sum_of(const T* x, int64_t n) {
  FourSums<T> sums(x, n);
  for (int64_t i = 0; i < sums.steps(); ++i) sums.step(i);
  return sums.total();
}
template <class T>
[[gnu::always_inline]] inline double sum_of(const T* x, int64_t n, const T* y) {
  FourSums<T, true> sums(x, n, y);
  for (int64_t i = 0; i < sums.steps(); ++i) sums.step(i);
  return sums.total();
}

// Running sums as four interleaved chains: the array is cut into four blocks of len = ceil(n / 4)
// elements (the last one shorter, or empty) whose sums run side by side (a single running sum is
// one long chain of dependent adds), kept in `local` (n entries); each block then adds the total
// of the blocks after it (suffix) or before it (prefix). That second step is fused with the
// caller's use of the sums: for_each(f) calls f(i, sum) for i = 0..n-1 in order, block by block,
// with a loop-invariant offset per block, so f's loop stays element-wise independent and
// vectorises when f does. Always inlined, so that f's loop takes its caller's vector width.
//   suffix_sums: sum = sum_{j >= i} x[j], in double;
//   prefix_sums: sum = sum_{j <= i} x[j], in double.
// x may be local itself: each sum then replaces its term. `also` (a FourSums, or nothing) is
// advanced through all its steps in the same loop as the chains.
struct RunningSums {
  const double* local;
  int64_t n, len;
  double offset[4];
  template <class F>
  [[gnu::always_inline]] void for_each(F&& f) const {
    for (int q = 0; q < 4; ++q) {
      const int64_t begin = std::min(n, q * len), end = std::min(n, (q + 1) * len);
      const double add = offset[q];
      for (int64_t i = begin; i < end; ++i) f(i, local[i] + add);
    }
  }
};
struct NoSums {
  int64_t steps() const { return 0; }
  void step(int64_t) {}
};
template <class T, class Also = NoSums>
[[gnu::always_inline]] inline RunningSums suffix_sums(const T* x, int64_t n, double* local,
                                                      Also&& also = {}) {
  const int64_t len = (n + 3) / 4;
  // rows i < full have an element in every block (the last block holds n - 3 len >= 0 of them);
  // the few rows past it check each block
  const int64_t full = std::max<int64_t>(0, n - 3 * len);
  double s[4] = {0, 0, 0, 0};
  for (int64_t i = len - 1; i >= full; --i)
    for (int q = 0; q < 4; ++q) {
      const int64_t at = q * len + i;
      if (at < n) local[at] = s[q] += x[at];
    }
  int64_t step = 0;
  for (int64_t i = full - 1; i >= 0; --i) {
    for (int q = 0; q < 4; ++q) local[q * len + i] = s[q] += x[q * len + i];
    also.step(step++);  // full <= n / 4 = also.steps()
  }
  for (; step < also.steps(); ++step) also.step(step);
  RunningSums sums{local, n, len, {0, 0, 0, 0}};
  for (int q = 3; q > 0; --q) sums.offset[q - 1] = sums.offset[q] + s[q];
  return sums;
}
template <class T, class Also = NoSums>
[[gnu::always_inline]] inline RunningSums prefix_sums(const T* x, int64_t n, double* local,
                                                      Also&& also = {}) {
  const int64_t len = (n + 3) / 4;
  const int64_t full = std::max<int64_t>(0, n - 3 * len);  // as in suffix_sums
  double s[4] = {0, 0, 0, 0};
  int64_t step = 0;
  for (int64_t i = 0; i < full; ++i) {
    for (int q = 0; q < 4; ++q) local[q * len + i] = s[q] += x[q * len + i];
    also.step(step++);
  }
  for (int64_t i = full; i < len; ++i)
    for (int q = 0; q < 4; ++q) {
      const int64_t at = q * len + i;
      if (at < n) local[at] = s[q] += x[at];
    }
  for (; step < also.steps(); ++step) also.step(step);
  RunningSums sums{local, n, len, {0, 0, 0, 0}};
  for (int q = 1; q < 4; ++q) sums.offset[q] = sums.offset[q - 1] + s[q - 1];
  return sums;
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
