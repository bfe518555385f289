// Adagrad: option checks, lazy state, and the update in tensor ops (PyTorch's single-tensor
// algorithm, op for op).
#include "ember/optim/adagrad.h"

#include "ember/autograd.h"
#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

namespace {
void check_options(const AdagradOptions& o) {
  if (!(o.lr >= 0)) fail("Adagrad: invalid learning rate {} (must be >= 0)", o.lr);
  if (!(o.lr_decay >= 0)) fail("Adagrad: invalid lr_decay {} (must be >= 0)", o.lr_decay);
  if (!(o.weight_decay >= 0)) fail("Adagrad: invalid weight_decay {} (must be >= 0)", o.weight_decay);
  if (!(o.initial_accumulator_value >= 0))
    fail("Adagrad: invalid initial_accumulator_value {} (must be >= 0)", o.initial_accumulator_value);
  if (!(o.eps >= 0)) fail("Adagrad: invalid eps {} (must be >= 0)", o.eps);
}
}  // namespace

Adagrad::Adagrad(const std::vector<Tensor>& params, AdagradOptions options) {
  add_param_group({params, options});
}

Adagrad::Adagrad(const std::vector<ParamGroup<AdagradOptions>>& groups) {
  if (groups.empty()) fail("Adagrad: no parameter groups given");
  for (const auto& g : groups) add_param_group(g);
}

void Adagrad::add_param_group(const ParamGroup<AdagradOptions>& group) {
  check_options(group.options);
  add_group_params(group.params);
  options_.push_back(group.options);
}

AdagradOptions& Adagrad::options(size_t group) {
  if (group >= options_.size())
    fail("Adagrad: parameter group {} does not exist ({} groups)", group, options_.size());
  return options_[group];
}
const AdagradOptions& Adagrad::options(size_t group) const {
  return const_cast<Adagrad*>(this)->options(group);
}

void Adagrad::set_momentum(size_t, double) {
  fail("Adagrad has no momentum to set (a scheduler that cycles momentum needs SGD, Adam or RMSprop)");
}

void Adagrad::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const AdagradOptions& o = options_[g];
    auto& st = state(g, i);
    if (!st.count("step")) {
      st["step"] = zeros({}, DType::int64);
      st["sum"] = full_like(p, o.initial_accumulator_value);
    }
    Tensor& step_t = st["step"];
    const int64_t t = step_t.item<int64_t>() + 1;
    step_t.fill_(static_cast<double>(t));
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

Optimizer::OptionsText Adagrad::options_to_text(size_t group) const {
  const AdagradOptions& o = options(group);
  return {{"lr", number_text(o.lr)},
          {"lr_decay", number_text(o.lr_decay)},
          {"weight_decay", number_text(o.weight_decay)},
          {"initial_accumulator_value", number_text(o.initial_accumulator_value)},
          {"eps", number_text(o.eps)}};
}

void Adagrad::options_from_text(const std::vector<OptionsText>& groups) {
  std::vector<AdagradOptions> parsed;
  for (const auto& t : groups) {
    AdagradOptions o{parse_number(t, "lr"), parse_number(t, "lr_decay"), parse_number(t, "weight_decay"),
                     parse_number(t, "initial_accumulator_value"), parse_number(t, "eps")};
    check_options(o);
    parsed.push_back(o);
  }
  options_ = std::move(parsed);
}

}  // namespace ember::optim
