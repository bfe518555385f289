// SGD: lazy momentum buffers and one fused kernel call per parameter.
#include "ember/optim/sgd.h"

#include "core/tensor_impl.h"
#include "ember/autograd.h"
#include "nn/optim/float32_step.h"
#include "ops/kernels/optim.h"

namespace ember {
EMBER_DEFINE_STUB(sgd_step_stub, SgdStepFn);
}

namespace ember::optim {

SGD::SGD(const std::vector<Tensor>& params, SGDOptions options) { add_param_group({params, options}); }
SGD::SGD(const std::vector<ParamGroup<SGDOptions>>& groups) { add_param_groups(groups); }

void SGD::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const SGDOptions& o = options(g);
    Tensor buf;
    bool first = false;
    if (o.momentum != 0) {
      auto& st = state(g, i);
      auto it = st.find("momentum_buffer");
      if (it == st.end()) {
        buf = empty_tensor(p.shape(), p.dtype(), p.device());
        st["momentum_buffer"] = buf;
        first = true;
      } else {
        buf = it->second;
      }
    }
    detail::step_in_float32_if_bfloat16(
        [&](const Tensor& param, const Tensor& g, const Tensor& b) {
          sgd_step_stub(param.device(), param, g, b, o.lr, o.momentum, o.dampening, o.weight_decay,
                        o.nesterov, first);
        },
        p, grad, buf);
  });
}

}  // namespace ember::optim
