// Tensor::index and Tensor::index_put_ (LibTorch's indexing API, include/ember/indexing.h).
// A composite: integers, slices, None and "..." become view ops (select, slice, unsqueeze);
// index tensors become one index_select (reading) or one scatter (writing) over the indexed dims
// flattened into one. Gradients and the CUDA path come from those ops.
#include <numeric>

#include "ember/indexing.h"
#include "ops/internal.h"

namespace ember {

using indexing::TensorIndex;
using Kind = TensorIndex::Kind;

indexing::TensorIndex::TensorIndex(const char* text) : kind_(Kind::ellipsis) {
  if (text == nullptr || std::string_view(text) != "...")
    fail("index: the only string index is \"...\" (Ellipsis), got \"{}\"", text ? text : "");
}

namespace {

// self after its basic indices, and the index tensors still to apply to some of its dims.
struct Indexed {
  Tensor view;
  Shape dims;                   // the dims of `view` the index tensors index, ascending
  std::vector<Tensor> tensors;  // int64, non-negative, one per entry of dims
};

// How many of self's dims an index uses up.
int64_t dims_used(const TensorIndex& index) {
  switch (index.kind()) {
    case Kind::integer:
    case Kind::slice:
      return 1;
    case Kind::tensor:
      return index.tensor().dtype() == DType::boolean ? index.tensor().dim() : 1;
    default:
      return 0;
  }
}

// Checks -size <= i < size for every entry, and counts negative ones from the end.
Tensor wrapped_index(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  if (index.numel() == 0) return index;
  int64_t lo = index.amin({}).item<int64_t>(), hi = index.amax({}).item<int64_t>();
  if (lo < -size || hi >= size)
    fail("{}: index {} is out of bounds for dim {} of size {}", op, lo < -size ? lo : hi, dim, size);
  return lo >= 0 ? index : index + index.lt(scalar_tensor(0.0, index.options())).to(DType::int64) * size;
}

Indexed apply_basic_indices(const char* op, const Tensor& self, const std::vector<TensorIndex>& indices) {
  check_defined(op, self, "self");
  int64_t used = 0, ellipses = 0;
  for (const TensorIndex& index : indices) {
    if (index.kind() == Kind::tensor) check_defined(op, index.tensor(), "an index tensor");
    used += dims_used(index);
    ellipses += index.kind() == Kind::ellipsis;
  }
  if (ellipses > 1) fail("{}: an index can only have a single ellipsis (\"...\"), got {}", op, ellipses);
  if (used > self.dim())
    fail("{}: too many indices for a tensor of dimension {} ({} dims indexed)", op, self.dim(), used);

  Indexed out{self, {}, {}};
  Tensor& v = out.view;
  int64_t d = 0;  // the dim of v the next index applies to
  for (const TensorIndex& index : indices) {
    switch (index.kind()) {
      case Kind::none:
        v = v.unsqueeze(d++);
        break;
      case Kind::boolean:  // x[True] adds a dim of size 1, x[False] one of size 0
        v = v.unsqueeze(d);
        if (!index.boolean()) v = v.narrow(d, 0, 0);
        ++d;
        break;
      case Kind::ellipsis:
        d += self.dim() - used;
        break;
      case Kind::integer: {
        int64_t size = v.size(d), i = index.integer();
        if (i < -size || i >= size)
          fail("{}: index {} is out of bounds for dim {} of size {}", op, i, d, size);
        v = v.select(d, i);
        break;
      }
      case Kind::slice: {
        const indexing::Slice& s = index.slice();
        int64_t step = s.step.value_or(1);
        if (step <= 0) fail("{}: slice step must be positive, got {}", op, step);
        v = v.slice(d++, s.start.value_or(0), s.stop.value_or(std::numeric_limits<int64_t>::max()), step);
        break;
      }
      case Kind::tensor: {
        Tensor t = index.tensor().to(v.device());
        if (t.dtype() != DType::boolean) {
          if (t.dtype() != DType::int64 && t.dtype() != DType::int32)
            fail("{}: tensors used as indices must be int64, int32 or bool, got {}", op, t.dtype());
          out.dims.push_back(d);
          out.tensors.push_back(wrapped_index(op, t.to(DType::int64), d, v.size(d)));
          ++d;
          break;
        }
        if (t.dim() == 0) {  // a 0-d mask acts like a Python bool
          v = v.unsqueeze(d);
          if (!t.item<bool>()) v = v.narrow(d, 0, 0);
          ++d;
          break;
        }
        Shape covered(v.shape().begin() + d, v.shape().begin() + d + t.dim());
        if (covered != t.shape())
          fail("{}: the mask of shape {} does not match the shape {} of the dims it indexes (from dim {})",
               op, shape_str(t.shape()), shape_str(covered), d);
        Tensor positions = t.nonzero();  // [count, mask dims]
        for (int64_t j = 0; j < t.dim(); ++j) {
          out.dims.push_back(d++);
          out.tensors.push_back(positions.select(1, j));
        }
        break;
      }
    }
  }
  return out;
}

// The permutation that moves the first `moved` dims of a `rank`-dim tensor to `position`.
Shape move_leading_dims(int64_t moved, int64_t position, int64_t rank) {
  Shape perm;
  for (int64_t d = moved; d < moved + position; ++d) perm.push_back(d);
  for (int64_t d = 0; d < moved; ++d) perm.push_back(d);
  for (int64_t d = moved + position; d < rank; ++d) perm.push_back(d);
  return perm;
}

// The index tensors' flattened form: view.permute(order) puts the indexed dims first, and
// flat_index points into those dims flattened into one.
struct Advanced {
  Shape order;          // the indexed dims, then the others
  Shape indexed_sizes;  // sizes of the indexed dims
  Shape rest_sizes;     // sizes of the other dims
  Shape index_shape;    // the index tensors broadcast together
  Tensor flat_index;    // int64, 1-D
  // Where the index_shape dims go in the result: at the first indexed dim when the indexed dims
  // are adjacent (NumPy's rule), else first. to_result permutes [index_shape, rest] into that order.
  int64_t result_position = 0;
  Shape to_result;
};

Advanced flatten_advanced(const char* op, const Indexed& ix) {
  Advanced a;
  const Tensor& v = ix.view;
  for (int64_t d : ix.dims) {
    a.order.push_back(d);
    a.indexed_sizes.push_back(v.size(d));
  }
  for (int64_t d = 0; d < v.dim(); ++d)
    if (std::find(ix.dims.begin(), ix.dims.end(), d) == ix.dims.end()) {
      a.order.push_back(d);
      a.rest_sizes.push_back(v.size(d));
    }
  a.index_shape = ix.tensors[0].shape();
  for (const Tensor& t : ix.tensors) a.index_shape = broadcast_shapes(a.index_shape, t.shape(), op);
  Tensor flat = zeros(a.index_shape, TensorOptions(DType::int64).device(v.device()));
  int64_t stride = 1;
  for (size_t j = ix.tensors.size(); j-- > 0;) {
    flat = flat + ix.tensors[j] * stride;
    stride *= a.indexed_sizes[j];
  }
  a.flat_index = flat.reshape({-1});
  bool adjacent = ix.dims.back() - ix.dims.front() + 1 == static_cast<int64_t>(ix.dims.size());
  a.result_position = adjacent ? ix.dims.front() : 0;
  a.to_result = move_leading_dims(static_cast<int64_t>(a.index_shape.size()), a.result_position,
                                  static_cast<int64_t>(a.index_shape.size() + a.rest_sizes.size()));
  return a;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 1; i <= from.size(); ++i)
    if (from[from.size() - i] != 1 && from[from.size() - i] != to[to.size() - i]) return false;
  return true;
}

Shape concat(Shape a, const Shape& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Shape inverse_permutation(const Shape& perm) {
  Shape inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int64_t>(i);
  return inverse;
}

// view.permute(order) with the indexed dims flattened into the first.
Tensor indexed_dims_first(const Tensor& view, const Advanced& a) {
  int64_t flat =
      std::accumulate(a.indexed_sizes.begin(), a.indexed_sizes.end(), int64_t{1}, std::multiplies<>());
  return view.permute(a.order).reshape(concat({flat}, a.rest_sizes));
}

}  // namespace

Tensor Tensor::index(const std::vector<TensorIndex>& indices) const {
  Indexed ix = apply_basic_indices("index", *this, indices);
  if (ix.dims.empty()) return ix.view;
  Advanced a = flatten_advanced("index", ix);
  Tensor picked = indexed_dims_first(ix.view, a).index_select(0, a.flat_index);
  Tensor result = picked.reshape(concat(a.index_shape, a.rest_sizes));
  return a.result_position == 0 ? result : result.permute(a.to_result);
}

Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, const Tensor& values_in,
                           bool accumulate) {
  check_defined("index_put_", values_in, "values");
  // (said here: the writes below go through views of self, whose own refusal would name them)
  if (GradMode::is_enabled() && is_leaf() && requires_grad())
    fail(
        "index_put_: a leaf tensor that requires grad cannot be modified in place (use NoGradGuard, or "
        "detach())");
  Indexed ix = apply_basic_indices("index_put_", *this, indices);
  Tensor& target = ix.view;
  // As in PyTorch, leading size-1 dims beyond the target's may be dropped: x[0] = ones({1, 4}).
  Tensor values = values_in;
  while (values.dim() > target.dim() && values.size(0) == 1) values = values.squeeze(0);
  if (ix.dims.empty()) {  // only views: write through them
    if (accumulate) {
      target.add_(values);
    } else {
      target.copy_(values);
    }
    return *this;
  }

  Advanced a = flatten_advanced("index_put_", ix);
  const Shape picked_shape = concat(a.index_shape, a.rest_sizes);  // index()'s result, index dims first
  Shape result_shape(picked_shape.size());
  for (size_t i = 0; i < a.to_result.size(); ++i) result_shape[i] = picked_shape[a.to_result[i]];
  if (!broadcasts_to(values.shape(), result_shape))
    fail("index_put_: values of shape {} cannot be broadcast to the indexed shape {}",
         shape_str(values.shape()), shape_str(result_shape));
  Tensor v = values.to(device(), dtype()).expand(result_shape).permute(inverse_permutation(a.to_result));
  v = v.reshape(concat({-1}, a.rest_sizes));

  Shape index_view(a.rest_sizes.size() + 1, 1);
  index_view[0] = a.flat_index.numel();
  Tensor positions = a.flat_index.view(index_view).expand(v.shape());
  Tensor flat = indexed_dims_first(target, a);
  if (flat.impl()->storage == target.impl()->storage) {  // a view of self: scatter in place, O(indices)
    if (accumulate) {
      flat.scatter_add_(0, positions, v);
    } else {
      flat.scatter_(0, positions, v);
    }
    return *this;
  }
  Tensor written =
      accumulate ? ember::scatter_add(flat, 0, positions, v) : ember::scatter(flat, 0, positions, v);
  Shape unflattened = concat(a.indexed_sizes, a.rest_sizes);
  target.copy_(written.reshape(unflattened).permute(inverse_permutation(a.order)));
  return *this;
}

Tensor& Tensor::index_put_(const std::vector<TensorIndex>& indices, double value) {
  return index_put_(indices, scalar_tensor(value, options()));
}

}  // namespace ember
