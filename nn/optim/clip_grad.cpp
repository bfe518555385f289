// clip_grad_norm_ and clip_grad_value_, composed from ember ops so they run on any device; the
// joint norm is reduced on the device and read back once.
#include "ember/optim/clip_grad.h"

#include <cmath>

#include "ember/autograd.h"
#include "ember/ops.h"

namespace ember::optim {

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  if (!(norm_type >= 1)) fail("clip_grad_norm_: norm_type must be >= 1 or INFINITY, got {}", norm_type);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;

  // Accumulate sum(|g|^p) (or max |g|) over all gradients on their device; the reductions sum in
  // double, and the per-gradient parts are combined in float64.
  const bool inf = std::isinf(norm_type);
  Tensor acc;
  for (const Tensor& g : grads) {
    Tensor part = inf ? abs(g).max() : norm_type == 2.0 ? square(g).sum() : pow(abs(g), norm_type).sum();
    part = part.to(DType::float64);
    acc = !acc.defined() ? part : inf ? maximum(acc, part) : acc + part;
  }
  double total = acc.item<double>();
  if (!inf) total = norm_type == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
  if (!std::isfinite(total) && error_if_nonfinite)
    fail(
        "clip_grad_norm_: the total norm of order {} of the gradients is non-finite ({}), so they cannot be "
        "clipped",
        norm_type, total);
  // A NaN norm must scale by NaN (PyTorch's clamp(max = 1) keeps it); std::min(1.0, NaN) is 1.0.
  const double ratio = max_norm / (total + 1e-6);
  const double coef = std::isnan(ratio) ? ratio : std::min(1.0, ratio);
  for (Tensor& g : grads) g.mul_(coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  if (!(clip_value >= 0)) fail("clip_grad_value_: clip_value must be non-negative, got {}", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& p : parameters)
    if (p.defined() && p.grad().defined()) {
      Tensor g = p.grad();
      g.clamp_(-clip_value, clip_value);
    }
}

}  // namespace ember::optim
