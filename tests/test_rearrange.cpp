// Rearranging ops: flip, roll, repeat, tril, triu. Table rows (values checked against PyTorch 1.13,
// float64 gradcheck, CUDA parity), then what a table cannot show: other dtypes, results that never
// alias their input, and every error.
#include <cstdint>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

using Inputs = std::vector<Tensor>;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

std::vector<OpCase> rearrange_cases() {
  Tensor x23 = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor x32 = T({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor x33 = T({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  Tensor x223 = T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3});
  Tensor v2 = T({1, 2}, {2});
  Tensor s = T({5}, {});
  Tensor empty03 = T({}, {0, 3}), empty20 = T({}, {2, 0});
  return with_gradgradcheck({
      // ---- flip ----
      {"flip_dim0",
       [](const Inputs& in) { return flip(in[0], {0}); },
       {x23},
       tensor<double>({4, 5, 6, 1, 2, 3}, {2, 3})},
      {"flip_negative_dim",
       [](const Inputs& in) { return in[0].flip({-1}); },
       {x23},
       tensor<double>({3, 2, 1, 6, 5, 4}, {2, 3})},
      {"flip_two_of_three_dims",
       [](const Inputs& in) {
         return flip(in[0], {0, 2});
       },
       {x223},
       tensor<double>({9, 8, 7, 12, 11, 10, 3, 2, 1, 6, 5, 4}, {2, 2, 3})},
      {"flip_all_dims_any_order",
       [](const Inputs& in) {
         return flip(in[0], {-1, 0, 1});
       },
       {x223},
       tensor<double>({12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, {2, 2, 3})},
      // x.t() = [[1,4],[2,5],[3,6]]
      {"flip_transposed",
       [](const Inputs& in) { return flip(in[0].t(), {0}); },
       {x23},
       tensor<double>({3, 6, 2, 5, 1, 4}, {3, 2})},
      {"flip_no_dims_copies",
       [](const Inputs& in) { return flip(in[0], {}); },
       {x23},
       tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3})},
      {"flip_0d", [](const Inputs& in) { return flip(in[0], {-1}); }, {s}, scalar_tensor(5.0, kFloat64)},
      {"flip_zero_size",
       [](const Inputs& in) {
         return flip(in[0], {0, 1});
       },
       {empty03},
       zeros({0, 3}, kFloat64)},

      // ---- roll: out[i] = x[(i - shift) mod n] ----
      {"roll_dim1",
       [](const Inputs& in) { return roll(in[0], {1}, {1}); },
       {x23},
       tensor<double>({3, 1, 2, 6, 4, 5}, {2, 3})},
      {"roll_negative_shift_and_dim",
       [](const Inputs& in) { return in[0].roll({-1}, {-1}); },
       {x23},
       tensor<double>({2, 3, 1, 5, 6, 4}, {2, 3})},
      // 7 = 1 (mod 3), -7 = 2 (mod 3)
      {"roll_shift_larger_than_size",
       [](const Inputs& in) { return roll(in[0], {7}, {1}) + 10.0 * roll(in[0], {-7}, {1}); },
       {x23},
       tensor<double>({23, 31, 12, 56, 64, 45}, {2, 3})},
      {"roll_two_dims",
       [](const Inputs& in) {
         return roll(in[0], {1, -1}, {-1, 0});
       },
       {x23},
       tensor<double>({6, 4, 5, 3, 1, 2}, {2, 3})},
      {"roll_3d",
       [](const Inputs& in) {
         return roll(in[0], {1, 2}, {1, 2});
       },
       {x223},
       tensor<double>({5, 6, 4, 2, 3, 1, 11, 12, 10, 8, 9, 7}, {2, 2, 3})},
      // a dim named twice is rolled twice: 1 + 1 rows
      {"roll_same_dim_twice",
       [](const Inputs& in) {
         return roll(in[0], {1, 1}, {0, 0});
       },
       {x32},
       tensor<double>({3, 4, 5, 6, 1, 2}, {3, 2})},
      {"roll_flattened",
       [](const Inputs& in) { return roll(in[0], {1}); },
       {x23},
       tensor<double>({6, 1, 2, 3, 4, 5}, {2, 3})},
      {"roll_flattened_negative",
       [](const Inputs& in) { return roll(in[0], {-8}); },
       {x23},
       tensor<double>({3, 4, 5, 6, 1, 2}, {2, 3})},
      // flattened in x.t()'s own order [1,4,2,5,3,6], rolled, given the shape [3,2] back
      {"roll_flattened_transposed",
       [](const Inputs& in) { return roll(in[0].t(), {1}); },
       {x23},
       tensor<double>({6, 1, 4, 2, 5, 3}, {3, 2})},
      {"roll_transposed",
       [](const Inputs& in) { return roll(in[0].t(), {1}, {1}); },
       {x23},
       tensor<double>({4, 1, 5, 2, 6, 3}, {3, 2})},
      {"roll_0d_flattened",
       [](const Inputs& in) { return roll(in[0], {3}); },
       {s},
       scalar_tensor(5.0, kFloat64)},
      {"roll_zero_size",
       [](const Inputs& in) {
         return roll(in[0], {5, 3}, {0, 1});
       },
       {empty20},
       zeros({2, 0}, kFloat64)},

      // ---- repeat ----
      {"repeat_columns",
       [](const Inputs& in) {
         return repeat(in[0], {1, 2});
       },
       {x23},
       tensor<double>({1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}, {2, 6})},
      {"repeat_rows",
       [](const Inputs& in) {
         return in[0].repeat({2, 1});
       },
       {x23},
       tensor<double>({1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}, {4, 3})},
      {"repeat_leading_dims",
       [](const Inputs& in) {
         return repeat(in[0], {2, 1, 2});
       },
       {v2},
       tensor<double>({1, 2, 1, 2, 1, 2, 1, 2}, {2, 1, 4})},
      {"repeat_3d",
       [](const Inputs& in) {
         return repeat(in[0].reshape({2, 1, 2}), {2, 3, 1});
       },
       {T({1, 2, 3, 4}, {4})},
       tensor<double>({1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}, {4, 3, 2})},
      {"repeat_transposed",
       [](const Inputs& in) {
         return repeat(in[0].t(), {1, 2});
       },
       {x23},
       tensor<double>({1, 4, 1, 4, 2, 5, 2, 5, 3, 6, 3, 6}, {3, 4})},
      {"repeat_all_ones_copies",
       [](const Inputs& in) {
         return repeat(in[0], {1, 1});
       },
       {x23},
       tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3})},
      {"repeat_0d",
       [](const Inputs& in) {
         return repeat(in[0], {2, 3});
       },
       {s},
       full({2, 3}, 5.0, kFloat64)},
      {"repeat_zero",
       [](const Inputs& in) {
         return repeat(in[0], {0, 2});
       },
       {x23},
       zeros({0, 6}, kFloat64)},
      {"repeat_zero_new_dim",
       [](const Inputs& in) {
         return repeat(in[0], {1, 0, 2});
       },
       {x23},
       zeros({1, 0, 6}, kFloat64)},
      {"repeat_zero_size_input",
       [](const Inputs& in) {
         return repeat(in[0], {3, 2});
       },
       {empty03},
       zeros({0, 6}, kFloat64)},

      // ---- tril / triu: keep col - row <= diagonal (>= diagonal) ----
      {"tril",
       [](const Inputs& in) { return tril(in[0]); },
       {x33},
       tensor<double>({1, 0, 0, 4, 5, 0, 7, 8, 9}, {3, 3})},
      {"triu",
       [](const Inputs& in) { return in[0].triu(); },
       {x33},
       tensor<double>({1, 2, 3, 0, 5, 6, 0, 0, 9}, {3, 3})},
      {"tril_positive_diagonal",
       [](const Inputs& in) { return in[0].tril(1); },
       {x23},
       tensor<double>({1, 2, 0, 4, 5, 6}, {2, 3})},
      {"triu_negative_diagonal",
       [](const Inputs& in) { return triu(in[0], -1); },
       {x32},
       tensor<double>({1, 2, 3, 4, 0, 6}, {3, 2})},
      {"tril_batched",
       [](const Inputs& in) { return tril(in[0]); },
       {x223},
       tensor<double>({1, 0, 0, 4, 5, 0, 7, 0, 0, 10, 11, 0}, {2, 2, 3})},
      {"tril_batched_below_diagonal",
       [](const Inputs& in) { return tril(in[0], -1); },
       {x223},
       tensor<double>({0, 0, 0, 4, 0, 0, 0, 0, 0, 10, 0, 0}, {2, 2, 3})},
      {"triu_batched_above_diagonal",
       [](const Inputs& in) { return triu(in[0], 1); },
       {x223},
       tensor<double>({0, 2, 3, 0, 0, 6, 0, 8, 9, 0, 0, 12}, {2, 2, 3})},
      // x.t() = [[1,4],[2,5],[3,6]]
      {"tril_transposed",
       [](const Inputs& in) { return tril(in[0].t()); },
       {x23},
       tensor<double>({1, 0, 2, 5, 3, 6}, {3, 2})},
      {"triu_transposed",
       [](const Inputs& in) { return triu(in[0].t()); },
       {x23},
       tensor<double>({1, 4, 0, 5, 0, 0}, {3, 2})},
      {"tril_batched_transposed",
       [](const Inputs& in) { return tril(in[0].transpose(1, 2), -1); },
       {x223},
       tensor<double>({0, 0, 2, 0, 3, 6, 0, 0, 8, 0, 9, 12}, {2, 3, 2})},
      // diagonals beyond the matrix keep everything or nothing, up to the int64 extremes
      {"tril_diagonal_out_of_range",
       [](const Inputs& in) { return tril(in[0], 3) + 10.0 * tril(in[0], kMax) + 100.0 * tril(in[0], -2); },
       {x23},
       tensor<double>({11, 22, 33, 44, 55, 66}, {2, 3})},
      {"tril_diagonal_far_below",
       [](const Inputs& in) { return tril(in[0], -100) + tril(in[0], kMin); },
       {x23},
       zeros({2, 3}, kFloat64)},
      {"triu_diagonal_out_of_range",
       [](const Inputs& in) { return triu(in[0], -2) + 10.0 * triu(in[0], kMin) + 100.0 * triu(in[0], 3); },
       {x23},
       tensor<double>({11, 22, 33, 44, 55, 66}, {2, 3})},
      {"triu_diagonal_far_above",
       [](const Inputs& in) { return triu(in[0], 100) + triu(in[0], kMax); },
       {x23},
       zeros({2, 3}, kFloat64)},
      {"tril_zero_rows", [](const Inputs& in) { return tril(in[0], 1); }, {empty03}, zeros({0, 3}, kFloat64)},
      {"triu_zero_cols",
       [](const Inputs& in) { return triu(in[0], -1); },
       {empty20},
       zeros({2, 0}, kFloat64)},
      {"tril_zero_batch",
       [](const Inputs& in) {
         return tril(in[0].reshape({0, 2, 2}));
       },
       {T({}, {0})},
       zeros({0, 2, 2}, kFloat64)},
  });
}
EMBER_OP_SUITE(Rearrange, rearrange_cases);

// ---- pixel_shuffle / pixel_unshuffle ----

// out[..., c, h r + i, w r + j] = in[..., c r^2 + i r + j, h, w], by the definition.
Tensor pixel_shuffle_by_loops(const Tensor& x, int64_t r) {
  const int64_t lead = x.numel() / (x.size(-3) * x.size(-2) * x.size(-1));
  const int64_t c = x.size(-3) / (r * r), h = x.size(-2), w = x.size(-1);
  const std::vector<double> in = x.to_vector<double>();
  std::vector<double> out(in.size());
  for (int64_t n = 0; n < lead; ++n)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h * r; ++y)
        for (int64_t z = 0; z < w * r; ++z)
          out[((n * c + k) * h * r + y) * w * r + z] =
              in[((n * c * r * r + k * r * r + (y % r) * r + z % r) * h + y / r) * w + z / r];
  Shape shape = x.shape();
  shape[shape.size() - 3] = c, shape[shape.size() - 2] = h * r, shape[shape.size() - 1] = w * r;
  return tensor<double>(out, shape);
}

std::vector<OpCase> pixel_shuffle_cases() {
  const Tensor x = R({2, 8, 2, 3}, -1, 1, 5);
  const Tensor batched = R({2, 2, 9, 1, 2}, -1, 1, 6);  // two leading dims, r = 3
  const Tensor unbatched = R({8, 2, 3}, -1, 1, 7);
  return with_gradgradcheck({
      {"pixel_shuffle_r2",
       [](const Inputs& in) { return pixel_shuffle(in[0], 2); },
       {x},
       pixel_shuffle_by_loops(x, 2)},
      {"pixel_shuffle_r3_two_leading_dims",
       [](const Inputs& in) { return pixel_shuffle(in[0], 3); },
       {batched},
       pixel_shuffle_by_loops(batched, 3)},
      {"pixel_shuffle_unbatched",
       [](const Inputs& in) { return pixel_shuffle(in[0], 2); },
       {unbatched},
       pixel_shuffle_by_loops(unbatched, 2)},
      {"pixel_unshuffle_inverts_shuffle",
       [](const Inputs& in) { return pixel_unshuffle(pixel_shuffle(in[0], 2), 2); },
       {x},
       x.detach()},
  });
}
EMBER_OP_SUITE(PixelShuffle, pixel_shuffle_cases);

TEST(PixelShuffle, MatchesPyTorchAndChecksItsArguments) {
  // torch.nn.functional.pixel_shuffle(torch.arange(96.).reshape(2, 8, 2, 3), 2), first 24 values
  Tensor y = pixel_shuffle(arange(96.0, kFloat64).view({2, 8, 2, 3}), 2);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 4, 6}));
  std::vector<double> v = y.to_vector<double>();
  EXPECT_EQ(std::vector<double>(v.begin(), v.begin() + 24),
            (std::vector<double>{0, 6, 1, 7,  2, 8,  12, 18, 13, 19, 14, 20,
                                 3, 9, 4, 10, 5, 11, 15, 21, 16, 22, 17, 23}));
  // torch.nn.functional.pixel_unshuffle(torch.arange(72.).reshape(1, 3, 4, 6), 2), first 24 values
  Tensor z = pixel_unshuffle(arange(72.0, TensorOptions(kInt64)).view({1, 3, 4, 6}), 2);
  EXPECT_EQ(z.shape(), (Shape{1, 12, 2, 3}));
  EXPECT_EQ(z.dtype(), kInt64);
  std::vector<int64_t> u = z.to_vector<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(u.begin(), u.begin() + 24),
            (std::vector<int64_t>{0, 2, 4,  12, 14, 16, 1, 3, 5,  13, 15, 17,
                                  6, 8, 10, 18, 20, 22, 7, 9, 11, 19, 21, 23}));
  EXPECT_TRUE(equal(nn::PixelShuffle(2).forward(z), pixel_shuffle(z, 2)));
  EXPECT_EQ(nn::PixelUnshuffle(3).str(), "PixelUnshuffle(downscale_factor=3)");
  EMBER_EXPECT_THROW_MSG(pixel_shuffle(zeros({1, 3, 2, 2}), 2),
                         "pixel_shuffle: the channels of input [1,3,2,2] (3) must be divisible by the square "
                         "of the upscale factor 2");
  EMBER_EXPECT_THROW_MSG(
      pixel_unshuffle(zeros({1, 3, 3, 2}), 2),
      "pixel_unshuffle: the height and width of input [1,3,3,2] must be divisible by the downscale factor 2");
  EMBER_EXPECT_THROW_MSG(pixel_shuffle(zeros({4, 2}), 2),
                         "pixel_shuffle: expected input [*, C, H, W], got shape [4,2]");
  EMBER_EXPECT_THROW_MSG(pixel_shuffle(zeros({4, 2, 2}), 0),
                         "pixel_shuffle: the upscale factor must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(nn::PixelShuffle(0), "PixelShuffle: upscale_factor must be positive, got 0");
}

// ---- dtypes ----

TEST(Rearrange, IntegerValuesAndDtype) {
  Tensor x = tensor<int64_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  auto ints = [](const Tensor& t) {
    EXPECT_EQ(t.dtype(), kInt64);
    return t.to_vector<int64_t>();
  };
  using V = std::vector<int64_t>;
  EXPECT_EQ(ints(flip(x, {0, 1})), (V{6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(ints(roll(x, {1}, {1})), (V{3, 1, 2, 6, 4, 5}));
  EXPECT_EQ(ints(roll(x, {2})), (V{5, 6, 1, 2, 3, 4}));
  EXPECT_EQ(ints(repeat(x, {1, 2})), (V{1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}));
  EXPECT_EQ(ints(tril(x)), (V{1, 0, 0, 4, 5, 0}));
  EXPECT_EQ(ints(triu(x, 1)), (V{0, 2, 3, 0, 0, 6}));
  Tensor x32 = x.to(kInt32);
  EXPECT_EQ(tril(x32).dtype(), kInt32);
  EXPECT_EQ(tril(x32).to(kInt64).to_vector<int64_t>(), (V{1, 0, 0, 4, 5, 0}));
  EXPECT_EQ(flip(x32, {1}).dtype(), kInt32);
}

TEST(Rearrange, BoolValuesAndDtype) {
  Tensor b = ones({2, 3}, kBool);
  auto bools = [](const Tensor& t) {
    EXPECT_EQ(t.dtype(), kBool);
    return t.to_vector<bool>();
  };
  using V = std::vector<bool>;
  // the PyTorch 1.13 results for torch.ones(2, 3, dtype=torch.bool)
  EXPECT_EQ(bools(tril(b, -1)), (V{false, false, false, true, false, false}));
  EXPECT_EQ(bools(triu(b)), (V{true, true, true, false, true, true}));
  Tensor m = tensor<bool>({true, false, false, true, true, false}, {2, 3});
  EXPECT_EQ(bools(flip(m, {-1})), (V{false, false, true, false, true, true}));
  EXPECT_EQ(bools(roll(m, {1}, {0})), (V{true, true, false, true, false, false}));
  EXPECT_EQ(bools(repeat(m.select(0, 0), {2})), (V{true, false, false, true, false, false}));
}

TEST(Rearrange, BFloat16StaysBFloat16AndIsExact) {
  // values with more than 8 significant bits would round; these are exact in bfloat16
  Tensor x = tensor<float>({1.5f, -2, 3.25f, 4, -5.5f, 6}, {2, 3}).to(kBFloat16);
  auto check = [](const Tensor& t, const std::vector<float>& want) {
    EXPECT_EQ(t.dtype(), kBFloat16);
    EXPECT_EQ(t.to(kFloat32).to_vector<float>(), want);
  };
  check(flip(x, {1}), {3.25f, -2, 1.5f, 6, -5.5f, 4});
  check(roll(x, {-1}, {1}), {-2, 3.25f, 1.5f, -5.5f, 6, 4});
  check(repeat(x, {2, 1}), {1.5f, -2, 3.25f, 4, -5.5f, 6, 1.5f, -2, 3.25f, 4, -5.5f, 6});
  check(tril(x), {1.5f, 0, 0, 4, -5.5f, 0});
  check(triu(x), {1.5f, -2, 3.25f, 0, -5.5f, 6});
}

TEST(Rearrange, BFloat16Gradients) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).to(kBFloat16).requires_grad_();
  Tensor w = tensor<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 6}).to(kBFloat16);
  // repeat {1, 2}: x[i][j] appears at columns j and j + 3
  (repeat(x, {1, 2}) * w).sum().backward();
  EXPECT_EQ(x.grad().dtype(), kBFloat16);
  EXPECT_EQ(x.grad().to(kFloat32).to_vector<float>(), (std::vector<float>{5, 7, 9, 17, 19, 21}));
  Tensor y = tensor<float>({1, 2, 3, 4}, {2, 2}).to(kBFloat16).requires_grad_();
  (flip(y, {0}) * 2.0 + roll(y, {1}, {1}) + triu(y)).sum().backward();
  EXPECT_EQ(y.grad().to(kFloat32).to_vector<float>(), (std::vector<float>{4, 4, 3, 4}));
}

TEST(Rearrange, ExtremeShiftsWrapModuloTheSize) {
  Tensor x = tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  // kMax = 1 and kMin = 1 (mod 3); (PyTorch 1.13 agrees for kMax but overflows near kMin)
  EXPECT_EQ(roll(x, {kMax}, {1}).to_vector<double>(), (std::vector<double>{3, 1, 2, 6, 4, 5}));
  EXPECT_EQ(roll(x, {kMin}, {1}).to_vector<double>(), (std::vector<double>{3, 1, 2, 6, 4, 5}));
  // kMax + kMax = 2 (mod 3) along one dim named twice, and kMin = 4 (mod 6) flattened
  EXPECT_EQ(roll(x, {kMax, kMax}, {1, -1}).to_vector<double>(), (std::vector<double>{2, 3, 1, 5, 6, 4}));
  EXPECT_EQ(roll(x, {kMin}).to_vector<double>(), (std::vector<double>{3, 4, 5, 6, 1, 2}));
}

// ---- results are new tensors ----

TEST(Rearrange, ResultsNeverAliasTheInput) {
  const std::vector<double> values{1, 2, 3, 4, 5, 6};
  Tensor x = tensor<double>(values, {2, 3});
  // including the calls whose result equals the input
  std::vector<Tensor> outs = {flip(x, {}),       flip(x, {0}),      flip(scalar_tensor(1.0), {0}),
                              roll(x, {0}, {0}), roll(x, {3}, {1}), roll(x, {6}),
                              repeat(x, {1, 1}), repeat(x, {2, 1}), tril(x, 5),
                              triu(x, -5),       tril(x),           x.t().triu(-5)};
  for (Tensor& out : outs) out.fill_(-1);
  EXPECT_EQ(x.to_vector<double>(), values);
}

TEST(Rearrange, IdentityCasesStillRecordTheGraph) {
  Tensor x = tensor<double>({1, 2, 3, 4}, {2, 2}).requires_grad_();
  Tensor y = flip(x, {}) + roll(x, {2}, {0}) + repeat(x, {1, 1}) + tril(x, 1);
  EXPECT_TRUE(y.requires_grad());
  (y * tensor<double>({1, 2, 3, 4}, {2, 2})).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 8, 12, 16}));
}

TEST(Rearrange, RepeatGradientSumsTheCopies) {
  Tensor x = tensor<double>({1, 2}).requires_grad_();
  Tensor y = repeat(x, {3, 2});  // [3, 4]: each element appears 6 times
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  (y * arange(12.0, kFloat64).reshape({3, 4})).sum().backward();
  // x[0] sits at columns 0 and 2 of each row: 0+2+4+6+8+10 = 30; x[1] at columns 1 and 3: 36
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{30, 36}));
}

// ---- errors ----

TEST(RearrangeErrors, Flip) {
  Tensor x = zeros({2, 3});
  EMBER_EXPECT_THROW_MSG(flip(x, {0, -2}), "flip: dim 0 appears multiple times in the list of dims [0,-2]");
  EMBER_EXPECT_THROW_MSG(flip(x, {1, 1}), "flip: dim 1 appears multiple times");
  EMBER_EXPECT_THROW_MSG(flip(x, {2}), "flip: dim 2 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(flip(x, {-3}), "flip: dim -3 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(flip(scalar_tensor(1.0), {1}), "flip: dim 1 out of range for a 0-d tensor");
  EMBER_EXPECT_THROW_MSG(flip(scalar_tensor(1.0), {0, -1}), "flip: dim 0 appears multiple times");
  EMBER_EXPECT_THROW_MSG(flip(Tensor(), {0}), "flip: input is an undefined tensor");
}

TEST(RearrangeErrors, Roll) {
  Tensor x = zeros({2, 3});
  EMBER_EXPECT_THROW_MSG(roll(x, {1, 2}, {0}), "roll: shifts has 2 entries but dims has 1");
  EMBER_EXPECT_THROW_MSG(roll(x, {1}, {0, 1}), "roll: shifts has 1 entries but dims has 2");
  EMBER_EXPECT_THROW_MSG(roll(x, {1, 2}), "roll: shifts has 2 entries but dims is empty");
  EMBER_EXPECT_THROW_MSG(roll(x, {}), "roll: shifts has 0 entries but dims is empty");
  EMBER_EXPECT_THROW_MSG(roll(x, {}, {0}), "roll: shifts has 0 entries but dims has 1");
  EMBER_EXPECT_THROW_MSG(roll(x, {1}, {2}), "roll: dim 2 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(roll(x, {1}, {-3}), "roll: dim -3 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(roll(scalar_tensor(1.0), {1}, {0}), "roll: a 0-d tensor has no dims to roll along");
  EMBER_EXPECT_THROW_MSG(roll(Tensor(), {1}), "roll: input is an undefined tensor");
}

TEST(RearrangeErrors, Repeat) {
  Tensor x = zeros({2, 3});
  EMBER_EXPECT_THROW_MSG(repeat(x, {2}),
                         "repeat: repeats [2] has 1 entries but the input of shape [2,3] has 2 dims");
  EMBER_EXPECT_THROW_MSG(repeat(x, {}),
                         "repeat: repeats [] has 0 entries but the input of shape [2,3] has 2 dims");
  EMBER_EXPECT_THROW_MSG(repeat(x, {-1, 2}), "repeat: repeats must be non-negative, got [-1,2]");
  EMBER_EXPECT_THROW_MSG(repeat(x, {1, 1, -2}), "repeat: repeats must be non-negative, got [1,1,-2]");
  EMBER_EXPECT_THROW_MSG(repeat(x, {kMax, 2}),
                         "repeat: repeats [9223372036854775807,2] on shape [2,3] give more elements than a "
                         "64-bit count can hold");
  EMBER_EXPECT_THROW_MSG(repeat(x, {int64_t{1} << 40, int64_t{1} << 30}),
                         "repeat: shape [2199023255552,3221225472] has more elements than a 64-bit count");
  EMBER_EXPECT_THROW_MSG(repeat(Tensor(), {1}), "repeat: input is an undefined tensor");
}

TEST(RearrangeErrors, TrilTriu) {
  EMBER_EXPECT_THROW_MSG(tril(zeros({3})), "tril: expects a tensor with at least 2 dims, got shape [3]");
  EMBER_EXPECT_THROW_MSG(triu(scalar_tensor(1.0)),
                         "triu: expects a tensor with at least 2 dims, got shape []");
  EMBER_EXPECT_THROW_MSG(zeros({0}).tril(), "tril: expects a tensor with at least 2 dims, got shape [0]");
  EMBER_EXPECT_THROW_MSG(triu(Tensor()), "triu: input is an undefined tensor");
}

}  // namespace
}  // namespace ember::testing
