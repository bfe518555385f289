// NAdam: lazy state and the update in tensor ops (PyTorch 1.13's single-tensor algorithm, op for
// op, with its mu_product_next).
#include "ember/optim/nadam.h"

#include <cmath>

#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

NAdam::NAdam(const std::vector<Tensor>& params, NAdamOptions options) { add_param_group({params, options}); }
NAdam::NAdam(const std::vector<ParamGroup<NAdamOptions>>& groups) { add_param_groups(groups); }

void NAdam::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const NAdamOptions& o = options(g);
    const auto [beta1, beta2] = o.betas;
    const int64_t t = next_step(g, i, p, {"exp_avg", "exp_avg_sq"});
    auto& st = state(g, i);
    if (!st.count("mu_product")) st["mu_product"] = ones({}, DType::float64);
    const double step = static_cast<double>(t);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    const double mu = beta1 * (1 - 0.5 * std::pow(0.96, step * o.momentum_decay));
    const double mu_next = beta1 * (1 - 0.5 * std::pow(0.96, (step + 1) * o.momentum_decay));
    Tensor& mu_product_t = st["mu_product"];
    const double mu_product = mu_product_t.item<double>() * mu;
    mu_product_t.fill_(mu_product);
    const double mu_product_next = mu_product * mu * mu_next;  // (sic, PyTorch 1.13: see nadam.h)
    detail::step_in_float32_if_bfloat16(
        [&](Tensor param, const Tensor& g_in, Tensor exp_avg, Tensor exp_avg_sq) {
          const Tensor d = o.weight_decay != 0 ? g_in + param * o.weight_decay : g_in;
          exp_avg.mul_(beta1).add_(d, 1 - beta1);
          exp_avg_sq.mul_(beta2).add_(d * d, 1 - beta2);
          const Tensor denom = sqrt(exp_avg_sq / bias_correction2) + o.eps;
          param.sub_(d / denom, o.lr * (1 - mu) / (1 - mu_product));
          param.sub_(exp_avg / denom, o.lr * mu_next / (1 - mu_product_next));
        },
        p, grad, st["exp_avg"], st["exp_avg_sq"]);
  });
}

}  // namespace ember::optim
