// CUDA scans along one dim: cumsum, cumprod, logcumsumexp (contract: ops/kernels/scan.h).
//
// One row of threads per lane (cuda/lanes.cuh). The row walks its lane in tiles of blockDim.x
// elements (in scan order: back to front when `reverse`). Within a tile the threads compute an
// inclusive prefix scan in shared memory (Hillis-Steele: in round r every thread combines the
// value 2^r places to its left into its own, so after log2(blockDim.x) rounds slot t holds
// x0 (+) ... (+) xt), prefix the running total of the earlier tiles (`carry`), write, and carry
// the tile's total on. With one thread per lane (blockDim.x == 1) this is the CPU's loop.
// Accumulators as on the CPU: double for floats, int64 for integers and bools.
#include <cmath>
#include <type_traits>

#include "cuda/lanes.cuh"
#include "cuda/math.cuh"
#include "ops/kernels/scan.h"

namespace ember::cuda {
namespace {

// log(exp(a) + exp(b)) without overflow (the CPU's log_add_exp): factor out the larger term; the
// infinite cases are answered directly, since inf - inf would be NaN.
struct LogAddExpOp {
  __device__ double operator()(double a, double b) const {
    if (a != a || b != b) return __longlong_as_double(0x7ff8000000000000LL);  // NaN
    const double hi = a > b ? a : b, lo = a > b ? b : a;
    if (lo == -HUGE_VAL || hi == HUGE_VAL) return hi;
    return hi + ::log1p(::exp(lo - hi));
  }
};

template <class T, class Out, class Acc, class Op>
__global__ void scan_kernel(Out* y, const T* x, Lanes g, bool reverse, bool exclusive, Op op, Acc identity) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Acc* row = reinterpret_cast<Acc*>(smem_raw) + threadIdx.y * blockDim.x;
  const int tx = threadIdx.x, bdx = blockDim.x;
  const int64_t lanes = g.count(), n = g.n;
  for (int64_t l0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; l0 < lanes;
       l0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t l = l0 + threadIdx.y;
    const bool valid = l < lanes;
    const int64_t base = valid ? g.base(l) : 0;
    Acc carry = identity;
    for (int64_t t0 = 0; t0 < n; t0 += bdx) {  // n is the same for every row: block-uniform
      const int64_t pos = t0 + tx;             // position in scan order
      const bool here = valid && pos < n;
      const int64_t at = base + (reverse ? n - 1 - pos : pos) * g.inner;
      row[tx] = here ? static_cast<Acc>(x[at]) : identity;
      __syncthreads();
      for (int offset = 1; offset < bdx; offset *= 2) {
        const Acc left = tx >= offset ? row[tx - offset] : identity;
        __syncthreads();  // all reads of this round before any write
        row[tx] = op(left, row[tx]);
        __syncthreads();
      }
      if (here) {
        const Acc before = tx == 0 ? carry : op(carry, row[tx - 1]);  // everything before pos
        y[at] = static_cast<Out>(exclusive ? before : op(carry, row[tx]));
      }
      carry = op(carry, row[bdx - 1]);
      __syncthreads();  // row[bdx - 1] read by all before the next tile overwrites it
    }
  }
}

template <class T, class Out, class Acc, class Op>
void launch_scan(const KernelContext& ctx, const Tensor& out, const Tensor& in, const Lanes& g, bool reverse,
                 bool exclusive, Op op, Acc identity) {
  const LaneLaunch launch = lane_launch(g);
  scan_kernel<T, Out, Acc, Op><<<launch.grid, launch.block, kLaneThreads * sizeof(Acc), ctx.stream>>>(
      static_cast<Out*>(out.raw_data()), static_cast<const T*>(in.raw_data()), g, reverse, exclusive, op,
      identity);
  EMBER_CUDA_CHECK_LAUNCH("scan_kernel");
}

void scan_cuda(ScanOp op, const Tensor& out, const Tensor& in, int64_t dim, bool reverse, bool exclusive) {
  if (out.shape() != in.shape() || !out.is_contiguous() || !in.is_contiguous() || out.device() != in.device())
    fail("scan (cuda): expected contiguous input and output of one shape, got {} and {}",
         shape_str(in.shape()), shape_str(out.shape()));
  if (!(dim >= 0 && dim < std::max<int64_t>(in.dim(), 1)))
    fail("scan (cuda): dim {} out of range for shape {}", dim, shape_str(in.shape()));
  if (in.numel() == 0) return;
  KernelContext ctx(in, "scan");
  const Lanes g = lanes_of(in.shape(), dim);
  dispatch_all(in.dtype(), "scan", [&]<class T>() {
    constexpr bool kFloat = std::is_floating_point_v<T>;
    using Out = std::conditional_t<kFloat, T, int64_t>;
    using Acc = std::conditional_t<kFloat, double, int64_t>;
    EMBER_CHECK(out.dtype() == dtype_of<Out>(), "scan (cuda): output must be {}, got {}", dtype_of<Out>(),
                out.dtype());
    switch (op) {
      case ScanOp::sum:
        return launch_scan<T, Out, Acc>(ctx, out, in, g, reverse, exclusive, dmath::SumOp{}, Acc(0));
      case ScanOp::prod:
        return launch_scan<T, Out, Acc>(ctx, out, in, g, reverse, exclusive, dmath::ProdOp{}, Acc(1));
      case ScanOp::logsumexp:
        if constexpr (kFloat) {
          return launch_scan<T, Out, double>(ctx, out, in, g, reverse, exclusive, LogAddExpOp{}, -HUGE_VAL);
        } else {
          fail("logcumsumexp: expected a floating dtype, got {}", in.dtype());
        }
    }
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(scan_stub, cuda, &scan_cuda);

}  // namespace ember::cuda
