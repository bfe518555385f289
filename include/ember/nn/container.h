#pragma once
// Containers: Sequential (chains its children's forward) and ModuleList (just holds them).
// Children are named "0", "1", ... so parameter names match PyTorch ("features.0.weight").
#include <initializer_list>
#include <memory>
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

}  // namespace ember::nn
