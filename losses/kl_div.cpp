// kl_div and Hinton knowledge distillation (kd_loss), as composites: both are a few elementwise
// ops and a class-axis sum, which autograd differentiates at the same cost as a fused version
// (kl_div's pointwise term has its own backward only to give PyTorch's target gradient).
#include <cmath>

#include "ember/losses/standard.h"
#include "losses/elementwise_checks.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

namespace {

// t log t - t log_input with 0 log 0 = 0, differentiated by autograd: log is taken of 1 where
// t = 0, so d/dt there is 1 - log_input (the derivative with the t log t term dropped). kd_loss
// keeps this: its target is a softmax, whose backward multiplies d/dt by t, so a probability
// that underflowed to 0 contributes its true limit, 0, instead of PyTorch's NaN.
Tensor kl_pointwise_zero_safe(const Tensor& log_input, const Tensor& t) {
  return t * log(where(t == 0.0, 1.0, t)) - t * log_input;
}

// The same value with PyTorch's gradients (xlogy(t, t) - t * log_input, torch 1.13):
//   d/dlog_input = -t,   d/dt = [t != 0] log t + t / t - log_input,
// so d/dt is NaN where t = 0 (0 / 0: the one-sided derivative is -inf) and for t < 0.
Tensor kl_pointwise(const Tensor& log_input, const Tensor& t) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = kl_pointwise_zero_safe(log_input.detach(), t.detach());
  }
  if (autograd::any_requires_grad({log_input, t})) {
    autograd::record(
        "kl_div", {log_input, t}, out,
        [xs = autograd::SavedTensor(log_input),
         ts = autograd::SavedTensor(t)](const autograd::BackwardArgs& a) {
          Tensor x = xs.unpack("kl_div"), tv = ts.unpack("kl_div");
          Tensor g = a.grad().to(tv.dtype());
          Tensor gx, gt;
          if (a.needs(0)) gx = -(g * tv);
          if (a.needs(1)) gt = where(tv == 0.0, 0.0, g * log(tv)) + g * tv / tv - g * x;
          return std::vector<Tensor>{gx, gt};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace

Tensor kl_div(const Tensor& log_input, const Tensor& target, const KLDivOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(log_input, target)) {
    return via_float32([&](const Tensor& x, const Tensor& t) { return kl_div(x, t, o); }, log_input, target);
  }
  Tensor t = check_pair("kl_div", log_input, target, "log_input");
  Tensor pointwise;
  if (o.log_target) {
    pointwise = exp(t) * (t - log_input);
  } else {
    // t log t with the convention 0 log 0 = 0 (PyTorch's xlogy); negative targets give NaN
    pointwise = kl_pointwise(log_input, t);
  }
  switch (o.reduction) {
    case KLDivReduction::none:
      return pointwise;
    case KLDivReduction::mean:
      return pointwise.mean();
    case KLDivReduction::sum:
      return pointwise.sum();
    case KLDivReduction::batchmean:
      return log_input.dim() == 0 ? pointwise.sum()
                                  : pointwise.sum() / static_cast<double>(log_input.size(0));
  }
  fail("kl_div: unknown reduction {}", static_cast<int>(o.reduction));
}

Tensor kd_loss(const Tensor& student_logits, const Tensor& teacher_logits, const KDOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(student_logits, teacher_logits)) {
    return via_float32([&](const Tensor& x, const Tensor& t) { return kd_loss(x, t, o); }, student_logits,
                       teacher_logits);
  }
  Tensor teacher = check_pair("kd_loss", student_logits, teacher_logits, "student_logits");
  if (student_logits.dim() == 0)
    fail("kd_loss: logits must be [N, C], [N, C, d1, ...] or [C], got a 0-d tensor");
  if (!(o.temperature > 0.0) || !std::isfinite(o.temperature))
    fail("kd_loss: temperature must be a positive finite number, got {}", o.temperature);
  const double T = o.temperature;
  const int64_t class_dim = student_logits.dim() == 1 ? 0 : 1;
  Tensor log_p = log_softmax(student_logits / T, class_dim);
  Tensor q = softmax(teacher / T, class_dim);
  // KL per position, averaged over positions (batchmean for [N, C]); the T^2 keeps the gradient's
  // scale independent of T (Hinton et al.), since d/ds = (p - q) / T.
  Tensor per_position = kl_pointwise_zero_safe(log_p, q).sum({class_dim});
  return per_position.mean() * (T * T);
}

}  // namespace ember::losses
