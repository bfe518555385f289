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

Tensor relu6(const Tensor& x) {
  check_floating("relu6", x);
  return hardtanh(x, 0.0, 6.0);  // PyTorch's relu6 is this hardtanh, slope 0 at 0 and 6
}

Tensor selu(const Tensor& x) {
  check_floating("selu", x);
  // the fixed point of Klambauer et al. (2017): zero mean and unit variance are preserved
  constexpr double alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946;
  return elu(x, alpha) * scale;
}

Tensor celu(const Tensor& x, double alpha) {
  check_floating("celu", x);
  if (alpha == 0.0) fail("celu: alpha must not be 0");
  return where(x > 0.0, x, expm1(clamp_max(x, 0.0) / alpha) * alpha);
}

Tensor hardsigmoid(const Tensor& x) {
  check_floating("hardsigmoid", x);
  return hardtanh(x, -3.0, 3.0) / 6.0 + 0.5;  // slope 1/6 strictly inside (-3, 3), as PyTorch's
}

Tensor hardswish(const Tensor& x) {
  check_floating("hardswish", x);
  // x relu6(x + 3) / 6 piecewise, so that the slopes at the seams are PyTorch's: the quadratic's
  // -1/2 at -3 and the line's 1 at 3 (the product rule over relu6 would give 0 at -3)
  return where(x < -3.0, x * 0.0, where(x < 3.0, x * (x + 3.0) / 6.0, x));
}

Tensor softsign(const Tensor& x) {
  check_floating("softsign", x);
  return x / (abs(x) + 1.0);
}

Tensor glu(const Tensor& x, int64_t dim) {
  check_floating("glu", x);
  if (x.dim() == 0) fail("glu: expected a tensor with at least one dim, got a scalar");
  const int64_t d = wrap_dim(dim, x.dim(), "glu");
  if (x.size(d) % 2 != 0)
    fail("glu: the halved dim {} of input {} must have an even size, got {}", d, shape_str(x.shape()),
         x.size(d));
  const int64_t half = x.size(d) / 2;
  return x.narrow(d, 0, half) * sigmoid(x.narrow(d, half, half));
}

Tensor prelu(const Tensor& x, const Tensor& weight) {
  check_floating("prelu", x);
  check_defined("prelu", weight, "weight");
  check_same_device("prelu", {x, weight});
  // one slope per channel: dim 1, and a single "channel" for inputs of fewer than two dims
  const int64_t channels = x.dim() >= 2 ? x.size(1) : 1;
  if (weight.dim() > 1 || (weight.numel() != 1 && weight.numel() != channels))
    fail("prelu: weight {} must hold 1 slope or one per channel ({}, dim 1 of input {})",
         shape_str(weight.shape()), channels, shape_str(x.shape()));
  // [C, 1, ...]: one slope per channel broadcast over the dims after it; a scalar below 2-D
  Shape slope_shape;
  if (x.dim() >= 2) {
    slope_shape.assign(x.dim() - 1, 1);
    slope_shape[0] = weight.numel();
  }
  const Tensor slope = weight.reshape(slope_shape);
  // slope w at x = 0, as PyTorch's prelu backward (x > 0 ? g : w g)
  return where(x > 0.0, x, x * slope);
}

}  // namespace ember
