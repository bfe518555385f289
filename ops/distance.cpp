// cosine_similarity and pairwise_distance: composites of elementwise ops, sums and norm, so their
// backward (and every higher derivative) is that of the ops they are made of, on every backend.
#include <cmath>

#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

namespace {

// Both operands defined and floating, on one device, with shapes that broadcast; returns that shape.
Shape check_operands(const char* op, const Tensor& a, const Tensor& b) {
  check_floating(op, a);
  check_floating(op, b);
  check_same_device(op, {a, b});
  return broadcast_shapes(a.shape(), b.shape(), op);
}

}  // namespace

// torch 1.13's formula, term by term: sum((a / |a|) (b / |b|)) with each squared norm clamped to at
// least eps^2, which keeps the result in [-1, 1] and finite where a product of norms would overflow.
Tensor cosine_similarity(const Tensor& a, const Tensor& b, int64_t dim, double eps) {
  if (any_bfloat16(a, b))  // in float32 (the sums too), rounded once, as PyTorch computes it
    return via_float32([&](const Tensor& x, const Tensor& y) { return cosine_similarity(x, y, dim, eps); }, a,
                       b);
  const char* op = "cosine_similarity";
  const Shape shape = check_operands(op, a, b);
  if (!(eps >= 0) || !std::isfinite(eps)) fail("{}: eps must be a finite number >= 0, got {}", op, eps);
  // dim counts in the broadcast shape (a [D] against b [N, D] with dim 1 is the rows of b)
  const int64_t d = wrap_dim(dim, static_cast<int64_t>(shape.size()), op);
  auto unit = [&](const Tensor& x) {
    Tensor squared = sum(square(x.expand(shape)), {d}, /*keepdim=*/true);
    // PyTorch clamps the squared norm in place under no_grad: the value is clamped, but the gradient
    // is that of the unclamped norm (so it is not zero for a tiny vector). s - s.detach() adds
    // exactly 0 to the value and the identity to the gradient (taken only where s is finite).
    const double floor = eps * eps;
    Tensor clamped = where(squared < floor, squared - squared.detach() + floor, squared);
    return x.expand(shape) / sqrt(clamped);
  };
  return sum(unit(a) * unit(b), {d});
}

// torch.nn.functional.pairwise_distance: norm(a - b + eps) along the broadcast shape's last dim
// (the eps keeps the norm's gradient defined where a == b).
Tensor pairwise_distance(const Tensor& a, const Tensor& b, double p, double eps, bool keepdim) {
  if (any_bfloat16(a, b))  // in float32, rounded once
    return via_float32(
        [&](const Tensor& x, const Tensor& y) { return pairwise_distance(x, y, p, eps, keepdim); }, a, b);
  const char* op = "pairwise_distance";
  const Shape shape = check_operands(op, a, b);
  // norm's p: PyTorch also takes a negative finite p, (sum |d|^p)^(1/p), which norm does not
  if (std::isnan(p) || (p < 0 && !std::isinf(p))) fail("{}: p must be > 0, 0, inf or -inf; got {}", op, p);
  if (!std::isfinite(eps)) fail("{}: eps must be finite, got {}", op, eps);
  // two 0-d operands: the "last dim" of a 0-d tensor is the tensor itself (PyTorch's dim -1 of a
  // scalar), and keepdim leaves it 0-d
  const Shape dims = shape.empty() ? Shape{} : Shape{-1};
  return norm(a - b + eps, p, dims, keepdim);
}

}  // namespace ember
