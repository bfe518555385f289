#pragma once
// Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum,
// exactly as torch.optim.SGD. Per parameter p with gradient g:
//   d = g + weight_decay * p
//   if momentum != 0:  buf = d on the first step, else momentum * buf + (1 - dampening) * d
//                      d = nesterov ? d + momentum * buf : buf
//   p = p - lr * d
#include <vector>

#include "ember/optim/grouped_optimizer.h"

namespace ember::optim {

// Fields as PyTorch's arguments, in PyTorch's order: SGDOptions{0.1, 0.9} is lr 0.1, momentum 0.9.
struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

namespace detail {
extern template class GroupedOptimizer<SGDOptions>;
}

class SGD : public detail::GroupedOptimizer<SGDOptions> {
 public:
  explicit SGD(const std::vector<Tensor>& params, SGDOptions options = {});
  explicit SGD(const std::vector<ParamGroup<SGDOptions>>& groups);

  void step() override;
  std::string name() const override { return "SGD"; }
};

}  // namespace ember::optim
