// CUDA 2-D pooling (contract and window formulas: ops/kernels/pool.h). Tensors are stacks of
// planes: x [P, H, W], out [P, Ho, Wo].
//  * forward: one thread per output pixel runs the CPU's window loop (same visiting order, so
//    the same index wins a max and the same sum is formed for a mean, in double);
//  * avg backward: one thread per *input* pixel gathers the shares of the output windows that
//    cover it, in the CPU's (i, j) order: no atomics, same additions;
//  * max backward (which is told only the winning indices, not the windows): one thread per
//    plane adds its outputs' gradients in order, like the CPU; with few planes, one thread per
//    output adds atomically instead (float sums may then round in a different order).
#include <type_traits>

#include "cuda/loops.cuh"
#include "ops/kernels/pool.h"

namespace ember::cuda {
namespace {

constexpr int64_t kMinPlanesForDeterministic = 16384;

struct Window {
  int64_t begin, end;
};

// Fixed-size sliding window, clipped to the input.
struct SlidingWindows {
  int64_t in, kernel, stride, pad;
  __device__ Window operator()(int64_t i) const {
    const int64_t b = i * stride - pad;
    return {b > 0 ? b : 0, b + kernel < in ? b + kernel : in};
  }
  // The outputs whose windows may cover input position h (checked again with operator()).
  __device__ Window covering(int64_t h, int64_t out) const {
    const int64_t first = h + pad - kernel + 1;  // i * stride >= first
    const int64_t lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    const int64_t hi = (h + pad) / stride + 1;  // i * stride <= h + pad
    return {lo, hi < out ? hi : out};
  }
};

// Adaptive windows: output i covers [floor(i*in/out), ceil((i+1)*in/out)).
struct AdaptiveWindows {
  int64_t in, out;
  __device__ Window operator()(int64_t i) const { return {i * in / out, ((i + 1) * in + out - 1) / out}; }
  __device__ Window covering(int64_t h, int64_t) const {
    // start(i) <= h  <=>  i <= ceil((h+1)*out/in) - 1;   end(i) > h  <=>  i >= floor(h*out/in)
    const int64_t lo = h * out / in, hi = ((h + 1) * out + in - 1) / in;
    return {lo, hi < out ? hi : out};
  }
};

// count_include_pad: the divisor of a sliding window is the kernel area; of an adaptive one, the
// window's own area.
struct KernelArea {
  int64_t area;
  __device__ int64_t operator()(Window, Window) const { return area; }
};
struct WindowArea {
  __device__ int64_t operator()(Window r, Window c) const { return (r.end - r.begin) * (c.end - c.begin); }
};

struct Planes {
  int64_t count, h, w, oh, ow;
};
Planes planes_of(const Tensor& in, const Tensor& out) {
  return {in.size(0), in.size(1), in.size(2), out.size(1), out.size(2)};
}

void check_planes(const char* op, const Tensor& in, const Tensor& out) {
  if (in.dim() != 3 || out.dim() != 3 || in.size(0) != out.size(0) || !in.is_contiguous() ||
      !out.is_contiguous() || in.dtype() != out.dtype() || in.device() != out.device())
    fail("{} (cuda): expected contiguous [P, H, W] and [P, Ho, Wo] of one dtype, got {} {} and {} {}", op,
         in.dtype(), shape_str(in.shape()), out.dtype(), shape_str(out.shape()));
}

template <class T>
__global__ void max_pool_kernel(T* out, int64_t* indices, const T* x, Planes s, SlidingWindows rows,
                                SlidingWindows cols) {
  const int64_t total = s.count * s.oh * s.ow;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = o % s.ow, i = (o / s.ow) % s.oh, plane = o / (s.ow * s.oh);
    const T* xin = x + plane * s.h * s.w;
    const Window r = rows(i), c = cols(j);
    int64_t best = r.begin * s.w + c.begin;  // the window is never empty (pad <= kernel / 2)
    for (int64_t h = r.begin; h < r.end; ++h)
      for (int64_t w = c.begin; w < c.end; ++w) {
        const T v = xin[h * s.w + w];
        bool better = v > xin[best];
        if constexpr (std::is_floating_point_v<T>) better = better || v != v;  // NaN wins
        if (better) best = h * s.w + w;
      }
    out[o] = xin[best];
    indices[o] = best;
  }
}

template <class T, class Windows, class Divisor>
__global__ void avg_pool_kernel(T* out, const T* x, Planes s, Windows rows, Windows cols, Divisor divisor) {
  const int64_t total = s.count * s.oh * s.ow;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = o % s.ow, i = (o / s.ow) % s.oh, plane = o / (s.ow * s.oh);
    const T* xin = x + plane * s.h * s.w;
    const Window r = rows(i), c = cols(j);
    double sum = 0;
    for (int64_t h = r.begin; h < r.end; ++h)
      for (int64_t w = c.begin; w < c.end; ++w) sum += xin[h * s.w + w];
    out[o] = static_cast<T>(sum / static_cast<double>(divisor(r, c)));
  }
}

template <class T, class Windows, class Divisor>
__global__ void avg_pool_backward_kernel(T* dx, const T* g, Planes s, Windows rows, Windows cols,
                                         Divisor divisor) {
  const int64_t total = s.count * s.h * s.w;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < total;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t w = p % s.w, h = (p / s.w) % s.h, plane = p / (s.w * s.h);
    const T* gp = g + plane * s.oh * s.ow;
    const Window ri = rows.covering(h, s.oh), cj = cols.covering(w, s.ow);
    T sum = T(0);
    for (int64_t i = ri.begin; i < ri.end; ++i) {
      const Window r = rows(i);
      if (h < r.begin || h >= r.end) continue;
      for (int64_t j = cj.begin; j < cj.end; ++j) {
        const Window c = cols(j);
        if (w < c.begin || w >= c.end) continue;
        sum += static_cast<T>(gp[i * s.ow + j] / static_cast<double>(divisor(r, c)));
      }
    }
    dx[p] = sum;
  }
}

template <class T>
__global__ void max_pool_backward_planes_kernel(T* dx, const T* g, const int64_t* indices, Planes s) {
  for (int64_t plane = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; plane < s.count;
       plane += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T* d = dx + plane * s.h * s.w;
    const int64_t base = plane * s.oh * s.ow;
    for (int64_t o = 0; o < s.oh * s.ow; ++o) d[indices[base + o]] += g[base + o];
  }
}

template <class T>
__global__ void max_pool_backward_atomic_kernel(T* dx, const T* g, const int64_t* indices, Planes s) {
  const int64_t total = s.count * s.oh * s.ow;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t plane = o / (s.oh * s.ow);
    atomicAdd(dx + plane * s.h * s.w + indices[o], g[o]);
  }
}

void max_pool_cuda(const Tensor& out, const Tensor& indices, const Tensor& x, const Pool2dParams& p) {
  check_planes("max_pool2d", x, out);
  if (indices.shape() != out.shape() || indices.dtype() != DType::int64 || !indices.is_contiguous())
    fail("max_pool2d (cuda): indices must be contiguous int64 {}", shape_str(out.shape()));
  if (out.numel() == 0) return;
  KernelContext ctx(out, "max_pool2d");
  const Planes s = planes_of(x, out);
  const SlidingWindows rows{s.h, p.kernel[0], p.stride[0], p.padding[0]};
  const SlidingWindows cols{s.w, p.kernel[1], p.stride[1], p.padding[1]};
  dispatch_numeric(x.dtype(), "max_pool2d", [&]<class T>() {
    max_pool_kernel<T><<<blocks_for(out.numel(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(out.raw_data()), static_cast<int64_t*>(indices.raw_data()),
        static_cast<const T*>(x.raw_data()), s, rows, cols);
    EMBER_CUDA_CHECK_LAUNCH("max_pool_kernel");
  });
}

void max_pool_backward_cuda(const Tensor& grad_x, const Tensor& grad_out, const Tensor& indices) {
  check_planes("max_pool2d backward", grad_x, grad_out);
  if (indices.shape() != grad_out.shape() || indices.dtype() != DType::int64 || !indices.is_contiguous())
    fail("max_pool2d backward (cuda): indices must be contiguous int64 {}", shape_str(grad_out.shape()));
  if (grad_x.numel() == 0) return;
  KernelContext ctx(grad_x, "max_pool2d backward");
  const Planes s = planes_of(grad_x, grad_out);
  EMBER_CUDA_CHECK(
      cudaMemsetAsync(grad_x.raw_data(), 0, grad_x.numel() * element_size(grad_x.dtype()), ctx.stream));
  dispatch_floating(grad_out.dtype(), "max_pool2d", [&]<class T>() {
    T* dx = static_cast<T*>(grad_x.raw_data());
    const T* g = static_cast<const T*>(grad_out.raw_data());
    const int64_t* ix = static_cast<const int64_t*>(indices.raw_data());
    if (s.count >= kMinPlanesForDeterministic) {
      max_pool_backward_planes_kernel<T>
          <<<blocks_for(s.count, kThreads), kThreads, 0, ctx.stream>>>(dx, g, ix, s);
      EMBER_CUDA_CHECK_LAUNCH("max_pool_backward_planes_kernel");
    } else {
      max_pool_backward_atomic_kernel<T>
          <<<blocks_for(grad_out.numel(), kThreads), kThreads, 0, ctx.stream>>>(dx, g, ix, s);
      EMBER_CUDA_CHECK_LAUNCH("max_pool_backward_atomic_kernel");
    }
  });
}

template <class Windows, class Divisor>
void avg_forward(const KernelContext& ctx, const Tensor& out, const Tensor& x, const Windows& rows,
                 const Windows& cols, const Divisor& divisor) {
  const Planes s = planes_of(x, out);
  dispatch_floating(x.dtype(), "avg_pool2d", [&]<class T>() {
    avg_pool_kernel<T><<<blocks_for(out.numel(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()), s, rows, cols, divisor);
    EMBER_CUDA_CHECK_LAUNCH("avg_pool_kernel");
  });
}

template <class Windows, class Divisor>
void avg_backward(const KernelContext& ctx, const Tensor& grad_x, const Tensor& grad_out, const Windows& rows,
                  const Windows& cols, const Divisor& divisor) {
  const Planes s = planes_of(grad_x, grad_out);
  dispatch_floating(grad_out.dtype(), "avg_pool2d", [&]<class T>() {
    avg_pool_backward_kernel<T><<<blocks_for(grad_x.numel(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(grad_x.raw_data()), static_cast<const T*>(grad_out.raw_data()), s, rows, cols,
        divisor);
    EMBER_CUDA_CHECK_LAUNCH("avg_pool_backward_kernel");
  });
}

void avg_pool_cuda(const Tensor& out, const Tensor& x, const Pool2dParams& p) {
  check_planes("avg_pool2d", x, out);
  if (out.numel() == 0) return;
  KernelContext ctx(out, "avg_pool2d");
  const SlidingWindows rows{x.size(1), p.kernel[0], p.stride[0], p.padding[0]};
  const SlidingWindows cols{x.size(2), p.kernel[1], p.stride[1], p.padding[1]};
  avg_forward(ctx, out, x, rows, cols, KernelArea{p.kernel[0] * p.kernel[1]});
}

void avg_pool_backward_cuda(const Tensor& grad_x, const Tensor& grad_out, const Pool2dParams& p) {
  check_planes("avg_pool2d backward", grad_x, grad_out);
  if (grad_x.numel() == 0) return;
  KernelContext ctx(grad_x, "avg_pool2d backward");
  const SlidingWindows rows{grad_x.size(1), p.kernel[0], p.stride[0], p.padding[0]};
  const SlidingWindows cols{grad_x.size(2), p.kernel[1], p.stride[1], p.padding[1]};
  avg_backward(ctx, grad_x, grad_out, rows, cols, KernelArea{p.kernel[0] * p.kernel[1]});
}

void adaptive_avg_pool_cuda(const Tensor& out, const Tensor& x) {
  check_planes("adaptive_avg_pool2d", x, out);
  if (out.numel() == 0) return;
  KernelContext ctx(out, "adaptive_avg_pool2d");
  const AdaptiveWindows rows{x.size(1), out.size(1)}, cols{x.size(2), out.size(2)};
  avg_forward(ctx, out, x, rows, cols, WindowArea{});
}

void adaptive_avg_pool_backward_cuda(const Tensor& grad_x, const Tensor& grad_out) {
  check_planes("adaptive_avg_pool2d backward", grad_x, grad_out);
  if (grad_x.numel() == 0) return;
  KernelContext ctx(grad_x, "adaptive_avg_pool2d backward");
  const AdaptiveWindows rows{grad_x.size(1), grad_out.size(1)}, cols{grad_x.size(2), grad_out.size(2)};
  avg_backward(ctx, grad_x, grad_out, rows, cols, WindowArea{});
}

}  // namespace

EMBER_REGISTER_KERNEL(max_pool2d_stub, cuda, &max_pool_cuda);
EMBER_REGISTER_KERNEL(max_pool2d_backward_stub, cuda, &max_pool_backward_cuda);
EMBER_REGISTER_KERNEL(avg_pool2d_stub, cuda, &avg_pool_cuda);
EMBER_REGISTER_KERNEL(avg_pool2d_backward_stub, cuda, &avg_pool_backward_cuda);
EMBER_REGISTER_KERNEL(adaptive_avg_pool2d_stub, cuda, &adaptive_avg_pool_cuda);
EMBER_REGISTER_KERNEL(adaptive_avg_pool2d_backward_stub, cuda, &adaptive_avg_pool_backward_cuda);

}  // namespace ember::cuda
