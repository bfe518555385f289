// nn::init and the layers' default initialisation: PyTorch's gains, fans, bounds and moments.
#include <ember/nn.h>

#include <cmath>

#include "harness.h"

namespace ember::testing {
namespace {

using namespace ember::nn::init;

struct Moments {
  double min, max, mean, std;
};
Moments moments(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  Moments m{INFINITY, -INFINITY, 0, 0};
  for (double x : v) {
    m.min = std::min(m.min, x);
    m.max = std::max(m.max, x);
    m.mean += x;
  }
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.std += (x - m.mean) * (x - m.mean);
  m.std = std::sqrt(m.std / static_cast<double>(v.size() - 1));
  return m;
}

// For n samples, 5 standard errors of the mean (or of the sample std, ~ std / sqrt(2n)).
double mean_tol(double std, int64_t n) { return 5 * std / std::sqrt(static_cast<double>(n)); }
double std_tol(double std, int64_t n) { return 5 * std / std::sqrt(2.0 * static_cast<double>(n)); }

// Checks U(-bound, bound): inside the bounds, reaching near them, and with std bound / sqrt(3).
void expect_uniform(const Tensor& t, double lo, double hi) {
  Moments m = moments(t);
  const double width = hi - lo, std = width / std::sqrt(12.0);
  EXPECT_GE(m.min, lo);
  EXPECT_LT(m.max, hi);
  EXPECT_LT(m.min, lo + 0.01 * width);
  EXPECT_GT(m.max, hi - 0.01 * width);
  EXPECT_NEAR(m.mean, (lo + hi) / 2, mean_tol(std, t.numel()));
  EXPECT_NEAR(m.std, std, std_tol(std, t.numel()));
}

void expect_normal(const Tensor& t, double mean, double std) {
  Moments m = moments(t);
  EXPECT_NEAR(m.mean, mean, mean_tol(std, t.numel()));
  EXPECT_NEAR(m.std, std, std_tol(std, t.numel()));
}

TEST(Init, GainsAndFans) {
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::linear), 1.0);
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::conv2d), 1.0);
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::sigmoid), 1.0);
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::tanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::relu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::leaky_relu), std::sqrt(2.0 / (1 + 0.01 * 0.01)));
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::leaky_relu, std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_DOUBLE_EQ(calculate_gain(Nonlinearity::selu), 0.75);
  EXPECT_EQ(calculate_fan_in_and_fan_out(empty({6, 4, 3, 2})), (std::pair<int64_t, int64_t>{24, 36}));
  EXPECT_EQ(calculate_fan_in_and_fan_out(empty({5, 7})), (std::pair<int64_t, int64_t>{7, 5}));
  EMBER_EXPECT_THROW_MSG(calculate_fan_in_and_fan_out(empty({5})), "fewer than 2 dims (shape [5])");
  EMBER_EXPECT_THROW_MSG(xavier_uniform_(empty({5})), "fewer than 2 dims");
}

TEST(Init, UniformAndNormal) {
  manual_seed(11);
  expect_uniform(uniform_(empty({200, 100}), -2.0, 3.0), -2.0, 3.0);
  expect_normal(normal_(empty({200, 100}, DType::float64), 1.0, 2.0), 1.0, 2.0);
  Tensor c = constant_(empty({3}), 2.5);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{2.5f, 2.5f, 2.5f}));
  EXPECT_EQ(zeros_(ones({2})).to_vector<float>(), (std::vector<float>{0, 0}));
  EXPECT_EQ(ones_(zeros({2}, DType::int64)).to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
}

TEST(Init, SeededAndStridedTargets) {
  manual_seed(5);
  Tensor a = uniform_(empty({4, 3}));
  manual_seed(5);
  Tensor b = uniform_(empty({4, 3}));
  EXPECT_TRUE(equal(a, b));
  // A transposed view is filled through its strides: the base gets the values, transposed.
  manual_seed(5);
  Tensor base = zeros({3, 4});
  uniform_(base.t());
  EXPECT_TRUE(equal(base.t(), a));
}

TEST(Init, KaimingAndXavier) {
  manual_seed(12);
  const double fan_in = 100, fan_out = 200;
  // Default: leaky_relu with a = 0 -> gain sqrt(2); bound = gain * sqrt(3 / fan_in).
  double b = std::sqrt(2.0) * std::sqrt(3.0 / fan_in);
  expect_uniform(kaiming_uniform_(empty({200, 100})), -b, b);
  b = std::sqrt(2.0) * std::sqrt(3.0 / fan_out);
  expect_uniform(kaiming_uniform_(empty({200, 100}), 0.0, FanMode::fan_out, Nonlinearity::relu), -b, b);
  // PyTorch's Linear default: a = sqrt(5) gives bound 1 / sqrt(fan_in).
  b = 1.0 / std::sqrt(fan_in);
  expect_uniform(kaiming_uniform_(empty({200, 100}), std::sqrt(5.0)), -b, b);
  expect_normal(kaiming_normal_(empty({200, 100})), 0.0, std::sqrt(2.0 / fan_in));
  expect_normal(kaiming_normal_(empty({200, 100}), 0.0, FanMode::fan_out, Nonlinearity::tanh), 0.0,
                5.0 / 3.0 / std::sqrt(fan_out));
  b = 2.0 * std::sqrt(6.0 / (fan_in + fan_out));
  expect_uniform(xavier_uniform_(empty({200, 100}), 2.0), -b, b);
  expect_normal(xavier_normal_(empty({200, 100})), 0.0, std::sqrt(2.0 / (fan_in + fan_out)));
  // A conv weight's fans include the receptive field: [16, 8, 3, 3] -> fan_in 72, fan_out 144.
  b = std::sqrt(6.0 / (72 + 144));
  expect_uniform(xavier_uniform_(empty({16, 8, 3, 3})), -b, b);
}

TEST(Init, TruncNormalMatchesTheTruncatedMoments) {
  manual_seed(13);
  const double mean = 0.5, std = 1.0, a = -0.5, b = 1.0;
  Tensor t = trunc_normal_(empty({100, 100}, DType::float64), mean, std, a, b);
  Moments m = moments(t);
  EXPECT_GE(m.min, a);
  EXPECT_LE(m.max, b);
  // Moments of N(mean, std^2) truncated to [a, b], with alpha, beta the standardised bounds.
  auto pdf = [](double x) { return std::exp(-x * x / 2) / std::sqrt(2 * M_PI); };
  auto cdf = [](double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); };
  const double al = (a - mean) / std, be = (b - mean) / std, z = cdf(be) - cdf(al);
  const double tmean = mean + std * (pdf(al) - pdf(be)) / z;
  const double tvar =
      std * std * (1 + (al * pdf(al) - be * pdf(be)) / z - std::pow((pdf(al) - pdf(be)) / z, 2));
  EXPECT_NEAR(m.mean, tmean, mean_tol(std::sqrt(tvar), t.numel()));
  EXPECT_NEAR(m.std, std::sqrt(tvar), std_tol(std::sqrt(tvar), t.numel()));
  // Far tails still land inside the bounds (the inverse CDF is accurate near +-1).
  Tensor tail = trunc_normal_(empty({1000}, DType::float64), 0.0, 1.0, 4.0, 6.0);
  EXPECT_GE(moments(tail).min, 4.0);
  EXPECT_LE(moments(tail).max, 6.0);
  EXPECT_NEAR(moments(tail).mean, 4.0 + 1.0 / 4.0, 0.05);  // ~ a + 1/a for a far left bound
}

TEST(Init, Errors) {
  EMBER_EXPECT_THROW_MSG(uniform_(empty({2}, DType::int64)),
                         "uniform_: expected a floating tensor, got int64");
  EMBER_EXPECT_THROW_MSG(uniform_(empty({2}), 1.0, 0.0), "expected a <= b");
  EMBER_EXPECT_THROW_MSG(normal_(empty({2}), 0.0, -1.0), "std must be non-negative");
  EMBER_EXPECT_THROW_MSG(trunc_normal_(empty({2}), 0.0, 1.0, 1.0, 1.0), "expected a < b");
  EMBER_EXPECT_THROW_MSG(constant_(Tensor(), 1.0), "undefined");
}

// ---- the layers' defaults (PyTorch's reset_parameters) ----

TEST(Init, LinearAndConvDefaults) {
  manual_seed(14);
  nn::Linear lin(50, 400);
  double b = 1.0 / std::sqrt(50.0);
  expect_uniform(lin.weight, -b, b);
  Moments mb = moments(lin.bias);
  EXPECT_GE(mb.min, -b);
  EXPECT_LT(mb.max, b);
  EXPECT_GT(mb.max - mb.min, 1.5 * b);  // 400 draws spread over the range
  EXPECT_EQ(lin.weight.dtype(), DType::float32);

  nn::Conv2d conv(4, 64, 3, 1, 0, 1, /*groups=*/2);
  EXPECT_EQ(conv.weight.shape(), (Shape{64, 2, 3, 3}));
  b = 1.0 / std::sqrt(2.0 * 9.0);  // fan_in = in / groups * kh * kw = 18
  expect_uniform(conv.weight, -b, b);
  EXPECT_LT(moments(conv.bias).max, b);
  EXPECT_GE(moments(conv.bias).min, -b);
}

TEST(Init, EmbeddingNormDefaultsAndAttention) {
  manual_seed(15);
  nn::Embedding emb(100, 64, -1);  // padding_idx -1 is row 99
  EXPECT_EQ(emb.padding_idx, std::optional<int64_t>(99));
  expect_normal(emb.weight.narrow(0, 0, 99), 0.0, 1.0);
  EXPECT_TRUE(equal(emb.weight.select(0, 99), zeros({64})));

  nn::BatchNorm2d bn(3);
  EXPECT_TRUE(equal(bn.weight, ones({3})));
  EXPECT_TRUE(equal(bn.bias, zeros({3})));
  EXPECT_TRUE(equal(bn.running_mean, zeros({3})));
  EXPECT_TRUE(equal(bn.running_var, ones({3})));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 0);
  EXPECT_EQ(bn.num_batches_tracked.dtype(), DType::int64);
  nn::LayerNorm ln({2, 3});
  EXPECT_TRUE(equal(ln.weight, ones({2, 3})));
  EXPECT_TRUE(equal(ln.bias, zeros({2, 3})));

  const int64_t E = 64;
  nn::MultiheadAttention mha(E, 4);
  double b = std::sqrt(6.0 / (E + 3 * E));  // xavier_uniform_ on [3E, E]
  expect_uniform(mha.in_proj_weight, -b, b);
  EXPECT_TRUE(equal(mha.in_proj_bias, zeros({3 * E})));
  EXPECT_TRUE(equal(mha.out_proj->bias, zeros({E})));
  b = 1.0 / std::sqrt(static_cast<double>(E));
  EXPECT_LE(moments(mha.out_proj->weight).max, b);
  EXPECT_GT(moments(mha.out_proj->weight).max, 0.9 * b);
}

}  // namespace
}  // namespace ember::testing
