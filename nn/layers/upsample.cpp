// Upsample: checks its options once, at construction; forward is interpolate. PixelShuffle and
// PixelUnshuffle: their ops.
#include "ember/nn/upsample.h"

#include <fmt/ranges.h>

#include <cmath>

#include "ember/error.h"
#include "ember/ops.h"

namespace ember::nn {

Upsample::Upsample(functional::InterpolateOptions o) : options(std::move(o)) {
  if (options.size.empty() == options.scale_factor.empty())
    fail("Upsample: give either size or scale_factor, {}", options.size.empty() ? "got neither" : "not both");
  for (int64_t s : options.size)
    if (s <= 0) fail("Upsample: size [{}] must be positive", fmt::join(options.size, ","));
  for (double f : options.scale_factor)
    if (!(f > 0) || !std::isfinite(f))
      fail("Upsample: scale_factor [{}] must be positive and finite", fmt::join(options.scale_factor, ","));
}

Tensor Upsample::forward(const Tensor& input) { return functional::interpolate(input, options); }

std::string Upsample::extra_repr() const {
  std::string s = options.size.empty()
                      ? fmt::format("scale_factor=[{}]", fmt::join(options.scale_factor, ","))
                      : fmt::format("size=[{}]", fmt::join(options.size, ","));
  s += fmt::format(", mode={}", functional::mode_name(options.mode));
  if (options.align_corners) s += fmt::format(", align_corners={}", *options.align_corners);
  return s;
}

PixelShuffle::PixelShuffle(int64_t r) : upscale_factor(r) {
  if (r < 1) fail("PixelShuffle: upscale_factor must be positive, got {}", r);
}
Tensor PixelShuffle::forward(const Tensor& input) { return pixel_shuffle(input, upscale_factor); }
std::string PixelShuffle::extra_repr() const { return fmt::format("upscale_factor={}", upscale_factor); }

PixelUnshuffle::PixelUnshuffle(int64_t r) : downscale_factor(r) {
  if (r < 1) fail("PixelUnshuffle: downscale_factor must be positive, got {}", r);
}
Tensor PixelUnshuffle::forward(const Tensor& input) { return pixel_unshuffle(input, downscale_factor); }
std::string PixelUnshuffle::extra_repr() const {
  return fmt::format("downscale_factor={}", downscale_factor);
}

}  // namespace ember::nn
