// Adam and AdamW: lazy moment buffers and step counts, and one fused kernel call per parameter.
#include "ember/optim/adam.h"

#include <cmath>

#include "core/tensor_impl.h"
#include "ember/autograd.h"
#include "ember/ops.h"
#include "nn/optim/float32_step.h"
#include "ops/kernels/optim.h"

namespace ember {
EMBER_DEFINE_STUB(adam_step_stub, AdamStepFn);
}

namespace ember::optim::detail {

template <class Options>
void AdamBase<Options>::step() {
  this->update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const Options& o = this->options(g);
    // The step count lives on the CPU, so reading it never waits for a device.
    const int64_t t = this->next_step(g, i, p, {"exp_avg", "exp_avg_sq"});
    auto& st = this->state(g, i);
    if (o.amsgrad && !st.count("max_exp_avg_sq")) st["max_exp_avg_sq"] = zeros_like(p);
    const double bias_correction1 = 1.0 - std::pow(o.betas.first, static_cast<double>(t));
    const double bias_correction2 = 1.0 - std::pow(o.betas.second, static_cast<double>(t));
    Tensor vmax = o.amsgrad ? st["max_exp_avg_sq"] : Tensor();
    detail::step_in_float32_if_bfloat16(
        [&](const Tensor& param, const Tensor& g, const Tensor& m, const Tensor& v, const Tensor& vm) {
          adam_step_stub(param.device(), param, g, m, v, vm, o.lr, o.betas.first, o.betas.second, o.eps,
                         o.weight_decay, decoupled_, o.lr / bias_correction1, std::sqrt(bias_correction2));
        },
        p, grad, st["exp_avg"], st["exp_avg_sq"], vmax);
  });
}

template class AdamBase<AdamOptions>;
template class AdamBase<AdamWOptions>;

}  // namespace ember::optim::detail

namespace ember::optim {

Adam::Adam(const std::vector<Tensor>& params, AdamOptions options) : AdamBase(false) {
  add_param_group({params, options});
}
Adam::Adam(const std::vector<ParamGroup<AdamOptions>>& groups) : AdamBase(false) { add_param_groups(groups); }

AdamW::AdamW(const std::vector<Tensor>& params, AdamWOptions options) : AdamBase(true) {
  add_param_group({params, options});
}
AdamW::AdamW(const std::vector<ParamGroup<AdamWOptions>>& groups) : AdamBase(true) {
  add_param_groups(groups);
}

}  // namespace ember::optim
