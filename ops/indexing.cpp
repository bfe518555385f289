// Indexing ops: gather, scatter, scatter_add, index_select, embedding, one_hot.
// Index tensors are int64 (int32 is accepted and widened); every index is range-checked here,
// before any kernel writes, so kernels (ops/kernels/index.h) can trust them.
#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/kernels/index.h"

namespace ember {

EMBER_DEFINE_STUB(gather_stub, GatherFn);
EMBER_DEFINE_STUB(scatter_stub, ScatterFn);
EMBER_DEFINE_STUB(index_add_stub, IndexAddFn);

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// `index` as int64: int32 is widened (a copy), any other dtype is an error.
Tensor index_as_int64(std::string_view op, const Tensor& index) {
  check_defined(op, index, "index");
  if (index.dtype() != DType::int64 && index.dtype() != DType::int32)
    fail("{}: index must be an int64 or int32 tensor, got {}", op, index.dtype());
  return cast_raw(index, DType::int64);
}

// Throws unless 0 <= index < size everywhere; `what` names the indexed extent, e.g. "dim 1 of size 3".
// Uses the min and max (two reductions, on the index's own device) rather than a kernel of its own.
void check_index_range(std::string_view op, const Tensor& index, int64_t size, std::string_view what) {
  if (index.numel() == 0) return;
  int64_t lo = amin(index, {}).item<int64_t>(), hi = amax(index, {}).item<int64_t>();
  if (lo < 0 || hi >= size)
    fail("{}: index {} is out of range for {} (valid range [0, {}))", op, lo < 0 ? lo : hi, what, size);
}

std::string dim_text(const Tensor& t, int64_t dim) {
  return fmt::format("dim {} of size {}", dim, t.size(dim));
}

// PyTorch reads a 0-d input, index or src of gather and scatter as shape [1] (its
// ensure_nonempty_dim); the result then has the index's (gather) or self's (scatter) own shape.
bool has_scalar_operand(std::initializer_list<const Tensor*> ts) {
  bool any_0d = false, all_at_most_1d = true;
  for (const Tensor* t : ts) {
    any_0d = any_0d || t->dim() == 0;
    all_at_most_1d = all_at_most_1d && t->dim() <= 1;
  }
  return any_0d && all_at_most_1d;
}
Tensor with_one_dim(const Tensor& t) { return t.dim() == 0 ? t.reshape({1}) : t; }

// The gather / scatter shape rule: index has as many dims as `t` and is no larger in any dim
// (except `dim`, when skip_dim is set).
void check_index_fits(std::string_view op, const Tensor& index, const Tensor& t, std::string_view what,
                      int64_t dim, bool skip_dim) {
  if (index.dim() != t.dim())
    fail("{}: index has {} dims ({}) but {} has {} ({}); they must match", op, index.dim(),
         shape_str(index.shape()), what, t.dim(), shape_str(t.shape()));
  for (int64_t d = 0; d < t.dim(); ++d)
    if (!(skip_dim && d == dim) && index.size(d) > t.size(d))
      fail("{}: index shape {} is larger than {} shape {} in dim {}", op, shape_str(index.shape()), what,
           shape_str(t.shape()), d);
}

// The checks of scatter and scatter_add once the operands have dims (index int64, dim wrapped).
void check_scatter_operands(const char* op, const Tensor& self, int64_t dim, const Tensor& index,
                            const Tensor& src) {
  if (self.dtype() != src.dtype())
    fail("{}: self is {} but src is {}; they must have the same dtype", op, self.dtype(), src.dtype());
  check_index_fits(op, index, self, "self", dim, /*skip_dim=*/true);
  check_index_fits(op, index, src, "src", dim, /*skip_dim=*/false);
  check_index_range(op, index, self.size(dim), dim_text(self, dim));
}

// The gradient of scatter/scatter_add for src: g gathered at index. src may be larger than index
// in some dims; the positions that index does not reach get no gradient.
Tensor src_grad(const Tensor& g, int64_t dim, const Tensor& index, const Shape& src_shape) {
  if (GradMode::is_enabled()) {  // create_graph: the same in recorded ops
    Tensor part = gather(g, dim, index);
    if (index.shape() == src_shape) return part;
    return embed_in_zeros("scatter_src_backward", src_shape, part,
                          [index_shape = index.shape()](const Tensor& t) {
                            Tensor window = t;
                            for (int64_t d = 0; d < static_cast<int64_t>(index_shape.size()); ++d)
                              window = window.narrow(d, 0, index_shape[d]);
                            return window;
                          });
  }
  Tensor part = empty_tensor(index.shape(), g.dtype(), g.device());
  if (part.numel() > 0) gather_stub(g.device(), part, g, dim, index);
  if (index.shape() == src_shape) return part;
  Tensor full = zeros(src_shape, g.options());
  Tensor window = full;
  for (int64_t d = 0; d < index.dim(); ++d) window = window.narrow(d, 0, index.size(d));
  copy_into(window, part);
  return full;
}

Tensor scatter_impl(const char* op, ScatterMode mode, const Tensor& self, int64_t dim, const Tensor& index_in,
                    const Tensor& src) {
  check_defined(op, self, "self");
  check_defined(op, src, "src");
  if (any_bfloat16(self, src))  // exact: every bfloat16 value is a float32 value
    return via_float32(
        [&](const Tensor& s, const Tensor& v) { return scatter_impl(op, mode, s, dim, index_in, v); }, self,
        src);
  Tensor index = index_as_int64(op, index_in);
  check_same_device(op, {self, index, src});
  dim = wrap_dim(dim, self.dim(), op);
  if (has_scalar_operand({&self, &index, &src}))
    return scatter_impl(op, mode, with_one_dim(self), 0, with_one_dim(index), with_one_dim(src))
        .reshape(self.shape());
  check_scatter_operands(op, self, dim, index, src);

  Tensor out = empty_tensor(self.shape(), self.dtype(), self.device());
  copy_into(out, self);
  if (index.numel() > 0) scatter_stub(out.device(), mode, out, dim, index, src);

  if (autograd::any_requires_grad({self, src})) {
    Shape src_shape = src.shape();
    autograd::record(
        op, {self, src}, out,
        [=, si = SavedTensor(index)](const BackwardArgs& a) {
          Tensor idx = si.unpack(op);
          const Tensor& g = a.grad();
          Tensor g_self, g_src;
          if (a.needs(0)) {
            if (mode == ScatterMode::add) {
              g_self = g;
            } else if (GradMode::is_enabled()) {  // create_graph: the same in recorded ops
              g_self = scatter(g, dim, idx, zeros(idx.shape(), g.options()));
            } else {  // the scattered positions were overwritten: no gradient flows back to self there
              g_self = empty_tensor(g.shape(), g.dtype(), g.device());
              copy_into(g_self, g);
              if (idx.numel() > 0)
                scatter_stub(g.device(), ScatterMode::assign, g_self, dim, idx,
                             scalar_tensor(0.0, g.options()).expand(idx.shape()));
            }
          }
          if (a.needs(1)) g_src = src_grad(g, dim, idx, src_shape);
          return Grads{g_self, g_src};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

// The rows index[i] of x along dim (no autograd); index is 1-D int64 and range-checked.
Tensor index_select_raw(const Tensor& x, int64_t dim, const Tensor& index) {
  Shape shape = x.shape();
  shape[dim] = index.numel();
  Tensor out = empty_tensor(shape, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  // index seen as a tensor of out's shape that varies only along dim, so gather does the work.
  Shape strides(shape.size(), 0);
  strides[dim] = index.stride(0);
  gather_stub(x.device(), out, x, dim, make_view(index, shape, strides, index.storage_offset()));
  return out;
}

// The backward of index_select: a zero tensor of `shape` with g's slices added at the indices.
// The gradients of index_select and gather: every input position gets the sum of the gradients of
// the outputs that read it. Each is recorded (create_graph) with the forward op as its own
// gradient, the two being adjoint, so both have derivatives of every order.
Tensor index_add_into_zeros(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& g) {
  Tensor out = zeros(shape, g.options());
  if (g.numel() > 0) index_add_stub(g.device(), out, dim, index, g.contiguous());
  record_linear("index_select_backward", g, out, [dim, si = SavedTensor(index)](const Tensor& u) {
    return index_select(u, dim, si.unpack("index_select_backward"));
  });
  return out;
}
Tensor scatter_add_into_zeros(const Shape& shape, int64_t dim, const Tensor& index, const Tensor& g) {
  Tensor out = zeros(shape, g.options());
  if (index.numel() > 0) scatter_stub(out.device(), ScatterMode::add, out, dim, index, g);
  record_linear("gather_backward", g, out, [dim, si = SavedTensor(index)](const Tensor& u) {
    return gather(u, dim, si.unpack("gather_backward"));
  });
  return out;
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index_in) {
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return gather(f, dim, index_in); }, x);
  check_defined("gather", x);
  Tensor index = index_as_int64("gather", index_in);
  check_same_device("gather", {x, index});
  dim = wrap_dim(dim, x.dim(), "gather");
  if (has_scalar_operand({&x, &index}))
    return gather(with_one_dim(x), 0, with_one_dim(index)).reshape(index.shape());
  check_index_fits("gather", index, x, "input", dim, /*skip_dim=*/true);
  check_index_range("gather", index, x.size(dim), dim_text(x, dim));

  Tensor out = empty_tensor(index.shape(), x.dtype(), x.device());
  if (out.numel() > 0) gather_stub(x.device(), out, x, dim, index);
  if (autograd::any_requires_grad({x})) {
    Shape x_shape = x.shape();
    autograd::record(
        "gather", {x}, out,
        [=, si = SavedTensor(index)](const BackwardArgs& a) {
          return Grads{scatter_add_into_zeros(x_shape, dim, si.unpack("gather"), a.grad())};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_impl("scatter", ScatterMode::assign, self, dim, index, src);
}

Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_impl("scatter_add", ScatterMode::add, self, dim, index, src);
}

namespace {
// The in-place forms: the out-of-place op's result written into self (recorded by apply_inplace).
Tensor& scatter_inplace(Tensor& self, const char* op, ScatterMode mode, int64_t dim, const Tensor& index,
                        const Tensor& src) {
  check_defined(op, src, "src");
  auto result = [&, op, mode](const Tensor& before) {
    return scatter_impl(op, mode, before, dim, index, src);
  };
  auto kernel = [&] {
    // Straight into self when it is one contiguous block (and no operand is 0-d or bfloat16): work
    // in proportion to the index, not a scattered copy of all of self.
    if (self.is_contiguous() && !any_bfloat16(self, src) && self.dim() > 0 && index.dim() > 0 &&
        src.dim() > 0) {
      Tensor idx = index_as_int64(op, index);
      check_same_device(op, {self, idx, src});
      const int64_t d = wrap_dim(dim, self.dim(), op);
      check_scatter_operands(op, self, d, idx, src);
      if (may_overlap(self, idx)) idx = idx.clone();
      if (idx.numel() > 0)
        scatter_stub(self.device(), mode, self, d, idx, may_overlap(self, src) ? src.detach().clone() : src);
      return;
    }
    copy_into(self, result(self.detach()));
  };
  return apply_inplace(self, op, kernel, result, autograd::any_requires_grad({self, src}));
}
}  // namespace

Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_inplace(*this, "scatter_", ScatterMode::assign, dim, index, src);
}
Tensor& Tensor::scatter_(int64_t dim, const Tensor& index, double value) {
  check_defined("scatter_", index, "index");
  return scatter_(dim, index, scalar_tensor(value, options()).expand(index.shape()));
}
Tensor& Tensor::scatter_add_(int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_inplace(*this, "scatter_add_", ScatterMode::add, dim, index, src);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index_in) {
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return index_select(f, dim, index_in); }, x);
  check_defined("index_select", x);
  Tensor index = index_as_int64("index_select", index_in);
  check_same_device("index_select", {x, index});
  dim = wrap_dim(dim, x.dim(), "index_select");
  if (index.dim() > 1) fail("index_select: index must be 0-d or 1-d, got shape {}", shape_str(index.shape()));
  if (x.dim() == 0) {  // as in PyTorch: a 0-d input has one element to select, and the result is 0-d
    if (index.numel() != 1)
      fail("index_select: a 0-d input takes an index of one element, got shape {}", shape_str(index.shape()));
    return index_select(x.reshape({1}), 0, index).reshape({});
  }
  check_index_range("index_select", index, x.size(dim), dim_text(x, dim));
  index = index.reshape({-1}).contiguous();

  Tensor out = index_select_raw(x, dim, index);
  if (autograd::any_requires_grad({x})) {
    Shape x_shape = x.shape();
    autograd::record(
        "index_select", {x}, out,
        [=, si = SavedTensor(index)](const BackwardArgs& a) {
          return Grads{index_add_into_zeros(x_shape, dim, si.unpack("index_select"), a.grad())};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& indices_in, int64_t padding_idx) {
  if (is_bfloat16(weight))
    return via_float32([&](const Tensor& w) { return embedding(w, indices_in, padding_idx); }, weight);
  check_defined("embedding", weight, "weight");
  Tensor indices = index_as_int64("embedding", indices_in);
  check_same_device("embedding", {weight, indices});
  if (weight.dim() != 2)
    fail("embedding: weight must be 2-D [num_embeddings, embedding_dim], got shape {}",
         shape_str(weight.shape()));
  const int64_t rows = weight.size(0), width = weight.size(1);
  if (padding_idx < -1 || padding_idx >= rows)
    fail("embedding: padding_idx {} is out of range for {} embeddings (valid range [0, {}), or -1 for none)",
         padding_idx, rows, rows);
  check_index_range("embedding", indices, rows, fmt::format("a weight of {} rows", rows));

  Tensor flat = indices.reshape({-1}).contiguous();
  Shape out_shape = indices.shape();
  out_shape.push_back(width);
  Tensor out = index_select_raw(weight, 0, flat).view(out_shape);
  if (autograd::any_requires_grad({weight})) {
    Shape w_shape = weight.shape();
    autograd::record(
        "embedding", {weight}, out,
        [=, sf = SavedTensor(flat)](const BackwardArgs& a) {
          Tensor idx = sf.unpack("embedding");
          Tensor g = a.grad().reshape({idx.numel(), width});
          // The padding row is a fixed vector (e.g. zeros for padded tokens): it never learns. A
          // recorded pass (create_graph) masks its rows of g rather than write into a recorded result.
          const bool recording = GradMode::is_enabled();
          if (padding_idx >= 0 && recording)
            g = where((idx == static_cast<double>(padding_idx)).unsqueeze(1), 0.0, g);
          // Rows looked up several times accumulate every lookup's gradient.
          Tensor gw = index_add_into_zeros(w_shape, 0, idx, g);
          if (padding_idx >= 0 && !recording) gw.select(0, padding_idx).zero_();
          return Grads{gw};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor one_hot(const Tensor& indices_in, int64_t num_classes) {
  Tensor indices = index_as_int64("one_hot", indices_in);
  if (num_classes < -1) fail("one_hot: num_classes must be -1 (infer) or >= 0, got {}", num_classes);
  if (num_classes == -1) {
    if (indices.numel() == 0)
      fail("one_hot: cannot infer num_classes from an empty index tensor of shape {}; pass it explicitly",
           shape_str(indices.shape()));
    num_classes = std::max<int64_t>(amax(indices, {}).item<int64_t>() + 1, 0);
  }
  check_index_range("one_hot", indices, num_classes, fmt::format("num_classes {}", num_classes));

  Shape shape = indices.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, TensorOptions(DType::int64).device(indices.device()));
  if (out.numel() > 0) {
    // out[..., indices[...]] = 1: a scatter along the new last dim.
    Tensor column = indices.unsqueeze(-1);
    scatter_stub(out.device(), ScatterMode::assign, out, out.dim() - 1, column,
                 scalar_tensor(1.0, out.options()).expand(column.shape()));
  }
  return out;
}

}  // namespace ember
