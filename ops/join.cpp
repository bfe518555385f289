// Joining and splitting: cat, stack (copies, with a backward that hands each input its slice of
// the gradient) and split, chunk (views, with one backward for all pieces: their gradients side by
// side again, a single pass, where one narrow backward per piece would zero-fill and copy a whole
// input-sized gradient for each piece and then add them).
#include "ops/internal.h"

namespace ember {

using autograd::BackwardArgs;
using Grads = std::vector<Tensor>;

namespace {

// Common checks for a list of tensors to join; returns the promoted dtype of them all.
DType check_join_list(std::string_view op, const std::vector<Tensor>& tensors) {
  if (tensors.empty()) fail("{}: expects a non-empty list of tensors", op);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensors[i].defined()) fail("{}: tensor {} is undefined", op, i);
  check_same_device(op, tensors);
  DType dtype = tensors[0].dtype();
  for (const Tensor& t : tensors) dtype = promote_types(dtype, t.dtype());
  return dtype;
}

// PyTorch (and NumPy before it) let cat skip 1-D empty tensors whatever the other shapes are, a
// convenience for building a result up from `empty({0})`.
bool skipped_in_cat(const Tensor& t) { return t.dim() == 1 && t.numel() == 0; }

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  DType dtype = check_join_list("cat", tensors);
  size_t ref = 0;  // the tensor whose shape the others must match
  while (ref + 1 < tensors.size() && skipped_in_cat(tensors[ref])) ++ref;
  const Tensor& first = tensors[ref];
  if (first.dim() == 0) fail("cat: tensor {} is 0-d; 0-d tensors cannot be concatenated (use stack)", ref);
  dim = wrap_dim(dim, first.dim(), "cat");

  Shape shape = first.shape();
  shape[dim] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (skipped_in_cat(t) && i != ref) continue;
    bool same = t.dim() == first.dim();
    for (int64_t d = 0; same && d < t.dim(); ++d) same = d == dim || t.size(d) == first.size(d);
    if (!same)
      fail("cat: tensor {} has shape {} but tensor {} has shape {}; shapes must match except in dim {}", i,
           shape_str(t.shape()), ref, shape_str(first.shape()), dim);
    shape[dim] += t.size(dim);
  }

  Tensor out = empty_tensor(shape, dtype, first.device());
  std::vector<int64_t> starts(tensors.size(), -1);  // -1: skipped
  int64_t start = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (skipped_in_cat(tensors[i]) && i != ref) continue;
    int64_t n = tensors[i].size(dim);
    starts[i] = start;
    if (n > 0) copy_into(out.narrow(dim, start, n), tensors[i]);
    start += n;
  }

  if (autograd::any_requires_grad(tensors)) {
    std::vector<int64_t> sizes;
    for (const Tensor& t : tensors) sizes.push_back(t.dim() > dim ? t.size(dim) : 0);
    // (a promoted gradient slice goes back to its input's dtype in the engine)
    autograd::record(
        "cat", tensors, out,
        [=](const BackwardArgs& a) {
          Grads grads(starts.size());
          for (size_t i = 0; i < starts.size(); ++i)
            if (a.needs(i) && starts[i] >= 0) grads[i] = a.grad().narrow(dim, starts[i], sizes[i]);
          return grads;
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  DType dtype = check_join_list("stack", tensors);
  const Shape& shape0 = tensors[0].shape();
  for (size_t i = 1; i < tensors.size(); ++i)
    if (tensors[i].shape() != shape0)
      fail("stack: tensor {} has shape {} but tensor 0 has shape {}; all must have the same shape", i,
           shape_str(tensors[i].shape()), shape_str(shape0));
  dim = wrap_dim(dim, static_cast<int64_t>(shape0.size()) + 1, "stack");

  Shape shape = shape0;
  shape.insert(shape.begin() + dim, static_cast<int64_t>(tensors.size()));
  Tensor out = empty_tensor(shape, dtype, tensors[0].device());
  for (size_t i = 0; i < tensors.size(); ++i) copy_into(out.select(dim, static_cast<int64_t>(i)), tensors[i]);

  if (autograd::any_requires_grad(tensors)) {
    const size_t n = tensors.size();
    autograd::record(
        "stack", tensors, out,
        [=](const BackwardArgs& a) {
          Grads grads(n);
          for (size_t i = 0; i < n; ++i)
            if (a.needs(i)) grads[i] = a.grad().select(dim, static_cast<int64_t>(i));
          return grads;
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

namespace {

// Records `pieces`, views of x taken without autograd, as the outputs of one node whose backward
// joins their gradients along dim with `join` (cat for split's pieces, stack for unbind's slices);
// a piece that got no gradient contributes zeros of its shape.
void record_pieces(const char* op, const Tensor& x, std::vector<Tensor>& pieces, int64_t dim,
                   Tensor (*join)(const std::vector<Tensor>&, int64_t)) {
  if (pieces.empty() || !autograd::any_requires_grad({x})) return;
  std::vector<Tensor*> outputs;
  std::vector<Shape> shapes;
  for (Tensor& p : pieces) {
    outputs.push_back(&p);
    shapes.push_back(p.shape());
  }
  autograd::record(
      op, {x}, outputs,
      [dim, shapes, join, options = x.options()](const BackwardArgs& a) {
        std::vector<Tensor> parts;
        for (size_t i = 0; i < shapes.size(); ++i)
          parts.push_back(a.grad(i).defined() ? a.grad(i) : zeros(shapes[i], options));
        return Grads{join(parts, dim)};
      },
      autograd::DoubleBackward::supported);
}

}  // namespace

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  check_defined("split", x);
  if (x.dim() == 0) fail("split: cannot split a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  if (split_size <= 0) fail("split: split_size must be positive, got {}", split_size);
  const int64_t n = x.size(dim);
  if (n == 0) return {x.narrow(dim, 0, 0)};
  std::vector<Tensor> pieces;
  {
    NoGradGuard views_only;  // recorded below, all pieces by one node
    for (int64_t start = 0; start < n; start += split_size)
      pieces.push_back(x.narrow(dim, start, std::min(split_size, n - start)));
  }
  record_pieces("split", x, pieces, dim, cat);
  return pieces;
}

std::vector<Tensor> unbind(const Tensor& x, int64_t dim) {
  check_defined("unbind", x);
  if (x.dim() == 0) fail("unbind: cannot unbind a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "unbind");
  const int64_t n = x.size(dim);
  // Recorded below, all slices by one node: a recorded select per slice would give each its own
  // backward, a full-size zero tensor with one slice filled in (quadratic for a loop over slices).
  std::vector<Tensor> slices;
  {
    NoGradGuard views_only;
    for (int64_t i = 0; i < n; ++i) slices.push_back(x.select(dim, i));
  }
  record_pieces("unbind", x, slices, dim, stack);
  return slices;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  check_defined("chunk", x);
  if (x.dim() == 0) fail("chunk: cannot chunk a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "chunk");
  if (chunks <= 0) fail("chunk: chunks must be positive, got {}", chunks);
  const int64_t n = x.size(dim);
  // An empty dim still yields `chunks` (empty) pieces, as in PyTorch.
  if (n == 0) {
    std::vector<Tensor> pieces;
    for (int64_t i = 0; i < chunks; ++i) pieces.push_back(x.narrow(dim, 0, 0));
    return pieces;
  }
  // Pieces of ceil(n / chunks); so there may be fewer than `chunks` of them (chunk(5 rows, 4)
  // gives 2, 2, 1), again as in PyTorch.
  return split(x, (n + chunks - 1) / chunks, dim);
}

}  // namespace ember
