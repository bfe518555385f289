// pad (torch.nn.functional.pad): every mode against PyTorch 1.13's values, gradcheck and
// gradgradcheck (each mode is a composite of differentiable ops), CUDA parity, and the errors.
#include "harness.h"

namespace ember::testing {
namespace {

OpFn pad_fn(std::vector<int64_t> widths, PadMode mode, double value = 0.0) {
  return [=](const std::vector<Tensor>& in) { return pad(in[0], widths, mode, value); };
}

Tensor image() { return T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {1, 1, 3, 4}); }

std::vector<OpCase> pad_cases() {
  return with_gradgradcheck({
      {"constant_value",
       pad_fn({1, 2, 0, 1}, PadMode::constant, -1.0),
       {image()},
       tensor<double>({-1, 1, 2,  3,  4,  -1, -1, -1, 5,  6,  7,  8,  -1, -1,
                       -1, 9, 10, 11, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1},
                      {1, 1, 4, 7})},
      {"constant_negative_crops",
       pad_fn({-1, 1, 0, -2}, PadMode::constant),
       {image()},
       tensor<double>({2, 3, 4, 0}, {1, 1, 1, 4})},
      {"reflect",
       pad_fn({2, 1, 1, 2}, PadMode::reflect),
       {image()},
       tensor<double>({7,  6,  5, 6,  7,  8,  7,  3, 2, 1, 2, 3, 4, 3, 7, 6, 5, 6, 7, 8, 7,
                       11, 10, 9, 10, 11, 12, 11, 7, 6, 5, 6, 7, 8, 7, 3, 2, 1, 2, 3, 4, 3},
                      {1, 1, 6, 7})},
      {"replicate",
       pad_fn({2, 1, 1, 2}, PadMode::replicate),
       {image()},
       tensor<double>({1, 1, 1, 2,  3,  4,  4,  1, 1, 1, 2,  3,  4,  4,  5, 5, 5, 6,  7,  8,  8,
                       9, 9, 9, 10, 11, 12, 12, 9, 9, 9, 10, 11, 12, 12, 9, 9, 9, 10, 11, 12, 12},
                      {1, 1, 6, 7})},
      {"circular_whole_dim",
       pad_fn({2, 1, 1, 3}, PadMode::circular),
       {image()},
       tensor<double>({11, 12, 9, 10, 11, 12, 9, 3, 4, 1, 2, 3, 4, 1, 7, 8, 5, 6,  7,  8, 5,  11, 12, 9, 10,
                       11, 12, 9, 3,  4,  1,  2, 3, 4, 1, 7, 8, 5, 6, 7, 8, 5, 11, 12, 9, 10, 11, 12, 9},
                      {1, 1, 7, 7})},
      {"reflect_1d",
       pad_fn({2, 2}, PadMode::reflect),
       {T({1, 2, 3}, {1, 1, 3})},
       tensor<double>({3, 2, 1, 2, 3, 2, 1}, {1, 1, 7})},
      // only the leading pair given: the last dim alone; zero pairs leave a dim as it is
      {"replicate_last_dim_only",
       pad_fn({0, 2}, PadMode::replicate),
       {T({1, 2, 3, 4}, {2, 2})},
       tensor<double>({1, 2, 2, 2, 3, 4, 4, 4}, {2, 4})},
  });
}
EMBER_OP_SUITE(Pad, pad_cases);

TEST(Pad, KeepsDtypeAndFillsIntegers) {
  Tensor y = pad(tensor<int64_t>({1, 2}, {1, 2}), {1, 1, 1, 0}, PadMode::constant, 7);
  EXPECT_EQ(y.dtype(), kInt64);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{7, 7, 7, 7, 7, 1, 2, 7}));
  EXPECT_EQ(pad(ones({2, 3}, DType::bfloat16), {1, 1}, PadMode::reflect).dtype(), DType::bfloat16);
  EXPECT_TRUE(equal(pad(ones({2, 3}), {}), ones({2, 3})));
}

TEST(Pad, Errors) {
  Tensor x = ones({2, 3});
  EMBER_EXPECT_THROW_MSG(
      pad(x, {1}), "pad: the padding [1] must hold (before, after) pairs for at most the input's 2 dims");
  EMBER_EXPECT_THROW_MSG(pad(x, {1, 1, 1, 1, 1, 1}), "pairs for at most the input's 2 dims (shape [2,3])");
  EMBER_EXPECT_THROW_MSG(pad(x, {-4, 0}),
                         "pad: padding (-4, 0) of dim 1 (size 3) would leave a negative size");
  EMBER_EXPECT_THROW_MSG(
      pad(x, {-1, 0}, PadMode::reflect),
      "pad: negative padding (-1, 0) of dim 1 is supported in constant mode only, not reflect");
  EMBER_EXPECT_THROW_MSG(pad(x, {3, 0}, PadMode::reflect),
                         "pad: reflect padding (3, 0) of dim 1 needs each pad smaller than the dim (size 3)");
  EMBER_EXPECT_THROW_MSG(pad(x, {0, 4}, PadMode::circular),
                         "pad: circular padding (0, 4) of dim 1 needs each pad at most the dim (size 3)");
  EMBER_EXPECT_THROW_MSG(pad(ones({2, 0}), {1, 0}, PadMode::replicate),
                         "pad: replicate padding (1, 0) of dim 1 needs a non-empty dim (size 0)");
  EMBER_EXPECT_THROW_MSG(pad(x, {1, 1}, PadMode::replicate, 2.0),
                         "pad: a fill value (2) applies to constant mode only, not replicate");
  EMBER_EXPECT_THROW_MSG(pad(Tensor(), {1, 1}), "pad: input is an undefined tensor");
}

}  // namespace
}  // namespace ember::testing
