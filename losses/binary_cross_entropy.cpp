// binary_cross_entropy_with_logits (a stable composite: autograd gives every input its gradient)
// and binary_cross_entropy on probabilities (PyTorch's clamped logs and clamped backward).
#include "ember/losses/standard.h"
#include "losses/elementwise_checks.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        const BCEWithLogitsOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(logits, target, o.weight, o.pos_weight)) {
    BCEWithLogitsOptions o32 = o;
    o32.weight = bf16_upcast(o.weight);
    o32.pos_weight = bf16_upcast(o.pos_weight);
    return via_float32(
        [&](const Tensor& x, const Tensor& t) { return binary_cross_entropy_with_logits(x, t, o32); }, logits,
        target);
  }
  const char* name = "binary_cross_entropy_with_logits";
  Tensor y = check_pair(name, logits, target, "logits");
  check_broadcasts_to(name, "weight", o.weight, logits);
  check_broadcasts_to(name, "pos_weight", o.pos_weight, logits);
  // With sp = log(1 + e^-x) = -log sigmoid(x) and log(1 - sigmoid(x)) = -x - sp:
  //   loss = (1 - y) x + (1 + (pos_weight - 1) y) sp,
  // where softplus is evaluated as max(-x, 0) + log1p(e^-|x|), finite for every finite x.
  Tensor sp = softplus(-logits);
  Tensor loss = (1.0 - y) * logits;
  if (o.pos_weight.defined()) {
    loss = loss + ((o.pos_weight.to(logits.dtype()) - 1.0) * y + 1.0) * sp;
  } else {
    loss = loss + sp;
  }
  if (o.weight.defined()) loss = loss * o.weight.to(logits.dtype());
  return reduce_loss(loss, o.reduction);
}

Tensor binary_cross_entropy(const Tensor& probs, const Tensor& target, const BCEOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(probs, target, o.weight)) {
    BCEOptions o32 = o;
    o32.weight = bf16_upcast(o.weight);
    return via_float32([&](const Tensor& p, const Tensor& t) { return binary_cross_entropy(p, t, o32); },
                       probs, target);
  }
  const char* name = "binary_cross_entropy";
  Tensor y = check_pair(name, probs, target, "probs");
  check_broadcasts_to(name, "weight", o.weight, probs);
  if (o.weight.defined() && o.weight.requires_grad() && GradMode::is_enabled())
    fail("{}: weight requires grad, but it is a constant here; pass weight.detach()", name);
  if (probs.numel() > 0 && ((probs < 0.0) || (probs > 1.0) || isnan(probs)).any().item<bool>())
    fail(
        "{}: every element of probs must lie in [0, 1] (got a value outside, or NaN); for raw scores use "
        "binary_cross_entropy_with_logits",
        name);
  const Tensor w = o.weight.defined() ? cast_raw(o.weight.detach(), probs.dtype()) : Tensor();
  Tensor loss;
  {
    NoGradGuard no_grad;
    // Both logs are clamped at -100, so p = 0 or 1 gives a finite loss (PyTorch's convention).
    Tensor log_p = clamp_min(log(probs), -100.0), log_q = clamp_min(log1p(-probs), -100.0);
    loss = -(y * log_p + (1.0 - y) * log_q);
    if (w.defined()) loss = loss * w;
  }
  if (autograd::any_requires_grad({probs, y})) {
    autograd::record(
        name, {probs, y}, loss,
        [w, ps = autograd::SavedTensor(probs),
         ys = autograd::SavedTensor(y)](const autograd::BackwardArgs& a) {
          Tensor p = ps.unpack("binary_cross_entropy"), t = ys.unpack("binary_cross_entropy");
          Tensor g = w.defined() ? a.grad() * w : a.grad();
          Tensor gp, gt;
          // PyTorch's backward: (p - y) / max(p (1 - p), 1e-12), finite at p = 0 and 1.
          if (a.needs(0)) gp = autograd::sum_to(g * (p - t) / clamp_min(p * (1.0 - p), 1e-12), p.shape());
          // d/dy = log(1 - p) - log(p), *unclamped*, as PyTorch (-logit(p)): +-inf at
          // p = 0 and 1, 115.13 at p = 1e-50 (the clamps belong to the loss's value only)
          if (a.needs(1)) gt = autograd::sum_to(g * (log1p(-p) - log(p)), t.shape());
          return std::vector<Tensor>{gp, gt};
        },
        autograd::DoubleBackward::supported);
  }
  return reduce_loss(loss, o.reduction);
}

}  // namespace ember::losses
