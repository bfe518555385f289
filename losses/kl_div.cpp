// kl_div and Hinton knowledge distillation (kd_loss), as composites: both are a few elementwise
// ops and a class-axis sum, which autograd differentiates at the same cost as a fused version.
#include <cmath>

#include "ember/losses/standard.h"
#include "losses/elementwise_checks.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

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
    // t log t with the convention 0 log 0 = 0 (PyTorch's xlogy). log is taken of 1 where t = 0, so
    // neither the value nor the backward ever sees log(0); negative targets still give NaN.
    pointwise = t * log(where(t == 0.0, 1.0, t)) - t * log_input;
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
  Tensor per_position = kl_div(log_p, q, {KLDivReduction::none, false}).sum({class_dim});
  return per_position.mean() * (T * T);
}

}  // namespace ember::losses
