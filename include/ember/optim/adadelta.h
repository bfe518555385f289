#pragma once
// Adadelta, exactly as torch.optim.Adadelta. Per parameter p with gradient g (state names in brackets):
//   g = g + weight_decay * p
//   s = rho * s + (1 - rho) * g^2                          (square_avg)
//   delta = sqrt(u + eps) / sqrt(s + eps) * g
//   u = rho * u + (1 - rho) * delta^2                      (acc_delta)
//   p = p - lr * delta
// "step" counts the steps (PyTorch keeps it too; the update does not use it).
// Written in tensor ops (a pass per op, on any backend), not a fused kernel.
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order.
struct AdadeltaOptions {
  double lr = 1.0;
  double rho = 0.9;
  double eps = 1e-6;
  double weight_decay = 0.0;
};

namespace detail {
extern template class GroupedOptimizer<AdadeltaOptions>;
}

// Adadelta has no momentum: momentum() is 0 and set_momentum throws.
class Adadelta : public detail::GroupedOptimizer<AdadeltaOptions> {
 public:
  explicit Adadelta(const std::vector<Tensor>& params, AdadeltaOptions options = {});
  explicit Adadelta(const std::vector<ParamGroup<AdadeltaOptions>>& groups);

  void step() override;
  std::string name() const override { return "Adadelta"; }
};

}  // namespace ember::optim
