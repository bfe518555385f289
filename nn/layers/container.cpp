// Sequential, ModuleList, ModuleDict, ParameterList and ParameterDict.
#include "ember/nn/container.h"

#include <algorithm>

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

namespace {
// The entry under `key` in a list of (key, value) pairs, or null.
template <class Entries>
auto find_key(const Entries& entries, const std::string& key) -> decltype(&entries.front()) {
  auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == key; });
  return it == entries.end() ? nullptr : &*it;
}

template <class Entries>
std::vector<std::string> keys_of(const Entries& entries) {
  std::vector<std::string> keys;
  for (const auto& e : entries) keys.push_back(e.first);
  return keys;
}

template <class Entries>
[[noreturn]] void fail_missing_key(const char* container, const std::string& key, const Entries& entries) {
  fail("{}: no entry '{}' (keys: [{}])", container, key, fmt::join(keys_of(entries), ", "));
}
}  // namespace

ModuleDict::ModuleDict(const Entries& modules) {
  for (const auto& [key, m] : modules) add(key, m);
}

void ModuleDict::add(const std::string& key, std::shared_ptr<Module> module) {
  modules_.emplace_back(key, register_module(key, std::move(module)));
}

bool ModuleDict::contains(const std::string& key) const { return find_key(modules_, key) != nullptr; }

const std::shared_ptr<Module>& ModuleDict::operator[](const std::string& key) const {
  const auto* entry = find_key(modules_, key);
  if (!entry) fail_missing_key("ModuleDict", key, modules_);
  return entry->second;
}

std::vector<std::string> ModuleDict::keys() const { return keys_of(modules_); }

void ModuleDict::fail_wrong_type(const std::string& key) const {
  fail("ModuleDict: module '{}' is a {}, not the requested type", key, (*this)[key]->name());
}

ParameterList::ParameterList(const std::vector<Tensor>& parameters) {
  for (const Tensor& p : parameters) append(p);
}

Tensor ParameterList::append(Tensor parameter) {
  parameters_.push_back(register_parameter(std::to_string(parameters_.size()), std::move(parameter)));
  return parameters_.back();
}

const Tensor& ParameterList::operator[](size_t index) const {
  if (index >= parameters_.size())
    fail("ParameterList: index {} out of range for {} parameters", index, parameters_.size());
  return parameters_[index];
}

ParameterDict::ParameterDict(const NamedTensors& parameters) {
  for (const auto& [key, p] : parameters) insert(key, p);
}

Tensor ParameterDict::insert(const std::string& key, Tensor parameter) {
  parameters_.emplace_back(key, register_parameter(key, std::move(parameter)));
  return parameters_.back().second;
}

bool ParameterDict::contains(const std::string& key) const { return find_key(parameters_, key) != nullptr; }

const Tensor& ParameterDict::operator[](const std::string& key) const {
  const auto* entry = find_key(parameters_, key);
  if (!entry) fail_missing_key("ParameterDict", key, parameters_);
  return entry->second;
}

std::vector<std::string> ParameterDict::keys() const { return keys_of(parameters_); }

}  // namespace ember::nn
