// Adamax: lazy state and the update in tensor ops (PyTorch's single-tensor algorithm, op for op).
#include "ember/optim/adamax.h"

#include <cmath>

#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

Adamax::Adamax(const std::vector<Tensor>& params, AdamaxOptions options) {
  add_param_group({params, options});
}
Adamax::Adamax(const std::vector<ParamGroup<AdamaxOptions>>& groups) { add_param_groups(groups); }

void Adamax::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const AdamaxOptions& o = options(g);
    const auto [beta1, beta2] = o.betas;
    const int64_t t = next_step(g, i, p, {"exp_avg", "exp_inf"});
    const double clr = o.lr / (1 - std::pow(beta1, static_cast<double>(t)));
    auto& st = state(g, i);
    detail::step_in_float32_if_bfloat16(
        [&](Tensor param, const Tensor& g_in, Tensor exp_avg, Tensor exp_inf) {
          const Tensor d = o.weight_decay != 0 ? g_in + param * o.weight_decay : g_in;
          exp_avg.mul_(beta1).add_(d, 1 - beta1);
          exp_inf.copy_(maximum(exp_inf * beta2, abs(d) + o.eps));
          param.sub_(exp_avg / exp_inf, clr);
        },
        p, grad, st["exp_avg"], st["exp_inf"]);
  });
}

}  // namespace ember::optim
