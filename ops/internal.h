#pragma once
// Helpers shared by the op implementations (not part of the public API).
#include <functional>
#include <string_view>

#include "core/grad_node.h"
#include "core/tensor_impl.h"
#include "ember/ops.h"
#include "ops/kernels/elementwise.h"
#include "ops/kernels/scan.h"

namespace ember {

// Raw data copy (no autograd): src is broadcast to dst's shape and cast to dst's dtype; devices
// may differ.
void copy_into(const Tensor& dst, const Tensor& src);

// Records out = L(x) for a map L linear in x (a backward formula, typically) whose gradient is
// its adjoint, `adjoint(grad)`. When the adjoint is itself recorded this way with L as its
// gradient, the pair differentiates to any order (create_graph): gather and scatter-add, a view and
// the zeros around it, cumsum and its reverse, a pool and its backward.
template <class Adjoint>
void record_linear(const char* name, const Tensor& x, Tensor& out, Adjoint adjoint) {
  if (autograd::any_requires_grad({x})) {
    autograd::record(
        name, {x}, out,
        [adjoint](const autograd::BackwardArgs& a) { return std::vector<Tensor>{adjoint(a.grad())}; },
        autograd::DoubleBackward::supported);
  }
}

// The gradient of y = softmax(x) along dim, y (g - sum(g y)), in recorded ops: the backward of
// softmax and masked_softmax when it is itself recorded (create_graph); their kernels compute it fused.
Tensor softmax_grad_recorded(const Tensor& g, const Tensor& y, int64_t dim);

// Zeros of `shape` with `g` written into the part `region(zeros)` (a view: a slice, a select, a
// window): the gradient of a view that covers part of its base; its own gradient is that region.
template <class Region>
Tensor embed_in_zeros(const char* name, const Shape& shape, const Tensor& g, Region region) {
  Tensor full = zeros(shape, g.options());
  copy_into(region(full), g);
  record_linear(name, g, full, region);
  return full;
}
// Whether writing dst element by element could change src before all of src is read: they share
// storage, the element ranges they span intersect, and src is not dst's own layout (an elementwise
// kernel reads each element of that before writing it, so x.add_(x) is safe). In-place ops copy
// such a source first, as the result must be that of the values before the op.
bool may_overlap(const Tensor& dst, const Tensor& src);
// Throws when dst has elements that share memory (a zero stride on a dim of size > 1, as an
// expanded view has): an in-place write there would hit one location several times.
void check_no_internal_overlap(std::string_view op, const Tensor& dst);
// The dtype two operands compute in, as PyTorch's result_type: a 0-d tensor beside one with dims
// counts only when its kind (bool < integer < floating) is higher, so float32 x times a float64
// 0-d tensor stays float32, like x times a double.
DType result_type(const Tensor& a, const Tensor& b);
// Casts without autograd; returns `t` itself when the dtype already matches.
Tensor cast_raw(const Tensor& t, DType dtype);
// Throws unless every defined tensor is on the same device.
void check_same_device(std::string_view op, const std::vector<Tensor>& tensors);
// Throws unless t is defined.
void check_defined(std::string_view op, const Tensor& t, std::string_view what = "input");
// Throws unless x is defined and floating point.
void check_floating(std::string_view op, const Tensor& x);

// Elementwise building blocks without autograd (the public ops add the graph on top).
Tensor unary_raw(UnaryOp op, const Tensor& x, double a = 0, double b = 0);
Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, double alpha = 1.0,
                  std::string_view name = "binary");
// A scan along `dim` without autograd (see ops/kernels/scan.h); used by backward passes too.
Tensor scan_raw(ScanOp op, const Tensor& x, int64_t dim, bool reverse = false, bool exclusive = false);
// The product of the elements before each one along dim d (after it when `reverse`), itself
// excluded: d prod(x) / d x is their product. A raw scan, except while a backward pass is recorded
// (create_graph): then cumprod of x shifted by one, which differentiates again.
Tensor exclusive_cumprod(const Tensor& x, int64_t d, bool reverse);

// Runs an in-place op. Without autograd, `kernel()` writes into self directly. With autograd,
// `out_of_place(before)` builds the result and the graph from a snapshot `before` of self (so a
// backward that needs the old value still has it), the result is copied into self, and self
// takes over the result's history. Bumps the version counter either way.
Tensor& apply_inplace(Tensor& self, const char* name, const std::function<void()>& kernel,
                      const std::function<Tensor(const Tensor& before)>& out_of_place, bool needs_grad);

// Turns a list of dims (possibly negative, possibly empty = all) into a sorted bitmask vector.
std::vector<bool> dims_mask(const Shape& dims, int64_t ndim, std::string_view op);
// The shape a reduction over `mask` leaves: reduced dims become 1 (keepdim) or disappear.
Shape reduced_shape(const Shape& shape, const std::vector<bool>& mask, bool keepdim);

}  // namespace ember
