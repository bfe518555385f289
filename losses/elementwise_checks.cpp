#include "losses/elementwise_checks.h"

#include "ops/internal.h"

namespace ember::losses {

Tensor check_pair(std::string_view loss, const Tensor& input, const Tensor& target,
                  std::string_view input_name) {
  check_defined(loss, input, input_name);
  check_defined(loss, target, "target");
  check_same_device(loss, {input, target});
  if (!input.is_floating_point())
    fail("{}: {} must be floating point (float32 or float64), got {}", loss, input_name, input.dtype());
  if (!target.is_floating_point()) fail("{}: target must be floating point, got {}", loss, target.dtype());
  if (input.shape() != target.shape())
    fail("{}: {} {} and target {} must have the same shape", loss, input_name, shape_str(input.shape()),
         shape_str(target.shape()));
  return target.dtype() == input.dtype() ? target : target.to(input.dtype());
}

void check_broadcasts_to(std::string_view loss, std::string_view what, const Tensor& t, const Tensor& input) {
  if (!t.defined()) return;
  check_same_device(loss, {input, t});
  if (!t.is_floating_point()) fail("{}: {} must be floating point, got {}", loss, what, t.dtype());
  bool ok = t.dim() <= input.dim();
  for (int64_t k = 1; ok && k <= t.dim(); ++k) {
    int64_t a = t.size(t.dim() - k), b = input.size(input.dim() - k);
    ok = a == b || a == 1;
  }
  if (!ok)
    fail("{}: {} of shape {} does not broadcast to the input's shape {}", loss, what, shape_str(t.shape()),
         shape_str(input.shape()));
}

}  // namespace ember::losses
