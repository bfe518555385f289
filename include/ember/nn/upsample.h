#pragma once
// Upsample: nn::functional::interpolate as a module (torch.nn.Upsample); PixelShuffle and
// PixelUnshuffle: pixel_shuffle / pixel_unshuffle (ember/ops.h) as modules.
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

class PixelShuffle : public Module {
 public:
  explicit PixelShuffle(int64_t upscale_factor);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t upscale_factor;
};

class PixelUnshuffle : public Module {
 public:
  explicit PixelUnshuffle(int64_t downscale_factor);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t downscale_factor;
};

}  // namespace ember::nn
