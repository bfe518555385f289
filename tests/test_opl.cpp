// OPL (orthogonal projection loss): the spec's worked examples (/work/shared/papers/opl.md,
// exact values with the empty-mean rule; the reference's +1e-6 differs by < 1e-6), its edge
// cases, and a pair-by-pair reference for random batches.
#include <ember/losses/opl.h>

#include <cmath>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

using losses::OPLOptions;

OpFn opl_fn(OPLOptions o) {
  return [o](const std::vector<Tensor>& in) { return losses::opl(in[0], in[1], o); };
}
const OPLOptions kA{0.5, false}, kB{0.5, true}, kA2{2.0, false}, kB2{2.0, true};

Tensor o1() { return T({1, 0, 2, 0, 0, 3, 1, 1}, {4, 2}); }
Tensor o2() { return T({1, 0, 1, 1, -1, 0, 0, 1}, {4, 2}); }
Tensor o3() { return T({3, 4, 1, 0, 0, 2}, {3, 2}); }

// Straight from the definitions: masked means over ordered pairs of normalised rows.
double opl_reference(const Tensor& features, const std::vector<int64_t>& y, OPLOptions o) {
  const int64_t B = features.size(0), D = features.size(1);
  std::vector<double> f = features.to_vector<double>();
  for (int64_t i = 0; i < B; ++i) {
    double n = 0;
    for (int64_t k = 0; k < D; ++k) n += f[i * D + k] * f[i * D + k];
    n = std::max(std::sqrt(n), 1e-12);
    for (int64_t k = 0; k < D; ++k) f[i * D + k] /= n;
  }
  double pos = 0, neg = 0, P = 0, Q = 0;
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < B; ++j) {
      if (i == j) continue;
      double g = 0;
      for (int64_t k = 0; k < D; ++k) g += f[i * D + k] * f[j * D + k];
      if (y[i] == y[j]) {
        pos += g;
        P += 1;
      } else {
        neg += o.absolute_inter ? std::abs(g) : g;
        Q += 1;
      }
    }
  return 1.0 - (P > 0 ? pos / P : 0.0) + o.gamma * (Q > 0 ? neg / Q : 0.0);
}

std::vector<OpCase> worked_examples() {
  // Variant B is not differentiable where a cosine is exactly 0 (O1, O3 and the orthogonal
  // edge case have such pairs), so those rows skip gradcheck; "B_random" checks B's gradient.
  return with_gradgradcheck({
      {"O1_A", opl_fn(kA), {o1(), I({0, 0, 1, 1}, {4})}, scalar_tensor(0.323223305, kFloat64)},
      {"O1_B", opl_fn(kB), {o1(), I({0, 0, 1, 1}, {4})}, scalar_tensor(0.323223305, kFloat64), 1e-6, false},
      {"O1_A_gamma2", opl_fn(kA2), {o1(), I({0, 0, 1, 1}, {4})}, scalar_tensor(0.853553391, kFloat64)},
      {"O2_A", opl_fn(kA), {o2(), I({0, 0, 1, 1}, {4})}, scalar_tensor(0.521446609, kFloat64)},
      {"O2_B", opl_fn(kB), {o2(), I({0, 0, 1, 1}, {4})}, scalar_tensor(0.948223305, kFloat64), 1e-6, false},
      {"O2_B_gamma2",
       opl_fn(kB2),
       {o2(), I({0, 0, 1, 1}, {4})},
       scalar_tensor(1.853553391, kFloat64),
       1e-6,
       false},
      {"O3_A", opl_fn(kA), {o3(), I({5, 5, 7}, {3})}, scalar_tensor(0.6, kFloat64)},
      {"O3_A_gamma2", opl_fn(kA2), {o3(), I({5, 5, 7}, {3})}, scalar_tensor(1.2, kFloat64)},
      {"all_distinct",
       opl_fn(kA),
       {T({1, 0, 0, 1, 1, 1}, {3, 2}), I({0, 1, 2}, {3})},
       scalar_tensor(1.235702260, kFloat64)},
      {"all_equal",
       opl_fn(kA),
       {T({1, 0, 1, 1}, {2, 2}), I({4, 4}, {2})},
       scalar_tensor(0.292893219, kFloat64)},
      {"B_random",
       opl_fn(kB2),
       {R({6, 3}, -1, 1, 7), I({0, 1, 0, 2, 1, 1}, {6})},
       scalar_tensor(opl_reference(R({6, 3}, -1, 1, 7), {0, 1, 0, 2, 1, 1}, kB2), kFloat64)},
      {"A_random_negative_labels",
       opl_fn(kA),
       {R({5, 4}, -1, 1, 8), I({-1, 1000, -1, 1000, 3}, {5})},
       scalar_tensor(opl_reference(R({5, 4}, -1, 1, 8), {-1, 1000, -1, 1000, 3}, kA), kFloat64)},
  });
}
EMBER_OP_SUITE(OPLWorkedExamples, worked_examples);

Tensor grad_of(const Tensor& features, const Tensor& y, OPLOptions o) {
  Tensor f = features.detach().clone().requires_grad_(true);
  losses::opl(f, y, o).backward();
  return f.grad();
}

TEST(OPL, WorkedExampleGradients) {
  Tensor y = I({0, 0, 1, 1}, {4});
  EXPECT_TRUE(tensors_close(
      grad_of(o1(), y, kA),
      tensor<double>({0, 0.213388348, 0, 0.106694174, -0.034517797, 0, 0.265165043, -0.265165043}, {4, 2}),
      1e-6));
  // B differs on rows 1-3 because sign(0) = 0 at the exactly orthogonal pairs
  EXPECT_TRUE(tensors_close(
      grad_of(o1(), y, kB),
      tensor<double>({0, 0.088388348, 0, 0.044194174, -0.117851130, 0, 0.265165043, -0.265165043}, {4, 2}),
      1e-6));
  EXPECT_TRUE(tensors_close(
      grad_of(o2(), y, kA),
      tensor<double>({0, -0.228553391, -0.265165043, 0.265165043, 0, -0.411611652, 0.713388348, 0}, {4, 2}),
      1e-6));
  // O3 by hand: W12 = -1/2, W13 = W23 = gamma / Q = 0.125
  EXPECT_TRUE(tensors_close(grad_of(o3(), I({5, 5, 7}, {3}), kA),
                            tensor<double>({-0.152, 0.114, 0, -0.55, 0.2, 0}, {3, 2}), 1e-9));
  EXPECT_TRUE(tensors_close(grad_of(o3(), I({5, 5, 7}, {3}), kB),
                            tensor<double>({-0.152, 0.114, 0, -0.8, 0.075, 0}, {3, 2}), 1e-9));
}

TEST(OPL, VariantsAgreeOnNonNegativeFeatures) {
  // post-ReLU features have no negative cosine, so mean cos = mean |cos| (the reference setting)
  Tensor f = R({8, 5}, 0.05, 1, 3, false);
  Tensor y = I({0, 1, 2, 0, 1, 2, 0, 1}, {8});
  EXPECT_NEAR(losses::opl(f, y, kA2).item<double>(), losses::opl(f, y, kB2).item<double>(), 1e-14);
  // O2 has signed features: the variants differ (paper's |mean| would give 0.771446609)
  EXPECT_GT(std::abs(losses::opl(o2(), I({0, 0, 1, 1}, {4}), kA).item<double>() -
                     losses::opl(o2(), I({0, 0, 1, 1}, {4}), kB).item<double>()),
            0.4);
}

TEST(OPL, MatchesPairwiseReferenceOnALargerBatch) {
  Tensor f = R({40, 16}, -1, 1, 9, false);
  std::vector<int64_t> labels;
  for (int i = 0; i < 40; ++i) labels.push_back((i * 7) % 5);
  Tensor y = I(labels, {40});
  for (OPLOptions o : {kA, kB, kB2}) {
    EXPECT_NEAR(losses::opl(f, y, o).item<double>(), opl_reference(f, labels, o), 1e-12);
    EXPECT_NEAR(losses::opl(f.to(kFloat32), y, o).item<float>(), opl_reference(f, labels, o), 1e-5);
  }
}

TEST(OPL, ScaleInvariantAndGradientOrthogonalToEachRow) {
  Tensor f = R({6, 4}, -1, 1, 10, false);
  Tensor y = I({0, 0, 1, 1, 2, 0}, {6});
  Tensor scales = tensor<double>({0.5, 2, 3, 0.1, 10, 1}, {6, 1});
  for (OPLOptions o : {kA, kB}) {
    EXPECT_NEAR(losses::opl(f * scales, y, o).item<double>(), losses::opl(f, y, o).item<double>(), 1e-12);
    Tensor g = grad_of(f, y, o);
    EXPECT_TRUE(tensors_close((g * f).sum({1}), zeros({6}, kFloat64), 1e-12));
    // scaling a row by c scales its gradient by 1 / c
    EXPECT_TRUE(tensors_close(grad_of(f * scales, y, o) * scales, g, 1e-10));
  }
}

TEST(OPL, SingleRowIsOneWithZeroGradient) {
  Tensor f = T({0.3, -2.0, 1.0}, {1, 3});
  Tensor loss = losses::opl(f, I({4}, {1}));
  EXPECT_EQ(loss.item<double>(), 1.0);
  loss.backward();
  EXPECT_TRUE(tensors_close(f.grad(), zeros({1, 3}, kFloat64), 0.0));
}

TEST(OPL, MissingPairKinds) {
  // all labels distinct: s = 0 and only d carries a gradient; all equal: d = 0
  Tensor f = R({4, 3}, -1, 1, 12, false);
  double d = opl_reference(f, {0, 1, 2, 3}, {1.0, false}) - 1.0;
  EXPECT_NEAR(losses::opl(f, I({0, 1, 2, 3}, {4}), {3.0, false}).item<double>(), 1.0 + 3.0 * d, 1e-12);
  EXPECT_TRUE(tensors_close(grad_of(f, I({0, 1, 2, 3}, {4}), {0.0, false}), zeros({4, 3}, kFloat64), 0.0));
  double s = 1.0 - opl_reference(f, {5, 5, 5, 5}, kA);
  EXPECT_NEAR(losses::opl(f, I({5, 5, 5, 5}, {4}), {100.0, true}).item<double>(), 1.0 - s, 1e-12);
  // a class with one sample only adds negative pairs
  EXPECT_NEAR(losses::opl(f, I({0, 0, 1, 2}, {4}), kB).item<double>(), opl_reference(f, {0, 0, 1, 2}, kB),
              1e-12);
}

TEST(OPL, ZeroFeatureVectorFollowsTheClampedNormalisation) {
  // f^ = f / max(|f|, 1e-12): a zero row adds nothing to G, and its gradient is the upstream
  // gradient divided by 1e-12 (the spec's checked values), exactly as the reference computes.
  Tensor f = T({0, 0, 1, 0, 0, 1}, {3, 2});
  Tensor y = I({0, 0, 1}, {3});
  Tensor loss = losses::opl(f, y, kA);
  EXPECT_NEAR(loss.item<double>(), 1.0 + 0.5 * 0.0, 1e-12);  // s = (0 + 0) / 2, d = 0
  loss.backward();
  std::vector<double> g = f.grad().to_vector<double>();
  EXPECT_NEAR(g[0], -1e12, 1e-3);
  EXPECT_NEAR(g[1], 2.5e11, 1e-3);
}

TEST(OPL, NaNFeaturesPropagate) {
  EXPECT_TRUE(std::isnan(losses::opl(T({1, NAN, 0, 1}, {2, 2}), I({0, 1}, {2})).item<double>()));
}

TEST(OPL, Errors) {
  Tensor f = T({1, 0, 0, 1}, {2, 2});
  EMBER_EXPECT_THROW_MSG(losses::opl(T({1, 0}, {2}), I({0, 1}, {2})),
                         "opl: features must be [B, D] with B, D >= 1");
  EMBER_EXPECT_THROW_MSG(losses::opl(zeros({2, 1, 2}, kFloat64), I({0, 1}, {2})), "got [2,1,2]");
  EMBER_EXPECT_THROW_MSG(losses::opl(zeros({0, 2}, kFloat64), tensor<int64_t>(std::vector<int64_t>{}, {0})),
                         "opl: features must be [B, D] with B, D >= 1");
  EMBER_EXPECT_THROW_MSG(losses::opl(zeros({2, 0}, kFloat64), I({0, 1}, {2})), "got [2,0]");
  EMBER_EXPECT_THROW_MSG(losses::opl(I({1, 0, 0, 1}, {2, 2}), I({0, 1}, {2})),
                         "opl: features must be floating");
  EMBER_EXPECT_THROW_MSG(losses::opl(f, tensor<int32_t>({0, 1}, {2})),
                         "opl: target must hold int64 labels, got int32");
  EMBER_EXPECT_THROW_MSG(losses::opl(f, I({0, 1, 1}, {3})),
                         "opl: target shape [3] does not match features [2,2]: expected [2]");
  EMBER_EXPECT_THROW_MSG(losses::opl(f, I({0, 1}, {2}), {-0.5, false}),
                         "opl: gamma must be a finite number >= 0, got -0.5");
  EMBER_EXPECT_THROW_MSG(losses::opl(f, I({0, 1}, {2}), {NAN, false}), "opl: gamma must be");
}

}  // namespace
}  // namespace ember::testing
