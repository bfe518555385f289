#pragma once
// ember::optim::Optimizer: the base of SGD, Adam and AdamW (mirrors torch.optim.Optimizer).
//
// An optimizer holds parameter groups, each with its own options (learning rate, ...), and
// per-parameter state (momentum buffers, moment estimates) created on the first step. step()
// updates every parameter that has a gradient with one fused kernel per parameter.
// State follows its parameter when Module::to converts the parameter in place: the next step
// moves it to the parameter's dtype and device.
//
// State dict key scheme (what state_dict() returns and checkpoints store):
//   tensors   "state.<i>.<name>"        state tensor <name> of parameter i, where i counts the
//                                       parameters through all groups in order (PyTorch's ids):
//                                       SGD: momentum_buffer; Adam/AdamW: exp_avg, exp_avg_sq,
//                                       max_exp_avg_sq (amsgrad); step (int64 scalar); NAdam's
//                                       mu_product (float64 scalar); the scalars live on the CPU
//   metadata  "optimizer"               the type, e.g. "Adam"
//             "param_groups"            the number of groups
//             "param_groups.<g>.params" the ids of group g's parameters, "0,1,2"
//             "param_groups.<g>.<opt>"  each option as text: numbers round-trip exactly, bools
//                                       are "true"/"false", betas are "0.9,0.999"
// load_state_dict() checks that the type, the groups and the shapes match, casts the state to
// each parameter's dtype and device, and restores the options.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ember/state_dict.h"
#include "ember/tensor.h"

namespace ember::optim {

// Parameters that share one set of options.
template <class Options>
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
};

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (others are skipped, as in PyTorch).
  virtual void step() = 0;
  // Drops every parameter's gradient (set_to_none, PyTorch's default).
  void zero_grad();

  size_t num_param_groups() const { return params_.size(); }
  const std::vector<Tensor>& params(size_t group) const;

  // What schedulers adjust: the learning rate, and the momentum-like coefficient OneCycleLR cycles
  // (SGD's momentum, Adam's beta1).
  virtual double lr(size_t group) const = 0;
  virtual void set_lr(size_t group, double lr) = 0;
  virtual double momentum(size_t group) const = 0;
  virtual void set_momentum(size_t group, double momentum) = 0;

  virtual std::string name() const = 0;  // "SGD", "Adam", "AdamW"
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 protected:
  Optimizer() = default;
  // Validates (floating leaves, each parameter in one group only) and appends a group.
  void add_group_params(const std::vector<Tensor>& params);
  // The state of parameter `index` of `group` (name -> tensor), empty before its first step.
  std::map<std::string, Tensor>& state(size_t group, size_t index) { return state_[group][index]; }
  // The walk every step() shares: with grad mode off, calls update(group, index, param, grad) for each
  // parameter that has a gradient (after checking it matches the parameter and moving its state,
  // but the step count, to the parameter's dtype and device if the parameter was converted since),
  // then bumps the parameter's version so tensors saved for backward notice the in-place update.
  using ParamUpdate =
      std::function<void(size_t group, size_t index, const Tensor& param, const Tensor& grad)>;
  void update_params_with_grads(const ParamUpdate& update);
  // State that is one number per parameter, kept as a float64 scalar on the CPU whatever the
  // parameter's dtype and device (NAdam's mu_product), like the int64 step count.
  virtual bool is_scalar_state(const std::string&) const { return false; }
  // Options as text for the state dict, and back (all groups at once, so that a bad entry
  // changes nothing).
  using OptionsText = std::map<std::string, std::string>;
  virtual OptionsText options_to_text(size_t group) const = 0;
  virtual void options_from_text(const std::vector<OptionsText>& groups) = 0;

 private:
  std::vector<std::vector<Tensor>> params_;
  std::vector<std::vector<std::map<std::string, Tensor>>> state_;
};

// Text helpers for options_to_text / options_from_text.
// Numbers print in the shortest form that reads back to the same double.
std::string number_text(double v);
std::string bool_text(bool v);
// Read option `key` of a group; a missing or malformed entry throws, naming it.
double parse_number(const std::map<std::string, std::string>& text, const std::string& key);
bool parse_bool(const std::map<std::string, std::string>& text, const std::string& key);

}  // namespace ember::optim
