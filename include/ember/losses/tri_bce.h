#pragma once
// Tri-BCE, the training loss of FCN (Li et al., "FCN: Fusing Exponential and Linear Cross
// Network for Click-Through Rate Prediction", arXiv 2407.13349). See docs/losses/tri_bce.md.
//
// A model with two towers A and B predicts click logits z_a and z_b and a fused logit z
// (FCN uses z = (z_a + z_b) / 2). With L, L_a, L_b the mean binary cross-entropies of z, z_a, z_b
// against the 0/1 targets,
//
//   w_a = max(L_a - L, 0),  w_b = max(L_b - L, 0),   tri_bce = L + w_a * L_a + w_b * L_b,
//
// so a tower is pushed harder the worse it does than the fused prediction.
#include "ember/tensor.h"

namespace ember::losses {

struct TriBCEOptions {
  // false (the reference code, salmon1802/FCN): the gradient also flows through w_a and w_b.
  // true: the weights are treated as constants (the paper is silent on this).
  bool detach_weights = false;
};

// fused_logits, logits_a, logits_b: float tensors of one shape (every element is one sample);
// target: 0/1 labels (a float tensor of that shape; values in [0, 1] are accepted). Returns a
// 0-d tensor. The target receives no gradient.
Tensor tri_bce(const Tensor& fused_logits, const Tensor& logits_a, const Tensor& logits_b,
               const Tensor& target, const TriBCEOptions& options = {});

}  // namespace ember::losses
