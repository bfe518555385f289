// RMSprop: option checks, lazy state, and the update in tensor ops (PyTorch's single-tensor
// algorithm, op for op).
#include "ember/optim/rmsprop.h"

#include "ember/autograd.h"
#include "ember/ops.h"
#include "nn/optim/float32_step.h"

namespace ember::optim {

namespace {
void check_options(const RMSpropOptions& o) {
  if (!(o.lr >= 0)) fail("RMSprop: invalid learning rate {} (must be >= 0)", o.lr);
  if (!(o.alpha >= 0)) fail("RMSprop: invalid alpha {} (must be >= 0)", o.alpha);
  if (!(o.eps >= 0)) fail("RMSprop: invalid eps {} (must be >= 0)", o.eps);
  if (!(o.weight_decay >= 0)) fail("RMSprop: invalid weight_decay {} (must be >= 0)", o.weight_decay);
  if (!(o.momentum >= 0)) fail("RMSprop: invalid momentum {} (must be >= 0)", o.momentum);
}
}  // namespace

RMSprop::RMSprop(const std::vector<Tensor>& params, RMSpropOptions options) {
  add_param_group({params, options});
}

RMSprop::RMSprop(const std::vector<ParamGroup<RMSpropOptions>>& groups) {
  if (groups.empty()) fail("RMSprop: no parameter groups given");
  for (const auto& g : groups) add_param_group(g);
}

void RMSprop::add_param_group(const ParamGroup<RMSpropOptions>& group) {
  check_options(group.options);
  add_group_params(group.params);
  options_.push_back(group.options);
}

RMSpropOptions& RMSprop::options(size_t group) {
  if (group >= options_.size())
    fail("RMSprop: parameter group {} does not exist ({} groups)", group, options_.size());
  return options_[group];
}
const RMSpropOptions& RMSprop::options(size_t group) const {
  return const_cast<RMSprop*>(this)->options(group);
}

void RMSprop::step() {
  update_params_with_grads([&](size_t g, size_t i, const Tensor& p, const Tensor& grad) {
    const RMSpropOptions& o = options_[g];
    auto& st = state(g, i);
    if (!st.count("step")) {
      st["step"] = zeros({}, DType::int64);
      st["square_avg"] = zeros_like(p);
    }
    if (o.momentum > 0 && !st.count("momentum_buffer")) st["momentum_buffer"] = zeros_like(p);
    if (o.centered && !st.count("grad_avg")) st["grad_avg"] = zeros_like(p);
    Tensor& step_t = st["step"];
    step_t.fill_(static_cast<double>(step_t.item<int64_t>() + 1));
    const Tensor buf = o.momentum > 0 ? st["momentum_buffer"] : Tensor();
    const Tensor grad_avg = o.centered ? st["grad_avg"] : Tensor();
    detail::step_in_float32_if_bfloat16(
        [&](Tensor param, const Tensor& g_in, Tensor square_avg, Tensor b, Tensor a) {
          const Tensor d = o.weight_decay != 0 ? g_in + param * o.weight_decay : g_in;
          square_avg.mul_(o.alpha).add_(d * d, 1 - o.alpha);
          Tensor avg;
          if (o.centered) {
            a.mul_(o.alpha).add_(d, 1 - o.alpha);
            avg = sqrt(square_avg - a * a);
          } else {
            avg = sqrt(square_avg);
          }
          avg.add_(o.eps);
          if (o.momentum > 0) {
            b.mul_(o.momentum).add_(d / avg);
            param.sub_(b, o.lr);
          } else {
            param.sub_(d / avg, o.lr);
          }
        },
        p, grad, st["square_avg"], buf, grad_avg);
  });
}

Optimizer::OptionsText RMSprop::options_to_text(size_t group) const {
  const RMSpropOptions& o = options(group);
  return {{"lr", number_text(o.lr)},
          {"alpha", number_text(o.alpha)},
          {"eps", number_text(o.eps)},
          {"weight_decay", number_text(o.weight_decay)},
          {"momentum", number_text(o.momentum)},
          {"centered", bool_text(o.centered)}};
}

void RMSprop::options_from_text(const std::vector<OptionsText>& groups) {
  std::vector<RMSpropOptions> parsed;
  for (const auto& t : groups) {
    RMSpropOptions o{parse_number(t, "lr"),           parse_number(t, "alpha"),    parse_number(t, "eps"),
                     parse_number(t, "weight_decay"), parse_number(t, "momentum"), parse_bool(t, "centered")};
    check_options(o);
    parsed.push_back(o);
  }
  options_ = std::move(parsed);
}

}  // namespace ember::optim
