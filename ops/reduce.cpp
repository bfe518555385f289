// sum, mean, prod, amax, amin, any, all over any set of dims.
#include "ops/kernels/reduce.h"

#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(reduce_stub, ReduceFn);
using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

std::vector<bool> dims_mask(const Shape& dims, int64_t ndim, std::string_view op) {
  std::vector<bool> mask(ndim, dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    if (ndim == 0) continue;
    if (mask[w] && !dims.empty()) fail("{}: dim {} appears more than once in {}", op, w, shape_str(dims));
    mask[w] = true;
  }
  return mask;
}

Shape reduced_shape(const Shape& shape, const std::vector<bool>& mask, bool keepdim) {
  Shape s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (!mask[d])
      s.push_back(shape[d]);
    else if (keepdim)
      s.push_back(1);
  }
  return s;
}

namespace {

Shape keep_shape(const Tensor& x, const std::vector<bool>& mask) {
  return reduced_shape(x.shape(), mask, true);
}
Shape drop_shape(const Tensor& x, const std::vector<bool>& mask) {
  return reduced_shape(x.shape(), mask, false);
}

// Runs the kernel; returns the result in keepdim shape.
Tensor reduce_raw(ReduceOp op, const Tensor& x, const std::vector<bool>& mask, DType out_dtype,
                  std::string_view name) {
  if (x.dtype() == DType::bfloat16) {  // accumulates in float32 (as PyTorch does), rounds once
    DType compute = out_dtype == DType::bfloat16 ? DType::float32 : out_dtype;
    return via_float32_raw([&](const Tensor& f) { return reduce_raw(op, f, mask, compute, name); }, x);
  }
  Tensor out = empty_tensor(keep_shape(x, mask), out_dtype, x.device());
  if (out.numel() == 0) return out;
  if (x.numel() == 0) {
    if (op == ReduceOp::max || op == ReduceOp::min)
      fail("{}: cannot reduce over an empty dimension (input shape {})", name, shape_str(x.shape()));
    out.fill_(op == ReduceOp::prod || op == ReduceOp::all ? 1.0 : 0.0);
    return out;
  }
  reduce_stub(x.device(), op, out, x, mask);
  return out;
}

Tensor finish_shape(Tensor keep, const Tensor& x, const std::vector<bool>& mask, bool keepdim) {
  return keepdim ? keep : keep.view(drop_shape(x, mask));
}

DType sum_dtype(DType t) { return is_floating(t) ? t : DType::int64; }

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined("sum", x);
  auto mask = dims_mask(dims, x.dim(), "sum");
  Tensor out =
      finish_shape(reduce_raw(ReduceOp::sum, x, mask, sum_dtype(x.dtype()), "sum"), x, mask, keepdim);
  if (autograd::any_requires_grad({x})) {
    Shape in_shape = x.shape(), kshape = keep_shape(x, mask);
    autograd::record(
        "sum", {x}, out,
        [=](const BackwardArgs& a) { return Grads{a.grad().reshape(kshape).expand(in_shape)}; },
        autograd::DoubleBackward::supported);
  }
  return out;
}
Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined("mean", x);
  if (!is_floating(x.dtype()))
    fail("mean: input dtype {} is not floating point; convert with .to(kFloat32) first", x.dtype());
  if (x.dtype() == DType::bfloat16)  // sum and division in float32, one rounding
    return via_float32([&](const Tensor& f) { return mean(f, dims, keepdim); }, x);
  auto mask = dims_mask(dims, x.dim(), "mean");
  int64_t count = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.size(d);
  return sum(x, dims, keepdim) / static_cast<double>(count);
}
Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor prod(const Tensor& x, int64_t dim, bool keepdim) {
  check_defined("prod", x);
  auto mask = dims_mask({dim}, x.dim(), "prod");
  Tensor out =
      finish_shape(reduce_raw(ReduceOp::prod, x, mask, sum_dtype(x.dtype()), "prod"), x, mask, keepdim);
  if (autograd::any_requires_grad({x})) {
    Shape kshape = keep_shape(x, mask);
    int64_t d = wrap_dim(dim, x.dim(), "prod");
    auto backward = [=, sx = SavedTensor(x)](const BackwardArgs& a) {
      // d prod / d x_i is the product of all the other elements: the exclusive prefix product
      // times the exclusive suffix product along the dim. Two scans, O(n), and exact when some
      // x_j are zero (dividing the product by x_i would give 0/0 there).
      Tensor xv = sx.unpack("prod");
      Tensor before = exclusive_cumprod(xv, d, /*reverse=*/false);
      Tensor after = exclusive_cumprod(xv, d, /*reverse=*/true);
      return Grads{before * after * a.grad().reshape(kshape)};
    };
    autograd::record("prod", {x}, out, backward, autograd::DoubleBackward::supported);
  }
  return out;
}
Tensor prod(const Tensor& x) {
  check_defined("prod", x);
  return prod(x.reshape({-1}), 0, false);
}

namespace {
Tensor extreme(ReduceOp op, const char* name, const Tensor& x, const Shape& dims, bool keepdim) {
  check_defined(name, x);
  auto mask = dims_mask(dims, x.dim(), name);
  Tensor keep = reduce_raw(op, x, mask, x.dtype(), name);
  Tensor out = finish_shape(keep, x, mask, keepdim);
  if (autograd::any_requires_grad({x})) {
    Shape kshape = keep_shape(x, mask), in_shape = x.shape();
    autograd::record(
        name, {x}, out,
        [=, sx = SavedTensor(x), sk = SavedTensor(keep)](const BackwardArgs& a) {
          // The gradient is shared evenly among the elements that attain the extreme value; where that
          // is NaN, among the NaNs (as PyTorch).
          Tensor xs = sx.unpack(name), extreme = sk.unpack(name).expand(in_shape);
          Tensor hit = logical_or(xs == extreme, logical_and(isnan(xs), isnan(extreme))).to(a.grad().dtype());
          Tensor count = sum(hit, dims, true);
          return Grads{hit * (a.grad().reshape(kshape) / count)};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}
}  // namespace
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) {
  return extreme(ReduceOp::max, "amax", x, dims, keepdim);
}
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) {
  return extreme(ReduceOp::min, "amin", x, dims, keepdim);
}

Tensor Tensor::any() const {
  auto mask = dims_mask({}, dim(), "any");
  return reduce_raw(ReduceOp::any, *this, mask, DType::boolean, "any").reshape({});
}
Tensor Tensor::all() const {
  auto mask = dims_mask({}, dim(), "all");
  return reduce_raw(ReduceOp::all, *this, mask, DType::boolean, "all").reshape({});
}

}  // namespace ember
