// Inverted dropout: while training, each element is kept with probability 1 - p and scaled by
// 1 / (1 - p), so the expected output equals the input and evaluation needs no rescaling.
// The mask comes from ember's Philox generator (bernoulli), so manual_seed makes it repeatable.
// Built from primitives: the gradient is mul's, g * mask / (1 - p).
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

Tensor dropout(const Tensor& x, double p, bool training) {
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return dropout(f, p, training); }, x);
  check_defined("dropout", x);
  if (!(p >= 0.0 && p <= 1.0)) fail("dropout: probability must be in [0, 1], got {}", p);
  if (!is_floating(x.dtype())) fail("dropout: expected a floating-point tensor, got {}", x.dtype());
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;  // every element dropped (x * 0 keeps the graph and NaN, like PyTorch)
  Tensor scaled_mask = bernoulli(x.shape(), 1.0 - p, x.options()) * (1.0 / (1.0 - p));
  return x * scaled_mask;
}

Tensor feature_dropout(const Tensor& x, double p, bool training) {
  check_defined("feature_dropout", x);
  if (x.dim() < 2) fail("feature_dropout: expected input [N, C, *], got shape {}", shape_str(x.shape()));
  if (!(p >= 0.0 && p <= 1.0)) fail("feature_dropout: probability must be in [0, 1], got {}", p);
  if (!is_floating(x.dtype())) fail("feature_dropout: expected a floating-point tensor, got {}", x.dtype());
  if (!training || p == 0.0) return x;
  // one draw per (n, c), broadcast over the channel's elements
  Shape per_channel(x.dim(), 1);
  per_channel[0] = x.size(0);
  per_channel[1] = x.size(1);
  return x * dropout(ones(per_channel, x.options()), p, true);
}

}  // namespace ember
