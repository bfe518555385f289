#pragma once
// Adamax, exactly as torch.optim.Adamax. Per parameter p with gradient g, at step t:
//   g = g + weight_decay * p
//   m = beta1 * m + (1 - beta1) * g                          (exp_avg)
//   u = max(beta2 * u, |g| + eps)                            (exp_inf)
//   p = p - lr / (1 - beta1^t) * m / u
// Written in tensor ops (a pass per op, on any backend), not a fused kernel.
#include <utility>
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order.
struct AdamaxOptions {
  double lr = 2e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
};

namespace detail {
extern template class GroupedOptimizer<AdamaxOptions>;
}

// momentum() is beta1, as Adam's (what OneCycleLR cycles).
class Adamax : public detail::GroupedOptimizer<AdamaxOptions> {
 public:
  explicit Adamax(const std::vector<Tensor>& params, AdamaxOptions options = {});
  explicit Adamax(const std::vector<ParamGroup<AdamaxOptions>>& groups);

  void step() override;
  std::string name() const override { return "Adamax"; }
};

}  // namespace ember::optim
