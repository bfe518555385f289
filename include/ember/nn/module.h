#pragma once
// ember::nn::Module, the base of every layer and model (mirrors torch::nn::Module).
//
// A module owns named parameters (trainable leaf tensors), named buffers (state that is saved but
// not trained, such as BatchNorm's running statistics) and named child modules. Modules are held
// by std::shared_ptr; a model registers its pieces in its constructor:
//
//   struct Net : ember::nn::Module {
//     std::shared_ptr<ember::nn::Linear> fc1;
//     Net() { fc1 = register_module("fc1", std::make_shared<ember::nn::Linear>(784, 256)); }
//     ember::Tensor forward(const ember::Tensor& x) override { return fc1->forward(x); }
//   };
//
// Names join with dots exactly as in PyTorch ("features.0.weight"), so state dicts are
// interchangeable with PyTorch models of the same structure.
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ember/tensor.h"

namespace ember::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The single-tensor forward. Layers override it; Sequential chains it. The base version
  // throws, naming the module type, for modules that have no single-input forward.
  virtual Tensor forward(const Tensor& input);

  // ---- registration (returns what was registered, so it can initialise a member) ----
  // The tensor becomes a leaf; requires_grad is set as asked. Names are non-empty, dot-free and
  // unique among this module's parameters, buffers and children.
  Tensor register_parameter(const std::string& name, Tensor tensor, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- traversal (registration order; own entries before children's; shared tensors once) ----
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  std::vector<std::shared_ptr<Module>> children() const;
  // Calls fn on this module and then on every descendant, depth first.
  void apply(const std::function<void(Module&)>& fn);

  // ---- state ----
  // Parameters and buffers by dotted name. The tensors share memory with the module (detached).
  // A tensor shared by two modules (tied weights) appears under each of its names, as in
  // PyTorch, so that either engine loads the other's state dict strictly.
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in (casting dtype and moving device as needed). Shapes must match. With
  // strict, missing and unexpected keys are errors; without, they are ignored. Checks everything
  // before copying anything, so a failed load leaves the module unchanged.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // ---- mode ----
  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- placement, in place: every handle to a parameter sees the change and parameters stay
  // leaves that require grad. to(DType) converts floating tensors only (an int64 step counter
  // stays int64), as in PyTorch.
  void to(Device device);
  void to(DType dtype);
  void to(Device device, DType dtype);

  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  // ---- printing ----
  // The type name, e.g. "Linear" (a user's class gets its demangled C++ name).
  virtual std::string name() const;
  // The constructor arguments worth showing, e.g. "in_features=784, out_features=256, bias=true".
  virtual std::string extra_repr() const { return ""; }
  // The nested description PyTorch prints for a model.
  std::string str() const;

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  // Appends the entries of `list` (recursively), each shared tensor once unless `seen` is null.
  void collect(NamedTensors Module::*list, const std::string& prefix, bool recurse, NamedTensors& out,
               std::unordered_set<const void*>* seen) const;
  // Parameters then buffers, every name of every tensor: what state_dict holds.
  NamedTensors named_state() const;
  void convert(std::optional<Device> device, std::optional<DType> dtype);

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

std::ostream& operator<<(std::ostream& os, const Module& module);

}  // namespace ember::nn
