#pragma once
// ember::nn::init: in-place initialisers with PyTorch's semantics (torch.nn.init). Each writes
// into the tensor's memory (whatever its device), needs no autograd bookkeeping, and returns the
// same tensor. Random ones draw from ember's global generator (ember::manual_seed).
//
// Fans follow PyTorch: for a weight of shape [out, in, k...], fan_in = in * prod(k) and
// fan_out = out * prod(k); tensors with fewer than 2 dims have no fans.
#include <optional>
#include <utility>

#include "ember/tensor.h"

namespace ember::nn::init {

enum class FanMode { fan_in, fan_out };
enum class Nonlinearity { linear, conv1d, conv2d, conv3d, sigmoid, tanh, relu, leaky_relu, selu };

// The recommended gain for a nonlinearity: 1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for
// relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope = param, default 0.01), 3/4 for selu.
double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param = std::nullopt);
// {fan_in, fan_out}; throws for tensors with fewer than 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor uniform_(const Tensor& t, double a = 0.0, double b = 1.0);      // U(a, b)
Tensor normal_(const Tensor& t, double mean = 0.0, double std = 1.0);  // N(mean, std^2)
// N(mean, std^2) conditioned on [a, b] (inverse-CDF sampling, exact; not rejection).
Tensor trunc_normal_(const Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0);
Tensor constant_(const Tensor& t, double value);
Tensor zeros_(const Tensor& t);
Tensor ones_(const Tensor& t);

// Glorot: std = gain * sqrt(2 / (fan_in + fan_out)); the uniform bound is sqrt(3) * std.
Tensor xavier_uniform_(const Tensor& t, double gain = 1.0);
Tensor xavier_normal_(const Tensor& t, double gain = 1.0);

// He: std = calculate_gain(nonlinearity, a) / sqrt(fan); the uniform bound is sqrt(3) * std.
// With the defaults (a = 0, leaky_relu) the gain is sqrt(2). PyTorch's Linear and Conv layers use
// kaiming_uniform_(w, a = sqrt(5)), which gives the bound 1 / sqrt(fan_in).
Tensor kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                        Nonlinearity nonlinearity = Nonlinearity::leaky_relu);
Tensor kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in,
                       Nonlinearity nonlinearity = Nonlinearity::leaky_relu);

}  // namespace ember::nn::init
