#pragma once
// Argument checks shared by the elementwise losses (BCE family, regression, kl_div).
#include <string_view>

#include "ember/tensor.h"

namespace ember::losses {

// Validates a floating input and a floating target of the same shape on the same device, and
// returns the target in the input's dtype (the same tensor when it already matches; a cast keeps
// the target's gradient). A shape mismatch is an error rather than a broadcast, because [N] vs
// [N, 1] silently broadcasting to [N, N] is a classic bug.
Tensor check_pair(std::string_view loss, const Tensor& input, const Tensor& target,
                  std::string_view input_name);
// Validates an optional floating tensor `what` that must broadcast to input's shape.
void check_broadcasts_to(std::string_view loss, std::string_view what, const Tensor& t, const Tensor& input);

}  // namespace ember::losses
