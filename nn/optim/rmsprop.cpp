// RMSprop: lazy state and the update in tensor ops (PyTorch's single-tensor
// algorithm, op for op).
#include "ember/optim/rmsprop.h"

#include "ember/autograd.h"
#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

RMSprop::RMSprop(const std::vector<Tensor>& params, RMSpropOptions options) {
  add_param_group({params, options});
}
RMSprop::RMSprop(const std::vector<ParamGroup<RMSpropOptions>>& groups) { add_param_groups(groups); }

void RMSprop::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const RMSpropOptions& o = options(g);
    next_step(g, i, p, {"square_avg"});
    auto& st = state(g, i);
    if (o.momentum > 0 && !st.count("momentum_buffer")) st["momentum_buffer"] = zeros_like(p);
    if (o.centered && !st.count("grad_avg")) st["grad_avg"] = zeros_like(p);
    const Tensor buf = o.momentum > 0 ? st["momentum_buffer"] : Tensor();
    const Tensor grad_avg = o.centered ? st["grad_avg"] : Tensor();
    detail::step_in_float32_if_bfloat16(
        [&](Tensor param, const Tensor& g_in, Tensor square_avg, Tensor b, Tensor a) {
          const Tensor d = o.weight_decay != 0 ? g_in + param * o.weight_decay : g_in;
          square_avg.mul_(o.alpha).add_(d * d, 1 - o.alpha);
          Tensor avg;
          if (o.centered) {
            a.mul_(o.alpha).add_(d, 1 - o.alpha);
            avg = sqrt(square_avg - a * a);
          } else {
            avg = sqrt(square_avg);
          }
          avg.add_(o.eps);
          if (o.momentum > 0) {
            b.mul_(o.momentum).add_(d / avg);
            param.sub_(b, o.lr);
          } else {
            param.sub_(d / avg, o.lr);
          }
        },
        p, grad, st["square_avg"], buf, grad_avg);
  });
}

}  // namespace ember::optim
