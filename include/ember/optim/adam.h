#pragma once
// Adam and AdamW, exactly as torch.optim.Adam / AdamW. Per parameter p with gradient g, at step t:
//   Adam:  g = g + weight_decay * p            (L2 penalty folded into the gradient)
//   AdamW: p = p * (1 - lr * weight_decay)     (decoupled weight decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   vmax = max(vmax, v) and use vmax for v     (amsgrad only)
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#include <utility>
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order.
struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};

// AdamW's only difference in options is the default weight decay.
struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

namespace detail {
// The shared implementation; `decoupled` selects AdamW's weight decay.
extern template class GroupedOptimizer<AdamOptions>;
extern template class GroupedOptimizer<AdamWOptions>;

template <class Options>
class AdamBase : public GroupedOptimizer<Options> {
 public:
  void step() override;

 protected:
  explicit AdamBase(bool decoupled) : decoupled_(decoupled) {}

 private:
  bool decoupled_;
};
extern template class AdamBase<AdamOptions>;
extern template class AdamBase<AdamWOptions>;
}  // namespace detail

class Adam : public detail::AdamBase<AdamOptions> {
 public:
  explicit Adam(const std::vector<Tensor>& params, AdamOptions options = {});
  explicit Adam(const std::vector<ParamGroup<AdamOptions>>& groups);
  std::string name() const override { return "Adam"; }
};

class AdamW : public detail::AdamBase<AdamWOptions> {
 public:
  explicit AdamW(const std::vector<Tensor>& params, AdamWOptions options = {});
  explicit AdamW(const std::vector<ParamGroup<AdamWOptions>>& groups);
  std::string name() const override { return "AdamW"; }
};

}  // namespace ember::optim
