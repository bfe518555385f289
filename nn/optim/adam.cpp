// Adam and AdamW: option checks, lazy moment buffers and step counts, and one fused kernel call
// per parameter.
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

namespace {
template <class Options>
void check_options(const char* who, const Options& o) {
  if (!(o.lr >= 0)) fail("{}: invalid learning rate {} (must be >= 0)", who, o.lr);
  if (!(o.eps >= 0)) fail("{}: invalid eps {} (must be >= 0)", who, o.eps);
  if (!(o.betas.first >= 0 && o.betas.first < 1))
    fail("{}: invalid beta1 {} (must be in [0, 1))", who, o.betas.first);
  if (!(o.betas.second >= 0 && o.betas.second < 1))
    fail("{}: invalid beta2 {} (must be in [0, 1))", who, o.betas.second);
  if (!(o.weight_decay >= 0)) fail("{}: invalid weight_decay {} (must be >= 0)", who, o.weight_decay);
}
}  // namespace

template <class Options>
void AdamBase<Options>::add_param_group(const ParamGroup<Options>& group) {
  check_options(decoupled_ ? "AdamW" : "Adam", group.options);
  add_group_params(group.params);
  options_.push_back(group.options);
}

template <class Options>
Options& AdamBase<Options>::options(size_t group) {
  if (group >= options_.size())
    fail("{}: parameter group {} does not exist ({} groups)", name(), group, options_.size());
  return options_[group];
}
template <class Options>
const Options& AdamBase<Options>::options(size_t group) const {
  return const_cast<AdamBase*>(this)->options(group);
}

template <class Options>
void AdamBase<Options>::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const Options& o = options_[g];
    auto& st = state(g, i);
    auto zeros_like_param = [&] {
      Tensor t = empty_tensor(p.shape(), p.dtype(), p.device());
      t.zero_();
      return t;
    };
    if (!st.count("step")) {
      st["step"] = zeros({}, DType::int64);
      st["exp_avg"] = zeros_like_param();
      st["exp_avg_sq"] = zeros_like_param();
    }
    if (o.amsgrad && !st.count("max_exp_avg_sq")) st["max_exp_avg_sq"] = zeros_like_param();
    // The step count lives on the CPU, so reading it never waits for a device.
    Tensor& step_t = st["step"];
    const int64_t t = step_t.item<int64_t>() + 1;
    step_t.fill_(static_cast<double>(t));
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

template <class Options>
Optimizer::OptionsText AdamBase<Options>::options_to_text(size_t group) const {
  const Options& o = options(group);
  return {{"lr", number_text(o.lr)},
          {"betas", number_text(o.betas.first) + "," + number_text(o.betas.second)},
          {"eps", number_text(o.eps)},
          {"weight_decay", number_text(o.weight_decay)},
          {"amsgrad", bool_text(o.amsgrad)}};
}

template <class Options>
void AdamBase<Options>::options_from_text(const std::vector<OptionsText>& groups) {
  std::vector<Options> parsed;
  for (const auto& t : groups) {
    Options o;
    o.lr = parse_number(t, "lr");
    auto it = t.find("betas");
    size_t comma = it == t.end() ? std::string::npos : it->second.find(',');
    if (comma == std::string::npos) fail("optimizer state: option 'betas' is missing or not 'beta1,beta2'");
    o.betas = {parse_number({{"beta1", it->second.substr(0, comma)}}, "beta1"),
               parse_number({{"beta2", it->second.substr(comma + 1)}}, "beta2")};
    o.eps = parse_number(t, "eps");
    o.weight_decay = parse_number(t, "weight_decay");
    o.amsgrad = parse_bool(t, "amsgrad");
    check_options(decoupled_ ? "AdamW" : "Adam", o);
    parsed.push_back(o);
  }
  options_ = std::move(parsed);
}

template class AdamBase<AdamOptions>;
template class AdamBase<AdamWOptions>;

}  // namespace ember::optim::detail

namespace ember::optim {

Adam::Adam(const std::vector<Tensor>& params, AdamOptions options) : AdamBase(false) {
  add_param_group({params, options});
}
Adam::Adam(const std::vector<ParamGroup<AdamOptions>>& groups) : AdamBase(false) {
  if (groups.empty()) fail("Adam: no parameter groups given");
  for (const auto& g : groups) add_param_group(g);
}

AdamW::AdamW(const std::vector<Tensor>& params, AdamWOptions options) : AdamBase(true) {
  add_param_group({params, options});
}
AdamW::AdamW(const std::vector<ParamGroup<AdamWOptions>>& groups) : AdamBase(true) {
  if (groups.empty()) fail("AdamW: no parameter groups given");
  for (const auto& g : groups) add_param_group(g);
}

}  // namespace ember::optim
