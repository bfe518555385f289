#pragma once
// PLD, Plackett-Luce distillation (Bassam, Zhu, Bian, arXiv 2506.12542). See docs/losses/pld.md.
//
// For each row the teacher fixes a ranking of all C classes: the true class first, then the
// others by decreasing teacher logit (ties: smaller class index first). The loss is the
// Plackett-Luce negative log-likelihood of that ranking under the student's logits, with choice
// step k weighted by softmax(teacher / temperature) of the class ranked k-th:
//   L_row = sum_k alpha_k * (log sum_{l >= k} exp(s[pi_l]) - s[pi_k]).
// Step 1 alone is cross-entropy; uniform weights give ListMLE / C.
#include "ember/losses/reduction.h"
#include "ember/tensor.h"

namespace ember::losses {

struct PLDOptions {
  double temperature = 1.0;               // > 0; scales the teacher logits for the weights only
  Reduction reduction = Reduction::mean;  // mean/sum over rows (every [N, d...] position is a row)
};
// student_logits and teacher_logits: [N,C] or [N,C,d1,...] (or [C]), same shape; target: int64
// class ids in [0, C) with the logits' shape minus the class axis. The teacher never receives a
// gradient. Teacher logits must not be NaN (they define an ordering).
Tensor pld(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& target,
           const PLDOptions& = {});

}  // namespace ember::losses
