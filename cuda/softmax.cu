// CUDA softmax / log-softmax along one dim, forward and backward (contract: ops/kernels/softmax.h).
// One row of threads per lane (cuda/lanes.cuh): the row finds the lane's max, then the sum of
// exp(x - max) in double, then writes the outputs; each step ends with a row_reduce. The
// arithmetic is the CPU's (ops/cpu/softmax.cpp), step for step.
#include "cuda/lanes.cuh"
#include "cuda/math.cuh"
#include "ops/kernels/softmax.h"

namespace ember::cuda {
namespace {

struct MaxOfDoubles {
  __device__ double operator()(double a, double b) const { return a > b ? a : b; }
};
struct SumOfDoubles {
  __device__ double operator()(double a, double b) const { return a + b; }
};

template <class T>
__global__ void softmax_kernel(T* y, const T* x, Lanes g, bool log) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* row = reinterpret_cast<double*>(smem_raw) + threadIdx.y * blockDim.x;
  const int tx = threadIdx.x, bdx = blockDim.x;
  const int64_t lanes = g.count(), n = g.n, step = g.inner;
  for (int64_t l0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; l0 < lanes;
       l0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t l = l0 + threadIdx.y;
    const bool valid = l < lanes;  // the same for the whole row
    const T* xl = x + (valid ? g.base(l) : 0);
    T* yl = y + (valid ? g.base(l) : 0);
    // 1. the lane's max (every thread starts from the lane's first element, as the CPU does)
    T m = valid ? xl[0] : T(0);
    if (valid)
      for (int64_t k = tx; k < n; k += bdx) m = xl[k * step] > m ? xl[k * step] : m;
    m = static_cast<T>(row_reduce(static_cast<double>(m), MaxOfDoubles{}, row));
    // 2. the sum of exp(x - m), accumulated in double
    double s = 0;
    if (valid)
      for (int64_t k = tx; k < n; k += bdx)
        s += static_cast<double>(dmath::exp(static_cast<T>(xl[k * step] - m)));
    s = row_reduce(s, SumOfDoubles{}, row);
    // 3. the outputs
    if (!valid) continue;
    if (log) {
      const double lse = static_cast<double>(m) + ::log(s);
      for (int64_t k = tx; k < n; k += bdx) yl[k * step] = static_cast<T>(xl[k * step] - lse);
    } else {
      const T inv = static_cast<T>(1.0 / s);
      for (int64_t k = tx; k < n; k += bdx) yl[k * step] = dmath::exp(static_cast<T>(xl[k * step] - m)) * inv;
    }
  }
}

// softmax:     grad_in = y * (g - sum(g * y))
// log_softmax: grad_in = g - exp(y) * sum(g)
template <class T>
__global__ void softmax_backward_kernel(T* gx, const T* go, const T* y, Lanes g, bool log) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* row = reinterpret_cast<double*>(smem_raw) + threadIdx.y * blockDim.x;
  const int tx = threadIdx.x, bdx = blockDim.x;
  const int64_t lanes = g.count(), n = g.n, step = g.inner;
  for (int64_t l0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; l0 < lanes;
       l0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t l = l0 + threadIdx.y;
    const bool valid = l < lanes;
    const int64_t base = valid ? g.base(l) : 0;
    double s = 0;
    if (valid)
      for (int64_t k = tx; k < n; k += bdx) {
        const int64_t i = base + k * step;
        s += log ? static_cast<double>(go[i]) : static_cast<double>(go[i]) * y[i];
      }
    const T sum = static_cast<T>(row_reduce(s, SumOfDoubles{}, row));
    if (!valid) continue;
    for (int64_t k = tx; k < n; k += bdx) {
      const int64_t i = base + k * step;
      gx[i] = log ? go[i] - dmath::exp(y[i]) * sum : y[i] * (go[i] - sum);
    }
  }
}

void check_same(const char* op, const std::vector<const Tensor*>& ts, int64_t dim) {
  const Tensor& first = *ts[0];
  for (const Tensor* t : ts) {
    if (t->shape() != first.shape() || t->dtype() != first.dtype() || !t->is_contiguous() ||
        t->device() != first.device())
      fail("{} (cuda): expected contiguous tensors of one shape, dtype and device, got {} {} and {} {}", op,
           shape_str(first.shape()), first.dtype(), shape_str(t->shape()), t->dtype());
  }
  if (!(dim >= 0 && dim < std::max<int64_t>(first.dim(), 1)))
    fail("{} (cuda): dim {} out of range for shape {}", op, dim, shape_str(first.shape()));
}

void softmax_cuda(const Tensor& out, const Tensor& in, int64_t dim, bool log) {
  check_same("softmax", {&out, &in}, dim);
  if (in.numel() == 0) return;
  KernelContext ctx(in, "softmax");
  const Lanes g = lanes_of(in.shape(), dim);
  const LaneLaunch launch = lane_launch(g);
  dispatch_floating(in.dtype(), "softmax", [&]<class T>() {
    softmax_kernel<T><<<launch.grid, launch.block, kLaneThreads * sizeof(double), ctx.stream>>>(
        static_cast<T*>(out.raw_data()), static_cast<const T*>(in.raw_data()), g, log);
    EMBER_CUDA_CHECK_LAUNCH("softmax_kernel");
  });
}

void softmax_backward_cuda(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, int64_t dim,
                           bool log) {
  check_same("softmax_backward", {&grad_in, &grad_out, &out}, dim);
  if (out.numel() == 0) return;
  KernelContext ctx(out, "softmax_backward");
  const Lanes g = lanes_of(out.shape(), dim);
  const LaneLaunch launch = lane_launch(g);
  dispatch_floating(out.dtype(), "softmax_backward", [&]<class T>() {
    softmax_backward_kernel<T><<<launch.grid, launch.block, kLaneThreads * sizeof(double), ctx.stream>>>(
        static_cast<T*>(grad_in.raw_data()), static_cast<const T*>(grad_out.raw_data()),
        static_cast<const T*>(out.raw_data()), g, log);
    EMBER_CUDA_CHECK_LAUNCH("softmax_backward_kernel");
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(softmax_stub, cuda, &softmax_cuda);
EMBER_REGISTER_KERNEL(softmax_backward_stub, cuda, &softmax_backward_cuda);

}  // namespace ember::cuda
