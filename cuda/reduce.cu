// CUDA reductions (sum, prod, max, min, any, all) over any set of dims, with the CPU's
// accumulator types (double for float sums and products, int64 for integer ones; max/min in the
// input type) and its NaN rule (a NaN anywhere makes max/min NaN).
//
// The input is described by two groups of dims: the kept dims, which enumerate the outputs
// (output o is the o-th combination in row-major order, which is exactly the contiguous keepdim
// output), and the reduced dims, which enumerate the elements folded into one output. Two
// kernels cover the memory layouts:
//
//  * reduce_block_kernel: a row of blockDim.x threads folds one output, each thread striding
//    through the reduced elements, then the row combines its partial results in shared memory
//    (a tree: 128 pairs, 64 pairs, ... 1). blockDim.y rows serve blockDim.y outputs, so short
//    reductions (say 8 elements each) still fill a block. Reads are coalesced when the reduced
//    dim is the contiguous one (a row sum of a [N, C] tensor).
//  * reduce_columns_kernel: one thread per output, looping over the reduced elements; neighbour
//    threads read neighbour addresses when the *kept* dim is the contiguous one (a column sum of
//    a [N, C] tensor over N), which is when the block kernel would read with a large stride.
//
// When there are too few outputs to occupy the GPU (a full sum has one), the reduced range is
// cut into `slices` (blockIdx.y); each slice writes a partial result in the accumulator type to
// a scratch buffer laid out [n_out, slices], and a second block-kernel pass folds the slices.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "cuda/loops.cuh"
#include "cuda/math.cuh"
#include "ops/kernels/reduce.h"

namespace ember::cuda {
namespace {

constexpr int kReduceThreads = 256;

// One group of dims (kept or reduced), innermost first, neighbours merged where contiguous.
struct DimGroup {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  // Offset (in elements) of the i-th element of the group in row-major order.
  __device__ __forceinline__ int64_t offset(int64_t i) const {
    if (ndim == 0) return 0;
    if (ndim == 1) return i * strides[0];
    int64_t off = 0;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d == ndim) break;
      const int64_t q = i / sizes[d];
      off += (i - q * sizes[d]) * strides[d];
      i = q;
    }
    return off;
  }
};

// Builds a group from (size, stride) pairs listed outermost first.
DimGroup make_group(const std::vector<std::pair<int64_t, int64_t>>& dims) {
  std::vector<std::pair<int64_t, int64_t>> merged;  // outermost first
  for (auto [size, stride] : dims) {
    if (!merged.empty() && merged.back().second == stride * size) {
      merged.back() = {merged.back().first * size, stride};  // the outer dim continues this one
    } else {
      merged.push_back({size, stride});
    }
  }
  DimGroup g;
  g.ndim = static_cast<int>(merged.size());
  for (int d = 0; d < g.ndim; ++d) {  // innermost first
    g.sizes[d] = merged[merged.size() - 1 - d].first;
    g.strides[d] = merged[merged.size() - 1 - d].second;
  }
  return g;
}

// ---- the combine functions (sum and product are in cuda/math.cuh) ----
struct MaxOp {
  template <class A>
  __device__ A operator()(A a, A b) const {
    if constexpr (std::is_floating_point_v<A>) {
      if (a != a) return a;  // NaN propagates
      if (b != b) return b;
    }
    return a > b ? a : b;
  }
};
struct MinOp {
  template <class A>
  __device__ A operator()(A a, A b) const {
    if constexpr (std::is_floating_point_v<A>) {
      if (a != a) return a;
      if (b != b) return b;
    }
    return a < b ? a : b;
  }
};
struct AnyOp {
  template <class A>
  __device__ A operator()(A a, A b) const {
    return A(a != A(0) || b != A(0));
  }
};
struct AllOp {
  template <class A>
  __device__ A operator()(A a, A b) const {
    return A(a != A(0) && b != A(0));
  }
};

// Where a finished output goes: the final tensor (converted to its dtype) or the scratch buffer.
template <class Acc>
struct Sink {
  void* out = nullptr;  // the output tensor's data, when partial == nullptr
  DType out_dtype = DType::float32;
  Acc* partial = nullptr;  // [n_out, slices] scratch, when slicing
  int64_t slices = 1;

  __device__ __forceinline__ void write(int64_t o, int64_t slice, Acc v) const {
    if (partial != nullptr) {
      partial[o * slices + slice] = v;
      return;
    }
    switch (out_dtype) {
      case DType::float32:
        static_cast<float*>(out)[o] = static_cast<float>(v);
        break;
      case DType::float64:
        static_cast<double*>(out)[o] = static_cast<double>(v);
        break;
      case DType::int64:
        static_cast<int64_t*>(out)[o] = static_cast<int64_t>(v);
        break;
      case DType::int32:
        static_cast<int32_t*>(out)[o] = static_cast<int32_t>(v);
        break;
      case DType::uint8:
        static_cast<uint8_t*>(out)[o] = static_cast<uint8_t>(v);
        break;
      case DType::boolean:
        static_cast<bool*>(out)[o] = v != Acc(0);
        break;
      case DType::bfloat16:  // rejected by reduce_cuda before any launch (ops reduce bfloat16 in float32)
        break;
    }
  }
};

// The work of one launch: which input, which dims, which part of the reduced range.
struct ReduceShape {
  DimGroup kept, red;
  int64_t n_out = 0, n_red = 0;
  int64_t chunk = 0;  // reduced elements per slice
};

template <class T, class Acc, class Op>
__global__ void reduce_block_kernel(const T* in, ReduceShape s, Op op, Acc init, Sink<Acc> sink) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Acc* smem = reinterpret_cast<Acc*>(smem_raw);
  const int tx = threadIdx.x, ty = threadIdx.y, bdx = blockDim.x;
  const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * s.chunk;
  const int64_t k_end = k_begin + s.chunk < s.n_red ? k_begin + s.chunk : s.n_red;
  Acc* row = smem + ty * bdx;
  // Grid-stride over groups of blockDim.y outputs. The loop condition is the same for every
  // thread of the block, so all of them reach every __syncthreads().
  for (int64_t o0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; o0 < s.n_out;
       o0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t o = o0 + ty;
    Acc acc = init;
    if (o < s.n_out) {
      const T* base = in + s.kept.offset(o);
#pragma unroll 4
      for (int64_t k = k_begin + tx; k < k_end; k += bdx)
        acc = op(acc, static_cast<Acc>(base[s.red.offset(k)]));
    }
    row[tx] = acc;
    __syncthreads();
    for (int half = bdx / 2; half > 0; half /= 2) {  // bdx is a power of two
      if (tx < half) row[tx] = op(row[tx], row[tx + half]);
      __syncthreads();
    }
    if (tx == 0 && o < s.n_out) sink.write(o, blockIdx.y, row[0]);
    __syncthreads();  // the next group reuses the shared memory
  }
}

template <class T, class Acc, class Op>
__global__ void reduce_columns_kernel(const T* in, ReduceShape s, Op op, Acc init, Sink<Acc> sink) {
  const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * s.chunk;
  const int64_t k_end = k_begin + s.chunk < s.n_red ? k_begin + s.chunk : s.n_red;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < s.n_out;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* base = in + s.kept.offset(o);
    Acc acc = init;
#pragma unroll 4
    for (int64_t k = k_begin; k < k_end; ++k) acc = op(acc, static_cast<Acc>(base[s.red.offset(k)]));
    sink.write(o, blockIdx.y, acc);
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int next_pow2(int64_t n) {
  int p = 1;
  while (p < n && p < kReduceThreads) p *= 2;
  return p;
}

// Cuts the reduced range into slices when the outputs alone give fewer than `target` blocks.
void choose_slices(ReduceShape& s, int64_t blocks, int64_t target, int64_t min_per_slice) {
  int64_t slices = 1;
  if (blocks < target && s.n_red >= 2 * min_per_slice)
    slices = std::min({ceil_div(target, blocks), s.n_red / min_per_slice, int64_t{65535}});
  s.chunk = slices > 1 ? ceil_div(s.n_red, slices) : s.n_red;
}
int64_t slices_of(const ReduceShape& s) { return s.chunk == 0 ? 1 : ceil_div(s.n_red, s.chunk); }

template <class T, class Acc, class Op>
void launch_block(cudaStream_t stream, const T* in, const ReduceShape& s, Op op, Acc init,
                  const Sink<Acc>& sink) {
  const int bdx = next_pow2(s.n_red), bdy = kReduceThreads / bdx;
  dim3 block(bdx, bdy);
  dim3 grid(blocks_for(s.n_out, bdy), static_cast<unsigned int>(slices_of(s)));
  reduce_block_kernel<T, Acc, Op>
      <<<grid, block, kReduceThreads * sizeof(Acc), stream>>>(in, s, op, init, sink);
  EMBER_CUDA_CHECK_LAUNCH("reduce_block_kernel");
}

template <class T, class Acc, class Op>
void reduce_typed(const KernelContext& ctx, const Tensor& out, const Tensor& in,
                  const std::vector<bool>& reduce, Op op, Acc init) {
  // Split the input's dims into kept and reduced (size-1 dims play no part).
  std::vector<std::pair<int64_t, int64_t>> kept, red;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (in.size(d) == 1) continue;
    (reduce[d] ? red : kept).push_back({in.size(d), in.stride(d)});
  }
  ReduceShape s;
  s.kept = make_group(kept);
  s.red = make_group(red);
  s.n_out = out.numel();
  s.n_red = 1;
  for (auto [size, stride] : red) s.n_red *= size;

  const T* x = static_cast<const T*>(in.raw_data());
  const int64_t target = 4 * static_cast<int64_t>(sm_count(ctx.device));  // blocks that keep the GPU busy
  Sink<Acc> final_sink{out.raw_data(), out.dtype(), nullptr, 1};

  // Column layout: the output dim is the contiguous one, and there are enough outputs to give
  // every thread of a block its own.
  const bool columns = s.n_out >= kReduceThreads && s.kept.ndim > 0 && s.kept.strides[0] == 1 &&
                       !(s.red.ndim > 0 && s.red.strides[0] == 1);
  if (columns) {
    choose_slices(s, ceil_div(s.n_out, kReduceThreads), target, 32);
  } else {
    const int bdx = next_pow2(s.n_red);
    choose_slices(s, ceil_div(s.n_out, kReduceThreads / bdx), target, int64_t{bdx} * 8);
  }
  const int64_t slices = slices_of(s);

  Tensor scratch;
  Sink<Acc> sink = final_sink;
  if (slices > 1) {
    scratch = empty_tensor({s.n_out, slices}, dtype_of<Acc>(), out.device());
    sink = Sink<Acc>{nullptr, out.dtype(), static_cast<Acc*>(scratch.raw_data()), slices};
  }
  if (columns) {
    dim3 grid(blocks_for(s.n_out, kReduceThreads), static_cast<unsigned int>(slices));
    reduce_columns_kernel<T, Acc, Op><<<grid, kReduceThreads, 0, ctx.stream>>>(x, s, op, init, sink);
    EMBER_CUDA_CHECK_LAUNCH("reduce_columns_kernel");
  } else {
    launch_block<T, Acc, Op>(ctx.stream, x, s, op, init, sink);
  }
  if (slices > 1) {
    // Second pass: fold each output's row of `slices` partial results (contiguous in scratch).
    ReduceShape s2;
    s2.kept = make_group({{s.n_out, slices}});
    s2.red = make_group({{slices, 1}});
    s2.n_out = s.n_out;
    s2.n_red = slices;
    s2.chunk = slices;
    launch_block<Acc, Acc, Op>(ctx.stream, static_cast<const Acc*>(scratch.raw_data()), s2, op, init,
                               final_sink);
  }
  // `scratch` is released here while the second pass may still be queued: the caching allocator
  // only hands it out again to later work on the same stream, which runs after this pass.
}

// The identities of max and min, as the CPU's Reducer::init.
template <class Acc>
Acc lowest_value() {
  if constexpr (std::is_floating_point_v<Acc>)
    return -std::numeric_limits<Acc>::infinity();
  else
    return std::numeric_limits<Acc>::lowest();
}
template <class Acc>
Acc highest_value() {
  if constexpr (std::is_floating_point_v<Acc>)
    return std::numeric_limits<Acc>::infinity();
  else
    return std::numeric_limits<Acc>::max();
}

template <class T>
using sum_acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

void reduce_cuda(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<bool>& reduce) {
  // Host-side checks of the kernel contract (ops/kernels/reduce.h).
  if (static_cast<int64_t>(reduce.size()) != in.dim() || out.dim() != in.dim())
    fail("reduce (cuda): input {} with a mask of {} dims and an output of shape {}", shape_str(in.shape()),
         reduce.size(), shape_str(out.shape()));
  for (int64_t d = 0; d < in.dim(); ++d)
    if (out.size(d) != (reduce[d] ? 1 : in.size(d)))
      fail("reduce (cuda): output shape {} is not the keepdim shape of input {}", shape_str(out.shape()),
           shape_str(in.shape()));
  if (in.dim() > kMaxDims) fail("reduce (cuda): at most {} dims are supported, got {}", kMaxDims, in.dim());
  if (!out.is_contiguous()) fail("reduce (cuda): the output must be contiguous");
  if (out.device() != in.device())
    fail("reduce (cuda): input on {} but output on {}", in.device(), out.device());
  if (out.numel() == 0) return;
  if (in.numel() == 0 && (op == ReduceOp::max || op == ReduceOp::min))
    fail("reduce (cuda): cannot take the max or min of an empty dimension (input shape {})",
         shape_str(in.shape()));
  if (out.dtype() == DType::bfloat16) fail_bfloat16("reduce");
  KernelContext ctx(in, "reduce");

  dispatch_all(in.dtype(), "reduce", [&]<class T>() {
    if (op == ReduceOp::max || op == ReduceOp::min) {
      using Acc = std::conditional_t<std::is_same_v<T, bool>, int64_t, T>;
      if (op == ReduceOp::max)
        reduce_typed<T, Acc>(ctx, out, in, reduce, MaxOp{}, lowest_value<Acc>());
      else
        reduce_typed<T, Acc>(ctx, out, in, reduce, MinOp{}, highest_value<Acc>());
      return;
    }
    using Acc = sum_acc_t<T>;
    switch (op) {
      case ReduceOp::sum:
        return reduce_typed<T, Acc>(ctx, out, in, reduce, dmath::SumOp{}, Acc(0));
      case ReduceOp::prod:
        return reduce_typed<T, Acc>(ctx, out, in, reduce, dmath::ProdOp{}, Acc(1));
      case ReduceOp::any:
        return reduce_typed<T, Acc>(ctx, out, in, reduce, AnyOp{}, Acc(0));
      case ReduceOp::all:
        return reduce_typed<T, Acc>(ctx, out, in, reduce, AllOp{}, Acc(1));
      default:
        break;
    }
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(reduce_stub, cuda, &reduce_cuda);

}  // namespace ember::cuda
