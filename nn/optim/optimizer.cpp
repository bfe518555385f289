// Optimizer base: parameter groups, per-parameter state, and the state dict (key scheme in
// include/ember/optim/optimizer.h).
#include "ember/optim/optimizer.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <set>

#include "core/tensor_impl.h"
#include "ember/autograd.h"

namespace ember::optim {

Optimizer::~Optimizer() = default;

const std::vector<Tensor>& Optimizer::params(size_t group) const {
  if (group >= params_.size())
    fail("{}: parameter group {} does not exist ({} groups)", name(), group, params_.size());
  return params_[group];
}

void Optimizer::zero_grad() {
  for (auto& group : params_)
    for (Tensor& p : group)
      if (p.grad().defined()) p.set_grad(Tensor());
}

void Optimizer::update_params_with_grads(const ParamUpdate& update) {
  NoGradGuard no_grad;
  for (size_t g = 0; g < params_.size(); ++g) {
    for (size_t i = 0; i < params_[g].size(); ++i) {
      const Tensor& p = params_[g][i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (grad.dtype() != p.dtype() || grad.device() != p.device() || grad.shape() != p.shape())
        fail("{}.step: gradient ({} {} on {}) does not match its parameter ({} {} on {})", name(),
             shape_str(grad.shape()), grad.dtype(), grad.device(), shape_str(p.shape()), p.dtype(),
             p.device());
      // State made before the parameter was converted in place (Module::to) follows it, as in
      // load_state_dict: the fused kernels read every operand with the parameter's dtype and device.
      for (auto& [n, t] : state_[g][i])
        if (n != "step" && !is_scalar_state(n) && (t.dtype() != p.dtype() || t.device() != p.device()))
          t = t.to(p.device(), p.dtype());
      update(g, i, p, grad);
      p.impl()->bump_version();
    }
  }
}

void Optimizer::add_group_params(const std::vector<Tensor>& params) {
  if (params.empty()) fail("{}: a parameter group needs at least one parameter", name());
  std::set<const void*> seen;
  for (const auto& group : params_)
    for (const Tensor& p : group) seen.insert(p.impl());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    if (!p.defined()) fail("{}: parameter {} of the new group is an undefined tensor", name(), i);
    if (!p.is_floating_point())
      fail("{}: parameter {} of the new group is {}; only floating tensors can be optimized", name(), i,
           p.dtype());
    if (!p.is_leaf())
      fail(
          "{}: parameter {} of the new group (shape {}) is not a leaf tensor; optimize the leaves it was "
          "computed "
          "from",
          name(), i, shape_str(p.shape()));
    if (!seen.insert(p.impl()).second)
      fail("{}: parameter {} of the new group (shape {}) appears more than once across parameter groups",
           name(), i, shape_str(p.shape()));
  }
  params_.push_back(params);
  state_.emplace_back(params.size());
}

// ---- state dict ----

std::string number_text(double v) { return fmt::format("{}", v); }
std::string bool_text(bool v) { return v ? "true" : "false"; }

namespace {
const std::string& lookup(const std::map<std::string, std::string>& text, const std::string& key) {
  auto it = text.find(key);
  if (it == text.end()) fail("optimizer state: option '{}' is missing", key);
  return it->second;
}
}  // namespace

double parse_number(const std::map<std::string, std::string>& text, const std::string& key) {
  const std::string& s = lookup(text, key);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    fail("optimizer state: option '{}' = '{}' is not a number", key, s);
  return v;
}

bool parse_bool(const std::map<std::string, std::string>& text, const std::string& key) {
  const std::string& s = lookup(text, key);
  if (s == "true") return true;
  if (s == "false") return false;
  fail("optimizer state: option '{}' = '{}' is not true or false", key, s);
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  sd.metadata["optimizer"] = name();
  sd.metadata["param_groups"] = std::to_string(params_.size());
  size_t id = 0;
  for (size_t g = 0; g < params_.size(); ++g) {
    std::vector<size_t> ids;
    for (size_t i = 0; i < params_[g].size(); ++i, ++id) {
      ids.push_back(id);
      for (const auto& [n, t] : state_[g][i]) sd.tensors[fmt::format("state.{}.{}", id, n)] = t.detach();
    }
    sd.metadata[fmt::format("param_groups.{}.params", g)] = fmt::format("{}", fmt::join(ids, ","));
    for (const auto& [k, v] : options_to_text(g)) sd.metadata[fmt::format("param_groups.{}.{}", g, k)] = v;
  }
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  const std::string me = name() + ".load_state_dict";
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = sd.metadata.find(key);
    if (it == sd.metadata.end()) fail("{}: metadata '{}' is missing", me, key);
    return it->second;
  };
  if (meta("optimizer") != name()) fail("{}: the state is for a {} optimizer", me, meta("optimizer"));
  if (meta("param_groups") != std::to_string(params_.size()))
    fail("{}: the state has {} parameter groups, this optimizer has {}", me, meta("param_groups"),
         params_.size());

  // Map global ids to (group, index) and check each group's size.
  std::vector<std::pair<size_t, size_t>> where;
  std::vector<OptionsText> options(params_.size());
  for (size_t g = 0; g < params_.size(); ++g) {
    const std::string& ids = meta(fmt::format("param_groups.{}.params", g));
    size_t count = ids.empty() ? 0 : static_cast<size_t>(std::count(ids.begin(), ids.end(), ',')) + 1;
    if (count != params_[g].size())
      fail("{}: parameter group {} has {} parameters in the state but {} here", me, g, count,
           params_[g].size());
    for (size_t i = 0; i < params_[g].size(); ++i) where.emplace_back(g, i);
    const std::string prefix = fmt::format("param_groups.{}.", g);
    for (auto it = sd.metadata.lower_bound(prefix); it != sd.metadata.end() && it->first.starts_with(prefix);
         ++it)
      options[g][it->first.substr(prefix.size())] = it->second;
  }

  // Build the new state completely before touching the current one.
  std::vector<std::vector<std::map<std::string, Tensor>>> fresh(params_.size());
  for (size_t g = 0; g < params_.size(); ++g) fresh[g].resize(params_[g].size());
  NoGradGuard no_grad;
  for (const auto& [key, t] : sd.tensors) {
    auto bad_key = [&] { fail("{}: unexpected tensor key '{}' (expected state.<id>.<name>)", me, key); };
    if (!key.starts_with("state.")) bad_key();
    size_t id = 0;
    const char *begin = key.c_str() + 6, *end = key.c_str() + key.size();
    auto [rest, ec] = std::from_chars(begin, end, id);
    if (ec != std::errc() || rest == end || *rest != '.' || rest + 1 == end) bad_key();
    if (id >= where.size())
      fail("{}: '{}' refers to parameter {}, but there are {}", me, key, id, where.size());
    if (!t.defined()) fail("{}: '{}' is an undefined tensor", me, key);
    auto [g, i] = where[id];
    const Tensor& p = params_[g][i];
    std::string n(rest + 1);
    Tensor copy;
    if (n == "step") {
      if (t.numel() != 1)
        fail("{}: '{}' should hold one step count, has shape {}", me, key, shape_str(t.shape()));
      const double step = t.detach().to(Device::cpu(), DType::float64).item<double>();
      if (!(step >= 0 && step < 0x1p62) || step != std::floor(step))  // (NaN fails too)
        fail("{}: '{}' holds {}, which is not a step count", me, key, step);
      copy = t.detach().reshape({}).to(Device::cpu(), DType::int64).clone();
    } else if (is_scalar_state(n)) {
      if (t.numel() != 1)
        fail("{}: '{}' should hold one number, has shape {}", me, key, shape_str(t.shape()));
      copy = t.detach().reshape({}).to(Device::cpu(), DType::float64).clone();
    } else {
      if (t.shape() != p.shape())
        fail("{}: '{}' has shape {} but parameter {} has shape {}", me, key, shape_str(t.shape()), id,
             shape_str(p.shape()));
      copy = empty_tensor(p.shape(), p.dtype(), p.device());
      copy.copy_(t);
    }
    fresh[g][i][n] = copy;
  }
  options_from_text(options);  // throws (changing nothing) on a malformed option
  state_ = std::move(fresh);
}

}  // namespace ember::optim
