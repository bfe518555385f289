// Reductions, arg-reductions, statistics, scans and softmax: hand-computed values, gradcheck and
// CUDA parity per table row, then the cases a table cannot express (indices, ties, NaN, -inf,
// gradients at kinks, big parallel inputs against plain loops, errors).
#include <cmath>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

using In = std::vector<Tensor>;
constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor E(const std::vector<double>& values, const Shape& shape) { return tensor<double>(values, shape); }

// 1..n as a float64 tensor of the given shape.
Tensor iota(const Shape& shape, bool requires_grad = true) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i + 1);
  return T(v, shape, requires_grad);
}

// [64, 37] with x[i][j] = (7 i + 3 j) mod 64: summing over rows takes the CPU "columns" path
// (kept last dim contiguous and >= 8 wide). 7 is coprime to 64, so each column holds every value
// 0..63 exactly once: column sums are 2016, the max 63 and the min 0, with no ties.
Tensor wide_columns() {
  std::vector<double> v(64 * 37);
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 37; ++j) v[i * 37 + j] = (7 * i + 3 * j) % 64;
  return T(v, {64, 37});
}

// ---------------------------------------------------------------------------------------------
// sum, mean, prod, amax, amin (ops/reduce.cpp)

std::vector<OpCase> reduce_cases() {
  Tensor x = iota({2, 3});     // [[1,2,3],[4,5,6]]
  Tensor c = iota({2, 3, 2});  // x[i][j][k] = 6i + 2j + k + 1
  Tensor z1 = T({2, 0, 3, 4, 5, 0.5}, {2, 3});
  Tensor z2 = T({0, 2, 0, 1.5}, {4});
  Tensor ties = T({1, 3, 3, 2, 0.5, 2}, {2, 3});        // each row's max is attained twice
  Tensor low_ties = T({1, 3, 1, 0.5, 2, 0.5}, {2, 3});  // each row's min is attained twice
  std::vector<OpCase> cases = with_gradgradcheck({
      {"sum_all", [](const In& in) { return sum(in[0]); }, {x}, E({21}, {})},
      {"sum_dim0", [](const In& in) { return sum(in[0], {0}); }, {x}, E({5, 7, 9}, {3})},
      {"sum_dim1_keepdim", [](const In& in) { return sum(in[0], {1}, true); }, {x}, E({6, 15}, {2, 1})},
      {"sum_negative_dim", [](const In& in) { return sum(in[0], {-1}); }, {x}, E({6, 15}, {2})},
      {"sum_dims_0_2",
       [](const In& in) {
         return sum(in[0], {0, 2});
       },
       {c},
       E({18, 26, 34}, {3})},
      {"sum_dims_0_2_keepdim",
       [](const In& in) {
         return sum(in[0], {2, -3}, true);
       },
       {c},
       E({18, 26, 34}, {1, 3, 1})},
      {"sum_transposed", [](const In& in) { return sum(in[0].t(), {1}); }, {x}, E({5, 7, 9}, {3})},
      {"sum_columns_path",
       [](const In& in) { return sum(in[0], {0}); },
       {wide_columns()},
       full({37}, 2016.0, kFloat64)},
      {"mean_all", [](const In& in) { return mean(in[0]); }, {x}, E({3.5}, {})},
      {"mean_dim1", [](const In& in) { return mean(in[0], {1}); }, {x}, E({2, 5}, {2})},
      {"mean_negative_dim_keepdim",
       [](const In& in) { return mean(in[0], {-2}, true); },
       {x},
       E({2.5, 3.5, 4.5}, {1, 3})},
      {"mean_dims_0_2",
       [](const In& in) {
         return mean(in[0], {0, 2});
       },
       {c},
       E({4.5, 6.5, 8.5}, {3})},
      {"mean_transposed", [](const In& in) { return mean(in[0].t(), {0}); }, {x}, E({2, 5}, {2})},
      {"mean_columns_path",
       [](const In& in) { return mean(in[0], {0}); },
       {wide_columns()},
       full({37}, 31.5, kFloat64)},
      {"prod_all", [](const In& in) { return prod(in[0]); }, {x}, E({720}, {})},
      {"prod_dim1", [](const In& in) { return prod(in[0], 1); }, {x}, E({6, 120}, {2})},
      {"prod_negative_dim_keepdim",
       [](const In& in) { return prod(in[0], -2, true); },
       {x},
       E({4, 10, 18}, {1, 3})},
      {"prod_middle_dim",
       [](const In& in) { return prod(in[0], 1); },
       {c},
       E({1 * 3 * 5, 2 * 4 * 6, 7 * 9 * 11, 8 * 10 * 12}, {2, 2})},
      {"prod_transposed", [](const In& in) { return prod(in[0].t(), 0); }, {x}, E({6, 120}, {2})},
      // the gradient at a zero is the product of the others, not 0/0
      {"prod_one_zero", [](const In& in) { return prod(in[0], 1); }, {z1}, E({0, 10}, {2})},
      {"prod_two_zeros", [](const In& in) { return prod(in[0], 0); }, {z2}, E({0}, {})},
      {"prod_dim_of_one", [](const In& in) { return prod(in[0], 0); }, {T({2, -3}, {1, 2})}, E({2, -3}, {2})},
      {"amax_dim1", [](const In& in) { return amax(in[0], {1}); }, {x}, E({3, 6}, {2})},
      {"amax_all", [](const In& in) { return amax(in[0], {}); }, {c}, E({12}, {})},
      {"amax_dims_0_2_keepdim",
       [](const In& in) {
         return amax(in[0], {0, -1}, true);
       },
       {c},
       E({8, 10, 12}, {1, 3, 1})},
      {"amax_transposed", [](const In& in) { return amax(in[0].t(), {1}); }, {x}, E({4, 5, 6}, {3})},
      // two equal maxima share the gradient evenly, which is also what central differences see
      {"amax_two_way_tie", [](const In& in) { return amax(in[0], {1}); }, {ties}, E({3, 2}, {2})},
      {"amax_columns_path",
       [](const In& in) { return amax(in[0], {0}); },
       {wide_columns()},
       full({37}, 63.0, kFloat64)},
      {"amin_dim0", [](const In& in) { return amin(in[0], {0}); }, {x}, E({1, 2, 3}, {3})},
      {"amin_negative_dim_keepdim",
       [](const In& in) { return amin(in[0], {-1}, true); },
       {c},
       E({1, 3, 5, 7, 9, 11}, {2, 3, 1})},
      {"amin_two_way_tie", [](const In& in) { return amin(in[0], {1}); }, {low_ties}, E({1, 0.5}, {2})},
      {"amin_columns_path",
       [](const In& in) { return amin(in[0], {0}); },
       {wide_columns()},
       zeros({37}, kFloat64)},
  });
  // at a tie amax's gradient jumps, so finite differences of it mean nothing
  for (OpCase& c : cases)
    if (c.name.find("tie") != std::string::npos) c.gradgradcheck = false;
  return cases;
}
EMBER_OP_SUITE(Reduce, reduce_cases);

// ---------------------------------------------------------------------------------------------
// max/min with indices, argmax/argmin (ops/arg_reduce.cpp)

std::vector<OpCase> arg_reduce_cases() {
  Tensor x = T({1, 5, 3, 4, 2, 6}, {2, 3});
  Tensor c = T({3, 1, 4, 1.5, 5, 9, 2, 6, 8.5, 3.5, 8, 7}, {2, 3, 2});
  // [4, 40], x[i][j] = (3 i + j) mod 4: each column holds 0..3 once, so max 3 and min 0
  std::vector<double> v(160);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 40; ++j) v[i * 40 + j] = (3 * i + j) % 4;
  Tensor cols = T(v, {4, 40});
  auto values = [](auto f) { return [f](const In& in) { return f(in).first; }; };
  auto as_double = [](auto f) { return [f](const In& in) { return f(in).to(kFloat64); }; };
  return with_gradgradcheck({
      {"max_dim1", values([](const In& in) { return max(in[0], 1); }), {x}, E({5, 6}, {2})},
      {"max_dim0_keepdim",
       values([](const In& in) { return max(in[0], 0, true); }),
       {x},
       E({4, 5, 6}, {1, 3})},
      {"max_middle_dim", values([](const In& in) { return max(in[0], 1); }), {c}, E({5, 9, 8.5, 7}, {2, 2})},
      {"max_transposed", values([](const In& in) { return max(in[0].t(), 1); }), {x}, E({4, 5, 6}, {3})},
      {"max_columns_block",
       values([](const In& in) { return max(in[0], 0); }),
       {cols},
       full({40}, 3.0, kFloat64)},
      {"max_scalar", values([](const In& in) { return max(in[0], 0); }), {T({2.5}, {})}, E({2.5}, {})},
      {"min_negative_dim", values([](const In& in) { return min(in[0], -1); }), {x}, E({1, 2}, {2})},
      {"min_middle_dim_keepdim",
       values([](const In& in) { return min(in[0], -2, true); }),
       {c},
       E({3, 1, 2, 3.5}, {2, 1, 2})},
      {"min_columns_block",
       values([](const In& in) { return min(in[0], 0); }),
       {cols},
       zeros({40}, kFloat64)},
      {"max_indices",
       as_double([](const In& in) { return max(in[0], 1).second; }),
       {x},
       E({1, 2}, {2}),
       0,
       false},
      {"argmax_dim0",
       as_double([](const In& in) { return argmax(in[0], 0); }),
       {x},
       E({1, 0, 1}, {3}),
       0,
       false},
      {"argmax_middle_dim_keepdim",
       as_double([](const In& in) { return argmax(in[0], 1, true); }),
       {c},
       E({2, 2, 1, 2}, {2, 1, 2}),
       0,
       false},
      {"argmin_negative_dim",
       as_double([](const In& in) { return argmin(in[0], -1); }),
       {x},
       E({0, 1}, {2}),
       0,
       false},
      {"argmin_transposed",
       as_double([](const In& in) { return argmin(in[0].t(), 1); }),
       {x},
       E({0, 1, 0}, {3}),
       0,
       false},
  });
}
EMBER_OP_SUITE(ArgReduce, arg_reduce_cases);

TEST(ArgReduce, IndicesOfTheColumnsPath) {
  // lane j of [4, 40] with x[i][j] = (3 i + j) mod 4 holds 3 at i = 3 (3 - j) mod 4 and 0 at 3 (4 - j) mod 4
  std::vector<double> v(160);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 40; ++j) v[i * 40 + j] = (3 * i + j) % 4;
  Tensor x = tensor<double>(v, {4, 40});
  std::vector<int64_t> at_max = argmax(x, 0).to_vector<int64_t>(), at_min = argmin(x, 0).to_vector<int64_t>();
  for (int j = 0; j < 40; ++j) {
    EXPECT_EQ(at_max[j], (3 * (3 + 4 * 40 - j)) % 4) << "column " << j;
    EXPECT_EQ(at_min[j], (3 * (4 * 40 - j)) % 4) << "column " << j;
  }
}

TEST(ArgReduce, TiesGoToTheFirstIndex) {
  Tensor x = tensor<double>({2, 7, 7, 1, 1, 1}, {2, 3});
  auto [mx, imx] = max(x, 1);
  EXPECT_EQ(imx.dtype(), kInt64);
  EXPECT_EQ(mx.to_vector<double>(), (std::vector<double>{7, 1}));
  EXPECT_EQ(imx.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(min(x, 1).second.to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(argmin(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1}));
  // the columns path (inner > 1) too: equal rows everywhere
  EXPECT_EQ(argmax(ones({5, 20}), 0).to_vector<int64_t>(), std::vector<int64_t>(20, 0));
}

TEST(ArgReduce, GradientGoesOnlyToTheSelectedElement) {
  Tensor x = tensor<double>({2, 7, 7, 1, 9, 3}, {2, 3}).requires_grad_();
  auto [values, indices] = max(x, 1, true);
  (values * tensor<double>({10, 100}, {2, 1})).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 10, 0, 0, 100, 0}));
  Tensor y = tensor<double>({4, 3, 8, 3}, {2, 2}).requires_grad_();
  min(y, 0).first.sum().backward();  // column 1 ties: the first index takes all of it
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{1, 1, 0, 0}));
}

TEST(ArgReduce, NaNIsTheExtremeAndItsFirstIndexWins) {
  Tensor x = tensor<double>({1, NAN, 3, NAN}, {4});
  auto [mx, imx] = max(x, 0);
  auto [mn, imn] = min(x, 0);
  EXPECT_TRUE(std::isnan(mx.item<double>()));
  EXPECT_TRUE(std::isnan(mn.item<double>()));
  EXPECT_EQ(imx.item<int64_t>(), 1);
  EXPECT_EQ(imn.item<int64_t>(), 1);
  EXPECT_EQ(argmax(tensor<float>({-INFINITY, -INFINITY}), 0).item<int64_t>(), 0);
}

TEST(ArgReduce, IntegerAndBoolInputsKeepTheirDtype) {
  Tensor i = tensor<int64_t>({3, -2, 9, 9}, {2, 2});
  auto [v, at] = max(i, 1);
  EXPECT_EQ(v.dtype(), kInt64);
  EXPECT_EQ(v.to_vector<int64_t>(), (std::vector<int64_t>{3, 9}));
  EXPECT_EQ(at.to_vector<int64_t>(), (std::vector<int64_t>{0, 0}));
  Tensor b = tensor<bool>({false, true, false});
  EXPECT_EQ(argmax(b, 0).item<int64_t>(), 1);
  EXPECT_EQ(min(b, 0).first.item<bool>(), false);
}

TEST(ArgReduce, ShapesAndEmptyTensors) {
  Tensor x = zeros({2, 3, 4});
  EXPECT_EQ(max(x, 1).first.shape(), (Shape{2, 4}));
  EXPECT_EQ(max(x, 1, true).second.shape(), (Shape{2, 1, 4}));
  EXPECT_EQ(argmin(x, -1).shape(), (Shape{2, 3}));
  EXPECT_EQ(argmax(scalar_tensor(4.0), 0).shape(), Shape{});
  EXPECT_EQ(x.argmax().item<int64_t>(), 0);                    // the flattened index
  EXPECT_EQ(max(zeros({3, 0}), 0).first.shape(), (Shape{0}));  // the reduced dim is not empty
}

// ---------------------------------------------------------------------------------------------
// logsumexp, var, std, norm (ops/statistics.cpp)

std::vector<OpCase> statistics_cases() {
  const double l3 = std::log(3.0), e = std::exp(1.0);
  Tensor s = T({0, 0, 0, 1, 2, 3}, {2, 3});
  Tensor w = T({1, 2, 3, 4, 2, 4, 6, 8}, {2, 4});
  Tensor c = iota({2, 3, 2});
  Tensor n = T({3, -4, 0, 1, -2, 2}, {2, 3});
  Tensor m = T({3, -4, 0.5, 1, -2, 1.5}, {2, 3});  // no zeros and no ties in |x| per row
  const double lse1 = std::log(e + e * e + e * e * e);
  std::vector<OpCase> cases = with_gradgradcheck({
      {"logsumexp_dim1", [](const In& in) { return logsumexp(in[0], {1}); }, {s}, E({l3, lse1}, {2})},
      {"logsumexp_all",
       [](const In& in) { return logsumexp(in[0], {}); },
       {s},
       E({std::log(3 + e + e * e + e * e * e)}, {})},
      {"logsumexp_dim0_keepdim",
       [](const In& in) { return logsumexp(in[0], {-2}, true); },
       {s},
       E({std::log(1 + e), std::log(1 + e * e), std::log(1 + e * e * e)}, {1, 3})},
      {"logsumexp_dims_0_2",
       [](const In& in) {
         return logsumexp(in[0] - 7.0, {0, 2});
       },
       {c},
       E({std::log(std::exp(-6) + std::exp(-5) + std::exp(0) + std::exp(1)),
          std::log(std::exp(-4) + std::exp(-3) + std::exp(2) + std::exp(3)),
          std::log(std::exp(-2) + std::exp(-1) + std::exp(4) + std::exp(5))},
         {3})},
      {"logsumexp_transposed",
       [](const In& in) { return logsumexp(in[0].t(), {0}); },
       {s},
       E({l3, lse1}, {2})},
      // exp(1000) overflows; subtracting the max does not
      {"logsumexp_large",
       [](const In& in) { return logsumexp(in[0], {0}); },
       {T({1000, 1000, 1000}, {3})},
       E({1000 + l3}, {})},
      {"logsumexp_infinite_lanes",
       [](const In& in) { return logsumexp(in[0], {1}); },
       {T({-kInf, -kInf, 0, 1, kInf, 2}, {3, 2}, false)},
       E({-kInf, std::log(1 + e), kInf}, {3}),
       1e-6,
       false},
      {"var_dim1", [](const In& in) { return var(in[0], {1}); }, {w}, E({5.0 / 3, 20.0 / 3}, {2})},
      {"var_correction0", [](const In& in) { return var(in[0], {1}, 0); }, {w}, E({1.25, 5}, {2})},
      {"var_all", [](const In& in) { return var(in[0], {}); }, {w}, E({37.5 / 7}, {})},
      {"var_dims_0_2_keepdim",
       [](const In& in) { return var(in[0], {0, 2}, 1, true); },
       {c},
       E({37.0 / 3, 37.0 / 3, 37.0 / 3}, {1, 3, 1})},
      {"var_transposed_negative_dim",
       [](const In& in) { return var(in[0].t(), {-2}); },
       {w},
       E({5.0 / 3, 20.0 / 3}, {2})},
      {"std_dim1",
       [](const In& in) { return std(in[0], {1}); },
       {w},
       E({std::sqrt(5.0 / 3), std::sqrt(20.0 / 3)}, {2})},
      {"std_all_correction0",
       [](const In& in) { return std(in[0], {}, 0); },
       {w},
       E({std::sqrt(37.5 / 8)}, {})},
      {"std_keepdim_correction2",
       [](const In& in) { return std(in[0], {-1}, 2, true); },
       {w},
       E({std::sqrt(2.5), std::sqrt(10.0)}, {2, 1})},
      {"norm2_all", [](const In& in) { return norm(in[0]); }, {n}, E({std::sqrt(34.0)}, {})},
      {"norm2_dim1", [](const In& in) { return norm(in[0], 2, {1}); }, {n}, E({5, 3}, {2})},
      {"norm2_transposed_keepdim",
       [](const In& in) { return norm(in[0].t(), 2, {0}, true); },
       {n},
       E({5, 3}, {1, 2})},
      {"norm1_dim0", [](const In& in) { return norm(in[0], 1, {0}); }, {m}, E({4, 6, 2}, {3})},
      {"norm1_all", [](const In& in) { return norm(in[0], 1); }, {m}, E({12}, {})},
      {"norm_inf_dim1", [](const In& in) { return norm(in[0], INFINITY, {-1}); }, {m}, E({4, 2}, {2})},
      {"norm_neg_inf_dim1", [](const In& in) { return norm(in[0], -INFINITY, {1}); }, {m}, E({0.5, 1}, {2})},
      {"norm_p3_dim1",
       [](const In& in) { return norm(in[0], 3, {1}); },
       {n},
       E({std::cbrt(91.0), std::cbrt(17.0)}, {2})},
      {"norm_p0_5_all",
       [](const In& in) { return norm(in[0], 0.5); },
       {m},
       E({std::pow(std::sqrt(3.0) + 2 + std::sqrt(0.5) + 1 + std::sqrt(2.0) + std::sqrt(1.5), 2)}, {})},
      {"norm_p0_counts_nonzeros", [](const In& in) { return norm(in[0], 0, {1}); }, {n}, E({2, 3}, {2})},
      {"norm_dims_0_2",
       [](const In& in) { return norm(in[0], 2, {0, 2}); },
       {c},
       E({std::sqrt(1 + 4 + 49 + 64.0), std::sqrt(9 + 16 + 81 + 100.0), std::sqrt(25 + 36 + 121 + 144.0)},
         {3})},
      // normalize: x / max(norm along dim, eps)
      {"normalize_rows",
       [](const In& in) { return normalize(in[0]); },
       {n},
       E({0.6, -0.8, 0, 1.0 / 3, -2.0 / 3, 2.0 / 3}, {2, 3})},
      {"normalize_columns",
       [](const In& in) { return normalize(in[0], 2, 0); },
       {n},
       E({3 / std::sqrt(10.0), -4 / std::sqrt(20.0), 0, 1 / std::sqrt(10.0), -2 / std::sqrt(20.0), 1},
         {2, 3})},
      {"normalize_p1_last_dim",
       [](const In& in) { return normalize(in[0], 1, -1); },
       {m},
       E({3 / 7.5, -4 / 7.5, 0.5 / 7.5, 1 / 4.5, -2 / 4.5, 1.5 / 4.5}, {2, 3})},
      {"normalize_below_eps_divides_by_eps",
       [](const In& in) { return normalize(in[0], 2, 1, 10.0); },
       {n},
       E({0.3, -0.4, 0, 0.1, -0.2, 0.2}, {2, 3})},
  });
  for (OpCase& c : cases)  // the 0-"norm" counts: its gradient is the constant zero, nothing to check
    if (c.name == "norm_p0_counts_nonzeros") c.gradgradcheck = false;
  return cases;
}
EMBER_OP_SUITE(Statistics, statistics_cases);

TEST(Statistics, GradientsAtZeroAreZeroNotNaN) {
  Tensor z = zeros({3}, kFloat64).requires_grad_();
  norm(z).backward();
  EXPECT_EQ(z.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
  // a zero row next to a nonzero one: only the zero row is special
  Tensor x = tensor<double>({0, 0, 3, 4}, {2, 2}).requires_grad_();
  norm(x, 2, {1}).sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), E({0, 0, 0.6, 0.8}, {2, 2}), 1e-15));
  Tensor y = tensor<double>({0, 0, 0}, {3}).requires_grad_();
  norm(y, 3).backward();
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
  Tensor k = tensor<double>({2, 2, 2}, {3}).requires_grad_();  // a constant lane has std 0
  Tensor sd = std(k, {0});
  EXPECT_EQ(sd.item<double>(), 0.0);
  sd.backward();
  EXPECT_EQ(k.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

// A zero slice stays zero; below eps the division is by the constant eps, so its gradient is v / eps
// (as in PyTorch, and OPL's clamped rows).
TEST(Statistics, NormalizeZeroRowAndErrors) {
  Tensor x = tensor<double>({0, 0, 3, 4}, {2, 2}).requires_grad_();
  Tensor y = normalize(x);
  EXPECT_TRUE(tensors_close(y, E({0, 0, 0.6, 0.8}, {2, 2}), 1e-15));
  (y * E({1, 2, 1, 0}, {2, 2})).sum().backward();
  // row [3, 4]: d(x / |x|) . v = (v - y (y . v)) / |x| with v = [1, 0], y . v = 0.6
  EXPECT_TRUE(tensors_close(x.grad(), E({1e12, 2e12, (1 - 0.36) / 5, -0.48 / 5}, {2, 2}), 1e-15));
  EXPECT_EQ(normalize(tensor<float>({3, 4}), 2, 0).dtype(), kFloat32);
  EMBER_EXPECT_THROW_MSG(normalize(tensor<double>({3, 4})), "normalize: dim 1 out of range for a 1-d tensor");
  EMBER_EXPECT_THROW_MSG(normalize(tensor<int64_t>({3, 4}), 2, 0),
                         "normalize: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(normalize(tensor<double>({3, 4}), 2, 0, -1.0),
                         "normalize: eps must be >= 0, got -1");
}

TEST(Statistics, EdgeCases) {
  // a single element with correction 1 divides by 0: NaN, as in PyTorch
  EXPECT_TRUE(std::isnan(var(tensor<double>({4}), {0}).item<double>()));
  EXPECT_EQ(var(tensor<double>({4}), {0}, 0).item<double>(), 0.0);
  EXPECT_EQ(logsumexp(zeros({0}), {0}).item<float>(), -INFINITY);  // log of an empty sum
  EXPECT_EQ(logsumexp(zeros({2, 0}), {1}).to_vector<float>(), (std::vector<float>{-INFINITY, -INFINITY}));
  EXPECT_EQ(norm(zeros({0})).item<float>(), 0.0f);
  EXPECT_EQ(norm(tensor<float>({3, 4})).dtype(), kFloat32);
  EXPECT_NEAR(tensor<double>({3, -4}).norm().item<double>(), 5.0, 1e-12);
  EXPECT_NEAR(tensor<double>({1, 2, 3, 4}).var().item<double>(), 5.0 / 3, 1e-12);
  EXPECT_NEAR(tensor<double>({1, 2, 3, 4}).std().item<double>(), std::sqrt(5.0 / 3), 1e-12);
}

// ---------------------------------------------------------------------------------------------
// cumsum, logcumsumexp (ops/scan.cpp)

std::vector<OpCase> scan_cases() {
  Tensor x = iota({2, 3});
  Tensor c = iota({2, 3, 2});
  Tensor s = T({0, 0, 0, 1, 2, 3}, {2, 3});
  const double l2 = std::log(2.0), l3 = std::log(3.0), e = std::exp(1.0);
  Tensor weights = tensor<double>({1, -2, 0.5, -1, 3, -0.5}, {2, 3});
  std::vector<OpCase> cases = with_gradgradcheck({
      {"cumsum_dim1", [](const In& in) { return cumsum(in[0], 1); }, {x}, E({1, 3, 6, 4, 9, 15}, {2, 3})},
      {"cumsum_dim0", [](const In& in) { return cumsum(in[0], 0); }, {x}, E({1, 2, 3, 5, 7, 9}, {2, 3})},
      {"cumsum_negative_dim",
       [](const In& in) { return cumsum(in[0], -1); },
       {x},
       E({1, 3, 6, 4, 9, 15}, {2, 3})},
      {"cumsum_transposed",
       [](const In& in) { return cumsum(in[0].t(), 1); },
       {x},
       E({1, 5, 2, 7, 3, 9}, {3, 2})},
      {"cumsum_middle_dim",
       [](const In& in) { return cumsum(in[0], 1); },
       {c},
       E({1, 2, 4, 6, 9, 12, 7, 8, 16, 18, 27, 30}, {2, 3, 2})},
      {"cumsum_scalar", [](const In& in) { return cumsum(in[0], 0); }, {T({2.5}, {})}, E({2.5}, {})},
      {"logcumsumexp_dim1",
       [](const In& in) { return logcumsumexp(in[0], 1); },
       {s},
       E({0, l2, l3, 1, std::log(e + e * e), std::log(e + e * e + e * e * e)}, {2, 3})},
      {"logcumsumexp_dim0",
       [](const In& in) { return logcumsumexp(in[0], 0); },
       {s},
       E({0, 0, 0, std::log(1 + e), std::log(1 + e * e), std::log(1 + e * e * e)}, {2, 3})},
      {"logcumsumexp_large",
       [](const In& in) { return logcumsumexp(in[0], 0); },
       {T({1000, 1000, 1000}, {3})},
       E({1000, 1000 + l2, 1000 + l3}, {3})},
      {"logcumsumexp_minus_inf_prefix",
       [](const In& in) { return logcumsumexp(in[0], 0); },
       {T({-kInf, -kInf, 0, -kInf}, {4}, false)},
       E({-kInf, -kInf, 0, 0}, {4}),
       1e-6,
       false},
      // gradcheck probes with one-hot (nonnegative) output gradients; the weights make some of
      // them negative, which takes the other branch of the backward
      {"logcumsumexp_mixed_sign_grad",
       [weights](const In& in) { return logcumsumexp(in[0], 1) * on_device_of(weights, in[0]); },
       {s},
       E({0, -2 * l2, 0.5 * l3, -1, 3 * std::log(e + e * e), -0.5 * std::log(e + e * e + e * e * e)},
         {2, 3})},
  });
  return cases;
}
EMBER_OP_SUITE(Scan, scan_cases);

TEST(Scan, IntegerCumsumAccumulatesInInt64) {
  Tensor i = tensor<int32_t>({2000000000, 2000000000, 1});
  Tensor r = cumsum(i, 0);
  EXPECT_EQ(r.dtype(), kInt64);
  EXPECT_EQ(r.to_vector<int64_t>(), (std::vector<int64_t>{2000000000, 4000000000, 4000000001}));
  EXPECT_EQ(cumsum(tensor<bool>({true, false, true}), 0).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(cumsum(zeros({0, 3}), 0).shape(), (Shape{0, 3}));
}

TEST(Scan, WideColumnsMatchALoop) {
  // inner = 600 > one block of lanes; compare with a plain running sum per lane
  Tensor x = rand({5, 600}, kFloat64);
  std::vector<double> v = x.to_vector<double>(), cs = cumsum(x, 0).to_vector<double>();
  std::vector<double> lc = logcumsumexp(x, 0).to_vector<double>();
  for (int j = 0; j < 600; ++j) {
    double acc = 0, acc_exp = 0;
    for (int k = 0; k < 5; ++k) {
      acc += v[k * 600 + j];
      acc_exp += std::exp(v[k * 600 + j]);
      EXPECT_NEAR(cs[k * 600 + j], acc, 1e-12);
      EXPECT_NEAR(lc[k * 600 + j], std::log(acc_exp), 1e-12);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// softmax, log_softmax (ops/softmax.cpp)

// Plain-loop softmax along dim 1 of a [A, B, C] tensor, the reference for the rows below.
Tensor reference_softmax_dim1(const Tensor& x, bool log) {
  const int64_t a = x.size(0), b = x.size(1), c = x.size(2);
  std::vector<double> v = x.to_vector<double>(), out(v.size());
  for (int64_t i = 0; i < a; ++i)
    for (int64_t k = 0; k < c; ++k) {
      double total = 0;
      for (int64_t j = 0; j < b; ++j) total += std::exp(v[(i * b + j) * c + k]);
      for (int64_t j = 0; j < b; ++j) {
        double xv = v[(i * b + j) * c + k];
        out[(i * b + j) * c + k] = log ? xv - std::log(total) : std::exp(xv) / total;
      }
    }
  return tensor<double>(out, x.shape());
}

std::vector<OpCase> softmax_cases() {
  const double e = std::exp(1.0), e2 = e * e, e3 = e2 * e;
  Tensor x = T({1, 2, 3, 0, 0, 0}, {2, 3});
  const double z = 1 + e + e2;  // row 0 is [1,2,3] = 1 + [0,1,2]
  Tensor rows = E({1 / z, e / z, e2 / z, 1.0 / 3, 1.0 / 3, 1.0 / 3}, {2, 3});
  Tensor cols =
      E({e / (e + 1), e2 / (e2 + 1), e3 / (e3 + 1), 1 / (e + 1), 1 / (e2 + 1), 1 / (e3 + 1)}, {2, 3});
  Tensor log_rows =
      E({-std::log(z), 1 - std::log(z), 2 - std::log(z), -std::log(3.0), -std::log(3.0), -std::log(3.0)},
        {2, 3});
  Tensor c = R({2, 4, 3}, -2, 2, 7);
  Tensor wide = R({3, 300}, -3, 3, 11);  // dim 0 of [3, 300]: two blocks of side-by-side lanes
  std::vector<double> wv = wide.to_vector<double>();
  std::vector<double> wide_expected(wv.size());
  for (int j = 0; j < 300; ++j) {
    double total = std::exp(wv[j]) + std::exp(wv[300 + j]) + std::exp(wv[600 + j]);
    for (int k = 0; k < 3; ++k) wide_expected[k * 300 + j] = std::exp(wv[k * 300 + j]) / total;
  }
  return with_gradgradcheck({
      {"softmax_last_dim", [](const In& in) { return softmax(in[0], 1); }, {x}, rows},
      {"softmax_negative_dim", [](const In& in) { return softmax(in[0], -1); }, {x}, rows},
      {"softmax_dim0", [](const In& in) { return softmax(in[0], 0); }, {x}, cols},
      {"softmax_transposed", [](const In& in) { return softmax(in[0].t(), 1); }, {x}, cols.t().contiguous()},
      {"softmax_large_values", [](const In& in) { return softmax(in[0] + 1000.0, 1); }, {x}, rows},
      {"softmax_middle_dim",
       [](const In& in) { return softmax(in[0], 1); },
       {c},
       reference_softmax_dim1(c, false)},
      {"softmax_wide_columns",
       [](const In& in) { return softmax(in[0], 0); },
       {wide},
       E(wide_expected, {3, 300})},
      {"softmax_minus_inf_entry",
       [](const In& in) { return softmax(in[0], 0); },
       {T({-kInf, 0, 0}, {3}, false)},
       E({0, 0.5, 0.5}, {3}),
       1e-6,
       false},
      {"softmax_scalar", [](const In& in) { return softmax(in[0], 0); }, {T({-3}, {})}, E({1}, {})},
      {"log_softmax_last_dim", [](const In& in) { return log_softmax(in[0], -1); }, {x}, log_rows},
      {"log_softmax_dim0", [](const In& in) { return log_softmax(in[0], 0); }, {x}, log(cols)},
      {"log_softmax_transposed",
       [](const In& in) { return log_softmax(in[0].t(), 1); },
       {x},
       log(cols.t().contiguous())},
      {"log_softmax_large_values",
       [](const In& in) { return log_softmax(in[0] * 1.0 - 1000.0, 1); },
       {x},
       log_rows},
      {"log_softmax_middle_dim",
       [](const In& in) { return log_softmax(in[0], 1); },
       {c},
       reference_softmax_dim1(c, true)},
      {"log_softmax_minus_inf_entry",
       [](const In& in) { return log_softmax(in[0], 0); },
       {T({-kInf, 0, 0}, {3}, false)},
       E({-kInf, -std::log(2.0), -std::log(2.0)}, {3}),
       1e-6,
       false},
  });
}
EMBER_OP_SUITE(Softmax, softmax_cases);

TEST(Softmax, AllMinusInfLaneIsNaNAsInPyTorch) {
  // exp(x - max) is exp(-inf - -inf) = NaN: a softmax over nothing but -inf is undefined.
  Tensor x = tensor<float>({-INFINITY, -INFINITY, -INFINITY, 1, 2, 3}, {2, 3});
  for (bool log : {false, true}) {
    std::vector<float> y = (log ? log_softmax(x, 1) : softmax(x, 1)).to_vector<float>();
    for (int k = 0; k < 3; ++k) EXPECT_TRUE(std::isnan(y[k])) << "log=" << log << " k=" << k;
    for (int k = 3; k < 6; ++k) EXPECT_FALSE(std::isnan(y[k])) << "log=" << log << " k=" << k;
  }
  std::vector<float> col = softmax(x.t().contiguous(), 0).to_vector<float>();  // the columns path
  EXPECT_TRUE(std::isnan(col[0]) && std::isnan(col[2]) && std::isnan(col[4]));
  EXPECT_FALSE(std::isnan(col[1]));
}

TEST(Softmax, FusedKernelsMatchTheCompositeFormula) {
  // Large enough to run in parallel over rows / column blocks; checked against exp(x) / sum(exp(x)),
  // backward included.
  for (int64_t dim : {1, 0}) {
    Tensor x = randn({96, 700}, kFloat64).requires_grad_();
    Tensor w = randn({96, 700}, kFloat64);
    Tensor xr = x.detach().requires_grad_();
    auto reference = [&] { return exp(xr) / sum(exp(xr), {dim}, true); };
    Tensor y = softmax(x, dim), ly = log_softmax(x, dim);
    EXPECT_TRUE(allclose(y, reference(), 1e-12, 1e-14)) << "dim " << dim;
    EXPECT_TRUE(allclose(ly, log(reference()), 1e-10, 1e-12)) << "dim " << dim;
    (y * w).sum().backward();
    (reference() * w).sum().backward();
    EXPECT_TRUE(allclose(x.grad(), xr.grad(), 1e-10, 1e-12)) << "dim " << dim;
    x.set_grad(Tensor());
    xr.set_grad(Tensor());
    (ly * w).sum().backward();
    (log(reference()) * w).sum().backward();
    EXPECT_TRUE(allclose(x.grad(), xr.grad(), 1e-10, 1e-12)) << "dim " << dim;
  }
}

TEST(Softmax, Float32SumsToOne) {
  Tensor y = softmax(randn({8, 5000}) * 20.0, 1);
  EXPECT_EQ(y.dtype(), kFloat32);
  std::vector<float> s = sum(y, {1}).to_vector<float>();
  for (float v : s) EXPECT_NEAR(v, 1.0f, 1e-5f);
}

// ---------------------------------------------------------------------------------------------
// large reductions in parallel against plain loops

class ThreadCount {
 public:
  explicit ThreadCount(int n) : before_(get_num_threads()) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(before_); }

 private:
  int before_;
};

TEST(Reduce, LargeParallelReductionsMatchPlainLoops) {
  ThreadCount threads(4);  // several threads even on a small machine, so every split is exercised
  const int64_t rows = 1500, cols = 400;
  Tensor x = rand({rows, cols}, kFloat64) - 0.5;
  std::vector<double> v = x.to_vector<double>();
  double total = 0, biggest = -kInf;
  std::vector<double> row_sums(rows, 0), col_sums(cols, 0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      double e = v[i * cols + j];
      total += e;
      biggest = std::max(biggest, e);
      row_sums[i] += e;
      col_sums[j] += e;
    }
  // one output: the reduced range itself is split across the threads
  EXPECT_NEAR(sum(x).item<double>(), total, 1e-9);
  EXPECT_EQ(amax(x, {}).item<double>(), biggest);
  // many outputs: parallel over rows ("inner") and over column blocks ("columns")
  std::vector<double> rs = sum(x, {1}).to_vector<double>(), cs = sum(x, {0}).to_vector<double>();
  for (int64_t i = 0; i < rows; ++i) EXPECT_NEAR(rs[i], row_sums[i], 1e-11);
  for (int64_t j = 0; j < cols; ++j) EXPECT_NEAR(cs[j], col_sums[j], 1e-11);
  // the transpose walks the same sums through strided memory
  std::vector<double> ts = sum(x.t(), {0}).to_vector<double>();
  for (int64_t i = 0; i < rows; ++i) EXPECT_NEAR(ts[i], row_sums[i], 1e-11);
  // few, long columns: [75000, 8] over its rows is one column block, so the rows are split
  Tensor tall = x.reshape({75000, 8});
  std::vector<double> tall_sums = sum(tall, {0}).to_vector<double>();
  for (int64_t j = 0; j < 8; ++j) {
    double acc = 0;
    for (int64_t i = 0; i < 75000; ++i) acc += v[i * 8 + j];
    EXPECT_NEAR(tall_sums[j], acc, 1e-9);
  }
  // integers: exact
  Tensor ints = arange(600000.0).reshape({rows, cols});
  EXPECT_EQ(sum(ints).item<int64_t>(), int64_t{600000} * 599999 / 2);
  // float32 input accumulates in double
  Tensor ones32 = ones({4000, 1000});
  EXPECT_EQ(sum(ones32).item<float>(), 4e6f);
}

TEST(Reduce, MultiDimReductionsOfAChannelsTensor) {
  // per-channel sums of [N, C, H, W] (dims {0, 2, 3}): runs of H*W, strided by C*H*W
  Tensor x = rand({4, 3, 16, 16}, kFloat64);
  std::vector<double> v = x.to_vector<double>(), s = sum(x, {0, 2, 3}).to_vector<double>();
  std::vector<double> mx = amax(x, {0, 2, 3}).to_vector<double>();
  for (int c = 0; c < 3; ++c) {
    double acc = 0, big = -kInf;
    for (int n = 0; n < 4; ++n)
      for (int i = 0; i < 256; ++i) {
        acc += v[(n * 3 + c) * 256 + i];
        big = std::max(big, v[(n * 3 + c) * 256 + i]);
      }
    EXPECT_NEAR(s[c], acc, 1e-12);
    EXPECT_EQ(mx[c], big);
  }
}

TEST(Reduce, DtypesAndEmptyInputs) {
  EXPECT_EQ(sum(tensor<bool>({true, true, false})).item<int64_t>(), 2);
  EXPECT_EQ(sum(tensor<int32_t>({1, 2})).dtype(), kInt64);
  EXPECT_EQ(amax(tensor<int32_t>({4, -9, 7}), {0}).item<int32_t>(), 7);
  EXPECT_EQ(prod(tensor<int64_t>({3, 4, 5})).item<int64_t>(), 60);
  EXPECT_EQ(sum(zeros({0, 3}), {0}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(prod(zeros({2, 0}), 1).to_vector<float>(), (std::vector<float>{1, 1}));
  EXPECT_TRUE(std::isnan(mean(zeros({0})).item<float>()));
  EXPECT_EQ(sum(scalar_tensor(2.5), {0}).item<float>(), 2.5f);
}

// ---------------------------------------------------------------------------------------------
// errors

TEST(Reduce, Errors) {
  Tensor x = zeros({2, 3});
  EMBER_EXPECT_THROW_MSG(sum(x, {2}), "sum: dim 2 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(amax(x, {-3}), "amax: dim -3 out of range");
  EMBER_EXPECT_THROW_MSG(max(x, 2), "max: dim 2 out of range");
  EMBER_EXPECT_THROW_MSG(argmin(x, -3), "argmin: dim -3 out of range");
  EMBER_EXPECT_THROW_MSG(cumsum(x, 5), "cumsum: dim 5 out of range");
  EMBER_EXPECT_THROW_MSG(softmax(x, 2), "softmax: dim 2 out of range");
  EMBER_EXPECT_THROW_MSG(logsumexp(x, {3}), "logsumexp: dim 3 out of range");
  EMBER_EXPECT_THROW_MSG(sum(x, {1, -1}), "sum: dim 1 appears more than once in [1,-1]");
  EMBER_EXPECT_THROW_MSG(var(x, {0, 0}), "var: dim 0 appears more than once");
  EMBER_EXPECT_THROW_MSG(norm(x, 2, {-2, 0}), "norm: dim 0 appears more than once");
  EMBER_EXPECT_THROW_MSG(max(zeros({0, 3}), 0),
                         "max: cannot reduce over dim 0 of size 0 (input shape [0,3])");
  EMBER_EXPECT_THROW_MSG(argmax(zeros({2, 0}), 1), "argmax: cannot reduce over dim 1 of size 0");
  EMBER_EXPECT_THROW_MSG(amin(zeros({0, 3}), {0}), "amin: cannot reduce over an empty dimension");
  EMBER_EXPECT_THROW_MSG(norm(zeros({0}), INFINITY), "norm: the inf-norm of an empty set is undefined");
  Tensor i = tensor<int64_t>({1, 2, 3});
  EMBER_EXPECT_THROW_MSG(mean(i), "mean: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(var(i, {}), "var: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(softmax(i, 0), "softmax: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(log_softmax(i, 0), "log_softmax: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(logsumexp(i, {0}), "logsumexp: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(logcumsumexp(i, 0), "logcumsumexp: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(norm(i), "norm: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(norm(x, -1.0), "norm: p must be > 0, 0, inf or -inf; got -1");
  EMBER_EXPECT_THROW_MSG(sum(Tensor()), "sum: input is an undefined tensor");
  EMBER_EXPECT_THROW_MSG(max(Tensor(), 0), "max: input is an undefined tensor");
}

}  // namespace
}  // namespace ember::testing
