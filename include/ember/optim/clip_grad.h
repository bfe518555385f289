#pragma once
// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_). Parameters without a
// gradient are skipped.
#include <vector>

#include "ember/tensor.h"

namespace ember::optim {

// Scales all gradients together so that their joint norm (the norm of the vector of every
// gradient element) is at most max_norm: each is multiplied by min(1, max_norm / (norm + 1e-6)).
// norm_type is p >= 1 or INFINITY (the largest |element|). Returns the norm before clipping.
// A non-finite norm throws when error_if_nonfinite, else the gradients are scaled by NaN.
double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every gradient element to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value);

}  // namespace ember::optim
