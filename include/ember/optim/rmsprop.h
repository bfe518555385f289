#pragma once
// RMSprop, exactly as torch.optim.RMSprop. Per parameter p with gradient g (state names in brackets):
//   g = g + weight_decay * p
//   s = alpha * s + (1 - alpha) * g^2                                        (square_avg)
//   centered: a = alpha * a + (1 - alpha) * g;  d = sqrt(s - a^2) + eps     (grad_avg)
//   else d = sqrt(s) + eps
//   momentum > 0: buf = momentum * buf + g / d;  p = p - lr * buf           (momentum_buffer)
//   else p = p - lr * g / d
// Written in tensor ops (a pass per op, on any backend), not a fused kernel.
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order.
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

namespace detail {
extern template class GroupedOptimizer<RMSpropOptions>;
}

class RMSprop : public detail::GroupedOptimizer<RMSpropOptions> {
 public:
  explicit RMSprop(const std::vector<Tensor>& params, RMSpropOptions options = {});
  explicit RMSprop(const std::vector<ParamGroup<RMSpropOptions>>& groups);

  void step() override;
  std::string name() const override { return "RMSprop"; }
};

}  // namespace ember::optim
