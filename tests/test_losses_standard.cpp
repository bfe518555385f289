// The standard losses against PyTorch's formulas, evaluated by hand (the numbers below were
// worked out from the formulas in each comment, independently of ember), plus gradcheck for every
// option that changes the math, edge cases and error messages.
#include <ember/losses/standard.h>

#include <cmath>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

using losses::Reduction;
const double kInf = std::numeric_limits<double>::infinity();

// Logits shared by the classification rows: lse(row 0) - 2 = 0.464368784108 and
// lse(row 1) - 3 = 0.065883903757 for targets (1, 2).
Tensor logits() { return T({1, 2, 0.5, 0, -1, 3}, {2, 3}); }
Tensor classes() { return I({1, 2}, {2}); }
Tensor class_weight() { return T({0.2, 1.0, 3.0}, {3}, false); }
Tensor scalar(double v) { return scalar_tensor(v, kFloat64); }

// PyTorch's class-id cross-entropy written out directly, for [N, C, d] logits: per position
// (1 - eps) w_y (lse - x_y) + (eps / C) sum_c w_c (lse - x_c), ignored positions 0, and the mean
// divided by the sum of w_y over the positions that are not ignored.
double ce_reference_mean(const Tensor& logits, const std::vector<int64_t>& y, const std::vector<double>& w,
                         double eps, int64_t ignore_index) {
  const int64_t N = logits.size(0), C = logits.size(1), D = logits.numel() / (N * C);
  std::vector<double> x = logits.to_vector<double>();
  double total = 0, divisor = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t target = y[n * D + d];
      if (target == ignore_index) continue;
      auto at = [&](int64_t c) { return x[(n * C + c) * D + d]; };
      double m = -kInf, z = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, at(c));
      for (int64_t c = 0; c < C; ++c) z += std::exp(at(c) - m);
      const double lse = m + std::log(z);
      double smooth = 0;
      for (int64_t c = 0; c < C; ++c) smooth += w[c] * (lse - at(c));
      total += (1 - eps) * w[target] * (lse - at(target)) + eps / static_cast<double>(C) * smooth;
      divisor += w[target];
    }
  return total / divisor;
}

OpFn ce(losses::CrossEntropyOptions o = {}) {
  return [o](const std::vector<Tensor>& in) {
    losses::CrossEntropyOptions here = o;
    here.weight = on_device_of(o.weight, in[0]);
    return losses::cross_entropy(in[0], in[1], here);
  };
}

std::vector<OpCase> cross_entropy_cases() {
  losses::CrossEntropyOptions weighted{class_weight()}, smoothed{{}, -100, 0.1},
      both{class_weight(), -100, 0.1};
  losses::CrossEntropyOptions ignore2{{}, 2}, none{}, sum{};
  none.reduction = Reduction::none;
  sum.reduction = Reduction::sum;
  losses::CrossEntropyOptions both_none = both;
  both_none.reduction = Reduction::none;
  return with_gradgradcheck({
      {"mean", ce(), {logits(), classes()}, scalar(0.265126343933)},
      {"sum", ce(sum), {logits(), classes()}, scalar(0.530252687865)},
      {"none", ce(none), {logits(), classes()}, tensor<double>({0.464368784108, 0.065883903757}, {2})},
      // weighted mean: (1.0 * 0.4643... + 3.0 * 0.0658...) / (1.0 + 3.0), the weights of the targets
      {"weight_mean", ce(weighted), {logits(), classes()}, scalar(0.165505123845)},
      // ignored rows contribute 0 and leave the divisor
      {"ignore_index_default", ce(), {logits(), I({1, -100}, {2})}, scalar(0.464368784108)},
      {"ignore_index_in_range", ce(ignore2), {logits(), classes()}, scalar(0.464368784108)},
      // (1 - eps) nll + (eps / C) sum_c (lse - x_c), eps = 0.1
      {"label_smoothing", ce(smoothed), {logits(), classes()}, scalar(0.423459677266)},
      // with weights: (1 - eps) w_y nll + (eps / C) sum_c w_c (lse - x_c), divided by sum w_y = 4
      {"label_smoothing_weight", ce(both), {logits(), classes()}, scalar(0.245013455536)},
      {"label_smoothing_weight_none",
       ce(both_none),
       {logits(), classes()},
       tensor<double>({0.639610202139, 0.340443620004}, {2})},
      // [N, C, d]: the same two rows as positions d = 0, 1 of one example
      {"spatial",
       ce(none),
       {T({1, 0, 2, -1, 0.5, 3}, {1, 3, 2}), I({1, 2}, {1, 2})},
       tensor<double>({0.464368784108, 0.065883903757}, {1, 2})},
      {"unbatched", ce(), {T({1, 2, 0.5}, {3}), I({1}, {})}, scalar(0.464368784108)},
      // class probabilities: -sum_c t_c log_softmax(x)_c, mean over the N positions
      {"probabilities", ce(), {logits(), T({0.2, 0.5, 0.3, 0, 0, 1}, {2, 3})}, scalar(0.590126343933)},
      {"probabilities_weight_smoothing",
       ce(both),
       {logits(), T({0.2, 0.5, 0.3, 0, 0, 1}, {2, 3})},
       scalar(1.207471930325)},
      {"random_spatial_weight_smoothing",
       ce(both),
       {R({2, 3, 2, 2}, -2, 2, 3), I({0, 1, 2, 2, 1, 0, -100, 1}, {2, 2, 2})},
       scalar(ce_reference_mean(R({2, 3, 2, 2}, -2, 2, 3), {0, 1, 2, 2, 1, 0, -100, 1}, {0.2, 1.0, 3.0}, 0.1,
                                -100))},
  });
}
EMBER_OP_SUITE(CrossEntropy, cross_entropy_cases);

TEST(CrossEntropy, BackwardIsSoftmaxMinusOneHotOverN) {
  Tensor x = R({5, 7}, -3, 3, 4);
  std::vector<int64_t> y = {0, 6, 3, 3, 2};
  losses::cross_entropy(x, I(y, {5})).backward();
  std::vector<double> xv = x.to_vector<double>(), g = x.grad().to_vector<double>();
  for (int n = 0; n < 5; ++n) {
    double z = 0;
    for (int c = 0; c < 7; ++c) z += std::exp(xv[n * 7 + c]);
    for (int c = 0; c < 7; ++c)
      EXPECT_NEAR(g[n * 7 + c], (std::exp(xv[n * 7 + c]) / z - (c == y[n])) / 5, 1e-14);
  }
}

TEST(CrossEntropy, Float32LargeRowsMatchFloat64) {
  Tensor x = R({64, 1000}, -20, 20, 5, false);
  std::vector<int64_t> y;
  for (int n = 0; n < 64; ++n) y.push_back((n * 37) % 1000);
  Tensor x64 = x.clone().requires_grad_(true), x32 = x.to(kFloat32).requires_grad_(true);
  Tensor l64 = losses::cross_entropy(x64, I(y, {64})), l32 = losses::cross_entropy(x32, I(y, {64}));
  EXPECT_NEAR(l32.item<float>(), l64.item<double>(), 1e-5 * l64.item<double>());
  l64.backward();
  l32.backward();
  EXPECT_TRUE(tensors_close(x32.grad().to(kFloat64), x64.grad(), 1e-7));
}

// ---- float32 accuracy on confident rows ----
// The softmax and the loss must come from (x - max) and log(sum) kept apart: a float32
// lse = max + log(sum) is only good to ulp(max) in absolute terms, which for a row like
// (70, 58, 50) is larger than the loss itself (6.1e-6). The reference evaluates PyTorch's
// formulas in long double on the same float32 values.
struct CEReference {
  std::vector<double> loss;  // per position
  std::vector<double> grad;  // d (sum of the losses) / d logits, in the logits' layout
};
// [N, C, D] logits; class-id targets (`probs` empty) or class probabilities with the logits'
// layout (`y` empty).
CEReference ce_reference_ld(const std::vector<float>& x, int64_t N, int64_t C, int64_t D,
                            const std::vector<int64_t>& y, const std::vector<double>& probs,
                            const std::vector<double>& w, double eps, int64_t ignore_index = -100) {
  CEReference r{std::vector<double>(N * D), std::vector<double>(N * C * D)};
  using LD = long double;
  LD W = 0;
  for (int64_t c = 0; c < C; ++c) W += w[c];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t pos = n * D + d;
      auto at = [&](int64_t c) { return (n * C + c) * D + d; };
      if (probs.empty() && y[pos] == ignore_index) continue;
      LD m = -INFINITY, s = 0;
      for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<LD>(x[at(c)]));
      for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<LD>(x[at(c)]) - m);
      const LD lse = m + std::log(s);
      // per class: the coefficient t_c of (lse - x_c) in the loss; the gradient is p_c sum(t) - t_c
      std::vector<LD> t(C);
      for (int64_t c = 0; c < C; ++c) {
        if (probs.empty())
          t[c] = (1 - static_cast<LD>(eps)) * w[c] * (c == y[pos]) + static_cast<LD>(eps) / C * w[c];
        else
          t[c] = w[c] * (probs[at(c)] * (1 - static_cast<LD>(eps)) + static_cast<LD>(eps) / C);
      }
      LD loss = 0, total = 0;
      for (int64_t c = 0; c < C; ++c) loss += t[c] * (lse - x[at(c)]), total += t[c];
      r.loss[pos] = static_cast<double>(loss);
      for (int64_t c = 0; c < C; ++c)
        r.grad[at(c)] = static_cast<double>(std::exp(static_cast<LD>(x[at(c)]) - lse) * total - t[c]);
    }
  return r;
}

// Every element within `rel` of the reference, relative to that element.
::testing::AssertionResult elementwise_close(const Tensor& actual, const std::vector<double>& expected,
                                             double rel) {
  const std::vector<double> a = actual.to(kFloat64).to_vector<double>();
  if (a.size() != expected.size()) return ::testing::AssertionFailure() << "size " << a.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a[i] - expected[i]) <= rel * std::abs(expected[i])))
      return ::testing::AssertionFailure()
             << "element " << i << ": " << a[i] << " vs " << expected[i] << " (relative error "
             << std::abs(a[i] / expected[i] - 1) << ", allowed " << rel << ")";
  return ::testing::AssertionSuccess();
}

// A few float32 ulps, relative: float64 truth rounded to float32 is 2^-24 away at most.
constexpr double kFewUlps = 4.0 / (1 << 24);

TEST(CrossEntropy, Float32ConfidentRowKeepsRelativeAccuracy) {
  // the reported case: ember gave 7.629e-6 (24% off), PyTorch float32 6.199e-6
  const std::vector<float> xv = {70, 58, 50};
  Tensor x = tensor<float>(xv, {1, 3}).requires_grad_(true);
  Tensor loss = losses::cross_entropy(x, I({0}, {1}));
  const CEReference ref = ce_reference_ld(xv, 1, 3, 1, {0}, {}, {1, 1, 1}, 0.0);
  EXPECT_NEAR(ref.loss[0], 6.146254618773388e-06, 1e-10 * ref.loss[0]);  // float64 PyTorch
  EXPECT_NEAR(loss.item<float>(), ref.loss[0], kFewUlps * ref.loss[0]);
  loss.backward();
  EXPECT_TRUE(elementwise_close(x.grad(), ref.grad, 1e-6));
  // softmax - onehot sums to 0: its two large terms (p_y ~ 1 and the 1) cancel exactly, so the
  // float32 sum is left with the rounding of the small terms only (ember used to give -1.5e-6)
  const std::vector<double> g = x.grad().to_vector<double>();
  EXPECT_LE(std::abs(g[0] + g[1] + g[2]), 1e-7 * std::abs(g[0]));
}

TEST(CrossEntropy, Float32ConfidentRowsAllOptions) {
  // [N = 2, C = 4, d = 3] (the strided kernel path) and the same rows as [6, 4] (the contiguous
  // one), with class weights, label smoothing, an ignored position and spreads up to 81 (the
  // float32 exp flushes results below FLT_MIN, e^-87.3, to 0: ops/cpu/vector_math.h).
  const std::vector<float> rows = {70, 58, 50, 61,   -20, -33, -35.5, -98, 3, 3, 3, 3,
                                   80, 0,  -1, 79.5, 12,  40,  39,    -40, 5, 2, 1, 0};
  const std::vector<int64_t> y = {0, 0, 2, 0, 1, -100};
  const std::vector<double> w = {0.5, 2.0, 1.0, 1.5};
  std::vector<float> spatial(rows.size());  // [n, c, d] = rows[n * 3 + d][c]
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t d = 0; d < 3; ++d) spatial[(n * 4 + c) * 3 + d] = rows[(n * 3 + d) * 4 + c];
  for (double eps : {0.0, 0.1}) {
    for (bool weighted : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "eps " << eps << " weighted " << weighted);
      const std::vector<double> wv = weighted ? w : std::vector<double>{1, 1, 1, 1};
      losses::CrossEntropyOptions o;
      if (weighted) o.weight = tensor<float>({0.5f, 2.0f, 1.0f, 1.5f}, {4});
      o.label_smoothing = eps;
      o.reduction = Reduction::none;
      const CEReference ref = ce_reference_ld(rows, 6, 4, 1, y, {}, wv, eps);
      Tensor x = tensor<float>(rows, {6, 4}).requires_grad_(true);
      Tensor loss = losses::cross_entropy(x, I(y, {6}), o);
      EXPECT_TRUE(elementwise_close(loss, ref.loss, kFewUlps));
      loss.sum().backward();
      EXPECT_TRUE(elementwise_close(x.grad(), ref.grad, 1e-6));
      const std::vector<double> g = x.grad().to_vector<double>();
      for (int64_t r = 0; r < 6; ++r) {
        double sum = 0, scale = 0;
        for (int64_t c = 0; c < 4; ++c) sum += g[r * 4 + c], scale = std::max(scale, std::abs(g[r * 4 + c]));
        EXPECT_LE(std::abs(sum), 1e-6 * scale) << "row " << r;
      }

      const CEReference sref = ce_reference_ld(spatial, 2, 4, 3, y, {}, wv, eps);
      Tensor xs = tensor<float>(spatial, {2, 4, 3}).requires_grad_(true);
      Tensor sloss = losses::cross_entropy(xs, I(y, {2, 3}), o);
      EXPECT_TRUE(elementwise_close(sloss, sref.loss, kFewUlps));
      sloss.sum().backward();
      EXPECT_TRUE(elementwise_close(xs.grad(), sref.grad, 1e-6));
      // the mean: sum of the losses / sum of the targets' weights
      o.reduction = Reduction::mean;
      double total = 0, divisor = 0;
      for (size_t i = 0; i < y.size(); ++i)
        if (y[i] != -100) total += ref.loss[i], divisor += wv[y[i]];
      EXPECT_NEAR(losses::cross_entropy(xs.detach(), I(y, {2, 3}), o).item<float>(), total / divisor,
                  kFewUlps * total / divisor);
    }
  }
}

TEST(CrossEntropy, Float32ConfidentRowsProbabilityTargets) {
  // class probabilities: a one-hot (the class-id case again) and a soft target, both confident
  // (the soft one exact in float32, 1 - 2^-10 and 2^-10, so that the targets sum to 1 exactly)
  const std::vector<float> xv = {70, 58, 50, -20, -33, -35.5};
  const std::vector<double> probs = {1, 0, 0, 1 - 1.0 / 1024, 1.0 / 1024, 0};
  for (double eps : {0.0, 0.1}) {
    SCOPED_TRACE(::testing::Message() << "eps " << eps);
    const CEReference ref = ce_reference_ld(xv, 2, 3, 1, {}, probs, {1, 1, 1}, eps);
    Tensor x = tensor<float>(xv, {2, 3}).requires_grad_(true);
    losses::CrossEntropyOptions o;
    o.label_smoothing = eps;
    o.reduction = Reduction::none;
    Tensor loss = losses::cross_entropy(x, tensor<double>(probs, {2, 3}).to(kFloat32), o);
    EXPECT_TRUE(elementwise_close(loss, ref.loss, kFewUlps));
    loss.sum().backward();
    EXPECT_TRUE(elementwise_close(x.grad(), ref.grad, 1e-5));
    const std::vector<double> g = x.grad().to_vector<double>();
    for (int r = 0; r < 2; ++r) EXPECT_LE(std::abs(g[r * 3] + g[r * 3 + 1] + g[r * 3 + 2]), 1e-7);
  }
}

TEST(CrossEntropy, EdgeCases) {
  // all positions ignored: mean is 0 / 0 = NaN (PyTorch), sum is 0, and no gradient flows
  Tensor x = logits();
  EXPECT_TRUE(std::isnan(losses::cross_entropy(x, I({-100, -100}, {2})).item<double>()));
  losses::CrossEntropyOptions sum;
  sum.reduction = Reduction::sum;
  Tensor s = losses::cross_entropy(x, I({-100, -100}, {2}), sum);
  EXPECT_EQ(s.item<double>(), 0.0);
  s.backward();
  EXPECT_TRUE(tensors_close(x.grad(), zeros({2, 3}, kFloat64), 0.0));
  // one class: log_softmax is 0, so is the loss
  EXPECT_EQ(losses::cross_entropy(T({5, -2}, {2, 1}), I({0, 0}, {2})).item<double>(), 0.0);
  // a -inf logit (a masked class) is harmless and gets gradient 0 ...
  Tensor masked = T({0, -kInf, 1}, {1, 3});
  Tensor l = losses::cross_entropy(masked, I({0}, {1}));
  EXPECT_NEAR(l.item<double>(), std::log(1 + std::exp(1.0)), 1e-12);
  l.backward();
  EXPECT_EQ(masked.grad().to_vector<double>()[1], 0.0);
  // ... unless label smoothing puts probability on it: then the loss is +inf, as in PyTorch
  losses::CrossEntropyOptions smooth{{}, -100, 0.1};
  EXPECT_EQ(losses::cross_entropy(T({0, -kInf, 1}, {1, 3}), I({0}, {1}), smooth).item<double>(), kInf);
  // NaN logits propagate
  EXPECT_TRUE(std::isnan(losses::cross_entropy(T({0, NAN, 1}, {1, 3}), I({0}, {1})).item<double>()));
  // large logits do not overflow
  EXPECT_NEAR(losses::cross_entropy(T({1000, 0, -1000}, {1, 3}), I({1}, {1})).item<double>(), 1000.0, 1e-9);
  // an empty batch: mean NaN
  EXPECT_TRUE(
      std::isnan(losses::cross_entropy(zeros({0, 3}, kFloat64), tensor<int64_t>(std::vector<int64_t>{}, {0}))
                     .item<double>()));
}

TEST(CrossEntropy, Errors) {
  Tensor x = logits();
  EMBER_EXPECT_THROW_MSG(
      losses::cross_entropy(x, I({1, 3}, {2})),
      "cross_entropy: target 3 at position 1 is out of range for 3 classes (valid: 0..2 or "
      "ignore_index -100)");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(x, I({-1, 0}, {2})), "cross_entropy: target -1 at position 0");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(x, I({1, 2, 0}, {3})),
                         "cross_entropy: target shape [3] does not match scores [2,3]: expected [2]");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(x, T({0, 1}, {2})),
                         "cross_entropy: target must hold int64 class ids");
  EMBER_EXPECT_THROW_MSG(
      losses::cross_entropy(x, I({0, 1, 2, 0, 1, 2}, {2, 3})),
      "cross_entropy: target [2,3] has the logits' shape, so it must hold class probabilities");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(I({0, 1, 2, 0, 1, 2}, {2, 3}), classes()),
                         "cross_entropy: logits must be floating point");
  EMBER_EXPECT_THROW_MSG(
      losses::cross_entropy(x, classes(), {T({1, 1}, {2}, false)}),
      "cross_entropy: weight must be a 1-D tensor with one entry per class ([3]), got [2]");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(x, classes(), {T({1, 1, 1}, {3}, true)}),
                         "cross_entropy: weight requires grad");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(x, classes(), {{}, -100, 1.5}),
                         "cross_entropy: label_smoothing must be in [0, 1], got 1.5");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(x, T({0.2, 0.5, 0.3, 0, 0, 1}, {2, 3}), {{}, 0}),
                         "cross_entropy: ignore_index 0 applies to class-id targets only");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(zeros({2, 0}, kFloat64), I({0, 0}, {2})),
                         "cross_entropy: logits of shape [2,0] have no classes");
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(scalar(1.0), I({0}, {})),
                         "cross_entropy: logits must be [N, C]");
}

// ---- nll_loss --------------------------------------------------------------------------------

std::vector<OpCase> nll_cases() {
  Tensor lp = T({-1.2, -0.5, -2.0, -0.1, -3.0, -2.5}, {2, 3});
  auto nll = [](losses::NLLOptions o) {
    return [o](const std::vector<Tensor>& in) {
      losses::NLLOptions here = o;
      here.weight = on_device_of(o.weight, in[0]);
      return losses::nll_loss(in[0], in[1], here);
    };
  };
  losses::NLLOptions none, weighted{T({1, 2, 0.5}, {3}, false)}, ignore{{}, 0};
  none.reduction = Reduction::none;
  return with_gradgradcheck({
      {"mean", nll({}), {lp, I({2, 0}, {2})}, scalar(1.05)},
      {"none", nll(none), {lp, I({2, 0}, {2})}, tensor<double>({2.0, 0.1}, {2})},
      // (0.5 * 2.0 + 1 * 0.1) / (0.5 + 1)
      {"weight_mean", nll(weighted), {lp, I({2, 0}, {2})}, scalar(1.1 / 1.5)},
      {"ignore_index", nll(ignore), {lp, I({2, 0}, {2})}, scalar(2.0)},
      {"spatial",
       nll(none),
       {T({-1.2, -0.1, -0.5, -3.0, -2.0, -2.5}, {1, 3, 2}), I({2, 0}, {1, 2})},
       tensor<double>({2.0, 0.1}, {1, 2})},
  });
}
EMBER_OP_SUITE(NLLLoss, nll_cases);

TEST(NLLLoss, ErrorsAndIgnoredRows) {
  Tensor lp = T({-1.2, -0.5, -2.0, -0.1, -3.0, -2.5}, {2, 3});
  EMBER_EXPECT_THROW_MSG(losses::nll_loss(lp, I({2, 5}, {2})),
                         "nll_loss: target 5 at position 1 is out of range");
  EMBER_EXPECT_THROW_MSG(losses::nll_loss(lp, I({2}, {1})),
                         "nll_loss: target shape [1] does not match scores [2,3]");
  EXPECT_TRUE(std::isnan(losses::nll_loss(lp, I({-100, -100}, {2})).item<double>()));
  losses::nll_loss(lp, I({-100, 1}, {2})).backward();
  EXPECT_TRUE(tensors_close(lp.grad(), tensor<double>({0, 0, 0, 0, -1, 0}, {2, 3}), 0.0));
}

// ---- binary cross-entropy ------------------------------------------------------------------

Tensor bce_logits() { return T({0.5, -1.0, 2.0, -3.0, 0.0, 1.5}, {2, 3}); }
Tensor bce_targets() { return T({1, 0, 1, 0, 1, 0.3}, {2, 3}); }

std::vector<OpCase> bce_cases() {
  auto bcel = [](losses::BCEWithLogitsOptions o) {
    return [o](const std::vector<Tensor>& in) {
      losses::BCEWithLogitsOptions here = o;
      here.weight = on_device_of(o.weight, in[0]);
      here.pos_weight = on_device_of(o.pos_weight, in[0]);
      return losses::binary_cross_entropy_with_logits(in[0], in[1], here);
    };
  };
  auto bce = [](losses::BCEOptions o) {
    return [o](const std::vector<Tensor>& in) {
      losses::BCEOptions here = o;
      here.weight = on_device_of(o.weight, in[0]);
      return losses::binary_cross_entropy(in[0], in[1], here);
    };
  };
  // weight [2, 1] scales the rows; pos_weight [3] the positive term of each column
  losses::BCEWithLogitsOptions wpw{T({1, 2}, {2, 1}, false), T({1, 2, 0.5}, {3}, false)}, none, wpw_sum = wpw;
  none.reduction = Reduction::none;
  wpw_sum.reduction = Reduction::sum;
  losses::BCEOptions bce_sum{T({1, 2, 0.5, 1}, {4}, false), Reduction::sum};
  return with_gradgradcheck({
      // -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]
      {"with_logits_none",
       bcel(none),
       {bce_logits(), bce_targets()},
       tensor<double>(
           {0.474076984180, 0.313261687518, 0.126928011043, 0.048587351574, 0.693147180560, 1.251413277983},
           {2, 3})},
      {"with_logits_mean", bcel({}), {bce_logits(), bce_targets()}, scalar(0.484569082143)},
      // -w [pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]
      {"with_logits_weight_pos_weight", bcel(wpw), {bce_logits(), bce_targets()}, scalar(1.027161445863)},
      {"with_logits_weight_pos_weight_sum",
       bcel(wpw_sum),
       {bce_logits(), bce_targets()},
       scalar(6.162968675178)},
      // the weights are differentiable here too (a plain composite)
      {"with_logits_grad_weights",
       [](const std::vector<Tensor>& in) {
         return losses::binary_cross_entropy_with_logits(in[0], in[1], {in[2], in[3]});
       },
       {bce_logits(), bce_targets(), T({1, 2}, {2, 1}), T({1, 2, 0.5}, {3})},
       scalar(1.027161445863)},
      {"probs_mean",
       bce({}),
       {T({0.9, 0.2, 0.5, 0.3}, {4}), T({1, 0, 0.5, 0.8}, {4})},
       scalar(0.514041119945)},
      {"probs_weight_sum",
       bce(bce_sum),
       {T({0.9, 0.2, 0.5, 0.3}, {4}), T({1, 0, 0.5, 0.8}, {4})},
       scalar(1.932734440815)},
  });
}
EMBER_OP_SUITE(BinaryCrossEntropy, bce_cases);

TEST(BinaryCrossEntropy, LogitsAreStableForLargeMagnitudes) {
  // log(1 - sigmoid(800)) is -800, not log(0)
  Tensor x = T({800, -800}, {2});
  Tensor l = losses::binary_cross_entropy_with_logits(x, T({0, 1}, {2}, false), {{}, {}, Reduction::none});
  EXPECT_TRUE(tensors_close(l, tensor<double>({800, 800}, {2}), 1e-12));
  l.sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), tensor<double>({1, -1}, {2}), 1e-12));
}

TEST(BinaryCrossEntropy, ProbabilitiesClampLikePyTorch) {
  // log clamped at -100: p = 0 with y = 1 costs 100, p = 1 with y = 1 costs 0
  Tensor p = T({0.0, 1.0, 0.0, 1.0}, {4});
  Tensor l = losses::binary_cross_entropy(p, T({1, 1, 0, 0}, {4}), {{}, Reduction::none});
  EXPECT_TRUE(tensors_close(l, tensor<double>({100, 0, 0, 100}, {4}), 0.0));
  // backward (p - y) / max(p (1 - p), 1e-12): finite at the ends
  l.sum().backward();
  EXPECT_TRUE(tensors_close(p.grad(), tensor<double>({-1e12, 0, 0, 1e12}, {4}), 1e-12));
  // the target gradient is log(1 - p) - log(p) with the same clamps
  Tensor y = T({0.3}, {1});
  losses::binary_cross_entropy(T({0.2}, {1}, false), y).backward();
  EXPECT_NEAR(y.grad().item<double>(), std::log(0.8) - std::log(0.2), 1e-12);
}

TEST(BinaryCrossEntropy, TargetGradientIsUnclampedLikePyTorch) {
  // d/dy = log(1 - p) - log(p) without the loss's -100 clamps (torch 1.13: -logit(p)): +-inf at
  // p = 0 and 1, and 115.13 (not 100) at p = 1e-50
  Tensor y = T({0, 1, 0, 0.3}, {4});
  losses::binary_cross_entropy(T({0.0, 1.0, 1e-50, 0.2}, {4}, false), y, {{}, Reduction::sum}).backward();
  EXPECT_TRUE(tensors_close(
      y.grad(), tensor<double>({kInf, -kInf, 115.12925464970229, 1.3862943611198906}, {4}), 1e-12));
  // weighted and averaged: w / N times the same
  Tensor y2 = T({0.5, 0.5}, {2});
  losses::binary_cross_entropy(T({1e-50, 0.2}, {2}, false), y2, {T({2, 3}, {2}, false)}).backward();
  EXPECT_TRUE(
      tensors_close(y2.grad(), tensor<double>({115.12925464970229, 1.5 * 1.3862943611198906}, {2}), 1e-12));
}

TEST(BinaryCrossEntropy, Errors) {
  EMBER_EXPECT_THROW_MSG(losses::binary_cross_entropy(T({0.5, 1.5}, {2}), T({0, 1}, {2})),
                         "binary_cross_entropy: every element of probs must lie in [0, 1]");
  EMBER_EXPECT_THROW_MSG(losses::binary_cross_entropy(T({0.5, NAN}, {2}), T({0, 1}, {2})),
                         "must lie in [0, 1]");
  EMBER_EXPECT_THROW_MSG(losses::binary_cross_entropy(T({0.5, 0.5}, {2}), T({0, 1, 1}, {3})),
                         "binary_cross_entropy: probs [2] and target [3] must have the same shape");
  EMBER_EXPECT_THROW_MSG(
      losses::binary_cross_entropy_with_logits(bce_logits(), I({1, 0, 1, 0, 1, 0}, {2, 3})),
      "binary_cross_entropy_with_logits: target must be floating point, got int64");
  EMBER_EXPECT_THROW_MSG(
      losses::binary_cross_entropy_with_logits(bce_logits(), bce_targets(), {{}, T({1, 2}, {2}, false)}),
      "binary_cross_entropy_with_logits: pos_weight of shape [2] does not broadcast to the input's shape "
      "[2,3]");
  EMBER_EXPECT_THROW_MSG(losses::binary_cross_entropy(T({0.5}, {1}), T({1}, {1}), {T({1}, {1}, true)}),
                         "binary_cross_entropy: weight requires grad");
}

// ---- regression -------------------------------------------------------------------------------

std::vector<OpCase> regression_cases() {
  // d = x - y = (0.5, -3, 0.25, 1.8)
  Tensor x = T({1.0, -2.0, 0.75, 3.0}, {2, 2}), y = T({0.5, 1.0, 0.5, 1.2}, {2, 2});
  auto f = [](auto loss) { return [loss](const std::vector<Tensor>& in) { return loss(in[0], in[1]); }; };
  return with_gradgradcheck({
      {"mse_mean",
       f([](const Tensor& a, const Tensor& b) { return losses::mse_loss(a, b); }),
       {x, y},
       scalar((0.25 + 9 + 0.0625 + 3.24) / 4)},
      {"mse_none",
       f([](const Tensor& a, const Tensor& b) { return losses::mse_loss(a, b, {Reduction::none}); }),
       {x, y},
       tensor<double>({0.25, 9, 0.0625, 3.24}, {2, 2})},
      {"l1_sum",
       f([](const Tensor& a, const Tensor& b) { return losses::l1_loss(a, b, {Reduction::sum}); }),
       {x, y},
       scalar(0.5 + 3 + 0.25 + 1.8)},
      // beta = 1: 0.5 d^2 inside, |d| - 0.5 outside
      {"smooth_l1_mean",
       f([](const Tensor& a, const Tensor& b) { return losses::smooth_l1_loss(a, b); }),
       {x, y},
       scalar((0.125 + 2.5 + 0.03125 + 1.3) / 4)},
      // beta = 0.4: 0.5 d^2 / 0.4 inside (only d = 0.25), |d| - 0.2 outside
      {"smooth_l1_beta",
       f([](const Tensor& a, const Tensor& b) {
         return losses::smooth_l1_loss(a, b, {Reduction::none, 0.4});
       }),
       {x, y},
       tensor<double>({0.3, 2.8, 0.078125, 1.6}, {2, 2})},
      {"smooth_l1_beta0_is_l1",
       f([](const Tensor& a, const Tensor& b) {
         return losses::smooth_l1_loss(a, b, {Reduction::sum, 0.0});
       }),
       {x, y},
       scalar(5.55)},
  });
}
EMBER_OP_SUITE(Regression, regression_cases);

TEST(Regression, Errors) {
  EMBER_EXPECT_THROW_MSG(losses::mse_loss(T({1, 2}, {2}), T({1, 2}, {2, 1})),
                         "mse_loss: input [2] and target [2,1] must have the same shape");
  EMBER_EXPECT_THROW_MSG(losses::l1_loss(I({1, 2}, {2}), T({1, 2}, {2})),
                         "l1_loss: input must be floating point");
  EMBER_EXPECT_THROW_MSG(losses::smooth_l1_loss(T({1}, {1}), T({1}, {1}), {Reduction::mean, -1.0}),
                         "smooth_l1_loss: beta must be a finite number >= 0, got -1");
}

// ---- kl_div and kd_loss --------------------------------------------------------------------------

Tensor kl_input() {
  return T({std::log(0.2), std::log(0.3), std::log(0.5), std::log(0.1), std::log(0.6), std::log(0.3)},
           {2, 3});
}

std::vector<OpCase> kl_cases() {
  auto kl = [](losses::KLDivOptions o) {
    return [o](const std::vector<Tensor>& in) { return losses::kl_div(in[0], in[1], o); };
  };
  using R = losses::KLDivReduction;
  // a zero target contributes exactly 0 (0 log 0 = 0)
  Tensor t = T({0.25, 0.25, 0.5, 0, 0.5, 0.5}, {2, 3});
  Tensor positive = T({0.25, 0.25, 0.5, 0.2, 0.4, 0.4}, {2, 3});
  Tensor log_positive =
      T({std::log(0.25), std::log(0.25), std::log(0.5), std::log(0.2), std::log(0.4), std::log(0.4)}, {2, 3});
  double positive_sum = 0.25 * std::log(0.25 / 0.2) + 0.25 * std::log(0.25 / 0.3) +
                        0.5 * std::log(0.5 / 0.5) + 0.2 * std::log(0.2 / 0.1) + 0.4 * std::log(0.4 / 0.6) +
                        0.4 * std::log(0.4 / 0.3);
  return with_gradgradcheck({
      {"none",
       kl({R::none}),
       {kl_input(), t},
       tensor<double>({0.055785887829, -0.045580389198, 0, 0, -0.091160778397, 0.255412811883}, {2, 3}),
       1e-6,
       false},  // the zero target's d/dt is NaN (PyTorch's); gradcheck runs on the rows below
      {"sum", kl({R::sum}), {kl_input(), t.detach()}, scalar(0.174457532116)},
      {"mean", kl({R::mean}), {kl_input(), t.detach()}, scalar(0.029076255353)},
      {"batchmean", kl({R::batchmean}), {kl_input(), t.detach()}, scalar(0.087228766058)},
      {"batchmean_positive_target", kl({R::batchmean}), {kl_input(), positive}, scalar(positive_sum / 2)},
      {"log_target", kl({R::sum, true}), {kl_input(), log_positive}, scalar(positive_sum)},
  });
}
EMBER_OP_SUITE(KLDiv, kl_cases);

std::vector<OpCase> kd_cases() {
  return with_gradgradcheck({
      // T^2 / N * sum_n KL(softmax(t_n / T) || softmax(s_n / T)), T = 2
      {"kd_T2",
       [](const std::vector<Tensor>& in) { return losses::kd_loss(in[0], in[1], {2.0}); },
       {T({1.0, -0.5, 2.0, 0.3, 0.1, -1.0}, {2, 3}), T({2.0, 0.0, 1.0, -1.0, 0.5, 0.2}, {2, 3})},
       scalar(0.438053612667)},
      // the same two rows as the positions of a [1, 3, 2] map
      {"kd_spatial",
       [](const std::vector<Tensor>& in) { return losses::kd_loss(in[0], in[1], {2.0}); },
       {T({1.0, 0.3, -0.5, 0.1, 2.0, -1.0}, {1, 3, 2}), T({2.0, -1.0, 0.0, 0.5, 1.0, 0.2}, {1, 3, 2})},
       scalar(0.438053612667)},
  });
}
EMBER_OP_SUITE(KnowledgeDistillation, kd_cases);

TEST(KnowledgeDistillation, StudentGradientIsTemperatureTimesProbabilityGap) {
  // d/ds = T^2 / N * (p - q) / T with p, q the tempered softmaxes
  Tensor s = T({1.0, -0.5, 2.0}, {1, 3}), t = T({2.0, 0.0, 1.0}, {1, 3}, false);
  losses::kd_loss(s, t, {3.0}).backward();
  auto softmax_of = [](std::vector<double> v, double T) {
    double z = 0;
    for (double& e : v) z += (e = std::exp(e / T));
    for (double& e : v) e /= z;
    return v;
  };
  std::vector<double> p = softmax_of({1.0, -0.5, 2.0}, 3.0), q = softmax_of({2.0, 0.0, 1.0}, 3.0);
  EXPECT_TRUE(tensors_close(
      s.grad(), tensor<double>({3 * (p[0] - q[0]), 3 * (p[1] - q[1]), 3 * (p[2] - q[2])}, {1, 3}), 1e-12));
  EXPECT_NEAR(losses::kd_loss(t, t, {3.0}).item<double>(), 0.0, 1e-15);  // identical logits: no divergence
}

TEST(KLDiv, TargetGradientMatchesPyTorchAtZeroTargets) {
  // torch 1.13 (xlogy(t, t) - t x): d/dt = log t + 1 - x, and NaN where t = 0 (its t / t; the
  // one-sided derivative is -inf); d/dx = -t
  Tensor x = T({-1, -2}, {2}), t = T({0, 0.5}, {2});
  Tensor loss = losses::kl_div(x, t, {losses::KLDivReduction::sum});
  EXPECT_NEAR(loss.item<double>(), 0.5 * (std::log(0.5) + 2), 1e-15);
  loss.backward();
  const std::vector<double> gt = t.grad().to_vector<double>();
  EXPECT_TRUE(std::isnan(gt[0]));
  EXPECT_NEAR(gt[1], std::log(0.5) + 1 + 2, 1e-15);  // 2.3068528194400546
  EXPECT_TRUE(tensors_close(x.grad(), tensor<double>({0, -0.5}, {2}), 0.0));
  // a negative target: NaN loss and NaN d/dt, as in PyTorch
  Tensor tn = T({-0.5, 0.5}, {2});
  Tensor ln = losses::kl_div(T({-1, -2}, {2}, false), tn, {losses::KLDivReduction::sum});
  EXPECT_TRUE(std::isnan(ln.item<double>()));
  ln.backward();
  EXPECT_TRUE(std::isnan(tn.grad().to_vector<double>()[0]));
  // kd_loss keeps finite teacher gradients where the teacher's softmax underflows to 0: the
  // softmax backward multiplies d/dq by q = 0, so the true limit of the gradient is used there
  Tensor s = T({0.5, -1, 2}, {1, 3}), teacher = T({0, -8000, 1}, {1, 3});
  losses::kd_loss(s, teacher, {4.0}).backward();
  for (double v : teacher.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
  for (double v : s.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
}

TEST(KnowledgeDistillation, Errors) {
  Tensor s = T({1, 2}, {1, 2});
  EMBER_EXPECT_THROW_MSG(losses::kd_loss(s, s, {0.0}),
                         "kd_loss: temperature must be a positive finite number, got 0");
  EMBER_EXPECT_THROW_MSG(losses::kd_loss(s, T({1, 2, 3}, {1, 3}), {}),
                         "kd_loss: student_logits [1,2] and target [1,3] must have the same shape");
  EMBER_EXPECT_THROW_MSG(losses::kl_div(T({1, 2}, {2}), T({1}, {1})), "kl_div: log_input [2] and target [1]");
}

// ---- comp-sum family -----------------------------------------------------------------------------

std::vector<OpCase> comp_sum_cases() {
  // cce.md Ex 1: logits [[1, 0, 1], [0, 1, 1]], targets (0, 2): nll = 0.861994804 on both rows
  Tensor x = T({1, 0, 1, 0, 1, 1}, {2, 3});
  Tensor y = I({0, 2}, {2});
  return with_gradgradcheck({
      {"sum_exponential",
       [](const std::vector<Tensor>& in) { return losses::sum_exponential_loss(in[0], in[1]); },
       {x, y},
       scalar(1.367879441)},  // 1 + 1/e
      {"gce_q05",
       [](const std::vector<Tensor>& in) { return losses::generalized_cross_entropy(in[0], in[1], 0.5); },
       {x, y},
       scalar(0.700278802)},
      {"mae",
       [](const std::vector<Tensor>& in) { return losses::mae_loss(in[0], in[1]); },
       {x, y},
       scalar(0.577681202)},
      // on the shared logits (nll 0.4644, 0.0659): mean of (1 - exp(-0.7 nll)) / 0.7
      {"gce_q07",
       [](const std::vector<Tensor>& in) { return losses::generalized_cross_entropy(in[0], in[1], 0.7); },
       {logits(), classes()},
       scalar(0.2304186321510305)},
      {"mae_2",
       [](const std::vector<Tensor>& in) { return losses::mae_loss(in[0], in[1]); },
       {logits(), classes()},
       scalar(0.21761436445586602)},
      {"sum_exponential_2",
       [](const std::vector<Tensor>& in) { return losses::sum_exponential_loss(in[0], in[1]); },
       {logits(), classes()},
       scalar(0.3295561542882355)},
  });
}
EMBER_OP_SUITE(CompSum, comp_sum_cases);

TEST(CompSum, GradientIsCrossEntropyGradientScaledByPowerOfPy) {
  // d l_tau / dz = p_y^(tau - 1) (p - onehot), per row (cce.md)
  Tensor x = R({3, 4}, -2, 2, 8, false);
  Tensor y = I({1, 3, 0}, {3});
  std::vector<double> xv = x.to_vector<double>();
  for (double tau : {0.0, 1.5, 2.0}) {
    Tensor xs = x.clone().requires_grad_(true);
    Tensor loss = tau == 0.0   ? losses::sum_exponential_loss(xs, y)
                  : tau == 2.0 ? losses::mae_loss(xs, y)
                               : losses::generalized_cross_entropy(xs, y, tau - 1.0);
    loss.backward();
    std::vector<double> g = xs.grad().to_vector<double>();
    for (int n = 0; n < 3; ++n) {
      double z = 0;
      for (int c = 0; c < 4; ++c) z += std::exp(xv[n * 4 + c]);
      double py = std::exp(xv[n * 4 + y.to_vector<int64_t>()[n]]) / z;
      for (int c = 0; c < 4; ++c) {
        double expected =
            std::pow(py, tau - 1) * (std::exp(xv[n * 4 + c]) / z - (c == y.to_vector<int64_t>()[n])) / 3;
        EXPECT_NEAR(g[n * 4 + c], expected, 1e-13) << "tau " << tau;
      }
    }
  }
}

TEST(CompSum, Errors) {
  EMBER_EXPECT_THROW_MSG(losses::generalized_cross_entropy(logits(), classes(), 0.0),
                         "generalized_cross_entropy: q must be a positive finite number, got 0");
  // no ignore index here: -100 is simply out of range
  EMBER_EXPECT_THROW_MSG(losses::mae_loss(logits(), I({1, -100}, {2})),
                         "mae_loss: target -100 at position 1 is out of range for 3 classes (valid: 0..2)");
  EMBER_EXPECT_THROW_MSG(losses::sum_exponential_loss(logits(), I({1}, {1})),
                         "sum_exponential_loss: target shape");
}

// ---- reduce_loss -----------------------------------------------------------------------------

TEST(ReduceLoss, AllReductions) {
  Tensor v = T({1, 2, 6}, {3}, false);
  EXPECT_TRUE(losses::reduce_loss(v, Reduction::none).is_same(v));
  EXPECT_EQ(losses::reduce_loss(v, Reduction::sum).item<double>(), 9.0);
  EXPECT_EQ(losses::reduce_loss(v, Reduction::mean).item<double>(), 3.0);
  EXPECT_TRUE(std::isnan(losses::reduce_loss(zeros({0}, kFloat64), Reduction::mean).item<double>()));
  EXPECT_EQ(losses::reduce_loss(zeros({0}, kFloat64), Reduction::sum).item<double>(), 0.0);
}

}  // namespace
}  // namespace ember::testing
