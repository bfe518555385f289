// CUDA kernels for gather, scatter / scatter_add and index_add (contract: ops/kernels/index.h;
// indices were range-checked by the op, so the kernels never check them).
//
// gather and scatter "restride" a tensor as the CPU does (ops/cpu/index.cpp): a view with
// index's shape and stride 0 along `dim` reaches, for each index position p, the element at p
// with p[dim] = 0; adding index[p] * stride[dim] lands on the element the op wants. The offsets
// of all three operands then come from the elementwise engine's StridedGeometry.
//
// Writing (scatter, index_add) has to cope with several positions hitting one element:
//  * deterministic path: one thread owns a whole *line* along dim (scatter) or a whole column
//    (index_add) and walks it in order, so no two threads ever write the same element and
//    repeated indices behave as on the CPU (the last assignment wins; additions in index order);
//  * atomic path, for additions when there are too few lines/columns to keep the GPU busy:
//    one thread per element, atomicAdd into the destination. Integer results are exact; float
//    sums may round differently from run to run, because the order of the atomic additions is
//    not fixed.
#include <type_traits>

#include "cuda/loops.cuh"
#include "ops/kernels/index.h"

namespace ember::cuda {
namespace {

// Below this many independent lines/columns, additions use atomics to get parallelism.
constexpr int64_t kMinDeterministicWork = 16384;

Tensor restride(const Tensor& t, const Shape& shape, int64_t dim) {
  Shape strides = t.strides();
  strides[dim] = 0;
  return make_view(t, shape, strides, t.storage_offset());
}

template <class T>
__global__ void gather_kernel(int64_t n, StridedGeometry<3> g, T* out, const T* x, const int64_t* index,
                              int64_t dim_stride) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    g.offsets(i, off);
    out[off[0]] = x[off[1] + index[off[2]] * dim_stride];
  }
}

void check_index(const char* op, const Tensor& index, const Tensor& data, int64_t dim) {
  if (index.dtype() != DType::int64) fail("{} (cuda): index must be int64, got {}", op, index.dtype());
  if (index.dim() != data.dim() || !(dim >= 0 && dim < std::max<int64_t>(data.dim(), 1)))
    fail("{} (cuda): index {} and data {} with dim {}", op, shape_str(index.shape()), shape_str(data.shape()),
         dim);
}

void gather_cuda(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  check_index("gather", index, x, dim);
  if (out.shape() != index.shape() || out.dtype() != x.dtype())
    fail("gather (cuda): output {} {} for index {} and input {}", out.dtype(), shape_str(out.shape()),
         shape_str(index.shape()), x.dtype());
  if (out.numel() == 0) return;
  KernelContext ctx(out, "gather");
  const Tensor x_r = x.dim() == 0 ? x : restride(x, index.shape(), dim);
  const StridedGeometry<3> g = make_geometry<3>({&out, &x_r, &index}, "gather");
  const int64_t dim_stride = x.dim() == 0 ? 0 : x.stride(dim);
  dispatch_all(x.dtype(), "gather", [&]<class T>() {
    gather_kernel<T><<<blocks_for(out.numel(), kThreads), kThreads, 0, ctx.stream>>>(
        out.numel(), g, static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()),
        static_cast<const int64_t*>(index.raw_data()), dim_stride);
    EMBER_CUDA_CHECK_LAUNCH("gather_kernel");
  });
}

// dst += v atomically, for the types the hardware adds atomically (int64 as its unsigned twin:
// two's complement addition is the same bit operation).
template <class T>
__device__ __forceinline__ void atomic_add(T* dst, T v) {
  if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(dst), static_cast<unsigned long long>(v));
  } else {
    atomicAdd(dst, v);
  }
}
template <class T>
constexpr bool kHasAtomicAdd = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                               std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>;

// One thread per line: positions that differ only along dim, walked in order.
template <class T, bool kAdd>
__global__ void scatter_lines_kernel(int64_t lines, StridedGeometry<3> g, int64_t line, T* out, const T* src,
                                     const int64_t* index, int64_t out_step, int64_t src_step,
                                     int64_t index_step) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < lines;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    g.offsets(i, off);
    for (int64_t j = 0; j < line; ++j) {
      T* dst = out + off[0] + index[off[2] + j * index_step] * out_step;
      const T v = src[off[1] + j * src_step];
      if constexpr (kAdd) {
        *dst = static_cast<T>(*dst + v);
      } else {
        *dst = v;
      }
    }
  }
}

// One thread per position, adding atomically.
template <class T>
__global__ void scatter_add_atomic_kernel(int64_t n, StridedGeometry<3> g, T* out, const T* src,
                                          const int64_t* index, int64_t out_step) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3];
    g.offsets(i, off);
    atomic_add(out + off[0] + index[off[2]] * out_step, src[off[1]]);
  }
}

void scatter_cuda(ScatterMode mode, const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  check_index("scatter", index, out, dim);
  if (src.dim() != index.dim() || src.dtype() != out.dtype())
    fail("scatter (cuda): src {} {} for index {} and output {}", src.dtype(), shape_str(src.shape()),
         shape_str(index.shape()), out.dtype());
  for (int64_t d = 0; d < index.dim(); ++d)
    if (index.size(d) > src.size(d) || (d != dim && index.size(d) > out.size(d)))
      fail("scatter (cuda): index {} does not fit src {} and output {}", shape_str(index.shape()),
           shape_str(src.shape()), shape_str(out.shape()));
  if (index.numel() == 0) return;
  if (mode == ScatterMode::add && out.dtype() == DType::boolean)
    fail("scatter_add: not defined for bool tensors");
  if (out.dim() == 0) {  // a single element: treat it as a 1-D tensor of one
    auto one = [](const Tensor& t) { return make_view(t, {1}, {1}, t.storage_offset()); };
    return scatter_cuda(mode, one(out), 0, one(index), one(src));
  }
  KernelContext ctx(out, "scatter");
  const int64_t line = index.size(dim);
  const int64_t lines = index.numel() / line;
  dispatch_all(out.dtype(), "scatter", [&]<class T>() {
    if constexpr (kHasAtomicAdd<T>) {
      if (mode == ScatterMode::add && lines < kMinDeterministicWork && line > 1) {
        const Tensor out_r = restride(out, index.shape(), dim);
        const Tensor src_v = make_view(src, index.shape(), src.strides(), src.storage_offset());
        const StridedGeometry<3> g = make_geometry<3>({&out_r, &src_v, &index}, "scatter_add");
        scatter_add_atomic_kernel<T><<<blocks_for(index.numel(), kThreads), kThreads, 0, ctx.stream>>>(
            index.numel(), g, static_cast<T*>(out.raw_data()), static_cast<const T*>(src.raw_data()),
            static_cast<const int64_t*>(index.raw_data()), out.stride(dim));
        EMBER_CUDA_CHECK_LAUNCH("scatter_add_atomic_kernel");
        return;
      }
    }
    Shape lines_shape = index.shape();
    lines_shape[dim] = 1;
    const Tensor out_r = make_view(out, lines_shape, out.strides(), out.storage_offset());
    const Tensor src_r = make_view(src, lines_shape, src.strides(), src.storage_offset());
    const Tensor index_r = make_view(index, lines_shape, index.strides(), index.storage_offset());
    const StridedGeometry<3> g = make_geometry<3>({&out_r, &src_r, &index_r}, "scatter");
    auto launch = [&](auto kernel) {
      kernel<<<blocks_for(lines, kThreads), kThreads, 0, ctx.stream>>>(
          lines, g, line, static_cast<T*>(out.raw_data()), static_cast<const T*>(src.raw_data()),
          static_cast<const int64_t*>(index.raw_data()), out.stride(dim), src.stride(dim), index.stride(dim));
      EMBER_CUDA_CHECK_LAUNCH("scatter_lines_kernel");
    };
    if (mode == ScatterMode::assign)
      launch(scatter_lines_kernel<T, false>);
    else
      launch(scatter_lines_kernel<T, true>);
  });
}

// index_add, deterministic: one thread per (outer slice, column), adding the indexed rows in order.
template <class T>
__global__ void index_add_columns_kernel(T* out, const T* src, const int64_t* index, int64_t outer,
                                         int64_t rows, int64_t inner, int64_t n) {
  const int64_t columns = outer * inner;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < columns;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t slice = c / inner, col = c % inner;
    T* dst = out + slice * rows * inner + col;
    const T* from = src + slice * n * inner + col;
    for (int64_t i = 0; i < n; ++i)
      dst[index[i] * inner] = static_cast<T>(dst[index[i] * inner] + from[i * inner]);
  }
}

// index_add with atomics: one thread per element of src.
template <class T>
__global__ void index_add_atomic_kernel(T* out, const T* src, const int64_t* index, int64_t outer,
                                        int64_t rows, int64_t inner, int64_t n) {
  const int64_t total = outer * n * inner;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t col = e % inner, i = (e / inner) % n, slice = e / (inner * n);
    atomic_add(out + (slice * rows + index[i]) * inner + col, src[e]);
  }
}

void index_add_cuda(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  if (index.dtype() != DType::int64 || index.dim() != 1 || !index.is_contiguous() || !out.is_contiguous() ||
      !src.is_contiguous() || out.dim() != src.dim() || out.dtype() != src.dtype() ||
      !(dim >= 0 && dim < std::max<int64_t>(out.dim(), 1)))
    fail("index_add (cuda): bad arguments: out {} {}, index {} {}, src {} {}, dim {}", out.dtype(),
         shape_str(out.shape()), index.dtype(), shape_str(index.shape()), src.dtype(), shape_str(src.shape()),
         dim);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= out.size(d);
  for (int64_t d = dim + 1; d < out.dim(); ++d) inner *= out.size(d);
  const int64_t rows = out.dim() == 0 ? 1 : out.size(dim), n = index.numel();
  for (int64_t d = 0; d < out.dim(); ++d)
    if (d != dim && out.size(d) != src.size(d))
      fail("index_add (cuda): out {} and src {} differ outside dim {}", shape_str(out.shape()),
           shape_str(src.shape()), dim);
  if (src.numel() != outer * n * inner)
    fail("index_add (cuda): src {} needs {} rows along dim {}", shape_str(src.shape()), n, dim);
  if (outer * inner == 0 || n == 0) return;
  KernelContext ctx(out, "index_add");
  dispatch_numeric(out.dtype(), "index_add", [&]<class T>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* s = static_cast<const T*>(src.raw_data());
    const int64_t* idx = static_cast<const int64_t*>(index.raw_data());
    if constexpr (kHasAtomicAdd<T>) {
      if (outer * inner < kMinDeterministicWork && n > 1) {
        index_add_atomic_kernel<T><<<blocks_for(outer * n * inner, kThreads), kThreads, 0, ctx.stream>>>(
            o, s, idx, outer, rows, inner, n);
        EMBER_CUDA_CHECK_LAUNCH("index_add_atomic_kernel");
        return;
      }
    }
    index_add_columns_kernel<T>
        <<<blocks_for(outer * inner, kThreads), kThreads, 0, ctx.stream>>>(o, s, idx, outer, rows, inner, n);
    EMBER_CUDA_CHECK_LAUNCH("index_add_columns_kernel");
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(gather_stub, cuda, &gather_cuda);
EMBER_REGISTER_KERNEL(scatter_stub, cuda, &scatter_cuda);
EMBER_REGISTER_KERNEL(index_add_stub, cuda, &index_add_cuda);

}  // namespace ember::cuda
