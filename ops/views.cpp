// View ops: new shape/strides/offset over the same storage, no data copied. Each records a
// backward that maps the view's gradient back onto the base's shape.
#include <numeric>

#include "ops/internal.h"

namespace ember {

using autograd::BackwardArgs;
using Grads = std::vector<Tensor>;

namespace {

// Every rule is written in differentiable ops, so every view has a double backward.
template <class BackwardRule>
Tensor record_view(const char* name, const Tensor& base, Tensor view, BackwardRule rule) {
  if (autograd::any_requires_grad({base})) {
    autograd::record(
        name, {base}, view, [rule](const BackwardArgs& a) { return Grads{rule(a.grad())}; },
        autograd::DoubleBackward::supported);
  }
  return view;
}

Shape infer_shape(const Shape& shape, int64_t numel, std::string_view op) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      if (infer >= 0) fail("{}: only one dimension can be inferred in {}", op, shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else if (out[i] < 0) {
      fail("{}: invalid dimension {} in {}", op, out[i], shape_str(shape));
    } else if (__builtin_mul_overflow(known, out[i], &known)) {
      fail("{}: shape {} is invalid for input of size {}", op, shape_str(shape), numel);
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      fail("{}: shape {} is invalid for input of size {}", op, shape_str(shape), numel);
    out[infer] = numel / known;
  } else if (known != numel) {
    fail("{}: shape {} is invalid for input of size {}", op, shape_str(shape), numel);
  }
  return out;
}

// Strides for viewing (old_shape, old_strides) as new_shape without copying, if possible.
// Walks both shapes in chunks whose element counts match; each old chunk must be contiguous
// in itself (the PyTorch rule).
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape) {
  Shape out(new_shape.size());
  if (shape_numel(old_shape) == 0) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) {
    // remaining size-1 dims
    for (; view_d >= 0; --view_d) {
      if (new_shape[view_d] != 1) return std::nullopt;
      out[view_d] = 1;
    }
  }
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& shape_in) const {
  check_defined("view", *this, "self");
  Shape shape = infer_shape(shape_in, numel(), "view");
  auto strides = view_strides(this->shape(), this->strides(), shape);
  if (!strides)
    fail("view: shape {} is not compatible with the input's size {} and strides {}; use reshape()",
         shape_str(shape), shape_str(this->shape()), shape_str(this->strides()));
  Shape in_shape = this->shape();
  return record_view("view", *this, make_view(*this, shape, *strides, storage_offset()),
                     [in_shape](const Tensor& g) { return g.reshape(in_shape); });
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  check_defined("reshape", *this, "self");
  Shape shape = infer_shape(shape_in, numel(), "reshape");
  if (view_strides(this->shape(), this->strides(), shape)) return view(shape);
  return contiguous().view(shape);
}

Tensor Tensor::permute(const Shape& dims) const {
  check_defined("permute", *this, "self");
  if (static_cast<int64_t>(dims.size()) != dim())
    fail("permute: got {} dims {} for a {}-d tensor", dims.size(), shape_str(dims), dim());
  Shape shape(dims.size()), strides(dims.size()), inverse(dims.size());
  std::vector<bool> seen(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    if (seen[d]) fail("permute: dim {} repeated in {}", d, shape_str(dims));
    seen[d] = true;
    shape[i] = this->shape()[d];
    strides[i] = this->strides()[d];
    inverse[d] = static_cast<int64_t>(i);
  }
  return record_view("permute", *this, make_view(*this, shape, strides, storage_offset()),
                     [inverse](const Tensor& g) { return g.permute(inverse); });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  check_defined("transpose", *this, "self");
  d0 = wrap_dim(d0, dim(), "transpose");  // a 0-d tensor accepts dims 0 and -1, as in PyTorch
  d1 = wrap_dim(d1, dim(), "transpose");
  if (dim() == 0) return *this;
  Shape perm(dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[d0], perm[d1]);
  return permute(perm);
}

Tensor Tensor::t() const {
  check_defined("t", *this, "self");
  if (dim() > 2) fail("t: expects a tensor with <= 2 dims, got {}-d; use transpose()", dim());
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  check_defined("unsqueeze", *this, "self");
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape shape = this->shape(), strides = this->strides();
  int64_t stride = d < dim() ? strides[d] * shape[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return record_view("unsqueeze", *this, make_view(*this, shape, strides, storage_offset()),
                     [d](const Tensor& g) { return g.squeeze(d); });
}

Tensor Tensor::squeeze(int64_t d) const {
  check_defined("squeeze", *this, "self");
  d = wrap_dim(d, dim(), "squeeze");  // a 0-d tensor accepts dims 0 and -1, as in PyTorch
  if (dim() == 0) return *this;
  if (shape()[d] != 1) return *this;
  Shape shape = this->shape(), strides = this->strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  Shape in_shape = this->shape();
  return record_view("squeeze", *this, make_view(*this, shape, strides, storage_offset()),
                     [in_shape](const Tensor& g) { return g.reshape(in_shape); });
}

Tensor Tensor::squeeze() const {
  check_defined("squeeze", *this, "self");
  Shape shape, strides;
  for (int64_t d = 0; d < dim(); ++d)
    if (this->shape()[d] != 1) {
      shape.push_back(this->shape()[d]);
      strides.push_back(this->strides()[d]);
    }
  Shape in_shape = this->shape();
  return record_view("squeeze", *this, make_view(*this, shape, strides, storage_offset()),
                     [in_shape](const Tensor& g) { return g.reshape(in_shape); });
}

Tensor Tensor::expand(const Shape& shape_in) const {
  check_defined("expand", *this, "self");
  if (shape_in.size() < static_cast<size_t>(dim()))
    fail("expand: target shape {} has fewer dims than the input {}", shape_str(shape_in), shape_str(shape()));
  size_t lead = shape_in.size() - dim();
  Shape shape(shape_in.size()), strides(shape_in.size());
  for (size_t i = 0; i < shape_in.size(); ++i) {
    if (i < lead) {
      if (shape_in[i] < 0)
        fail("expand: -1 not allowed for new leading dim {} in {}", i, shape_str(shape_in));
      shape[i] = shape_in[i];
      strides[i] = 0;
      continue;
    }
    int64_t src = this->shape()[i - lead];
    int64_t want = shape_in[i] == -1 ? src : shape_in[i];
    if (want < 0) fail("expand: invalid size {} for dim {} in {}", shape_in[i], i, shape_str(shape_in));
    if (src != want && src != 1)
      fail("expand: cannot expand {} to {} (dim {}: {} vs {})", shape_str(this->shape()), shape_str(shape_in),
           i, src, want);
    shape[i] = want;
    strides[i] = src == want ? this->strides()[i - lead] : 0;
  }
  check_shape_valid(shape, "expand");
  Shape in_shape = this->shape();
  return record_view("expand", *this, make_view(*this, shape, strides, storage_offset()),
                     [in_shape](const Tensor& g) { return autograd::sum_to(g, in_shape); });
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  check_defined("slice", *this, "self");
  if (dim() == 0) fail("slice: cannot slice a 0-d tensor");
  d = wrap_dim(d, dim(), "slice");
  if (step <= 0) fail("slice: step must be positive, got {}", step);
  int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = this->shape(), strides = this->strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Shape in_shape = this->shape();
  return record_view(
      "slice", *this, make_view(*this, shape, strides, storage_offset() + start * this->strides()[d]),
      [=](const Tensor& g) {
        return embed_in_zeros("slice_backward", in_shape, g,
                              [=](const Tensor& full) { return full.slice(d, start, end, step); });
      });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  check_defined("narrow", *this, "self");
  if (dim() == 0) fail("narrow: cannot narrow a 0-d tensor");
  d = wrap_dim(d, dim(), "narrow");
  int64_t n = shape()[d];
  if (start < 0) start += n;
  if (start < 0 || start > n || length < 0 || length > n - start)  // (start + length could overflow)
    fail("narrow: start {} + length {} out of range for dim {} of size {}", start, length, d, n);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  check_defined("select", *this, "self");
  if (dim() == 0) fail("select: cannot select on a 0-d tensor");
  d = wrap_dim(d, dim(), "select");
  int64_t n = shape()[d];
  if (index < -n || index >= n) fail("select: index {} out of range for dim {} of size {}", index, d, n);
  if (index < 0) index += n;
  Shape shape = this->shape(), strides = this->strides();
  int64_t offset = storage_offset() + index * strides[d];
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  Shape in_shape = this->shape();
  return record_view("select", *this, make_view(*this, shape, strides, offset), [=](const Tensor& g) {
    return embed_in_zeros("select_backward", in_shape, g,
                          [=](const Tensor& full) { return full.select(d, index); });
  });
}

Tensor Tensor::diagonal(int64_t offset, int64_t dim1, int64_t dim2) const {
  check_defined("diagonal", *this, "self");
  if (dim() < 2) fail("diagonal: needs at least 2 dims, got {}", shape_str(shape()));
  dim1 = wrap_dim(dim1, dim(), "diagonal");
  dim2 = wrap_dim(dim2, dim(), "diagonal");
  if (dim1 == dim2) fail("diagonal: dim1 and dim2 are both {} (of {})", dim1, shape_str(shape()));
  const int64_t rows = shape()[dim1], cols = shape()[dim2];
  // Element k of the diagonal is [k, k + offset] (offset >= 0) or [k - offset, k].
  const int64_t length =
      std::max<int64_t>(0, offset >= 0 ? std::min(rows, cols - offset) : std::min(rows + offset, cols));
  int64_t start = storage_offset();
  if (length > 0) start += offset >= 0 ? offset * strides()[dim2] : -offset * strides()[dim1];
  Shape shape, strides;
  for (int64_t d = 0; d < dim(); ++d)
    if (d != dim1 && d != dim2) {
      shape.push_back(this->shape()[d]);
      strides.push_back(this->strides()[d]);
    }
  shape.push_back(length);
  strides.push_back(this->strides()[dim1] + this->strides()[dim2]);
  Shape in_shape = this->shape();
  return record_view("diagonal", *this, make_view(*this, shape, strides, start), [=](const Tensor& g) {
    return embed_in_zeros("diagonal_backward", in_shape, g,
                          [=](const Tensor& full) { return full.diagonal(offset, dim1, dim2); });
  });
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  check_defined("flatten", *this, "self");
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  if (start > end) fail("flatten: start_dim {} is after end_dim {}", start, end);
  Shape shape(this->shape().begin(), this->shape().begin() + start);
  int64_t n = 1;
  for (int64_t d = start; d <= end; ++d) n *= this->shape()[d];
  shape.push_back(n);
  shape.insert(shape.end(), this->shape().begin() + end + 1, this->shape().end());
  return reshape(shape);
}

Tensor Tensor::unflatten(int64_t d, const Shape& sizes) const {
  check_defined("unflatten", *this, "self");
  d = wrap_dim(d, dim(), "unflatten");
  Shape inner = infer_shape(sizes, shape()[d], "unflatten");
  Shape shape(this->shape().begin(), this->shape().begin() + d);
  shape.insert(shape.end(), inner.begin(), inner.end());
  shape.insert(shape.end(), this->shape().begin() + d + 1, this->shape().end());
  return view(shape);
}

}  // namespace ember
