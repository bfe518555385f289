// cross_entropy: class-id targets go through one fused custom function (a log-sum-exp pass per row
// forward, softmax - onehot backward); class-probability targets are a short composite.
#include <cmath>

#include "ember/losses/standard.h"
#include "losses/class_layout.h"
#include "losses/class_nll.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

EMBER_DEFINE_STUB(cross_entropy_forward_stub, CrossEntropyForwardFn);
EMBER_DEFINE_STUB(cross_entropy_backward_stub, CrossEntropyBackwardFn);

using autograd::BackwardArgs;
using autograd::SavedTensor;

ClassNLL class_nll(std::string_view loss, const Tensor& logits, const Tensor& target, const Tensor& weight_in,
                   const ClassTargetParams& params) {
  const ClassLayout layout = class_layout(loss, logits, "logits");
  check_class_target(loss, layout, logits, target);
  const Tensor weight = class_weight(loss, weight_in, layout.classes, logits);
  const Tensor x = logits.detach().contiguous().view(layout.blocked());
  const Tensor y = target.contiguous();
  Tensor out = empty_tensor(layout.target_shape, logits.dtype(), logits.device());
  Tensor lse = empty_tensor({layout.rows()}, logits.dtype(), logits.device());
  Tensor denominator = empty_tensor({}, logits.dtype(), logits.device());
  int64_t bad = cross_entropy_forward_stub(logits.device(), out, lse, denominator, x, y, weight, params);
  if (bad >= 0) fail_bad_target(loss, y, bad, layout.classes, params.has_ignore_index, params.ignore_index);

  if (autograd::any_requires_grad({logits})) {
    Shape shape = logits.shape();
    autograd::record(
        "cross_entropy", {logits}, out,
        [=, xs = SavedTensor(x), ys = SavedTensor(y), ls = SavedTensor(lse)](const BackwardArgs& a) {
          Tensor xv = xs.unpack("cross_entropy");
          Tensor grad = empty_tensor(xv.shape(), xv.dtype(), xv.device());
          Tensor g = cast_raw(a.grad(), xv.dtype()).contiguous();
          cross_entropy_backward_stub(xv.device(), grad, g, xv, ls.unpack("cross_entropy"),
                                      ys.unpack("cross_entropy"), weight, params);
          return std::vector<Tensor>{grad.view(shape)};
        });
  }
  return {out, denominator};
}

namespace {

Tensor reduce_class_loss(const ClassNLL& r, Reduction reduction) {
  if (reduction == Reduction::mean) return r.loss.sum() / r.denominator;
  return reduce_loss(r.loss, reduction);
}

// Soft targets: -sum_c w_c t_c log_softmax(x)_c per position, with t smoothed towards uniform;
// the mean divides by the number of positions (weights do not enter the divisor here).
Tensor cross_entropy_probabilities(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& o) {
  const ClassLayout layout = class_layout("cross_entropy", logits, "logits");
  check_same_device("cross_entropy", {logits, target});
  if (o.ignore_index >= 0)
    fail(
        "cross_entropy: ignore_index {} applies to class-id targets only; target has the logits' shape {} "
        "and so holds class probabilities",
        o.ignore_index, shape_str(logits.shape()));
  const int64_t class_dim = logits.dim() == 1 ? 0 : 1;
  Tensor t = target.dtype() == logits.dtype() ? target : target.to(logits.dtype());
  if (o.label_smoothing > 0)
    t = t * (1.0 - o.label_smoothing) + o.label_smoothing / static_cast<double>(layout.classes);
  Tensor terms = log_softmax(logits, class_dim) * t;
  if (o.weight.defined()) {
    Tensor w = class_weight("cross_entropy", o.weight, layout.classes, logits);
    Shape wshape(logits.dim(), 1);
    wshape[class_dim] = layout.classes;
    terms = terms * w.view(wshape);
  }
  return reduce_loss(-terms.sum({class_dim}), o.reduction);
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(logits, target, o.weight)) {
    CrossEntropyOptions o32 = o;
    o32.weight = bf16_upcast(o.weight);
    return via_float32([&](const Tensor& x, const Tensor& t) { return cross_entropy(x, t, o32); }, logits,
                       target);
  }
  check_defined("cross_entropy", logits, "logits");
  check_defined("cross_entropy", target, "target");
  class_layout("cross_entropy", logits, "logits");  // validates the logits before the target decides the path
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
    fail("cross_entropy: label_smoothing must be in [0, 1], got {}", o.label_smoothing);
  // PyTorch's rule: a target with the logits' own shape holds class probabilities.
  if (target.shape() == logits.shape()) {
    if (!target.is_floating_point())
      fail(
          "cross_entropy: target {} has the logits' shape, so it must hold class probabilities (floating), "
          "got {}",
          shape_str(target.shape()), target.dtype());
    return cross_entropy_probabilities(logits, target, o);
  }
  ClassTargetParams params{o.ignore_index, true, o.label_smoothing};
  return reduce_class_loss(class_nll("cross_entropy", logits, target, o.weight, params), o.reduction);
}

}  // namespace ember::losses
