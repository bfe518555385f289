// sort, argsort, topk: hand-computed rows (values gradient-checked), then stability with many
// ties, NaN order, agreement of topk with sort, and errors.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "harness.h"

namespace ember::testing {
namespace {

using Inputs = std::vector<Tensor>;

std::vector<OpCase> sort_cases() {
  Tensor x = T({3, 1, 2, 0.5, -1, 4}, {2, 3});
  Tensor x32 = T({3, 1, 2, 5, -1, 0}, {3, 2});
  Tensor x3d = T({5, 1, 2, 6, 3, 0, -1, 4, -2, 7, 8, -3}, {2, 3, 2});
  auto as_float = [](const Tensor& indices) { return indices.to(kFloat64); };
  return with_gradgradcheck({
      {"sort_last_dim",
       [](const Inputs& in) { return sort(in[0]).first; },
       {x},
       tensor<double>({1, 2, 3, -1, 0.5, 4}, {2, 3})},
      {"sort_descending",
       [](const Inputs& in) { return sort(in[0], -1, true).first; },
       {x},
       tensor<double>({3, 2, 1, 4, 0.5, -1}, {2, 3})},
      {"sort_dim0",
       [](const Inputs& in) { return sort(in[0], 0).first; },
       {x32},
       tensor<double>({-1, 0, 2, 1, 3, 5}, {3, 2})},
      {"sort_dim0_descending",
       [](const Inputs& in) { return in[0].sort(0, true).first; },
       {x32},
       tensor<double>({3, 5, 2, 1, -1, 0}, {3, 2})},
      // x.t() = [[3,0.5],[1,-1],[2,4]]: rows with stride 3
      {"sort_transposed",
       [](const Inputs& in) { return sort(in[0].t(), 1).first; },
       {x},
       tensor<double>({0.5, 3, -1, 1, 2, 4}, {3, 2})},
      // the middle dim of a 3-d tensor: lines of stride 2
      {"sort_middle_dim",
       [](const Inputs& in) { return sort(in[0], 1).first; },
       {x3d},
       tensor<double>({2, 0, 3, 1, 5, 6, -2, -3, -1, 4, 8, 7}, {2, 3, 2})},
      {"sort_indices",
       [=](const Inputs& in) { return as_float(sort(in[0]).second); },
       {x},
       tensor<double>({1, 2, 0, 1, 0, 2}, {2, 3}),
       0,
       false},
      {"argsort_descending",
       [=](const Inputs& in) { return as_float(argsort(in[0], -1, true)); },
       {x},
       tensor<double>({0, 2, 1, 2, 0, 1}, {2, 3}),
       0,
       false},
      {"argsort_dim0",
       [=](const Inputs& in) { return as_float(in[0].argsort(0)); },
       {x32},
       tensor<double>({2, 2, 1, 0, 0, 1}, {3, 2}),
       0,
       false},
      {"topk_largest",
       [](const Inputs& in) { return topk(in[0], 2).first; },
       {x},
       tensor<double>({3, 2, 4, 0.5}, {2, 2})},
      {"topk_smallest",
       [](const Inputs& in) { return topk(in[0], 2, -1, false).first; },
       {x},
       tensor<double>({1, 2, -1, 0.5}, {2, 2})},
      {"topk_indices",
       [=](const Inputs& in) { return as_float(topk(in[0], 2).second); },
       {x},
       tensor<double>({0, 2, 2, 0}, {2, 2}),
       0,
       false},
      {"topk_dim0",
       [](const Inputs& in) { return topk(in[0], 1, 0).first; },
       {x32},
       tensor<double>({3, 5}, {1, 2})},
      {"topk_all_is_descending_sort",
       [](const Inputs& in) { return in[0].topk(3).first; },
       {x},
       tensor<double>({3, 2, 1, 4, 0.5, -1}, {2, 3})},
  });
}
EMBER_OP_SUITE(Sort, sort_cases);

// The stable order computed by std::stable_sort, NaN largest.
std::vector<int64_t> stable_order(const std::vector<double>& v, bool descending) {
  std::vector<int64_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  auto less = [](double a, double b) { return a < b || (!std::isnan(a) && std::isnan(b)); };
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return descending ? less(v[b], v[a]) : less(v[a], v[b]); });
  return order;
}

// rows x cols values from only five distinct numbers, so every row is full of ties.
std::vector<double> tie_heavy(int64_t rows, int64_t cols) {
  std::vector<double> v(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) v[i] = static_cast<double>((i * 7 + i / 3) % 5) - 2.0;
  return v;
}

TEST(Sort, StableWithManyTiesInBothDirections) {
  const int64_t rows = 64, cols = 1000;  // enough rows to be split across threads
  std::vector<double> v = tie_heavy(rows, cols);
  for (DType dtype : {kFloat64, kFloat32, kInt64}) {
    Tensor x = tensor<double>(v, {rows, cols}).to(dtype);
    for (bool descending : {false, true}) {
      auto [values, indices] = sort(x, -1, descending);
      EXPECT_EQ(values.dtype(), dtype);
      EXPECT_EQ(indices.dtype(), kInt64);
      std::vector<int64_t> got = indices.to_vector<int64_t>();
      std::vector<double> got_values = values.to_vector<double>();
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> row(v.begin() + r * cols, v.begin() + (r + 1) * cols);
        std::vector<int64_t> want = stable_order(row, descending);
        ASSERT_TRUE(std::equal(want.begin(), want.end(), got.begin() + r * cols))
            << "row " << r << ", descending " << descending << ", " << dtype_name(dtype);
        for (int64_t j = 0; j < cols; ++j) ASSERT_EQ(got_values[r * cols + j], row[want[j]]);
      }
    }
  }
}

TEST(Sort, StableAlongAStridedDim) {
  const int64_t rows = 300, cols = 40;
  std::vector<double> v = tie_heavy(rows, cols);
  Tensor x = tensor<double>(v, {rows, cols});
  // sort each column (dim 0): lines of stride `cols`
  std::vector<int64_t> got = argsort(x, 0, true).to_vector<int64_t>();
  for (int64_t c = 0; c < cols; ++c) {
    std::vector<double> column(rows);
    for (int64_t r = 0; r < rows; ++r) column[r] = v[r * cols + c];
    std::vector<int64_t> want = stable_order(column, true);
    for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(got[r * cols + c], want[r]) << "column " << c;
  }
}

TEST(Sort, NaNIsLargest) {
  Tensor x = tensor<double>({3, NAN, 1, NAN, 2});
  auto [up, up_idx] = sort(x);
  EXPECT_EQ(up_idx.to_vector<int64_t>(), (std::vector<int64_t>{2, 4, 0, 1, 3}));
  std::vector<double> u = up.to_vector<double>();
  EXPECT_EQ(std::vector<double>(u.begin(), u.begin() + 3), (std::vector<double>{1, 2, 3}));
  EXPECT_TRUE(std::isnan(u[3]) && std::isnan(u[4]));
  auto [down, down_idx] = sort(x, 0, true);
  EXPECT_EQ(down_idx.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 0, 4, 2}));
  EXPECT_EQ(topk(x, 1).second.to_vector<int64_t>(), (std::vector<int64_t>{1}));
  EXPECT_EQ(topk(x, 2, 0, false).second.to_vector<int64_t>(), (std::vector<int64_t>{2, 4}));
}

TEST(Sort, TopkAgreesWithSort) {
  const int64_t rows = 50, cols = 40;
  std::mt19937 gen(11);
  std::uniform_int_distribution<int> digit(0, 9);  // many ties
  std::vector<float> v(rows * cols);
  for (float& e : v) e = static_cast<float>(digit(gen));
  Tensor x = tensor<float>(v, {rows, cols});
  for (bool largest : {true, false}) {
    auto [sorted, order] = sort(x, 1, /*descending=*/largest);
    for (int64_t k : {0, 1, 7, 40}) {
      auto [values, indices] = topk(x, k, 1, largest);
      ASSERT_EQ(values.shape(), (Shape{rows, k}));
      EXPECT_EQ(values.to_vector<float>(), sorted.narrow(1, 0, k).contiguous().to_vector<float>())
          << "k " << k << " largest " << largest;
      EXPECT_EQ(indices.to_vector<int64_t>(), order.narrow(1, 0, k).contiguous().to_vector<int64_t>())
          << "k " << k << " largest " << largest;
    }
  }
}

TEST(Sort, OtherDtypesAndZeroD) {
  EXPECT_EQ(sort(tensor<int64_t>({5, -3, 5, 0})).first.to_vector<int64_t>(),
            (std::vector<int64_t>{-3, 0, 5, 5}));
  EXPECT_EQ(argsort(tensor<int32_t>({5, -3, 5, 0}), 0, true).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 2, 3, 1}));
  EXPECT_EQ(sort(tensor<bool>({true, false, true})).first.to_vector<bool>(),
            (std::vector<bool>{false, true, true}));
  auto [v, i] = sort(scalar_tensor(3.0));
  EXPECT_EQ(v.dim(), 0);
  EXPECT_EQ(v.item<float>(), 3.0f);
  EXPECT_EQ(i.item<int64_t>(), 0);
  EXPECT_EQ(topk(zeros({3, 0}), 0).first.shape(), (Shape{3, 0}));
}

TEST(Sort, GradientFollowsTheReportedIndices) {
  // tied values: the gradient of each sorted slot goes to exactly the element its index names
  Tensor x = tensor<double>({1, 1, 0}).requires_grad_();
  auto [values, indices] = sort(x);
  EXPECT_EQ(indices.to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 1}));
  (values * tensor<double>({10, 20, 30})).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{20, 30, 10}));
  EXPECT_FALSE(indices.requires_grad());

  Tensor y = tensor<double>({4, 9, 1, 7}).requires_grad_();
  topk(y, 2).first.sum().backward();
  EXPECT_EQ(y.grad().to_vector<double>(), (std::vector<double>{0, 1, 0, 1}));
}

TEST(SortErrors, BadArguments) {
  Tensor x = zeros({2, 3});
  EMBER_EXPECT_THROW_MSG(topk(x, 4), "topk: k 4 is out of range for dim 1 of size 3 (expected 0 <= k <= 3)");
  EMBER_EXPECT_THROW_MSG(topk(x, -1), "topk: k must be non-negative, got -1");
  EMBER_EXPECT_THROW_MSG(sort(x, 2), "sort: dim 2 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(argsort(x, -3), "argsort: dim -3 out of range");
  EMBER_EXPECT_THROW_MSG(topk(x, 1, 5), "topk: dim 5 out of range");
  EMBER_EXPECT_THROW_MSG(sort(Tensor()), "sort: input is an undefined tensor");
}

}  // namespace
}  // namespace ember::testing
