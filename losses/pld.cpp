// pld: Plackett-Luce distillation as one fused custom function. The forward kernel ranks each
// row once (O(C log C)) and, when a backward will run, also writes each row's gradient while the
// ranking and the suffix sums are still in cache (an O(C) recurrence); the backward then only
// scales it by the incoming gradient. The teacher is a constant: it is detached and never put on
// the graph.
#include "ember/losses/pld.h"

#include <cmath>
#include <limits>

#include "losses/class_layout.h"
#include "losses/kernels/pld.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

EMBER_DEFINE_STUB(pld_forward_stub, PLDForwardFn);

namespace {
// d loss_row / d student in differentiable ops, for a backward pass that is itself recorded
// (create_graph); s and t in the blocked layout [outer, C, inner], y [outer, 1, inner]. The kernel's
// gradient in ranked order, g_k = sum_{j <= k} alpha_j exp(u_k - Lambda_j) - alpha_k, is written
// as exp(u_k + logcumsumexp_{j <= k}(log alpha_j - Lambda_j)) - alpha_k: no exp can overflow, and
// the suffix log-sum-exps Lambda (a reversed logcumsumexp) carry the second derivative. The
// ranking and the weights are constants (the teacher is). -inf student logits follow the kernel's
// convention (equally likely among themselves, never chosen before a finite one): they become one
// constant per row, 1000 below its smallest finite logit, where exp(finite - it) is exactly 0 in
// float32 and float64 (the log-space form would otherwise meet -inf + inf).
Tensor pld_gradient_recorded(const Tensor& s_in, const Tensor& t, const Tensor& y, double temperature) {
  Tensor s = s_in;
  if ((s_in == -std::numeric_limits<double>::infinity()).any().item<bool>()) {
    Tensor minus_inf, stand_in;
    {
      NoGradGuard constant;
      minus_inf = s_in == -std::numeric_limits<double>::infinity();
      const Tensor finite_min =
          amin(where(minus_inf, std::numeric_limits<double>::infinity(), s_in), {1}, true);
      stand_in = where(isinf(finite_min), 0.0, finite_min - 1000.0);  // (a row of -inf alone: all equal)
    }
    s = where(minus_inf, stand_in, s_in);
  }
  Tensor order, log_alpha;
  {
    NoGradGuard constant;
    // the true class first (+inf), then the stable descending sort keeps smaller indices first on ties
    Tensor key = t.clone();
    key.scatter_(1, y, std::numeric_limits<double>::infinity());
    order = argsort(key, 1, /*descending=*/true);
    log_alpha = gather(log_softmax(t / temperature, 1), 1, order);
  }
  const Tensor u = gather(s, 1, order);
  const Tensor suffix_lse = flip(logcumsumexp(flip(u, {1}), 1), {1});
  const Tensor ranked = exp(u + logcumsumexp(log_alpha - suffix_lse, 1)) - exp(log_alpha);
  return gather(ranked, 1, argsort(order, 1));  // back to class order
}
}  // namespace

Tensor pld(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& target,
           const PLDOptions& o) {
  if (!(o.temperature > 0.0) || !std::isfinite(o.temperature))
    fail("pld: temperature must be a positive finite number, got {}", o.temperature);
  if (any_bfloat16(student_logits, teacher_logits))  // computed in float32 (pld.md: upcast for the scans)
    return via_float32([&](const Tensor& s, const Tensor& t) { return pld(s, t, target, o); }, student_logits,
                       teacher_logits);
  const ClassLayout layout = class_layout("pld", student_logits, "student_logits");
  check_defined("pld", teacher_logits, "teacher_logits");
  check_same_device("pld", {student_logits, teacher_logits});
  if (!teacher_logits.is_floating_point())
    fail("pld: teacher_logits must be floating point, got {}", teacher_logits.dtype());
  if (teacher_logits.shape() != student_logits.shape())
    fail("pld: teacher_logits {} and student_logits {} must have the same shape",
         shape_str(teacher_logits.shape()), shape_str(student_logits.shape()));
  check_class_target("pld", layout, student_logits, target);
  if (layout.classes > std::numeric_limits<int32_t>::max())
    fail("pld: {} classes do not fit the int32 ranking", layout.classes);

  const Shape blocked = layout.blocked();
  const Tensor s = student_logits.detach().contiguous().view(blocked);
  const Tensor t = cast_raw(teacher_logits.detach(), s.dtype()).contiguous().view(blocked);
  const Tensor y = target.contiguous();
  const DType dtype = s.dtype();
  const Device device = s.device();
  const bool needs_grad = autograd::any_requires_grad({student_logits});

  Tensor loss = empty_tensor(layout.target_shape, dtype, device);
  // d loss[r] / d student, in the student's blocked layout: only when a backward will run
  const Tensor row_grad = needs_grad ? empty_tensor(blocked, dtype, device) : Tensor();
  PLDCheck check = pld_forward_stub(device, loss, row_grad, s, t, y, o.temperature);
  if (check.bad_target >= 0) fail_bad_target("pld", y, check.bad_target, layout.classes, false, 0);
  if (check.nan_teacher_row >= 0)
    fail("pld: teacher_logits row {} contains NaN, so the teacher's ranking is undefined",
         check.nan_teacher_row);

  if (needs_grad) {
    const Shape shape = student_logits.shape();
    const Shape per_row = {layout.outer, 1, layout.inner};  // grad_loss, broadcast over the classes
    autograd::record(
        "pld", {student_logits}, loss,
        [=, gs = autograd::SavedTensor(row_grad), ss = autograd::SavedTensor(student_logits),
         ts = autograd::SavedTensor(t), ys = autograd::SavedTensor(y)](const autograd::BackwardArgs& a) {
          if (GradMode::is_enabled()) {  // create_graph; the student unpacks with its history
            const Tensor row = pld_gradient_recorded(ss.unpack("pld").reshape(blocked), ts.unpack("pld"),
                                                     ys.unpack("pld").reshape(per_row), o.temperature);
            return std::vector<Tensor>{(row * a.grad().reshape(per_row)).view(shape)};
          }
          const Tensor scale = cast_raw(a.grad(), dtype).reshape(per_row);
          return std::vector<Tensor>{(gs.unpack("pld") * scale).view(shape)};
        },
        autograd::DoubleBackward::supported);
  }
  return reduce_loss(loss, o.reduction);
}

}  // namespace ember::losses
