// Copies, casts, device moves and in-place fills.
#include "ops/kernels/copy.h"

#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(fill_stub, FillFn);
EMBER_DEFINE_STUB(copy_stub, CopyFn);
EMBER_DEFINE_STUB(device_transfer_stub, CopyFn);

void check_defined(std::string_view op, const Tensor& t, std::string_view what) {
  if (!t.defined()) fail("{}: {} is an undefined tensor", op, what);
}

void check_floating(std::string_view op, const Tensor& x) {
  check_defined(op, x);
  if (!is_floating(x.dtype()))
    fail("{}: input dtype {} is not floating point; convert with .to(kFloat32) first", op, x.dtype());
}

void check_same_device(std::string_view op, const std::vector<Tensor>& tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (first == nullptr) {
      first = &t;
    } else if (t.device() != first->device()) {
      fail("{}: expected all tensors on the same device, got {} and {}", op, first->device(), t.device());
    }
  }
}

namespace {
// The first and last element offsets a tensor spans (strides are never negative in ember).
std::pair<int64_t, int64_t> element_span(const Tensor& t) {
  int64_t last = t.storage_offset();
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
  return {t.storage_offset(), last};
}
}  // namespace

bool may_overlap(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0 || src.numel() == 0 || dst.impl()->storage != src.impl()->storage) return false;
  if (dst.shape() == src.shape() && dst.strides() == src.strides() &&
      dst.storage_offset() == src.storage_offset())
    return false;
  const auto [d0, d1] = element_span(dst);
  const auto [s0, s1] = element_span(src);
  return d0 <= s1 && s0 <= d1;
}

void check_no_internal_overlap(std::string_view op, const Tensor& dst) {
  for (int64_t d = 0; d < dst.dim(); ++d)
    if (dst.stride(d) == 0 && dst.size(d) > 1)
      fail(
          "{}: the destination {} (strides {}) has elements that share memory (dim {} has stride 0, as in an "
          "expanded view); write into a clone() of it instead",
          op, shape_str(dst.shape()), shape_str(dst.strides()), d);
}

void copy_into(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  Shape b = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  if (b != dst.shape())
    fail("copy_: source of shape {} cannot be broadcast to destination of shape {}", shape_str(src.shape()),
         shape_str(dst.shape()));
  Tensor from = may_overlap(dst, src) ? src.detach().clone() : src;
  Tensor s = from.shape() == dst.shape() ? from : from.detach().expand(dst.shape());
  if (s.device() == dst.device()) {
    copy_stub(dst.device(), dst, s);
    return;
  }
  // Across devices: make a dense block of the right dtype on the source side, transfer, scatter.
  Tensor dense = empty_tensor(dst.shape(), dst.dtype(), s.device());
  copy_stub(s.device(), dense, s);
  Device cuda_side = dst.device().is_cuda() ? dst.device() : s.device();
  if (dst.is_contiguous()) {
    device_transfer_stub(cuda_side, dst, dense);
  } else {
    Tensor staged = empty_tensor(dst.shape(), dst.dtype(), dst.device());
    device_transfer_stub(cuda_side, staged, dense);
    copy_stub(dst.device(), dst, staged);
  }
}

Tensor cast_raw(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = empty_tensor(t.shape(), dtype, t.device());
  copy_into(out, t);
  return out;
}

Tensor Tensor::to(Device device, DType dtype) const {
  check_defined("to", *this, "self");
  if (device == this->device() && dtype == this->dtype()) return *this;
  Tensor out = empty_tensor(shape(), dtype, device);
  copy_into(out, *this);
  if (autograd::any_requires_grad({*this}) && is_floating(dtype)) {
    Device from_device = this->device();
    DType from_dtype = this->dtype();
    autograd::record(
        "to", {*this}, out,
        [=](const autograd::BackwardArgs& a) {
          return std::vector<Tensor>{a.grad().to(from_device, from_dtype)};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}
Tensor Tensor::to(DType dtype) const { return to(device(), dtype); }
Tensor Tensor::to(Device device) const { return to(device, dtype()); }

Tensor Tensor::clone() const {
  check_defined("clone", *this, "self");
  Tensor out = empty_tensor(shape(), dtype(), device());
  copy_into(out, *this);
  if (autograd::any_requires_grad({*this}))
    autograd::record(
        "clone", {*this}, out, [](const autograd::BackwardArgs& a) { return std::vector<Tensor>{a.grad()}; },
        autograd::DoubleBackward::supported);
  return out;
}

Tensor Tensor::contiguous() const {
  check_defined("contiguous", *this, "self");
  return is_contiguous() ? *this : clone();
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_", src, "source");
  bool grad = autograd::any_requires_grad({*this, src});
  return apply_inplace(
      *this, "copy_", [&] { copy_into(*this, src); },
      [&](const Tensor&) {
        Tensor s = src.to(device(), dtype());
        Tensor out = s.shape() == shape() ? s.clone() : s.expand(shape()).clone();
        return out;
      },
      grad);
}

Tensor& Tensor::fill_(double value) {
  return apply_inplace(
      *this, "fill_", [&] { fill_stub(device(), *this, value); },
      [&](const Tensor&) { return full(shape(), value, options()); }, autograd::any_requires_grad({*this}));
}

Tensor& Tensor::zero_() { return fill_(0.0); }

}  // namespace ember
