#pragma once
// Kernels for the indexing ops (gather, scatter, scatter_add, index_select, embedding, one_hot).
// Contract shared by all three: index tensors are int64 and every entry has already been checked
// to lie in range by the op (ops/indexing.cpp), so kernels never bounds-check; tensors live on one
// device and the data tensors share one dtype.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

// out[p] = x[p with p[dim] replaced by index[p]], for every position p of `index`.
// `out` has index's shape; `index` may be an expanded view (index_select and embedding pass a
// 1-D index expanded over the other dims, so a run along an inner dim reads one index);
// x.dim() == index.dim() and index.size(d) <= x.size(d) for d != dim.
using GatherFn = void (*)(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);

// For every position p of `index`: out[p with p[dim] replaced by index[p]] = src[p] (assign) or
// += src[p] (add). index.size(d) <= src.size(d) for every d and <= out.size(d) for d != dim; src
// may be strided or expanded. Positions that differ only in `dim` may hit the same element of
// `out`, so an implementation must never split one such line across threads (or must combine
// atomically); with assign and repeated indices the CPU lets the last write along dim win.
enum class ScatterMode { assign, add };
using ScatterFn = void (*)(ScatterMode mode, const Tensor& out, int64_t dim, const Tensor& index,
                           const Tensor& src);

// out[..., index[i], ...] += src[..., i, ...] along `dim`: the backward of index_select and
// embedding. `out` and `src` are contiguous with equal shapes except along dim (src has
// index.numel() there); `index` is 1-D and contiguous and may repeat values, whose rows then
// accumulate.
using IndexAddFn = void (*)(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src);

EMBER_DECLARE_STUB(gather_stub, GatherFn);
EMBER_DECLARE_STUB(scatter_stub, ScatterFn);
EMBER_DECLARE_STUB(index_add_stub, IndexAddFn);

}  // namespace ember
