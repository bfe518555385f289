// Layers: forward against hand-computed values, gradcheck (float64) through the layer with respect
// to its input and its parameters, and argument errors. BatchNorm/LayerNorm are in test_nn_norm,
// attention in test_nn_attention.
#include <ember/nn.h>

#include <cmath>
#include <functional>

#include "harness.h"
#include "nn_test_util.h"

namespace ember::testing {
namespace {

// ---- parameter-free layers as op-harness rows (forward, gradcheck, CUDA parity) ----

template <class Layer, class... Args>
OpFn layer_fn(Args... args) {
  return [=](const std::vector<Tensor>& in) { return Layer(args...).forward(in[0]); };
}

std::vector<OpCase> activation_cases() {
  Tensor x = T({-2.0, -0.5, 0.25, 1.5}, {2, 2});
  auto map = [&](double (*f)(double)) {
    std::vector<double> v = x.to_vector<double>();
    for (double& e : v) e = f(e);
    return tensor<double>(v, {2, 2});
  };
  return with_gradgradcheck({
      {"ReLU", layer_fn<nn::ReLU>(), {x}, tensor<double>({0, 0, 0.25, 1.5}, {2, 2})},
      {"GELU", layer_fn<nn::GELU>(), {x}, map([](double v) {
         return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
       })},
      {"GELU_tanh", layer_fn<nn::GELU>(std::string("tanh")), {x}, map([](double v) {
         return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
       })},
      {"SiLU", layer_fn<nn::SiLU>(), {x}, map([](double v) { return v / (1 + std::exp(-v)); })},
      {"Sigmoid", layer_fn<nn::Sigmoid>(), {x}, map([](double v) { return 1 / (1 + std::exp(-v)); })},
      {"Tanh", layer_fn<nn::Tanh>(), {x}, map([](double v) { return std::tanh(v); })},
      {"Identity", layer_fn<nn::Identity>(), {x}, tensor<double>({-2.0, -0.5, 0.25, 1.5}, {2, 2})},
      {"LeakyReLU", layer_fn<nn::LeakyReLU>(0.2), {x}, map([](double v) { return v < 0 ? 0.2 * v : v; })},
      {"ELU", layer_fn<nn::ELU>(1.5), {x}, map([](double v) { return v > 0 ? v : 1.5 * (std::exp(v) - 1); })},
      // beta x above the threshold (1.5 * 2 > 1) gives x itself
      {"Softplus_beta_threshold", layer_fn<nn::Softplus>(2.0, 1.0), {x}, map([](double v) {
         return 2 * v > 1 ? v : std::log1p(std::exp(2 * v)) / 2;
       })},
      {"Mish", layer_fn<nn::Mish>(), {x}, map([](double v) {
         return v * std::tanh(std::log1p(std::exp(v)));
       })},
      {"Hardtanh", layer_fn<nn::Hardtanh>(-1.0, 1.0), {x}, tensor<double>({-1, -0.5, 0.25, 1}, {2, 2})},
      {"Softmax_rows",
       layer_fn<nn::Softmax>(int64_t{1}),
       {x},
       [&] {
         std::vector<double> v = x.to_vector<double>(), out;
         for (int r = 0; r < 2; ++r) {
           const double a = std::exp(v[2 * r]), b = std::exp(v[2 * r + 1]);
           out.push_back(a / (a + b));
           out.push_back(b / (a + b));
         }
         return tensor<double>(out, {2, 2});
       }()},
      {"LogSoftmax_columns",
       layer_fn<nn::LogSoftmax>(int64_t{0}),
       {x},
       [&] {
         std::vector<double> v = x.to_vector<double>(), out(4);
         for (int c = 0; c < 2; ++c) {
           const double lse = std::log(std::exp(v[c]) + std::exp(v[2 + c]));
           out[c] = v[c] - lse;
           out[2 + c] = v[2 + c] - lse;
         }
         return tensor<double>(out, {2, 2});
       }()},
      {"Flatten",
       layer_fn<nn::Flatten>(),
       {T({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2})},
       tensor<double>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4})},
      {"Flatten_middle",
       layer_fn<nn::Flatten>(int64_t{0}, int64_t{1}),
       {T({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2})},
       tensor<double>({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2})},
      {"Dropout_eval_or_p0",
       layer_fn<nn::Dropout>(0.0),
       {x},
       tensor<double>({-2.0, -0.5, 0.25, 1.5}, {2, 2})},
  });
}
EMBER_OP_SUITE(ActivationLayers, activation_cases);

// Derivatives where a composite activation switches branch, as PyTorch 1.13 computes them.
TEST(ActivationLayers, DerivativesAtTheSeamsMatchPyTorch) {
  auto grad_of = [](const std::function<Tensor(const Tensor&)>& f, std::vector<double> at) {
    Tensor x = tensor<double>(at, {static_cast<int64_t>(at.size())}).requires_grad_();
    f(x).sum().backward();
    return x.grad().to_vector<double>();
  };
  // elu: no NaN from the exponential branch at large x; alpha e^x at and below 0
  EXPECT_EQ(grad_of([](const Tensor& x) { return elu(x, 2.0); }, {1000.0, 0.0, -1.0}),
            (std::vector<double>{1.0, 2.0, 2.0 * std::exp(-1.0)}));
  // hardtanh: slope 0 at both ends (clamp's would be 1 there)
  EXPECT_EQ(grad_of([](const Tensor& x) { return hardtanh(x, -1.0, 2.0); }, {-1.0, 2.0, 0.5, 3.0}),
            (std::vector<double>{0.0, 0.0, 1.0, 0.0}));
  // softplus past its threshold is x (slope 1); below, sigmoid(beta x)
  std::vector<double> g = grad_of([](const Tensor& x) { return softplus(x, 3.0, 6.0); }, {2.5, 1.0});
  EXPECT_EQ(g[0], 1.0);
  EXPECT_NEAR(g[1], 1 / (1 + std::exp(-3.0)), 1e-15);
  EXPECT_EQ(grad_of([](const Tensor& x) { return mish(x); }, {-1000.0})[0], 0.0);  // no NaN far out
  EMBER_EXPECT_THROW_MSG(hardtanh(zeros({2}), 1.0, -1.0), "hardtanh: min_val 1 must not exceed max_val -1");
  EMBER_EXPECT_THROW_MSG(nn::Softplus(0.0), "Softplus: beta must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(elu(zeros({2}, DType::int64)), "elu: input dtype int64 is not floating point");
  EXPECT_EQ(nn::LeakyReLU(0.2).str(), "LeakyReLU(negative_slope=0.2)");
  EXPECT_EQ(nn::Softplus(2.0, 1.0).str(), "Softplus(beta=2, threshold=1)");
  EXPECT_EQ(nn::Hardtanh().str(), "Hardtanh(min_val=-1, max_val=1)");
  EXPECT_EQ(nn::LogSoftmax(-1).str(), "LogSoftmax(dim=-1)");
}

std::vector<OpCase> pooling_cases() {
  // 4x4 image 0..15 (distinct values keep max pooling differentiable for gradcheck)
  std::vector<double> v16;
  for (int i = 0; i < 16; ++i) v16.push_back(i * 0.5 - ((i * 7) % 5) * 0.1);
  Tensor img = T(v16, {1, 1, 4, 4});
  auto at = [&](int r, int c) { return v16[r * 4 + c]; };
  auto max4 = [&](int r, int c) {
    return std::max({at(r, c), at(r, c + 1), at(r + 1, c), at(r + 1, c + 1)});
  };
  auto avg4 = [&](int r, int c) { return (at(r, c) + at(r, c + 1) + at(r + 1, c) + at(r + 1, c + 1)) / 4; };
  auto mean_rows_cols = [&](int r0, int r1, int c0, int c1) {
    double s = 0;
    for (int r = r0; r < r1; ++r)
      for (int c = c0; c < c1; ++c) s += at(r, c);
    return s / ((r1 - r0) * (c1 - c0));
  };
  return with_gradgradcheck({
      {"MaxPool2d_2",
       layer_fn<nn::MaxPool2d>(nn::Size2(2)),
       {img},
       tensor<double>({max4(0, 0), max4(0, 2), max4(2, 0), max4(2, 2)}, {1, 1, 2, 2})},
      {"MaxPool2d_3_stride1",
       layer_fn<nn::MaxPool2d>(nn::Size2(3), std::optional<nn::Size2>(1)),
       {img},
       tensor<double>({std::max({max4(0, 0), max4(0, 1), max4(1, 0), max4(1, 1)}),
                       std::max({max4(0, 1), max4(0, 2), max4(1, 1), max4(1, 2)}),
                       std::max({max4(1, 0), max4(1, 1), max4(2, 0), max4(2, 1)}),
                       std::max({max4(1, 1), max4(1, 2), max4(2, 1), max4(2, 2)})},
                      {1, 1, 2, 2})},
      // Padding 1 with kernel 2, stride 2: windows start at -1, 1, 3; padding never wins a max.
      {"MaxPool2d_padded",
       layer_fn<nn::MaxPool2d>(nn::Size2(2), std::optional<nn::Size2>(2), nn::Size2(1)),
       {img},
       tensor<double>({at(0, 0), std::max(at(0, 1), at(0, 2)), at(0, 3),                        //
                       std::max(at(1, 0), at(2, 0)), max4(1, 1), std::max(at(1, 3), at(2, 3)),  //
                       at(3, 0), std::max(at(3, 1), at(3, 2)), at(3, 3)},
                      {1, 1, 3, 3})},
      {"AvgPool2d_2",
       layer_fn<nn::AvgPool2d>(nn::Size2(2)),
       {img},
       tensor<double>({avg4(0, 0), avg4(0, 2), avg4(2, 0), avg4(2, 2)}, {1, 1, 2, 2})},
      {"AdaptiveAvgPool2d_1",
       layer_fn<nn::AdaptiveAvgPool2d>(nn::Size2(1)),
       {img},
       tensor<double>({mean_rows_cols(0, 4, 0, 4)}, {1, 1, 1, 1})},
      // Output 3 from 4: windows [0,2), [1,3), [2,4) per dim.
      {"AdaptiveAvgPool2d_3x2",
       layer_fn<nn::AdaptiveAvgPool2d>(nn::Size2(3, 2)),
       {img},
       tensor<double>({mean_rows_cols(0, 2, 0, 2), mean_rows_cols(0, 2, 2, 4), mean_rows_cols(1, 3, 0, 2),
                       mean_rows_cols(1, 3, 2, 4), mean_rows_cols(2, 4, 0, 2), mean_rows_cols(2, 4, 2, 4)},
                      {1, 1, 3, 2})},
      {"MaxPool2d_unbatched",
       layer_fn<nn::MaxPool2d>(nn::Size2(2)),
       {img.detach().view({1, 4, 4}).requires_grad_()},
       tensor<double>({max4(0, 0), max4(0, 2), max4(2, 0), max4(2, 2)}, {1, 2, 2})},
  });
}
EMBER_OP_SUITE(PoolingLayers, pooling_cases);

TEST(Layers, ParameterFreeErrors) {
  EMBER_EXPECT_THROW_MSG(nn::GELU("fast"), "approximate must be \"none\" or \"tanh\", got \"fast\"");
  EMBER_EXPECT_THROW_MSG(nn::Dropout(1.5), "Dropout: probability must be in [0, 1], got 1.5");
  EMBER_EXPECT_THROW_MSG(nn::MaxPool2d(2, 2, 2), "padding 2 must be non-negative and at most half");
  EMBER_EXPECT_THROW_MSG(nn::AvgPool2d(0), "kernel_size must be positive");
  EMBER_EXPECT_THROW_MSG(nn::AdaptiveAvgPool2d({0, 2}), "output_size must be positive");
  EMBER_EXPECT_THROW_MSG(nn::MaxPool2d(2).forward(zeros({4, 4})),
                         "expected input [N, C, H, W] or [C, H, W], got shape [4,4]");
  EMBER_EXPECT_THROW_MSG(nn::ReLU().forward(Tensor()), "ReLU: input is an undefined tensor");
}

TEST(Layers, DropoutTrainingAndEval) {
  manual_seed(3);
  nn::Dropout drop(0.25);
  Tensor x = full({100, 100}, 2.0, DType::float64).requires_grad_();
  Tensor y = drop.forward(x);
  std::vector<double> v = y.to_vector<double>();
  int64_t zeros_seen = 0;
  for (double e : v) {
    EXPECT_TRUE(e == 0.0 || std::abs(e - 2.0 / 0.75) < 1e-12) << e;  // kept values are scaled by 1 / (1 - p)
    zeros_seen += e == 0.0;
  }
  EXPECT_NEAR(zeros_seen / 10000.0, 0.25, 5 * std::sqrt(0.25 * 0.75 / 10000));
  y.sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), y.detach() / 2.0, 1e-12));  // the gradient is the same scaled mask
  drop.eval();
  EXPECT_TRUE(equal(drop.forward(x), x));
  EXPECT_TRUE(equal(nn::Dropout(1.0).forward(x), zeros({100, 100}, DType::float64)));
}

// Channel dropout: whole (n, c) slices are kept (scaled by 1 / (1 - p)) or zeroed together.
TEST(Layers, FeatureDropoutDropsWholeChannels) {
  manual_seed(5);
  Tensor x = full({40, 50, 3, 2}, 2.0, DType::float64).requires_grad_();
  nn::Dropout2d drop(0.4);
  Tensor y = drop.forward(x);
  int64_t dropped = 0;
  for (const Tensor& slice : y.detach().view({2000, 6}).unbind(0)) {
    const std::vector<double> v = slice.to_vector<double>();
    const bool zeroed = v[0] == 0.0;
    dropped += zeroed;
    for (double e : v) EXPECT_NEAR(e, zeroed ? 0.0 : 2.0 / 0.6, 1e-12);
  }
  EXPECT_NEAR(dropped / 2000.0, 0.4, 5 * std::sqrt(0.4 * 0.6 / 2000));
  y.sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), y.detach() / 2.0, 1e-12));
  // unbatched [C, H, W] input: each channel is one slice
  Tensor u = nn::Dropout2d(0.5).forward(ones({64, 2, 2}));
  EXPECT_TRUE(equal(amax(u, {1, 2}), amin(u, {1, 2})));
  EXPECT_EQ(nn::Dropout1d(0.3).forward(ones({4, 5, 6})).shape(), (Shape{4, 5, 6}));
  drop.eval();
  EXPECT_TRUE(equal(drop.forward(x), x));
  EXPECT_TRUE(equal(feature_dropout(x, 1.0, true), zeros({40, 50, 3, 2}, DType::float64)));
  EXPECT_EQ(nn::Dropout3d(0.2).str(), "Dropout3d(p=0.2)");
  EMBER_EXPECT_THROW_MSG(
      nn::Dropout2d(0.5).forward(ones({2, 3})),
      "Dropout2d: expected input of 4 dims [N, C, ...] or 3 dims [C, ...], got shape [2,3]");
  EMBER_EXPECT_THROW_MSG(nn::Dropout1d(-0.1), "Dropout1d: probability must be in [0, 1], got -0.1");
  EMBER_EXPECT_THROW_MSG(feature_dropout(ones({3}), 0.5, true),
                         "feature_dropout: expected input [N, C, *], got shape [3]");
}

TEST(Layers, UnflattenSplitsOneDim) {
  Tensor x = arange(24.0, kFloat64).view({2, 12});
  EXPECT_EQ(nn::Unflatten(1, {3, 4}).forward(x).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(nn::Unflatten(-1, {2, -1, 3}).forward(x).shape(), (Shape{2, 2, 2, 3}));
  EXPECT_TRUE(equal(nn::Flatten().forward(nn::Unflatten(1, {3, 4}).forward(x)), x));
  EXPECT_EQ(nn::Unflatten(1, {3, 4}).str(), "Unflatten(dim=1, unflattened_size=[3,4])");
  EMBER_EXPECT_THROW_MSG(nn::Unflatten(1, {5, 2}).forward(x),
                         "Unflatten: sizes [5,2] do not multiply to dim 1 of input [2,12] (size 12)");
  EMBER_EXPECT_THROW_MSG(nn::Unflatten(1, {-1, -1}),
                         "Unflatten: sizes [-1,-1] must be non-negative, with at most one -1");
  EMBER_EXPECT_THROW_MSG(nn::Unflatten(2, {3, 4}).forward(x),
                         "Unflatten: dim 2 is out of range for input [2,12]");
}

// ---- layers with parameters ----

TEST(Layers, LinearForward) {
  nn::Linear lin(2, 3);
  set_values(lin.weight, {1, 2, 3, -1, 0, 0.5});
  set_values(lin.bias, {0.5, -1, 2});
  Tensor x = tensor<float>({1, -1, 2, 0.5}, {2, 2});
  EXPECT_TRUE(tensors_close(lin.forward(x), tensor<double>({-0.5, 3, 1.5, 3.5, 4.5, 2.25}, {2, 3}), 1e-6));
  // Leading dims broadcast: [2, 1, 2] -> [2, 1, 3].
  EXPECT_TRUE(tensors_close(lin.forward(x.view({2, 1, 2})),
                            tensor<double>({-0.5, 3, 1.5, 3.5, 4.5, 2.25}, {2, 1, 3}), 1e-6));
  nn::Linear nobias(2, 1, false);
  EXPECT_FALSE(nobias.bias.defined());
  EXPECT_EQ(nobias.parameters().size(), 1u);
  set_values(nobias.weight, {2, 3});
  EXPECT_TRUE(tensors_close(nobias.forward(x), tensor<double>({-1, 5.5}, {2, 1}), 1e-6));
  EMBER_EXPECT_THROW_MSG(lin.forward(zeros({2, 5})),
                         "Linear: input of shape [2,5] should have in_features = 2");
  EMBER_EXPECT_THROW_MSG(nn::Linear(-1, 2), "feature counts must be non-negative");
}

TEST(Layers, LinearGradcheck) {
  manual_seed(4);
  auto lin = std::make_shared<nn::Linear>(3, 2);
  EXPECT_TRUE(module_gradcheck(*lin, {&lin->weight, &lin->bias}, R({4, 3}),
                               [&](const Tensor& x) { return lin->forward(x); }));
}

TEST(Layers, Conv2dForward) {
  nn::Conv2d conv(1, 1, 2);
  set_values(conv.weight, {1, 2, -1, 0.5});
  set_values(conv.bias, {0.5});
  Tensor x = arange(1, 10, 1, DType::float32).view({1, 1, 3, 3});
  EXPECT_TRUE(tensors_close(conv.forward(x), tensor<double>({4.0, 6.5, 11.5, 14.0}, {1, 1, 2, 2}), 1e-6));
  // Unbatched input [C, H, W].
  EXPECT_TRUE(tensors_close(conv.forward(x.view({1, 3, 3})),
                            tensor<double>({4.0, 6.5, 11.5, 14.0}, {1, 2, 2}), 1e-6));
  // Stride 2 with zero padding 1.
  nn::Conv2d strided(1, 1, 2, 2, 1);
  set_values(strided.weight, {1, 2, -1, 0.5});
  set_values(strided.bias, {0.5});
  EXPECT_TRUE(tensors_close(strided.forward(x), tensor<double>({1.0, 0.0, 12.0, 14.0}, {1, 1, 2, 2}), 1e-6));
  // Dilation 2: the taps are the four corners.
  nn::Conv2d dilated(1, 1, 2, 1, 0, 2);
  set_values(dilated.weight, {1, 2, -1, 0.5});
  set_values(dilated.bias, {0.5});
  EXPECT_TRUE(tensors_close(dilated.forward(x), tensor<double>({5.0}, {1, 1, 1, 1}), 1e-6));
  // Groups: each output channel sees only its own input channel.
  nn::Conv2d grouped(2, 2, 1, 1, 0, 1, 2, false);
  set_values(grouped.weight, {2, -1});
  Tensor two = tensor<float>({1, 2, 3, 4}, {1, 2, 1, 2});
  EXPECT_TRUE(tensors_close(grouped.forward(two), tensor<double>({2, 4, -3, -4}, {1, 2, 1, 2}), 1e-6));
  // Rectangular kernel and output size.
  nn::Conv2d rect(1, 2, {1, 3});
  EXPECT_EQ(rect.forward(zeros({2, 1, 4, 5})).shape(), (Shape{2, 2, 4, 3}));
}

TEST(Layers, Conv2dGradcheck) {
  manual_seed(5);
  auto conv = std::make_shared<nn::Conv2d>(2, 2, 2, 1, 1);
  EXPECT_TRUE(module_gradcheck(*conv, {&conv->weight, &conv->bias}, R({1, 2, 3, 3}),
                               [&](const Tensor& x) { return conv->forward(x); }));
  auto grouped = std::make_shared<nn::Conv2d>(2, 4, nn::Size2(2, 1), 2, 0, 1, 2);
  EXPECT_TRUE(module_gradcheck(*grouped, {&grouped->weight, &grouped->bias}, R({1, 2, 4, 3}, -1, 1, 2),
                               [&](const Tensor& x) { return grouped->forward(x); }));
}

TEST(Layers, Conv2dErrors) {
  EMBER_EXPECT_THROW_MSG(nn::Conv2d(3, 4, 3, 1, 0, 1, 2),
                         "in_channels (3) and out_channels (4) must both be divisible by groups (2)");
  EMBER_EXPECT_THROW_MSG(nn::Conv2d(1, 1, {0, 3}), "kernel_size must be positive, got (0, 3)");
  EMBER_EXPECT_THROW_MSG(nn::Conv2d(1, 1, 3, 0), "stride must be positive");
  EMBER_EXPECT_THROW_MSG(nn::Conv2d(1, 1, 3, 1, -1), "padding must be non-negative");
  nn::Conv2d conv(3, 4, 3);
  EMBER_EXPECT_THROW_MSG(conv.forward(zeros({1, 2, 5, 5})),
                         "input of shape [1,2,5,5] has 2 channels, expected in_channels = 3");
  EMBER_EXPECT_THROW_MSG(conv.forward(zeros({5, 5})), "expected input [N, C, H, W] or [C, H, W]");
}

TEST(Layers, ConvTranspose2dForward) {
  // Stride 2: each input pixel stamps the 2x2 kernel, scaled by itself, without overlap.
  nn::ConvTranspose2d up(1, 1, 2, 2);
  EXPECT_EQ(up.weight.shape(), (Shape{1, 1, 2, 2}));
  set_values(up.weight, {1, 2, 3, 4});
  set_values(up.bias, {0.5});
  Tensor x = tensor<float>({1, 2, 3, 4}, {1, 1, 2, 2});
  const Tensor expected =
      tensor<double>({1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16}, {1, 1, 4, 4}) + 0.5;
  EXPECT_TRUE(tensors_close(up.forward(x), expected, 1e-6));
  EXPECT_TRUE(tensors_close(up.forward(x.view({1, 2, 2})), expected.view({1, 4, 4}), 1e-6));  // unbatched
  // PyTorch's layout [in, out / groups, kh, kw] and output size, with every argument.
  nn::ConvTranspose2d grouped(4, 6, {3, 2}, 2, 1, 1, 2, false, {1, 2});
  EXPECT_EQ(grouped.weight.shape(), (Shape{4, 3, 3, 2}));
  EXPECT_FALSE(grouped.bias.defined());
  EXPECT_EQ(grouped.forward(zeros({2, 4, 5, 5})).shape(), (Shape{2, 6, 10, 10}));
  EXPECT_EQ(grouped.extra_repr(),
            "4, 6, kernel_size=(3, 2), stride=2, padding=1, output_padding=1, dilation=(1, 2), groups=2, "
            "bias=false");
  // PyTorch's init: the fan-in is read off the weight, out_channels / groups * kh * kw = 3 * 6.
  nn::ConvTranspose2d wide(64, 3, 3);
  const double bound = 1.0 / std::sqrt(27.0);
  EXPECT_LE(amax(abs(wide.bias), {}).item<double>(), bound);
  EXPECT_LE(amax(abs(wide.weight), {}).item<double>(),
            bound);  // kaiming_uniform(a = sqrt(5)): the same bound
  EXPECT_GT(amax(abs(wide.weight), {}).item<double>(), 0.9 * bound);
}

TEST(Layers, ConvTranspose2dGradcheck) {
  manual_seed(6);
  auto up = std::make_shared<nn::ConvTranspose2d>(2, 4, 3, 2, 1, 1, 2);
  EXPECT_TRUE(module_gradcheck(*up, {&up->weight, &up->bias}, R({1, 2, 3, 3}),
                               [&](const Tensor& x) { return up->forward(x); }));
}

TEST(Layers, ConvTranspose2dErrors) {
  EMBER_EXPECT_THROW_MSG(
      nn::ConvTranspose2d(3, 4, 3, 1, 0, 0, 2),
      "ConvTranspose2d: in_channels (3) and out_channels (4) must both be divisible by groups (2)");
  EMBER_EXPECT_THROW_MSG(
      nn::ConvTranspose2d(1, 1, 3, 2, 0, 2),
      "ConvTranspose2d: output_padding 2 must be non-negative and smaller than stride 2 or dilation 1");
  EMBER_EXPECT_THROW_MSG(nn::ConvTranspose2d(1, 1, 3, 0), "ConvTranspose2d: stride must be positive");
  nn::ConvTranspose2d up(3, 4, 3);
  EMBER_EXPECT_THROW_MSG(
      up.forward(zeros({1, 2, 5, 5})),
      "ConvTranspose2d: input of shape [1,2,5,5] has 2 channels, expected in_channels = 3");
  EMBER_EXPECT_THROW_MSG(up.forward(zeros({5, 5})),
                         "ConvTranspose2d: expected input [N, C, H, W] or [C, H, W]");
}

TEST(Layers, EmbeddingForwardAndPadding) {
  nn::Embedding emb(4, 2, 1);
  EXPECT_TRUE(equal(emb.weight.select(0, 1), zeros({2})));  // the padding row starts at zero
  set_values(emb.weight, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor idx = tensor<int64_t>({3, 0, 1, 1}, {2, 2});
  Tensor y = emb.forward(idx);
  EXPECT_TRUE(tensors_close(y, tensor<double>({6, 7, 0, 1, 2, 3, 2, 3}, {2, 2, 2}), 0));
  EXPECT_TRUE(tensors_close(emb.forward(tensor<int32_t>({2})), tensor<double>({4, 5}, {1, 2}), 0));
  (y * 2.0).sum().backward();
  // Row 0 and 3 were looked up once; row 1 (padding) gets nothing; row 2 none.
  EXPECT_TRUE(tensors_close(emb.weight.grad(), tensor<double>({2, 2, 0, 0, 0, 0, 2, 2}, {4, 2}), 0));
  EMBER_EXPECT_THROW_MSG(emb.forward(tensor<float>({1.0f})),
                         "Embedding: indices must be int64 or int32, got float32");
  EMBER_EXPECT_THROW_MSG(emb.forward(tensor<int64_t>({4})), "out of range");
  EMBER_EXPECT_THROW_MSG(nn::Embedding(4, 2, 4), "padding_idx 4 is out of range for 4 embeddings");
}

TEST(Layers, EmbeddingGradcheck) {
  manual_seed(6);
  auto emb = std::make_shared<nn::Embedding>(5, 3);
  Tensor idx = tensor<int64_t>({4, 0, 4, 2}, {2, 2});
  EXPECT_TRUE(
      module_gradcheck(*emb, {&emb->weight}, Tensor(), [&](const Tensor&) { return emb->forward(idx); }));
}

TEST(Layers, SequentialChainsAndGradchecks) {
  manual_seed(7);
  auto a = std::make_shared<nn::Linear>(3, 4);
  auto b = std::make_shared<nn::Linear>(4, 2);
  auto seq = std::make_shared<nn::Sequential>(a, std::make_shared<nn::Tanh>(), b);
  Tensor x = randn({5, 3});
  EXPECT_TRUE(tensors_close(seq->forward(x), b->forward(tanh(a->forward(x))), 1e-6));
  EXPECT_TRUE(module_gradcheck(*seq, {&a->weight, &a->bias, &b->weight, &b->bias}, R({2, 3}),
                               [&](const Tensor& in) { return seq->forward(in); }));
}

}  // namespace
}  // namespace ember::testing
