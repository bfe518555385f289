// CPU pooling kernels: one loop per output pixel over its window, planes in parallel, plus a fast
// path for the 2x2 / stride 2 max-pool forward.
// (Window formulas and the tensor layout are described in ops/kernels/pool.h.)
#include "ops/kernels/pool.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/tensor_impl.h"

namespace ember::cpu {
namespace {

struct Window {
  int64_t begin, end;
};

// Fixed-size sliding window, clipped to the input (the padding contributes nothing).
struct SlidingWindows {
  int64_t in, kernel, stride, pad;
  Window operator()(int64_t i) const {
    int64_t b = i * stride - pad;
    return {std::max<int64_t>(b, 0), std::min(b + kernel, in)};
  }
};

// Adaptive windows: output i covers [floor(i*in/out), ceil((i+1)*in/out)).
struct AdaptiveWindows {
  int64_t in, out;
  Window operator()(int64_t i) const { return {i * in / out, ((i + 1) * in + out - 1) / out}; }
};

struct Planes {
  int64_t count, h, w, oh, ow;
};
Planes planes_of(const Tensor& in, const Tensor& out) {
  return {in.size(0), in.size(1), in.size(2), out.size(1), out.size(2)};
}

// Runs f(plane) for every plane, in parallel; `cost` estimates the work of one plane.
template <class F>
void for_each_plane(int64_t count, int64_t cost, const F& f) {
  parallel_for(0, count, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(1, cost)),
               [&](int64_t b, int64_t e) {
                 for (int64_t p = b; p < e; ++p) f(p);
               });
}

// Whether v replaces `best` as its window's max: larger, or NaN (so NaN wins, as in PyTorch). Ties keep
// the first element in row-major order.
template <class T>
bool beats(T v, T best) {
  if constexpr (std::is_floating_point_v<T>) return v > best || std::isnan(v);
  return v > best;
}

template <class T>
void max_pool(const Tensor& out, const Tensor& indices, const Tensor& x, const Pool2dParams& prm) {
  const Planes s = planes_of(x, out);
  const SlidingWindows rows{s.h, prm.kernel[0], prm.stride[0], prm.padding[0]};
  const SlidingWindows cols{s.w, prm.kernel[1], prm.stride[1], prm.padding[1]};
  const T* xp = static_cast<const T*>(x.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  int64_t* ip = static_cast<int64_t*>(indices.raw_data());
  for_each_plane(s.count, s.oh * s.ow * prm.kernel[0] * prm.kernel[1], [&](int64_t plane) {
    const T* xin = xp + plane * s.h * s.w;
    for (int64_t i = 0; i < s.oh; ++i) {
      const Window r = rows(i);
      for (int64_t j = 0; j < s.ow; ++j) {
        const Window c = cols(j);
        int64_t best = r.begin * s.w + c.begin;  // the window is never empty (pad <= kernel / 2)
        for (int64_t h = r.begin; h < r.end; ++h)
          for (int64_t w = c.begin; w < c.end; ++w)
            if (beats(xin[h * s.w + w], xin[best])) best = h * s.w + w;
        const int64_t o = (plane * s.oh + i) * s.ow + j;
        op[o] = xin[best];
        ip[o] = best;
      }
    }
  });
}

// The common 2x2 / stride 2 / no padding pool (the CNNs' "MaxPool2d(2)"): output (i, j) is the
// block of rows 2i, 2i+1 and columns 2j, 2j+1. Knowing that, the loop has no window bounds to
// compute and reads two input rows straight through; an odd last row or column is not in any
// window. Same scan order and tie/NaN rule as the generic loop, so the results are identical.
bool is_2x2_stride_2(const Pool2dParams& p) {
  return p.kernel == std::array<int64_t, 2>{2, 2} && p.stride == std::array<int64_t, 2>{2, 2} &&
         p.padding == std::array<int64_t, 2>{0, 0};
}

// One output row: which[j] in 0..3 says which of the block's four pixels (top-left, top-right,
// bottom-left, bottom-right) won. Written without branches (selects only), so the compiler
// vectorises it: on random data a branch per comparison would be mispredicted half the time.
template <class T>
void max_pool_2x2_row(const T* top, const T* bottom, int64_t ow, T* out, int32_t* which) {
  for (int64_t j = 0; j < ow; ++j) {
    const T v0 = top[2 * j], v1 = top[2 * j + 1], v2 = bottom[2 * j], v3 = bottom[2 * j + 1];
    T best = v0;
    int32_t k = 0;
    bool u = v1 > best;
    if constexpr (std::is_floating_point_v<T>) u = u || v1 != v1;  // NaN wins
    best = u ? v1 : best;
    k = u ? 1 : k;
    u = v2 > best;
    if constexpr (std::is_floating_point_v<T>) u = u || v2 != v2;
    best = u ? v2 : best;
    k = u ? 2 : k;
    u = v3 > best;
    if constexpr (std::is_floating_point_v<T>) u = u || v3 != v3;
    best = u ? v3 : best;
    k = u ? 3 : k;
    out[j] = best;
    which[j] = k;
  }
}

template <class T>
void max_pool_2x2(const Tensor& out, const Tensor& indices, const Tensor& x) {
  const Planes s = planes_of(x, out);
  const T* xp = static_cast<const T*>(x.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  int64_t* ip = static_cast<int64_t*>(indices.raw_data());
  parallel_for(0, s.count, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(1, 4 * s.oh * s.ow)),
               [&](int64_t begin, int64_t end) {
                 std::vector<int32_t> which(s.ow);
                 for (int64_t plane = begin; plane < end; ++plane) {
                   const T* xin = xp + plane * s.h * s.w;
                   for (int64_t i = 0; i < s.oh; ++i) {
                     const int64_t o = (plane * s.oh + i) * s.ow, row_start = 2 * i * s.w;
                     max_pool_2x2_row(xin + row_start, xin + row_start + s.w, s.ow, op + o, which.data());
                     // The flat index in the plane: block corner + column offset + row offset.
                     int64_t* idx = ip + o;
                     const int32_t* k = which.data();
                     const int64_t ow = s.ow, w = s.w;  // locals, so the loop vectorises
                     for (int64_t j = 0; j < ow; ++j)
                       idx[j] = row_start + 2 * j + (k[j] & 1) + (k[j] >> 1) * w;
                   }
                 }
               });
}

// Each output's gradient goes to the input pixel that won its window (overlapping windows add up).
// (No 2x2 special case here: this loop is already bound by the memory traffic of zeroing grad_x; a
// version that stored each gradient into its disjoint 2x2 block measured no faster.)
template <class T>
void max_pool_backward(const Tensor& grad_x, const Tensor& grad_out, const Tensor& indices) {
  const Planes s = planes_of(grad_x, grad_out);
  const T* gp = static_cast<const T*>(grad_out.raw_data());
  const int64_t* ip = static_cast<const int64_t*>(indices.raw_data());
  T* dp = static_cast<T*>(grad_x.raw_data());
  for_each_plane(s.count, s.h * s.w + s.oh * s.ow, [&](int64_t plane) {
    T* dx = dp + plane * s.h * s.w;
    std::fill(dx, dx + s.h * s.w, T(0));
    const int64_t base = plane * s.oh * s.ow;
    for (int64_t o = 0; o < s.oh * s.ow; ++o) dx[ip[base + o]] += gp[base + o];
  });
}

// out = mean of each window, with divisor(row window, col window) as the count.
template <class T, class Windows, class Divisor>
void avg_pool(const Tensor& out, const Tensor& x, const Windows& rows, const Windows& cols,
              int64_t window_cost, const Divisor& divisor) {
  const Planes s = planes_of(x, out);
  const T* xp = static_cast<const T*>(x.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  for_each_plane(s.count, s.oh * s.ow * window_cost, [&](int64_t plane) {
    const T* xin = xp + plane * s.h * s.w;
    T* o = op + plane * s.oh * s.ow;
    for (int64_t i = 0; i < s.oh; ++i) {
      const Window r = rows(i);
      for (int64_t j = 0; j < s.ow; ++j) {
        const Window c = cols(j);
        double sum = 0;  // accumulate in double, as PyTorch's CPU kernels do for float
        for (int64_t h = r.begin; h < r.end; ++h)
          for (int64_t w = c.begin; w < c.end; ++w) sum += xin[h * s.w + w];
        o[i * s.ow + j] = static_cast<T>(sum / static_cast<double>(divisor(r, c)));
      }
    }
  });
}

// The adjoint: each output's gradient, divided by the same count, is spread over its window.
template <class T, class Windows, class Divisor>
void avg_pool_backward(const Tensor& grad_x, const Tensor& grad_out, const Windows& rows, const Windows& cols,
                       int64_t window_cost, const Divisor& divisor) {
  const Planes s = planes_of(grad_x, grad_out);
  const T* gp = static_cast<const T*>(grad_out.raw_data());
  T* dp = static_cast<T*>(grad_x.raw_data());
  for_each_plane(s.count, s.h * s.w + s.oh * s.ow * window_cost, [&](int64_t plane) {
    T* dx = dp + plane * s.h * s.w;
    const T* g = gp + plane * s.oh * s.ow;
    std::fill(dx, dx + s.h * s.w, T(0));
    for (int64_t i = 0; i < s.oh; ++i) {
      const Window r = rows(i);
      for (int64_t j = 0; j < s.ow; ++j) {
        const Window c = cols(j);
        const T share = static_cast<T>(g[i * s.ow + j] / static_cast<double>(divisor(r, c)));
        for (int64_t h = r.begin; h < r.end; ++h)
          for (int64_t w = c.begin; w < c.end; ++w) dx[h * s.w + w] += share;
      }
    }
  });
}

// count_include_pad = true: the divisor is the full kernel area, padding included.
auto kernel_area(const Pool2dParams& p) {
  return [area = p.kernel[0] * p.kernel[1]](Window, Window) { return area; };
}
auto window_area() {
  return [](Window r, Window c) { return (r.end - r.begin) * (c.end - c.begin); };
}
int64_t adaptive_cost(int64_t in, int64_t out) { return (in + out - 1) / out + 1; }

void max_pool_cpu(const Tensor& out, const Tensor& indices, const Tensor& x, const Pool2dParams& p) {
  dispatch_numeric(x.dtype(), "max_pool2d", [&]<class T>() {
    if (is_2x2_stride_2(p))
      max_pool_2x2<T>(out, indices, x);
    else
      max_pool<T>(out, indices, x, p);
  });
}
void max_pool_backward_cpu(const Tensor& grad_x, const Tensor& grad_out, const Tensor& indices) {
  dispatch_floating(grad_out.dtype(), "max_pool2d",
                    [&]<class T>() { max_pool_backward<T>(grad_x, grad_out, indices); });
}
void avg_pool_cpu(const Tensor& out, const Tensor& x, const Pool2dParams& p) {
  SlidingWindows rows{x.size(1), p.kernel[0], p.stride[0], p.padding[0]};
  SlidingWindows cols{x.size(2), p.kernel[1], p.stride[1], p.padding[1]};
  dispatch_floating(x.dtype(), "avg_pool2d", [&]<class T>() {
    avg_pool<T>(out, x, rows, cols, p.kernel[0] * p.kernel[1], kernel_area(p));
  });
}
void avg_pool_backward_cpu(const Tensor& grad_x, const Tensor& grad_out, const Pool2dParams& p) {
  SlidingWindows rows{grad_x.size(1), p.kernel[0], p.stride[0], p.padding[0]};
  SlidingWindows cols{grad_x.size(2), p.kernel[1], p.stride[1], p.padding[1]};
  dispatch_floating(grad_out.dtype(), "avg_pool2d", [&]<class T>() {
    avg_pool_backward<T>(grad_x, grad_out, rows, cols, p.kernel[0] * p.kernel[1], kernel_area(p));
  });
}
void adaptive_avg_pool_cpu(const Tensor& out, const Tensor& x) {
  AdaptiveWindows rows{x.size(1), out.size(1)}, cols{x.size(2), out.size(2)};
  int64_t cost = adaptive_cost(x.size(1), out.size(1)) * adaptive_cost(x.size(2), out.size(2));
  dispatch_floating(x.dtype(), "adaptive_avg_pool2d",
                    [&]<class T>() { avg_pool<T>(out, x, rows, cols, cost, window_area()); });
}
void adaptive_avg_pool_backward_cpu(const Tensor& grad_x, const Tensor& grad_out) {
  AdaptiveWindows rows{grad_x.size(1), grad_out.size(1)}, cols{grad_x.size(2), grad_out.size(2)};
  int64_t cost =
      adaptive_cost(grad_x.size(1), grad_out.size(1)) * adaptive_cost(grad_x.size(2), grad_out.size(2));
  dispatch_floating(grad_out.dtype(), "adaptive_avg_pool2d", [&]<class T>() {
    avg_pool_backward<T>(grad_x, grad_out, rows, cols, cost, window_area());
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(max_pool2d_stub, cpu, &max_pool_cpu);
EMBER_REGISTER_KERNEL(max_pool2d_backward_stub, cpu, &max_pool_backward_cpu);
EMBER_REGISTER_KERNEL(avg_pool2d_stub, cpu, &avg_pool_cpu);
EMBER_REGISTER_KERNEL(avg_pool2d_backward_stub, cpu, &avg_pool_backward_cpu);
EMBER_REGISTER_KERNEL(adaptive_avg_pool2d_stub, cpu, &adaptive_avg_pool_cpu);
EMBER_REGISTER_KERNEL(adaptive_avg_pool2d_backward_stub, cpu, &adaptive_avg_pool_backward_cpu);
}  // namespace ember::cpu
