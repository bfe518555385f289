#pragma once
// Upsample: nn::functional::interpolate as a module (torch.nn.Upsample).
#include "ember/nn/functional.h"
#include "ember/nn/module.h"

namespace ember::nn {

// Resamples the spatial dims of [N, C, W], [N, C, H, W] or [N, C, D, H, W] inputs with fixed
// options, e.g. Upsample({.scale_factor = {2.0}, .mode = functional::InterpolateMode::bilinear}).
// No parameters.
class Upsample : public Module {
 public:
  explicit Upsample(functional::InterpolateOptions options);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  functional::InterpolateOptions options;
};

}  // namespace ember::nn
