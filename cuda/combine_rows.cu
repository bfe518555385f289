// CUDA kernel of combine_rows (contract in ops/kernels/combine_rows.h): one thread per output
// element, adding its row's entries in the CPU's order (the same sums, bit for bit; no atomics).
#include "cuda/loops.cuh"
#include "ops/kernels/combine_rows.h"

namespace ember::cuda {
namespace {

// A product nvcc may not fuse into the following add (an FMA rounds once where the CPU, built with
// -ffp-contract=off, rounds twice): so the GPU's sums are the CPU's, bit for bit.
__device__ inline float product(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double product(double a, double b) { return __dmul_rn(a, b); }

template <class T>
__global__ void combine_rows_kernel(T* y, const T* x, const int64_t* offsets, const int64_t* cols, const T* w,
                                    int64_t in, int64_t out, int64_t inner, int64_t n) {
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = idx % inner, row = idx / inner, r = row % out, o = row / out;
    const T* src = x + o * in * inner + k;
    const int64_t first = offsets[r], last = offsets[r + 1];
    T sum = first < last ? product(w[first], src[cols[first] * inner]) : T(0);
    for (int64_t e = first + 1; e < last; ++e) sum += product(w[e], src[cols[e] * inner]);
    y[idx] = sum;
  }
}

void combine_rows_cuda(const Tensor& x, const Tensor& offsets, const Tensor& cols, const Tensor& weights,
                       const Tensor& y) {
  if (x.dim() != 3 || y.dim() != 3 || !x.is_contiguous() || !y.is_contiguous() || x.size(0) != y.size(0) ||
      x.size(2) != y.size(2) || offsets.numel() != y.size(1) + 1 || cols.numel() != weights.numel())
    fail(
        "combine_rows (cuda): expected contiguous x [outer, in, inner] -> y [outer, out, inner] with out + 1 "
        "offsets, got x {}, y {}, {} offsets, {} cols, {} weights",
        shape_str(x.shape()), shape_str(y.shape()), offsets.numel(), cols.numel(), weights.numel());
  if (y.numel() == 0) return;
  KernelContext ctx(x, "combine_rows");
  dispatch_floating(x.dtype(), "combine_rows", [&]<class T>() {
    combine_rows_kernel<T><<<blocks_for(y.numel(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(y.raw_data()), static_cast<const T*>(x.raw_data()),
        static_cast<const int64_t*>(offsets.raw_data()), static_cast<const int64_t*>(cols.raw_data()),
        static_cast<const T*>(weights.raw_data()), x.size(1), y.size(1), x.size(2), y.numel());
    EMBER_CUDA_CHECK_LAUNCH("combine_rows_kernel");
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(combine_rows_stub, cuda, &combine_rows_cuda);
}  // namespace ember::cuda
