// nll_loss: -weight[y] * log_probs[y] per position; the backward scatters -weight[y] * g.
#include "ember/losses/standard.h"
#include "losses/class_layout.h"
#include "losses/class_nll.h"
#include "losses/kernels/cross_entropy.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

EMBER_DEFINE_STUB(nll_forward_stub, NLLForwardFn);
EMBER_DEFINE_STUB(nll_backward_stub, NLLBackwardFn);

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const NLLOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(log_probs, o.weight)) {
    NLLOptions o32 = o;
    o32.weight = bf16_upcast(o.weight);
    return via_float32([&](const Tensor& x, const Tensor& t) { return nll_loss(x, t, o32); }, log_probs,
                       target);
  }
  const ClassLayout layout = class_layout("nll_loss", log_probs, "log_probs");
  check_class_target("nll_loss", layout, log_probs, target);
  const Tensor weight = class_weight("nll_loss", o.weight, layout.classes, log_probs);
  const ClassTargetParams params{o.ignore_index, true, 0.0};
  const Tensor x = log_probs.detach().contiguous().view(layout.blocked());
  const Tensor y = target.contiguous();
  Tensor loss = empty_tensor(layout.target_shape, log_probs.dtype(), log_probs.device());
  Tensor denominator = empty_tensor({}, log_probs.dtype(), log_probs.device());
  int64_t bad = nll_forward_stub(log_probs.device(), loss, denominator, x, y, weight, params);
  if (bad >= 0) fail_bad_target("nll_loss", y, bad, layout.classes, true, o.ignore_index);

  if (autograd::any_requires_grad({log_probs})) {
    Shape blocked = layout.blocked(), shape = log_probs.shape();
    DType dtype = log_probs.dtype();
    autograd::record(
        "nll_loss", {log_probs}, loss,
        [=, ys = autograd::SavedTensor(y)](const autograd::BackwardArgs& a) {
          Tensor yv = ys.unpack("nll_loss");
          if (GradMode::is_enabled()) {  // create_graph: -g Q, linear in g (Q: class_nll.h)
            Tensor q = class_target_coefficients(layout, yv, weight, params, a.grad());
            return std::vector<Tensor>{
                (a.grad().reshape({layout.outer, 1, layout.inner}) * q * -1.0).view(shape)};
          }
          Tensor grad = empty_tensor(blocked, dtype, yv.device());
          nll_backward_stub(yv.device(), grad, cast_raw(a.grad(), dtype).contiguous(), yv, weight, params);
          return std::vector<Tensor>{grad.view(shape)};
        },
        autograd::DoubleBackward::supported);
  }
  if (o.reduction == Reduction::mean) return loss.sum() / denominator;
  return reduce_loss(loss, o.reduction);
}

}  // namespace ember::losses
