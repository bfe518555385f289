// BatchNorm1d/2d, LayerNorm, GroupNorm and RMSNorm: parameters, buffers and mode logic; the
// arithmetic is in nn::functional (batch_norm, layer_norm, group_norm, rms_norm).
#include "ember/nn/normalization.h"

#include "ember/autograd.h"
#include "ember/nn/functional.h"
#include "ember/nn/init.h"
#include "ember/ops.h"

namespace ember::nn {

namespace {
// LayerNorm and RMSNorm normalise over a non-empty trailing shape of positive sizes.
void check_normalized_shape(const char* module, const Shape& normalized_shape) {
  if (normalized_shape.empty()) fail("{}: normalized_shape must not be empty", module);
  for (int64_t d : normalized_shape)
    if (d <= 0) fail("{}: normalized_shape {} must have positive sizes", module, shape_str(normalized_shape));
}
}  // namespace

BatchNormBase::BatchNormBase(int64_t n, double e, std::optional<double> m, bool aff, bool track)
    : num_features(n), eps(e), momentum(m), affine(aff), track_running_stats(track) {
  if (n <= 0) fail("BatchNorm: num_features must be positive, got {}", n);
  if (!(e > 0)) fail("BatchNorm: eps must be positive, got {}", e);
  if (m && !(*m >= 0 && *m <= 1)) fail("BatchNorm: momentum must be in [0, 1], got {}", *m);
  if (affine) {
    weight = register_parameter("weight", empty({n}));
    bias = register_parameter("bias", empty({n}));
  }
  if (track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({n}));
    running_var = register_buffer("running_var", ones({n}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::int64));
  }
  reset_parameters();
}

void BatchNormBase::reset_running_stats() {
  if (!track_running_stats) return;
  init::zeros_(running_mean);
  init::ones_(running_var);
  init::zeros_(num_batches_tracked);
}

void BatchNormBase::reset_parameters() {
  reset_running_stats();
  if (affine) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNormBase::forward(const Tensor& input) {
  if (!input.defined()) fail("{}: input is an undefined tensor", name());
  check_input(input);
  if (input.size(1) != num_features)
    fail("{}: input of shape {} has {} channels in dim 1, expected num_features = {}", name(),
         shape_str(input.shape()), input.size(1), num_features);
  double factor = 0.0;
  if (is_training() && track_running_stats) {
    NoGradGuard no_grad;
    num_batches_tracked.add_(1.0);
    factor = momentum ? *momentum : 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
  }
  // Batch statistics in training, and always when no running estimates are kept.
  bool use_batch_stats = is_training() || !track_running_stats;
  return functional::batch_norm(input, running_mean, running_var, weight, bias, use_batch_stats, factor, eps);
}

std::string BatchNormBase::extra_repr() const {
  return fmt::format("{}, eps={}, momentum={}, affine={}, track_running_stats={}", num_features, eps,
                     momentum ? fmt::format("{}", *momentum) : "None", affine, track_running_stats);
}

BatchNorm1d::BatchNorm1d(int64_t n, double e, std::optional<double> m, bool aff, bool track)
    : BatchNormBase(n, e, m, aff, track) {}
void BatchNorm1d::check_input(const Tensor& input) const {
  if (input.dim() != 2 && input.dim() != 3)
    fail("BatchNorm1d: expected input [N, C] or [N, C, L], got shape {}", shape_str(input.shape()));
}

BatchNorm2d::BatchNorm2d(int64_t n, double e, std::optional<double> m, bool aff, bool track)
    : BatchNormBase(n, e, m, aff, track) {}
void BatchNorm2d::check_input(const Tensor& input) const {
  if (input.dim() != 4)
    fail("BatchNorm2d: expected input [N, C, H, W], got shape {}", shape_str(input.shape()));
}

LayerNorm::LayerNorm(Shape shape, double e, bool aff)
    : normalized_shape(std::move(shape)), eps(e), elementwise_affine(aff) {
  check_normalized_shape("LayerNorm", normalized_shape);
  if (!(e > 0)) fail("LayerNorm: eps must be positive, got {}", e);
  if (aff) {
    weight = register_parameter("weight", empty(normalized_shape));
    bias = register_parameter("bias", empty(normalized_shape));
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (!elementwise_affine) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  return functional::layer_norm(input, normalized_shape, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("{}, eps={}, elementwise_affine={}", shape_str(normalized_shape), eps,
                     elementwise_affine);
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double e, bool aff)
    : num_groups(groups), num_channels(channels), eps(e), affine(aff) {
  if (groups <= 0 || channels <= 0 || channels % groups != 0)
    fail("GroupNorm: num_channels = {} must be a positive multiple of num_groups = {}", channels, groups);
  if (!(e > 0)) fail("GroupNorm: eps must be positive, got {}", e);
  if (affine) {
    weight = register_parameter("weight", empty({channels}));
    bias = register_parameter("bias", empty({channels}));
  }
  reset_parameters();
}

void GroupNorm::reset_parameters() {
  if (!affine) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor GroupNorm::forward(const Tensor& input) {
  if (input.defined() && (input.dim() < 2 || input.size(1) != num_channels))
    fail("GroupNorm: expected input [N, {}, *], got shape {}", num_channels, shape_str(input.shape()));
  return functional::group_norm(input, num_groups, weight, bias, eps);
}

std::string GroupNorm::extra_repr() const {
  return fmt::format("{}, {}, eps={}, affine={}", num_groups, num_channels, eps, affine);
}

RMSNorm::RMSNorm(Shape shape, std::optional<double> e, bool aff)
    : normalized_shape(std::move(shape)), eps(e), elementwise_affine(aff) {
  check_normalized_shape("RMSNorm", normalized_shape);
  if (e && !(*e >= 0)) fail("RMSNorm: eps must be >= 0, got {}", *e);
  if (aff) weight = register_parameter("weight", empty(normalized_shape));
  reset_parameters();
}

void RMSNorm::reset_parameters() {
  if (elementwise_affine) init::ones_(weight);
}

Tensor RMSNorm::forward(const Tensor& input) {
  return functional::rms_norm(input, normalized_shape, weight, eps);
}

std::string RMSNorm::extra_repr() const {
  return fmt::format("{}, eps={}, elementwise_affine={}", shape_str(normalized_shape),
                     eps ? fmt::format("{}", *eps) : std::string("None"), elementwise_affine);
}

}  // namespace ember::nn
