// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and their 1-D forms: thin layers over the pooling ops.
#include "ember/nn/pooling.h"

#include "ember/ops.h"
#include "nn/layers/unbatched.h"

namespace ember::nn {

namespace {
void check_window(const char* layer, Size2 kernel, Size2 stride, Size2 padding) {
  if (kernel.h <= 0 || kernel.w <= 0) fail("{}: kernel_size must be positive, got {}", layer, kernel.str());
  if (stride.h <= 0 || stride.w <= 0) fail("{}: stride must be positive, got {}", layer, stride.str());
  if (padding.h < 0 || padding.w < 0 || 2 * padding.h > kernel.h || 2 * padding.w > kernel.w)
    fail("{}: padding {} must be non-negative and at most half the kernel size {}", layer, padding.str(),
         kernel.str());
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
  return detail::on_batched("MaxPool2d", 2, input, [&](const Tensor& x) {
    return max_pool2d(x, kernel_size.array(), stride.array(), padding.array());
  });
}
std::string MaxPool2d::extra_repr() const { return window_repr(kernel_size, stride, padding); }

AvgPool2d::AvgPool2d(Size2 k, std::optional<Size2> s, Size2 p)
    : kernel_size(k), stride(s.value_or(k)), padding(p) {
  check_window("AvgPool2d", kernel_size, stride, padding);
}
Tensor AvgPool2d::forward(const Tensor& input) {
  return detail::on_batched("AvgPool2d", 2, input, [&](const Tensor& x) {
    return avg_pool2d(x, kernel_size.array(), stride.array(), padding.array());
  });
}
std::string AvgPool2d::extra_repr() const { return window_repr(kernel_size, stride, padding); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 out) : output_size(out) {
  if (out.h <= 0 || out.w <= 0) fail("AdaptiveAvgPool2d: output_size must be positive, got {}", out.str());
}
Tensor AdaptiveAvgPool2d::forward(const Tensor& input) {
  return detail::on_batched("AdaptiveAvgPool2d", 2, input,
                            [&](const Tensor& x) { return adaptive_avg_pool2d(x, output_size.array()); });
}
std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + output_size.str(); }

MaxPool1d::MaxPool1d(int64_t k, std::optional<int64_t> s, int64_t p)
    : kernel_size(k), stride(s.value_or(k)), padding(p) {
  check_window("MaxPool1d", kernel_size, stride, padding);
}
Tensor MaxPool1d::forward(const Tensor& input) {
  return detail::on_batched("MaxPool1d", 1, input,
                            [&](const Tensor& x) { return max_pool1d(x, kernel_size, stride, padding); });
}
std::string MaxPool1d::extra_repr() const { return window_repr(kernel_size, stride, padding); }

AvgPool1d::AvgPool1d(int64_t k, std::optional<int64_t> s, int64_t p)
    : kernel_size(k), stride(s.value_or(k)), padding(p) {
  check_window("AvgPool1d", kernel_size, stride, padding);
}
Tensor AvgPool1d::forward(const Tensor& input) {
  return detail::on_batched("AvgPool1d", 1, input,
                            [&](const Tensor& x) { return avg_pool1d(x, kernel_size, stride, padding); });
}
std::string AvgPool1d::extra_repr() const { return window_repr(kernel_size, stride, padding); }

AdaptiveAvgPool1d::AdaptiveAvgPool1d(int64_t out) : output_size(out) {
  if (out <= 0) fail("AdaptiveAvgPool1d: output_size must be positive, got {}", out);
}
Tensor AdaptiveAvgPool1d::forward(const Tensor& input) {
  return detail::on_batched("AdaptiveAvgPool1d", 1, input,
                            [&](const Tensor& x) { return adaptive_avg_pool1d(x, output_size); });
}
std::string AdaptiveAvgPool1d::extra_repr() const { return fmt::format("output_size={}", output_size); }

}  // namespace ember::nn
