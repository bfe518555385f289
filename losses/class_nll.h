#pragma once
// The fused softmax cross-entropy on class ids, per target position, shared by cross_entropy
// and the comp-sum losses (which are functions of this per-position nll).
#include <string_view>

#include "ember/tensor.h"
#include "losses/class_layout.h"
#include "losses/kernels/cross_entropy.h"

namespace ember::losses {

struct ClassNLL {
  Tensor loss;         // the target's shape; differentiable w.r.t. the logits (fused backward)
  Tensor denominator;  // 0-d, no gradient: sum of weight[target] over the non-ignored positions
};
// `loss` names the public loss in error messages. Weight may be undefined.
ClassNLL class_nll(std::string_view loss, const Tensor& logits, const Tensor& target, const Tensor& weight,
                   const ClassTargetParams& params);

// For the backward passes that are themselves recorded (create_graph): the coefficients Q, in the
// [outer, C, inner] layout, of the per-row loss -sum_c Q_rc log p_rc that the class-id losses compute:
//   Q_rc = (1 - eps) w_y [c = y] + eps w_c / C, and 0 for an ignored row.
// A constant (no gradient); `like` gives dtype and device.
Tensor class_target_coefficients(const ClassLayout& layout, const Tensor& target, const Tensor& weight,
                                 const ClassTargetParams& params, const Tensor& like);

}  // namespace ember::losses
