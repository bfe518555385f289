// max/min along a dim (values and indices) and argmax/argmin, through arg_reduce_stub.
#include "ops/kernels/arg_reduce.h"

#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(arg_reduce_stub, ArgReduceFn);
using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

struct ArgReduced {
  Tensor values, indices;  // keepdim shape
  int64_t dim;             // wrapped
};

ArgReduced arg_reduce_raw(ArgReduceOp op, const char* name, const Tensor& x, int64_t dim) {
  check_defined(name, x);
  const int64_t d = wrap_dim(dim, x.dim(), name);
  if (x.dim() > 0 && x.size(d) == 0)
    fail("{}: cannot reduce over dim {} of size 0 (input shape {}): an empty dim has no extreme value", name,
         d, shape_str(x.shape()));
  Shape kshape = x.shape();
  if (x.dim() > 0) kshape[d] = 1;
  ArgReduced r{empty_tensor(kshape, x.dtype(), x.device()), empty_tensor(kshape, DType::int64, x.device()),
               d};
  // The kernel walks lanes of a contiguous [outer, n, inner] block (ops/cpu/lanes.h).
  Tensor in = x.is_contiguous() ? x : x.detach().contiguous();
  if (r.values.numel() > 0) arg_reduce_stub(x.device(), op, r.values, r.indices, in, d);
  return r;
}

Tensor drop_dim(const Tensor& t, int64_t d, bool keepdim) {
  if (keepdim || t.dim() == 0) return t;
  Shape s = t.shape();
  s.erase(s.begin() + d);
  return t.view(s);
}

std::pair<Tensor, Tensor> extreme_with_index(ArgReduceOp op, const char* name, const Tensor& x, int64_t dim,
                                             bool keepdim) {
  if (is_bfloat16(x))  // exact: the float32 extreme of bfloat16 values is one of them
    return via_float32([&](const Tensor& f) { return extreme_with_index(op, name, f, dim, keepdim); }, x);
  ArgReduced r = arg_reduce_raw(op, name, x, dim);
  Tensor values = drop_dim(r.values, r.dim, keepdim), indices = drop_dim(r.indices, r.dim, keepdim);
  if (autograd::any_requires_grad({x})) {
    auto backward = [name, d = r.dim, in_shape = x.shape(), kshape = r.values.shape(),
                     si = SavedTensor(r.indices)](const BackwardArgs& a) {
      // Only the selected element influenced the value, so the whole gradient goes there and
      // every other element gets 0 (scatter into zeros). Written as a comparison of each
      // position along the dim with the saved index, which broadcasts over the other dims.
      Tensor index = si.unpack(name);
      const int64_t n = in_shape.empty() ? 1 : in_shape[d];
      Shape along(in_shape.size(), 1);  // [1, .., n, .., 1]
      if (!along.empty()) along[d] = n;
      Tensor positions = arange(n, TensorOptions(DType::int64).device(index.device())).view(along);
      Tensor g = a.grad().reshape(kshape);
      return Grads{where(positions == index, g, 0.0)};
    };
    autograd::record(name, {x}, values, backward, autograd::DoubleBackward::supported);
  }
  return {values, indices};
}

}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_with_index(ArgReduceOp::max, "max", x, dim, keepdim);
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_with_index(ArgReduceOp::min, "min", x, dim, keepdim);
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  if (is_bfloat16(x)) return argmax(bf16_upcast(x.detach()), dim, keepdim);
  ArgReduced r = arg_reduce_raw(ArgReduceOp::max, "argmax", x, dim);
  return drop_dim(r.indices, r.dim, keepdim);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  if (is_bfloat16(x)) return argmin(bf16_upcast(x.detach()), dim, keepdim);
  ArgReduced r = arg_reduce_raw(ArgReduceOp::min, "argmin", x, dim);
  return drop_dim(r.indices, r.dim, keepdim);
}

}  // namespace ember
