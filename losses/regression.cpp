// mse_loss, l1_loss, smooth_l1_loss, huber_loss: short composites of elementwise ops, so autograd
// gives both the input and the target their gradients.
#include <cmath>

#include "ember/losses/standard.h"
#include "losses/elementwise_checks.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

namespace {
// quadratic * d^2 where |d| < threshold, linear * (|d| - threshold / 2) elsewhere: smooth_l1_loss
// and huber_loss, which differ only in the scale of each piece.
Tensor quadratic_then_linear(const Tensor& d, double threshold, double quadratic, double linear) {
  Tensor ad = abs(d);
  Tensor outer = ad - 0.5 * threshold;
  return where(ad < threshold, square(d) * quadratic, linear == 1.0 ? outer : outer * linear);
}
}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, const MSEOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target)) {
    return via_float32([&](const Tensor& x, const Tensor& t) { return mse_loss(x, t, o); }, input, target);
  }
  Tensor y = check_pair("mse_loss", input, target, "input");
  return reduce_loss(square(input - y), o.reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const L1Options& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target)) {
    return via_float32([&](const Tensor& x, const Tensor& t) { return l1_loss(x, t, o); }, input, target);
  }
  Tensor y = check_pair("l1_loss", input, target, "input");
  return reduce_loss(abs(input - y), o.reduction);  // gradient sign(x - y): 0 where they are equal
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1Options& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target)) {
    return via_float32([&](const Tensor& x, const Tensor& t) { return smooth_l1_loss(x, t, o); }, input,
                       target);
  }
  Tensor y = check_pair("smooth_l1_loss", input, target, "input");
  if (!(o.beta >= 0.0) || !std::isfinite(o.beta))
    fail("smooth_l1_loss: beta must be a finite number >= 0, got {}", o.beta);
  // beta = 0 would divide by zero in the quadratic branch; the limit is exactly l1_loss.
  if (o.beta == 0.0) return l1_loss(input, y, {o.reduction});
  // 0.5 d^2 / beta inside (-beta, beta), |d| - beta / 2 outside: the two meet with equal value
  // and slope at |d| = beta.
  return reduce_loss(quadratic_then_linear(input - y, o.beta, 0.5 / o.beta, 1.0), o.reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target)) {
    return via_float32([&](const Tensor& x, const Tensor& t) { return huber_loss(x, t, o); }, input, target);
  }
  Tensor y = check_pair("huber_loss", input, target, "input");
  if (!(o.delta > 0.0) || !std::isfinite(o.delta))
    fail("huber_loss: delta must be a finite number > 0, got {}", o.delta);
  // delta * smooth_l1 with beta = delta, written out as PyTorch computes it: 0.5 d^2 inside
  // (-delta, delta), delta (|d| - delta / 2) outside.
  return reduce_loss(quadratic_then_linear(input - y, o.delta, 0.5, o.delta), o.reduction);
}

}  // namespace ember::losses
