#pragma once
// The per-group plumbing every optimizer shares: its options per parameter group, lr / momentum
// for the schedulers, the option checks, and the options as state-dict text (PyTorch's names). Each
// optimizer adds its step() and its name; the options structs differ only in which fields they
// have, and the plumbing reads whichever are there.
//
// The checks are PyTorch's, by field: lr, lr_decay, alpha, eps, weight_decay,
// initial_accumulator_value, momentum and momentum_decay must be >= 0, rho in [0, 1], each beta in
// [0, 1), and Nesterov momentum needs momentum > 0 and no dampening; a bad value throws
// ember::Error naming the optimizer and the value.
#include <cstdint>
#include <string>
#include <vector>

#include "ember/optim/optimizer.h"

namespace ember::optim::detail {

template <class Options>
class GroupedOptimizer : public Optimizer {
 public:
  void add_param_group(const ParamGroup<Options>& group);
  Options& options(size_t group);
  const Options& options(size_t group) const;

  double lr(size_t group) const override { return options(group).lr; }
  void set_lr(size_t group, double lr) override { options(group).lr = lr; }
  // With betas (as Adam): beta1, the coefficient OneCycleLR cycles; with a momentum field (SGD,
  // RMSprop): that. Without either (Adagrad, Adadelta): 0, and setting it throws, so OneCycleLR's
  // momentum cycling refuses the optimizer, as PyTorch's does.
  double momentum(size_t group) const override;
  void set_momentum(size_t group, double m) override;

 protected:
  GroupedOptimizer() = default;
  // The constructors' shared part: every group in order; none at all throws.
  void add_param_groups(const std::vector<ParamGroup<Options>>& groups);
  // Parameter `index` of `group` starts its next step: on the first, its state is made ("step" 0
  // and a zero tensor like `param` for each of `buffers`); then the step count moves on. Returns
  // the new count.
  int64_t next_step(size_t group, size_t index, const Tensor& param, const std::vector<std::string>& buffers);
  OptionsText options_to_text(size_t group) const override;
  void options_from_text(const std::vector<OptionsText>& groups) override;

 private:
  void check_options(const Options& o) const;
  std::vector<Options> options_;
};

}  // namespace ember::optim::detail
