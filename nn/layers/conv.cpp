// Conv2d: argument checks, PyTorch's init, and the call into the conv2d op.
#include "ember/nn/conv.h"

#include <cmath>

#include "ember/nn/init.h"
#include "ember/ops.h"

namespace ember::nn {

Conv2d::Conv2d(int64_t in, int64_t out, Size2 k, Size2 s, Size2 p, Size2 d, int64_t g, bool has_bias)
    : in_channels(in), out_channels(out), kernel_size(k), stride(s), padding(p), dilation(d), groups(g) {
  if (in <= 0 || out <= 0) fail("Conv2d: channel counts must be positive, got in = {}, out = {}", in, out);
  if (g <= 0) fail("Conv2d: groups must be positive, got {}", g);
  if (in % g != 0 || out % g != 0)
    fail("Conv2d: in_channels ({}) and out_channels ({}) must both be divisible by groups ({})", in, out, g);
  if (k.h <= 0 || k.w <= 0) fail("Conv2d: kernel_size must be positive, got {}", k.str());
  if (s.h <= 0 || s.w <= 0) fail("Conv2d: stride must be positive, got {}", s.str());
  if (p.h < 0 || p.w < 0) fail("Conv2d: padding must be non-negative, got {}", p.str());
  if (d.h <= 0 || d.w <= 0) fail("Conv2d: dilation must be positive, got {}", d.str());
  weight = register_parameter("weight", empty({out, in / g, k.h, k.w}));
  if (has_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Conv2d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(weight);
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv2d::forward(const Tensor& input) {
  if (!input.defined()) fail("Conv2d: input is an undefined tensor");
  if (input.dim() != 3 && input.dim() != 4)
    fail("Conv2d: expected input [N, C, H, W] or [C, H, W], got shape {}", shape_str(input.shape()));
  const bool batched = input.dim() == 4;
  Tensor x = batched ? input : input.unsqueeze(0);
  if (x.size(1) != in_channels)
    fail("Conv2d: input of shape {} has {} channels, expected in_channels = {}", shape_str(input.shape()),
         x.size(1), in_channels);
  Tensor y = conv2d(x, weight, bias, stride.array(), padding.array(), dilation.array(), groups);
  return batched ? y : y.squeeze(0);
}

std::string Conv2d::extra_repr() const {
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", in_channels, out_channels,
                              kernel_size.str(), stride.str());
  if (padding != Size2(0)) s += ", padding=" + padding.str();
  if (dilation != Size2(1)) s += ", dilation=" + dilation.str();
  if (groups != 1) s += fmt::format(", groups={}", groups);
  if (!bias.defined()) s += ", bias=false";
  return s;
}

}  // namespace ember::nn
