// opl: the orthogonal projection loss as one fused custom function (Gram formulation).
#include "ember/losses/opl.h"

#include <cmath>

#include "losses/kernels/opl.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

EMBER_DEFINE_STUB(opl_forward_stub, OPLForwardFn);
EMBER_DEFINE_STUB(opl_backward_stub, OPLBackwardFn);

namespace {
// The kernels' backward (losses/kernels/opl.h) in differentiable ops, for a backward pass that is
// itself recorded (create_graph): the normalisation and 2 W f^ are functions of x again, while W
// holds only constants (the labels' pair masks and counts, and sign(G) for |cos|, piecewise
// constant in x); it takes sign(G) from the forward's saved Gram matrix, whose symmetric signs the
// first derivative used.
Tensor opl_gradient_recorded(const Tensor& x, const Tensor& y, const Tensor& gram, const Tensor& grad_loss,
                             const OPLOptions& o) {
  const int64_t B = x.size(0);
  // max(|x_i|, floor) as sqrt(max(|x_i|^2, floor^2)): the clamp's slope is 0, so a zero row
  // divides by the floor with no 0 * inf in the derivative
  const Tensor norm = sqrt(clamp_min((x * x).sum({1}, true), kOPLNormFloor * kOPLNormFloor));
  const Tensor f = x / norm;
  Tensor W;
  {
    NoGradGuard constant;
    const TensorOptions index_opts = TensorOptions(DType::int64).device(x.device());
    const Tensor index = arange(static_cast<double>(B), index_opts);
    const Tensor same = y.view({B, 1}) == y.view({1, B});
    const Tensor positive = same && (index.view({B, 1}) != index.view({1, B})), negative = !same;
    const double P = positive.sum().item<double>(), Q = negative.sum().item<double>();
    Tensor w_neg = negative.to(x.dtype()) * (Q > 0 ? o.gamma / Q : 0.0);
    if (o.absolute_inter) w_neg = w_neg * sign(gram);
    W = positive.to(x.dtype()) * (P > 0 ? -1.0 / P : 0.0) + w_neg;
  }
  const Tensor grad_f = matmul(W, f) * (grad_loss * 2.0);
  const Tensor radial = (grad_f * f).sum({1}, true);
  return where(norm > kOPLNormFloor, (grad_f - f * radial) / norm, grad_f / kOPLNormFloor);
}
}  // namespace

Tensor opl(const Tensor& features, const Tensor& target, const OPLOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(features, target)) {
    return via_float32([&](const Tensor& x, const Tensor& t) { return opl(x, t, o); }, features, target);
  }
  check_defined("opl", features, "features");
  check_defined("opl", target, "target");
  check_same_device("opl", {features, target});
  if (!features.is_floating_point())
    fail("opl: features must be floating point (float32 or float64), got {}", features.dtype());
  if (features.dim() != 2 || features.size(0) < 1 || features.size(1) < 1)
    fail("opl: features must be [B, D] with B, D >= 1 (flatten pooled maps first), got {}",
         shape_str(features.shape()));
  const int64_t B = features.size(0), D = features.size(1);
  if (target.dtype() != DType::int64) fail("opl: target must hold int64 labels, got {}", target.dtype());
  if (target.shape() != Shape{B})
    fail("opl: target shape {} does not match features {}: expected [{}]", shape_str(target.shape()),
         shape_str(features.shape()), B);
  if (!(o.gamma >= 0.0) || !std::isfinite(o.gamma))
    fail("opl: gamma must be a finite number >= 0, got {}", o.gamma);

  const Tensor x = features.detach().contiguous();
  const Tensor y = target.contiguous();
  const DType dtype = x.dtype();
  const Device device = x.device();
  Tensor loss = empty_tensor({}, dtype, device);
  Tensor normalized = empty_tensor({B, D}, dtype, device);
  Tensor norms = empty_tensor({B}, dtype, device);
  Tensor gram = empty_tensor({B, B}, dtype, device);
  opl_forward_stub(device, loss, normalized, norms, gram, x, y, o.gamma, o.absolute_inter);

  if (autograd::any_requires_grad({features})) {
    autograd::record(
        "opl", {features}, loss,
        [=, ns = autograd::SavedTensor(normalized), ms = autograd::SavedTensor(norms),
         gs = autograd::SavedTensor(gram), ys = autograd::SavedTensor(y),
         xs = autograd::SavedTensor(features)](const autograd::BackwardArgs& a) {
          if (GradMode::is_enabled())  // create_graph; the features unpack with their history
            return std::vector<Tensor>{
                opl_gradient_recorded(xs.unpack("opl"), ys.unpack("opl"), gs.unpack("opl"), a.grad(), o)};
          Tensor grad = empty_tensor({B, D}, dtype, device);
          opl_backward_stub(device, grad, cast_raw(a.grad(), dtype).contiguous(), ns.unpack("opl"),
                            ms.unpack("opl"), gs.unpack("opl"), ys.unpack("opl"), o.gamma, o.absolute_inter);
          return std::vector<Tensor>{grad};
        },
        autograd::DoubleBackward::supported);
  }
  return loss;
}

}  // namespace ember::losses
