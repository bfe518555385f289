// opl: the orthogonal projection loss as one fused custom function (Gram formulation).
#include "ember/losses/opl.h"

#include <cmath>

#include "losses/kernels/opl.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

EMBER_DEFINE_STUB(opl_forward_stub, OPLForwardFn);
EMBER_DEFINE_STUB(opl_backward_stub, OPLBackwardFn);

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
         gs = autograd::SavedTensor(gram), ys = autograd::SavedTensor(y)](const autograd::BackwardArgs& a) {
          Tensor grad = empty_tensor({B, D}, dtype, device);
          opl_backward_stub(device, grad, cast_raw(a.grad(), dtype).contiguous(), ns.unpack("opl"),
                            ms.unpack("opl"), gs.unpack("opl"), ys.unpack("opl"), o.gamma, o.absolute_inter);
          return std::vector<Tensor>{grad};
        });
  }
  return loss;
}

}  // namespace ember::losses
