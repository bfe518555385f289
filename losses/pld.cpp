// pld: Plackett-Luce distillation as one fused custom function. The forward kernel ranks each
// row once (O(C log C)) and saves the ranking with the per-step quantities the backward needs,
// so the backward is a single O(C) pass per row. The teacher is a constant: it is detached and
// never put on the graph.
#include "ember/losses/pld.h"

#include <cmath>
#include <limits>

#include "losses/class_layout.h"
#include "losses/kernels/pld.h"
#include "ops/internal.h"

namespace ember::losses {

EMBER_DEFINE_STUB(pld_forward_stub, PLDForwardFn);
EMBER_DEFINE_STUB(pld_backward_stub, PLDBackwardFn);

Tensor pld(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& target,
           const PLDOptions& o) {
  if (!(o.temperature > 0.0) || !std::isfinite(o.temperature))
    fail("pld: temperature must be a positive finite number, got {}", o.temperature);
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
  Tensor order, alpha, sigma, kappa;  // saved for backward only when one will run
  if (needs_grad) {
    const Shape ranked = {layout.rows(), layout.classes};
    order = empty_tensor(ranked, DType::int32, device);
    alpha = empty_tensor(ranked, dtype, device);
    sigma = empty_tensor(ranked, dtype, device);
    kappa = empty_tensor(ranked, dtype, device);
  }
  PLDCheck check = pld_forward_stub(device, loss, order, alpha, sigma, kappa, s, t, y, o.temperature);
  if (check.bad_target >= 0) fail_bad_target("pld", y, check.bad_target, layout.classes, false, 0);
  if (check.nan_teacher_row >= 0)
    fail("pld: teacher_logits row {} contains NaN, so the teacher's ranking is undefined",
         check.nan_teacher_row);

  if (needs_grad) {
    const Shape shape = student_logits.shape();
    autograd::record("pld", {student_logits}, loss,
                     [=, os = autograd::SavedTensor(order), as = autograd::SavedTensor(alpha),
                      ss = autograd::SavedTensor(sigma),
                      ks = autograd::SavedTensor(kappa)](const autograd::BackwardArgs& a) {
                       Tensor grad = empty_tensor(blocked, dtype, device);
                       pld_backward_stub(device, grad, cast_raw(a.grad(), dtype).contiguous(),
                                         os.unpack("pld"), as.unpack("pld"), ss.unpack("pld"),
                                         ks.unpack("pld"));
                       return std::vector<Tensor>{grad.view(shape)};
                     });
  }
  return reduce_loss(loss, o.reduction);
}

}  // namespace ember::losses
