// relu6, selu, celu, hardsigmoid, hardswish, softsign, glu, prelu and their layers: values and
// derivatives (at the seams too) against PyTorch 1.13 (torch.nn.functional, float64), float64
// gradchecks and second derivatives, errors.
#include <ember/nn.h>

#include <functional>

#include "harness.h"

namespace ember::testing {
namespace {

using Activation = std::function<Tensor(const Tensor&)>;

// The points where the piecewise activations switch branch (-3, 0, 3, 6), and between them.
const std::vector<double> kPoints{-4.0, -3.0, -1.25, -0.5, 0.0, 0.75, 2.5, 3.0, 3.5, 7.0};

struct Reference {
  const char* name;
  Activation f;
  std::vector<double> values, grads;  // PyTorch's f(kPoints) and d sum(f) / dx
};

std::vector<Reference> references() {
  return {
      {
          "relu6",
          [](const Tensor& x) { return relu6(x); },
          {0.0, 0.0, 0.0, 0.0, 0.0, 0.75, 2.5, 3.0, 3.5, 6.0},
          {0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0},
      },
      {
          "selu",
          [](const Tensor& x) { return selu(x); },
          {-1.7258986281898945, -1.6705687287671118, -1.2543954463378648, -0.6917581878028713, 0.0,
           0.7880257405166103, 2.626752468388701, 3.1521029620664414, 3.677453455744182, 7.354906911488364},
          {0.03220071265748214, 0.08753061208026487, 0.5037038945095117, 1.0663411530445053,
           1.7580993408473766, 1.0507009873554805, 1.0507009873554805, 1.0507009873554805, 1.0507009873554805,
           1.0507009873554805},
      },
      {
          "celu_alpha_1_5",
          [](const Tensor& x) { return celu(x, 1.5); },
          {-1.3957748231657976, -1.296997075145081, -0.8481026872393825, -0.4252030341393161, 0.0, 0.75, 2.5,
           3.0, 3.5, 7.0},
          {0.06948345122280154, 0.1353352832366127, 0.43459820850707825, 0.7165313105737893, 1.0, 1.0, 1.0,
           1.0, 1.0, 1.0},
      },
      // PyTorch's float64 slope is float32's 1/6 (0.1666666716337204); ours is 1/6 in the input's dtype
      {
          "hardsigmoid",
          [](const Tensor& x) { return hardsigmoid(x); },
          {0.0, 0.0, 0.2916666666666667, 0.4166666666666667, 0.5, 0.625, 0.9166666666666666, 1.0, 1.0, 1.0},
          {0.0, 0.0, 1 / 6.0, 1 / 6.0, 1 / 6.0, 1 / 6.0, 1 / 6.0, 0.0, 0.0, 0.0},
      },
      {
          "hardswish",
          [](const Tensor& x) { return hardswish(x); },
          {-0.0, -0.0, -0.3645833333333333, -0.20833333333333334, 0.0, 0.46875, 2.2916666666666665, 3.0, 3.5,
           7.0},
          {0.0, -0.5, 0.08333333333333331, 0.33333333333333337, 0.5, 0.75, 1.3333333333333335, 1.0, 1.0, 1.0},
      },
      {
          "softsign",
          [](const Tensor& x) { return softsign(x); },
          {-0.8, -0.75, -0.5555555555555556, -0.3333333333333333, 0.0, 0.42857142857142855,
           0.7142857142857143, 0.75, 0.7777777777777778, 0.875},
          {0.04000000000000001, 0.0625, 0.19753086419753083, 0.4444444444444444, 1.0, 0.32653061224489793,
           0.08163265306122447, 0.0625, 0.04938271604938271, 0.015625},
      },
  };
}

TEST(Activations, ValuesAndDerivativesMatchPyTorchIncludingTheSeams) {
  for (const Reference& r : references()) {
    SCOPED_TRACE(r.name);
    Tensor x = tensor<double>(kPoints).requires_grad_();
    Tensor y = r.f(x);
    EXPECT_TRUE(tensors_close(y, tensor<double>(r.values), 1e-15));
    y.sum().backward();
    EXPECT_TRUE(tensors_close(x.grad(), tensor<double>(r.grads), 1e-15));
  }
}

// Away from the seams every activation is smooth: gradcheck and gradgradcheck there, and CUDA parity.
std::vector<OpCase> activation_cases() {
  const Tensor x = T({-3.7, -2.2, -0.9, -0.3, 0.4, 1.1, 2.6, 4.5, 6.5}, {3, 3});
  std::vector<OpCase> cases;
  for (const Reference& r : references()) {
    Activation f = r.f;
    cases.push_back({r.name, [f](const std::vector<Tensor>& in) { return f(in[0]); }, {x}, Tensor()});
  }
  cases.push_back(
      {"glu_last_dim",
       [](const std::vector<Tensor>& in) { return glu(in[0]); },
       {T({1.0, -2.0, 0.5, 3.0, 0.25, 1.5, -1.0, -0.5}, {2, 4})},
       tensor<double>({0.6224593312018546, -1.9051482536448667, 0.06723535534249878, 0.566311003197218},
                      {2, 2}),
       1e-15});
  cases.push_back(
      {"glu_dim0",
       [](const std::vector<Tensor>& in) { return glu(in[0], 0); },
       {T({1.0, -2.0, 0.5, 3.0, 0.25, 1.5, -1.0, -0.5}, {2, 4})},
       tensor<double>({0.5621765008857981, -1.6351489523872873, 0.13447071068499755, 1.132622006394436},
                      {1, 4}),
       1e-15});
  cases.push_back({"prelu_per_channel",
                   [](const std::vector<Tensor>& in) { return prelu(in[0], in[1]); },
                   {T({-1.0, 2.0, 0.5, -3.0, -0.25, 0.1, 4.0, -2.0}, {2, 2, 2}), T({0.1, 0.3}, {2})},
                   tensor<double>({-0.1, 2.0, 0.5, -0.9, -0.025, 0.1, 4.0, -0.6}, {2, 2, 2}),
                   1e-15});
  cases.push_back({"prelu_shared_slope_1d",
                   [](const std::vector<Tensor>& in) { return prelu(in[0], in[1]); },
                   {T({-1.0, 2.0, -0.5}, {3}), T({0.2}, {1})},
                   tensor<double>({-0.2, 2.0, -0.1}, {3}),
                   1e-15});
  return with_gradgradcheck(cases);
}
EMBER_OP_SUITE(Activations, activation_cases);

TEST(Activations, PReLUGradientsMatchPyTorch) {
  // PyTorch: the slope at x = 0 is the weight's (x > 0 ? g : w g); dw sums x over x <= 0
  Tensor x = tensor<double>({-1.0, 2.0, 0.5, -3.0, -0.25, 0.0, 4.0, -2.0}, {2, 2, 2}).requires_grad_();
  Tensor w = tensor<double>({0.1, 0.3}).requires_grad_();
  prelu(x, w).sum().backward();
  EXPECT_TRUE(
      tensors_close(x.grad(), tensor<double>({0.1, 1.0, 1.0, 0.3, 0.1, 0.1, 1.0, 0.3}, {2, 2, 2}), 1e-15));
  EXPECT_TRUE(tensors_close(w.grad(), tensor<double>({-1.25, -5.0}), 1e-15));
}

TEST(Activations, Errors) {
  EMBER_EXPECT_THROW_MSG(glu(zeros({2, 3})),
                         "glu: the halved dim 1 of input [2,3] must have an even size, got 3");
  EMBER_EXPECT_THROW_MSG(glu(zeros({2, 4}), 2), "glu: dim 2 out of range");
  EMBER_EXPECT_THROW_MSG(celu(zeros({2}), 0.0), "celu: alpha must not be 0");
  EMBER_EXPECT_THROW_MSG(prelu(zeros({2, 3}), zeros({2})),
                         "prelu: weight [2] must hold 1 slope or one per channel (3, dim 1 of input [2,3])");
  EMBER_EXPECT_THROW_MSG(prelu(zeros({4}), zeros({4})),
                         "prelu: weight [4] must hold 1 slope or one per channel (1, dim 1 of input [4])");
  EMBER_EXPECT_THROW_MSG(selu(zeros({2}, DType::int64)), "selu: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(nn::CELU(0.0), "CELU: alpha must not be 0");
  EMBER_EXPECT_THROW_MSG(nn::PReLU(0), "PReLU: num_parameters must be positive, got 0");
}

TEST(ActivationLayers, LayersComputeTheirOps) {
  const Tensor x = tensor<float>({-4.0f, -1.0f, 0.5f, 2.0f, 3.5f, 8.0f}, {1, 2, 3});
  EXPECT_TRUE(equal(nn::ReLU6().forward(x), relu6(x)));
  EXPECT_TRUE(equal(nn::SELU().forward(x), selu(x)));
  EXPECT_TRUE(equal(nn::CELU(0.5).forward(x), celu(x, 0.5)));
  EXPECT_TRUE(equal(nn::Hardsigmoid().forward(x), hardsigmoid(x)));
  EXPECT_TRUE(equal(nn::Hardswish().forward(x), hardswish(x)));
  EXPECT_TRUE(equal(nn::Softsign().forward(x), softsign(x)));
  EXPECT_TRUE(equal(nn::GLU(1).forward(x.view({1, 6})), glu(x.view({1, 6}), 1)));
  EXPECT_EQ(nn::GLU().str(), "GLU(dim=-1)");
  EXPECT_EQ(nn::CELU(0.5).str(), "CELU(alpha=0.5)");

  nn::PReLU shared;  // one slope, 0.25
  EXPECT_TRUE(equal(shared.weight, full({1}, 0.25)));
  EXPECT_TRUE(
      tensors_close(shared.forward(x), tensor<double>({-1.0, -0.25, 0.5, 2.0, 3.5, 8.0}, {1, 2, 3}), 0));
  nn::PReLU per_channel(2, 0.5);
  EXPECT_EQ(per_channel.parameters().size(), 1u);
  EXPECT_EQ(per_channel.str(), "PReLU(num_parameters=2)");
  Tensor y = per_channel.forward(x);
  EXPECT_TRUE(tensors_close(y, tensor<double>({-2.0, -0.5, 0.5, 2.0, 3.5, 8.0}, {1, 2, 3}), 0));
  y.sum().backward();  // the slopes learn: dL/dw_c sums the channel's non-positive inputs
  EXPECT_TRUE(tensors_close(per_channel.weight.grad(), tensor<double>({-5.0, 0.0}), 0));
}

}  // namespace
}  // namespace ember::testing
