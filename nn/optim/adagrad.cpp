// Adagrad: lazy state and the update in tensor ops (PyTorch's single-tensor
// algorithm, op for op).
#include "ember/optim/adagrad.h"

#include "ember/autograd.h"
#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

Adagrad::Adagrad(const std::vector<Tensor>& params, AdagradOptions options) {
  add_param_group({params, options});
}
Adagrad::Adagrad(const std::vector<ParamGroup<AdagradOptions>>& groups) { add_param_groups(groups); }

void Adagrad::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const AdagradOptions& o = options(g);
    auto& st = state(g, i);
    if (!st.count("sum")) st["sum"] = full_like(p, o.initial_accumulator_value);
    const int64_t t = next_step(g, i, p, {});
    const double clr = o.lr / (1 + static_cast<double>(t - 1) * o.lr_decay);
    detail::step_in_float32_if_bfloat16(
        [&](Tensor param, const Tensor& g_in, Tensor sum) {
          const Tensor d = o.weight_decay != 0 ? g_in + param * o.weight_decay : g_in;
          sum.add_(d * d);
          param.sub_(d / (sqrt(sum) + o.eps), clr);
        },
        p, grad, st["sum"]);
  });
}

}  // namespace ember::optim
