// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: thin layers over the pooling ops.
#include "ember/nn/pooling.h"

#include "ember/ops.h"

namespace ember::nn {

namespace {
void check_window(const char* layer, Size2 kernel, Size2 stride, Size2 padding) {
  if (kernel.h <= 0 || kernel.w <= 0) fail("{}: kernel_size must be positive, got {}", layer, kernel.str());
  if (stride.h <= 0 || stride.w <= 0) fail("{}: stride must be positive, got {}", layer, stride.str());
  if (padding.h < 0 || padding.w < 0 || 2 * padding.h > kernel.h || 2 * padding.w > kernel.w)
    fail("{}: padding {} must be non-negative and at most half the kernel size {}", layer, padding.str(),
         kernel.str());
}

// Pooling ops take [N, C, H, W]; an unbatched [C, H, W] input gets a batch dim for the call.
template <class F>
Tensor pool(const char* layer, const Tensor& input, F op) {
  if (!input.defined()) fail("{}: input is an undefined tensor", layer);
  if (input.dim() != 3 && input.dim() != 4)
    fail("{}: expected input [N, C, H, W] or [C, H, W], got shape {}", layer, shape_str(input.shape()));
  if (input.dim() == 4) return op(input);
  return op(input.unsqueeze(0)).squeeze(0);
}

std::string window_repr(Size2 k, Size2 s, Size2 p) {
  return fmt::format("kernel_size={}, stride={}, padding={}", k.str(), s.str(), p.str());
}
}  // namespace

MaxPool2d::MaxPool2d(Size2 k, std::optional<Size2> s, Size2 p)
    : kernel_size(k), stride(s.value_or(k)), padding(p) {
  check_window("MaxPool2d", kernel_size, stride, padding);
}
Tensor MaxPool2d::forward(const Tensor& input) {
  return pool("MaxPool2d", input, [&](const Tensor& x) {
    return max_pool2d(x, kernel_size.array(), stride.array(), padding.array());
  });
}
std::string MaxPool2d::extra_repr() const { return window_repr(kernel_size, stride, padding); }

AvgPool2d::AvgPool2d(Size2 k, std::optional<Size2> s, Size2 p)
    : kernel_size(k), stride(s.value_or(k)), padding(p) {
  check_window("AvgPool2d", kernel_size, stride, padding);
}
Tensor AvgPool2d::forward(const Tensor& input) {
  return pool("AvgPool2d", input, [&](const Tensor& x) {
    return avg_pool2d(x, kernel_size.array(), stride.array(), padding.array());
  });
}
std::string AvgPool2d::extra_repr() const { return window_repr(kernel_size, stride, padding); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 out) : output_size(out) {
  if (out.h <= 0 || out.w <= 0) fail("AdaptiveAvgPool2d: output_size must be positive, got {}", out.str());
}
Tensor AdaptiveAvgPool2d::forward(const Tensor& input) {
  return pool("AdaptiveAvgPool2d", input,
              [&](const Tensor& x) { return adaptive_avg_pool2d(x, output_size.array()); });
}
std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + output_size.str(); }

}  // namespace ember::nn
