// SGD: option checks, lazy momentum buffers, and one fused kernel call per parameter.
#include "ember/optim/sgd.h"

#include "core/tensor_impl.h"
#include "ember/autograd.h"
#include "nn/optim/float32_step.h"
#include "ops/kernels/optim.h"

namespace ember {
EMBER_DEFINE_STUB(sgd_step_stub, SgdStepFn);
}

namespace ember::optim {

namespace {
void check_options(const SGDOptions& o) {
  if (!(o.lr >= 0)) fail("SGD: invalid learning rate {} (must be >= 0)", o.lr);
  if (!(o.momentum >= 0)) fail("SGD: invalid momentum {} (must be >= 0)", o.momentum);
  if (!(o.weight_decay >= 0)) fail("SGD: invalid weight_decay {} (must be >= 0)", o.weight_decay);
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    fail("SGD: Nesterov momentum requires a momentum > 0 and zero dampening (got momentum {}, dampening {})",
         o.momentum, o.dampening);
}
}  // namespace

SGD::SGD(const std::vector<Tensor>& params, SGDOptions options) { add_param_group({params, options}); }

SGD::SGD(const std::vector<ParamGroup<SGDOptions>>& groups) {
  if (groups.empty()) fail("SGD: no parameter groups given");
  for (const auto& g : groups) add_param_group(g);
}

void SGD::add_param_group(const ParamGroup<SGDOptions>& group) {
  check_options(group.options);
  add_group_params(group.params);
  options_.push_back(group.options);
}

SGDOptions& SGD::options(size_t group) {
  if (group >= options_.size())
    fail("SGD: parameter group {} does not exist ({} groups)", group, options_.size());
  return options_[group];
}
const SGDOptions& SGD::options(size_t group) const { return const_cast<SGD*>(this)->options(group); }

void SGD::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const SGDOptions& o = options_[g];
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

Optimizer::OptionsText SGD::options_to_text(size_t group) const {
  const SGDOptions& o = options(group);
  return {{"lr", number_text(o.lr)},
          {"momentum", number_text(o.momentum)},
          {"dampening", number_text(o.dampening)},
          {"weight_decay", number_text(o.weight_decay)},
          {"nesterov", bool_text(o.nesterov)}};
}

void SGD::options_from_text(const std::vector<OptionsText>& groups) {
  std::vector<SGDOptions> parsed;
  for (const auto& t : groups) {
    SGDOptions o{parse_number(t, "lr"), parse_number(t, "momentum"), parse_number(t, "dampening"),
                 parse_number(t, "weight_decay"), parse_bool(t, "nesterov")};
    check_options(o);
    parsed.push_back(o);
  }
  options_ = std::move(parsed);
}

}  // namespace ember::optim
