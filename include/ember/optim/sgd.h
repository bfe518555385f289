#pragma once
// Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum,
// exactly as torch.optim.SGD. Per parameter p with gradient g:
//   d = g + weight_decay * p
//   if momentum != 0:  buf = d on the first step, else momentum * buf + (1 - dampening) * d
//                      d = nesterov ? d + momentum * buf : buf
//   p = p - lr * d
#include <vector>

#include "ember/optim/optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order: SGDOptions{0.1, 0.9} is lr 0.1, momentum 0.9.
struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  explicit SGD(const std::vector<Tensor>& params, SGDOptions options = {});
  explicit SGD(const std::vector<ParamGroup<SGDOptions>>& groups);
  void add_param_group(const ParamGroup<SGDOptions>& group);

  void step() override;
  SGDOptions& options(size_t group);
  const SGDOptions& options(size_t group) const;

  double lr(size_t group) const override { return options(group).lr; }
  void set_lr(size_t group, double lr) override { options(group).lr = lr; }
  double momentum(size_t group) const override { return options(group).momentum; }
  void set_momentum(size_t group, double m) override { options(group).momentum = m; }
  std::string name() const override { return "SGD"; }

 protected:
  OptionsText options_to_text(size_t group) const override;
  void options_from_text(const std::vector<OptionsText>& groups) override;

 private:
  std::vector<SGDOptions> options_;
};

}  // namespace ember::optim
