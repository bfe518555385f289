#pragma once
// TensorImpl: the shared object behind a Tensor handle.
//   element (i0, i1, ...) lives at storage->data + (offset + sum_k i_k * strides[k]) * itemsize.
// A view is a new TensorImpl over the same Storage with different shape/strides/offset.
#include <memory>

#include "core/storage.h"
#include "ember/autograd.h"
#include "ember/tensor.h"

namespace ember {

// One per tensor that autograd has seen (every recorded output). The small fields come first:
// 72 bytes, the same malloc size class as the 64 before hooks, so recording costs no more.
struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;  // retain_grad() was called on this non-leaf
  uint32_t output_nr = 0;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;    // null for leaves
  std::weak_ptr<autograd::Node> accumulator;  // the leaf's AccumulateGrad node, while alive
  // Tensor::register_hook. A leaf's hooks live only here: its AccumulateGrad node is held weakly
  // (a new one is made for each graph), so that node reads them from the leaf when it runs. A
  // non-leaf's list is also given to its grad_fn, which runs it (Node::output_hooks).
  std::shared_ptr<autograd::HookList> hooks;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  DType dtype = DType::float32;
  int64_t numel = 0;
  bool contiguous = true;
  // A view shares storage with the tensor it was derived from; view_base is the root of that chain
  // (never itself a view), which an in-place op on the view modifies too (ops/inplace.cpp).
  std::shared_ptr<TensorImpl> view_base;
  uint64_t history_version = 0;            // views: the storage's history_version when taken (see storage.h)
  std::unique_ptr<AutogradMeta> autograd;  // allocated on first use

  void* data() const {
    return static_cast<char*>(storage->data) + offset * static_cast<int64_t>(element_size(dtype));
  }
  Device device() const { return storage->device; }
  bool is_view() const { return view_base != nullptr; }
  AutogradMeta& meta() {
    if (!autograd) autograd = std::make_unique<AutogradMeta>();
    return *autograd;
  }
  void bump_version() { storage->version.fetch_add(1, std::memory_order_relaxed); }
};

// ---- shape helpers ----
Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);
bool is_contiguous_layout(const Shape& shape, const Shape& strides);
// Wraps a possibly negative dim into [0, ndim); throws "op: dim d out of range for a N-d tensor".
int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op);
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);
void check_shape_valid(const Shape& shape, std::string_view op);

// ---- construction ----
Tensor make_tensor(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, Shape strides, DType dtype);
// Allocates uninitialised contiguous memory.
Tensor empty_tensor(const Shape& shape, DType dtype, Device device);
// A view of `base` (same storage) with new geometry. Not recorded on the graph.
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset);

// ---- views and in-place ops under autograd (ops/inplace.cpp) ----
// Moves a view whose base has since been given a new history by a recorded in-place op onto that
// history, as PyTorch does: the view becomes "this region of the base as it is now".
void rebase_view_history(const Tensor& view);
// Called wherever autograd reads a tensor's history; one pointer test for a tensor that is no view.
inline void refresh_view_history(const Tensor& t) {
  const TensorImpl* impl = t.impl();
  if (impl->view_base && impl->history_version != impl->storage->history_version.load())
    rebase_view_history(t);
}

}  // namespace ember
