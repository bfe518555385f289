#pragma once
// Kernels of PLD (losses/pld.cpp; the math in docs/losses/pld.md and include/ember/losses/pld.h).
//
// Contract:
//   * student and teacher are contiguous [outer, C, inner] in one floating dtype; row
//     r = o * inner + i is scores[o, :, i] (losses/class_layout.h); target is contiguous int64
//     with outer * inner class ids;
//   * the forward writes loss[r] (contiguous, outer * inner entries) and, when defined (they are
//     left undefined when no backward will run), four [outer * inner, C] tensors in *target
//     order* k = 0..C-1 (k = 0 is the true class, then the others by decreasing teacher logit,
//     ties by smaller class index):
//       order     (int32)  the class placed at step k,
//       alpha     the teacher weight softmax(t / temperature)[order[k]],
//       step_prob sigma_k = exp(u_k - Lambda_k), the student's probability of step k's choice,
//       keep      kappa_k = exp(Lambda_{k+1} - Lambda_k) = 1 - sigma_k (kappa_{C-1} = 0),
//     with u_k = s[order[k]] and Lambda_k = log sum_{l >= k} exp(u_l). sigma and kappa are
//     computed separately (not as 1 - each other) so both keep full relative precision;
//   * the backward turns them into grad_student (contiguous, the student's layout) with the
//     O(C) recurrence c_k = c_{k-1} kappa_{k-1} + alpha_k, g_k = sigma_k c_k - alpha_k, scaled by
//     grad_loss[r] and scattered to class order[k]; no exp or log is needed.
//   * returns the first invalid target's flat index and the first row whose teacher logits hold
//     a NaN (-1 when none); when either is set the outputs are meaningless.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember::losses {

struct PLDCheck {
  int64_t bad_target = -1;
  int64_t nan_teacher_row = -1;
};

using PLDForwardFn = PLDCheck (*)(const Tensor& loss, const Tensor& order, const Tensor& alpha,
                                  const Tensor& step_prob, const Tensor& keep, const Tensor& student,
                                  const Tensor& teacher, const Tensor& target, double temperature);
using PLDBackwardFn = void (*)(const Tensor& grad_student, const Tensor& grad_loss, const Tensor& order,
                               const Tensor& alpha, const Tensor& step_prob, const Tensor& keep);

EMBER_DECLARE_STUB(pld_forward_stub, PLDForwardFn);
EMBER_DECLARE_STUB(pld_backward_stub, PLDBackwardFn);

}  // namespace ember::losses
