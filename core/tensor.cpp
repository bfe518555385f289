// Tensor handle methods that only touch metadata or raw data, plus the shape helpers.
#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/grad_node.h"
#include "core/tensor_impl.h"
#include "ember/ops.h"
#include "ops/kernels/copy.h"

namespace ember {

// ---- dtype ----
size_t element_size(DType t) {
  switch (t) {
    case DType::float32:
      return 4;
    case DType::float64:
      return 8;
    case DType::int64:
      return 8;
    case DType::int32:
      return 4;
    case DType::uint8:
      return 1;
    case DType::boolean:
      return 1;
    case DType::bfloat16:
      return 2;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::float32:
      return "float32";
    case DType::float64:
      return "float64";
    case DType::int64:
      return "int64";
    case DType::int32:
      return "int32";
    case DType::uint8:
      return "uint8";
    case DType::boolean:
      return "bool";
    case DType::bfloat16:
      return "bfloat16";
  }
  return "?";
}

DType promote_types(DType a, DType b) {
  auto rank = [](DType t) {
    switch (t) {
      case DType::boolean:
        return 0;
      case DType::uint8:
        return 1;
      case DType::int32:
        return 2;
      case DType::int64:
        return 3;
      case DType::bfloat16:
        return 4;
      case DType::float32:
        return 5;
      case DType::float64:
        return 6;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

// ---- shape helpers ----
std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

int64_t shape_numel(const Shape& shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n))
      fail("shape {}: the number of elements overflows a 64-bit count", shape_str(shape));
  return n;
}

bool is_contiguous_layout(const Shape& shape, const Shape& strides) {
  if (shape_numel(shape) == 0) return true;  // no element is out of place (PyTorch agrees)
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op) {
  int64_t n = std::max<int64_t>(ndim, 1);
  if (dim < -n || dim >= n)
    fail("{}: dim {} out of range for a {}-d tensor (expected in [{}, {}])", op, dim, ndim, -n, n - 1);
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail("{}: shapes {} and {} cannot be broadcast (dim {}: {} vs {})", op, shape_str(a), shape_str(b), i,
           da, db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void check_shape_valid(const Shape& shape, std::string_view op) {
  for (int64_t s : shape)
    if (s < 0) fail("{}: negative dimension in shape {}", op, shape_str(shape));
  // The product of the sizes, a zero counted as 1: the largest contiguous stride, which must not
  // overflow even when some other dim is 0 and the tensor holds no elements.
  int64_t n = 1;
  for (int64_t s : shape)
    if (__builtin_mul_overflow(n, std::max<int64_t>(s, 1), &n))
      fail("{}: shape {} has more elements than a 64-bit count can hold", op, shape_str(shape));
}

Tensor make_tensor(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, Shape strides,
                   DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->numel = shape_numel(shape);
  impl->contiguous = is_contiguous_layout(shape, strides);
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor empty_tensor(const Shape& shape, DType dtype, Device device) {
  check_shape_valid(shape, "empty");
  const int64_t numel = shape_numel(shape);
  if (numel > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(element_size(dtype)))
    fail("empty: a {} tensor of shape {} needs more bytes than a 64-bit size can count", dtype,
         shape_str(shape));
  size_t nbytes = static_cast<size_t>(numel) * element_size(dtype);
  return make_tensor(std::make_shared<Storage>(nbytes, device), 0, shape, contiguous_strides(shape), dtype);
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  refresh_view_history(base);  // so that a view of a view starts from its base's current history
  Tensor v = make_tensor(base.impl()->storage, offset, std::move(shape), std::move(strides), base.dtype());
  const TensorImpl* b = base.impl();
  v.impl()->view_base = b->view_base ? b->view_base : base.impl_ptr();
  v.impl()->history_version = b->storage->history_version.load();
  return v;
}

// ---- metadata ----
#define EMBER_CHECK_DEFINED(op) EMBER_CHECK(impl_ != nullptr, "{}: called on an undefined tensor", op)

const Shape& Tensor::shape() const {
  EMBER_CHECK_DEFINED("shape");
  return impl_->shape;
}
const Shape& Tensor::strides() const {
  EMBER_CHECK_DEFINED("strides");
  return impl_->strides;
}
int64_t Tensor::dim() const {
  EMBER_CHECK_DEFINED("dim");
  return static_cast<int64_t>(impl_->shape.size());
}
int64_t Tensor::size(int64_t d) const {
  EMBER_CHECK(dim() > 0, "size: a 0-d tensor has no dimension {}", d);
  return impl_->shape[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  EMBER_CHECK(dim() > 0, "stride: a 0-d tensor has no dimension {}", d);
  return impl_->strides[wrap_dim(d, dim(), "stride")];
}
int64_t Tensor::numel() const {
  EMBER_CHECK_DEFINED("numel");
  return impl_->numel;
}
int64_t Tensor::storage_offset() const {
  EMBER_CHECK_DEFINED("storage_offset");
  return impl_->offset;
}
DType Tensor::dtype() const {
  EMBER_CHECK_DEFINED("dtype");
  return impl_->dtype;
}
Device Tensor::device() const {
  EMBER_CHECK_DEFINED("device");
  return impl_->device();
}
TensorOptions Tensor::options() const { return TensorOptions().dtype(dtype()).device(device()); }
bool Tensor::is_contiguous() const {
  EMBER_CHECK_DEFINED("is_contiguous");
  return impl_->contiguous;
}
void* Tensor::raw_data() const {
  EMBER_CHECK_DEFINED("raw_data");
  return impl_->data();
}

template <class T>
T* Tensor::data_ptr() {
  EMBER_CHECK_DEFINED("data_ptr");
  EMBER_CHECK(dtype_of<T>() == dtype(), "data_ptr: requested {} but the tensor is {}", dtype_of<T>(),
              dtype());
  return static_cast<T*>(impl_->data());
}
template <class T>
const T* Tensor::data_ptr() const {
  return const_cast<Tensor*>(this)->data_ptr<T>();
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  EMBER_CHECK_DEFINED("to_vector");
  Tensor c = to(Device::cpu(), dtype_of<T>()).contiguous();
  const T* p = static_cast<const T*>(c.raw_data());
  return std::vector<T>(p, p + c.numel());
}

template <class T>
T Tensor::item() const {
  EMBER_CHECK_DEFINED("item");
  EMBER_CHECK(numel() == 1, "item: expected a tensor with one element, got shape {}", shape_str(shape()));
  return to_vector<T>()[0];
}

#define EMBER_INSTANTIATE(T)                            \
  template T* Tensor::data_ptr<T>();                    \
  template const T* Tensor::data_ptr<T>() const;        \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T Tensor::item<T>() const;
EMBER_INSTANTIATE(float)
EMBER_INSTANTIATE(double)
EMBER_INSTANTIATE(int64_t)
EMBER_INSTANTIATE(int32_t)
EMBER_INSTANTIATE(uint8_t)
EMBER_INSTANTIATE(bool)
EMBER_INSTANTIATE(bfloat16)
#undef EMBER_INSTANTIATE

// ---- autograd accessors ----
bool Tensor::requires_grad() const {
  if (!impl_) return false;
  refresh_view_history(*this);
  return impl_->autograd && impl_->autograd->requires_grad;
}

Tensor& Tensor::requires_grad_(bool on) {
  EMBER_CHECK_DEFINED("requires_grad_");
  if (on && !is_floating_point())
    fail("requires_grad_: only floating-point tensors can require gradients (got {})", dtype());
  if (!on && impl_->autograd && impl_->autograd->grad_fn)
    fail("requires_grad_: cannot turn off requires_grad on a non-leaf tensor; use detach()");
  impl_->meta().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl_ || !impl_->autograd) return {};
  return impl_->autograd->grad;
}

void Tensor::set_grad(const Tensor& g) {
  EMBER_CHECK_DEFINED("set_grad");
  if (g.defined() && g.shape() != shape())
    fail("set_grad: gradient shape {} does not match tensor shape {}", shape_str(g.shape()),
         shape_str(shape()));
  impl_->meta().grad = g;
}

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  if (!impl_) return nullptr;
  refresh_view_history(*this);
  return impl_->autograd ? impl_->autograd->grad_fn : nullptr;
}

void Tensor::backward(const Tensor& gradient, std::optional<bool> retain_graph, bool create_graph) const {
  EMBER_CHECK_DEFINED("backward");
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

// ---- hooks (run by the engine, core/autograd.cpp) ----
unsigned Tensor::_register_hook(std::function<Tensor(const Tensor&)> hook) const {
  if (!requires_grad())
    fail("register_hook: cannot register a hook on a tensor that doesn't require gradient");
  AutogradMeta& meta = impl_->meta();
  // A non-leaf's list joins its grad_fn. If an in-place op has since given the tensor a new
  // grad_fn, the hooks so far stay with the old one (they see the gradient of the value before
  // the op) and new ones start a new list on the new grad_fn, as in LibTorch 1.13.
  if (!meta.hooks || meta.hooks->node.lock() != meta.grad_fn) {
    meta.hooks = std::make_shared<autograd::HookList>();
    meta.hooks->node = meta.grad_fn;
    if (meta.grad_fn) meta.grad_fn->add_output_hooks(meta.output_nr, meta.hooks);
  }
  meta.hooks->hooks.push_back(std::move(hook));
  return static_cast<unsigned>(meta.hooks->hooks.size() - 1);
}

void Tensor::remove_hook(unsigned handle) const {
  const AutogradMeta* meta = impl_ ? impl_->autograd.get() : nullptr;
  if (!meta || !meta->hooks || handle >= meta->hooks->hooks.size())
    fail("remove_hook: invalid handle, no hook at position {}", handle);
  meta->hooks->hooks[handle] = nullptr;  // keeps the others' positions; removing twice does nothing
}

// As in LibTorch 1.13, retain_grad() is a hook like the others, at its place in the order: the
// gradient it keeps is the one after the hooks registered before it.
void Tensor::retain_grad() const {
  if (!requires_grad()) fail("retain_grad: can't retain_grad on a tensor that doesn't require gradient");
  if (is_leaf()) return;  // a leaf keeps its gradient anyway
  AutogradMeta& meta = impl_->meta();
  if (meta.retains_grad && meta.hooks->node.lock() == meta.grad_fn) return;  // see the skip below
  // Weak references: the tensor owns the node that owns this hook.
  _register_hook([self = std::weak_ptr<TensorImpl>(impl_),
                  node = std::weak_ptr<autograd::Node>(meta.grad_fn)](const Tensor& grad) {
    std::shared_ptr<TensorImpl> impl = self.lock();
    // Skipped once an in-place op has given the tensor a new grad_fn: this is then the gradient
    // of its old value, and apply_inplace (ops/inplace.cpp) has registered retain_grad on the new one.
    if (!impl || impl->autograd->grad_fn != node.lock()) return Tensor();
    Tensor& kept = impl->autograd->grad;
    kept = kept.defined() ? kept + grad : grad.clone();  // out of place, as in LibTorch
    return Tensor();
  });
  meta.retains_grad = true;
}

bool Tensor::retains_grad() const { return impl_ && impl_->autograd && impl_->autograd->retains_grad; }

Tensor Tensor::detach() const {
  EMBER_CHECK_DEFINED("detach");
  return make_tensor(impl_->storage, impl_->offset, impl_->shape, impl_->strides, impl_->dtype);
}

}  // namespace ember
