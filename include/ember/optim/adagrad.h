#pragma once
// Adagrad, exactly as torch.optim.Adagrad. Per parameter p with gradient g, at step t:
//   g = g + weight_decay * p
//   sum = sum + g^2                        (state "sum", which starts at initial_accumulator_value)
//   p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
// Written in tensor ops (a pass per op, on any backend), not a fused kernel.
#include <vector>

#include "ember/optim/optimizer.h"

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
class Adagrad : public Optimizer {
 public:
  explicit Adagrad(const std::vector<Tensor>& params, AdagradOptions options = {});
  explicit Adagrad(const std::vector<ParamGroup<AdagradOptions>>& groups);
  void add_param_group(const ParamGroup<AdagradOptions>& group);

  void step() override;
  AdagradOptions& options(size_t group);
  const AdagradOptions& options(size_t group) const;

  double lr(size_t group) const override { return options(group).lr; }
  void set_lr(size_t group, double lr) override { options(group).lr = lr; }
  double momentum(size_t) const override { return 0.0; }
  void set_momentum(size_t group, double m) override;
  std::string name() const override { return "Adagrad"; }

 protected:
  OptionsText options_to_text(size_t group) const override;
  void options_from_text(const std::vector<OptionsText>& groups) override;

 private:
  std::vector<AdagradOptions> options_;
};

}  // namespace ember::optim
