// Sequential and ModuleList.
#include "ember/nn/container.h"

namespace ember::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) append(m);
}
Sequential::Sequential(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) append(m);
}

void Sequential::append(std::shared_ptr<Module> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& m : modules_) x = m->forward(x);
  return x;
}

const std::shared_ptr<Module>& Sequential::operator[](size_t index) const {
  if (index >= modules_.size())
    fail("Sequential: index {} out of range for {} modules", index, modules_.size());
  return modules_[index];
}

void Sequential::fail_wrong_type(size_t index) const {
  fail("Sequential: module {} is a {}, not the requested type", index, modules_[index]->name());
}

ModuleList::ModuleList(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) append(m);
}
ModuleList::ModuleList(const std::vector<std::shared_ptr<Module>>& modules) {
  for (const auto& m : modules) append(m);
}

void ModuleList::append(std::shared_ptr<Module> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
}

const std::shared_ptr<Module>& ModuleList::operator[](size_t index) const {
  if (index >= modules_.size())
    fail("ModuleList: index {} out of range for {} modules", index, modules_.size());
  return modules_[index];
}

void ModuleList::fail_wrong_type(size_t index) const {
  fail("ModuleList: module {} is a {}, not the requested type", index, modules_[index]->name());
}

}  // namespace ember::nn
