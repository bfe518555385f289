#pragma once
// NAdam, exactly as torch.optim.NAdam in PyTorch 1.13 (its default, single-tensor algorithm). Per
// parameter p with gradient g, at step t:
//   g = g + weight_decay * p
//   mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
//   P = P * mu_t                                             (mu_product, starts at 1)
//   P_next = P * mu_t * mu_{t+1}   (sic: 1.13 multiplies by mu_t twice; its foreach path and
//                                   PyTorch 2.0 use P * mu_{t+1})
//   m = beta1 * m + (1 - beta1) * g                          (exp_avg)
//   v = beta2 * v + (1 - beta2) * g^2                        (exp_avg_sq)
//   d = sqrt(v / (1 - beta2^t)) + eps
//   p = p - lr * (1 - mu_t) / (1 - P) * g / d - lr * mu_{t+1} / (1 - P_next) * m / d
// mu_product is a float64 scalar on the CPU (PyTorch: a scalar of the default dtype).
// Written in tensor ops (a pass per op, on any backend), not a fused kernel.
#include <utility>
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order.
struct NAdamOptions {
  double lr = 2e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum_decay = 4e-3;
};

namespace detail {
extern template class GroupedOptimizer<NAdamOptions>;
}

// momentum() is beta1, as Adam's (what OneCycleLR cycles).
class NAdam : public detail::GroupedOptimizer<NAdamOptions> {
 public:
  explicit NAdam(const std::vector<Tensor>& params, NAdamOptions options = {});
  explicit NAdam(const std::vector<ParamGroup<NAdamOptions>>& groups);

  void step() override;
  std::string name() const override { return "NAdam"; }

 protected:
  bool is_scalar_state(const std::string& name) const override { return name == "mu_product"; }
};

}  // namespace ember::optim
