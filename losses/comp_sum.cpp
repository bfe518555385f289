// The comp-sum family (Mao, Mohri, Zhong, ICML 2023), as functions of the fused per-position
// cross-entropy nll = -log p_y:  l_tau = (exp((1 - tau) nll) - 1) / (1 - tau).
// Autograd multiplies the cross-entropy backward (p - onehot) by dl/dnll = p_y^(tau - 1), which is
// exactly the family's gradient, so no kernel of their own is needed.
#include <cmath>

#include "ember/losses/standard.h"
#include "losses/class_nll.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {
namespace {
Tensor nll_per_position(std::string_view loss, const Tensor& logits, const Tensor& target) {
  return class_nll(loss, logits, target, Tensor(), ClassTargetParams{0, false, 0.0}).loss;
}
}  // namespace

Tensor generalized_cross_entropy(const Tensor& logits, const Tensor& target, double q) {
  if (is_bfloat16(logits))  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
    return via_float32([&](const Tensor& x, const Tensor& t) { return generalized_cross_entropy(x, t, q); },
                       logits, target);
  if (!(q > 0.0) || !std::isfinite(q))
    fail("generalized_cross_entropy: q must be a positive finite number, got {} (q -> 0 is cross_entropy)",
         q);
  Tensor nll = nll_per_position("generalized_cross_entropy", logits, target);
  return (-expm1(nll * -q) / q).mean();  // (1 - p_y^q) / q, tau = 1 + q; expm1 keeps small losses exact
}

Tensor mae_loss(const Tensor& logits, const Tensor& target) {
  if (is_bfloat16(logits))  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
    return via_float32([&](const Tensor& x, const Tensor& t) { return mae_loss(x, t); }, logits, target);
  Tensor nll = nll_per_position("mae_loss", logits, target);
  return (-expm1(-nll)).mean();  // 1 - p_y, tau = 2
}

Tensor sum_exponential_loss(const Tensor& logits, const Tensor& target) {
  if (is_bfloat16(logits))  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
    return via_float32([&](const Tensor& x, const Tensor& t) { return sum_exponential_loss(x, t); }, logits,
                       target);
  Tensor nll = nll_per_position("sum_exponential_loss", logits, target);
  return expm1(nll).mean();  // 1 / p_y - 1, tau = 0
}

}  // namespace ember::losses
