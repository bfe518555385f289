// Activations composed of other ops (their backward, to any order, is theirs), with PyTorch's
// derivatives at the seams: each branch of a where is written so that the branch not taken has a
// finite derivative (a masked 0 * inf would otherwise poison the gradient with NaN).
#include "ops/internal.h"

namespace ember {

Tensor softplus(const Tensor& x, double beta, double threshold) {
  check_floating("softplus", x);
  if (!(beta > 0)) fail("softplus: beta must be positive, got {}", beta);
  const Tensor bx = beta == 1.0 ? x : x * beta;
  // above the threshold softplus(bx) / beta is x to within rounding, and PyTorch returns x itself
  const Tensor smooth = beta == 1.0 ? softplus(bx) : softplus(bx) / beta;
  return where(bx > threshold, x, smooth);
}

Tensor elu(const Tensor& x, double alpha) {
  check_floating("elu", x);
  // expm1 of min(x, 0): for large positive x, expm1(x) would overflow and its derivative times
  // where's zero mask would be NaN
  return where(x > 0.0, x, expm1(clamp_max(x, 0.0)) * alpha);
}

Tensor mish(const Tensor& x) {
  check_floating("mish", x);
  return x * tanh(softplus(x));
}

Tensor hardtanh(const Tensor& x, double min_val, double max_val) {
  check_floating("hardtanh", x);
  if (!(min_val <= max_val)) fail("hardtanh: min_val {} must not exceed max_val {}", min_val, max_val);
  // slope 1 strictly inside, 0 at and beyond the ends (PyTorch's hardtanh_backward); clamp's own
  // derivative would be 1 at the ends
  return where(logical_and(x > min_val, x < max_val), x, clamp(x, min_val, max_val).detach());
}

}  // namespace ember
