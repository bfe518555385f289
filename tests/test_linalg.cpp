// matmul, linear and dropout: hand-computed values, every broadcasting case against a naive
// reference, transposed views, integer dtypes, gradients and errors.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

// Reference matmul written as plain loops over float64 values, with NumPy broadcasting of the
// batch dims and PyTorch's 1-D rules; independent of ember's gemm path.
Tensor naive_matmul(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in.detach().to(DType::float64), b = b_in.detach().to(DType::float64);
  const bool a_vec = a.dim() == 1, b_vec = b.dim() == 1;
  if (a_vec) a = a.unsqueeze(0);
  if (b_vec) b = b.unsqueeze(1);
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  const size_t nb = std::max(ba.size(), bb.size());
  while (ba.size() < nb) ba.insert(ba.begin(), 1);
  while (bb.size() < nb) bb.insert(bb.begin(), 1);
  Shape batch(nb);
  for (size_t i = 0; i < nb; ++i) batch[i] = std::max(ba[i], bb[i]);
  a = a.reshape([&] {
         Shape s = ba;
         s.push_back(m);
         s.push_back(k);
         return s;
       }())
          .contiguous();
  b = b.reshape([&] {
         Shape s = bb;
         s.push_back(k);
         s.push_back(n);
         return s;
       }())
          .contiguous();
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  int64_t batch_numel = 1;
  for (int64_t s : batch) batch_numel *= s;
  std::vector<double> out(batch_numel * m * n, 0.0);
  for (int64_t flat = 0; flat < batch_numel; ++flat) {
    int64_t ia = 0, ib = 0, rem = flat, sa = 1, sb = 1;
    for (size_t d = nb; d-- > 0;) {
      int64_t i = rem % batch[d];
      rem /= batch[d];
      ia += (ba[d] == 1 ? 0 : i) * sa;
      ib += (bb[d] == 1 ? 0 : i) * sb;
      sa *= ba[d];
      sb *= bb[d];
    }
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < k; ++j) acc += av[(ia * m + r) * k + j] * bv[(ib * k + j) * n + c];
        out[(flat * m + r) * n + c] = acc;
      }
  }
  Shape out_shape = batch;
  if (!a_vec) out_shape.push_back(m);
  if (!b_vec) out_shape.push_back(n);
  return tensor<double>(out, out_shape);
}

OpFn mm() {
  return [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
}

std::vector<OpCase> matmul_cases() {
  Tensor a23 = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b32 = T({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor v3 = T({1, 0, -1}, {3});
  auto row = [](const std::string& name, OpFn fn, std::vector<Tensor> in, Tensor expected) {
    return OpCase{name, std::move(fn), std::move(in), std::move(expected)};
  };
  // Broadcasting cases, checked against naive_matmul.
  auto ref = [&](const std::string& name, const Shape& sa, const Shape& sb) {
    Tensor a = R(sa, -1, 1, 11), b = R(sb, -1, 1, 12);
    return row(name, mm(), {a, b}, naive_matmul(a, b));
  };
  std::vector<OpCase> cases = {
      // [[1,2,3],[4,5,6]] @ [[7,8],[9,10],[11,12]]
      row("mm_2x3_3x2", mm(), {a23, b32}, tensor<double>({58, 64, 139, 154}, {2, 2})),
      row("dot", mm(), {T({1, 2, 3}, {3}), T({4, 5, 6}, {3})}, tensor<double>({32}, Shape{})),
      row("matrix_vector", mm(), {a23, v3}, tensor<double>({-2, -2}, {2})),
      row("vector_matrix", mm(), {T({1, -1}, {2}), a23}, tensor<double>({-3, -3, -3}, {3})),
      // [[1,2],[3,4]] @ [[2,0],[1,1]] and [[0,1],[1,0]] @ [[1,2],[3,4]]
      row("batched", mm(), {T({1, 2, 3, 4, 0, 1, 1, 0}, {2, 2, 2}), T({2, 0, 1, 1, 1, 2, 3, 4}, {2, 2, 2})},
          tensor<double>({4, 2, 10, 4, 3, 4, 1, 2}, {2, 2, 2})),
      // one matrix for the whole batch, and vice versa
      row("batch_times_matrix", mm(), {T({1, 2, 3, 4, 0, 1, 1, 0}, {2, 2, 2}), T({2, 0, 1, 1}, {2, 2})},
          tensor<double>({4, 2, 10, 4, 1, 1, 2, 0}, {2, 2, 2})),
      ref("broadcast_4d_3d", {2, 1, 2, 3}, {3, 3, 2}),
      ref("broadcast_both_ways", {3, 1, 2, 2}, {1, 2, 2, 3}),
      ref("nd_matrix", {2, 3, 4}, {4, 2}),
      ref("matrix_nd", {3, 4}, {2, 4, 2}),
      ref("nd_vector", {2, 3, 4}, {4}),
      ref("vector_nd", {4}, {2, 4, 3}),
      ref("size1_batch_of_b", {2, 3, 4}, {1, 4, 2}),
      ref("size1_batch_of_a", {1, 2, 3}, {2, 3, 2}),
      ref("more_dims_in_b", {2, 3}, {2, 2, 3, 2}),
  };
  // Views: transposed operands go to BLAS with a transpose flag; a strided slice or an expanded
  // row has no BLAS layout and is copied first. All must match the reference.
  {
    Tensor a = R({2, 4, 3}, -1, 1, 21), b = R({2, 4, 2}, -1, 1, 22);
    cases.push_back(row(
        "transposed_batched_a",
        [](const std::vector<Tensor>& in) { return matmul(in[0].transpose(-1, -2), in[1]); }, {a, b},
        naive_matmul(a.transpose(-1, -2), b)));
  }
  {
    Tensor a = R({3, 2}, -1, 1, 23), b = R({4, 3}, -1, 1, 24);
    cases.push_back(row(
        "both_transposed", [](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].t()); }, {a, b},
        naive_matmul(a.t(), b.t())));
  }
  {
    Tensor a = R({4, 3}, -1, 1, 25), b = R({4, 2}, -1, 1, 26);
    cases.push_back(row(
        "transposed_a_times_matrix", [](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1]); },
        {a, b}, naive_matmul(a.t(), b)));
  }
  {
    Tensor a = R({2, 6}, -1, 1, 27), b = R({3, 2}, -1, 1, 28);
    cases.push_back(row(
        "strided_slice", [](const std::vector<Tensor>& in) { return matmul(in[0].slice(1, 0, 6, 2), in[1]); },
        {a, b}, naive_matmul(a.slice(1, 0, 6, 2), b)));
  }
  {
    Tensor a = R({1, 3}, -1, 1, 29), b = R({3, 2}, -1, 1, 30);
    cases.push_back(row(
        "expanded_rows",
        [](const std::vector<Tensor>& in) {
          return matmul(in[0].expand({4, 3}), in[1]);
        },
        {a, b}, naive_matmul(a.expand({4, 3}), b)));
  }
  return with_gradgradcheck(cases);
}
EMBER_OP_SUITE(Matmul, matmul_cases);

std::vector<OpCase> linear_cases() {
  auto lin = [](const std::vector<Tensor>& in) {
    return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
  };
  Tensor x = R({2, 2, 3}, -1, 1, 31), w = R({4, 3}, -1, 1, 32), b = R({4}, -1, 1, 33);
  Tensor w_stored_transposed = R({3, 4}, -1, 1, 34);
  return with_gradgradcheck({
      // [[1,2],[3,4]] @ [[1,0],[0,1],[1,1]]^T + [10,20,30]
      {"linear_bias",
       lin,
       {T({1, 2, 3, 4}, {2, 2}), T({1, 0, 0, 1, 1, 1}, {3, 2}), T({10, 20, 30}, {3})},
       tensor<double>({11, 22, 33, 13, 24, 37}, {2, 3})},
      {"linear_no_bias",
       lin,
       {T({1, 2, 3, 4}, {2, 2}), T({1, 0, 0, 1, 1, 1}, {3, 2})},
       tensor<double>({1, 2, 3, 3, 4, 7}, {2, 3})},
      {"linear_vector_input",
       lin,
       {T({1, 2}, {2}), T({1, 0, 0, 1, 1, 1}, {3, 2}), T({10, 20, 30}, {3})},
       tensor<double>({11, 22, 33}, {3})},
      {"linear_3d_input", lin, {x, w, b}, naive_matmul(x, w.t()) + b.detach()},
      {"linear_transposed_weight",
       [](const std::vector<Tensor>& in) { return linear(in[0], in[1].t(), in[2]); },
       {x, w_stored_transposed, b},
       naive_matmul(x, w_stored_transposed) + b.detach()},
  });
}
EMBER_OP_SUITE(Linear, linear_cases);

std::vector<OpCase> dropout_cases() {
  // Re-seeding inside the function gives the same mask on every call, so gradcheck can run.
  return with_gradgradcheck({{"dropout_fixed_seed",
                              [](const std::vector<Tensor>& in) {
                                manual_seed(5);
                                return dropout(in[0], 0.4, true);
                              },
                              {R({3, 4})},
                              Tensor()}});
}
EMBER_OP_SUITE(Dropout, dropout_cases);

TEST(Matmul, TransposedViewsEqualContiguous) {
  manual_seed(1);
  for (DType dt : {DType::float32, DType::float64}) {
    Tensor a = randn({37, 53}, dt), b = randn({53, 29}, dt);
    Tensor at = a.t().contiguous().t(), bt = b.t().contiguous().t();  // same values, column-major storage
    ASSERT_FALSE(at.is_contiguous());
    Tensor expected = naive_matmul(a, b);
    double tol = dt == DType::float32 ? 1e-5 : 1e-12;
    for (const auto& [x, y] : std::vector<std::pair<Tensor, Tensor>>{{a, b}, {at, b}, {a, bt}, {at, bt}}) {
      EXPECT_TRUE(tensors_close(matmul(x, y).to(DType::float64), expected, tol));
    }
  }
}

// core/blas_core.cpp: on a CPU with AVX2 + FMA, OpenBLAS never runs its generic SSE3 kernels
// ("Prescott", its fallback for CPU models it does not know), unless the user asked for a core.
TEST(Matmul, OpenBlasRunsKernelsForThisCpu) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (std::getenv("OPENBLAS_CORETYPE")) GTEST_SKIP() << "OPENBLAS_CORETYPE is set";
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) GTEST_SKIP() << "no AVX2 + FMA";
  EXPECT_NE(blas_core_name(), "Prescott");
  EXPECT_NE(blas_core_name(), "Unknown");
#else
  GTEST_SKIP() << "x86-64 only";
#endif
}

TEST(Matmul, LargeAgainstNaive) {
  manual_seed(2);
  Tensor a = randn({130, 70}, kFloat64), b = randn({70, 90}, kFloat64);
  EXPECT_TRUE(tensors_close(matmul(a, b), naive_matmul(a, b), 1e-12));
}

TEST(Matmul, ManySmallMatricesRunInParallelOverTheBatch) {
  manual_seed(3);
  Tensor a = randn({64, 8, 5}, kFloat64), b = randn({64, 5, 7}, kFloat64);
  EXPECT_TRUE(tensors_close(matmul(a, b), naive_matmul(a, b), 1e-12));
  // batch broadcast on one side, transposed on the other
  Tensor c = randn({64, 7, 5}, kFloat64);
  EXPECT_TRUE(tensors_close(matmul(a[0], c.transpose(1, 2)), naive_matmul(a[0], c.transpose(1, 2)), 1e-12));
}

TEST(Matmul, MethodsAndOutputShapes) {
  Tensor a = ones({2, 3}), b = ones({3, 4});
  EXPECT_EQ(a.matmul(b).shape(), (Shape{2, 4}));
  EXPECT_EQ(a.mm(b).shape(), (Shape{2, 4}));
  EXPECT_EQ(matmul(ones({2, 1, 3, 4}), ones({5, 4, 6})).shape(), (Shape{2, 5, 3, 6}));
  EXPECT_EQ(matmul(ones({3}), ones({3})).dim(), 0);
  EXPECT_EQ(matmul(ones({3}), ones({3})).item<float>(), 3.0f);
}

TEST(Matmul, IntegerDtypes) {
  Tensor a = tensor<int64_t>({1, 2, 3, 4}, {2, 2}), b = tensor<int64_t>({5, 6, 7, 8}, {2, 2});
  Tensor c = matmul(a, b);
  EXPECT_EQ(c.dtype(), kInt64);
  EXPECT_EQ(c.to_vector<int64_t>(), (std::vector<int64_t>{19, 22, 43, 50}));
  // transposed view, batched, int32
  Tensor a32 = tensor<int32_t>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  EXPECT_EQ(matmul(a32.transpose(1, 2), a32).to_vector<int32_t>(),
            (std::vector<int32_t>{10, 14, 14, 20, 74, 86, 86, 100}));
  // products wrap around like the C type, without undefined behaviour
  EXPECT_EQ(matmul(tensor<uint8_t>({200}, {1}), tensor<uint8_t>({2}, {1})).item<uint8_t>(), 144);
  int64_t big = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(matmul(tensor<int64_t>({big}, {1}), tensor<int64_t>({2}, {1})).item<int64_t>(), -2);
}

TEST(Matmul, EmptyInnerDimensionGivesZeros) {
  Tensor a = ones({2, 0}).requires_grad_(), b = ones({0, 3}).requires_grad_();
  Tensor c = matmul(a, b);
  EXPECT_TRUE(tensors_close(c.to(kFloat64), zeros({2, 3}, kFloat64), 0));
  c.sum().backward();
  EXPECT_EQ(a.grad().shape(), (Shape{2, 0}));
  EXPECT_EQ(b.grad().shape(), (Shape{0, 3}));
  EXPECT_EQ(matmul(ones({0, 3}), ones({3, 2})).shape(), (Shape{0, 2}));
}

TEST(Matmul, GradientsSumOverBroadcastBatch) {
  // a [3,2] is shared by the batch of 4: its gradient is the sum of the 4 per-batch gradients.
  Tensor a = R({3, 2}), b = R({4, 2, 5});
  matmul(a, b).sum().backward();
  Tensor expected_a = zeros({3, 2}, kFloat64);
  for (int64_t i = 0; i < 4; ++i) expected_a = expected_a + ones({3, 5}, kFloat64).matmul(b.detach()[i].t());
  EXPECT_TRUE(tensors_close(a.grad(), expected_a, 1e-12));
  EXPECT_TRUE(
      tensors_close(b.grad(), a.detach().t().matmul(ones({3, 5}, kFloat64)).expand({4, 2, 5}), 1e-12));
}

TEST(Matmul, Errors) {
  EMBER_EXPECT_THROW_MSG(matmul(ones({2, 3}), ones({4, 5})),
                         "matmul: [2,3] @ [4,5]: inner dimensions differ (3 vs 4)");
  EMBER_EXPECT_THROW_MSG(matmul(ones({3}), ones({4})), "matmul: [3] @ [4]: inner dimensions differ (3 vs 4)");
  EMBER_EXPECT_THROW_MSG(matmul(ones({2, 3, 4}), ones({5, 4, 6})),
                         "matmul: [2,3,4] @ [5,4,6]: batch dimensions [2] and [5] cannot be broadcast");
  EMBER_EXPECT_THROW_MSG(matmul(ones({}), ones({3})), "matmul: [] @ [3]: both operands must be at least 1-D");
  EMBER_EXPECT_THROW_MSG(matmul(ones({2, 2}), ones({2, 2}, kFloat64)),
                         "matmul: [2,2] @ [2,2]: dtype mismatch (float32 vs float64)");
  EMBER_EXPECT_THROW_MSG(matmul(ones({2, 2}, kBool), ones({2, 2}, kBool)), "not defined for bool tensors");
  EMBER_EXPECT_THROW_MSG(matmul(Tensor(), ones({2})), "matmul: first operand is an undefined tensor");
  if (cuda::is_available())
    EMBER_EXPECT_THROW_MSG(matmul(ones({2, 2}).cuda(), ones({2, 2})),
                           "matmul: expected all tensors on the same device");
}

TEST(Linear, MatchesMatmulPlusBiasOnLargerInputs) {
  manual_seed(4);
  Tensor x = randn({3, 5, 17}, kFloat64), w = randn({11, 17}, kFloat64), b = randn({11}, kFloat64);
  EXPECT_TRUE(tensors_close(linear(x, w, b), naive_matmul(x, w.t()) + b, 1e-12));
  // a transposed (non-contiguous) input
  Tensor xt = randn({17, 6}, kFloat64);
  EXPECT_TRUE(tensors_close(linear(xt.t(), w), naive_matmul(xt.t(), w.t()), 1e-12));
}

TEST(Linear, GradientsFlattenLeadingDims) {
  Tensor x = R({2, 3, 4}), w = R({5, 4}), b = R({5});
  Tensor g = R({2, 3, 5}, -1, 1, 7, false);
  linear(x, w, b).backward(g);
  EXPECT_TRUE(tensors_close(x.grad(), naive_matmul(g, w.detach()), 1e-12));
  EXPECT_TRUE(
      tensors_close(w.grad(), naive_matmul(g.reshape({6, 5}).t(), x.detach().reshape({6, 4})), 1e-12));
  EXPECT_TRUE(tensors_close(b.grad(), g.sum({0, 1}), 1e-12));
}

TEST(Linear, Errors) {
  EMBER_EXPECT_THROW_MSG(linear(ones({4, 3}), ones({5, 2})),
                         "linear: input [4,3] and weight [5,2]: in_features differ (3 vs 2)");
  EMBER_EXPECT_THROW_MSG(linear(ones({4, 3}), ones({3})),
                         "linear: weight must be 2-D [out_features, in_features], got shape [3]");
  EMBER_EXPECT_THROW_MSG(linear(ones({4, 3}), ones({5, 3}), ones({4})),
                         "linear: bias must have shape [5] (out_features), got [4]");
  EMBER_EXPECT_THROW_MSG(linear(ones({}), ones({5, 3})), "linear: input must be at least 1-D");
  EMBER_EXPECT_THROW_MSG(linear(ones({4, 3}), ones({5, 3}, kFloat64)),
                         "linear: dtype mismatch: input float32, weight float64");
}

TEST(Dropout, IdentityWhenNotTrainingOrPZero) {
  Tensor x = randn({10});
  EXPECT_TRUE(dropout(x, 0.5, false).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0, true).is_same(x));
}

TEST(Dropout, POneDropsEverything) {
  Tensor x = R({4, 5});
  Tensor y = dropout(x, 1.0, true);
  EXPECT_TRUE(tensors_close(y, zeros({4, 5}, kFloat64), 0));
  y.sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), zeros({4, 5}, kFloat64), 0));
}

TEST(Dropout, StatisticsOfTheMask) {
  manual_seed(42);
  const int64_t n = 200000;
  const double p = 0.3;
  std::vector<float> y = dropout(ones({n}), p, true).to_vector<float>();
  int64_t zeros_count = 0;
  for (float v : y) {
    if (v == 0.0f) {
      ++zeros_count;
    } else {
      ASSERT_FLOAT_EQ(v, static_cast<float>(1.0 / (1.0 - p)));  // survivors are scaled by 1 / (1 - p)
    }
  }
  // The dropped fraction is p within 5 standard deviations (sqrt(p (1-p) / n) ~ 0.001).
  EXPECT_NEAR(static_cast<double>(zeros_count) / n, p, 0.005);
  // Inverted dropout keeps the mean.
  double mean = 0;
  for (float v : y) mean += v;
  EXPECT_NEAR(mean / n, 1.0, 0.01);
}

TEST(Dropout, DeterministicUnderManualSeed) {
  Tensor x = randn({1000});
  manual_seed(7);
  Tensor a = dropout(x, 0.5, true), b = dropout(x, 0.5, true);
  manual_seed(7);
  Tensor c = dropout(x, 0.5, true);
  EXPECT_EQ(a.to_vector<float>(), c.to_vector<float>());
  EXPECT_NE(a.to_vector<float>(), b.to_vector<float>());  // the generator moved on
}

TEST(Dropout, GradientIsTheScaledMask) {
  Tensor x = R({50});
  Tensor y = dropout(x, 0.5, true);
  y.sum().backward();
  std::vector<double> yv = y.detach().to_vector<double>(), g = x.grad().to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], yv[i] == 0.0 ? 0.0 : 2.0) << i;
}

TEST(Dropout, Errors) {
  EMBER_EXPECT_THROW_MSG(dropout(ones({2}), 1.5, true), "dropout: probability must be in [0, 1], got 1.5");
  EMBER_EXPECT_THROW_MSG(dropout(ones({2}), -0.1, true), "dropout: probability must be in [0, 1], got -0.1");
  EMBER_EXPECT_THROW_MSG(dropout(ones({2}), NAN, true), "dropout: probability must be in [0, 1], got nan");
  EMBER_EXPECT_THROW_MSG(dropout(ones({2}, kInt64), 0.5, true),
                         "dropout: expected a floating-point tensor, got int64");
}

}  // namespace
}  // namespace ember::testing
