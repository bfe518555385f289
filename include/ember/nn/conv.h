#pragma once
// Conv2d: 2-D convolution (cross-correlation, as in every framework) over [N, C, H, W];
// ConvTranspose2d: its transpose (the adjoint in the input), which upsamples. Conv1d and
// ConvTranspose1d: the same over sequences [N, C, L].
#include "ember/nn/module.h"
#include "ember/nn/size2.h"

namespace ember::nn {

// weight: [out_channels, in_channels / groups, kh, kw], bias: [out_channels]. Output size per
// spatial dim: (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1.
// PyTorch's init: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in/groups * kh * kw.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1, Size2 padding = 0,
         Size2 dilation = 1, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& input) override;  // [N, C, H, W] or unbatched [C, H, W]
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_channels, out_channels;
  Size2 kernel_size, stride, padding, dilation;
  int64_t groups;
  Tensor weight, bias;
};

// weight: [in_channels, out_channels / groups, kh, kw] (PyTorch's layout), bias: [out_channels].
// Output size per spatial dim: (in - 1) * stride - 2 * padding + dilation * (kernel - 1) +
// output_padding + 1; output_padding must be smaller than the stride or the dilation. PyTorch's
// init (the fan-in read off the weight: out_channels / groups * kh * kw). The arguments come in
// PyTorch's order, dilation last.
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Size2 stride = 1,
                  Size2 padding = 0, Size2 output_padding = 0, int64_t groups = 1, bool bias = true,
                  Size2 dilation = 1);
  Tensor forward(const Tensor& input) override;  // [N, C, H, W] or unbatched [C, H, W]
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_channels, out_channels;
  Size2 kernel_size, stride, padding, output_padding, dilation;
  int64_t groups;
  Tensor weight, bias;
};

// weight: [out_channels, in_channels / groups, kernel_size], bias: [out_channels]; Conv2d's output
// size and init with one spatial dim.
class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& input) override;  // [N, C, L] or unbatched [C, L]
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_channels, out_channels, kernel_size, stride, padding, dilation, groups;
  Tensor weight, bias;
};

// weight: [in_channels, out_channels / groups, kernel_size], bias: [out_channels]; ConvTranspose2d's
// output size, init and argument order with one spatial dim.
class ConvTranspose1d : public Module {
 public:
  ConvTranspose1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
                  int64_t padding = 0, int64_t output_padding = 0, int64_t groups = 1, bool bias = true,
                  int64_t dilation = 1);
  Tensor forward(const Tensor& input) override;  // [N, C, L] or unbatched [C, L]
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, dilation;
  Tensor weight, bias;
};

}  // namespace ember::nn
