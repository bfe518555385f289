#pragma once
// Kernels of PLD (losses/pld.cpp; the math in docs/losses/pld.md and include/ember/losses/pld.h).
//
// Contract:
//   * student and teacher are contiguous [outer, C, inner] in one floating dtype; row
//     r = o * inner + i is scores[o, :, i] (losses/class_layout.h); target is contiguous int64
//     with outer * inner class ids;
//   * the forward writes loss[r] (contiguous, outer * inner entries) and, when `grad_student` is
//     defined (it is left undefined when no backward will run), the row's own gradient
//     d loss[r] / d student[o, :, i] into it (contiguous, the student's [outer, C, inner] layout).
//     Computing it here, while the row's ranking and suffix sums are at hand, is the whole
//     backward: the autograd node only multiplies it by the incoming grad_loss[r]. In ranked
//     order k (k = 0 the true class, then the others by decreasing teacher logit, ties by smaller
//     class index) it is g_k = sum_{j <= k} alpha_j exp(u_k - Lambda_j) - alpha_k, with
//     alpha_k = softmax(t / temperature)[order_k], u_k = s[order_k] and
//     Lambda_k = log sum_{l >= k} exp(u_l);
//   * returns the first invalid target's flat index and the first row whose teacher logits hold
//     a NaN (-1 when none); when either is set the outputs are meaningless.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember::losses {

struct PLDCheck {
  int64_t bad_target = -1;
  int64_t nan_teacher_row = -1;
};

using PLDForwardFn = PLDCheck (*)(const Tensor& loss, const Tensor& grad_student, const Tensor& student,
                                  const Tensor& teacher, const Tensor& target, double temperature);

EMBER_DECLARE_STUB(pld_forward_stub, PLDForwardFn);

}  // namespace ember::losses
