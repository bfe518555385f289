#pragma once
// Small row reductions for the loss kernels. Each keeps four independent partial results: a
// single running max is a chain of dependent instructions (one max per 4 cycles), four chains
// run in parallel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace ember::losses::cpu {

// The max and min of x[0, n) (NaN elements skipped) and whether any element is NaN, in one pass.
template <class T>
struct RowStats {
  T max, min;
  bool has_nan;
  bool all_finite() const { return !has_nan && std::isfinite(max) && std::isfinite(min); }
};
template <class T>
RowStats<T> row_stats(const T* x, int64_t n) {
  constexpr T kInf = std::numeric_limits<T>::infinity();
  T hi[4] = {-kInf, -kInf, -kInf, -kInf}, lo[4] = {kInf, kInf, kInf, kInf};
  bool nan = false;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) {
      const T v = x[i + j];
      hi[j] = std::max(hi[j], v);
      lo[j] = std::min(lo[j], v);
      nan |= v != v;
    }
  for (; i < n; ++i) {
    hi[0] = std::max(hi[0], x[i]);
    lo[0] = std::min(lo[0], x[i]);
    nan |= x[i] != x[i];
  }
  return {std::max(std::max(hi[0], hi[1]), std::max(hi[2], hi[3])),
          std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3])), nan};
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

// suffix[i] = sum_{j >= i} x[j] in double. The array is cut into four blocks whose suffix sums
// run as four interleaved chains; each block then adds the totals of the blocks after it.
template <class T>
void suffix_sums(const T* x, int64_t n, double* suffix) {
  const int64_t len = (n + 3) / 4;
  double s[4] = {0, 0, 0, 0};
  for (int64_t i = len - 1; i >= 0; --i)
    for (int q = 0; q < 4; ++q) {
      const int64_t at = q * len + i;
      if (at < n) suffix[at] = s[q] += x[at];
    }
  double later = 0;
  for (int q = 3; q >= 0; --q) {
    const int64_t begin = std::min(n, q * len), end = std::min(n, (q + 1) * len);
    for (int64_t i = begin; i < end; ++i) suffix[i] += later;
    later += s[q];
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
