#pragma once
// The CUDA backend's one elementwise engine (the GPU twin of ops/cpu/loops.h).
//
//   gpu_map<TOut, TIn...>(ctx, f, out, {&in0, &in1, ...})   computes   out[i] = f(in0[i], in1[i], ...)
//
// for tensors of one shape with arbitrary strides (zero strides for broadcast inputs). `f` is a
// `__device__` lambda. Two kernels do the work:
//
//  * map_contiguous_kernel, the fast path, when every operand is contiguous and suitably aligned:
//    each thread loads kVec consecutive elements of each input with one vector instruction
//    (16 bytes for float32), applies f to each and stores a vector. Memory-bound ops then run
//    close to the copy bandwidth of the device.
//  * map_strided_kernel otherwise: each thread turns the linear index of an output element into
//    one offset per operand. Sizes and strides (after dropping size-1 dims and merging dims that
//    are contiguous for every operand, exactly as the CPU loop does) travel by value in a
//    StridedGeometry, up to 16 dims. Offsets are 64-bit; the divisions use 32-bit arithmetic
//    when every index fits (64-bit integer division is several times slower on the GPU).
//
// Both use grid-stride loops, so any size works with a grid that fits the hardware limits.
#include <array>
#include <cstdint>
#include <utility>

#include "core/tensor_impl.h"
#include "cuda/runtime.h"

namespace ember::cuda {

inline constexpr int kMaxDims = 16;
inline constexpr int kThreads = 256;  // threads per block for elementwise kernels
inline constexpr int kVec = 4;        // elements per thread in the contiguous path

// Sizes and per-operand strides (in elements), innermost dim first.
template <int N>
struct StridedGeometry {
  int ndim = 0;
  bool index32 = false;  // all linear indices fit in 32 bits
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  // Offsets (in elements) of the element with row-major linear index `i`, one per operand.
  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (ndim == 1) {  // common after merging: no division at all
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i * strides[k][0];
      return;
    }
    if (index32) {
      uint32_t rem = static_cast<uint32_t>(i);
      // Unrolled with a break (rather than `d < ndim`) so that sizes/strides are indexed with
      // compile-time constants and stay in the kernel's parameter space.
#pragma unroll
      for (int d = 0; d < kMaxDims; ++d) {
        if (d == ndim) break;
        const uint32_t size = static_cast<uint32_t>(sizes[d]);
        const uint32_t q = rem / size;
        const int64_t idx = rem - q * size;
        rem = q;
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
      }
    } else {
      int64_t rem = i;
#pragma unroll
      for (int d = 0; d < kMaxDims; ++d) {
        if (d == ndim) break;
        const int64_t q = rem / sizes[d];
        const int64_t idx = rem - q * sizes[d];
        rem = q;
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
      }
    }
  }
};

// Builds the geometry of N same-shape operands (operand 0 is the output).
template <int N>
StridedGeometry<N> make_geometry(const std::array<const Tensor*, N>& ops, std::string_view op) {
  const Shape& shape = ops[0]->shape();
  for (int k = 1; k < N; ++k)
    if (ops[k]->shape() != shape)
      fail("{} (cuda): operand {} has shape {} but the output has shape {}", op, k,
           shape_str(ops[k]->shape()), shape_str(shape));
  if (static_cast<int>(shape.size()) > kMaxDims)
    fail("{} (cuda): at most {} dims are supported, got {}", op, kMaxDims, shape.size());
  StridedGeometry<N> g;
  // 1. innermost first, size-1 dims dropped
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    g.sizes[g.ndim] = shape[d];
    for (int k = 0; k < N; ++k) g.strides[k][g.ndim] = ops[k]->strides()[d];
    ++g.ndim;
  }
  if (g.ndim == 0) {  // a single element
    g.sizes[0] = 1;
    g.ndim = 1;
  }
  // 2. merge dim d into the dim below it when that is contiguous for every operand
  int out = 0;
  for (int d = 1; d < g.ndim; ++d) {
    bool mergeable = true;
    for (int k = 0; k < N; ++k)
      if (g.strides[k][d] != g.strides[k][out] * g.sizes[out]) mergeable = false;
    if (mergeable) {
      g.sizes[out] *= g.sizes[d];
    } else {
      ++out;
      g.sizes[out] = g.sizes[d];
      for (int k = 0; k < N; ++k) g.strides[k][out] = g.strides[k][d];
    }
  }
  g.ndim = out + 1;
  g.index32 = shape_numel(shape) <= static_cast<int64_t>(UINT32_MAX);
  return g;
}

// kVec elements in one aligned chunk, so that a load or store is a single vector instruction.
template <class T, int V>
struct alignas(sizeof(T) * V) AlignedVec {
  T v[V];
};

template <int V, class F, class TOut, class... TIn>
__global__ void map_contiguous_kernel(int64_t n, F f, TOut* out, const TIn*... in) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x * V;
  for (int64_t base = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * V; base < n;
       base += step) {
    if (base + V <= n) {
      AlignedVec<TOut, V> r;
      // Load every input's chunk first (independent loads in flight together), then compute.
      [&](const AlignedVec<TIn, V>... x) {
#pragma unroll
        for (int j = 0; j < V; ++j) r.v[j] = f(x.v[j]...);
      }(*reinterpret_cast<const AlignedVec<TIn, V>*>(in + base)...);
      *reinterpret_cast<AlignedVec<TOut, V>*>(out + base) = r;
    } else {  // the ragged tail
      for (int64_t i = base; i < n; ++i) out[i] = f(in[i]...);
    }
  }
}

template <class F, int N, class TOut, class... TIn, size_t... I>
__device__ __forceinline__ void map_one_strided(const F& f, const int64_t (&off)[N], TOut* out,
                                                std::index_sequence<I...>, const TIn*... in) {
  out[off[0]] = f(in[off[I + 1]]...);
}

template <class F, class TOut, class... TIn>
__global__ void map_strided_kernel(int64_t n, StridedGeometry<1 + sizeof...(TIn)> g, F f, TOut* out,
                                   const TIn*... in) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[1 + sizeof...(TIn)];
    g.offsets(i, off);
    map_one_strided(f, off, out, std::index_sequence_for<TIn...>{}, in...);
  }
}

namespace detail {

inline bool aligned_for(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <class TOut, class... TIn, class F, size_t... I>
void gpu_map_impl(cudaStream_t stream, F f, const Tensor& out,
                  const std::array<const Tensor*, sizeof...(TIn)>& ins, std::index_sequence<I...>) {
  const int64_t n = out.numel();
  if (n == 0) return;
  TOut* o = static_cast<TOut*>(out.raw_data());
  bool contiguous = out.is_contiguous() && aligned_for(o, sizeof(TOut) * kVec);
  ((contiguous =
        contiguous && ins[I]->is_contiguous() && aligned_for(ins[I]->raw_data(), sizeof(TIn) * kVec)),
   ...);
  if (contiguous) {
    map_contiguous_kernel<kVec><<<blocks_for((n + kVec - 1) / kVec, kThreads), kThreads, 0, stream>>>(
        n, f, o, static_cast<const TIn*>(ins[I]->raw_data())...);
    EMBER_CUDA_CHECK_LAUNCH("map_contiguous_kernel");
    return;
  }
  auto g = make_geometry<1 + sizeof...(TIn)>({&out, ins[I]...}, "elementwise");
  map_strided_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
      n, g, f, o, static_cast<const TIn*>(ins[I]->raw_data())...);
  EMBER_CUDA_CHECK_LAUNCH("map_strided_kernel");
}

}  // namespace detail

// out[i] = f(ins[0][i], ins[1][i], ...): every tensor has out's shape (inputs possibly expanded)
// and the C++ type given for it. Runs on ctx's stream.
template <class TOut, class... TIn, class F>
void gpu_map(const KernelContext& ctx, F f, const Tensor& out,
             const std::array<const Tensor*, sizeof...(TIn)>& ins) {
  detail::gpu_map_impl<TOut, TIn...>(ctx.stream, f, out, ins, std::index_sequence_for<TIn...>{});
}

// ---- gpu_zip: f(t0[i], t1[i], ...) with *references*, for kernels that update several tensors
// in place at once (the fused optimizer steps). All tensors have one shape and element type T.

template <class T, int N>
struct Pointers {
  T* p[N];
};

template <class T, int N, class F, size_t... K>
__device__ __forceinline__ void zip_one(const F& f, const Pointers<T, N>& ptr, const int64_t (&off)[N],
                                        std::index_sequence<K...>) {
  f(ptr.p[K][off[K]]...);
}

template <class T, int N, class F>
__global__ void zip_kernel(int64_t n, bool contiguous, StridedGeometry<N> g, F f, Pointers<T, N> ptr) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[N];
    if (contiguous) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i;
    } else {
      g.offsets(i, off);
    }
    zip_one(f, ptr, off, std::make_index_sequence<N>{});
  }
}

template <class T, int N, class F>
void gpu_zip(const KernelContext& ctx, F f, const std::array<const Tensor*, N>& ts) {
  const int64_t n = ts[0]->numel();
  if (n == 0) return;
  bool contiguous = true;
  Pointers<T, N> ptr;
  for (int k = 0; k < N; ++k) {
    contiguous = contiguous && ts[k]->is_contiguous();
    ptr.p[k] = static_cast<T*>(ts[k]->raw_data());
  }
  const StridedGeometry<N> g = make_geometry<N>(ts, "zip");  // also checks the shapes
  zip_kernel<T, N><<<blocks_for(n, kThreads), kThreads, 0, ctx.stream>>>(n, contiguous, g, f, ptr);
  EMBER_CUDA_CHECK_LAUNCH("zip_kernel");
}

}  // namespace ember::cuda
