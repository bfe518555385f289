// Tri-BCE (FCN): validation, the forward from three BCE sums, and the closed-form backward.
//
// Notation: L, L_a, L_b are the mean BCEs of the fused, tower-a and tower-b logits, N the number
// of elements, and a = 1[L_a > L], s = 1[L_b > L] say which tower weights are active.
//
//   tri_bce = L + w_a L_a + w_b L_b,   w_a = max(L_a - L, 0),  w_b = max(L_b - L, 0).
//
// Differentiating through the weights (the reference code) gives
//   d tri_bce = (1 - a L_a - s L_b) dL + a (2 L_a - L) dL_a + s (2 L_b - L) dL_b,
// and with detached weights simply dL + w_a dL_a + w_b dL_b. Each dL_k / dz_k[i] is
// (sigmoid(z_k[i]) - y[i]) / N, so the whole backward is one elementwise pass per input with
// one scalar coefficient each. At L_k == L exactly the weight's slope is taken as 0 (torch.where
// picks the zero branch).
#include "ember/losses/tri_bce.h"

#include "ember/autograd.h"
#include "losses/kernels/tri_bce.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(tri_bce_sums_stub, TriBCESumsFn);
EMBER_DEFINE_STUB(tri_bce_backward_stub, TriBCEBackwardFn);

namespace losses {
namespace {

void validate(const Tensor& z, const Tensor& za, const Tensor& zb, const Tensor& y) {
  check_defined("tri_bce", z, "fused_logits");
  check_defined("tri_bce", za, "logits_a");
  check_defined("tri_bce", zb, "logits_b");
  check_defined("tri_bce", y, "target");
  check_same_device("tri_bce", {z, za, zb, y});
  if (!z.is_floating_point()) fail("tri_bce: fused_logits must be float32 or float64, got {}", z.dtype());
  const std::pair<const char*, const Tensor*> others[] = {{"logits_a", &za}, {"logits_b", &zb}};
  for (const auto& [name, t] : others) {
    if (t->shape() != z.shape())
      fail("tri_bce: {} has shape {} but fused_logits has shape {}; the three logits must have one shape",
           name, shape_str(t->shape()), shape_str(z.shape()));
    if (t->dtype() != z.dtype())
      fail("tri_bce: {} is {} but fused_logits is {}; the three logits must have one dtype", name, t->dtype(),
           z.dtype());
  }
  if (y.shape() != z.shape())
    fail("tri_bce: target has shape {} but the logits have shape {}", shape_str(y.shape()),
         shape_str(z.shape()));
  if (!y.is_floating_point()) fail("tri_bce: target must be a float tensor of 0/1 labels, got {}", y.dtype());
  if (z.numel() == 0)
    fail("tri_bce: empty input (shape {}); the loss is a batch mean and needs at least one element",
         shape_str(z.shape()));
}

// The backward in differentiable ops, for a backward pass that is itself recorded (create_graph).
// With weights that are not detached the coefficients hold the three mean BCEs, so those are
// recomputed as functions of the logits; which weights are active (a, s) stays as the forward
// found it. `coef` are the forward's coefficients, used as constants when the weights are detached.
std::vector<Tensor> tri_bce_gradients_recorded(const std::array<Tensor, 3>& z, const Tensor& y,
                                               const Tensor& grad_loss, const std::array<double, 3>& coef,
                                               double n, bool active_a, bool active_b, bool detach_weights) {
  std::array<Tensor, 3> c;
  if (detach_weights) {
    for (size_t k = 0; k < 3; ++k) c[k] = scalar_tensor(coef[k], z[k].options());
  } else {
    auto mean_bce = [&](const Tensor& zk) { return (softplus(zk) - y * zk).sum() / n; };
    const Tensor L = mean_bce(z[0]), L_a = mean_bce(z[1]), L_b = mean_bce(z[2]);
    const Tensor zero = scalar_tensor(0.0, z[0].options());
    c[0] = 1.0 - (active_a ? L_a : zero) - (active_b ? L_b : zero);
    c[1] = active_a ? 2.0 * L_a - L : zero;
    c[2] = active_b ? 2.0 * L_b - L : zero;
  }
  std::vector<Tensor> grads(3);
  for (size_t k = 0; k < 3; ++k) grads[k] = (sigmoid(z[k]) - y) * (c[k] * grad_loss / n);
  return grads;
}

}  // namespace

Tensor tri_bce(const Tensor& fused_logits, const Tensor& logits_a, const Tensor& logits_b,
               const Tensor& target, const TriBCEOptions& options) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(fused_logits, logits_a, logits_b, target)) {
    return via_float32([&](const Tensor& z, const Tensor& za, const Tensor& zb,
                           const Tensor& t) { return tri_bce(z, za, zb, t, options); },
                       fused_logits, logits_a, logits_b, target);
  }
  validate(fused_logits, logits_a, logits_b, target);
  const Device device = fused_logits.device();
  // Raw, contiguous copies (no copy when already contiguous); the graph node is recorded on the
  // caller's tensors below.
  Tensor z = fused_logits.detach().contiguous();
  Tensor za = logits_a.detach().contiguous();
  Tensor zb = logits_b.detach().contiguous();
  Tensor y = cast_raw(target.detach(), z.dtype()).contiguous();

  Tensor sums_t = empty_tensor({5}, DType::float64, device);
  tri_bce_sums_stub(device, z, za, zb, y, sums_t);
  const std::vector<double> sums = sums_t.to_vector<double>();
  if (sums[3] > 0)
    fail("tri_bce: target must hold 0/1 labels (values in [0, 1]); {} of {} entries are outside, e.g. {}",
         static_cast<int64_t>(sums[3]), z.numel(), sums[4]);

  const double n = static_cast<double>(z.numel());
  const double loss = sums[0] / n, loss_a = sums[1] / n, loss_b = sums[2] / n;
  const bool active_a = loss_a > loss, active_b = loss_b > loss;
  const double w_a = active_a ? loss_a - loss : 0.0, w_b = active_b ? loss_b - loss : 0.0;
  // w * L (not a branch on w) so that a NaN tower loss still poisons the result.
  Tensor out = scalar_tensor(loss + w_a * loss_a + w_b * loss_b, TensorOptions(z.dtype()).device(device));

  if (autograd::any_requires_grad({fused_logits, logits_a, logits_b})) {
    // Coefficients of (sigmoid(z_k) - y) before the upstream gradient and the 1/N.
    std::array<double, 3> coef;
    if (options.detach_weights) {
      coef = {1.0, w_a, w_b};
    } else {
      coef = {1.0 - (active_a ? loss_a : 0.0) - (active_b ? loss_b : 0.0), active_a ? 2 * loss_a - loss : 0.0,
              active_b ? 2 * loss_b - loss : 0.0};
    }
    autograd::record(
        "tri_bce", {fused_logits, logits_a, logits_b}, out,
        [coef, n, active_a, active_b, detach = options.detach_weights, sz = autograd::SavedTensor(z),
         sa = autograd::SavedTensor(za), sb = autograd::SavedTensor(zb), sy = autograd::SavedTensor(y),
         originals = std::array{autograd::SavedTensor(fused_logits), autograd::SavedTensor(logits_a),
                                autograd::SavedTensor(logits_b)}](const autograd::BackwardArgs& a) {
          Tensor y = sy.unpack("tri_bce");
          if (GradMode::is_enabled()) {  // create_graph; the logits unpack with their history
            std::array<Tensor, 3> logits;
            for (size_t k = 0; k < 3; ++k) logits[k] = originals[k].unpack("tri_bce");
            return tri_bce_gradients_recorded(logits, y, a.grad(), coef, n, active_a, active_b, detach);
          }
          Tensor z = sz.unpack("tri_bce"), za = sa.unpack("tri_bce"), zb = sb.unpack("tri_bce");
          const double g = a.grad().item<double>() / n;
          std::vector<Tensor> grads(3);
          for (size_t k = 0; k < 3; ++k)
            if (a.needs(k)) grads[k] = empty_tensor(z.shape(), z.dtype(), z.device());
          tri_bce_backward_stub(z.device(), z, za, zb, y,
                                std::array<double, 3>{g * coef[0], g * coef[1], g * coef[2]}, grads[0],
                                grads[1], grads[2]);
          return grads;
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace losses
}  // namespace ember
