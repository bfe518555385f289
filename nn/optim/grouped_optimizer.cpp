// The per-group plumbing every optimizer shares: option checks by field, groups, lazy state with its
// step count, and the options as state-dict text.
#include "ember/optim/grouped_optimizer.h"

#include "ember/ops.h"
#include "ember/optim/adadelta.h"
#include "ember/optim/adagrad.h"
#include "ember/optim/adam.h"
#include "ember/optim/adamax.h"
#include "ember/optim/nadam.h"
#include "ember/optim/radam.h"
#include "ember/optim/rmsprop.h"
#include "ember/optim/sgd.h"
#include "nn/optim/number_list.h"

namespace ember::optim::detail {

template <class Options>
void GroupedOptimizer<Options>::check_options(const Options& o) const {
  const std::string who = name();
  auto at_least_zero = [&](const char* what, double v) {
    if (!(v >= 0)) fail("{}: invalid {} {} (must be >= 0)", who, what, v);
  };
  at_least_zero("learning rate", o.lr);
  if constexpr (requires { o.lr_decay; }) at_least_zero("lr_decay", o.lr_decay);
  if constexpr (requires { o.alpha; }) at_least_zero("alpha", o.alpha);
  if constexpr (requires { o.rho; })
    if (!(o.rho >= 0 && o.rho <= 1)) fail("{}: invalid rho {} (must be in [0, 1])", who, o.rho);
  if constexpr (requires { o.eps; }) at_least_zero("eps", o.eps);
  if constexpr (requires { o.betas; }) {
    if (!(o.betas.first >= 0 && o.betas.first < 1))
      fail("{}: invalid beta1 {} (must be in [0, 1))", who, o.betas.first);
    if (!(o.betas.second >= 0 && o.betas.second < 1))
      fail("{}: invalid beta2 {} (must be in [0, 1))", who, o.betas.second);
  }
  at_least_zero("weight_decay", o.weight_decay);
  if constexpr (requires { o.initial_accumulator_value; })
    at_least_zero("initial_accumulator_value", o.initial_accumulator_value);
  if constexpr (requires { o.momentum; }) at_least_zero("momentum", o.momentum);
  if constexpr (requires { o.momentum_decay; }) at_least_zero("momentum_decay", o.momentum_decay);
  if constexpr (requires { o.nesterov; })
    if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
      fail("{}: Nesterov momentum requires a momentum > 0 and zero dampening (got momentum {}, dampening {})",
           who, o.momentum, o.dampening);
}

template <class Options>
void GroupedOptimizer<Options>::add_param_group(const ParamGroup<Options>& group) {
  check_options(group.options);
  add_group_params(group.params);
  options_.push_back(group.options);
}

template <class Options>
void GroupedOptimizer<Options>::add_param_groups(const std::vector<ParamGroup<Options>>& groups) {
  if (groups.empty()) fail("{}: no parameter groups given", name());
  for (const auto& g : groups) add_param_group(g);
}

template <class Options>
Options& GroupedOptimizer<Options>::options(size_t group) {
  if (group >= options_.size())
    fail("{}: parameter group {} does not exist ({} groups)", name(), group, options_.size());
  return options_[group];
}
template <class Options>
const Options& GroupedOptimizer<Options>::options(size_t group) const {
  return const_cast<GroupedOptimizer*>(this)->options(group);
}

template <class Options>
double GroupedOptimizer<Options>::momentum([[maybe_unused]] size_t group) const {
  if constexpr (requires(Options o) { o.betas; })
    return options(group).betas.first;
  else if constexpr (requires(Options o) { o.momentum; })
    return options(group).momentum;
  else
    return 0.0;
}

template <class Options>
void GroupedOptimizer<Options>::set_momentum([[maybe_unused]] size_t group, [[maybe_unused]] double m) {
  if constexpr (requires(Options o) { o.betas; })
    options(group).betas.first = m;
  else if constexpr (requires(Options o) { o.momentum; })
    options(group).momentum = m;
  else
    fail(
        "{} has no momentum to set (a scheduler that cycles momentum needs SGD, RMSprop or an optimizer "
        "with betas)",
        name());
}

template <class Options>
int64_t GroupedOptimizer<Options>::next_step(size_t group, size_t index, const Tensor& param,
                                             const std::vector<std::string>& buffers) {
  auto& st = state(group, index);
  if (!st.count("step")) {
    st["step"] = zeros({}, DType::int64);
    for (const std::string& b : buffers) st[b] = zeros_like(param);
  }
  Tensor& step_t = st["step"];
  const int64_t t = step_t.item<int64_t>() + 1;
  step_t.fill_(static_cast<double>(t));
  return t;
}

// Every optional field of an options struct, named as in PyTorch's param_groups, visited with its
// name: the one list that options_to_text and options_from_text both read.
template <class Options, class Number, class Flag>
void visit_optional_fields(Options& o, const Number& number, const Flag& flag) {
  if constexpr (requires { o.lr_decay; }) number("lr_decay", o.lr_decay);
  if constexpr (requires { o.alpha; }) number("alpha", o.alpha);
  if constexpr (requires { o.rho; }) number("rho", o.rho);
  if constexpr (requires { o.eps; }) number("eps", o.eps);
  if constexpr (requires { o.initial_accumulator_value; })
    number("initial_accumulator_value", o.initial_accumulator_value);
  if constexpr (requires { o.momentum; }) number("momentum", o.momentum);
  if constexpr (requires { o.dampening; }) number("dampening", o.dampening);
  if constexpr (requires { o.momentum_decay; }) number("momentum_decay", o.momentum_decay);
  if constexpr (requires { o.nesterov; }) flag("nesterov", o.nesterov);
  if constexpr (requires { o.amsgrad; }) flag("amsgrad", o.amsgrad);
  if constexpr (requires { o.centered; }) flag("centered", o.centered);
}

template <class Options>
Optimizer::OptionsText GroupedOptimizer<Options>::options_to_text(size_t group) const {
  Options o = options(group);
  OptionsText t{{"lr", number_text(o.lr)}, {"weight_decay", number_text(o.weight_decay)}};
  if constexpr (requires { o.betas; }) t["betas"] = join_numbers({o.betas.first, o.betas.second});
  visit_optional_fields(
      o, [&](const char* key, double v) { t[key] = number_text(v); },
      [&](const char* key, bool v) { t[key] = bool_text(v); });
  return t;
}

template <class Options>
void GroupedOptimizer<Options>::options_from_text(const std::vector<OptionsText>& groups) {
  std::vector<Options> parsed;
  for (const auto& t : groups) {
    Options o;
    o.lr = parse_number(t, "lr");
    o.weight_decay = parse_number(t, "weight_decay");
    if constexpr (requires { o.betas; }) {
      auto it = t.find("betas");
      const std::vector<double> betas =
          it == t.end() ? std::vector<double>{} : split_numbers("betas", it->second);
      if (betas.size() != 2) fail("optimizer state: option 'betas' is missing or not 'beta1,beta2'");
      o.betas = {betas[0], betas[1]};
    }
    visit_optional_fields(
        o, [&](const char* key, double& v) { v = parse_number(t, key); },
        [&](const char* key, bool& v) { v = parse_bool(t, key); });
    check_options(o);
    parsed.push_back(o);
  }
  options_ = std::move(parsed);
}

template class GroupedOptimizer<SGDOptions>;
template class GroupedOptimizer<AdamOptions>;
template class GroupedOptimizer<AdamWOptions>;
template class GroupedOptimizer<RMSpropOptions>;
template class GroupedOptimizer<AdagradOptions>;
template class GroupedOptimizer<AdadeltaOptions>;
template class GroupedOptimizer<AdamaxOptions>;
template class GroupedOptimizer<NAdamOptions>;
template class GroupedOptimizer<RAdamOptions>;

}  // namespace ember::optim::detail
