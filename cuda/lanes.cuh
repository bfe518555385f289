#pragma once
// Ops that work along one dim (softmax, arg-reduce, scans) see a contiguous tensor as a 3-D
// block [outer, n, inner], exactly like the CPU (ops/cpu/lanes.h): element k of lane
// l = o * inner + j sits at (o * n + k) * inner + j.
//
// On the GPU a lane is served by one *row* of a 2-D block: blockDim.x threads (a power of two)
// share the lane's n elements, blockDim.y rows serve neighbouring lanes. Two launch shapes:
//  * cooperative (blockDim.x up to 256): a long lane is read by many threads at once; best when
//    the lane is contiguous (inner == 1, e.g. softmax over the last dim) or there are few lanes;
//  * one thread per lane (blockDim.x == 1): when inner is large, neighbouring lanes are
//    neighbouring addresses, so the 32 threads of a warp, each on its own lane, read one
//    contiguous run per step along the dim (e.g. softmax over channels of [N, C, H, W]).
// The kernels are written once for both: a row combines its threads' partial results with
// row_reduce, which for blockDim.x == 1 simply returns the value. Each kernel loops
//   for (l0 = blockIdx.x * blockDim.y; l0 < lanes; l0 += gridDim.x * blockDim.y) { l = l0 + threadIdx.y; ...
//   }
// a condition that is the same for the whole block, as row_reduce's barriers require; rows whose
// lane l is past the end take part in the reductions with neutral values and write nothing.
#include <cstdint>

#include "cuda/loops.cuh"

namespace ember::cuda {

struct Lanes {
  int64_t outer = 1, n = 1, inner = 1;
  __host__ __device__ int64_t count() const { return outer * inner; }
  // First element of lane l; the lane's elements are `inner` apart.
  __device__ __forceinline__ int64_t base(int64_t l) const { return (l / inner) * n * inner + l % inner; }
};

// A 0-d tensor is a single lane of one element (dim is 0 there).
inline Lanes lanes_of(const Shape& shape, int64_t dim) {
  Lanes g;
  if (shape.empty()) return g;
  for (int64_t d = 0; d < dim; ++d) g.outer *= shape[d];
  g.n = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) g.inner *= shape[d];
  return g;
}

inline constexpr int kLaneThreads = 256;  // threads per block for lane kernels

struct LaneLaunch {
  dim3 grid, block;
};

// Chooses the launch shape described above.
inline LaneLaunch lane_launch(const Lanes& g) {
  int bdx = 1;
  if (!(g.inner >= 32 && g.count() >= 1024))
    while (bdx < g.n && bdx < kLaneThreads) bdx *= 2;
  const int bdy = kLaneThreads / bdx;
  return LaneLaunch{dim3(blocks_for(g.count(), bdy)), dim3(bdx, bdy)};
}

// Combines the values of the blockDim.x threads of this row; every thread gets the result.
// `row` is this row's blockDim.x slots of shared memory. Every thread of the block must call it
// (it synchronises the block), so kernels loop over lanes with a block-uniform condition.
template <class A, class Op>
__device__ __forceinline__ A row_reduce(A v, Op op, A* row) {
  const int tx = threadIdx.x;
  row[tx] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {  // a tree: 128 pairs, 64 pairs, ..., 1
    if (tx < half) row[tx] = op(row[tx], row[tx + half]);
    __syncthreads();
  }
  const A r = row[0];
  __syncthreads();  // everyone has read the result before the slots are written again
  return r;
}

}  // namespace ember::cuda
