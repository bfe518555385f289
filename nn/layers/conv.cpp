// Conv2d, ConvTranspose2d and their 1-D forms: argument checks, PyTorch's init, and the calls into
// the conv ops.
#include "ember/nn/conv.h"

#include <cmath>

#include "ember/nn/init.h"
#include "ember/ops.h"
#include "nn/layers/unbatched.h"

namespace ember::nn {
namespace {

void check_layer_args(const char* layer, int64_t in, int64_t out, Size2 k, Size2 s, Size2 p, Size2 d,
                      int64_t g) {
  if (in <= 0 || out <= 0) fail("{}: channel counts must be positive, got in = {}, out = {}", layer, in, out);
  if (g <= 0) fail("{}: groups must be positive, got {}", layer, g);
  if (in % g != 0 || out % g != 0)
    fail("{}: in_channels ({}) and out_channels ({}) must both be divisible by groups ({})", layer, in, out,
         g);
  if (k.h <= 0 || k.w <= 0) fail("{}: kernel_size must be positive, got {}", layer, k.str());
  if (s.h <= 0 || s.w <= 0) fail("{}: stride must be positive, got {}", layer, s.str());
  if (p.h < 0 || p.w < 0) fail("{}: padding must be non-negative, got {}", layer, p.str());
  if (d.h <= 0 || d.w <= 0) fail("{}: dilation must be positive, got {}", layer, d.str());
}

// PyTorch's _ConvNd.reset_parameters, for both layers: the fan-in is read off the weight's dims 1..3
// (for a transposed convolution that is out_channels / groups * kh * kw, as in PyTorch).
void reset_conv_parameters(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(weight);
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    init::uniform_(bias, -bound, bound);
  }
}

// Checks a [N, C, *spatial] or unbatched [C, *spatial] input's channels, runs `op` on the batched
// form.
template <class Op>
Tensor forward_batched(const char* layer, int spatial, const Tensor& input, int64_t in_channels,
                       const Op& op) {
  return detail::on_batched(layer, spatial, input, [&](const Tensor& x) {
    if (x.size(1) != in_channels)
      fail("{}: input of shape {} has {} channels, expected in_channels = {}", layer,
           shape_str(input.shape()), x.size(1), in_channels);
    return op(x);
  });
}

std::string conv_repr(int64_t in, int64_t out, Size2 k, Size2 s, Size2 p, Size2 d, int64_t g, bool bias,
                      std::string extra = "") {
  std::string r = fmt::format("{}, {}, kernel_size={}, stride={}", in, out, k.str(), s.str());
  if (p != Size2(0)) r += ", padding=" + p.str();
  r += extra;
  if (d != Size2(1)) r += ", dilation=" + d.str();
  if (g != 1) r += fmt::format(", groups={}", g);
  if (!bias) r += ", bias=false";
  return r;
}

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, Size2 k, Size2 s, Size2 p, Size2 d, int64_t g, bool has_bias)
    : in_channels(in), out_channels(out), kernel_size(k), stride(s), padding(p), dilation(d), groups(g) {
  check_layer_args("Conv2d", in, out, k, s, p, d, g);
  weight = register_parameter("weight", empty({out, in / g, k.h, k.w}));
  if (has_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Conv2d::reset_parameters() { reset_conv_parameters(weight, bias); }

Tensor Conv2d::forward(const Tensor& input) {
  return forward_batched("Conv2d", 2, input, in_channels, [&](const Tensor& x) {
    return conv2d(x, weight, bias, stride.array(), padding.array(), dilation.array(), groups);
  });
}

std::string Conv2d::extra_repr() const {
  return conv_repr(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias.defined());
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, Size2 k, Size2 s, Size2 p, Size2 op, int64_t g,
                                 bool has_bias, Size2 d)
    : in_channels(in),
      out_channels(out),
      kernel_size(k),
      stride(s),
      padding(p),
      output_padding(op),
      dilation(d),
      groups(g) {
  check_layer_args("ConvTranspose2d", in, out, k, s, p, d, g);
  if (op.h < 0 || op.w < 0 || op.h >= std::max(s.h, d.h) || op.w >= std::max(s.w, d.w))
    fail("ConvTranspose2d: output_padding {} must be non-negative and smaller than stride {} or dilation {}",
         op.str(), s.str(), d.str());
  weight = register_parameter("weight", empty({in, out / g, k.h, k.w}));
  if (has_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void ConvTranspose2d::reset_parameters() { reset_conv_parameters(weight, bias); }

Tensor ConvTranspose2d::forward(const Tensor& input) {
  return forward_batched("ConvTranspose2d", 2, input, in_channels, [&](const Tensor& x) {
    return conv_transpose2d(x, weight, bias, stride.array(), padding.array(), output_padding.array(), groups,
                            dilation.array());
  });
}

std::string ConvTranspose2d::extra_repr() const {
  return conv_repr(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias.defined(),
                   output_padding != Size2(0) ? ", output_padding=" + output_padding.str() : "");
}

Conv1d::Conv1d(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d, int64_t g, bool has_bias)
    : in_channels(in), out_channels(out), kernel_size(k), stride(s), padding(p), dilation(d), groups(g) {
  check_layer_args("Conv1d", in, out, k, s, p, d, g);
  weight = register_parameter("weight", empty({out, in / g, k}));
  if (has_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Conv1d::reset_parameters() { reset_conv_parameters(weight, bias); }

Tensor Conv1d::forward(const Tensor& input) {
  return forward_batched("Conv1d", 1, input, in_channels, [&](const Tensor& x) {
    return conv1d(x, weight, bias, stride, padding, dilation, groups);
  });
}

std::string Conv1d::extra_repr() const {
  return conv_repr(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias.defined());
}

ConvTranspose1d::ConvTranspose1d(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, int64_t op,
                                 int64_t g, bool has_bias, int64_t d)
    : in_channels(in),
      out_channels(out),
      kernel_size(k),
      stride(s),
      padding(p),
      output_padding(op),
      groups(g),
      dilation(d) {
  check_layer_args("ConvTranspose1d", in, out, k, s, p, d, g);
  if (op < 0 || op >= std::max(s, d))
    fail("ConvTranspose1d: output_padding {} must be non-negative and smaller than stride {} or dilation {}",
         op, s, d);
  weight = register_parameter("weight", empty({in, out / g, k}));
  if (has_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void ConvTranspose1d::reset_parameters() { reset_conv_parameters(weight, bias); }

Tensor ConvTranspose1d::forward(const Tensor& input) {
  return forward_batched("ConvTranspose1d", 1, input, in_channels, [&](const Tensor& x) {
    return conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups, dilation);
  });
}

std::string ConvTranspose1d::extra_repr() const {
  return conv_repr(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias.defined(),
                   output_padding != 0 ? fmt::format(", output_padding={}", output_padding) : "");
}

}  // namespace ember::nn
