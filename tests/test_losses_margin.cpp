// The margin and embedding losses (losses/margin.h) and huber_loss, poisson_nll_loss and
// gaussian_nll_loss against PyTorch: every expected value below was computed with torch 1.13's
// torch.nn.functional in float64, on the inputs of its row. Each row is gradient-checked, most
// also to second order, and compared with CUDA when a GPU is present. Inputs avoid the kinks of
// the hinges (a term exactly at 0), where the loss has no derivative for gradcheck to find.
#include <ember/losses/margin.h>
#include <ember/losses/standard.h>

#include <cmath>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

using losses::Reduction;
Tensor scalar(double v) { return scalar_tensor(v, kFloat64); }

// ---- margin_ranking_loss -----------------------------------------------------------------------

OpFn ranking(double margin, Reduction r) {
  return [=](const std::vector<Tensor>& in) {
    return losses::margin_ranking_loss(in[0], in[1], in[2], {margin, r});
  };
}

std::vector<OpCase> margin_ranking_cases() {
  Tensor x1 = T({0.5, -1.2, 2.0, 0.3}, {4}), x2 = T({1.0, 0.4, -0.5, 0.9}, {4});
  Tensor y = T({1, -1, 1, -1}, {4});  // a differentiable target: d/dy = -(x1 - x2) where the hinge is active
  return with_gradgradcheck({
      {"mean", ranking(0.0, Reduction::mean), {x1, x2, y}, scalar(0.125)},
      {"margin_none", ranking(0.5, Reduction::none), {x1, x2, y}, tensor<double>({1, 0, 0, 0}, {4})},
      {"margin_sum", ranking(0.5, Reduction::sum), {x1, x2, y}, scalar(1)},
      // [2, 3], [1, 3] and [2, 1] broadcast (PyTorch asks only for one rank)
      {"broadcast_none",
       ranking(0.3, Reduction::none),
       {T({0.2, -0.7, 1.1, 0.9, -0.4, 0.6}, {2, 3}), T({0.5, 0.1, -0.3}, {1, 3}), T({1, -1}, {2, 1})},
       tensor<double>({0.6, 1.1, 0, 0.7, 0, 1.2}, {2, 3})},
      {"int_target", ranking(0.5, Reduction::mean), {x1, x2, I({1, -1, 1, -1}, {4})}, scalar(0.25)},
      {"scalars",
       ranking(0.1, Reduction::none),
       {scalar(0.25).requires_grad_(true), scalar(0.75).requires_grad_(true), scalar(1.0)},
       scalar(0.6)},
  });
}
EMBER_OP_SUITE(MarginRanking, margin_ranking_cases);

// ---- hinge_embedding_loss ----------------------------------------------------------------------

OpFn hinge(double margin, Reduction r) {
  return [=](const std::vector<Tensor>& in) {
    return losses::hinge_embedding_loss(in[0], in[1], {margin, r});
  };
}

std::vector<OpCase> hinge_cases() {
  Tensor x = T({0.3, 1.5, -0.2, 0.8, 2.5, 0.1}, {2, 3});
  Tensor y = T({1, -1, -1, 1, -1, -1}, {2, 3}, false);  // labels only select a term: no gradient
  return with_gradgradcheck({
      {"mean", hinge(1.0, Reduction::mean), {x, y}, scalar(0.533333333333)},
      {"margin_none",
       hinge(2.0, Reduction::none),
       {x, y},
       tensor<double>({0.3, 0.5, 2.2, 0.8, 0, 1.9}, {2, 3})},
      {"sum", hinge(1.0, Reduction::sum), {x, y}, scalar(3.2)},
      // a label other than +-1 gets both terms: max(0, 1 - x) + x for 0, x for 2
      {"other_labels",
       hinge(1.0, Reduction::none),
       {T({0.3, 1.5, -0.2}, {3}), T({0, 2, -1}, {3}, false)},
       tensor<double>({1, 1.5, 1.2}, {3})},
      {"broadcast_none",
       hinge(1.0, Reduction::none),
       {T({0.3, 1.5, -0.2}, {3}), T({1, -1}, {2, 1}, false)},
       tensor<double>({0.3, 1.5, -0.2, 0.7, 0, 1.2}, {2, 3})},
  });
}
EMBER_OP_SUITE(HingeEmbedding, hinge_cases);

// ---- soft_margin_loss --------------------------------------------------------------------------

OpFn soft_margin(Reduction r) {
  return [=](const std::vector<Tensor>& in) { return losses::soft_margin_loss(in[0], in[1], {r}); };
}

std::vector<OpCase> soft_margin_cases() {
  Tensor x = T({0.5, -1.2, 2.0, -0.3}, {4}), y = T({1, -1, -1, 1}, {4});
  return with_gradgradcheck({
      {"mean", soft_margin(Reduction::mean), {x, y}, scalar(0.929660676757)},
      {"none",
       soft_margin(Reduction::none),
       {x, y},
       tensor<double>({0.47407698418, 0.263282467338, 2.12692801104, 0.854355244469}, {4})},
      {"sum", soft_margin(Reduction::sum), {x, y}, scalar(3.71864270703)},
      // the target broadcasts to the input's shape
      {"broadcast_target_none",
       soft_margin(Reduction::none),
       {T({0.3, 1.5, -0.2, 0.8, 2.5, 0.1}, {2, 3}), T({1, -1, 1}, {3})},
       tensor<double>(
           {0.554355244469, 1.70141327798, 0.798138869382, 0.371100665948, 2.57888973429, 0.644396660074},
           {2, 3})},
  });
}
EMBER_OP_SUITE(SoftMargin, soft_margin_cases);

// ---- multilabel_soft_margin_loss ---------------------------------------------------------------

OpFn multilabel(Tensor weight, Reduction r) {
  return [=](const std::vector<Tensor>& in) {
    return losses::multilabel_soft_margin_loss(in[0], in[1], {on_device_of(weight, in[0]), r});
  };
}

std::vector<OpCase> multilabel_cases() {
  Tensor x = T({0.5, -1.2, 2.0, -0.3, 0.8, 0.1}, {2, 3}), y = T({1, 0, 1, 0, 1, 1}, {2, 3});
  Tensor w = T({0.5, 2.0, 1.0}, {3}, false);
  return with_gradgradcheck({
      {"mean", multilabel({}, Reduction::mean), {x, y}, scalar(0.405690005508)},
      {"weight_none",
       multilabel(w, Reduction::none),
       {x, y},
       tensor<double>({0.296843812603, 0.554591871401}, {2})},
      {"sum", multilabel({}, Reduction::sum), {x, y}, scalar(0.811380011017)},
      // one example: the classes' mean is a 0-d loss
      {"unbatched_none",
       multilabel({}, Reduction::none),
       {T({0.5, -1.2, 2.0}, {3}), T({1, 0, 1}, {3})},
       scalar(0.288095820854)},
      // the classes are the last dim, whatever the rank
      {"rank3_none",
       multilabel({}, Reduction::none),
       {T({0.5, -1.2, 2.0, -0.3, 0.8, 0.1, 1.3, -0.6, 0.2, -2.0, 0.4, 0.9}, {2, 2, 3}),
        T({1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1}, {2, 2, 3})},
       tensor<double>({0.288095820854, 0.523284190163, 0.858878424567, 1.12703237939}, {2, 2})},
      // soft targets broadcast over the examples; a weight of shape [1] broadcasts over the classes
      {"soft_target_broadcast",
       multilabel(T({1.5}, {1}, false), Reduction::mean),
       {x, T({0.2, 0.9, 0.5}, {3})},
       scalar(1.27603500826)},
      {"int_target",
       multilabel({}, Reduction::mean),
       {x, I({1, 0, 1, 0, 1, 1}, {2, 3})},
       scalar(0.405690005508)},
      // the weight is a plain factor here (as in PyTorch), so it receives a gradient too
      {"weight_gradient",
       [](const std::vector<Tensor>& in) {
         return losses::multilabel_soft_margin_loss(in[0], in[1], {in[2], Reduction::none});
       },
       {x, y, T({0.5, 2.0, 1.0}, {3})},
       tensor<double>({0.296843812603, 0.554591871401}, {2})},
  });
}
EMBER_OP_SUITE(MultilabelSoftMargin, multilabel_cases);

// ---- multi_margin_loss -------------------------------------------------------------------------

OpFn multi_margin(int64_t p, double margin, Tensor weight, Reduction r) {
  return [=](const std::vector<Tensor>& in) {
    return losses::multi_margin_loss(in[0], in[1], {p, margin, on_device_of(weight, in[0]), r});
  };
}

std::vector<OpCase> multi_margin_cases() {
  Tensor x = T({0.5, -1.2, 2.0, 0.3, -0.3, 0.8, 0.15, 1.1, 0.9, -0.6, 0.25, -2.0}, {3, 4});
  Tensor y = I({1, 3, 0}, {3});
  Tensor w = T({0.5, 2.0, 1.0, 1.5}, {4}, false);
  Tensor row = T({0.5, -1.2, 2.0, 0.3}, {4});
  return with_gradgradcheck({
      {"mean", multi_margin(1, 1.0, {}, Reduction::mean), {x, y}, scalar(0.875)},
      {"p2_none",
       multi_margin(2, 1.0, {}, Reduction::none),
       {x, y},
       tensor<double>({7.795, 0.123125, 0.030625}, {3})},
      {"margin_weight_sum", multi_margin(1, 0.5, w, Reduction::sum), {x, y}, scalar(4.025)},
      {"p2_weight_mean", multi_margin(2, 1.0, w, Reduction::mean), {x, y}, scalar(5.26333333333)},
      {"p2_margin_weight_none",
       multi_margin(2, 1.45, w, Reduction::none),
       {x, y},
       tensor<double>({20.12375, 0.590625, 0.08}, {3})},
      // one example [C]: a target [1] gives a loss [1], a 0-d target a 0-d loss (as PyTorch)
      {"unbatched_target1_none",
       multi_margin(1, 1.0, {}, Reduction::none),
       {row, I({0}, {1})},
       tensor<double>({0.825}, {1})},
      {"unbatched_target0d_none", multi_margin(1, 1.0, {}, Reduction::none), {row, I({2}, {})}, scalar(0)},
      {"batch1_target0d_none",
       multi_margin(1, 1.0, {}, Reduction::none),
       {T({0.5, -1.2, 2.0, 0.3}, {1, 4}), I({3}, {})},
       scalar(0.975)},
      // a 0-d score is one class, the target's own: no term
      {"scalar_input",
       multi_margin(1, 1.0, {}, Reduction::none),
       {scalar(0.7).requires_grad_(true), I({0}, {})},
       scalar(0)},
  });
}
EMBER_OP_SUITE(MultiMargin, multi_margin_cases);

// ---- cosine_embedding_loss ---------------------------------------------------------------------

OpFn cosine_embedding(double margin, Reduction r) {
  return [=](const std::vector<Tensor>& in) {
    return losses::cosine_embedding_loss(in[0], in[1], in[2], {margin, r});
  };
}

Tensor e1() { return T({0.5, -1.2, 2.0, 0.3, -0.3, 0.8, 0.1, 1.1, 1.4, -0.6, 0.25, -2.0}, {3, 4}); }
Tensor e2() { return T({1.0, 0.4, -0.5, 0.8, 0.25, 0.9, -0.4, 0.7, -1.0, 0.3, 0.6, 0.5}, {3, 4}); }

std::vector<OpCase> cosine_embedding_cases() {
  // the rows' cosines: -0.214976441624, 0.798007075149, -0.737711241045
  Tensor y = T({1, -1, -1}, {3}, false);
  return with_gradgradcheck({
      {"mean", cosine_embedding(0.0, Reduction::mean), {e1(), e2(), y}, scalar(0.670994505591)},
      {"margin_none",
       cosine_embedding(0.2, Reduction::none),
       {e1(), e2(), T({1, -1, 1}, {3}, false)},
       tensor<double>({1.21497644162, 0.598007075148, 1.73771124104}, {3})},
      {"negative_margin_sum", cosine_embedding(-0.5, Reduction::sum), {e1(), e2(), y}, scalar(2.51298351677)},
      // x1, x2 [D] with a 0-d target
      {"unbatched_dissimilar",
       cosine_embedding(0.1, Reduction::none),
       {T({-0.3, 0.8, 0.1, 1.1}, {4}), T({0.25, 0.9, -0.4, 0.7}, {4}), scalar(-1)},
       scalar(0.698007075148)},
      {"unbatched_similar",
       cosine_embedding(0.0, Reduction::mean),
       {T({0.5, -1.2, 2.0, 0.3}, {4}), T({0.25, 0.9, -0.4, 0.7}, {4}), scalar(1)},
       scalar(1.52081791416)},
      // x2 [1, D] broadcast over the rows; the label 0 gives 0
      {"broadcast_x2_none",
       cosine_embedding(0.0, Reduction::none),
       {e1(), T({1.0, 0.4, -0.5, 0.8}, {1, 4}), T({1, -1, 0}, {3}, false)},
       tensor<double>({1.21497644162, 0.425132874788, 0}, {3})},
      {"int_target",
       cosine_embedding(0.0, Reduction::mean),
       {e1(), e2(), I({1, -1, -1}, {3})},
       scalar(0.670994505591)},
  });
}
EMBER_OP_SUITE(CosineEmbedding, cosine_embedding_cases);

// ---- triplet_margin_loss -----------------------------------------------------------------------

OpFn triplet(losses::TripletMarginOptions o) {
  return [=](const std::vector<Tensor>& in) { return losses::triplet_margin_loss(in[0], in[1], in[2], o); };
}

std::vector<OpCase> triplet_cases() {
  // anchor e1, positive e2, negative e3: d(a, p) = (3.0512, 0.8500, 3.5976), d(a, n) = (1.2042,
  // 1.0735, 1.5075), d(p, n) = (2.2045, 0.5745, 2.4042): swap changes the second row
  Tensor e3 = T({0.9, -0.2, 1.5, 0.1, 0.45, 0.5, -0.6, 1.0, 0.3, 0.3, 0.3, -1.5}, {3, 4});
  const double inf = std::numeric_limits<double>::infinity();
  using O = losses::TripletMarginOptions;
  std::vector<OpCase> cases = with_gradgradcheck({
      {"mean", triplet({}), {e1(), e2(), e3}, scalar(2.2378706429)},
      {"p1_none",
       triplet(O{1.0, 1.0, 1e-6, false, Reduction::none}),
       {e1(), e2(), e3},
       tensor<double>({3.999998, 0.699998, 4.6}, {3})},
      {"swap_none",
       triplet(O{1.0, 2.0, 1e-6, true, Reduction::none}),
       {e1(), e2(), e3},
       tensor<double>({2.84707035114, 1.27554385539, 3.09008713714}, {3})},
      {"swap_margin_sum",
       triplet(O{2.0, 2.0, 1e-6, true, Reduction::sum}),
       {e1(), e2(), e3},
       scalar(10.2127013437)},
      {"margin_eps_none",
       triplet(O{3.0, 2.0, 0.1, false, Reduction::none}),
       {e1(), e2(), e3},
       tensor<double>({4.892609866, 2.77777756615, 5.06796138401}, {3})},
      // a negative margin: the second triplet is satisfied (0)
      {"negative_margin_none",
       triplet(O{-1.5, 2.0, 1e-6, false, Reduction::none}),
       {e1(), e2(), e3},
       tensor<double>({0.347070351143, 0, 0.590087137143}, {3})},
      {"unbatched",
       triplet(O{2.0}),
       {T({0.5, -1.2, 2.0, 0.3}, {4}), T({1.0, 0.4, -0.5, 0.8}, {4}), T({0.45, 0.5, -0.6, 1.0}, {4})},
       scalar(1.86649996135)},
      {"broadcast_positive_none",
       triplet(O{2.0, 2.0, 1e-6, false, Reduction::none}),
       {e1(), T({1.0, 0.4, -0.5, 0.8}, {1, 4}), e3},
       tensor<double>({3.84707035114, 2.44302923511, 3.58484725126}, {3})},
  });
  // the max norm: first derivatives only (norm's)
  cases.push_back({"p_inf_none",
                   triplet(O{2.0, inf, 1e-6, false, Reduction::none}),
                   {e1(), e2(), e3},
                   tensor<double>({3.500002, 1.8, 3.399998}, {3})});
  return cases;
}
EMBER_OP_SUITE(TripletMargin, triplet_cases);

// ---- huber_loss, poisson_nll_loss, gaussian_nll_loss -------------------------------------------

std::vector<OpCase> huber_cases() {
  // d = x - y = (0.5, -3, 0.25, 1.8)
  Tensor x = T({1.0, -2.0, 0.75, 3.0}, {2, 2}), y = T({0.5, 1.0, 0.5, 1.2}, {2, 2});
  auto huber = [](double delta, Reduction r) {
    return [=](const std::vector<Tensor>& in) { return losses::huber_loss(in[0], in[1], {r, delta}); };
  };
  return with_gradgradcheck({
      {"mean", huber(1.0, Reduction::mean), {x, y}, scalar(0.9890625)},
      {"delta_none",
       huber(0.4, Reduction::none),
       {x, y},
       tensor<double>({0.12, 1.12, 0.03125, 0.64}, {2, 2})},
      {"delta_sum", huber(2.0, Reduction::sum), {x, y}, scalar(5.77625)},
      {"scalars",
       huber(2.0, Reduction::none),
       {scalar(3.0).requires_grad_(true), scalar(0.0).requires_grad_(true)},
       scalar(4.0)},
  });
}
EMBER_OP_SUITE(Huber, huber_cases);

std::vector<OpCase> poisson_cases() {
  Tensor log_rate = T({0.5, -1.0, 2.0, 0.1, 1.2, -0.4}, {2, 3}),
         rate = T({0.5, 1.0, 2.0, 0.1, 1.2, 3.0}, {2, 3});
  Tensor y = T({0, 1, 3, 2.5, 0.5, 4}, {2, 3});
  // with full, the Stirling term jumps at y = 1 (masked to 0 there, -0.081 just above): no target gradient
  Tensor y_const = y.detach();
  auto poisson = [](losses::PoissonNLLOptions o) {
    return [=](const std::vector<Tensor>& in) { return losses::poisson_nll_loss(in[0], in[1], o); };
  };
  using O = losses::PoissonNLLOptions;
  return with_gradgradcheck({
      {"log_input_mean", poisson(O{}), {log_rate, y}, scalar(1.70854411628)},
      {"rate_none",
       poisson(O{false, false, 1e-8, Reduction::none}),
       {rate, y},
       tensor<double>({0.5, 0.99999999, -0.0794415566798, 5.85646248249, 1.10883921744, -1.39444916801},
                      {2, 3})},
      {"full_none",
       poisson(O{true, true, 1e-8, Reduction::none}),
       {log_rate, y_const},
       tensor<double>(
           {1.6487212707, 1.36787944117, 3.15313764247, 2.0229816469, 2.72011692274, 5.42758320428}, {2, 3})},
      {"rate_full_eps_sum",
       poisson(O{false, true, 0.1, Reduction::sum}),
       {rate, y_const},
       scalar(10.9348374195)},
  });
}
EMBER_OP_SUITE(PoissonNLL, poisson_cases);

std::vector<OpCase> gaussian_cases() {
  Tensor x = T({0.5, -1.0, 2.0, 0.1, 1.2, -0.4}, {2, 3}), y = T({0.3, -0.2, 1.5, 0.6, 1.0, 0.4}, {2, 3});
  Tensor var = T({0.5, 1.0, 2.0, 0.1, 1.2, 3.0}, {2, 3});
  auto gaussian = [](losses::GaussianNLLOptions o) {
    return [=](const std::vector<Tensor>& in) { return losses::gaussian_nll_loss(in[0], in[1], in[2], o); };
  };
  using O = losses::GaussianNLLOptions;
  return with_gradgradcheck({
      {"mean", gaussian(O{}), {x, y, var}, scalar(0.214167951595)},
      {"full_none",
       gaussian(O{true, 1e-6, Reduction::none}),
       {x, y, var},
       tensor<double>(
           {0.612364942925, 1.2389385332, 1.32801212348, 1.01764598671, 1.02676597827, 1.57491134421},
           {2, 3})},
      // one variance per example: var [N] (input's shape minus the last dim) ...
      {"var_per_example_none",
       gaussian(O{false, 1e-6, Reduction::none}),
       {x, y, T({0.5, 2.0}, {2})},
       tensor<double>(
           {-0.30657359028, 0.29342640972, -0.09657359028, 0.40907359028, 0.35657359028, 0.50657359028},
           {2, 3})},
      // ... or [N, 1]
      {"var_last_dim1_sum",
       gaussian(O{false, 1e-6, Reduction::sum}),
       {x, y, T({0.5, 2.0}, {2, 1})},
       scalar(1.1625)},
      // eps = 0.6 lifts the variances 0.5 and 0.1 (the clamp's gradient is not the clamped
      // function's, see GaussianNLL.ClampedVarianceGradientIsPyTorchs: var is constant here)
      {"eps_none",
       gaussian(O{false, 0.6, Reduction::none}),
       {x, y, var.detach()},
       tensor<double>({-0.22207947855, 0.32, 0.40907359028, -0.0470794785497, 0.107827445064, 0.655972811001},
                      {2, 3})},
      // the target broadcasts against the input (one target per example here)
      {"target_broadcast_none",
       gaussian(O{false, 1e-6, Reduction::none}),
       {x, T({0.3, -0.2}, {2, 1}), var},
       tensor<double>({-0.30657359028, 0.845, 1.06907359028, -0.701292546497, 0.907827445064, 0.555972811001},
                      {2, 3})},
      // one shared 0-d variance for a 1-D input
      {"unbatched_scalar_var",
       gaussian(O{}),
       {T({0.5, -1.0, 2.0}, {3}), T({0.3, -0.2, 1.5}, {3}), scalar(0.7).requires_grad_(true)},
       scalar(0.0430910994592)},
  });
}
EMBER_OP_SUITE(GaussianNLL, gaussian_cases);

// ---- seams and numerics ------------------------------------------------------------------------

// d sum(fn(x)) / dx, one backward
std::vector<double> grad_of(const std::function<Tensor(const Tensor&)>& fn, const std::vector<double>& x) {
  Tensor t = T(x, {static_cast<int64_t>(x.size())});
  fn(t).sum().backward();
  return t.grad().to_vector<double>();
}

TEST(MarginLosses, DerivativesAtTheHingeMatchPyTorch) {
  // clamp_min (margin_ranking, hinge_embedding, cosine_embedding, triplet) passes the gradient
  // where the hinge is exactly 0, as PyTorch's clamp_min; multi_margin counts only terms > 0
  // (torch 1.13: margin_ranking d/dx1 = -1, hinge d/dx = -1, multi_margin 0, at the tie)
  EXPECT_EQ(grad_of(
                [](const Tensor& x) {
                  return losses::margin_ranking_loss(x, T({1.5}, {1}, false), T({1}, {1}, false),
                                                     {0.5, Reduction::sum});
                },
                {2.0}),
            (std::vector<double>{-1.0}));
  EXPECT_EQ(grad_of(
                [](const Tensor& x) {
                  return losses::hinge_embedding_loss(x, T({-1, -1}, {2}, false), {1.0, Reduction::sum});
                },
                {1.0, 0.5}),
            (std::vector<double>{-1.0, -1.0}));
  Tensor x = T({0, 1, 0}, {1, 3});
  losses::multi_margin_loss(x, I({1}, {1}), {1, 1.0, {}, Reduction::sum}).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

TEST(MarginLosses, SoftMarginIsFiniteWhereExpOverflows) {
  // log(1 + exp(800)) is 800; PyTorch's log1p(exp(-y x)) overflows to inf (a deliberate difference)
  Tensor x = T({-800, 800}, {2});
  Tensor l = losses::soft_margin_loss(x, T({1, 1}, {2}, false), {Reduction::none});
  EXPECT_TRUE(tensors_close(l, tensor<double>({800, 0}, {2}), 1e-15));
  l.sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), tensor<double>({-1, 0}, {2}), 1e-15));
}

TEST(PoissonNLL, FullTargetGradientIsFiniteAtZero) {
  // torch 1.13 (x = (0.5, -1, 2, 0.1), y = (0, 1, 3, 2.5), full, sum): d/dx = exp(x) - y, and
  // d/dy = (nan, 1, -0.734721044665, 1.01629073187). The NaN comes from the masked y log y at
  // y = 0; the Stirling term is 0 for every y <= 1, so ember gives its true derivative -x there.
  Tensor x = T({0.5, -1.0, 2.0, 0.1}, {4}), y = T({0, 1, 3, 2.5}, {4});
  losses::poisson_nll_loss(x, y, {true, true, 1e-8, Reduction::sum}).backward();
  EXPECT_TRUE(tensors_close(
      x.grad(), tensor<double>({1.6487212707, -0.632120558829, 4.38905609893, -1.39482908192}, {4}), 1e-10));
  EXPECT_TRUE(tensors_close(y.grad(), tensor<double>({-0.5, 1, -0.734721044665, 1.01629073187}, {4}), 1e-10));
}

TEST(GaussianNLL, ClampedVarianceGradientIsPyTorchs) {
  // torch 1.13 clamps var in place under no_grad: var = 1e-8 counts as eps = 1e-6 in the value,
  // but its gradient is 0.5 (1 / v - (x - y)^2 / v^2) at the clamped v, not 0 (torch: -5e11, -7)
  Tensor v = T({1e-8, 0.5}, {2});
  Tensor loss = losses::gaussian_nll_loss(T({1, 2}, {2}, false), T({0, 0}, {2}, false), v,
                                          {false, 1e-6, Reduction::sum});
  EXPECT_NEAR(loss.item<double>(), 0.5 * (std::log(1e-6) + 1 / 1e-6) + 0.5 * (std::log(0.5) + 4 / 0.5), 1e-6);
  loss.backward();
  EXPECT_TRUE(tensors_close(v.grad(), tensor<double>({-499999500000.0, -7.0}, {2}), 1e-12));
  // an infinite variance is not turned into inf - inf
  EXPECT_EQ(losses::gaussian_nll_loss(T({1}, {1}, false), T({0}, {1}, false), T({INFINITY}, {1}, false))
                .item<double>(),
            INFINITY);
}

TEST(MarginLosses, BFloat16ComputesInFloat32) {
  Tensor a = R({4, 6}, -1, 1, 11, false), p = R({4, 6}, -1, 1, 12, false), n = R({4, 6}, -1, 1, 13, false);
  auto bf = [](const Tensor& t) { return t.to(DType::bfloat16); };
  Tensor ref = losses::triplet_margin_loss(a, p, n);
  Tensor h = losses::triplet_margin_loss(bf(a), bf(p), bf(n));
  EXPECT_EQ(h.dtype(), DType::bfloat16);
  EXPECT_NEAR(h.to(kFloat64).item<double>(), ref.item<double>(), 2e-2 * std::abs(ref.item<double>()));
  Tensor y = I({0, 5, 2, 3}, {4});
  Tensor m = losses::multi_margin_loss(bf(a), y, {2, 1.0, bf(R({6}, 0.5, 2, 14, false))});
  EXPECT_EQ(m.dtype(), DType::bfloat16);
  EXPECT_NEAR(m.to(kFloat64).item<double>(),
              losses::multi_margin_loss(a, y, {2, 1.0, R({6}, 0.5, 2, 14, false)}).item<double>(), 2e-2);
}

// ---- errors -------------------------------------------------------------------------------------

TEST(MarginLosses, Errors) {
  Tensor v3 = T({1, 2, 3}, {3}), m23 = T({1, 2, 3, 4, 5, 6}, {2, 3});
  EMBER_EXPECT_THROW_MSG(losses::margin_ranking_loss(v3, v3, T({1, 1, 1, 1}, {4})),
                         "margin_ranking_loss: x1 [3] and target [4] do not broadcast to one shape");
  EMBER_EXPECT_THROW_MSG(
      losses::margin_ranking_loss(v3, v3, T({1, 1, 1}, {1, 3})),
      "margin_ranking_loss: x1 [3], x2 [3] and target [1,3] must have the same number of dims");
  EMBER_EXPECT_THROW_MSG(losses::margin_ranking_loss(I({1, 2, 3}, {3}), v3, v3),
                         "margin_ranking_loss: x1 must be floating point (float32 or float64), got int64");
  EMBER_EXPECT_THROW_MSG(losses::margin_ranking_loss(v3, v3, zeros({3}, DType::boolean)),
                         "margin_ranking_loss: target must hold numbers, got bool");
  EMBER_EXPECT_THROW_MSG(losses::margin_ranking_loss(v3, Tensor(), v3),
                         "margin_ranking_loss: x2 is an undefined tensor");
  EMBER_EXPECT_THROW_MSG(losses::hinge_embedding_loss(m23, T({1, -1}, {2})),
                         "hinge_embedding_loss: input [2,3] and target [2] do not broadcast to one shape");
  // soft_margin writes the loss in the input's shape: the target may not be larger
  EMBER_EXPECT_THROW_MSG(
      losses::soft_margin_loss(v3, m23),
      "soft_margin_loss: target of shape [2,3] does not broadcast to the input's shape [3]");
  EMBER_EXPECT_THROW_MSG(losses::multilabel_soft_margin_loss(scalar(1.0), scalar(1.0)),
                         "multilabel_soft_margin_loss: input must be [N, C] or [C] (the classes along the "
                         "last dim), got a 0-d tensor");
  EMBER_EXPECT_THROW_MSG(
      losses::multilabel_soft_margin_loss(m23, m23, {T({1, 2}, {2})}),
      "multilabel_soft_margin_loss: weight of shape [2] does not broadcast to the input's shape [2,3]");
  EMBER_EXPECT_THROW_MSG(losses::multilabel_soft_margin_loss(m23, v3.reshape({3, 1})),
                         "multilabel_soft_margin_loss: target of shape [3,1] does not broadcast");
}

TEST(MultiMargin, Errors) {
  Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
  EMBER_EXPECT_THROW_MSG(
      losses::multi_margin_loss(x, I({1, 3}, {2})),
      "multi_margin_loss: target 3 at position 1 is out of range for 3 classes (valid: 0..2)");
  EMBER_EXPECT_THROW_MSG(losses::multi_margin_loss(x, I({-1, 0}, {2})),
                         "multi_margin_loss: target -1 at position 0 is out of range for 3 classes");
  EMBER_EXPECT_THROW_MSG(losses::multi_margin_loss(x, I({1, 2}, {2}), {3}),
                         "multi_margin_loss: p must be 1 or 2, got 3");
  EMBER_EXPECT_THROW_MSG(
      losses::multi_margin_loss(x, I({1, 2}, {2, 1})),
      "multi_margin_loss: target [2,1] does not match input [2,3]: expected 2 class ids ([2] or 0-d)");
  EMBER_EXPECT_THROW_MSG(losses::multi_margin_loss(x, I({1}, {1})),
                         "multi_margin_loss: target [1] does not match input [2,3]");
  EMBER_EXPECT_THROW_MSG(losses::multi_margin_loss(x, T({1, 2}, {2})),
                         "multi_margin_loss: target must hold int64 class ids, got float64");
  EMBER_EXPECT_THROW_MSG(losses::multi_margin_loss(x.reshape({1, 2, 3}), I({1}, {1})),
                         "multi_margin_loss: input must be [N, C] or [C] with C > 0, got [1,2,3]");
  EMBER_EXPECT_THROW_MSG(losses::multi_margin_loss(zeros({2, 0}, kFloat64), I({0, 0}, {2})),
                         "multi_margin_loss: input must be [N, C] or [C] with C > 0, got [2,0]");
  // torch 1.13 silently reads past a short weight; the weight must have one entry per class
  EMBER_EXPECT_THROW_MSG(
      losses::multi_margin_loss(x, I({1, 2}, {2}), {1, 1.0, T({1, 1, 1, 1}, {4}, false)}),
      "multi_margin_loss: weight must be a 1-D tensor with one entry per class ([3]), got [4]");
  EMBER_EXPECT_THROW_MSG(losses::multi_margin_loss(x, I({1, 2}, {2}), {1, 1.0, T({1, 1, 1}, {3}, true)}),
                         "multi_margin_loss: weight requires grad, but class weights are constants here");
  // no examples: none gives [0], mean NaN (torch 1.13 returns uninitialised memory)
  EXPECT_EQ(
      losses::multi_margin_loss(zeros({0, 3}, kFloat64), I({}, {0}), {1, 1.0, {}, Reduction::none}).shape(),
      (Shape{0}));
  EXPECT_TRUE(std::isnan(losses::multi_margin_loss(zeros({0, 3}, kFloat64), I({}, {0})).item<double>()));
}

TEST(CosineEmbedding, Errors) {
  EMBER_EXPECT_THROW_MSG(losses::cosine_embedding_loss(e1(), e2(), scalar(1.0)),
                         "cosine_embedding_loss: a 0-d target [] needs 1-D x1 and x2, got [3,4] and [3,4]");
  EMBER_EXPECT_THROW_MSG(losses::cosine_embedding_loss(T({1, 2}, {2}), T({1, 2}, {2}), T({1}, {1})),
                         "cosine_embedding_loss: a 1-d target [1] needs 2-D x1 and x2, got [2] and [2]");
  EMBER_EXPECT_THROW_MSG(
      losses::cosine_embedding_loss(e1(), e2(), T({1, 1, 1}, {3, 1})),
      "cosine_embedding_loss: target must be 1-D (with x1, x2 [N, D]) or 0-d (with x1, x2 [D]), got [3,1]");
  EMBER_EXPECT_THROW_MSG(losses::cosine_embedding_loss(e1(), T({1, 2, 3}, {1, 3}), T({1, 1, 1}, {3})),
                         "cosine_embedding_loss: x1 [3,4] and x2 [1,3] do not broadcast to one shape");
  EMBER_EXPECT_THROW_MSG(losses::cosine_embedding_loss(e1(), e2(), T({1, 1}, {2})),
                         "cosine_embedding_loss: target [2] and the pairs [3] do not broadcast to one shape");
}

TEST(TripletMargin, Errors) {
  EMBER_EXPECT_THROW_MSG(
      losses::triplet_margin_loss(e1(), T({1, 2, 3, 4}, {4}), e2()),
      "triplet_margin_loss: anchor [3,4], positive [4] and negative [3,4] must have the same number of dims");
  EMBER_EXPECT_THROW_MSG(
      losses::triplet_margin_loss(e1(), e2(), T({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4})),
      "triplet_margin_loss: anchor [3,4] and negative [2,4] do not broadcast to one shape");
  EMBER_EXPECT_THROW_MSG(losses::triplet_margin_loss(e1(), e2(), I({1, 2, 3, 4}, {1, 4})),
                         "triplet_margin_loss: negative must be floating point");
  EMBER_EXPECT_THROW_MSG(losses::triplet_margin_loss(e1(), e2(), e2(), {1.0, -1.0}),
                         "pairwise_distance: p must be > 0, 0, inf or -inf; got -1");
}

TEST(LikelihoodLosses, Errors) {
  Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
  EMBER_EXPECT_THROW_MSG(losses::huber_loss(x, x, {Reduction::mean, 0.0}),
                         "huber_loss: delta must be a finite number > 0, got 0");
  EMBER_EXPECT_THROW_MSG(losses::huber_loss(x, T({1, 2, 3}, {3})),
                         "huber_loss: input [2,3] and target [3] must have the same shape");
  EMBER_EXPECT_THROW_MSG(losses::poisson_nll_loss(x, T({1, 2, 3}, {3})),
                         "poisson_nll_loss: input [2,3] and target [3] must have the same shape");
  EMBER_EXPECT_THROW_MSG(losses::poisson_nll_loss(x, x, {true, false, -1.0}),
                         "poisson_nll_loss: eps must be a finite number >= 0, got -1");
  EMBER_EXPECT_THROW_MSG(losses::poisson_nll_loss(x, I({1, 2, 3, 4, 5, 6}, {2, 3})),
                         "poisson_nll_loss: target must be floating point, got int64");
  // var: the input's shape, with the last dim 1, or without the last dim; [1, 3] and [3] are not
  EMBER_EXPECT_THROW_MSG(losses::gaussian_nll_loss(x, x, T({1, 1, 1}, {1, 3})),
                         "gaussian_nll_loss: var [1,3] does not fit input [2,3]: expected the input's shape");
  EMBER_EXPECT_THROW_MSG(losses::gaussian_nll_loss(x, x, T({1, 1, 1}, {3})),
                         "gaussian_nll_loss: var [3] does not fit input [2,3]");
  EMBER_EXPECT_THROW_MSG(losses::gaussian_nll_loss(x, x, T({1, -0.5}, {2})),
                         "gaussian_nll_loss: var has a negative entry; every variance must be >= 0");
  EMBER_EXPECT_THROW_MSG(losses::gaussian_nll_loss(x, T({1, 2}, {2}), x),
                         "gaussian_nll_loss: shapes [2,3] and [2] cannot be broadcast");
  EMBER_EXPECT_THROW_MSG(losses::gaussian_nll_loss(x, x, x, {false, NAN}),
                         "gaussian_nll_loss: eps must be a finite number >= 0, got nan");
  EMBER_EXPECT_THROW_MSG(losses::gaussian_nll_loss(x, x, I({1, 1}, {2})),
                         "gaussian_nll_loss: var must be floating point, got int64");
}

}  // namespace
}  // namespace ember::testing
