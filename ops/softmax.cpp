// softmax and log_softmax: fused kernels (ops/kernels/softmax.h) for both directions, because
// the composite exp(x - max) / sum(...) would take five passes and four temporaries forward and
// more backward.
#include "ops/kernels/softmax.h"

#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(softmax_stub, SoftmaxFn);
EMBER_DEFINE_STUB(softmax_backward_stub, SoftmaxBackwardFn);
using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

Tensor softmax_grad_recorded(const Tensor& g, const Tensor& y, int64_t dim) {
  return y * (g - (g * y).sum({dim}, true));
}

namespace {

// The kernels walk lanes of a contiguous [outer, n, inner] block (ops/cpu/lanes.h); a strided
// tensor is packed once first, as PyTorch's CPU softmax does.
Tensor packed(const Tensor& t) { return t.is_contiguous() ? t : t.detach().contiguous(); }

Tensor softmax_common(const char* name, const Tensor& x, int64_t dim, bool log) {
  check_defined(name, x);
  if (!is_floating(x.dtype()))
    fail("{}: input dtype {} is not floating point; convert with .to(kFloat32) first", name, x.dtype());
  const int64_t d = wrap_dim(dim, x.dim(), name);
  if (x.dtype() == DType::bfloat16)  // float32 kernels both ways; the casts carry the gradient
    return via_float32([&](const Tensor& f) { return softmax_common(name, f, d, log); }, x);
  Tensor out = empty_tensor(x.shape(), x.dtype(), x.device());
  if (out.numel() > 0) softmax_stub(x.device(), out, packed(x), d, log);
  if (autograd::any_requires_grad({x})) {
    autograd::record(
        name, {x}, out,
        [name, d, log, sy = SavedTensor::output(out)](const BackwardArgs& a) {
          Tensor y = sy.unpack(name);
          if (GradMode::is_enabled()) {  // create_graph: the same formulas, in differentiable ops
            const Tensor& g = a.grad();
            return Grads{log ? g - exp(y) * g.sum({d}, true) : softmax_grad_recorded(g, y, d)};
          }
          Tensor g = packed(cast_raw(a.grad(), y.dtype()));
          Tensor grad_in = empty_tensor(y.shape(), y.dtype(), y.device());
          if (grad_in.numel() > 0) softmax_backward_stub(y.device(), grad_in, g, y, d, log);
          return Grads{grad_in};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_common("softmax", x, dim, /*log=*/false); }
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_common("log_softmax", x, dim, /*log=*/true);
}

}  // namespace ember
