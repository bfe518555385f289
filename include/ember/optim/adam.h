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

#include "ember/optim/optimizer.h"

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
template <class Options>
class AdamBase : public Optimizer {
 public:
  void add_param_group(const ParamGroup<Options>& group);
  void step() override;
  Options& options(size_t group);
  const Options& options(size_t group) const;

  double lr(size_t group) const override { return options(group).lr; }
  void set_lr(size_t group, double lr) override { options(group).lr = lr; }
  double momentum(size_t group) const override { return options(group).betas.first; }
  void set_momentum(size_t group, double m) override { options(group).betas.first = m; }

 protected:
  explicit AdamBase(bool decoupled) : decoupled_(decoupled) {}
  OptionsText options_to_text(size_t group) const override;
  void options_from_text(const std::vector<OptionsText>& groups) override;

 private:
  bool decoupled_;
  std::vector<Options> options_;
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
