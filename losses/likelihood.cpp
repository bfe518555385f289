// poisson_nll_loss and gaussian_nll_loss: composites of elementwise ops, written as torch 1.13
// writes them, so autograd gives the input, the target and the variance their gradients (to any
// order), on every backend.
#include <cmath>

#include "ember/losses/standard.h"
#include "losses/elementwise_checks.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

namespace {

void check_eps(const char* loss, double eps) {
  if (!(eps >= 0.0) || !std::isfinite(eps)) fail("{}: eps must be a finite number >= 0, got {}", loss, eps);
}

// PyTorch's accepted variance shapes: input's own; input's minus the last dim (one variance per
// example, given a last dim of 1 here); or input's with the last dim 1. Returns var in input's dtype.
Tensor variance_for(const char* loss, const Tensor& input, const Tensor& var) {
  check_defined(loss, var, "var");
  check_same_device(loss, {input, var});
  if (!var.is_floating_point()) fail("{}: var must be floating point, got {}", loss, var.dtype());
  const Shape& in = input.shape();
  const Shape& v = var.shape();
  // Python's shape[:-1], which is () for a 0-d tensor as for a 1-D one
  auto leading = [](const Shape& s) { return s.empty() ? s : Shape(s.begin(), s.end() - 1); };
  Tensor out = var;
  if (v != in) {
    if (leading(in) == v)
      out = var.unsqueeze(var.dim());
    else if (v.empty() || leading(in) != leading(v) || v.back() != 1)
      fail(
          "{}: var {} does not fit input {}: expected the input's shape, that shape with the last dim 1, or "
          "that shape without the last dim",
          loss, shape_str(v), shape_str(in));
  }
  if (var.numel() > 0 && (var < 0.0).any().item<bool>())
    fail("{}: var has a negative entry; every variance must be >= 0", loss);
  return out.dtype() == input.dtype() ? out : out.to(input.dtype());
}

}  // namespace

Tensor poisson_nll_loss(const Tensor& input, const Tensor& target, const PoissonNLLOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target))
    return via_float32([&](const Tensor& x, const Tensor& t) { return poisson_nll_loss(x, t, o); }, input,
                       target);
  const char* name = "poisson_nll_loss";
  Tensor y = check_pair(name, input, target, "input");
  check_eps(name, o.eps);
  // the rate's negative log-likelihood without the log(y!) term, which the input does not change
  Tensor loss = o.log_input ? exp(input) - y * input : input - y * log(input + o.eps);
  if (o.full) {
    // Stirling's log(y!) ~ y log y - y + log(2 pi y) / 2, added where y > 1 (PyTorch's mask).
    // Evaluated at max(y, 1), so the branch not taken is finite: its gradient is 0 where y = 0
    // (PyTorch's is NaN there, from the 0 * -inf of the masked y log y).
    Tensor ym = clamp_min(y, 1.0);
    Tensor stirling = ym * log(ym) - ym + 0.5 * log(ym * (2 * M_PI));
    loss = loss + where(y > 1.0, stirling, 0.0);
  }
  return reduce_loss(loss, o.reduction);
}

Tensor gaussian_nll_loss(const Tensor& input, const Tensor& target, const Tensor& var,
                         const GaussianNLLOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target, var))
    return via_float32(
        [&](const Tensor& x, const Tensor& t, const Tensor& v) { return gaussian_nll_loss(x, t, v, o); },
        input, target, var);
  const char* name = "gaussian_nll_loss";
  check_defined(name, input, "input");
  check_defined(name, target, "target");
  check_same_device(name, {input, target});
  if (!input.is_floating_point())
    fail("{}: input must be floating point (float32 or float64), got {}", name, input.dtype());
  if (!target.is_floating_point()) fail("{}: target must be floating point, got {}", name, target.dtype());
  // the target broadcasts against the input, as in PyTorch (a last dim of 1 shares one target)
  broadcast_shapes(input.shape(), target.shape(), name);
  check_eps(name, o.eps);
  const Tensor y = target.dtype() == input.dtype() ? target : target.to(input.dtype());
  const Tensor v = variance_for(name, input, var);
  // PyTorch clamps var in place under no_grad: the value is at least eps, but the gradient is that
  // of the unclamped var. v - v.detach() adds exactly 0 to the value and the identity to the
  // gradient (taken only where v < eps, so an infinite var stays inf rather than inf - inf).
  const Tensor clamped = where(v < o.eps, v - v.detach() + o.eps, v);
  Tensor loss = 0.5 * (log(clamped) + square(input - y) / clamped);
  if (o.full) loss = loss + 0.5 * std::log(2 * M_PI);
  return reduce_loss(loss, o.reduction);
}

}  // namespace ember::losses
