// Tri-BCE (FCN): worked example T1 of fcn_tribce.md, gradchecks, the detached variant, the
// "equals BCE" property, saturation, NaN and the error paths.
#include <cmath>

#include "ember/losses/tri_bce.h"
#include "harness.h"

namespace ember::testing {
namespace {

using losses::tri_bce;
using losses::TriBCEOptions;

// Plain-loop mean BCE, the reference for the properties.
double bce_mean(const std::vector<double>& z, const std::vector<double>& y) {
  double s = 0;
  for (size_t i = 0; i < z.size(); ++i)
    s += std::max(z[i], 0.0) - z[i] * y[i] + std::log1p(std::exp(-std::abs(z[i])));
  return s / static_cast<double>(z.size());
}

// FCN's wiring: the fused logit is the mean of the two tower logits.
Tensor fcn_tri_bce(const Tensor& z_d, const Tensor& z_s, const Tensor& y, bool detach = false) {
  return tri_bce((z_d + z_s) * 0.5, z_d, z_s, y, TriBCEOptions{detach});
}

std::vector<OpCase> tri_bce_cases() {
  Tensor z_d = T({2.0, -0.5}, {2}), z_s = T({0.5, 1.0}, {2}), y2 = T({1, 0}, {2}, false);
  // Independent inputs: tower a active (worse than fused), tower b inactive.
  Tensor f = T({0.3, -1.2, 2.0, 0.1, -0.4, 0.9}, {2, 3});
  Tensor a = T({-0.8, 0.4, 1.1, 1.5, 0.2, -0.7}, {2, 3});
  Tensor b = T({0.5, -1.5, 2.2, -0.3, -0.9, 1.4}, {2, 3});
  Tensor y6 = T({1, 0, 1, 0, 0, 1}, {2, 3}, false);
  // Both sub-losses large, so the coefficient on dL, 1 - L_a - L_b, is negative.
  Tensor big_a = T({-3.0, 2.5, -2.0, 3.0, 1.0, -2.5}, {2, 3});
  Tensor big_b = T({-2.0, 3.5, -1.5, 2.0, 2.0, -3.0}, {2, 3});
  Tensor soft = T({0.9, 0.1, 0.7, 0.3, 0.0, 1.0}, {2, 3}, false);
  auto indep = [](bool detach) {
    return [detach](const std::vector<Tensor>& in) { return tri_bce(in[0], in[1], in[2], in[3], {detach}); };
  };
  auto expected = [](const Tensor& f, const Tensor& a, const Tensor& b, const Tensor& y) {
    auto yv = y.to_vector<double>();
    double l = bce_mean(f.to_vector<double>(), yv), la = bce_mean(a.to_vector<double>(), yv),
           lb = bce_mean(b.to_vector<double>(), yv);
    return scalar_tensor(l + std::max(la - l, 0.0) * la + std::max(lb - l, 0.0) * lb, kFloat64);
  };
  return with_gradgradcheck({
      // T1: L_tri = 0.85595012 (w_D inactive, w_S = 0.35473509).
      {"T1_fcn_wiring",
       [](const std::vector<Tensor>& in) { return fcn_tri_bce(in[0], in[1], in[2]); },
       {z_d, z_s, y2},
       scalar_tensor(0.85595012, kFloat64)},
      {"independent_inputs", indep(false), {f, a, b, y6}, expected(f, a, b, y6)},
      {"negative_dL_coefficient", indep(false), {f, big_a, big_b, y6}, expected(f, big_a, big_b, y6)},
      {"soft_targets", indep(false), {f, a, b, soft}, expected(f, a, b, soft)},
      // The detached variant has the same value; its gradient is not the derivative of the value
      // (checked separately below), so no gradcheck.
      {"detached_value", indep(true), {f, a, b, y6}, expected(f, a, b, y6), 1e-6, false},
  });
}
EMBER_OP_SUITE(TriBCE, tri_bce_cases);

TEST(TriBCE, T1Parts) {
  // With both towers equal to the fused logits, tri_bce is the plain BCE L of the example.
  Tensor z = T({1.25, 0.25}, {2}, false), y = T({1, 0}, {2}, false);
  EXPECT_NEAR(tri_bce(z, z, z, y).item<double>(), 0.53893425, 1e-8);
  Tensor zd = T({2.0, -0.5}, {2}, false), zs = T({0.5, 1.0}, {2}, false);
  EXPECT_NEAR(tri_bce(zd, zd, zd, y).item<double>(), 0.30050250, 1e-8);  // L_D
  EXPECT_NEAR(tri_bce(zs, zs, zs, y).item<double>(), 0.89366934, 1e-8);  // L_S
}

TEST(TriBCE, T1GradientsReferenceCode) {
  Tensor z_d = T({2.0, -0.5}, {2}), z_s = T({0.5, 1.0}, {2}), y = T({1, 0}, {2}, false);
  fcn_tri_bce(z_d, z_s, y).backward();
  EXPECT_TRUE(tensors_close(z_d.grad(), tensor<double>({-0.00591996, 0.01494415}, {2}), 1e-7));
  EXPECT_TRUE(tensors_close(z_s.grad(), tensor<double>({-0.24158168, 0.47127253}, {2}), 1e-7));
}

TEST(TriBCE, T1GradientsDetached) {
  Tensor z_d = T({2.0, -0.5}, {2}), z_s = T({0.5, 1.0}, {2}), y = T({1, 0}, {2}, false);
  fcn_tri_bce(z_d, z_s, y, true).backward();
  EXPECT_TRUE(tensors_close(z_d.grad(), tensor<double>({-0.05567503, 0.14054413}, {2}), 1e-7));
  EXPECT_TRUE(tensors_close(z_s.grad(), tensor<double>({-0.12263850, 0.27021019}, {2}), 1e-7));
}

// The detached gradient is the derivative of L + w_a L_a + w_b L_b with w frozen at the current
// point: compare it with central differences of that surrogate.
TEST(TriBCE, DetachedMatchesFrozenWeightSurrogate) {
  std::vector<double> f = {0.3, -1.2, 2.0, 0.1}, a = {-0.8, 0.4, 1.1, 1.5}, b = {0.5, -1.5, 2.2, -0.3};
  std::vector<double> y = {1, 0, 1, 0};
  double l = bce_mean(f, y), wa = std::max(bce_mean(a, y) - l, 0.0), wb = std::max(bce_mean(b, y) - l, 0.0);
  ASSERT_GT(wa, 0.0);  // the example exercises an active weight
  auto surrogate = [&](const std::vector<double>& f, const std::vector<double>& a,
                       const std::vector<double>& b) {
    return bce_mean(f, y) + wa * bce_mean(a, y) + wb * bce_mean(b, y);
  };
  Tensor tf = T(f, {4}), ta = T(a, {4}), tb = T(b, {4});
  tri_bce(tf, ta, tb, T(y, {4}, false), {true}).backward();
  std::vector<std::vector<double>> x = {f, a, b};
  const Tensor* grads[3] = {&tf, &ta, &tb};
  for (int k = 0; k < 3; ++k) {
    std::vector<double> analytic = grads[k]->grad().to_vector<double>();
    for (size_t i = 0; i < 4; ++i) {
      auto plus = x, minus = x;
      plus[k][i] += 1e-6;
      minus[k][i] -= 1e-6;
      double numeric =
          (surrogate(plus[0], plus[1], plus[2]) - surrogate(minus[0], minus[1], minus[2])) / 2e-6;
      EXPECT_NEAR(analytic[i], numeric, 1e-8) << "input " << k << " element " << i;
    }
  }
}

// Detached weights are constants to every order, as w.detach() in PyTorch: differentiating the
// gradient again gives the frozen-weight surrogate's Hessian, diagonal with entries
// c_k sigmoid'(z_k[i]) / N (c = 1, w_a, w_b). (gradgradcheck does not apply: its finite differences
// re-run the forward, which re-freezes the weights at each perturbed point.)
TEST(TriBCE, DetachedSecondDerivativeKeepsTheWeightsFrozen) {
  std::vector<double> f = {0.3, -1.2, 2.0, 0.1}, a = {-0.8, 0.4, 1.1, 1.5}, b = {0.5, -1.5, 2.2, -0.3};
  std::vector<double> y = {1, 0, 1, 0}, u = {1.0, -2.0, 0.5, 3.0};
  const double l = bce_mean(f, y), wa = std::max(bce_mean(a, y) - l, 0.0),
               wb = std::max(bce_mean(b, y) - l, 0.0);
  ASSERT_GT(wa, 0.0);
  std::vector<Tensor> z = {T(f, {4}), T(a, {4}), T(b, {4})};
  const OpFn detached = [&](const std::vector<Tensor>& in) {
    return tri_bce(in[0], in[1], in[2], T(y, {4}, false), {true});
  };
  EXPECT_TRUE(recorded_gradients_match(detached, z));
  Tensor loss = tri_bce(z[0], z[1], z[2], T(y, {4}, false), {true});
  std::vector<Tensor> g = autograd::grad({loss}, z, {}, {}, /*create_graph=*/true);
  Tensor gu =
      (g[0] * T(u, {4}, false)).sum() + (g[1] * T(u, {4}, false)).sum() + (g[2] * T(u, {4}, false)).sum();
  std::vector<Tensor> h = autograd::grad({gu}, z);
  const double coef[3] = {1.0, wa, wb};
  const std::vector<double>* x[3] = {&f, &a, &b};
  for (int k = 0; k < 3; ++k) {
    std::vector<double> expected(4);
    for (size_t i = 0; i < 4; ++i) {
      const double p = 1.0 / (1.0 + std::exp(-(*x[k])[i]));
      expected[i] = coef[k] * p * (1 - p) / 4.0 * u[i];
    }
    EXPECT_TRUE(tensors_close(h[k], tensor<double>(expected, {4}), 1e-12)) << "input " << k;
  }
}

TEST(TriBCE, EqualsBCEWhenTowersEqualFused) {
  Tensor z = R({3, 4}, -3, 3, 7), y = (R({3, 4}, 0, 1, 8, false) > 0.5).to(kFloat64);
  double bce = bce_mean(z.to_vector<double>(), y.to_vector<double>());
  Tensor a = z.detach().clone().requires_grad_(), b = z.detach().clone().requires_grad_();
  Tensor loss = tri_bce(z, a, b, y);
  EXPECT_NEAR(loss.item<double>(), bce, 1e-12);
  loss.backward();
  // L_a == L exactly: the weights are inactive, so only the fused logits get dL = (sigmoid - y) / N.
  Tensor dl = (sigmoid(z.detach()) - y) / 12.0;
  EXPECT_TRUE(tensors_close(z.grad(), dl, 1e-12));
  EXPECT_TRUE(tensors_close(a.grad(), zeros({3, 4}, kFloat64), 0));
  EXPECT_TRUE(tensors_close(b.grad(), zeros({3, 4}, kFloat64), 0));
  // The same tensor passed three times accumulates exactly dL too.
  Tensor w = z.detach().clone().requires_grad_();
  tri_bce(w, w, w, y).backward();
  EXPECT_TRUE(tensors_close(w.grad(), dl, 1e-12));
}

TEST(TriBCE, TowersBetterThanFusedGiveBCE) {
  // Both towers beat the fused logits: w_a = w_b = 0 and tri_bce = L, towers get no gradient.
  Tensor y = T({1, 0, 1}, {3}, false);
  Tensor f = T({0.1, 0.2, -0.3}, {3}), a = T({3.0, -3.0, 2.0}, {3}), b = T({2.0, -2.5, 4.0}, {3});
  Tensor loss = tri_bce(f, a, b, y);
  EXPECT_NEAR(loss.item<double>(), bce_mean({0.1, 0.2, -0.3}, {1, 0, 1}), 1e-12);
  loss.backward();
  EXPECT_TRUE(tensors_close(a.grad(), zeros({3}, kFloat64), 0));
  EXPECT_TRUE(tensors_close(b.grad(), zeros({3}, kFloat64), 0));
}

TEST(TriBCE, Float32MatchesFloat64) {
  Tensor f = R({5, 7}, -2, 2, 11), a = R({5, 7}, -2, 2, 12), b = R({5, 7}, -2, 2, 13);
  Tensor y = (R({5, 7}, 0, 1, 14, false) > 0.5).to(kFloat64);
  Tensor ref = tri_bce(f, a, b, y);
  ref.backward();
  Tensor f32 = f.detach().to(kFloat32).requires_grad_(), a32 = a.detach().to(kFloat32).requires_grad_(),
         b32 = b.detach().to(kFloat32).requires_grad_();
  Tensor out = tri_bce(f32, a32, b32, y.to(kFloat32));
  EXPECT_EQ(out.dtype(), kFloat32);
  EXPECT_NEAR(out.item<double>(), ref.item<double>(), 1e-6);
  out.backward();
  EXPECT_TRUE(tensors_close(f32.grad().to(kFloat64), f.grad(), 1e-6));
  EXPECT_TRUE(tensors_close(a32.grad().to(kFloat64), a.grad(), 1e-6));
  EXPECT_TRUE(tensors_close(b32.grad().to(kFloat64), b.grad(), 1e-6));
}

TEST(TriBCE, SaturatedLogitsStayFinite) {
  // The logit form never evaluates log(0): bce(100, 0) = 100 and bce(-100, 0) = log1p(e^-100).
  Tensor z = T({100.0, -100.0}, {2}), y = T({0, 0}, {2}, false);
  Tensor loss = tri_bce(z, z, z, y);
  EXPECT_NEAR(loss.item<double>(), (100.0 + std::log1p(std::exp(-100.0))) / 2, 1e-12);
  loss.backward();
  EXPECT_TRUE(tensors_close(z.grad(), tensor<double>({0.5, 0.5 / (1 + std::exp(100.0))}, {2}), 1e-12));
  Tensor z32 = tensor<float>({80.f, -80.f}, {2});
  EXPECT_NEAR(tri_bce(z32, z32, z32, T({1, 0}, {2}, false).to(kFloat32)).item<double>(), 0.0, 1e-12);
}

TEST(TriBCE, NaNPropagates) {
  Tensor y = T({1, 0}, {2}, false), ok = T({0.5, -0.5}, {2}, false);
  Tensor bad = T({NAN, -0.5}, {2}, false);
  EXPECT_TRUE(std::isnan(tri_bce(bad, ok, ok, y).item<double>()));
  EXPECT_TRUE(std::isnan(tri_bce(ok, bad, ok, y).item<double>()));
  EXPECT_TRUE(std::isnan(tri_bce(ok, ok, bad, y).item<double>()));
}

TEST(TriBCE, NonContiguousInputs) {
  Tensor f = R({3, 2}, -1, 1, 21), a = R({3, 2}, -1, 1, 22), b = R({3, 2}, -1, 1, 23);
  Tensor y = T({1, 0, 0, 1, 1, 0}, {2, 3}, false);
  Tensor got = tri_bce(f.t(), a.t(), b.t(), y);
  Tensor want = tri_bce(f.t().contiguous(), a.t().contiguous(), b.t().contiguous(), y);
  EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-14);
  EXPECT_TRUE(passes_gradcheck(
      [&](const std::vector<Tensor>& in) { return tri_bce(in[0].t(), in[1].t(), in[2].t(), y); }, {f, a, b}));
}

TEST(TriBCE, Errors) {
  Tensor z = T({0.1, 0.2}, {2}, false), y = T({1, 0}, {2}, false);
  EMBER_EXPECT_THROW_MSG(tri_bce(z, T({0.1, 0.2, 0.3}, {3}, false), z, y), "tri_bce: logits_a has shape [3]");
  EMBER_EXPECT_THROW_MSG(tri_bce(z, z, T({0.1}, {1}, false), y), "tri_bce: logits_b has shape [1]");
  EMBER_EXPECT_THROW_MSG(tri_bce(z, z.to(kFloat32), z, y),
                         "tri_bce: logits_a is float32 but fused_logits is float64");
  EMBER_EXPECT_THROW_MSG(tri_bce(z, z, z, T({1, 0, 1}, {3}, false)), "tri_bce: target has shape [3]");
  EMBER_EXPECT_THROW_MSG(tri_bce(z, z, z, I({1, 0}, {2})), "tri_bce: target must be a float tensor");
  EMBER_EXPECT_THROW_MSG(tri_bce(z, z, z, T({1, 2}, {2}, false)), "tri_bce: target must hold 0/1 labels");
  EMBER_EXPECT_THROW_MSG(tri_bce(z, z, z, T({1, NAN}, {2}, false)), "1 of 2 entries are outside");
  EMBER_EXPECT_THROW_MSG(tri_bce(I({1, 0}, {2}), I({1, 0}, {2}), I({1, 0}, {2}), y),
                         "tri_bce: fused_logits must be float32 or float64");
  Tensor empty = zeros({0}, kFloat64);
  EMBER_EXPECT_THROW_MSG(tri_bce(empty, empty, empty, empty), "tri_bce: empty input (shape [0])");
  EMBER_EXPECT_THROW_MSG(tri_bce(Tensor(), z, z, y), "tri_bce");
}

}  // namespace
}  // namespace ember::testing
