// Adadelta: lazy state and the update in tensor ops (PyTorch's single-tensor algorithm, op for op).
#include "ember/optim/adadelta.h"

#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

Adadelta::Adadelta(const std::vector<Tensor>& params, AdadeltaOptions options) {
  add_param_group({params, options});
}
Adadelta::Adadelta(const std::vector<ParamGroup<AdadeltaOptions>>& groups) { add_param_groups(groups); }

void Adadelta::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const AdadeltaOptions& o = options(g);
    next_step(g, i, p, {"square_avg", "acc_delta"});
    auto& st = state(g, i);
    detail::step_in_float32_if_bfloat16(
        [&](Tensor param, const Tensor& g_in, Tensor square_avg, Tensor acc_delta) {
          const Tensor d = o.weight_decay != 0 ? g_in + param * o.weight_decay : g_in;
          square_avg.mul_(o.rho).add_(d * d, 1 - o.rho);
          const Tensor delta = sqrt(acc_delta + o.eps) / sqrt(square_avg + o.eps) * d;
          acc_delta.mul_(o.rho).add_(delta * delta, 1 - o.rho);
          param.sub_(delta, o.lr);
        },
        p, grad, st["square_avg"], st["acc_delta"]);
  });
}

}  // namespace ember::optim
