#pragma once
// How the classification losses see their inputs: scores of shape [N, C, d1, ...] (or [C]) as a
// contiguous [outer, C, inner] block, where each of the outer * inner "rows" is one prediction
// over C classes with stride `inner` between classes. [N, C] is the common case inner = 1;
// [C] is outer = inner = 1. Class-id targets have the scores' shape minus the class axis, so the
// target of row r = o * inner + i is simply target.flat[r].
#include <string_view>

#include "ember/tensor.h"

namespace ember::losses {

struct ClassLayout {
  int64_t outer = 1, classes = 1, inner = 1;
  Shape target_shape;  // the scores' shape without the class axis
  int64_t rows() const { return outer * inner; }
  Shape blocked() const { return {outer, classes, inner}; }
};

// Validates floating scores with at least one class; `what` names the argument in errors.
ClassLayout class_layout(std::string_view loss, const Tensor& scores, std::string_view what);
// Validates int64 class-id targets whose shape matches the layout.
void check_class_target(std::string_view loss, const ClassLayout& layout, const Tensor& scores,
                        const Tensor& target);
// Validates a per-class weight ([C], floating, same device) and returns it contiguous in `dtype`;
// an undefined weight stays undefined. Class weights are constants: one that requires grad while
// grad mode is on is an error rather than a silently missing gradient.
Tensor class_weight(std::string_view loss, const Tensor& weight, int64_t classes, const Tensor& scores);
// Throws "<loss>: target <value> at position <index> is out of range for C classes".
[[noreturn]] void fail_bad_target(std::string_view loss, const Tensor& target, int64_t flat_index,
                                  int64_t classes, bool has_ignore_index, int64_t ignore_index);

}  // namespace ember::losses
