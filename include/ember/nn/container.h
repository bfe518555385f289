#pragma once
// Containers: Sequential (chains its children's forward), ModuleList and ModuleDict (just hold
// them), ParameterList and ParameterDict (hold parameters). List entries are named "0", "1", ...
// and dict entries by their keys, so parameter names match PyTorch ("features.0.weight",
// "heads.cls.weight").
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/nn/module.h"

namespace ember::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  explicit Sequential(const std::vector<std::shared_ptr<Module>>& modules);
  // std::make_shared<Sequential>(std::make_shared<Linear>(4, 8), std::make_shared<ReLU>())
  template <class... Ms>
  requires(sizeof...(Ms) > 0) explicit Sequential(std::shared_ptr<Ms>... modules) {
    (push_back(std::move(modules)), ...);
  }

  // Appends a module under the next index and returns it.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    append(module);
    return module;
  }
  // Calls each child's forward(const Tensor&) in order.
  Tensor forward(const Tensor& input) override;

  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t index) const;
  // The child at `index` as type M; throws if it is something else.
  template <class M>
  std::shared_ptr<M> at(size_t index) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[index]);
    if (!m) fail_wrong_type(index);
    return m;
  }

 private:
  void append(std::shared_ptr<Module> module);
  [[noreturn]] void fail_wrong_type(size_t index) const;
  std::vector<std::shared_ptr<Module>> modules_;
};

class ModuleList : public Module {
 public:
  ModuleList() = default;
  ModuleList(std::initializer_list<std::shared_ptr<Module>> modules);
  explicit ModuleList(const std::vector<std::shared_ptr<Module>>& modules);

  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    append(module);
    return module;
  }
  size_t size() const { return modules_.size(); }
  const std::shared_ptr<Module>& operator[](size_t index) const;
  template <class M>
  std::shared_ptr<M> at(size_t index) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[index]);
    if (!m) fail_wrong_type(index);
    return m;
  }
  auto begin() const { return modules_.begin(); }
  auto end() const { return modules_.end(); }

 private:
  void append(std::shared_ptr<Module> module);
  [[noreturn]] void fail_wrong_type(size_t index) const;
  std::vector<std::shared_ptr<Module>> modules_;
};

// Children by key, in insertion order (torch.nn.ModuleDict). Keys follow the registration rules:
// non-empty, without dots, unique; inserting a key again throws (there is no replacing).
class ModuleDict : public Module {
 public:
  using Entries = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;
  ModuleDict() = default;
  explicit ModuleDict(const Entries& modules);

  template <class M>
  std::shared_ptr<M> insert(const std::string& key, std::shared_ptr<M> module) {
    add(key, module);
    return module;
  }
  bool contains(const std::string& key) const;
  const std::shared_ptr<Module>& operator[](const std::string& key) const;
  // The child under `key` as type M; throws if it is something else.
  template <class M>
  std::shared_ptr<M> at(const std::string& key) const {
    auto m = std::dynamic_pointer_cast<M>((*this)[key]);
    if (!m) fail_wrong_type(key);
    return m;
  }
  std::vector<std::string> keys() const;
  size_t size() const { return modules_.size(); }
  auto begin() const { return modules_.begin(); }  // (key, module) pairs in insertion order
  auto end() const { return modules_.end(); }

 private:
  void add(const std::string& key, std::shared_ptr<Module> module);
  [[noreturn]] void fail_wrong_type(const std::string& key) const;
  Entries modules_;
};

// Parameters "0", "1", ... (torch.nn.ParameterList): each appended tensor becomes a leaf that
// requires grad, as register_parameter makes it.
class ParameterList : public Module {
 public:
  ParameterList() = default;
  explicit ParameterList(const std::vector<Tensor>& parameters);
  Tensor append(Tensor parameter);  // returns the registered parameter
  size_t size() const { return parameters_.size(); }
  const Tensor& operator[](size_t index) const;
  auto begin() const { return parameters_.begin(); }
  auto end() const { return parameters_.end(); }

 private:
  std::vector<Tensor> parameters_;
};

// Parameters by key, in insertion order (torch.nn.ParameterDict); keys as ModuleDict's.
class ParameterDict : public Module {
 public:
  ParameterDict() = default;
  explicit ParameterDict(const NamedTensors& parameters);
  Tensor insert(const std::string& key, Tensor parameter);  // returns the registered parameter
  bool contains(const std::string& key) const;
  const Tensor& operator[](const std::string& key) const;
  std::vector<std::string> keys() const;
  size_t size() const { return parameters_.size(); }
  auto begin() const { return parameters_.begin(); }  // (key, parameter) pairs in insertion order
  auto end() const { return parameters_.end(); }

 private:
  NamedTensors parameters_;
};

}  // namespace ember::nn
