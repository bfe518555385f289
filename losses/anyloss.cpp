// AnyLoss: validation, the soft confusion matrix, and the two ways to differentiate the metric.
//
// Every cell is a linear function of q, so the gradient has one shape for every metric:
//   d loss / d q_i = -(y_i (dM/dTP - dM/dFN) + (1 - y_i)(dM/dFP - dM/dTN)),
//   d loss / d p_i = d loss / d q_i * L sigmoid(t_i) sigmoid(-t_i),   t_i = L (p_i - 1/2).
// * Built-in metrics: the partials dM/dX come in closed form (anyloss_metrics.cpp), so the whole
//   loss is one graph node whose backward is one elementwise pass.
// * A custom metric: a "soft_confusion" node produces the four cells as 0-d tensors; the user's
//   function runs on them under autograd, and the node's backward turns the four cell gradients
//   into per-sample gradients with the same elementwise pass.
#include "ember/losses/anyloss.h"

#include <cmath>

#include "ember/autograd.h"
#include "losses/anyloss_metrics.h"
#include "losses/kernels/anyloss.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(anyloss_sums_stub, AnyLossSumsFn);
EMBER_DEFINE_STUB(anyloss_backward_stub, AnyLossBackwardFn);

namespace losses {
namespace {

using autograd::BackwardArgs;
using autograd::SavedTensor;

void validate(const Tensor& p, const Tensor& y, const AnyLossOptions& o) {
  check_defined("anyloss", p, "probabilities");
  check_defined("anyloss", y, "target");
  check_same_device("anyloss", {p, y});
  if (!p.is_floating_point()) fail("anyloss: probabilities must be float32 or float64, got {}", p.dtype());
  if (!(p.dim() == 1 || (p.dim() == 2 && p.size(1) == 1)))
    fail(
        "anyloss: probabilities have shape {}; expected [N] or [N,1] (binary classification, one probability "
        "per sample)",
        shape_str(p.shape()));
  if (y.shape() != p.shape())
    fail("anyloss: target has shape {} but probabilities have shape {}", shape_str(y.shape()),
         shape_str(p.shape()));
  if (!y.is_floating_point()) fail("anyloss: target must be a float tensor of 0/1 labels, got {}", y.dtype());
  if (p.numel() == 0) fail("anyloss: empty batch (shape {})", shape_str(p.shape()));
  if (!(o.amplifier > 0 && std::isfinite(o.amplifier)))
    fail("anyloss: amplifier must be positive and finite, got {}", o.amplifier);
  if (!o.custom && o.metric == Metric::f_beta && !(o.beta > 0 && std::isfinite(o.beta)))
    fail("anyloss: beta must be positive and finite, got {}", o.beta);
  if (o.fixed_n < 0) fail("anyloss: fixed_n must be 0 (use the batch size) or positive, got {}", o.fixed_n);
  if (o.fixed_n > 0 && o.fixed_n < p.numel())
    fail("anyloss: fixed_n = {} is smaller than the batch size {}", o.fixed_n, p.numel());
}

struct Sums {
  double s_y, s_q, s_yq;
};

Sums batch_sums(const Tensor& p, const Tensor& y, double amplifier) {
  Tensor out = empty_tensor({6}, DType::float64, p.device());
  anyloss_sums_stub(p.device(), p, y, amplifier, out);
  std::vector<double> s = out.to_vector<double>();
  if (s[3] > 0)
    fail(
        "anyloss: probabilities must lie in [0, 1] (pass sigmoid(logits), not logits); {} of {} are outside, "
        "e.g. {}",
        static_cast<int64_t>(s[3]), p.numel(), s[5]);
  if (s[4] > 0)
    fail("anyloss: target must hold 0/1 labels (values in [0, 1]); {} of {} entries are outside, e.g. {}",
         static_cast<int64_t>(s[4]), p.numel(), s[5]);
  return {s[0], s[1], s[2]};
}

// Per-sample gradient with d loss/d q = c_pos for positives and c_neg for negatives.
Tensor sample_grads(const Tensor& p, const Tensor& y, double amplifier, double c_pos, double c_neg) {
  Tensor g = empty_tensor(p.shape(), p.dtype(), p.device());
  anyloss_backward_stub(p.device(), p, y, amplifier, c_pos, c_neg, g);
  return g;
}

// The same per-sample gradient in recorded ops, for a backward that is itself recorded
// (create_graph): c_pos and c_neg are then 0-d tensors that depend on p as well.
Tensor sample_grads_recorded(const Tensor& p, const Tensor& y, double amplifier, const Tensor& c_pos,
                             const Tensor& c_neg) {
  Tensor t = amplifier * (p - 0.5);  // the slope as sigmoid(t) sigmoid(-t): q (1 - q) cancels to 0
  return (y * c_pos + (1.0 - y) * c_neg) * (amplifier * sigmoid(t) * sigmoid(-t));
}

// The probabilities a backward formula works on: with grad mode on (create_graph) the saved
// input with its history, else its data, contiguous for the kernel.
Tensor unpack_probabilities(const SavedTensor& saved) {
  Tensor p = saved.unpack("anyloss");
  return GradMode::is_enabled() ? p : p.contiguous();
}

// The four cells as a differentiable multi-output node (for custom metrics).
SoftConfusion soft_confusion(const Tensor& probabilities, const Tensor& y, const Sums& s, double n,
                             double amplifier) {
  const TensorOptions opts = TensorOptions(y.dtype()).device(y.device());
  SoftConfusion c{scalar_tensor(s.s_yq, opts), scalar_tensor(s.s_y - s.s_yq, opts),
                  scalar_tensor(s.s_q - s.s_yq, opts), scalar_tensor(n - s.s_y - s.s_q + s.s_yq, opts)};
  if (autograd::any_requires_grad({probabilities})) {
    auto backward = [amplifier, sp = SavedTensor(probabilities), sy = SavedTensor(y)](const BackwardArgs& a) {
      // dTP/dq = y, dFN/dq = -y, dFP/dq = 1 - y, dTN/dq = -(1 - y).
      Tensor pv = unpack_probabilities(sp), yv = sy.unpack("anyloss");
      if (GradMode::is_enabled()) {
        auto g = [&](size_t i) { return a.grad(i).defined() ? a.grad(i) : zeros({}, yv.options()); };
        return std::vector<Tensor>{sample_grads_recorded(pv, yv, amplifier, g(0) - g(1), g(2) - g(3))};
      }
      auto g = [&](size_t i) { return a.grad(i).defined() ? a.grad(i).item<double>() : 0.0; };
      return std::vector<Tensor>{sample_grads(pv, yv, amplifier, g(0) - g(1), g(2) - g(3))};
    };
    autograd::record("anyloss_soft_confusion", {probabilities}, {&c.tp, &c.fn, &c.fp, &c.tn}, backward,
                     autograd::DoubleBackward::supported);
  }
  return c;
}

}  // namespace

Tensor anyloss(const Tensor& probabilities, const Tensor& target, const AnyLossOptions& options) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(probabilities, target)) {
    return via_float32([&](const Tensor& p, const Tensor& t) { return anyloss(p, t, options); },
                       probabilities, target);
  }
  validate(probabilities, target, options);
  Tensor p = probabilities.detach().contiguous();
  Tensor y = cast_raw(target.detach(), p.dtype()).contiguous();
  const Sums s = batch_sums(p, y, options.amplifier);
  const double n =
      options.fixed_n > 0 ? static_cast<double>(options.fixed_n) : static_cast<double>(p.numel());

  if (options.custom) {
    SoftConfusion c = soft_confusion(probabilities, y, s, n, options.amplifier);
    Tensor metric = options.custom(c);
    if (!metric.defined() || !metric.is_floating_point() || metric.numel() != 1)
      fail("anyloss: the custom metric must return a floating tensor with one element, got {}",
           metric.defined() ? fmt::format("{} {}", metric.dtype(), shape_str(metric.shape()))
                            : "an undefined tensor");
    return 1.0 - metric.reshape({});
  }

  const double tp = s.s_yq, fn = s.s_y - s.s_yq, fp = s.s_q - s.s_yq, tn = n - s.s_y - s.s_q + s.s_yq;
  const MetricValue<double> m = evaluate_metric(options.metric, options.beta, tp, fn, fp, tn);
  Tensor out = scalar_tensor(1.0 - m.value, TensorOptions(p.dtype()).device(p.device()));
  if (autograd::any_requires_grad({probabilities})) {
    const double c_pos = -(m.d_tp - m.d_fn), c_neg = -(m.d_fp - m.d_tn);
    const double amplifier = options.amplifier, beta = options.beta;
    const Metric metric = options.metric;
    auto backward = [=, sp = SavedTensor(probabilities), sy = SavedTensor(y)](const BackwardArgs& a) {
      Tensor pv = unpack_probabilities(sp), yv = sy.unpack("anyloss");
      if (GradMode::is_enabled()) {  // the cells, and so the partials, are functions of p too
        Tensor q = sigmoid(amplifier * (pv - 0.5)), s_y = yv.sum(), s_q = q.sum(), s_yq = (yv * q).sum();
        MetricValue<Tensor> mt =
            evaluate_metric(metric, beta, s_yq, s_y - s_yq, s_q - s_yq, n - s_y - s_q + s_yq);
        Tensor g = a.grad();
        return std::vector<Tensor>{
            sample_grads_recorded(pv, yv, amplifier, -(mt.d_tp - mt.d_fn) * g, -(mt.d_fp - mt.d_tn) * g)};
      }
      const double g = a.grad().item<double>();
      return std::vector<Tensor>{sample_grads(pv, yv, amplifier, g * c_pos, g * c_neg)};
    };
    autograd::record("anyloss", {probabilities}, out, backward, autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace losses
}  // namespace ember
