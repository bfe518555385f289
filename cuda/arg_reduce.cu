// CUDA max/min with indices along one dim (contract: ops/kernels/arg_reduce.h). One row of
// threads per lane (cuda/lanes.cuh): each thread keeps the best (value, index) of the elements it
// visits, then the row combines the pairs. The combine keeps the better value and, on a tie, the
// smaller index, with NaN counting as the best value; that rule is associative, so the tree gives
// exactly what the CPU's left-to-right scan gives (first index of the extreme, first NaN).
#include <type_traits>

#include "cuda/lanes.cuh"
#include "ops/kernels/arg_reduce.h"

namespace ember::cuda {
namespace {

constexpr int64_t kNone = INT64_MAX;  // index of "no element seen yet"

template <class T>
struct ValueIndex {
  T value;
  int64_t index;
};

// Whether v beats best (the CPU's `better`): strictly larger (smaller for min); NaN beats numbers.
template <bool kMax, class T>
__device__ __forceinline__ bool better(T v, T best) {
  if constexpr (std::is_floating_point_v<T>) {
    if (best != best) return false;
    if (v != v) return true;
  }
  if constexpr (kMax) {
    return v > best;
  } else {
    return v < best;
  }
}

template <bool kMax, class T>
struct BestOf {
  __device__ ValueIndex<T> operator()(ValueIndex<T> a, ValueIndex<T> b) const {
    if (a.index == kNone) return b;
    if (b.index == kNone) return a;
    if (better<kMax>(b.value, a.value)) return b;
    if (better<kMax>(a.value, b.value)) return a;
    return a.index <= b.index ? a : b;  // equal values (or two NaNs): the first
  }
};

template <bool kMax, class T>
__global__ void arg_reduce_kernel(T* values, int64_t* indices, const T* x, Lanes g) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  ValueIndex<T>* row = reinterpret_cast<ValueIndex<T>*>(smem_raw) + threadIdx.y * blockDim.x;
  const int tx = threadIdx.x, bdx = blockDim.x;
  const int64_t lanes = g.count();
  for (int64_t l0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; l0 < lanes;
       l0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t l = l0 + threadIdx.y;
    const bool valid = l < lanes;
    ValueIndex<T> best{T(0), kNone};
    if (valid) {
      const T* xl = x + g.base(l);
      for (int64_t k = tx; k < g.n; k += bdx) {
        const T v = xl[k * g.inner];
        if (best.index == kNone || better<kMax>(v, best.value)) best = {v, k};
      }
    }
    best = row_reduce(best, BestOf<kMax, T>{}, row);
    if (valid && tx == 0) {
      values[l] = best.value;
      indices[l] = best.index;
    }
  }
}

void arg_reduce_cuda(ArgReduceOp op, const Tensor& values, const Tensor& indices, const Tensor& in,
                     int64_t dim) {
  // Host-side check of the contract.
  if (!(dim >= 0 && dim < std::max<int64_t>(in.dim(), 1)))
    fail("arg_reduce (cuda): dim {} out of range for shape {}", dim, shape_str(in.shape()));
  const Lanes g = lanes_of(in.shape(), dim);
  if (g.n < 1) fail("arg_reduce (cuda): cannot reduce an empty dim (shape {})", shape_str(in.shape()));
  if (!in.is_contiguous() || !values.is_contiguous() || !indices.is_contiguous() ||
      values.numel() != g.count() || indices.numel() != g.count() || indices.dtype() != DType::int64 ||
      values.dtype() != in.dtype())
    fail("arg_reduce (cuda): bad outputs for input {} {}: values {} {}, indices {} {}", in.dtype(),
         shape_str(in.shape()), values.dtype(), shape_str(values.shape()), indices.dtype(),
         shape_str(indices.shape()));
  KernelContext ctx(in, "arg_reduce");
  const LaneLaunch launch = lane_launch(g);
  dispatch_all(in.dtype(), "arg_reduce", [&]<class T>() {
    auto run = [&](auto kernel) {
      kernel<<<launch.grid, launch.block, kLaneThreads * sizeof(ValueIndex<T>), ctx.stream>>>(
          static_cast<T*>(values.raw_data()), static_cast<int64_t*>(indices.raw_data()),
          static_cast<const T*>(in.raw_data()), g);
      EMBER_CUDA_CHECK_LAUNCH("arg_reduce_kernel");
    };
    if (op == ArgReduceOp::max)
      run(arg_reduce_kernel<true, T>);
    else
      run(arg_reduce_kernel<false, T>);
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(arg_reduce_stub, cuda, &arg_reduce_cuda);

}  // namespace ember::cuda
