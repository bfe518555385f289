// nn::Module: registration, traversal with dotted names, state dicts, train/eval, conversion.
#include "ember/nn/module.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <ostream>
#include <set>
#include <unordered_set>

#include "core/tensor_impl.h"
#include "ember/autograd.h"

namespace ember::nn {

Module::~Module() = default;

Tensor Module::forward(const Tensor&) {
  fail("{}: this module has no single-tensor forward(const Tensor&); call its own forward", name());
}

// ---- registration ----

void Module::check_new_name(const std::string& name, const char* what) const {
  if (name.empty()) fail("{}: {} name must not be empty", this->name(), what);
  if (name.find('.') != std::string::npos)
    fail("{}: {} name '{}' must not contain '.' (dots join the names of nested modules)", this->name(), what,
         name);
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_))
    fail("{}: cannot register {} '{}': the name is already taken", this->name(), what, name);
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, bool requires_grad) {
  check_new_name(name, "parameter");
  if (!tensor.defined()) fail("{}: parameter '{}' is an undefined tensor", this->name(), name);
  if (!tensor.is_leaf())
    fail("{}: parameter '{}' must be a leaf tensor (it was computed by an op); pass tensor.detach()",
         this->name(), name);
  tensor.requires_grad_(requires_grad);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name(name, "buffer");
  if (!tensor.defined()) fail("{}: buffer '{}' is an undefined tensor", this->name(), name);
  // Kept as given (every handle sees to() conversions), except that a result of autograd-recorded
  // ops is detached so the buffer does not hold its graph alive.
  buffers_.emplace_back(name, tensor.is_leaf() ? tensor : tensor.detach());
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "submodule");
  if (!module) fail("{}: submodule '{}' is null", this->name(), name);
  if (module.get() == this) fail("{}: a module cannot be its own submodule ('{}')", this->name(), name);
  children_.emplace_back(name, std::move(module));
}

// ---- traversal ----

void Module::collect(NamedTensors Module::*list, const std::string& prefix, bool recurse, NamedTensors& out,
                     std::unordered_set<const void*>* seen) const {
  for (const auto& [n, t] : this->*list) {
    // A tensor shared by two modules (tied weights) is reported once, under its first name, when
    // the caller tracks what it has seen (parameters() must not hand an optimizer a tensor twice).
    if (!seen || seen->insert(t.impl()).second) out.emplace_back(prefix + n, t);
  }
  if (!recurse) return;
  for (const auto& [n, child] : children_) child->collect(list, prefix + n + ".", true, out, seen);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  std::unordered_set<const void*> seen;
  collect(&Module::parameters_, "", recurse, out, &seen);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  std::unordered_set<const void*> seen;
  collect(&Module::buffers_, "", recurse, out, &seen);
  return out;
}

NamedTensors Module::named_state() const {
  NamedTensors out;
  collect(&Module::parameters_, "", true, out, nullptr);
  collect(&Module::buffers_, "", true, out, nullptr);
  return out;
}

namespace {
std::vector<Tensor> values(const NamedTensors& named) {
  std::vector<Tensor> out;
  out.reserve(named.size());
  for (const auto& [n, t] : named) out.push_back(t);
  return out;
}
}  // namespace

std::vector<Tensor> Module::parameters(bool recurse) const { return values(named_parameters(recurse)); }
std::vector<Tensor> Module::buffers(bool recurse) const { return values(named_buffers(recurse)); }

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  fn(*this);
  for (auto& [n, c] : children_) c->apply(fn);
}

// ---- state ----

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const auto& [n, t] : named_state()) out.emplace(n, t.detach());
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  NamedTensors own = named_state();  // a tied tensor is loaded under each name (the last wins)

  std::vector<std::string> missing, unexpected, problems;
  std::set<std::string> own_names;
  for (const auto& [n, t] : own) {
    own_names.insert(n);
    auto it = state.find(n);
    if (it == state.end()) {
      missing.push_back(n);
    } else if (!it->second.defined()) {
      problems.push_back(fmt::format("'{}' is an undefined tensor", n));
    } else if (it->second.shape() != t.shape()) {
      problems.push_back(fmt::format("'{}' has shape {} in the state dict but {} in the module", n,
                                     shape_str(it->second.shape()), shape_str(t.shape())));
    } else if (is_floating(t.dtype()) != is_floating(it->second.dtype())) {
      problems.push_back(
          fmt::format("'{}' is {} in the state dict but {} in the module", n, it->second.dtype(), t.dtype()));
    }
  }
  for (const auto& [n, t] : state)
    if (!own_names.count(n)) unexpected.push_back(n);

  if (!problems.empty()) fail("{}.load_state_dict: {}", name(), fmt::join(problems, "; "));
  if (strict && (!missing.empty() || !unexpected.empty()))
    fail("{}.load_state_dict: missing keys [{}]; unexpected keys [{}]", name(), fmt::join(missing, ", "),
         fmt::join(unexpected, ", "));

  NoGradGuard no_grad;
  for (auto& [n, t] : own) {
    auto it = state.find(n);
    if (it != state.end() && !it->second.is_same(t)) t.copy_(it->second);
  }
}

// ---- mode ----

void Module::train(bool on) {
  apply([on](Module& m) { m.training_ = on; });
}

// ---- conversion ----

namespace {
// Points `t` at `src`'s memory (same shape), keeping t's identity: every handle to t, including
// the optimizer's and the autograd leaf accumulator's, sees the new data. PyTorch calls this
// set_data.
void set_data(const Tensor& t, const Tensor& src) {
  TensorImpl* impl = t.impl();
  const TensorImpl* s = src.impl();
  impl->storage = s->storage;
  impl->offset = s->offset;
  impl->strides = s->strides;
  impl->dtype = s->dtype;
  impl->contiguous = s->contiguous;
  impl->view_base.reset();
}
}  // namespace

void Module::convert(std::optional<Device> device, std::optional<DType> dtype) {
  if (dtype && !is_floating(*dtype))
    fail("{}.to: modules convert to floating dtypes only, got {}", name(), *dtype);
  NoGradGuard no_grad;
  auto move = [&](const Tensor& t) {
    Device want_device = device.value_or(t.device());
    DType want_dtype = dtype && is_floating(t.dtype()) ? *dtype : t.dtype();
    if (t.device() == want_device && t.dtype() == want_dtype) return;
    Tensor grad = t.grad();
    set_data(t, t.detach().to(want_device, want_dtype));
    if (grad.defined()) t.impl()->meta().grad = grad.to(want_device, want_dtype);
  };
  for (const Tensor& p : parameters()) move(p);
  for (const Tensor& b : buffers()) move(b);
}

void Module::to(Device device) { convert(device, std::nullopt); }
void Module::to(DType dtype) { convert(std::nullopt, dtype); }
void Module::to(Device device, DType dtype) { convert(device, dtype); }

void Module::zero_grad() {
  for (Tensor& p : parameters())
    if (p.grad().defined()) p.set_grad(Tensor());
}

// ---- printing ----

std::string Module::name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string full = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  // "ember::nn::Linear" -> "Linear"; "(anonymous namespace)::Net" -> "Net"
  size_t cut = full.rfind("::");
  return cut == std::string::npos ? full : full.substr(cut + 2);
}

std::string Module::str() const {
  std::string extra = extra_repr();
  if (children_.empty()) return name() + "(" + extra + ")";
  std::string out = name() + "(\n";
  if (!extra.empty()) out += "  " + extra + "\n";
  for (const auto& [n, c] : children_) {
    out += "  (" + n + "): ";
    // indent the child's own nested lines by two spaces, as PyTorch does
    for (char ch : c->str()) {
      out += ch;
      if (ch == '\n') out += "  ";
    }
    out += "\n";
  }
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Module& module) { return os << module.str(); }

}  // namespace ember::nn
