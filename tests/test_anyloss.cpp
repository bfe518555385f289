// AnyLoss: worked examples A1-A4 of anyloss.md, every metric against plain-Python values,
// gradchecks, the custom-metric path, linearity of the accuracy loss in q, saturation and the
// error paths.
#include <cmath>

#include "ember/losses/anyloss.h"
#include "harness.h"

namespace ember::testing {
namespace {

using losses::anyloss;
using losses::AnyLossOptions;
using losses::Metric;
using losses::SoftConfusion;

// The batch of examples A1-A3.
Tensor a1_p(bool grad = true) { return T({0.7, 0.2, 0.45, 0.55, 0.4}, {5}, grad); }
Tensor a1_y() { return T({1, 0, 1, 0, 0}, {5}, false); }

AnyLossOptions opts(Metric m, double amplifier, double beta = 1.0, int64_t fixed_n = 0) {
  AnyLossOptions o;
  o.metric = m;
  o.amplifier = amplifier;
  o.beta = beta;
  o.fixed_n = fixed_n;
  return o;
}

OpFn with(AnyLossOptions o) {
  return [o](const std::vector<Tensor>& in) { return anyloss(in[0], in[1], o); };
}

// The squared G-mean surrogate of the extension repo, 1 - TP TN / (P N), as a custom metric.
Tensor g_squared(const SoftConfusion& c) { return c.tp * c.tn / ((c.tp + c.fn) * (c.tn + c.fp)); }

std::vector<OpCase> anyloss_cases() {
  Tensor p = a1_p(), y = a1_y();
  auto s = [](double v) { return scalar_tensor(v, kFloat64); };
  AnyLossOptions custom;
  custom.amplifier = 10;
  custom.custom = g_squared;
  // Expected values: anyloss.md (A1-A3) and, for the metrics it does not list, the same
  // plain-Python computation (checked against finite differences there). Every row also checks
  // the second derivative (create_graph), built-in metrics and the custom path alike.
  return with_gradgradcheck({
      {"A1_accuracy", with(opts(Metric::accuracy, 10)), {p, y}, s(0.33609778)},
      {"A1_f1", with(opts(Metric::f_beta, 10)), {p, y}, s(0.40038672)},
      {"A1_f05", with(opts(Metric::f_beta, 10, 0.5)), {p, y}, s(0.41682376)},
      {"A1_f2", with(opts(Metric::f_beta, 10, 2.0)), {p, y}, s(0.38299624)},
      {"A1_g_mean", with(opts(Metric::g_mean, 10)), {p, y}, s(0.34252348)},
      {"A1_balanced_accuracy", with(opts(Metric::balanced_accuracy, 10)), {p, y}, s(0.34188667)},
      {"A1_precision", with(opts(Metric::precision, 10)), {p, y}, s(0.4272901188)},
      {"A1_recall", with(opts(Metric::recall, 10)), {p, y}, s(0.3708311266)},
      {"A1_specificity", with(opts(Metric::specificity, 10)), {p, y}, s(0.3129422086)},
      {"A1_mcc", with(opts(Metric::mcc, 10)), {p, y}, s(0.6878638825)},
      {"A1_custom_g_squared", with(custom), {p, y}, s(0.56772462)},
      {"A2_accuracy", with(opts(Metric::accuracy, 73)), {p, y}, s(0.39000203)},
      {"A2_f1", with(opts(Metric::f_beta, 73)), {p, y}, s(0.48742033)},
      {"A2_g_mean", with(opts(Metric::g_mean, 73)), {p, y}, s(0.41178990)},
      {"A2_balanced_accuracy", with(opts(Metric::balanced_accuracy, 73)), {p, y}, s(0.40622400)},
      {"A2_mcc", with(opts(Metric::mcc, 73)), {p, y}, s(0.8124585391)},
      {"A3_accuracy", with(opts(Metric::accuracy, 10, 1.0, 100)), {p, y}, s(0.01680489)},
      {"A3_f1", with(opts(Metric::f_beta, 10, 1.0, 100)), {p, y}, s(0.40038672)},
      {"A3_g_mean", with(opts(Metric::g_mean, 10, 1.0, 100)), {p, y}, s(0.21060687)},
      {"A3_balanced_accuracy", with(opts(Metric::balanced_accuracy, 10, 1.0, 100)), {p, y}, s(0.19020550)},
      {"A3_mcc", with(opts(Metric::mcc, 10, 1.0, 100)), {p, y}, s(0.4082684250)},
      {"column_shape_N1",
       with(opts(Metric::f_beta, 10)),
       {p.detach().view({5, 1}).requires_grad_(), y.view({5, 1})},
       s(0.40038672)},
  });
}
EMBER_OP_SUITE(AnyLoss, anyloss_cases);

// d loss / d p for one configuration.
Tensor grad_p(const AnyLossOptions& o, const Tensor& p_values = a1_p(false), const Tensor& y = a1_y()) {
  Tensor p = p_values.detach().clone().requires_grad_();
  anyloss(p, y, o).backward();
  return p.grad();
}

TEST(AnyLoss, A1GradientsWrtP) {
  auto v = [](std::vector<double> g) { return tensor<double>(g, {5}); };
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::accuracy, 10)),
                            v({-0.209987, 0.090353, -0.470007, 0.470007, 0.393224}), 1e-6));
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::f_beta, 10)),
                            v({-0.350312, 0.064540, -0.784091, 0.335730, 0.280883}), 1e-6));
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::g_mean, 10)),
                            v({-0.274294, 0.072053, -0.613943, 0.374809, 0.313578}), 1e-6));
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::balanced_accuracy, 10)),
                            v({-0.262484, 0.075294, -0.587509, 0.391673, 0.327687}), 1e-6));
  // Metrics beyond the paper's four (plain-Python finite differences).
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::precision, 10)),
                            v({-0.20418464, 0.11775687, -0.45701981, 0.61255748, 0.51248599}), 1e-6));
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::recall, 10)), v({-0.52496793, 0, -1.17501856, 0, 0}), 1e-6));
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::specificity, 10)),
                            v({0, 0.15058887, 0, 0.78334571, 0.65537311}), 1e-6));
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::mcc, 10)),
                            v({-0.50206135, 0.15557526, -1.12374751, 0.80928436, 0.67707425}), 1e-6));
}

TEST(AnyLoss, A1GradientsWrtLogits) {
  // p = sigmoid(z): the chain rule through the model's own sigmoid.
  std::vector<double> z;
  for (double p : {0.7, 0.2, 0.45, 0.55, 0.4}) z.push_back(std::log(p / (1 - p)));
  for (auto [metric, want] :
       {std::pair{Metric::f_beta, std::vector<double>{-0.073565, 0.010326, -0.194063, 0.083093, 0.067412}},
        std::pair{Metric::balanced_accuracy,
                  std::vector<double>{-0.055122, 0.012047, -0.145409, 0.096939, 0.078645}}}) {
    Tensor zt = T(z, {5});
    anyloss(sigmoid(zt), a1_y(), opts(metric, 10)).backward();
    EXPECT_TRUE(tensors_close(zt.grad(), tensor<double>(want, {5}), 1e-6));
  }
}

TEST(AnyLoss, A2OnlySamplesNearHalfLearn) {
  Tensor g = grad_p(opts(Metric::f_beta, 73));
  EXPECT_TRUE(tensors_close(g, tensor<double>({-1.2e-5, 0, -0.670133, 0.230935, 0.006310}, {5}), 1e-6));
  // p = 0.2 is confidently right and saturated: its gradient is ~1e-9 of the others.
  EXPECT_LT(std::abs(g.to_vector<double>()[1]), 1e-8);
}

TEST(AnyLoss, A3FixedNShrinksNegativeGradients) {
  EXPECT_TRUE(tensors_close(grad_p(opts(Metric::balanced_accuracy, 10, 1.0, 100)),
                            tensor<double>({-0.262484, 0.002305, -0.587509, 0.011990, 0.010031}, {5}), 1e-6));
  // F1 has no TN, so a fixed n changes nothing.
  EXPECT_TRUE(
      tensors_close(grad_p(opts(Metric::f_beta, 10, 1.0, 100)), grad_p(opts(Metric::f_beta, 10)), 1e-12));
}

TEST(AnyLoss, A4NoPositives) {
  Tensor p = T({0.6, 0.2, 0.4}, {3}), y = T({0, 0, 0}, {3}, false);
  // F1: TP = 0, so the metric is 0 and the loss is exactly 1 with an exactly zero gradient.
  Tensor f1 = anyloss(p, y, opts(Metric::f_beta, 10));
  EXPECT_EQ(f1.item<double>(), 1.0);
  f1.backward();
  EXPECT_TRUE(tensors_close(p.grad(), zeros({3}, kFloat64), 0));
  EXPECT_NEAR(anyloss(p, y, opts(Metric::accuracy, 10)).item<double>(), 0.34914196, 1e-8);
  // G-mean and balanced accuracy divide by the number of positives: 0/0 = NaN, as in the paper.
  EXPECT_TRUE(std::isnan(anyloss(p, y, opts(Metric::g_mean, 10)).item<double>()));
  EXPECT_TRUE(std::isnan(anyloss(p, y, opts(Metric::balanced_accuracy, 10)).item<double>()));
  EXPECT_TRUE(std::isnan(anyloss(p, y, opts(Metric::recall, 10)).item<double>()));
  // S_q is the one number the example gives for the cells.
  AnyLossOptions o;
  o.amplifier = 10;
  double s_q = 0;
  o.custom = [&](const SoftConfusion& c) {
    s_q = (c.tp + c.fp).item<double>();
    EXPECT_EQ(c.tp.item<double>(), 0.0);
    EXPECT_EQ(c.fn.item<double>(), 0.0);
    return c.tp;
  };
  anyloss(p.detach(), y, o);
  EXPECT_NEAR(s_q, 1.04742587, 1e-8);
}

TEST(AnyLoss, A1SoftConfusionCells) {
  AnyLossOptions o;
  o.amplifier = 10;
  std::vector<double> cells;
  o.custom = [&](const SoftConfusion& c) {
    for (const Tensor* t : {&c.tp, &c.fn, &c.fp, &c.tn}) {
      EXPECT_EQ(t->dim(), 0);
      cells.push_back(t->item<double>());
    }
    return c.tp;
  };
  anyloss(a1_p(), a1_y(), o);
  EXPECT_TRUE(tensors_close(tensor<double>(cells, {4}),
                            tensor<double>({1.25833775, 0.74166225, 0.93882663, 2.06117337}, {4}), 1e-8));
}

// A custom metric that spells out a built-in one gives the same value and gradient: the
// soft-confusion node and the closed forms agree.
TEST(AnyLoss, CustomMetricMatchesBuiltIn) {
  Tensor p = R({9}, 0.3, 0.7, 31, false), y = T({1, 0, 0, 1, 1, 0, 1, 0, 0}, {9}, false);
  struct Case {
    Metric metric;
    std::function<Tensor(const SoftConfusion&)> fn;
  };
  std::vector<Case> cases = {
      {Metric::accuracy, [](const SoftConfusion& c) { return (c.tp + c.tn) / (c.tp + c.fn + c.fp + c.tn); }},
      {Metric::f_beta, [](const SoftConfusion& c) { return 2.0 * c.tp / (2.0 * c.tp + c.fn + c.fp); }},
      {Metric::g_mean,
       [](const SoftConfusion& c) { return sqrt(c.tp / (c.tp + c.fn) * c.tn / (c.tn + c.fp)); }},
      {Metric::mcc,
       [](const SoftConfusion& c) {
         return (c.tp * c.tn - c.fp * c.fn) /
                sqrt((c.tp + c.fp) * (c.tp + c.fn) * (c.tn + c.fp) * (c.tn + c.fn));
       }},
  };
  for (const Case& c : cases) {
    AnyLossOptions custom = opts(c.metric, 20);
    custom.custom = c.fn;
    Tensor p1 = p.clone().requires_grad_(), p2 = p.clone().requires_grad_();
    Tensor built_in = anyloss(p1, y, opts(c.metric, 20)), via_custom = anyloss(p2, y, custom);
    EXPECT_NEAR(built_in.item<double>(), via_custom.item<double>(), 1e-12) << static_cast<int>(c.metric);
    built_in.backward();
    via_custom.backward();
    EXPECT_TRUE(tensors_close(p1.grad(), p2.grad(), 1e-10)) << static_cast<int>(c.metric);
  }
}

// The accuracy loss is linear in q: 1 - (n - S_y - S_q + 2 S_yq) / n.
TEST(AnyLoss, AccuracyIsLinearInQ) {
  const double big_l = 15;
  auto q_of = [&](double p) { return 1 / (1 + std::exp(-big_l * (p - 0.5))); };
  auto p_of = [&](double q) { return 0.5 + std::log(q / (1 - q)) / big_l; };  // the inverse of A
  std::vector<double> p1 = {0.3, 0.55, 0.48, 0.62, 0.41, 0.5}, p2 = {0.51, 0.35, 0.6, 0.45, 0.58, 0.44};
  Tensor y = T({1, 0, 1, 0, 0, 1}, {6}, false);
  auto loss = [&](const std::vector<double>& p) {
    return anyloss(T(p, {6}, false), y, opts(Metric::accuracy, big_l)).item<double>();
  };
  for (double lambda : {0.0, 0.25, 0.7, 1.0}) {
    std::vector<double> p3;
    for (size_t i = 0; i < p1.size(); ++i)
      p3.push_back(p_of(lambda * q_of(p1[i]) + (1 - lambda) * q_of(p2[i])));
    EXPECT_NEAR(loss(p3), lambda * loss(p1) + (1 - lambda) * loss(p2), 1e-12) << lambda;
  }
  // ... so d loss / d q_i is the constant (1 - 2 y_i) / n.
  Tensor g = grad_p(opts(Metric::accuracy, big_l), T(p1, {6}, false), y);
  std::vector<double> gv = g.to_vector<double>(), yv = y.to_vector<double>();
  for (size_t i = 0; i < p1.size(); ++i) {
    double dq_dp = big_l * q_of(p1[i]) * (1 - q_of(p1[i]));
    EXPECT_NEAR(gv[i] / dq_dp, (1 - 2 * yv[i]) / 6.0, 1e-12);
  }
}

TEST(AnyLoss, Float32SaturatedSlopeIsNotZero) {
  // At p = 0.999, t = 73 * 0.499 = 36.4: in float32 sigmoid(t) rounds to 1 and q - q^2 would be 0,
  // but the slope e^-t / (1 + e^-t)^2 is representable; it must survive.
  Tensor p64 = T({0.999, 0.3, 0.52, 0.47}, {4}, false), y = T({0, 0, 1, 1}, {4}, false);
  Tensor g64 = grad_p(opts(Metric::accuracy, 73), p64, y);
  Tensor g32 = grad_p(opts(Metric::accuracy, 73), p64.to(kFloat32), y.to(kFloat32));
  double exact = g64.to_vector<double>()[0], got = g32.to_vector<double>()[0];
  EXPECT_GT(got, 0.0);
  EXPECT_NEAR(got / exact, 1.0, 1e-4);
  EXPECT_TRUE(tensors_close(g32.to(kFloat64), g64, 1e-5));
}

TEST(AnyLoss, DefaultsAreF1WithAmplifier73) {
  AnyLossOptions o;
  EXPECT_EQ(o.metric, Metric::f_beta);
  EXPECT_EQ(o.beta, 1.0);
  EXPECT_EQ(o.amplifier, 73.0);
  EXPECT_NEAR(anyloss(a1_p(false), a1_y()).item<double>(), 0.48742033, 1e-8);  // = A2's F1
}

TEST(AnyLoss, NaNProbabilityGivesNaN) {
  Tensor p = T({0.7, NAN, 0.45}, {3}, false), y = T({1, 0, 1}, {3}, false);
  EXPECT_TRUE(std::isnan(anyloss(p, y).item<double>()));
}

TEST(AnyLoss, Errors) {
  Tensor p = a1_p(false), y = a1_y();
  EMBER_EXPECT_THROW_MSG(anyloss(zeros({4, 3}, kFloat64), zeros({4, 3}, kFloat64)),
                         "anyloss: probabilities have shape [4,3]; expected [N] or [N,1]");
  EMBER_EXPECT_THROW_MSG(anyloss(p, T({1, 0}, {2}, false)), "anyloss: target has shape [2]");
  EMBER_EXPECT_THROW_MSG(anyloss(p, I({1, 0, 1, 0, 0}, {5})), "anyloss: target must be a float tensor");
  EMBER_EXPECT_THROW_MSG(anyloss(I({1, 0}, {2}), y), "anyloss: probabilities must be float32 or float64");
  EMBER_EXPECT_THROW_MSG(
      anyloss(T({2.5, -0.3, 0.5}, {3}, false), T({1, 0, 1}, {3}, false)),
      "anyloss: probabilities must lie in [0, 1] (pass sigmoid(logits), not logits); 2 of 3");
  EMBER_EXPECT_THROW_MSG(anyloss(p, T({1, 0, 2, 0, 0}, {5}, false)), "anyloss: target must hold 0/1 labels");
  EMBER_EXPECT_THROW_MSG(anyloss(p, y, opts(Metric::f_beta, 0)), "anyloss: amplifier must be positive");
  EMBER_EXPECT_THROW_MSG(anyloss(p, y, opts(Metric::f_beta, 10, -1)), "anyloss: beta must be positive");
  EMBER_EXPECT_THROW_MSG(anyloss(p, y, opts(Metric::f_beta, 10, 1, 3)),
                         "anyloss: fixed_n = 3 is smaller than the batch size 5");
  EMBER_EXPECT_THROW_MSG(anyloss(p, y, opts(Metric::f_beta, 10, 1, -2)), "anyloss: fixed_n must be 0");
  EMBER_EXPECT_THROW_MSG(anyloss(zeros({0}, kFloat64), zeros({0}, kFloat64)), "anyloss: empty batch");
  EMBER_EXPECT_THROW_MSG(anyloss(p, y, opts(static_cast<Metric>(42), 10)), "anyloss: unknown metric 42");
  AnyLossOptions bad;
  bad.custom = [](const SoftConfusion& c) { return (c.tp + c.fn).reshape({1}).expand({2}); };
  EMBER_EXPECT_THROW_MSG(anyloss(p, y, bad),
                         "anyloss: the custom metric must return a floating tensor with one "
                         "element, got float64 [2]");
}

}  // namespace
}  // namespace ember::testing
