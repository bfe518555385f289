#include "losses/class_layout.h"

#include "ember/autograd.h"
#include "ops/internal.h"

namespace ember::losses {

ClassLayout class_layout(std::string_view loss, const Tensor& scores, std::string_view what) {
  check_defined(loss, scores, what);
  if (!scores.is_floating_point())
    fail("{}: {} must be floating point (float32 or float64), got {}", loss, what, scores.dtype());
  if (scores.dim() == 0) fail("{}: {} must be [N, C], [N, C, d1, ...] or [C], got a 0-d tensor", loss, what);
  ClassLayout l;
  const Shape& s = scores.shape();
  if (scores.dim() == 1) {
    l.classes = s[0];
  } else {
    l.outer = s[0];
    l.classes = s[1];
    for (size_t d = 2; d < s.size(); ++d) l.inner *= s[d];
    l.target_shape.push_back(s[0]);
    l.target_shape.insert(l.target_shape.end(), s.begin() + 2, s.end());
  }
  if (l.classes == 0) fail("{}: {} of shape {} have no classes (C = 0)", loss, what, shape_str(s));
  return l;
}

void check_class_target(std::string_view loss, const ClassLayout& layout, const Tensor& scores,
                        const Tensor& target) {
  check_defined(loss, target, "target");
  check_same_device(loss, {scores, target});
  if (target.dtype() != DType::int64)
    fail(
        "{}: target must hold int64 class ids, got {} (for class probabilities pass a floating target "
        "with the scores' shape {})",
        loss, target.dtype(), shape_str(scores.shape()));
  if (target.shape() != layout.target_shape)
    fail(
        "{}: target shape {} does not match scores {}: expected {} (the scores' shape without the class "
        "axis 1)",
        loss, shape_str(target.shape()), shape_str(scores.shape()), shape_str(layout.target_shape));
}

Tensor class_weight(std::string_view loss, const Tensor& weight, int64_t classes, const Tensor& scores) {
  if (!weight.defined()) return weight;
  check_same_device(loss, {scores, weight});
  if (!weight.is_floating_point()) fail("{}: weight must be floating point, got {}", loss, weight.dtype());
  if (weight.dim() != 1 || weight.size(0) != classes)
    fail("{}: weight must be a 1-D tensor with one entry per class ([{}]), got {}", loss, classes,
         shape_str(weight.shape()));
  if (weight.requires_grad() && GradMode::is_enabled())
    fail("{}: weight requires grad, but class weights are constants here; pass weight.detach()", loss);
  return cast_raw(weight.detach(), scores.dtype()).contiguous();
}

void fail_bad_target(std::string_view loss, const Tensor& target, int64_t flat_index, int64_t classes,
                     bool has_ignore_index, int64_t ignore_index) {
  int64_t value = target.reshape({-1}).select(0, flat_index).item<int64_t>();
  if (has_ignore_index)
    fail("{}: target {} at position {} is out of range for {} classes (valid: 0..{} or ignore_index {})",
         loss, value, flat_index, classes, classes - 1, ignore_index);
  fail("{}: target {} at position {} is out of range for {} classes (valid: 0..{})", loss, value, flat_index,
       classes, classes - 1);
}

}  // namespace ember::losses
