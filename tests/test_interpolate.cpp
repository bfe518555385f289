// interpolate (torch.nn.functional.interpolate) and nn::Upsample: every mode against PyTorch 1.13's
// values (float64, and float32 where the source positions' rounding matters), gradcheck and
// gradgradcheck (every mode is a composite of differentiable ops), CUDA parity, and the errors.
#include <ember/nn.h>

#include "harness.h"

namespace ember::testing {
namespace {

namespace F = nn::functional;
using F::InterpolateMode;

OpFn resize_fn(F::InterpolateOptions options) {
  return [=](const std::vector<Tensor>& in) { return F::interpolate(in[0], options); };
}

// [1, 2, 3]: two channels of three samples
Tensor signal() { return T({1, 2, 4, -1, 0.5, 3}, {1, 2, 3}); }
// [1, 1, 2, 3]
Tensor image() { return T({1, 2, 0, 3, 4, -2}, {1, 1, 2, 3}); }

std::vector<OpCase> interpolate_cases() {
  Tensor volume = pow(arange(0, 12, 1, DType::float64), 1.5).view({1, 1, 2, 2, 3}).requires_grad_(true);
  return with_gradgradcheck({
      // linear: align_corners = false reads output j at input (j + 0.5) * 3 / 5 - 0.5 (clamped at 0)
      {"linear_up",
       resize_fn({.size = {5}, .mode = InterpolateMode::linear}),
       {signal()},
       tensor<double>({1, 1.4, 2, 3.2, 4, -1, -0.4, 0.5, 2, 3}, {1, 2, 5}),
       1e-12},
      {"linear_align_corners",
       resize_fn({.size = {5}, .mode = InterpolateMode::linear, .align_corners = true}),
       {signal()},
       tensor<double>({1, 1.5, 2, 3, 4, -1, -0.25, 0.5, 1.75, 3}, {1, 2, 5}),
       1e-12},
      // a scale factor sets the size (floor(3 * 1.5) = 4) and the positions (1 / 1.5, not 3 / 4)
      {"linear_scale_factor",
       resize_fn({.scale_factor = {1.5}, .mode = InterpolateMode::linear}),
       {signal()},
       tensor<double>(
           {1, 1.5, 2.333333333333333, 3.6666666666666665, -1, -0.25, 0.9166666666666663, 2.5833333333333335},
           {1, 2, 4}),
       1e-12},
      {"linear_down",
       resize_fn({.size = {2}, .mode = InterpolateMode::linear}),
       {signal()},
       tensor<double>({1.25, 3.5, -0.625, 2.375}, {1, 2, 2}),
       1e-12},
      {"nearest_up",
       resize_fn({.size = {5}}),
       {signal()},
       tensor<double>({1, 1, 2, 2, 4, -1, -1, 0.5, 0.5, 3}, {1, 2, 5})},
      {"nearest_exact_up",
       resize_fn({.size = {5}, .mode = InterpolateMode::nearest_exact}),
       {signal()},
       tensor<double>({1, 1, 2, 4, 4, -1, -1, 0.5, 3, 3}, {1, 2, 5})},
      {"nearest_down", resize_fn({.size = {2}}), {signal()}, tensor<double>({1, 2, -1, 0.5}, {1, 2, 2})},
      {"nearest_exact_down",
       resize_fn({.size = {2}, .mode = InterpolateMode::nearest_exact}),
       {signal()},
       tensor<double>({1, 4, -1, 3}, {1, 2, 2})},
      {"nearest_scale_factor",
       resize_fn({.scale_factor = {1.7}}),
       {signal()},
       tensor<double>({1, 1, 2, 2, 4, -1, -1, 0.5, 0.5, 3}, {1, 2, 5})},
      {"bilinear",
       resize_fn({.size = {3, 4}, .mode = InterpolateMode::bilinear}),
       {image()},
       tensor<double>({1, 1.625, 1.25, 0, 2, 2.625, 1.5, -1, 3, 3.625, 1.75, -2}, {1, 1, 3, 4}),
       1e-12},
      {"bilinear_align_corners",
       resize_fn({.size = {3, 4}, .mode = InterpolateMode::bilinear, .align_corners = true}),
       {image()},
       tensor<double>({1, 1.6666666666666665, 1.3333333333333335, 0, 2, 2.6666666666666665,
                       1.6666666666666667, -1, 3, 3.6666666666666665, 2, -2},
                      {1, 1, 3, 4}),
       1e-12},
      // one factor per dim: up along H, down along W
      {"bilinear_two_scale_factors",
       resize_fn({.scale_factor = {2, 0.7}, .mode = InterpolateMode::bilinear}),
       {image()},
       tensor<double>({1.2142857142857144, 0.7142857142857144, 1.7142857142857144, 0.5714285714285716,
                       2.7142857142857144, 0.28571428571428603, 3.2142857142857144, 0.14285714285714324},
                      {1, 1, 4, 2}),
       1e-12},
      {"nearest_2d_one_factor_for_both_dims",
       resize_fn({.scale_factor = {2}}),
       {image()},
       tensor<double>({1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 0, 0, 3, 3, 4, 4, -2, -2, 3, 3, 4, 4, -2, -2},
                      {1, 1, 4, 6})},
      {"trilinear",
       resize_fn({.size = {3, 3, 2}, .mode = InterpolateMode::trilinear}),
       {volume},
       tensor<double>(
           {0.25, 2.371320343559643, 3.0735571585149866, 6.378287629591926, 5.897114317029974,
            10.385254915624213, 7.951384318443667, 11.985973943199907, 12.488894276084563, 17.406262868219255,
            17.026404233725458, 22.826551793238604, 15.652768636887334, 21.600627542840176, 21.90423139365414,
            28.434238106846585, 28.155694150420942, 35.267848670852985},
           {1, 1, 3, 3, 2}),
       1e-12},
      {"nearest_3d",
       resize_fn({.size = {1, 3, 4}}),
       {volume},
       tensor<double>({0, 0, 1, 2.8284271247461903, 0, 0, 1, 2.8284271247461903, 5.196152422706632,
                       5.196152422706632, 8, 11.180339887498949},
                      {1, 1, 1, 3, 4})},
      // batch and channels ride along; random values for the gradient checks
      {"bilinear_batch_align_corners_down",
       resize_fn({.size = {2, 3}, .mode = InterpolateMode::bilinear, .align_corners = true}),
       {R({2, 3, 4, 5}, -1, 1, 41)},
       Tensor()},
  });
}
EMBER_OP_SUITE(Interpolate, interpolate_cases);

TEST(Interpolate, BilinearGradientMatchesPyTorch) {
  Tensor x = image();
  Tensor w = arange(0, 12, 1, DType::float64).view({1, 1, 3, 4}) - 5.0;
  (F::interpolate(x, {.size = {3, 4}, .mode = InterpolateMode::bilinear}) * w).sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), tensor<double>({-7, -4.0625, -1.9375, 4, 5.9375, 9.0625}, {1, 1, 2, 3}),
                            1e-12));
}

TEST(Interpolate, Float32SourcePositionsRoundAsPyTorch) {
  // PyTorch computes source positions in float for float32 inputs; these sizes put positions
  // within a rounding of an integer, where float and double would pick different pixels.
  Tensor x = arange(0, 7, 1, DType::float32).view({1, 1, 7});
  EXPECT_TRUE(
      tensors_close(F::interpolate(x, {.scale_factor = {1.0 / 3}}), tensor<double>({0, 3}, {1, 1, 2}), 0));
  EXPECT_TRUE(tensors_close(
      F::interpolate(x, {.size = {20}}),
      tensor<double>({0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6}, {1, 1, 20}), 0));
  EXPECT_TRUE(tensors_close(
      F::interpolate(x, {.size = {20}, .mode = InterpolateMode::nearest_exact}),
      tensor<double>({0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6}, {1, 1, 20}), 0));
  Tensor linear = F::interpolate(x, {.size = {20}, .mode = InterpolateMode::linear});
  EXPECT_EQ(linear.dtype(), DType::float32);
  EXPECT_TRUE(tensors_close(linear,
                            tensor<double>({0.0,
                                            0.024999991059303284,
                                            0.375,
                                            0.7249999642372131,
                                            1.0749999284744263,
                                            1.4249999523162842,
                                            1.774999976158142,
                                            2.125,
                                            2.4749999046325684,
                                            2.825000047683716,
                                            3.174999952316284,
                                            3.5249998569488525,
                                            3.875,
                                            4.224999904632568,
                                            4.574999809265137,
                                            4.925000190734863,
                                            5.275000095367432,
                                            5.625,
                                            5.974999904632568,
                                            6.0},
                                           {1, 1, 20}),
                            1e-7));
}

TEST(Interpolate, DtypesAndEmptyBatch) {
  // nearest modes select, so they keep any dtype; linear ones compute bfloat16 in float32
  Tensor codes = tensor<int64_t>({3, 1, 4}, {1, 1, 3});
  Tensor up = F::interpolate(codes, {.scale_factor = {2}});
  EXPECT_EQ(up.dtype(), DType::int64);
  EXPECT_EQ(up.to_vector<int64_t>(), (std::vector<int64_t>{3, 3, 1, 1, 4, 4}));
  Tensor half = F::interpolate(tensor<float>({1, 2, 3, 4}, {1, 1, 2, 2}).to(DType::bfloat16),
                               {.size = {3, 3}, .mode = InterpolateMode::bilinear, .align_corners = true});
  EXPECT_EQ(half.dtype(), DType::bfloat16);
  EXPECT_TRUE(tensors_close(half, tensor<double>({1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}, {1, 1, 3, 3}), 1e-2));
  EXPECT_EQ(F::interpolate(zeros({0, 3, 2, 2}), {.size = {4, 4}}).shape(), (Shape{0, 3, 4, 4}));
}

TEST(Interpolate, Errors) {
  Tensor x = zeros({1, 2, 3, 4});
  EMBER_EXPECT_THROW_MSG(
      F::interpolate(zeros({2, 3}), {.size = {4}}),
      "interpolate: expected input [N, C, W], [N, C, H, W] or [N, C, D, H, W], got shape [2,3]");
  EMBER_EXPECT_THROW_MSG(F::interpolate(x, {}), "give either size or scale_factor, got neither");
  EMBER_EXPECT_THROW_MSG(F::interpolate(x, {.size = {4}, .scale_factor = {2}}), "not both");
  EMBER_EXPECT_THROW_MSG(F::interpolate(x, {.size = {4, 4, 4}}),
                         "size [4,4,4] needs one value or one per spatial dim (2) of input shape [1,2,3,4]");
  EMBER_EXPECT_THROW_MSG(F::interpolate(x, {.scale_factor = {0.0}}),
                         "scale_factor must be positive and finite");
  EMBER_EXPECT_THROW_MSG(F::interpolate(x, {.scale_factor = {0.2}}),
                         "would resample dim 2 to size 0; sizes must be positive");
  EMBER_EXPECT_THROW_MSG(F::interpolate(x, {.size = {2, -1}}), "would resample dim 3 to size -1");
  EMBER_EXPECT_THROW_MSG(F::interpolate(x, {.size = {6}, .mode = InterpolateMode::linear}),
                         "linear mode needs a 3-d input [N, C, W], got shape [1,2,3,4]");
  EMBER_EXPECT_THROW_MSG(F::interpolate(zeros({1, 2, 3}), {.size = {6}, .mode = InterpolateMode::trilinear}),
                         "trilinear mode needs a 5-d input [N, C, D, H, W]");
  EMBER_EXPECT_THROW_MSG(
      F::interpolate(x, {.size = {6}, .align_corners = true}),
      "align_corners applies to the linear modes (linear, bilinear, trilinear), not nearest");
  EMBER_EXPECT_THROW_MSG(
      F::interpolate(zeros({1, 2, 3}, DType::int64), {.size = {6}, .mode = InterpolateMode::linear}),
      "linear mode needs a floating input, got int64");
  EMBER_EXPECT_THROW_MSG(F::interpolate(zeros({1, 2, 0}), {.size = {6}}), "has an empty spatial dim 2");
}

TEST(Upsample, ForwardReprAndErrors) {
  nn::Upsample up({.scale_factor = {2.0}, .mode = InterpolateMode::bilinear, .align_corners = false});
  EXPECT_TRUE(up.parameters().empty());
  EXPECT_EQ(up.str(), "Upsample(scale_factor=[2], mode=bilinear, align_corners=false)");
  EXPECT_EQ(nn::Upsample({.size = {4, 6}}).str(), "Upsample(size=[4,6], mode=nearest)");
  Tensor x = image();
  EXPECT_TRUE(tensors_close(
      up.forward(x), F::interpolate(x, {.scale_factor = {2.0}, .mode = InterpolateMode::bilinear}), 0));
  EXPECT_EQ(up.forward(x).shape(), (Shape{1, 1, 4, 6}));
  EMBER_EXPECT_THROW_MSG(nn::Upsample({}), "Upsample: give either size or scale_factor, got neither");
  EMBER_EXPECT_THROW_MSG(nn::Upsample({.size = {0}}), "Upsample: size [0] must be positive");
  EMBER_EXPECT_THROW_MSG(nn::Upsample({.scale_factor = {-2}}),
                         "scale_factor [-2] must be positive and finite");
}

}  // namespace
}  // namespace ember::testing
