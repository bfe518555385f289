// CPU kernels for gather, scatter / scatter_add and index_add.
//
// gather and scatter reuse the elementwise StridedLoop by "restriding" a tensor: a view with
// index's shape whose stride along `dim` is 0. Walking it together with `index` reaches, for each
// index position p, the element of x (or out) at p with p[dim] = 0; adding index[p] * stride[dim]
// then lands on the element the op wants. All the dim merging, vectorisable runs and threading of
// the elementwise machinery come for free.
#include "ops/kernels/index.h"

#include <cstring>

#include "ops/cpu/loops.h"

namespace ember::cpu {
namespace {

// A view of `t` with `shape` (which fits inside t's shape), t's strides, and stride 0 along dim.
Tensor restride(const Tensor& t, const Shape& shape, int64_t dim) {
  Shape strides = t.strides();
  strides[dim] = 0;
  return make_view(t, shape, strides, t.storage_offset());
}

void gather_cpu(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor x_r = restride(x, index.shape(), dim);
  StridedLoop<3> loop({&out, &x_r, &index});
  dispatch_all(x.dtype(), "gather", [&]<class T>() {
    const int64_t dim_bytes = x.stride(dim) * static_cast<int64_t>(sizeof(T));
    loop.run([&](char* const* p, const int64_t* s, int64_t n) {
      if (s[2] == 0) {
        // One index for the whole run (index_select, embedding): a plain copy of a row piece.
        const char* from = p[1] + *reinterpret_cast<const int64_t*>(p[2]) * dim_bytes;
        if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
          std::memcpy(p[0], from, static_cast<size_t>(n) * sizeof(T));
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(from + i * s[1]);
        }
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        int64_t idx = *reinterpret_cast<const int64_t*>(p[2] + i * s[2]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            *reinterpret_cast<const T*>(p[1] + i * s[1] + idx * dim_bytes);
      }
    });
  });
}

// Scatter walks the *lines* of index along dim: the loop runs over index's shape with dim
// squeezed to 1, and each step handles a whole line in order. Two positions can only write the
// same element of out when they share a line, so no element is ever written by two threads.
void scatter_cpu(ScatterMode mode, const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  Shape lines_shape = index.shape();
  const int64_t line = lines_shape[dim];
  lines_shape[dim] = 1;
  Tensor out_r = make_view(out, lines_shape, out.strides(), out.storage_offset());
  Tensor src_r = make_view(src, lines_shape, src.strides(), src.storage_offset());
  Tensor index_r = make_view(index, lines_shape, index.strides(), index.storage_offset());
  StridedLoop<3> loop({&out_r, &src_r, &index_r});
  auto run = [&]<class T>(auto combine) {
    const int64_t out_step = out.stride(dim) * static_cast<int64_t>(sizeof(T));
    const int64_t src_step = src.stride(dim) * static_cast<int64_t>(sizeof(T));
    const int64_t index_step = index.stride(dim) * static_cast<int64_t>(sizeof(int64_t));
    loop.run(
        [&](char* const* p, const int64_t* s, int64_t n) {
          for (int64_t i = 0; i < n; ++i) {
            char* o = p[0] + i * s[0];
            const char* from = p[1] + i * s[1];
            const char* ix = p[2] + i * s[2];
            for (int64_t j = 0; j < line; ++j) {
              int64_t idx = *reinterpret_cast<const int64_t*>(ix + j * index_step);
              combine(*reinterpret_cast<T*>(o + idx * out_step),
                      *reinterpret_cast<const T*>(from + j * src_step));
            }
          }
        },
        std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(line, 1)));
  };
  if (mode == ScatterMode::assign) {
    dispatch_all(out.dtype(), "scatter",
                 [&]<class T>() { run.template operator()<T>([](T& dst, T v) { dst = v; }); });
  } else {
    dispatch_numeric(out.dtype(), "scatter_add",
                     [&]<class T>() { run.template operator()<T>([](T& dst, T v) { dst += v; }); });
  }
}

// index_add: out viewed as [outer, rows, inner], src as [outer, n, inner]. One job owns a block
// of columns of one outer slice and adds every indexed row's part of that block, in index order:
// jobs never share an element (no races, no atomics) and repeated indices accumulate
// deterministically. Splitting the columns into blocks keeps every thread busy when outer is
// small, as in embedding (outer = 1, inner = the embedding width); each block row is a short
// contiguous, vectorisable add.
void index_add_cpu(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= out.size(d);
  for (int64_t d = dim + 1; d < out.dim(); ++d) inner *= out.size(d);
  const int64_t rows = out.size(dim), n = index.numel();
  if (outer * inner == 0 || n == 0) return;
  const int64_t* idx = static_cast<const int64_t*>(index.raw_data());

  constexpr int64_t kMinBlock = 16;  // one 64-byte cache line of float32
  int64_t jobs_wanted = 4 * static_cast<int64_t>(get_num_threads());
  int64_t block = inner;
  if (outer < jobs_wanted) {
    int64_t per_slice = (jobs_wanted + outer - 1) / outer;
    block = (inner + per_slice - 1) / per_slice;
    block = std::min(inner, std::max(kMinBlock, (block + kMinBlock - 1) / kMinBlock * kMinBlock));
  }
  const int64_t blocks = (inner + block - 1) / block;
  const int64_t grain = std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(n * block, 1));

  dispatch_numeric(out.dtype(), "index_add", [&]<class T>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* s = static_cast<const T*>(src.raw_data());
    parallel_for(0, outer * blocks, grain, [&](int64_t b, int64_t e) {
      for (int64_t job = b; job < e; ++job) {
        int64_t slice = job / blocks, k0 = (job % blocks) * block, w = std::min(block, inner - k0);
        T* dst = o + slice * rows * inner + k0;
        const T* from = s + slice * n * inner + k0;
        for (int64_t i = 0; i < n; ++i) {
          T* d = dst + idx[i] * inner;
          const T* r = from + i * inner;
          for (int64_t k = 0; k < w; ++k) d[k] += r[k];
        }
      }
    });
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(gather_stub, cpu, &gather_cpu);
EMBER_REGISTER_KERNEL(scatter_stub, cpu, &scatter_cpu);
EMBER_REGISTER_KERNEL(index_add_stub, cpu, &index_add_cpu);
}  // namespace ember::cpu
