// CPU masked softmax of attention, forward and backward (contract: ops/kernels/masked_softmax.h).
// Rows are independent: parallel_for hands each thread a run of whole rows. Within a row only the
// causally visible prefix [0, visible) is read; the rest is written as zeros. The padding test is
// a template parameter, so the common unpadded row is a plain loop the compiler vectorises.
#include "ops/kernels/masked_softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "ops/cpu/vector_math.h"

namespace ember::cpu {
namespace {

// ---- forward ----

template <class T, bool kPadded>
EMBER_VECTOR_CLONES void masked_softmax_row(T* y, const T* x, const bool* pad, int64_t n, int64_t visible,
                                            T scale) {
  auto open = [&](int64_t j) { return !kPadded || !pad[j]; };
  const T neg_inf = -std::numeric_limits<T>::infinity();
  // 1. the max of the visible scaled scores. `v > m ? v : m` skips NaN, which keeps the loop a
  // vectorised max; a NaN still poisons the sum below, so its row comes out NaN as on the GPU.
  T m = neg_inf;
  for (int64_t j = 0; j < visible; ++j) {
    const T v = scale * x[j];
    if (open(j)) m = v > m ? v : m;
  }
  if (m == neg_inf) {
    // No visible score above -inf: a row of zeros -- unless the max skipped a NaN (rare path).
    bool has_nan = false;
    for (int64_t j = 0; j < visible; ++j) has_nan |= open(j) && std::isnan(scale * x[j]);
    if (!has_nan) {
      std::fill(y, y + n, T(0));
      return;
    }
    m = std::numeric_limits<T>::quiet_NaN();
  }
  // 2. exp(v - m) with the branch-free exp of vector_math.h (as softmax: float results below
  // FLT_MIN flush to 0), and their sum in double with fixed partial sums, so both loops vectorise;
  // 3. the weights. Hidden keys get 0.
  for (int64_t j = 0; j < visible; ++j) y[j] = open(j) ? exp_of(scale * x[j] - m) : T(0);
  const T inv = static_cast<T>(1.0 / sum_of<double>(visible, [&](int64_t j) { return y[j]; }));
  for (int64_t j = 0; j < visible; ++j)
    if (open(j)) y[j] *= inv;  // padded keys stay 0 even when the row is NaN
  std::fill(y + visible, y + n, T(0));
}

// Calls row(r, i, b) for every row r = (b, h, i) of [B, H, Tq, Tk], spread over the threads.
template <class Row>
void for_each_row(const Shape& shape, const Row& row) {
  const int64_t H = shape[1], Tq = shape[2], Tk = shape[3];
  const int64_t rows = shape[0] * H * Tq;
  const int64_t grain = std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(Tk, 1));
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) row(r, r % Tq, r / (H * Tq));
  });
}

void masked_softmax_cpu(const Tensor& out, const Tensor& scores, const Tensor& key_padding_mask, double scale,
                        bool causal) {
  dispatch_floating(scores.dtype(), "masked_softmax", [&]<class T>() {
    const int64_t Tq = scores.size(2), Tk = scores.size(3);
    const T* x = static_cast<const T*>(scores.raw_data());
    T* y = static_cast<T*>(out.raw_data());
    const bool* pad =
        key_padding_mask.defined() ? static_cast<const bool*>(key_padding_mask.raw_data()) : nullptr;
    const T s = static_cast<T>(scale);
    for_each_row(scores.shape(), [&](int64_t r, int64_t i, int64_t b) {
      const int64_t visible = visible_keys(i, Tq, Tk, causal);
      if (pad)
        masked_softmax_row<T, true>(y + r * Tk, x + r * Tk, pad + b * Tk, Tk, visible, s);
      else
        masked_softmax_row<T, false>(y + r * Tk, x + r * Tk, nullptr, Tk, visible, s);
    });
  });
}

// ---- backward: grad_x_j = scale * y_j * (g_j - sum_k g_k y_k) ----

template <class T>
EMBER_VECTOR_CLONES double backward_dot(const T* g, const T* y, int64_t n) {
  return sum_of<double>(n, [&](int64_t j) { return static_cast<double>(g[j]) * y[j]; });
}

void masked_softmax_backward_cpu(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                 double scale, bool causal) {
  dispatch_floating(out.dtype(), "masked_softmax_backward", [&]<class T>() {
    const int64_t Tq = out.size(2), Tk = out.size(3);
    const T* g = static_cast<const T*>(grad_out.raw_data());
    const T* y = static_cast<const T*>(out.raw_data());
    T* gx = static_cast<T*>(grad_in.raw_data());
    const T s = static_cast<T>(scale);
    for_each_row(out.shape(), [&](int64_t r, int64_t i, int64_t) {
      const int64_t visible = visible_keys(i, Tq, Tk, causal);
      const T* gr = g + r * Tk;
      const T* yr = y + r * Tk;
      T* gxr = gx + r * Tk;
      const T d = static_cast<T>(backward_dot(gr, yr, visible));
      for (int64_t j = 0; j < visible; ++j) gxr[j] = s * yr[j] * (gr[j] - d);
      std::fill(gxr + visible, gxr + Tk, T(0));
    });
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(masked_softmax_stub, cpu, &masked_softmax_cpu);
EMBER_REGISTER_KERNEL(masked_softmax_backward_stub, cpu, &masked_softmax_backward_cpu);
}  // namespace ember::cpu
