// nn::init: PyTorch's initialisers. The random ones fill the tensor through the random kernel
// (same Philox stream on every device); trunc_normal_ samples by inverting the normal CDF.
#include "ember/nn/init.h"

#include <algorithm>
#include <cmath>

#include "core/tensor_impl.h"
#include "ember/autograd.h"
#include "ember/ops.h"
#include "ops/kernels/copy.h"
#include "ops/kernels/random.h"

namespace ember::nn::init {

namespace {

void check_floating(const Tensor& t, const char* op) {
  if (!t.defined()) fail("{}: tensor is undefined", op);
  if (!t.is_floating_point()) fail("{}: expected a floating tensor, got {}", op, t.dtype());
}

// Writes `values` (same shape, any device/dtype) into t without autograd and marks t modified.
void write(const Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.detach().copy_(values);
}

void fill_random(const Tensor& t, RandomDist dist, double a, double b) {
  if (t.numel() == 0) return;
  // The kernel writes a contiguous block; a strided tensor gets a temporary and a copy. bfloat16
  // has no random kernel: it draws in float32 and is rounded by the copy.
  const bool direct = t.is_contiguous() && t.dtype() != DType::bfloat16;
  const DType draw = t.dtype() == DType::bfloat16 ? DType::float32 : t.dtype();
  Tensor dst = direct ? t : empty_tensor(t.shape(), draw, t.device());
  uint64_t seed;
  uint64_t offset = reserve_random_offset(dst.numel(), &seed);
  random_stub(dst.device(), dist, dst, a, b, seed, offset);
  if (dst.is_same(t)) {
    t.impl()->bump_version();
  } else {
    write(t, dst);
  }
}

// Inverse of erf on (-1, 1): a rational first guess (Giles, 2010) polished by Newton steps on
// erf, which converge to double precision in two or three steps.
double erfinv(double y) {
  if (y <= -1.0) return -INFINITY;
  if (y >= 1.0) return INFINITY;
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    double p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      p = c + p * w;
    x = p * y;
  } else {
    w = std::sqrt(w) - 3.0;
    double p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      p = c + p * w;
    x = p * y;
  }
  for (int i = 0; i < 3; ++i) {
    double slope = 2.0 / std::sqrt(M_PI) * std::exp(-x * x);
    if (slope == 0.0) break;
    x -= (std::erf(x) - y) / slope;
  }
  return x;
}

int64_t fan(const Tensor& t, FanMode mode) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return mode == FanMode::fan_in ? fan_in : fan_out;
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::conv1d:
    case Nonlinearity::conv2d:
    case Nonlinearity::conv3d:
    case Nonlinearity::sigmoid:
      return 1.0;
    case Nonlinearity::tanh:
      return 5.0 / 3.0;
    case Nonlinearity::relu:
      return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: {
      double slope = param.value_or(0.01);
      return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    case Nonlinearity::selu:
      return 3.0 / 4.0;
  }
  fail("calculate_gain: unknown nonlinearity");
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  if (!t.defined()) fail("calculate_fan_in_and_fan_out: tensor is undefined");
  if (t.dim() < 2)
    fail(
        "calculate_fan_in_and_fan_out: fan in and fan out cannot be computed for a tensor with fewer than 2 "
        "dims (shape {})",
        shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor uniform_(const Tensor& t, double a, double b) {
  check_floating(t, "uniform_");
  if (!(a <= b)) fail("uniform_: expected a <= b, got a = {}, b = {}", a, b);
  fill_random(t, RandomDist::uniform, a, b);
  return t;
}

Tensor normal_(const Tensor& t, double mean, double std) {
  check_floating(t, "normal_");
  if (!(std >= 0)) fail("normal_: std must be non-negative, got {}", std);
  fill_random(t, RandomDist::normal, mean, std);
  return t;
}

Tensor trunc_normal_(const Tensor& t, double mean, double std, double a, double b) {
  check_floating(t, "trunc_normal_");
  if (!(std > 0)) fail("trunc_normal_: std must be positive, got {}", std);
  if (!(a < b)) fail("trunc_normal_: expected a < b, got a = {}, b = {}", a, b);
  if (t.numel() == 0) return t;
  // Draw a uniform in [cdf(a), cdf(b)] and map it through the inverse CDF, in float64 on the CPU
  // (erfinv is not a kernel; initialisation is a cold path).
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  double lo = 2.0 * cdf((a - mean) / std) - 1.0, hi = 2.0 * cdf((b - mean) / std) - 1.0;
  Tensor u = empty_tensor(t.shape(), DType::float64, Device::cpu());
  fill_random(u, RandomDist::uniform, lo, hi);
  double* p = u.data_ptr<double>();
  for (int64_t i = 0; i < u.numel(); ++i) p[i] = std::clamp(mean + std * std::sqrt(2.0) * erfinv(p[i]), a, b);
  write(t, u);
  return t;
}

Tensor constant_(const Tensor& t, double value) {
  if (!t.defined()) fail("constant_: tensor is undefined");
  if (t.numel() > 0) {
    fill_stub(t.device(), t, value);
    t.impl()->bump_version();
  }
  return t;
}
Tensor zeros_(const Tensor& t) { return constant_(t, 0.0); }
Tensor ones_(const Tensor& t) { return constant_(t, 1.0); }

Tensor xavier_uniform_(const Tensor& t, double gain) {
  check_floating(t, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  double bound = std::sqrt(3.0) * gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(t, -bound, bound);
}

Tensor xavier_normal_(const Tensor& t, double gain) {
  check_floating(t, "xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

Tensor kaiming_uniform_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  check_floating(t, "kaiming_uniform_");
  if (t.numel() == 0) return t;
  double std = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(t, mode)));
  return uniform_(t, -std::sqrt(3.0) * std, std::sqrt(3.0) * std);
}

Tensor kaiming_normal_(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
  check_floating(t, "kaiming_normal_");
  if (t.numel() == 0) return t;
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(t, mode))));
}

}  // namespace ember::nn::init
