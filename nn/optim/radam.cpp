// RAdam: lazy state and the update in tensor ops (PyTorch's single-tensor algorithm, op for op,
// with its rectification switch at rho_t > 5).
#include "ember/optim/radam.h"

#include <cmath>

#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

RAdam::RAdam(const std::vector<Tensor>& params, RAdamOptions options) { add_param_group({params, options}); }
RAdam::RAdam(const std::vector<ParamGroup<RAdamOptions>>& groups) { add_param_groups(groups); }

void RAdam::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const RAdamOptions& o = options(g);
    const auto [beta1, beta2] = o.betas;
    const double t = static_cast<double>(next_step(g, i, p, {"exp_avg", "exp_avg_sq"}));
    const double bias_correction1 = 1 - std::pow(beta1, t);
    const double bias_correction2 = 1 - std::pow(beta2, t);
    const double rho_inf = 2 / (1 - beta2) - 1;
    const double rho_t = rho_inf - 2 * t * std::pow(beta2, t) / bias_correction2;
    auto& st = state(g, i);
    detail::step_in_float32_if_bfloat16(
        [&](Tensor param, const Tensor& g_in, Tensor exp_avg, Tensor exp_avg_sq) {
          const Tensor d = o.weight_decay != 0 ? g_in + param * o.weight_decay : g_in;
          exp_avg.mul_(beta1).add_(d, 1 - beta1);
          exp_avg_sq.mul_(beta2).add_(d * d, 1 - beta2);
          const Tensor bias_corrected_exp_avg = exp_avg / bias_correction1;
          if (rho_t > 5) {
            const double rect =
                std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t));
            const Tensor adaptive_lr = std::sqrt(bias_correction2) / (sqrt(exp_avg_sq) + o.eps);
            param.sub_(bias_corrected_exp_avg * o.lr * adaptive_lr * rect);
          } else {
            param.sub_(bias_corrected_exp_avg * o.lr);
          }
        },
        p, grad, st["exp_avg"], st["exp_avg_sq"]);
  });
}

}  // namespace ember::optim
