// CPU softmax / log-softmax, forward and backward (see ops/kernels/softmax.h). Each lane takes
// two or three passes: its max, the sum of exp(x - max), then the outputs. Rows (softmax over the
// last dim) run one contiguous lane per job; otherwise a job advances a block of side-by-side
// lanes row by row with one accumulator per lane (ops/cpu/lanes.h).
#include "ops/kernels/softmax.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu/lanes.h"
#include "ops/cpu/vector_math.h"

namespace ember::cpu {
namespace {

// ---- forward ----

// A row takes three vectorised passes (SSE2, AVX2 or AVX-512 clone): its max, the sum of
// exp(x - max) with the branch-free exp of vector_math.h (float; libm's for double), the
// outputs. (That exp flushes results below FLT_MIN to 0: softmax entries under 1e-38 are 0,
// not subnormal.) A NaN anywhere makes the row NaN, through its exp.
template <class T>
EMBER_VECTOR_CLONES void softmax_row(T* y, const T* x, int64_t n, bool log) {
  T m = x[0];
#pragma omp simd reduction(max : m)
  for (int64_t k = 1; k < n; ++k) m = std::max(m, x[k]);
  if (log) {
    const double lse = static_cast<double>(m) + std::log(sum_exp<double>(x, n, m));
    for (int64_t k = 0; k < n; ++k) y[k] = static_cast<T>(x[k] - lse);
  } else {
    for (int64_t k = 0; k < n; ++k) y[k] = exp_of(x[k] - m);
    const T inv = static_cast<T>(1.0 / sum_of<double>(n, [&](int64_t k) { return y[k]; }));
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  }
}

// w side-by-side lanes: element k of lane j is at [k * stride + j].
template <class T>
void softmax_columns(T* y, const T* x, int64_t n, int64_t stride, int64_t w, bool log) {
  T m[kLaneBlock];
  double s[kLaneBlock];
  for (int64_t j = 0; j < w; ++j) m[j] = x[j], s[j] = 0;
  for (int64_t k = 1; k < n; ++k) {
    const T* xr = x + k * stride;
    for (int64_t j = 0; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
  }
  for (int64_t k = 0; k < n; ++k) {
    const T* xr = x + k * stride;
    T* yr = y + k * stride;
    for (int64_t j = 0; j < w; ++j) {
      T e = std::exp(xr[j] - m[j]);
      if (!log) yr[j] = e;
      s[j] += e;
    }
  }
  if (log) {
    double lse[kLaneBlock];
    for (int64_t j = 0; j < w; ++j) lse[j] = static_cast<double>(m[j]) + std::log(s[j]);
    for (int64_t k = 0; k < n; ++k) {
      const T* xr = x + k * stride;
      T* yr = y + k * stride;
      for (int64_t j = 0; j < w; ++j) yr[j] = static_cast<T>(xr[j] - lse[j]);
    }
  } else {
    T inv[kLaneBlock];
    for (int64_t j = 0; j < w; ++j) inv[j] = static_cast<T>(1.0 / s[j]);
    for (int64_t k = 0; k < n; ++k) {
      T* yr = y + k * stride;
      for (int64_t j = 0; j < w; ++j) yr[j] *= inv[j];
    }
  }
}

void softmax_cpu(const Tensor& out, const Tensor& in, int64_t dim, bool log) {
  dispatch_floating(in.dtype(), "softmax", [&]<class T>() {
    const LaneGeometry g = lane_geometry(in.shape(), dim);
    const T* x = static_cast<const T*>(in.raw_data());
    T* y = static_cast<T*>(out.raw_data());
    for_each_lane_block(g, [&](int64_t o, int64_t j0, int64_t j1) {
      const int64_t base = o * g.n * g.inner + j0;
      if (g.inner == 1)
        softmax_row(y + base, x + base, g.n, log);
      else
        softmax_columns(y + base, x + base, g.n, g.inner, j1 - j0, log);
    });
  });
}

// ---- backward ----
// softmax:     grad_in = y * (g - sum(g * y))
// log_softmax: grad_in = g - exp(y) * sum(g)

template <class T>
EMBER_VECTOR_CLONES void softmax_backward_row(T* gx, const T* g, const T* y, int64_t n, bool log) {
  if (log) {
    const T sum_g = static_cast<T>(sum_of<double>(n, [&](int64_t k) { return g[k]; }));
    for (int64_t k = 0; k < n; ++k) gx[k] = g[k] - exp_of(y[k]) * sum_g;
  } else {
    const T dot =
        static_cast<T>(sum_of<double>(n, [&](int64_t k) { return static_cast<double>(g[k]) * y[k]; }));
    for (int64_t k = 0; k < n; ++k) gx[k] = y[k] * (g[k] - dot);
  }
}

template <class T>
void softmax_backward_columns(T* gx, const T* g, const T* y, int64_t n, int64_t stride, int64_t w, bool log) {
  double s[kLaneBlock];
  for (int64_t j = 0; j < w; ++j) s[j] = 0;
  for (int64_t k = 0; k < n; ++k) {
    const T* gr = g + k * stride;
    const T* yr = y + k * stride;
    if (log)
      for (int64_t j = 0; j < w; ++j) s[j] += gr[j];
    else
      for (int64_t j = 0; j < w; ++j) s[j] += static_cast<double>(gr[j]) * yr[j];
  }
  T sum[kLaneBlock];
  for (int64_t j = 0; j < w; ++j) sum[j] = static_cast<T>(s[j]);
  for (int64_t k = 0; k < n; ++k) {
    const T* gr = g + k * stride;
    const T* yr = y + k * stride;
    T* out = gx + k * stride;
    if (log)
      for (int64_t j = 0; j < w; ++j) out[j] = gr[j] - std::exp(yr[j]) * sum[j];
    else
      for (int64_t j = 0; j < w; ++j) out[j] = yr[j] * (gr[j] - sum[j]);
  }
}

void softmax_backward_cpu(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, int64_t dim,
                          bool log) {
  dispatch_floating(out.dtype(), "softmax_backward", [&]<class T>() {
    const LaneGeometry geo = lane_geometry(out.shape(), dim);
    const T* g = static_cast<const T*>(grad_out.raw_data());
    const T* y = static_cast<const T*>(out.raw_data());
    T* gx = static_cast<T*>(grad_in.raw_data());
    for_each_lane_block(geo, [&](int64_t o, int64_t j0, int64_t j1) {
      const int64_t base = o * geo.n * geo.inner + j0;
      if (geo.inner == 1)
        softmax_backward_row(gx + base, g + base, y + base, geo.n, log);
      else
        softmax_backward_columns(gx + base, g + base, y + base, geo.n, geo.inner, j1 - j0, log);
    });
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(softmax_stub, cpu, &softmax_cpu);
EMBER_REGISTER_KERNEL(softmax_backward_stub, cpu, &softmax_backward_cpu);
}  // namespace ember::cpu
