#pragma once
// RAdam, exactly as torch.optim.RAdam. Per parameter p with gradient g, at step t:
//   g = g + weight_decay * p
//   m = beta1 * m + (1 - beta1) * g                          (exp_avg)
//   v = beta2 * v + (1 - beta2) * g^2                        (exp_avg_sq)
//   rho_inf = 2 / (1 - beta2) - 1
//   rho_t = rho_inf - 2 * t * beta2^t / (1 - beta2^t)
//   rho_t > 5:  r = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
//               p = p - lr * m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r
//   else        p = p - lr * m / (1 - beta1^t)           (no variance rectification yet)
// rho_t depends on t and beta2 only: with beta2 = 0.999 the first 5 steps are unrectified.
// Written in tensor ops (a pass per op, on any backend), not a fused kernel.
#include <utility>
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order.
struct RAdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
};

namespace detail {
extern template class GroupedOptimizer<RAdamOptions>;
}

// momentum() is beta1, as Adam's (what OneCycleLR cycles).
class RAdam : public detail::GroupedOptimizer<RAdamOptions> {
 public:
  explicit RAdam(const std::vector<Tensor>& params, RAdamOptions options = {});
  explicit RAdam(const std::vector<ParamGroup<RAdamOptions>>& groups);

  void step() override;
  std::string name() const override { return "RAdam"; }
};

}  // namespace ember::optim
