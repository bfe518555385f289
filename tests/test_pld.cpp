// PLD (Plackett-Luce distillation): the spec's worked examples (/work/shared/papers/pld.md,
// checked there against the paper's Appendix C code), its properties, its edge cases, and a
// brute-force O(C^2) reference for random rows large enough to exercise the bucket sort.
#include <ember/losses/pld.h>
#include <ember/losses/standard.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "harness.h"
#include "losses/cpu/ranking.h"
#include "losses/cpu/row_ops.h"

namespace ember::testing {
namespace {

using losses::PLDOptions;
using losses::Reduction;

const double kInf = std::numeric_limits<double>::infinity();

// Straight from the definitions: target order, suffix log-sum-exps, class-space gradient
// dL/ds_i = sum_{k <= r(i)} alpha_k exp(s_i - Lambda_k) - alpha_{r(i)}.
struct RowReference {
  double loss = 0;
  std::vector<double> grad;
};
RowReference pld_reference(const std::vector<double>& s, const std::vector<double>& t, int64_t y,
                           double tau) {
  const int64_t C = static_cast<int64_t>(s.size());
  std::vector<int64_t> order;
  for (int64_t c = 0; c < C; ++c)
    if (c != y) order.push_back(c);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return t[a] > t[b]; });
  order.insert(order.begin(), y);
  double tmax = *std::max_element(t.begin(), t.end()), z = 0;
  for (double v : t) z += std::exp((v - tmax) / tau);
  std::vector<double> alpha(C), lambda(C);
  for (int64_t k = 0; k < C; ++k) alpha[k] = std::exp((t[order[k]] - tmax) / tau) / z;
  for (int64_t k = 0; k < C; ++k) {
    double m = -kInf, sum = 0;
    for (int64_t l = k; l < C; ++l) m = std::max(m, s[order[l]]);
    for (int64_t l = k; l < C; ++l) sum += std::exp(s[order[l]] - m);
    lambda[k] = m + std::log(sum);
  }
  RowReference ref;
  ref.grad.assign(C, 0.0);
  for (int64_t k = 0; k + 1 < C; ++k) ref.loss += alpha[k] * (lambda[k] - s[order[k]]);
  for (int64_t r = 0; r < C; ++r) {
    double g = -alpha[r];
    for (int64_t k = 0; k <= r; ++k) g += alpha[k] * std::exp(s[order[r]] - lambda[k]);
    ref.grad[order[r]] = g;
  }
  return ref;
}

// The reference for lane (n, i) of a dense [N, C, inner] student s and teacher t (flattened).
RowReference lane_reference(const std::vector<double>& s, const std::vector<double>& t, int64_t n, int64_t i,
                            int64_t C, int64_t inner, int64_t y, double tau) {
  std::vector<double> srow(C), trow(C);
  for (int64_t c = 0; c < C; ++c) {
    srow[c] = s[(n * C + c) * inner + i];
    trow[c] = t[(n * C + c) * inner + i];
  }
  return pld_reference(srow, trow, y, tau);
}

Tensor pld_fn(const std::vector<Tensor>& in, PLDOptions o = {}) {
  return losses::pld(in[0], in[1], in[2], o);
}

// ---- the spec's worked examples ----------------------------------------------------------------

Tensor e2_student() { return T({1.0, -0.5, 2.0, 0.0}, {1, 4}); }
Tensor e2_teacher() { return T({0.5, 3.0, 1.0, -1.0}, {1, 4}, false); }
Tensor e3_student() { return T({3.0, 1.0, -2.0, 0.5, 0.0}, {1, 5}); }
Tensor e3_teacher() { return T({1.0, 2.5, -1.0, 0.0, 2.0}, {1, 5}, false); }
Tensor batch_student() { return T({1.0, -0.5, 2.0, 0.0, 0, 0, 0, 0}, {2, 4}); }
Tensor batch_teacher() { return T({0.5, 3.0, 1.0, -1.0, 2, 1, 0, -1}, {2, 4}, false); }

std::vector<OpCase> worked_examples() {
  auto tau4 = [](const std::vector<Tensor>& in) { return pld_fn(in, {4.0}); };
  return with_gradgradcheck({
      {"E1",
       [](const std::vector<Tensor>& in) { return pld_fn(in); },
       {T({0, 0, 0}, {1, 3}), T({2, 1, 0}, {1, 3}, false), I({0}, {1})},
       scalar_tensor(0.900474739, kFloat64)},
      {"E2_teacher_wrong",
       [](const std::vector<Tensor>& in) { return pld_fn(in); },
       {e2_student(), e2_teacher(), I({2}, {1})},
       scalar_tensor(1.660906465, kFloat64)},
      {"E2_tau4", tau4, {e2_student(), e2_teacher(), I({2}, {1})}, scalar_tensor(0.960890261, kFloat64)},
      {"E3",
       [](const std::vector<Tensor>& in) { return pld_fn(in); },
       {e3_student(), e3_teacher(), I({4}, {1})},
       scalar_tensor(2.159775432, kFloat64)},
      {"batch_mean",
       [](const std::vector<Tensor>& in) { return pld_fn(in); },
       {batch_student(), batch_teacher(), I({2, 0}, {2})},
       scalar_tensor(1.437103693, kFloat64)},
      // the batch's rows: E2 = 1.660906465, so row 2 = 2 * 1.437103693 - 1.660906465
      {"batch_none",
       [](const std::vector<Tensor>& in) {
         return pld_fn(in, {1.0, Reduction::none});
       },
       {batch_student(), batch_teacher(), I({2, 0}, {2})},
       tensor<double>({1.660906465, 1.213300921}, {2})},
      {"batch_sum",
       [](const std::vector<Tensor>& in) {
         return pld_fn(in, {1.0, Reduction::sum});
       },
       {batch_student(), batch_teacher(), I({2, 0}, {2})},
       scalar_tensor(2.874207386, kFloat64)},
      // E2 shifted by +10: the invariance check of the spec
      {"E2_shifted",
       [](const std::vector<Tensor>& in) { return pld_fn(in); },
       {T({11.0, 9.5, 12.0, 10.0}, {1, 4}), e2_teacher(), I({2}, {1})},
       scalar_tensor(1.660906465, kFloat64)},
      // a dense [N, C, d] input: the rows are the (n, d) positions
      {"dense_none",
       [](const std::vector<Tensor>& in) {
         return pld_fn(in, {1.0, Reduction::none});
       },
       {T({1.0, 0.0, -0.5, 0.0, 2.0, 0.0, 0.0, 0.0}, {1, 4, 2}),
        T({0.5, 2, 3.0, 1, 1.0, 0, -1.0, -1}, {1, 4, 2}, false), I({2, 0}, {1, 2})},
       tensor<double>({1.660906465, 1.213300921}, {1, 2})},
      // tied teacher logits (smaller class index first), the true class among the ties, and a row of
      // all-equal teacher logits; values from the definition in PyTorch (stable descending sort)
      {"teacher_ties_none",
       [](const std::vector<Tensor>& in) {
         return pld_fn(in, {1.0, Reduction::none});
       },
       {T({0.3, -0.2, 1.1, 0.4, -0.7, 0.9, 1.0, 0.5, -0.5, 0.2, 0.0, -1.2}, {2, 6}),
        T({1.0, 2.0, 1.0, 2.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5}, {2, 6}, false), I({3, 4}, {2})},
       tensor<double>({1.5747279664, 0.8651463713}, {2})},
  });
}
EMBER_OP_SUITE(PLDWorkedExamples, worked_examples);

Tensor grad_of(const Tensor& student, const Tensor& teacher, const Tensor& target, PLDOptions o = {}) {
  Tensor s = student.detach().clone().requires_grad_(true);
  losses::pld(s, teacher, target, o).backward();
  return s.grad();
}

TEST(PLD, WorkedExampleGradients) {
  EXPECT_TRUE(tensors_close(grad_of(T({0, 0, 0}, {1, 3}), T({2, 1, 0}, {1, 3}), I({0}, {1})),
                            tensor<double>({-0.443493971, 0.099382750, 0.344111221}, {1, 3}), 1e-6));
  EXPECT_TRUE(tensors_close(grad_of(e2_student(), e2_teacher(), I({2}, {1})),
                            tensor<double>({0.516179155, -0.690073095, -0.040434521, 0.214328460}, {1, 4}),
                            1e-6));
  EXPECT_TRUE(tensors_close(grad_of(e2_student(), e2_teacher(), I({2}, {1}), {4.0}),
                            tensor<double>({0.249166974, -0.330063176, -0.089228339, 0.170124542}, {1, 4}),
                            1e-6));
  EXPECT_TRUE(tensors_close(
      grad_of(e3_student(), e3_teacher(), I({4}, {1})),
      tensor<double>({0.656450574, -0.424838665, 0.008403811, 0.060109860, -0.300125580}, {1, 5}), 1e-6));
  // batch: both rows carry the mean's 1/N
  EXPECT_TRUE(
      tensors_close(grad_of(batch_student(), batch_teacher(), I({2, 0}, {2})),
                    tensor<double>({0.516179155 / 2, -0.690073095 / 2, -0.040434521 / 2, 0.214328460 / 2,
                                    -0.241467847, 0.001528343, 0.098183672, 0.141755832},
                                   {2, 4}),
                    1e-6));
}

TEST(PLD, E1ClosedFormGradient) {
  // By hand: (-2 a1 / 3, a1 / 3 - a2 / 2, a1 / 3 + a2 / 2) with a = softmax(2, 1, 0).
  double z = std::exp(2.0) + std::exp(1.0) + 1.0, a1 = std::exp(2.0) / z, a2 = std::exp(1.0) / z;
  EXPECT_TRUE(tensors_close(grad_of(T({0, 0, 0}, {1, 3}), T({2, 1, 0}, {1, 3}), I({0}, {1})),
                            tensor<double>({-2 * a1 / 3, a1 / 3 - a2 / 2, a1 / 3 + a2 / 2}, {1, 3}), 1e-12));
  // L = a1 ln 3 + a2 ln 2 (l = (ln 3, ln 2, 0))
  EXPECT_NEAR(losses::pld(T({0, 0, 0}, {1, 3}), T({2, 1, 0}, {1, 3}), I({0}, {1})).item<double>(),
              a1 * std::log(3.0) + a2 * std::log(2.0), 1e-12);
}

// ---- against the brute-force reference ----------------------------------------------------------

TEST(PLD, MatchesReferenceOnRandomRows) {
  // C = 300 sorts 299 keys through many buckets; inner = 2 checks the dense layout.
  for (auto [N, C, inner, tau] : std::vector<std::tuple<int64_t, int64_t, int64_t, double>>{
           {3, 300, 1, 1.0}, {2, 37, 2, 2.5}, {4, 2, 1, 0.5}}) {
    Tensor s = R({N, C, inner}, -4, 4, 11, false), t = R({N, C, inner}, -3, 3, 12, false);
    std::vector<int64_t> labels;
    for (int64_t r = 0; r < N * inner; ++r) labels.push_back((r * 7 + 3) % C);
    Tensor y = I(labels, {N, inner});
    Tensor sv = s.clone().requires_grad_(true);
    Tensor loss = losses::pld(sv, t, y, {tau, Reduction::sum});
    loss.backward();
    std::vector<double> sd = s.to_vector<double>(), td = t.to_vector<double>(),
                        gd = sv.grad().to_vector<double>();
    double total = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const RowReference ref = lane_reference(sd, td, n, i, C, inner, labels[n * inner + i], tau);
        total += ref.loss;
        for (int64_t c = 0; c < C; ++c)
          EXPECT_NEAR(gd[(n * C + c) * inner + i], ref.grad[c], 1e-12) << "C=" << C;
      }
    EXPECT_NEAR(loss.item<double>(), total, 1e-10 * std::max(1.0, total)) << "C=" << C;
  }
}

// The ranking is a bucket sort with an insertion-sort finish and a std::sort fallback: rows that
// defeat the buckets (one outlier and a tight cluster; infinities; all equal) must still come out
// in exact stable descending order, in float32 and float64.
TEST(PLD, RankingIsExactOnAwkwardTeacherRows) {
  const int64_t C = 200;
  std::vector<std::vector<double>> teachers;
  std::vector<double> cluster(C), with_inf(C), equal(C, 0.5), ties(C);
  for (int64_t c = 0; c < C; ++c) {
    cluster[c] = 1.0 + 1e-5 * static_cast<double>((c * 37) % C);  // all in one bucket ...
    with_inf[c] = static_cast<double>((c * 53) % 17) - 8.0;
    ties[c] = static_cast<double>(c % 3);  // long runs of exact ties
  }
  cluster[7] = 1e4;  // ... next to one outlier
  with_inf[3] = -kInf;
  with_inf[150] = -kInf;
  teachers = {cluster, with_inf, equal, ties};
  std::vector<double> s(C);
  for (int64_t c = 0; c < C; ++c) s[c] = std::sin(0.7 * static_cast<double>(c)) * 3.0;
  for (const auto& t : teachers)
    for (DType dt : {kFloat64, kFloat32}) {
      // the reference sees exactly the values the kernel sees
      std::vector<double> tv = tensor<double>(t, {C}).to(dt).to(kFloat64).to_vector<double>();
      std::vector<double> sv = tensor<double>(s, {C}).to(dt).to(kFloat64).to_vector<double>();
      RowReference ref = pld_reference(sv, tv, 11, 2.0);
      Tensor st = tensor<double>(s, {1, C}).to(dt).requires_grad_(true);
      Tensor loss = losses::pld(st, tensor<double>(t, {1, C}).to(dt), I({11}, {1}), {2.0});
      const double tol = dt == kFloat64 ? 1e-12 : 2e-5;
      EXPECT_NEAR(loss.to(kFloat64).item<double>(), ref.loss, tol * std::max(1.0, ref.loss))
          << dtype_name(dt);
      loss.backward();
      EXPECT_TRUE(tensors_close(st.grad().to(kFloat64), tensor<double>(ref.grad, {1, C}), tol))
          << dtype_name(dt);
    }
}

TEST(PLD, Float32MatchesReferenceOnRandomRows) {
  const int64_t N = 6, C = 500;
  Tensor s = R({N, C}, -6, 6, 13, false).to(kFloat32), t = R({N, C}, -5, 5, 14, false).to(kFloat32);
  std::vector<int64_t> labels = {0, 499, 250, 3, 3, 77};
  Tensor sv = s.clone().requires_grad_(true);
  Tensor loss = losses::pld(sv, t, I(labels, {N}), {1.0, Reduction::none});
  loss.sum().backward();
  std::vector<double> sd = s.to(kFloat64).to_vector<double>(), td = t.to(kFloat64).to_vector<double>();
  std::vector<double> ld = loss.to(kFloat64).to_vector<double>(),
                      gd = sv.grad().to(kFloat64).to_vector<double>();
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> srow(sd.begin() + n * C, sd.begin() + (n + 1) * C),
        trow(td.begin() + n * C, td.begin() + (n + 1) * C);
    RowReference ref = pld_reference(srow, trow, labels[n], 1.0);
    EXPECT_NEAR(ld[n], ref.loss, 2e-5 * ref.loss);
    for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(gd[n * C + c], ref.grad[c], 2e-6);
  }
}

// Rows whose student logits spread beyond what one shift can hold (about 80 in float32, 700 in
// float64) take the rescaling scan; both scans must agree with the reference.
TEST(PLD, WideStudentRowsUseTheRescalingScan) {
  std::vector<double> s = {900.0, -850.0, 3.0, -20.0, 0.5, 60.0}, t = {0.1, 0.7, -1.0, 2.0, 0.0, 0.3};
  RowReference ref = pld_reference(s, t, 2, 1.0);
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor st = tensor<double>(s, {1, 6}).to(dt).requires_grad_(true);
    Tensor loss = losses::pld(st, tensor<double>(t, {1, 6}).to(dt), I({2}, {1}));
    EXPECT_NEAR(loss.to(kFloat64).item<double>(), ref.loss, 1e-5 * ref.loss) << dtype_name(dt);
    loss.backward();
    EXPECT_TRUE(tensors_close(st.grad().to(kFloat64), tensor<double>(ref.grad, {1, 6}), 1e-6))
        << dtype_name(dt);
  }
  // a spread of 90 is wide for float32 (rescaling scan) and narrow for float64 (shifted scan)
  std::vector<double> s90 = {45.0, -45.0, 10.0, 0.0, -30.0};
  std::vector<double> t5 = {1.0, 2.0, 0.0, -1.0, 0.5};
  RowReference ref90 = pld_reference(s90, t5, 0, 1.0);
  for (DType dt : {kFloat64, kFloat32})
    EXPECT_NEAR(
        losses::pld(tensor<double>(s90, {1, 5}).to(dt), tensor<double>(t5, {1, 5}).to(dt), I({0}, {1}))
            .to(kFloat64)
            .item<double>(),
        ref90.loss, 1e-5 * ref90.loss)
        << dtype_name(dt);
}

TEST(PLD, Float32AgreesWithFloat64AtC1000) {
  Tensor s = R({4, 1000}, -8, 8, 5, false), t = R({4, 1000}, -6, 6, 6, false);
  Tensor y = I({0, 999, 500, 17}, {4});
  Tensor s64 = s.clone().requires_grad_(true), s32 = s.to(kFloat32).requires_grad_(true);
  Tensor l64 = losses::pld(s64, t, y), l32 = losses::pld(s32, t.to(kFloat32), y);
  l64.backward();
  l32.backward();
  EXPECT_NEAR(l32.item<float>(), l64.item<double>(), 2e-5 * l64.item<double>());
  EXPECT_TRUE(tensors_close(s32.grad().to(kFloat64), s64.grad(), 2e-6));
}

// The forward computes each row's gradient and the backward only scales it by the incoming
// gradient: a non-uniform upstream gradient, on the dense [N, C, d] layout and on a single [C]
// row, must reach each row with its own factor.
TEST(PLD, BackwardScalesEachRowByItsOwnUpstreamGradient) {
  const int64_t N = 2, C = 7, inner = 3;
  Tensor s = R({N, C, inner}, -3, 3, 51, false), t = R({N, C, inner}, -3, 3, 52, false);
  std::vector<int64_t> labels = {0, 6, 3, 2, 5, 1};
  std::vector<double> weights = {1.5, -2.0, 0.0, 0.25, 3.0, -0.5};
  Tensor sv = s.clone().requires_grad_(true);
  (losses::pld(sv, t, I(labels, {N, inner}), {1.0, Reduction::none}) * tensor<double>(weights, {N, inner}))
      .sum()
      .backward();
  std::vector<double> sd = s.to_vector<double>(), td = t.to_vector<double>(),
                      gd = sv.grad().to_vector<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < inner; ++i) {
      const RowReference ref = lane_reference(sd, td, n, i, C, inner, labels[n * inner + i], 1.0);
      for (int64_t c = 0; c < C; ++c)
        EXPECT_NEAR(gd[(n * C + c) * inner + i], weights[n * inner + i] * ref.grad[c], 1e-12);
    }
  // a single row [C]: the loss is a scalar
  Tensor row = e2_student().view({4}).detach().requires_grad_(true);
  (losses::pld(row, e2_teacher().view({4}), scalar_tensor(2, kInt64)) * 3.0).backward();
  EXPECT_TRUE(tensors_close(
      row.grad(), tensor<double>({0.516179155 * 3, -0.690073095 * 3, -0.040434521 * 3, 0.214328460 * 3}, {4}),
      3e-6));
}

TEST(PLD, BatchMixingShiftedAndRescaledRows) {
  // Row 0 is narrow (one shift), row 1 spreads over 1000 (the rescaling scan), row 2 holds a -inf
  // student logit that the teacher ranks last, in float32 and float64.
  std::vector<double> s = {0.5, -1.0, 2.0, 0.3, 1.1,  600.0, -400.0, 3.0,
                           0.0, 5.0,  0.2, 1.0, -0.7, 2.5,   -kInf};
  std::vector<double> t = {1.0, 0.0, -1.0, 2.0, 0.5, 0.3, 0.1, -2.0, 1.5, 0.0, 2.0, 1.0, 0.0, -1.0, -3.0};
  std::vector<int64_t> labels = {3, 0, 2};
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor sv = tensor<double>(s, {3, 5}).to(dt).requires_grad_(true);
    Tensor loss = losses::pld(sv, tensor<double>(t, {3, 5}).to(dt), I(labels, {3}), {1.0, Reduction::none});
    loss.sum().backward();
    std::vector<double> ld = loss.to(kFloat64).to_vector<double>(),
                        gd = sv.grad().to(kFloat64).to_vector<double>();
    for (int64_t r = 0; r < 3; ++r) {
      std::vector<double> srow(s.begin() + r * 5, s.begin() + (r + 1) * 5);
      if (r == 2) srow[4] = -1e300;  // the finite limit of -inf in last place
      RowReference ref = pld_reference(srow, std::vector<double>(t.begin() + r * 5, t.begin() + (r + 1) * 5),
                                       labels[r], 1.0);
      EXPECT_NEAR(ld[r], ref.loss, 1e-5 * std::max(1.0, ref.loss)) << dtype_name(dt) << " row " << r;
      for (int64_t c = 0; c < 5; ++c)
        EXPECT_NEAR(gd[r * 5 + c], ref.grad[c], 1e-6) << dtype_name(dt) << " row " << r << " class " << c;
    }
  }
}

// ---- the CPU kernel's building blocks (losses/cpu/ranking.h, row_ops.h) -----------------------

template <class T>
void expect_keys_round_trip() {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  using L = std::numeric_limits<T>;
  const std::vector<T> values = {T(0),        T(1),          T(-1),           T(0.5),           T(-2.75),
                                 T(1e-30),    T(-1e-30),     L::denorm_min(), -L::denorm_min(), L::max(),
                                 L::lowest(), L::infinity(), -L::infinity()};
  for (T v : values) {
    const T back = losses::cpu::value_of_key<T>(losses::cpu::descending_key(v));
    EXPECT_EQ(std::bit_cast<U>(back), std::bit_cast<U>(v)) << v;
  }
  // -0 ties with +0, so it comes back as +0
  EXPECT_EQ(std::bit_cast<U>(losses::cpu::value_of_key<T>(losses::cpu::descending_key(T(-0.0)))), U(0));
}

TEST(PLDKernel, SortKeysDecodeBackToTheirValues) {
  expect_keys_round_trip<float>();
  expect_keys_round_trip<double>();
}

template <class T>
void expect_ranked_values() {
  const int64_t n = 301, skip = 17;
  std::vector<T> v(n);
  for (int64_t c = 0; c < n; ++c) v[c] = static_cast<T>(std::sin(0.37 * static_cast<double>(c)) * 5.0);
  v[3] = v[40] = v[41] = T(1.25);  // ties
  v[100] = -std::numeric_limits<T>::infinity();
  v[200] = T(-0.0);
  v[201] = T(0.0);
  std::vector<int64_t> expected;
  for (int64_t c = 0; c < n; ++c)
    if (c != skip) expected.push_back(c);
  std::stable_sort(expected.begin(), expected.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  losses::cpu::Ranker<T> ranker(n);
  std::vector<int32_t> order(n - 1);
  std::vector<T> ranked(n - 1);
  ranker.rank(v.data(), n, skip, *std::max_element(v.begin(), v.end()), *std::min_element(v.begin(), v.end()),
              order.data(), ranked.data());
  for (int64_t i = 0; i + 1 < n; ++i) {
    EXPECT_EQ(order[i], expected[i]) << "position " << i;
    EXPECT_EQ(ranked[i], v[order[i]]) << "position " << i;
  }
}

TEST(PLDKernel, RankerReturnsTheRankedValues) {
  expect_ranked_values<float>();
  expect_ranked_values<double>();
}

// The ranker against std::stable_sort on the inputs that take its other branches: ties, signed
// zeros, infinities and all-equal rows (one bucket), clustered values (the insertion sort gives up
// and std::sort takes over), a spread too small for a finite bucket scale, tiny rows, and the
// skipped class first, last, inside or absent. One Ranker serves every row, as in the kernel.
template <class T>
void expect_stable_descending(losses::cpu::Ranker<T>& ranker, const std::vector<T>& v, int64_t skip,
                              const std::string& what) {
  const int64_t count = static_cast<int64_t>(v.size());
  std::vector<int32_t> expected;
  for (int64_t c = 0; c < count; ++c)
    if (c != skip) expected.push_back(static_cast<int32_t>(c));
  std::stable_sort(expected.begin(), expected.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  const int64_t n = static_cast<int64_t>(expected.size());
  std::vector<int32_t> order(n + 1, -1);  // one past the end, to see that nothing is written there
  std::vector<T> ranked(n + 1, T(-7));
  ranker.rank(v.data(), count, skip, *std::max_element(v.begin(), v.end()),
              *std::min_element(v.begin(), v.end()), order.data(), ranked.data());
  EXPECT_EQ(std::vector<int32_t>(order.begin(), order.begin() + n), expected) << what << ", skip " << skip;
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(ranked[i], v[order[i]]) << what << ", position " << i;
  EXPECT_EQ(order[n], -1) << what;
  EXPECT_EQ(ranked[n], T(-7)) << what;
}

template <class T>
void expect_ranking_edge_cases() {
  using L = std::numeric_limits<T>;
  const int64_t max_count = 5000;
  losses::cpu::Ranker<T> ranker(max_count);
  std::mt19937 gen(5);
  std::normal_distribution<double> normal(0.0, 3.0);
  const auto rows = [&](int64_t count, const std::string& kind) {
    std::vector<T> v(count);
    for (int64_t c = 0; c < count; ++c) {
      const double z = normal(gen);
      if (kind == "normal") v[c] = static_cast<T>(z);
      if (kind == "ties") v[c] = static_cast<T>(std::round(z));  // a few values, many ties each
      if (kind == "equal") v[c] = T(2.5);
      if (kind == "zeros") v[c] = c % 3 == 0 ? T(-0.0) : c % 3 == 1 ? T(0.0) : static_cast<T>(z);
      if (kind == "infinite")
        v[c] = c % 7 == 0 ? L::infinity() : c % 7 == 1 ? -L::infinity() : static_cast<T>(z);
      // all but one in a sliver of the range: every item in the first bucket or the last
      if (kind == "clustered") v[c] = c == count / 2 ? T(1e6) : static_cast<T>(1 + 1e-4 * z);
      if (kind == "subnormal") v[c] = static_cast<T>(c % 5) * L::denorm_min();  // 1 / spread overflows
      if (kind == "ascending") v[c] = static_cast<T>(c);
      if (kind == "descending") v[c] = static_cast<T>(-c);
    }
    return v;
  };
  for (const char* kind : {"normal", "ties", "equal", "zeros", "infinite", "clustered", "subnormal",
                           "ascending", "descending"}) {
    for (int64_t count : {int64_t(1), int64_t(2), int64_t(3), int64_t(5), int64_t(17), int64_t(256),
                          int64_t(999), int64_t(1000), max_count}) {
      const std::vector<T> v = rows(count, kind);
      const std::string what = std::string(kind) + ", count " + std::to_string(count);
      for (int64_t skip : {int64_t(-1), int64_t(0), count / 2, count - 1})
        expect_stable_descending(ranker, v, skip, what);
    }
  }
}

TEST(PLDKernel, RankerMatchesStableSortOnEdgeCases) {
  expect_ranking_edge_cases<float>();
  expect_ranking_edge_cases<double>();
}

TEST(PLDKernel, RunningSumsMatchAPlainLoop) {
  for (int64_t n : {1, 2, 3, 4, 5, 9, 1001}) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 7) + 0.25f;
    std::vector<double> local(n), suffix(n, -1), prefix(n, -1);
    std::vector<int64_t> calls;
    // a sum of x rides along in the suffix sums' loop, as PLD's weight normaliser does
    losses::cpu::FourSums<float> riding(x.data(), n);
    losses::cpu::suffix_sums(x.data(), n, local.data(), riding).for_each([&](int64_t i, double sum) {
      calls.push_back(i);
      suffix[i] = sum;
    });
    EXPECT_EQ(riding.total(), losses::cpu::sum_of(x.data(), n)) << "n=" << n;
    std::vector<int64_t> in_order(n);
    std::iota(in_order.begin(), in_order.end(), 0);
    EXPECT_EQ(calls, in_order) << "n=" << n;  // every index once, in order
    // in place: the terms are the scratch space, each replaced by its sum
    std::vector<double> terms(x.begin(), x.end());
    losses::cpu::prefix_sums(terms.data(), n, terms.data()).for_each([&](int64_t i, double sum) {
      prefix[i] = sum;
    });
    double after = 0, before = 0;
    for (int64_t i = n - 1; i >= 0; --i) {
      after += x[i];
      EXPECT_NEAR(suffix[i], after, 1e-12 * after) << "n=" << n << " i=" << i;
    }
    for (int64_t i = 0; i < n; ++i) {
      before += x[i];
      EXPECT_NEAR(prefix[i], before, 1e-12 * before) << "n=" << n << " i=" << i;
    }
  }
}

// ---- properties ----------------------------------------------------------------------------------

TEST(PLD, PropertiesShiftInvarianceZeroSumRowsNonNegative) {
  Tensor s = R({5, 9}, -3, 3, 21, false), t = R({5, 9}, -3, 3, 22, false);
  Tensor y = I({0, 8, 4, 4, 1}, {5});
  Tensor a = s.clone().requires_grad_(true), b = (s + 10.0).requires_grad_(true);
  Tensor la = losses::pld(a, t, y, {1.0, Reduction::none}), lb = losses::pld(b, t, y, {1.0, Reduction::none});
  EXPECT_TRUE(tensors_close(lb, la, 1e-12));  // L(s + c) = L(s)
  la.sum().backward();
  lb.sum().backward();
  EXPECT_TRUE(tensors_close(b.grad(), a.grad(), 1e-12));
  EXPECT_TRUE(tensors_close(a.grad().sum({1}), zeros({5}, kFloat64), 1e-12));  // rows sum to zero
  for (double v : la.to_vector<double>()) EXPECT_GE(v, 0.0);
  // the teacher's softmax is shift-invariant too
  EXPECT_TRUE(tensors_close(losses::pld(s, t - 3.0, y, {1.0, Reduction::none}), la.detach(), 1e-12));
}

TEST(PLD, LargeTemperatureTendsToListMLEOverC) {
  // tau -> infinity makes alpha uniform: L = (1 / C) sum_k l_k for the teacher's ranking.
  std::vector<double> s = {0.3, -1.2, 2.0, 0.7, -0.1}, t = {1.0, 0.2, -0.5, 3.0, 0.9};
  RowReference uniform = pld_reference(s, t, 1, 1e300);  // alpha = 1/C exactly
  double listmle_over_c = uniform.loss;
  Tensor st = tensor<double>(s, {1, 5}), tt = tensor<double>(t, {1, 5});
  double prev_gap = kInf;
  for (double tau : {10.0, 1e2, 1e4, 1e6}) {
    double gap = std::abs(losses::pld(st, tt, I({1}, {1}), {tau}).item<double>() - listmle_over_c);
    EXPECT_LT(gap, prev_gap) << "tau " << tau;  // monotone approach
    prev_gap = gap;
  }
  EXPECT_LT(prev_gap, 1e-5);
  // and by hand for the uniform case: ListMLE sums l_k over the order (1, 3, 0, 4, 2)
  double listmle = 0;
  std::vector<int> order = {1, 3, 0, 4, 2};
  for (size_t k = 0; k + 1 < order.size(); ++k) {
    double sum = 0;
    for (size_t l = k; l < order.size(); ++l) sum += std::exp(s[order[l]]);
    listmle += std::log(sum) - s[order[k]];
  }
  EXPECT_NEAR(listmle_over_c, listmle / 5, 1e-12);
}

TEST(PLD, SmallTemperatureWithAConfidentCorrectTeacherIsCrossEntropy) {
  // alpha -> (1, 0, ..., 0) when the teacher's argmax is the label and tau -> 0: step 1 is CE.
  Tensor s = R({3, 6}, -2, 2, 31, false);
  Tensor t = tensor<double>({5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 7, 0, 0, 0}, {3, 6});
  Tensor y = I({0, 5, 2}, {3});
  EXPECT_NEAR(losses::pld(s, t, y, {1e-3}).item<double>(), losses::cross_entropy(s, y).item<double>(), 1e-12);
  // and so is its gradient (alpha underflows to exactly 0 past the first step)
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor a = s.to(dt).detach().clone().requires_grad_(true), b = a.detach().clone().requires_grad_(true);
    losses::pld(a, t.to(dt), y, {1e-3}).backward();
    losses::cross_entropy(b, y).backward();
    EXPECT_TRUE(tensors_close(a.grad().to(kFloat64), b.grad().to(kFloat64), dt == kFloat64 ? 1e-12 : 1e-6))
        << dtype_name(dt);
  }
}

TEST(PLD, TiesRankTheSmallerClassFirst) {
  // t = (1, 1, 1, 0), y = 3: the order is (3, 0, 1, 2); -0.0 and +0.0 tie as well.
  Tensor s = T({0.5, -1.0, 2.0, 0.1}, {1, 4}, false);
  for (Tensor t : {T({1, 1, 1, 0}, {1, 4}), T({0.0, -0.0, 0.0, -1}, {1, 4})}) {
    RowReference ref = pld_reference(s.to_vector<double>(), t.to_vector<double>(), 3, 1.0);
    EXPECT_NEAR(losses::pld(s, t, I({3}, {1})).item<double>(), ref.loss, 1e-12);
    // a different tie order gives a different loss, so the test can tell
    std::vector<double> s_swapped = {2.0, -1.0, 0.5, 0.1};
    EXPECT_GT(std::abs(pld_reference(s_swapped, t.to_vector<double>(), 3, 1.0).loss - ref.loss), 1e-3);
  }
}

TEST(PLD, TeacherNeverReceivesAGradient) {
  Tensor s = e2_student(), t = T({0.5, 3.0, 1.0, -1.0}, {1, 4}, true);
  Tensor loss = losses::pld(s, t, I({2}, {1}));
  loss.backward();
  EXPECT_TRUE(s.grad().defined());
  EXPECT_FALSE(t.grad().defined());
  // with only the teacher requiring grad, nothing is recorded at all
  EXPECT_FALSE(losses::pld(e2_student().detach(), t, I({2}, {1})).requires_grad());
}

TEST(PLD, NoGradModeGivesTheSameValue) {
  Tensor s = R({3, 50}, -2, 2, 41), t = R({3, 50}, -2, 2, 42, false);
  Tensor y = I({1, 2, 3}, {3});
  double with_graph = losses::pld(s, t, y).item<double>();
  NoGradGuard guard;
  Tensor no_graph = losses::pld(s, t, y);
  EXPECT_FALSE(no_graph.requires_grad());
  EXPECT_DOUBLE_EQ(no_graph.item<double>(), with_graph);
}

// ---- edge cases (pld.md "Edge cases and errors") ----------------------------------------------

TEST(PLD, SingleClassHasZeroLossAndGradient) {
  Tensor s = T({3.0, -1.0}, {2, 1});
  Tensor loss = losses::pld(s, T({1.0, 2.0}, {2, 1}, false), I({0, 0}, {2}));
  EXPECT_EQ(loss.item<double>(), 0.0);
  loss.backward();
  EXPECT_TRUE(tensors_close(s.grad(), zeros({2, 1}, kFloat64), 0.0));
}

TEST(PLD, StableWhereANaiveCumulativeSumUnderflows) {
  // s = (100, -100, 0, -120): subtracting one row max and summing exps gives Lambda = -inf at the
  // tail; the rescaled scan stays finite in float32 and float64.
  Tensor t = T({3, 2, 1, 0}, {1, 4}, false);
  std::vector<double> s = {100, -100, 0, -120};
  RowReference ref = pld_reference(s, t.to_vector<double>(), 0, 1.0);
  ASSERT_TRUE(std::isfinite(ref.loss));
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor sv = tensor<double>(s, {1, 4}).to(dt).requires_grad_(true);
    Tensor loss = losses::pld(sv, t.to(dt), I({0}, {1}));
    EXPECT_NEAR(loss.to(kFloat64).item<double>(), ref.loss, 1e-4 * ref.loss) << dtype_name(dt);
    loss.backward();
    EXPECT_TRUE(tensors_close(sv.grad().to(kFloat64), tensor<double>(ref.grad, {1, 4}), 1e-6))
        << dtype_name(dt);
  }
}

TEST(PLD, MinusInfinityStudentLogits) {
  // Last in the order: l_C = 0 is forced, so the loss stays finite (the reference code gives NaN).
  Tensor s = T({1.0, 0.0, -kInf}, {1, 3});
  Tensor t = T({2, 1, 0}, {1, 3}, false);
  Tensor loss = losses::pld(s, t, I({0}, {1}));
  RowReference ref = pld_reference({1.0, 0.0, -1e300}, {2, 1, 0}, 0, 1.0);  // the finite limit
  EXPECT_NEAR(loss.item<double>(), ref.loss, 1e-12);
  loss.backward();
  EXPECT_TRUE(tensors_close(s.grad(), tensor<double>(ref.grad, {1, 3}), 1e-12));
  EXPECT_EQ(s.grad().to_vector<double>()[2], 0.0);
  // Earlier in the order: choosing a -inf class before a finite one costs l = +inf.
  EXPECT_EQ(losses::pld(T({-kInf, 0.0, 1.0}, {1, 3}), t, I({0}, {1})).item<double>(), kInf);
  // Several -inf at the tail are equally (un)likely among themselves: l = log 2 for the first.
  Tensor tail = losses::pld(T({0.0, -kInf, -kInf}, {1, 3}, false), t, I({0}, {1}));
  double z = std::exp(2.0) + std::exp(1.0) + 1.0;
  EXPECT_NEAR(tail.item<double>(), std::exp(1.0) / z * std::log(2.0), 1e-12);
}

// Under create_graph the recorded backward keeps the kernel's convention for -inf logits at the tail
// (one alone: gradient 0; several: equally likely among themselves), and differentiates again to
// finite values.
TEST(PLD, MinusInfinityStudentLogitsUnderCreateGraph) {
  const OpFn f = [](const std::vector<Tensor>& in) {
    return losses::pld(in[0], T({2, 1, 0, -1, 3, 0.5, 0, -2}, {2, 4}, false), I({0, 1}, {2}),
                       {1.0, Reduction::none});
  };
  for (Tensor s : {T({1.0, 0.0, 0.5, -kInf, 0.2, 1.5, -kInf, -kInf}, {2, 4}),
                   T({-kInf, -kInf, -kInf, -kInf, 0.3, 0.1, -0.4, 0.9}, {2, 4})}) {
    EXPECT_TRUE(recorded_gradients_match(f, {s}));
    Tensor g = autograd::grad({f({s}).sum()}, {s}, {}, {}, /*create_graph=*/true)[0];
    Tensor h = autograd::grad({(g * T({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}, false)).sum()}, {s})[0];
    EXPECT_TRUE(isfinite(h).all().item<bool>()) << h;
  }
}

TEST(PLD, NaNStudentPropagatesNaNTeacherIsAnError) {
  Tensor t = T({2, 1, 0}, {1, 3}, false);
  EXPECT_TRUE(std::isnan(losses::pld(T({0.0, NAN, 1.0}, {1, 3}), t, I({0}, {1})).item<double>()));
  EMBER_EXPECT_THROW_MSG(
      losses::pld(T({0, 0, 0, 0, 0, 0}, {2, 3}), T({2, 1, 0, 1, NAN, 0}, {2, 3}), I({0, 1}, {2})),
      "pld: teacher_logits row 1 contains NaN");
}

TEST(PLD, AllRowsAbsentMeanIsNaNSumIsZero) {
  Tensor s = zeros({0, 4}, kFloat64), t = zeros({0, 4}, kFloat64);
  Tensor y = tensor<int64_t>(std::vector<int64_t>{}, {0});
  EXPECT_TRUE(std::isnan(losses::pld(s, t, y).item<double>()));
  EXPECT_EQ(losses::pld(s, t, y, {1.0, Reduction::sum}).item<double>(), 0.0);
}

TEST(PLD, Errors) {
  Tensor s = T({0, 0, 0, 0, 0, 0}, {2, 3}), t = T({2, 1, 0, 1, 2, 0}, {2, 3}, false);
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({0, 3}, {2})),
                         "pld: target 3 at position 1 is out of range for 3 classes (valid: 0..2)");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({-1, 0}, {2})), "pld: target -1 at position 0 is out of range");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({0, 1}, {2}), {0.0}),
                         "pld: temperature must be a positive finite number, got 0");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({0, 1}, {2}), {-2.0}), "pld: temperature must be a positive");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({0, 1}, {2}), {NAN}), "pld: temperature must be a positive");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({0, 1}, {2}), {kInf}), "pld: temperature must be a positive");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, T({1, 2, 3}, {1, 3}), I({0, 1}, {2})),
                         "pld: teacher_logits [1,3] and student_logits [2,3] must have the same shape");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({0, 1, 2}, {3})),
                         "pld: target shape [3] does not match scores [2,3]");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, tensor<int32_t>({0, 1}, {2})),
                         "pld: target must hold int64 class ids");
  EMBER_EXPECT_THROW_MSG(losses::pld(I({0, 1, 2}, {1, 3}), t, I({0}, {1})),
                         "pld: student_logits must be floating point");
  EMBER_EXPECT_THROW_MSG(losses::pld(s, I({0, 1, 2, 0, 1, 2}, {2, 3}), I({0, 1}, {2})),
                         "pld: teacher_logits must be floating point");
  EMBER_EXPECT_THROW_MSG(losses::pld(scalar_tensor(1.0), scalar_tensor(1.0), I({0}, {1})),
                         "pld: student_logits must be [N, C], [N, C, d1, ...] or [C]");
}

}  // namespace
}  // namespace ember::testing
