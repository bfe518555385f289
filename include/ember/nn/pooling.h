#pragma once
// 2-D pooling over [N, C, H, W] (or unbatched [C, H, W]); 1-D pooling over [N, C, L] (or [C, L]).
#include <optional>

#include "ember/nn/module.h"
#include "ember/nn/size2.h"

namespace ember::nn {

// Max over each kernel window; stride defaults to the kernel size. Padding counts as -inf.
class MaxPool2d : public Module {
 public:
  MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  Size2 kernel_size, stride, padding;
};

// Mean over each kernel window; stride defaults to the kernel size.
class AvgPool2d : public Module {
 public:
  AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  Size2 kernel_size, stride, padding;
};

// Averages into a fixed output size; window i along a dim of size n covers
// [floor(i * n / out), ceil((i + 1) * n / out)).
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  Size2 output_size;
};

class MaxPool1d : public Module {
 public:
  explicit MaxPool1d(int64_t kernel_size, std::optional<int64_t> stride = std::nullopt, int64_t padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t kernel_size, stride, padding;
};

class AvgPool1d : public Module {
 public:
  explicit AvgPool1d(int64_t kernel_size, std::optional<int64_t> stride = std::nullopt, int64_t padding = 0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t kernel_size, stride, padding;
};

class AdaptiveAvgPool1d : public Module {
 public:
  explicit AdaptiveAvgPool1d(int64_t output_size);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t output_size;
};

}  // namespace ember::nn
