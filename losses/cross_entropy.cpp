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

Tensor class_target_coefficients(const ClassLayout& layout, const Tensor& target, const Tensor& weight,
                                 const ClassTargetParams& params, const Tensor& like) {
  NoGradGuard constant;
  const TensorOptions opts = like.options();
  Tensor y = target.reshape({layout.outer, 1, layout.inner});
  Tensor kept = params.has_ignore_index
                    ? y != static_cast<double>(params.ignore_index)
                    : full(y.shape(), 1.0, TensorOptions(DType::boolean).device(y.device()));
  Tensor classes =
      arange(static_cast<double>(layout.classes), TensorOptions(DType::int64).device(y.device()));
  Tensor onehot = (classes.view({1, layout.classes, 1}) == y).to(opts.dtype());
  Tensor w = weight.defined() ? weight.to(opts.dtype()).view({1, layout.classes, 1}) : full({}, 1.0, opts);
  const double eps = params.label_smoothing;
  Tensor q = onehot * w * (1.0 - eps);
  if (eps > 0) q = q + w * (eps / static_cast<double>(layout.classes));
  return where(kept, q, 0.0);
}

namespace {
// The gradient of class_nll in differentiable ops, for a backward pass that is itself recorded:
// row r's is g_r (S_r p_r - Q_r), S_r = sum_c Q_rc, p = softmax, differentiable in the logits
// (through softmax) and in g.
Tensor class_nll_gradient_recorded(const ClassLayout& layout, const Tensor& logits, const Tensor& target,
                                   const Tensor& weight, const ClassTargetParams& params, const Tensor& g) {
  Tensor q = class_target_coefficients(layout, target, weight, params, logits);
  Tensor p = softmax(logits.contiguous().view(layout.blocked()), 1);
  return (g.reshape({layout.outer, 1, layout.inner}) * (q.sum({1}, true) * p - q)).view(logits.shape());
}
}  // namespace

ClassNLL class_nll(std::string_view loss, const Tensor& logits, const Tensor& target, const Tensor& weight_in,
                   const ClassTargetParams& params) {
  const ClassLayout layout = class_layout(loss, logits, "logits");
  check_class_target(loss, layout, logits, target);
  const Tensor weight = class_weight(loss, weight_in, layout.classes, logits);
  const Tensor x = logits.detach().contiguous().view(layout.blocked());
  const Tensor y = target.contiguous();
  Tensor out = empty_tensor(layout.target_shape, logits.dtype(), logits.device());
  // per row (max, log sum exp(x - max)) in float64, for the backward (losses/kernels/cross_entropy.h)
  Tensor lse = empty_tensor({layout.rows(), 2}, DType::float64, logits.device());
  Tensor denominator = empty_tensor({}, logits.dtype(), logits.device());
  int64_t bad = cross_entropy_forward_stub(logits.device(), out, lse, denominator, x, y, weight, params);
  if (bad >= 0) fail_bad_target(loss, y, bad, layout.classes, params.has_ignore_index, params.ignore_index);

  if (autograd::any_requires_grad({logits})) {
    Shape shape = logits.shape();
    autograd::record(
        "cross_entropy", {logits}, out,
        [=, xs = SavedTensor(x), ys = SavedTensor(y), ls = SavedTensor(lse),
         logits_saved = SavedTensor(logits)](const BackwardArgs& a) {
          if (GradMode::is_enabled())  // unpacked only here: its history
            return std::vector<Tensor>{
                class_nll_gradient_recorded(layout, logits_saved.unpack("cross_entropy"),
                                            ys.unpack("cross_entropy"), weight, params, a.grad())};
          Tensor xv = xs.unpack("cross_entropy");
          Tensor grad = empty_tensor(xv.shape(), xv.dtype(), xv.device());
          Tensor g = cast_raw(a.grad(), xv.dtype()).contiguous();
          cross_entropy_backward_stub(xv.device(), grad, g, xv, ls.unpack("cross_entropy"),
                                      ys.unpack("cross_entropy"), weight, params);
          return std::vector<Tensor>{grad.view(shape)};
        },
        autograd::DoubleBackward::supported);
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
// One custom backward rather than autograd through log_softmax: that one forms exp(log p_y) in
// the logits' dtype and then subtracts the target, so a confident float32 row (p_y = 1 - 6e-6)
// loses its gradient to the rounding of p_y near 1 (ulp(1) = 6e-8 absolute). Here
//   d loss / d x_c = S p_c - (w t)_c,  S = sum_c (w t)_c,
// is evaluated as S (p_c - 1) + (S - (w t)_c) with p_c - 1 = expm1(log p_c) where p_c > 1/2.
// (PyTorch's float32 gradient there is only good to ~1e-2 relative for p_y = 1 - 6e-6.)
Tensor cross_entropy_probabilities(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& o) {
  const ClassLayout layout = class_layout("cross_entropy", logits, "logits");
  check_same_device("cross_entropy", {logits, target});
  if (o.ignore_index >= 0)
    fail(
        "cross_entropy: ignore_index {} applies to class-id targets only; target has the logits' shape {} "
        "and so holds class probabilities",
        o.ignore_index, shape_str(logits.shape()));
  const int64_t class_dim = logits.dim() == 1 ? 0 : 1;
  const double eps = o.label_smoothing, classes = static_cast<double>(layout.classes);
  // (cast with autograd: a target of another dtype still receives its gradient)
  const Tensor t = target.dtype() == logits.dtype() ? target : target.to(logits.dtype());
  Tensor w;  // the class weights along the class axis, or undefined
  if (o.weight.defined()) {
    Shape wshape(logits.dim(), 1);
    wshape[class_dim] = layout.classes;
    w = class_weight("cross_entropy", o.weight, layout.classes, logits).view(wshape);
  }
  // w * smoothed t: the coefficient of -log p_c in the loss
  auto weighted_target = [eps, classes, w](const Tensor& tv) {
    Tensor ts = eps > 0 ? tv * (1.0 - eps) + eps / classes : tv;
    return w.defined() ? ts * w : ts;
  };
  Tensor log_p, loss;
  {
    NoGradGuard no_grad;
    log_p = log_softmax(logits.detach(), class_dim);
    loss = -(log_p * weighted_target(t.detach())).sum({class_dim});
  }
  if (autograd::any_requires_grad({logits, t})) {
    autograd::record(
        "cross_entropy", {logits, t}, loss,
        [=, ls = SavedTensor(log_p), ts = SavedTensor(t), xs = SavedTensor(logits)](const BackwardArgs& a) {
          Tensor tv = ts.unpack("cross_entropy");
          if (GradMode::is_enabled()) {  // create_graph: the same gradients, in differentiable ops
            Tensor lp = log_softmax(xs.unpack("cross_entropy"), class_dim);
            Tensor g = a.grad().unsqueeze(class_dim), wt = weighted_target(tv);
            Tensor gt = g * lp * (eps > 0 ? -(1.0 - eps) : -1.0);
            return std::vector<Tensor>{g * (wt.sum({class_dim}, true) * exp(lp) - wt),
                                       w.defined() ? gt * w : gt};
          }
          Tensor lp = ls.unpack("cross_entropy");
          Tensor g = cast_raw(a.grad(), lp.dtype()).unsqueeze(class_dim);
          Tensor gx, gt;
          if (a.needs(0)) {
            Tensor wt = weighted_target(tv);
            Tensor S = wt.sum({class_dim}, /*keepdim=*/true);
            gx = S * exp(lp) - wt;
            // Only a row's most probable class can have p > 1/2: redo that entry alone (per row,
            // so the fix costs a max and a scatter, not a second transcendental pass).
            auto [lp_max, at] = max(lp, class_dim, /*keepdim=*/true);
            Tensor wt_max = gather(wt, class_dim, at);
            Tensor fixed = where(lp_max > -0.69314718055994531, S * expm1(lp_max) + (S - wt_max),
                                 S * exp(lp_max) - wt_max);
            gx = g * scatter(gx, class_dim, at, fixed);
          }
          if (a.needs(1)) {
            gt = g * lp * (eps > 0 ? -(1.0 - eps) : -1.0);
            if (w.defined()) gt = gt * w;
          }
          return std::vector<Tensor>{gx, gt};
        },
        autograd::DoubleBackward::supported);
  }
  return reduce_loss(loss, o.reduction);
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
