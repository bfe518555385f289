#pragma once
#include "ember/tensor.h"

namespace ember::losses {
enum class Reduction { none, mean, sum };
// Applies a reduction to a tensor of per-element losses.
Tensor reduce_loss(const Tensor& per_element, Reduction reduction);
}  // namespace ember::losses
