#pragma once
// Adagrad, exactly as torch.optim.Adagrad. Per parameter p with gradient g, at step t:
//   g = g + weight_decay * p
//   sum = sum + g^2                        (state "sum", which starts at initial_accumulator_value)
//   p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
// Written in tensor ops (a pass per op, on any backend), not a fused kernel.
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order.
struct AdagradOptions {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
};

// Adagrad has no momentum: momentum() is 0 and set_momentum throws (so OneCycleLR's momentum
// cycling refuses it, as PyTorch's does).
namespace detail {
extern template class GroupedOptimizer<AdagradOptions>;
}

class Adagrad : public detail::GroupedOptimizer<AdagradOptions> {
 public:
  explicit Adagrad(const std::vector<Tensor>& params, AdagradOptions options = {});
  explicit Adagrad(const std::vector<ParamGroup<AdagradOptions>>& groups);

  void step() override;
  std::string name() const override { return "Adagrad"; }
};

}  // namespace ember::optim
