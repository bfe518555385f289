// Cut Cross-Entropy: worked examples 1-4 of cce.md, gradchecks for every option, equality with
// cross_entropy on materialised logits (random shapes, tiles that do not divide them), gradient
// filtering within its tolerance, edge cases (all rows ignored, -inf logits, NaN, C = 1, odd
// widths), the memory bound and the error paths.
#include <cmath>
#include <random>

#include "cce_problems.h"
#include "ember/losses/cce.h"
#include "ember/losses/standard.h"
#include "harness.h"
#include "losses/cce_testing.h"
#include "losses/cpu/cce_config.h"
#include "losses/kernels/cce.h"

namespace ember::testing {
namespace {

using losses::CCEOptions;
using losses::cut_cross_entropy;
using losses::cut_cross_entropy_with_lse;
using losses::Reduction;

// Every test starts from the default tiles and sorting, and restores them afterwards.
class CCE : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = cpu::cce::tile_config(); }
  void TearDown() override {
    cpu::cce::tile_config() = saved_;
    losses::detail::cce_sort_vocabulary() = true;
    losses::detail::cce_signal_mask() = true;
  }
  // Tiny tiles, so that small inputs cross row-block, vocabulary-block, split and group edges.
  static void tiny_tiles() { cpu::cce::tile_config() = {3, 4, 2, 3, 24}; }

 private:
  cpu::cce::TileConfig saved_;
};

CCEOptions with(Reduction r, double softcap = 0, int64_t shift = 0, Tensor bias = {}) {
  CCEOptions o;
  o.reduction = r;
  o.softcap = softcap;
  o.shift = shift;
  o.bias = bias;
  return o;
}

// e [N, D], c [V, D] -> the logits e c^T [N, V], materialised with elementwise ops (product and
// sum over D; independent of the BLAS path that CCE itself uses).
Tensor linear_logits(const Tensor& e, const Tensor& c) { return (e.unsqueeze(1) * c.unsqueeze(0)).sum({2}); }

// The reference: materialise the logits and call cross_entropy.
Tensor reference(const Tensor& E, const Tensor& C, const Tensor& x, const CCEOptions& o) {
  Tensor e = E, t = x;
  if (o.shift > 0) {
    const int64_t seq_dim = E.dim() - 2, T = E.size(seq_dim);
    e = E.narrow(seq_dim, 0, T - o.shift);
    t = x.narrow(x.dim() - 1, o.shift, T - o.shift);
  }
  Tensor logits = linear_logits(e.reshape({-1, E.size(-1)}), C);
  if (o.bias.defined()) logits = logits + o.bias;
  if (o.softcap > 0) logits = tanh(logits / o.softcap) * o.softcap;
  losses::CrossEntropyOptions ce;
  ce.ignore_index = o.ignore_index;
  ce.reduction = o.reduction;
  Tensor loss = losses::cross_entropy(logits, t.reshape({-1}), ce);
  return o.reduction == Reduction::none ? loss.reshape(t.shape()) : loss;
}

struct Grads {
  Tensor loss, dE, dC, db;
};
// Runs `fn` on fresh leaf copies and backpropagates sum(loss * w) for a fixed w.
Grads run_with_grads(const std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>& fn,
                     const Tensor& E, const Tensor& C, const Tensor& b) {
  Grads r;
  Tensor e = E.detach().clone().requires_grad_(), c = C.detach().clone().requires_grad_();
  Tensor bb = b.defined() ? b.detach().clone().requires_grad_() : Tensor();
  r.loss = fn(e, c, bb);
  Tensor w = r.loss.dim() == 0 ? ones({}, r.loss.options())
                               : cos(arange(0.0, static_cast<double>(r.loss.numel()), 1.0, r.loss.options())
                                         .reshape(r.loss.shape()));
  (r.loss * w).sum().backward();
  r.dE = e.grad();
  r.dC = c.grad();
  if (bb.defined()) r.db = bb.grad();
  return r;
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor randn_like_shape(const Shape& s, double scale, uint64_t seed, DType dtype = kFloat64) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(numel_of(s));
  for (double& x : v) x = dist(gen);
  return tensor<double>(v, s).to(dtype);
}

Tensor random_targets(const Shape& s, int64_t V, double ignore_fraction, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int64_t> cls(0, V - 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int64_t> v(numel_of(s));
  for (int64_t& x : v) x = u(gen) < ignore_fraction ? -100 : cls(gen);
  return tensor<int64_t>(v, s);
}

// ---- worked examples (cce.md) -----------------------------------------------------------------

Tensor ex1_E() { return T({1, 0, 0, 1}, {2, 2}); }
Tensor ex1_C() { return T({1, 0, 0, 1, 1, 1}, {3, 2}); }

TEST_F(CCE, Example1Mean) {
  Grads r = run_with_grads(
      [](const Tensor& e, const Tensor& c, const Tensor&) {
        return cut_cross_entropy(e, c, I({0, 2}, {2}));
      },
      ex1_E(), ex1_C(), {});
  EXPECT_NEAR(r.loss.item<double>(), 0.861994804, 1e-9);
  EXPECT_TRUE(tensors_close(
      r.dE, tensor<double>({-0.077681202, 0.288840601, -0.211159399, -0.077681202}, {2, 2}), 1e-9));
  EXPECT_TRUE(tensors_close(
      r.dC,
      tensor<double>({-0.288840601, 0.077681202, 0.077681202, 0.211159399, 0.211159399, -0.288840601},
                     {3, 2}),
      1e-9));
}

TEST_F(CCE, Example1SumIsTwiceTheMean) {
  Grads mean = run_with_grads(
      [](const Tensor& e, const Tensor& c, const Tensor&) {
        return cut_cross_entropy(e, c, I({0, 2}, {2}));
      },
      ex1_E(), ex1_C(), {});
  Grads sum = run_with_grads(
      [](const Tensor& e, const Tensor& c, const Tensor&) {
        return cut_cross_entropy(e, c, I({0, 2}, {2}), with(Reduction::sum));
      },
      ex1_E(), ex1_C(), {});
  EXPECT_NEAR(sum.loss.item<double>(), 1.723989608, 1e-9);
  EXPECT_TRUE(tensors_close(sum.dE, mean.dE * 2.0, 1e-14));
  EXPECT_TRUE(tensors_close(sum.dC, mean.dC * 2.0, 1e-14));
}

TEST_F(CCE, Example1BlockwiseLSE) {
  // With vocabulary blocks of 2 the row LSE is logaddexp(log(e + 1), 1) = log(2e + 1).
  cpu::cce::tile_config().fwd_vocab = 2;
  auto r = cut_cross_entropy_with_lse(ex1_E(), ex1_C(), I({0, 2}, {2}), with(Reduction::none));
  // The two blocks on their own: the first two classes give log(e + 1), the third gives 1.
  Tensor x0 = I({0, 0}, {2});
  EXPECT_TRUE(tensors_close(cut_cross_entropy_with_lse(ex1_E(), ex1_C().narrow(0, 0, 2), x0).lse,
                            tensor<double>({1.313261687, 1.313261687}, {2}), 1e-9));
  EXPECT_TRUE(tensors_close(cut_cross_entropy_with_lse(ex1_E(), ex1_C().narrow(0, 2, 1), x0).lse,
                            tensor<double>({1.0, 1.0}, {2}), 1e-9));
  EXPECT_TRUE(tensors_close(r.lse, tensor<double>({1.861994804, 1.861994804}, {2}), 1e-9));
  EXPECT_TRUE(tensors_close(r.loss, tensor<double>({0.861994804, 0.861994804}, {2}), 1e-9));
}

TEST_F(CCE, Example1ZLoss) {
  // total = mean nll + 1 * mean LSE^2; the LSE output carries its own gradient h = 2 LSE / n.
  Grads r = run_with_grads(
      [](const Tensor& e, const Tensor& c, const Tensor&) {
        auto out = cut_cross_entropy_with_lse(e, c, I({0, 2}, {2}));
        return out.loss + (out.lse * out.lse).sum() / 2.0;
      },
      ex1_E(), ex1_C(), {});
  EXPECT_NEAR(r.loss.item<double>(), 4.329019454, 1e-9);
  EXPECT_TRUE(tensors_close(
      r.dE, tensor<double>({1.495029614, 1.364479997, 0.864479997, 1.495029614}, {2, 2}), 1e-9));
  EXPECT_TRUE(tensors_close(
      r.dC,
      tensor<double>({0.497514807, 0.366965190, 0.366965190, 0.997514807, 0.997514807, 0.497514807}, {3, 2}),
      1e-9));
}

TEST_F(CCE, Example1CompSumLossesOnTopOfReductionNone) {
  // The comp-sum family is a per-row function of nll: l_tau = (exp((1 - tau) nll) - 1) / (1 - tau).
  // Built on Reduction::none, autograd hands the CCE backward the row scale p_y^(tau - 1).
  Tensor x = I({0, 2}, {2});
  Tensor nll = cut_cross_entropy(ex1_E(), ex1_C(), x, with(Reduction::none));
  EXPECT_TRUE(tensors_close(expm1(nll), full({2}, 1.367879441, kFloat64), 1e-9));                // tau = 0
  EXPECT_TRUE(tensors_close(-expm1(nll * -0.5) / 0.5, full({2}, 0.700278802, kFloat64), 1e-9));  // tau = 1.5
  EXPECT_TRUE(tensors_close(-expm1(-nll), full({2}, 0.577681202, kFloat64), 1e-9));              // tau = 2
  // ... and the gradients equal the materialised generalized_cross_entropy's.
  for (double q : {0.5, 1.0}) {
    Grads a = run_with_grads(
        [&](const Tensor& e, const Tensor& c, const Tensor&) {
          return (-expm1(cut_cross_entropy(e, c, x, with(Reduction::none)) * -q) / q).mean();
        },
        ex1_E(), ex1_C(), {});
    Grads b = run_with_grads(
        [&](const Tensor& e, const Tensor& c, const Tensor&) {
          return losses::generalized_cross_entropy(linear_logits(e, c), x, q);
        },
        ex1_E(), ex1_C(), {});
    EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), 1e-14) << q;
    EXPECT_TRUE(tensors_close(a.dE, b.dE, 1e-12)) << q;
    EXPECT_TRUE(tensors_close(a.dC, b.dC, 1e-12)) << q;
  }
}

TEST_F(CCE, Example2Softcap) {
  auto lse = cut_cross_entropy_with_lse(ex1_E(), ex1_C(), I({0, 2}, {2}), with(Reduction::mean, 2.0)).lse;
  EXPECT_TRUE(tensors_close(lse, tensor<double>({1.798383496, 1.798383496}, {2}), 1e-9));
  Grads r = run_with_grads(
      [](const Tensor& e, const Tensor& c, const Tensor&) {
        return cut_cross_entropy(e, c, I({0, 2}, {2}), with(Reduction::mean, 2.0));
      },
      ex1_E(), ex1_C(), {});
  EXPECT_NEAR(r.loss.item<double>(), 0.874149181, 1e-9);
  EXPECT_TRUE(tensors_close(
      r.dE, tensor<double>({-0.065104625, 0.246842776, -0.146381090, -0.065104625}, {2, 2}), 1e-9));
  EXPECT_TRUE(tensors_close(
      r.dC,
      tensor<double>({-0.229164246, 0.082783155, 0.082783155, 0.164059621, 0.164059621, -0.229164246},
                     {3, 2}),
      1e-9));
}

Tensor ex3_E() { return T({1, 0, 0, 1, 1, 1, 2, 0}, {4, 2}); }
Tensor ex3_x() { return I({0, 2, -100, 1}, {4}); }

TEST_F(CCE, Example3ShiftAndIgnore) {
  auto none = cut_cross_entropy_with_lse(ex3_E(), ex1_C(), ex3_x(), with(Reduction::none, 0, 1));
  EXPECT_TRUE(tensors_close(none.loss, tensor<double>({0.861994804, 0.0, 1.551444714}, {3}), 1e-9));
  EXPECT_TRUE(tensors_close(none.lse, tensor<double>({1.861994804, 0.0, 2.551444714}, {3}), 1e-9));
  Grads r = run_with_grads(
      [](const Tensor& e, const Tensor& c, const Tensor&) {
        return cut_cross_entropy(e, c, ex3_x(), with(Reduction::mean, 0, 1));
      },
      ex3_E(), ex1_C(), {});
  EXPECT_NEAR(r.loss.item<double>(), 1.206719759, 1e-9);
  EXPECT_TRUE(tensors_close(
      r.dE, tensor<double>({-0.077681202, -0.211159399, 0, 0, 0.394029221, -0.105970779, 0, 0}, {4, 2}),
      1e-9));
  EXPECT_TRUE(tensors_close(
      r.dC,
      tensor<double>({0.317130178, 0.105970779, -0.316348019, -0.394029221, -0.000782158, 0.288058442},
                     {3, 2}),
      1e-9));
}

TEST_F(CCE, Example3AsOneBatchedSequence) {
  // The same sequence as [B=1, T=4, D] gives the same numbers with the [B, T - shift] layout.
  auto out =
      cut_cross_entropy(ex3_E().view({1, 4, 2}), ex1_C(), ex3_x().view({1, 4}), with(Reduction::none, 0, 1));
  EXPECT_TRUE(tensors_close(out, tensor<double>({0.861994804, 0.0, 1.551444714}, {1, 3}), 1e-9));
}

Tensor ex4_E() { return T({3, 0}, {1, 2}); }
Tensor ex4_C() { return T({3, 0, 0, 1, 0, 2, 0, -1}, {4, 2}); }
Grads ex4_run(bool filter, double eps = std::ldexp(1.0, -12)) {
  return run_with_grads(
      [&](const Tensor& e, const Tensor& c, const Tensor&) {
        CCEOptions o = with(Reduction::sum);
        o.filter_gradients = filter;
        o.filter_eps = eps;
        return cut_cross_entropy(e, c, I({0}, {1}), o);
      },
      ex4_E(), ex4_C(), {});
}

TEST_F(CCE, Example4Filtering) {
  cpu::cce::tile_config().bwd_vocab = 2;
  losses::detail::cce_sort_vocabulary() = false;  // the example uses the natural order
  auto lse = cut_cross_entropy_with_lse(ex4_E(), ex4_C(), I({0}, {1}), with(Reduction::sum)).lse;
  EXPECT_NEAR(lse.item<double>(), 9.000370161, 1e-9);
  Grads exact = ex4_run(false), filtered = ex4_run(true);
  EXPECT_NEAR(exact.loss.item<double>(), 0.000370161, 1e-9);
  EXPECT_TRUE(tensors_close(exact.dE, tensor<double>({-0.001110277, 0.000246728}, {1, 2}), 1e-9));
  // Tile {0, 1} holds |G| = 3.7e-4 >= eps and is kept; tile {2, 3} (|G| = 1.23e-4) is skipped.
  EXPECT_TRUE(tensors_close(filtered.dE, tensor<double>({-0.001110277, 0.000123364}, {1, 2}), 1e-9));
  EXPECT_TRUE(tensors_close(
      exact.dC, tensor<double>({-0.001110277, 0, 0.000370092, 0, 0.000370092, 0, 0.000370092, 0}, {4, 2}),
      1e-9));
  EXPECT_TRUE(tensors_close(filtered.dC,
                            tensor<double>({-0.001110277, 0, 0.000370092, 0, 0, 0, 0, 0}, {4, 2}), 1e-9));
  // A threshold below every |G| keeps everything.
  EXPECT_TRUE(tensors_close(ex4_run(true, 1e-4).dE, exact.dE, 1e-15));
}

TEST_F(CCE, Example4WithVocabularySorting) {
  // Sorted by average logit ([9, 0, 0, 0], ascending and stable) the blocks are {1, 2} and {3, 0}:
  // now {1, 2} is the skipped tile. Only which negligible entries are dropped changes.
  cpu::cce::tile_config().bwd_vocab = 2;
  Grads filtered = ex4_run(true);
  EXPECT_TRUE(tensors_close(filtered.dE, tensor<double>({-0.001110277, -0.000123364}, {1, 2}), 1e-9));
  EXPECT_TRUE(tensors_close(filtered.dC,
                            tensor<double>({-0.001110277, 0, 0, 0, 0, 0, 0.000370092, 0}, {4, 2}), 1e-9));
}

// The forward's vocabulary-sorting statistic is the mean logit of every class over the scored
// rows. Without a softcap the CPU computes it as C mean(E) + b, with one as column sums of the
// capped tiles: both against the materialised mean, over several vocabulary tiles.
TEST_F(CCE, SortingStatisticIsTheMeanLogit) {
  const int64_t n = 37, D = 5, V = 300;
  const Tensor E = R({n + 3, D}, -2, 2, 31, false), C = R({V, D}, -2, 2, 32, false);
  const Tensor bias = R({V}, -1, 1, 33, false);
  const Tensor rows = arange(3, n + 3, 1, kInt64);  // rows 0..2 are not scored
  const Tensor targets = randint(0, V, {n});
  for (double softcap : {0.0, 3.0}) {
    Tensor logits = matmul(E.index_select(0, rows), C.t()) + bias;
    if (softcap > 0) logits = tanh(logits / softcap) * softcap;
    Tensor lse = zeros({n + 3}, kFloat64), nll = zeros({n + 3}, kFloat64), avg = empty({V}, kFloat64);
    Tensor mask = zeros({signal_mask_groups(n), signal_mask_words(V)}, kInt32);
    cce_forward_stub(Device::cpu(), E, C, bias, rows, targets, softcap, lse, nll, avg, 1e-9, mask);
    EXPECT_TRUE(tensors_close(avg, logits.mean({0}), 1e-12)) << "softcap " << softcap;
    EXPECT_TRUE(tensors_close(lse.narrow(0, 3, n), logsumexp(logits, {1}), 1e-12));
  }
}

TEST_F(CCE, DefaultFilterEpsilonPerDtype) {
  // Logits [20, 0, 0, 0]: the off-target softmax entries are e^-20 = 2.1e-9, below float32's
  // 2^-28 = 3.7e-9 but far above float64's 2^-57.
  cpu::cce::tile_config().bwd_vocab = 2;
  losses::detail::cce_sort_vocabulary() = false;
  Tensor E = T({20, 0}, {1, 2}, false), C = T({1, 0, 0, 1, 0, 2, 0, -1}, {4, 2}, false);
  auto de = [&](DType dtype, bool filter) {
    Tensor e = E.to(dtype).detach().clone().requires_grad_();
    CCEOptions o = with(Reduction::sum);
    o.filter_gradients = filter;
    cut_cross_entropy(e, C.to(dtype), I({0}, {1}), o).backward();
    return e.grad().to(kFloat64).to_vector<double>()[1];
  };
  const double s = std::exp(-20.0) / (1 + 3 * std::exp(-20.0));
  EXPECT_NEAR(de(kFloat64, true) / (2 * s), 1.0, 1e-12);  // (1 + 2 - 1) * S: nothing skipped
  EXPECT_NEAR(de(kFloat32, false) / (2 * s), 1.0, 1e-5);
  EXPECT_EQ(de(kFloat32, true), 0.0);  // every tile below 2^-28: all skipped
}

// ---- gradchecks: every option that changes the math ------------------------------------------

std::vector<OpCase> cce_cases() {
  Tensor E = R({5, 3}, -1, 1, 1), C = R({7, 3}, -1, 1, 2), b = R({7}, -1, 1, 3);
  Tensor E3 = R({2, 4, 3}, -1, 1, 4);
  Tensor x = I({0, 6, 3, -100, 2}, {5}), x3 = I({1, 5, -100, 0, 4, 4, 2, -100}, {2, 4});
  auto f = [](CCEOptions o, Tensor target) {
    return [o, target](const std::vector<Tensor>& in) {
      CCEOptions oo = o;
      if (in.size() > 2) oo.bias = in[2];
      return cut_cross_entropy(in[0], in[1], on_device_of(target, in[0]), oo);
    };
  };
  auto ref = [](const Tensor& e, const Tensor& c, const Tensor& t, CCEOptions o, const Tensor& bias = {}) {
    NoGradGuard g;
    o.bias = bias.defined() ? bias.detach() : Tensor();
    return reference(e.detach(), c.detach(), t, o);
  };
  CCEOptions unfiltered = with(Reduction::mean);
  unfiltered.filter_gradients = false;
  CCEOptions ignore3 = with(Reduction::sum);
  ignore3.ignore_index = 3;  // a class id can be the ignore index
  Tensor x_with3 = I({0, 6, 3, 3, 2}, {5});
  return with_gradgradcheck({
      {"mean", f(with(Reduction::mean), x), {E, C}, ref(E, C, x, with(Reduction::mean))},
      {"sum", f(with(Reduction::sum), x), {E, C}, ref(E, C, x, with(Reduction::sum))},
      {"none", f(with(Reduction::none), x), {E, C}, ref(E, C, x, with(Reduction::none))},
      {"bias", f(with(Reduction::mean), x), {E, C, b}, ref(E, C, x, with(Reduction::mean), b)},
      {"softcap", f(with(Reduction::mean, 0.7), x), {E, C}, ref(E, C, x, with(Reduction::mean, 0.7))},
      {"bias_softcap_none",
       f(with(Reduction::none, 1.5), x),
       {E, C, b},
       ref(E, C, x, with(Reduction::none, 1.5), b)},
      {"shift_batched",
       f(with(Reduction::mean, 0, 1), x3),
       {E3, C},
       ref(E3, C, x3, with(Reduction::mean, 0, 1))},
      {"shift_batched_none",
       f(with(Reduction::none, 0, 2), x3),
       {E3, C, b},
       ref(E3, C, x3, with(Reduction::none, 0, 2), b)},
      {"unfiltered", f(unfiltered, x), {E, C}, ref(E, C, x, unfiltered)},
      {"ignore_index_is_a_class", f(ignore3, x_with3), {E, C}, ref(E, C, x_with3, ignore3)},
      {"with_lse_z_loss",
       [x](const std::vector<Tensor>& in) {
         auto r = cut_cross_entropy_with_lse(in[0], in[1], on_device_of(x, in[0]));
         return r.loss + (r.lse * r.lse).sum() * 0.1;
       },
       {E, C},
       Tensor()},
  });
}

class CCEOps : public ::testing::TestWithParam<OpCase> {
 protected:
  void SetUp() override { saved_ = cpu::cce::tile_config(); }
  void TearDown() override { cpu::cce::tile_config() = saved_; }
  cpu::cce::TileConfig saved_;
};
TEST_P(CCEOps, Forward) { run_forward_check(GetParam()); }
TEST_P(CCEOps, Gradcheck) { run_gradcheck(GetParam()); }
TEST_P(CCEOps, GradcheckTinyTiles) {
  cpu::cce::tile_config() = {2, 3, 2, 2, 12};  // several row/vocab blocks, splits and row groups
  run_gradcheck(GetParam());
}
TEST_P(CCEOps, CudaParity) { run_cuda_parity(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Ops, CCEOps, ::testing::ValuesIn(cce_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) { return info.param.name; });

// ---- equality with cross_entropy on materialised logits -----------------------------------------

struct Shapes {
  Shape e;  // [N, D] or [B, T, D]
  int64_t V;
};

void expect_matches_cross_entropy(const Shapes& s, const CCEOptions& o0, DType dtype, double tol,
                                  uint64_t seed, bool with_bias) {
  const int64_t D = s.e.back();
  Tensor E = randn_like_shape(s.e, 1.0, seed, dtype), C = randn_like_shape({s.V, D}, 1.0, seed + 1, dtype);
  Tensor b = with_bias ? randn_like_shape({s.V}, 1.0, seed + 2, dtype) : Tensor();
  Tensor x = random_targets(Shape(s.e.begin(), s.e.end() - 1), s.V, 0.2, seed + 3);
  CCEOptions o = o0;
  auto cce = [&](const Tensor& e, const Tensor& c, const Tensor& bb) {
    CCEOptions oo = o;
    oo.bias = bb;
    return cut_cross_entropy(e, c, x, oo);
  };
  auto ref = [&](const Tensor& e, const Tensor& c, const Tensor& bb) {
    CCEOptions oo = o;
    oo.bias = bb;
    return reference(e, c, x, oo);
  };
  Grads a = run_with_grads(cce, E, C, b), r = run_with_grads(ref, E, C, b);
  std::string what = fmt::format("E {} V {} {} softcap {} shift {} bias {}", shape_str(s.e), s.V, dtype,
                                 o.softcap, o.shift, with_bias);
  EXPECT_LE(relative_gap(a.loss, r.loss), tol) << what;
  EXPECT_LE(relative_gap(a.dE, r.dE), tol) << what;
  EXPECT_LE(relative_gap(a.dC, r.dC), tol) << what;
  if (with_bias) EXPECT_LE(relative_gap(a.db, r.db), tol) << what;
}

TEST_F(CCE, MatchesCrossEntropyRandomShapes) {
  // Default tiles: V crosses 256/512-wide blocks without dividing them; N crosses 256-row blocks.
  std::vector<Shapes> shapes = {{{260, 9}, 530}, {{3, 70, 9}, 600}, {{37, 24}, 131}};
  uint64_t seed = 100;
  for (const Shapes& s : shapes)
    for (double cap : {0.0, 5.0})
      for (Reduction red : {Reduction::mean, Reduction::none}) {
        CCEOptions o = with(red, cap, s.e.size() == 3 ? 1 : 0);
        o.filter_gradients = false;
        expect_matches_cross_entropy(s, o, kFloat32, 1e-5, seed, true);
        expect_matches_cross_entropy(s, o, kFloat64, 1e-12, seed, cap > 0);
        seed += 10;
      }
}

TEST_F(CCE, MatchesCrossEntropyTinyTiles) {
  tiny_tiles();
  uint64_t seed = 500;
  for (Shapes s : std::vector<Shapes>{{{11, 5}, 13}, {{2, 9, 3}, 10}, {{1, 1}, 2}})
    for (bool filter : {false, true}) {
      CCEOptions o = with(Reduction::sum, 2.0, s.e.size() == 3 ? 2 : 0);
      o.filter_gradients = filter;  // float64's 2^-57 filters nothing measurable here
      expect_matches_cross_entropy(s, o, kFloat64, 1e-12, seed++, true);
    }
}

TEST_F(CCE, FilteredGradientsStayWithinTheFilterTolerance) {
  // Peaked logits (std ~ 40), so most tiles are negligible and get skipped. A skipped entry has
  // |dz| <= g eps (g = 1 for the sum), so |dE_id - exact| <= eps sum_j |C_jd| and
  // |dC_jd - exact| <= eps sum_i |E_id|. float64 with eps = 1e-6, so that rounding (1e-16) cannot
  // blur the bound.
  cpu::cce::tile_config().bwd_vocab = 8;
  cpu::cce::tile_config().bwd_rows = 4;
  const int64_t N = 40, D = 16, V = 300;
  const double eps = 1e-6;
  Tensor E = randn_like_shape({N, D}, 3.0, 7), C = randn_like_shape({V, D}, 3.0, 8);
  Tensor x = random_targets({N}, V, 0.1, 9);
  Tensor de_bound = abs(C).sum({0}).reshape({1, D}).expand({N, D}) * eps;
  Tensor dc_bound = abs(E).sum({0}).reshape({1, D}).expand({V, D}) * eps;
  for (bool sorted : {false, true}) {
    losses::detail::cce_sort_vocabulary() = sorted;
    auto run = [&](bool filter) {
      return run_with_grads(
          [&](const Tensor& e, const Tensor& c, const Tensor&) {
            CCEOptions o = with(Reduction::sum);
            o.filter_gradients = filter;
            o.filter_eps = eps;
            return cut_cross_entropy(e, c, x, o);
          },
          E, C, {});
    };
    Grads exact = run(false);
    const cpu::cce::BackwardStats all = cpu::cce::last_backward_stats();
    Grads filtered = run(true);
    const cpu::cce::BackwardStats kept = cpu::cce::last_backward_stats();
    EXPECT_EQ(exact.loss.item<double>(), filtered.loss.item<double>());  // filtering is backward-only
    EXPECT_TRUE((abs(filtered.dE - exact.dE) <= de_bound).all().item<bool>()) << sorted;
    EXPECT_TRUE((abs(filtered.dC - exact.dC) <= dc_bound).all().item<bool>()) << sorted;
    // Unfiltered, every tile is used; filtered, most are skipped. Tiles: row blocks of 4 scored
    // rows x vocabulary blocks of 8.
    const int64_t scored = (x != -100.0).sum().item<int64_t>(), tiles = (scored + 3) / 4 * ((V + 7) / 8);
    EXPECT_EQ(all.tiles, tiles);
    EXPECT_EQ(all.kept, tiles);
    EXPECT_EQ(kept.tiles, tiles);
    EXPECT_LT(kept.kept, tiles / 2) << sorted;
    EXPECT_GT(kept.kept, 0) << sorted;
  }
}

// ---- a gradient through the returned LSE under gradient filtering ------------------------------

// The LSE output's upstream gradient h adds h S_ij to every dz_ij. At a confident row's target
// (S ~ 1) that is ~h, however small |S - onehot| is there, so the filter must keep the tile that
// holds the target of a row with h != 0 (and, with h = 0, may still skip it).
TEST_F(CCE, LseGradientSurvivesFilteringOnAConfidentRow) {
  // Logits [50, 0, 0]: |S - onehot| <= 2 e^-50 everywhere, far below float64's eps = 2^-57.
  // lse = 50 (to float64) and the z-loss lse^2 sends h = 100 (g = 1): dz = [~100, 101 e^-50,
  // 101 e^-50], so dE = dz C = [100, 101 e^-50] and dC = dz^T e = [[5000, 0], [5050 e^-50, 0] x 2].
  struct Result {
    Tensor dE, dC;
    cpu::cce::BackwardStats stats;
  };
  auto run = [](bool filter, bool z_loss) {
    Tensor E = T({50.0, 0.0}, {1, 2}), C = T({1, 0, 0, 1, 0, 0}, {3, 2});
    CCEOptions o;
    o.filter_gradients = filter;
    auto r = cut_cross_entropy_with_lse(E, C, I({0}, {1}), o);
    (z_loss ? r.loss + (r.lse * r.lse).sum() : r.loss).backward();
    return Result{E.grad(), C.grad(), cpu::cce::last_backward_stats()};
  };
  const double tail = 101 * std::exp(-50.0);
  const Result exact = run(false, true), filtered = run(true, true);
  EXPECT_TRUE(tensors_close(exact.dE, tensor<double>({100, tail}, {1, 2}), 1e-12));
  EXPECT_TRUE(tensors_close(exact.dC, tensor<double>({5000, 0, 50 * tail, 0, 50 * tail, 0}, {3, 2}), 1e-12));
  EXPECT_TRUE(tensors_close(filtered.dE, exact.dE, 1e-12));
  EXPECT_TRUE(tensors_close(filtered.dC, exact.dC, 1e-12));
  EXPECT_EQ(filtered.stats.kept, 1);
  // The plain loss (h absent) keeps the fast path: its only tile is negligible and skipped.
  const Result plain = run(true, false);
  EXPECT_EQ(plain.stats.tiles, 1);
  EXPECT_EQ(plain.stats.kept, 0);
  EXPECT_TRUE(tensors_close(plain.dE, zeros({1, 2}, kFloat64), 0));
}

TEST_F(CCE, LseGradientWithASingleClass) {
  // V = 1: S = 1 and lse = z, so the loss has no gradient (SingleClassGivesZero) and dz_i = h_i.
  // With out = loss + lse^2 (none) and the weights w of run_with_grads: h_i = 2 w_i z_i.
  const Tensor E = R({3, 4}, -1, 1, 44, false), C = R({1, 4}, -1, 1, 45, false), b = R({1}, -1, 1, 46, false);
  const Tensor x = I({0, 0, 0}, {3});
  const Tensor z = (linear_logits(E, C) + b).reshape({3});
  const Tensor dz = cos(arange(0.0, 3.0, 1.0, z.options())) * z * 2.0;
  const Tensor want_dE = dz.reshape({3, 1}) * C, want_dC = (dz.reshape({3, 1}) * E).sum({0}).reshape({1, 4});
  for (bool filter : {true, false}) {
    Grads r = run_with_grads(
        [&](const Tensor& e, const Tensor& c, const Tensor& bb) {
          CCEOptions o = with(Reduction::none, 0, 0, bb);
          o.filter_gradients = filter;
          auto out = cut_cross_entropy_with_lse(e, c, x, o);
          return out.loss + out.lse * out.lse;
        },
        E, C, b);
    EXPECT_TRUE(tensors_close(r.dE, want_dE, 1e-12)) << "filter " << filter;
    EXPECT_TRUE(tensors_close(r.dC, want_dC, 1e-12)) << "filter " << filter;
    EXPECT_TRUE(tensors_close(r.db, dz.sum().reshape({1}), 1e-12)) << "filter " << filter;
  }
}

TEST_F(CCE, ZLossOnConfidentRowsMatchesTheMaterialisedGradient) {
  // Half the row blocks are confident (target logit ahead by > 40 nats), so gradient filtering
  // skips most of their tiles; with a z-loss every row's target tile still carries ~h. Filtered
  // (sorted and natural order, with the signal mask), unfiltered and materialised gradients agree,
  // for a z-loss weight that makes h ~ g and one that makes |h| >> |g|.
  cpu::cce::tile_config().bwd_rows = 4;
  cpu::cce::tile_config().bwd_vocab = 8;
  const int64_t N = 40, V = 60;
  const ConfidentProblem p = confident_problem(N, V, 4, V, 11);
  const Tensor scored = (p.x != -100.0).to(kFloat64);
  const double n = scored.sum().item<double>();
  for (double weight : {0.01, 10.0}) {
    // loss = mean nll + weight sum lse^2 / n: g = 1 / n, h = 2 weight lse / n (lse ~ 50 when confident)
    auto cce = [&](bool filter) {
      return [&, filter](const Tensor& e, const Tensor& c, const Tensor& bb) {
        CCEOptions o = with(Reduction::mean, 0, 0, bb);
        o.filter_gradients = filter;
        auto r = cut_cross_entropy_with_lse(e, c, p.x, o);
        return r.loss + (r.lse * r.lse).sum() * (weight / n);
      };
    };
    auto materialised = [&](const Tensor& e, const Tensor& c, const Tensor& bb) {
      const Tensor logits = linear_logits(e, c) + bb;
      const Tensor lse = logsumexp(logits, {1}) * scored;
      return losses::cross_entropy(logits, p.x) + (lse * lse).sum() * (weight / n);
    };
    const Grads ref = run_with_grads(materialised, p.E, p.C, p.bias);
    const Grads exact = run_with_grads(cce(false), p.E, p.C, p.bias);
    for (bool sorted : {false, true}) {
      losses::detail::cce_sort_vocabulary() = sorted;
      const Grads filtered = run_with_grads(cce(true), p.E, p.C, p.bias);
      const cpu::cce::BackwardStats stats = cpu::cce::last_backward_stats();
      const std::string what = fmt::format("weight {} sorted {}", weight, sorted);
      EXPECT_LE(relative_gap(filtered.loss, ref.loss), 1e-12) << what;
      for (const Grads* g : {&filtered, &exact}) {
        EXPECT_LE(relative_gap(g->dE, ref.dE), 1e-12) << what;
        EXPECT_LE(relative_gap(g->dC, ref.dC), 1e-12) << what;
        EXPECT_LE(relative_gap(g->db, ref.db), 1e-12) << what;
      }
      // Filtering still pays: most of the confident row blocks' tiles are skipped.
      const int64_t tiles = (static_cast<int64_t>(n) + 3) / 4 * ((V + 7) / 8);
      EXPECT_EQ(stats.tiles, tiles) << what;
      EXPECT_LT(stats.kept, tiles * 3 / 4) << what;
    }
  }
}

// ---- the signal mask (losses/kernels/cce.h) ----------------------------------------------------

// With the mask the backward drops most tiles before computing them, and every result is the same
// bits as without it (it only drops tiles the filter drops), over dtypes, options, a NaN row, and
// [B, T, D] input with a shift and ignored targets (the mask's rows are the scored rows).
TEST_F(CCE, SignalMaskDropsTilesUnseenAndChangesNoResult) {
  cpu::cce::tile_config() = {48, 64, 64, 16, int64_t{1} << 21};
  const int64_t N = 300, D = 12, V = 2000;  // three groups of 128 scored rows
  const LmProblem lm = lm_problem(N, D, V, 5);
  Tensor bias = randn_like_shape({V}, 0.5, 9);
  struct Case {
    const char* name;
    DType dtype;
    bool sorted;
    double softcap;
    bool with_bias;
    bool nan_row;
    bool sequences = false;  // as [3, 100, D] with shift 1 and every 7th target ignored
  };
  for (const Case& c : {Case{"float64", kFloat64, true, 0, false, false},
                        Case{"float64 natural order", kFloat64, false, 0, false, false},
                        Case{"float32 softcap bias", kFloat32, true, 30, true, false},
                        Case{"bfloat16", DType::bfloat16, true, 0, true, false},
                        Case{"NaN row", kFloat64, true, 0, false, true},
                        Case{"sequences, shift, ignored", kFloat64, true, 0, true, false, true}}) {
    SCOPED_TRACE(c.name);
    losses::detail::cce_sort_vocabulary() = c.sorted;
    Tensor E = lm.E.clone();
    if (c.nan_row) E.narrow(0, 200, 1).narrow(1, 3, 1).fill_(NAN);
    Tensor e = E.to(c.dtype), cc = lm.C.to(c.dtype), b = c.with_bias ? bias.to(c.dtype) : Tensor();
    Tensor x = lm.x;
    if (c.sequences) {
      e = e.reshape({3, 100, D});
      std::vector<int64_t> xs = lm.x.to_vector<int64_t>();
      for (size_t i = 0; i < xs.size(); i += 7) xs[i] = -100;
      x = tensor<int64_t>(xs, {3, 100});
    }
    auto run = [&](bool mask) {
      losses::detail::cce_signal_mask() = mask;
      Grads g = run_with_grads(
          [&](const Tensor& ee, const Tensor& ccc, const Tensor& bb) {
            CCEOptions o = with(Reduction::none, c.softcap, c.sequences ? 1 : 0, bb);
            o.filter_eps = std::ldexp(1.0, -12);
            return cut_cross_entropy(ee, ccc, x, o);
          },
          e, cc, b);
      losses::detail::cce_signal_mask() = true;
      return std::pair{g, cpu::cce::last_backward_stats()};
    };
    const auto [plain, plain_stats] = run(false);
    const auto [masked, masked_stats] = run(true);
    EXPECT_TRUE(tensors_close(masked.loss, plain.loss, 0));
    EXPECT_TRUE(tensors_close(masked.dE, plain.dE, 0));
    EXPECT_TRUE(tensors_close(masked.dC, plain.dC, 0));
    if (c.with_bias) EXPECT_TRUE(tensors_close(masked.db, plain.db, 0));
    EXPECT_EQ(plain_stats.computed, plain_stats.tiles);  // without the mask every tile is computed
    EXPECT_EQ(masked_stats.tiles, plain_stats.tiles);
    EXPECT_EQ(masked_stats.kept, plain_stats.kept);
    EXPECT_GE(masked_stats.computed, masked_stats.kept);
    if (c.nan_row) {
      EXPECT_TRUE(std::isnan(masked.dC.sum().item<double>()));  // the NaN row reaches every class
    } else if (!c.sorted) {
      EXPECT_LT(masked_stats.computed, plain_stats.tiles * 3 / 4) << masked_stats.kept << " kept";
    } else {  // sorted: most tiles are negligible, and the mask leaves few of them to compute
      EXPECT_LT(masked_stats.kept, plain_stats.tiles / 8);
      EXPECT_LT(masked_stats.computed, plain_stats.tiles / 4) << masked_stats.kept << " kept";
    }
  }
}

// The forward's mask, read directly: every (row, class) the filter keeps has its bit (target
// columns included), and every set bit is explained by the probe bound (the CPU forward's lower
// bound of a row's LSE: its largest logit over the targets of its forward row block): the class
// is the target of a row in its group, or some row there has z >= probe + log eps - margin.
TEST_F(CCE, SignalMaskMarksWhatTheFilterKeepsAndLittleElse) {
  cpu::cce::tile_config() = {40, 24, 16, 8, int64_t{1} << 21};
  const int64_t N = 260, D = 10, V = 300;
  const LmProblem lm = lm_problem(N, D, V, 17);
  const double eps = std::ldexp(1.0, -12);
  Tensor rows = arange(0.0, static_cast<double>(N)).to(DType::int64);
  Tensor lse = zeros({N}, kFloat64), nll = zeros({N}, kFloat64);
  Tensor mask = zeros({signal_mask_groups(N), signal_mask_words(V)}, DType::int32);
  cce_forward_stub(Device::cpu(), lm.E, lm.C, Tensor(), rows, lm.x, 0.0, lse, nll, Tensor(), eps, mask);
  const std::vector<double> z = linear_logits(lm.E, lm.C).to_vector<double>(), l = lse.to_vector<double>();
  const std::vector<int64_t> x = lm.x.to_vector<int64_t>();
  const std::vector<int32_t> words = mask.to_vector<int32_t>();
  std::vector<double> probe(static_cast<size_t>(N), -INFINITY);
  const int64_t block = cpu::cce::tile_config().fwd_rows;
  for (int64_t k = 0; k < N; ++k)
    for (int64_t t = k / block * block; t < std::min(N, (k / block + 1) * block); ++t)
      probe[k] = std::max(probe[k], z[k * V + x[t]]);
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(words.data());
  const int64_t W = signal_mask_words(V);
  int64_t needed = 0, set = 0;
  for (int64_t q = 0; q < signal_mask_groups(N); ++q)
    for (int64_t j = 0; j < V; ++j) {
      bool need = false, allowed = false;
      for (int64_t k = q * kSignalRows; k < std::min(N, (q + 1) * kSignalRows); ++k) {
        need |= x[k] == j || z[k * V + j] - l[k] >= std::log(eps);
        allowed |= x[k] == j || z[k * V + j] >= signal_threshold(probe[k], std::log(eps)) - 1e-9;
      }
      const bool bit = signal_bit(bits, W, q * kSignalRows, j);
      EXPECT_TRUE(bit || !need) << "group " << q << " class " << j;
      EXPECT_TRUE(!bit || allowed) << "group " << q << " class " << j;
      needed += need;
      set += bit;
    }
  EXPECT_GT(needed, 0);
  EXPECT_LT(set, 2 * needed);  // 211 set for 128 needed when written
}

// ---- edge cases -------------------------------------------------------------------------------

TEST_F(CCE, AllRowsIgnored) {
  Tensor E = R({3, 2}, -1, 1, 11), C = R({4, 2}, -1, 1, 12);
  Tensor x = I({-100, -100, -100}, {3});
  // mean over no rows is 0/0 = NaN (as cross_entropy); sum is 0; none is all zeros.
  EXPECT_TRUE(std::isnan(cut_cross_entropy(E, C, x).item<double>()));
  Tensor sum = cut_cross_entropy(E, C, x, with(Reduction::sum));
  EXPECT_EQ(sum.item<double>(), 0.0);
  EXPECT_TRUE(tensors_close(cut_cross_entropy(E, C, x, with(Reduction::none)), zeros({3}, kFloat64), 0));
  // No row is scored, so no gradient reaches E or C, even through the NaN mean.
  for (Reduction red : {Reduction::sum, Reduction::mean}) {
    Grads g = run_with_grads([&](const Tensor& e, const Tensor& c,
                                 const Tensor&) { return cut_cross_entropy(e, c, x, with(red)); },
                             E, C, {});
    EXPECT_TRUE(tensors_close(g.dE, zeros({3, 2}, kFloat64), 0));
    EXPECT_TRUE(tensors_close(g.dC, zeros({4, 2}, kFloat64), 0));
  }
  // A shift as long as the sequence leaves nothing to score either.
  EXPECT_EQ(cut_cross_entropy(E, C, I({0, 1, 2}, {3}), with(Reduction::none, 0, 3)).shape(), Shape{0});
}

TEST_F(CCE, MinusInfinityBiasMasksClasses) {
  // A -inf bias removes a class from the softmax: finite loss, zero gradient for that class.
  Tensor E = R({4, 3}, -1, 1, 21), C = R({5, 3}, -1, 1, 22);
  Tensor b = T({0.1, -INFINITY, 0.3, -INFINITY, -0.2}, {5}, false);
  Tensor x = I({0, 2, 4, 2}, {4});
  Grads r = run_with_grads(
      [&](const Tensor& e, const Tensor& c, const Tensor&) {
        return cut_cross_entropy(e, c, x, with(Reduction::mean, 0, 0, b));
      },
      E, C, {});
  // The same as cross-entropy over the three live classes.
  Tensor live = I({0, 2, 4}, {3});
  Grads ref = run_with_grads(
      [&](const Tensor& e, const Tensor& c, const Tensor&) {
        Tensor logits = linear_logits(e, index_select(c, 0, live)) + index_select(b, 0, live);
        return losses::cross_entropy(logits, I({0, 1, 2, 1}, {4}));
      },
      E, C, {});
  EXPECT_NEAR(r.loss.item<double>(), ref.loss.item<double>(), 1e-12);
  EXPECT_TRUE(tensors_close(r.dE, ref.dE, 1e-12));
  EXPECT_TRUE(tensors_close(r.dC.narrow(0, 1, 1), zeros({1, 3}, kFloat64), 0));
  EXPECT_TRUE(tensors_close(r.dC.narrow(0, 3, 1), zeros({1, 3}, kFloat64), 0));
  // A masked target has probability 0: the loss is +inf.
  EXPECT_EQ(cut_cross_entropy(E, C, I({1, 0, 0, 0}, {4}), with(Reduction::sum, 0, 0, b)).item<double>(),
            INFINITY);
  // Every class masked: LSE = -inf and the row's loss is -inf - (-inf) = NaN, as in PyTorch.
  Tensor all_masked = full({5}, -INFINITY, kFloat64);
  EXPECT_TRUE(std::isnan(cut_cross_entropy(E, C, x, with(Reduction::sum, 0, 0, all_masked)).item<double>()));
}

TEST_F(CCE, NaNPropagates) {
  Tensor E = T({0.1, NAN, 0.3, 0.2, -0.5, 0.4}, {3, 2}, false), C = R({4, 2}, -1, 1, 31, false);
  Tensor none = cut_cross_entropy(E, C, I({1, 2, 3}, {3}), with(Reduction::none));
  std::vector<double> v = none.to_vector<double>();
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_FALSE(std::isnan(v[1]));  // other rows are unaffected
  std::vector<double> lse = cut_cross_entropy_with_lse(E, C, I({1, 2, 3}, {3})).lse.to_vector<double>();
  EXPECT_TRUE(std::isnan(lse[0]));
  EXPECT_FALSE(std::isnan(lse[1]));
  EXPECT_TRUE(std::isnan(cut_cross_entropy(E, C, I({1, 2, 3}, {3})).item<double>()));
  // ... unless the NaN row is ignored.
  EXPECT_FALSE(std::isnan(cut_cross_entropy(E, C, I({-100, 2, 3}, {3})).item<double>()));
  // The NaN reaches the gradient too (filtering must not hide it).
  Tensor e = E.clone().requires_grad_();
  cut_cross_entropy(e, C, I({1, 2, 3}, {3})).backward();
  EXPECT_TRUE(std::isnan(e.grad().to_vector<double>()[0]));
}

TEST_F(CCE, SingleClassGivesZero) {
  // C = 1: the softmax is 1, the loss and every gradient are exactly 0.
  Grads r = run_with_grads(
      [](const Tensor& e, const Tensor& c, const Tensor& b) {
        return cut_cross_entropy(e, c, I({0, 0, 0}, {3}), with(Reduction::sum, 0, 0, b));
      },
      R({3, 4}, -1, 1, 41), R({1, 4}, -1, 1, 42), R({1}, -1, 1, 43));
  EXPECT_EQ(r.loss.item<double>(), 0.0);
  EXPECT_TRUE(tensors_close(r.dE, zeros({3, 4}, kFloat64), 0));
  EXPECT_TRUE(tensors_close(r.dC, zeros({1, 4}, kFloat64), 0));
  EXPECT_TRUE(tensors_close(r.db, zeros({1}, kFloat64), 0));
}

TEST_F(CCE, OddWidths) {
  tiny_tiles();
  for (int64_t D : {1, 3, 7}) {
    Tensor E = R({6, D}, -1, 1, 50 + D), C = R({5, D}, -1, 1, 60 + D), b = R({5}, -1, 1, 70 + D);
    Tensor x = I({4, 0, -100, 1, 3, 2}, {6});
    EXPECT_TRUE(passes_gradcheck(
        [&](const std::vector<Tensor>& in) {
          return cut_cross_entropy(in[0], in[1], x, with(Reduction::mean, 3.0, 0, in[2]));
        },
        {E, C, b}))
        << "D = " << D;
  }
}

TEST_F(CCE, NonContiguousInputs) {
  // A classifier stored transposed (e.g. tied to a [D, V] embedding table) and a strided E.
  Tensor Ct = R({3, 6}, -1, 1, 81), E = R({3, 5}, -1, 1, 82);
  Tensor x = I({5, 0, 2}, {3});
  Tensor got = cut_cross_entropy(E.narrow(1, 1, 3), Ct.t(), x);
  Tensor want = cut_cross_entropy(E.narrow(1, 1, 3).contiguous(), Ct.t().contiguous(), x);
  EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-14);
  EXPECT_TRUE(passes_gradcheck(
      [&](const std::vector<Tensor>& in) { return cut_cross_entropy(in[0].narrow(1, 1, 3), in[1].t(), x); },
      {E, Ct}));
}

TEST_F(CCE, SameResultOnOneOrManyThreads) {
  const int threads = get_num_threads();
  Tensor E = randn_like_shape({70, 12}, 1.0, 91, kFloat32),
         C = randn_like_shape({900, 12}, 1.0, 92, kFloat32);
  Tensor x = random_targets({70}, 900, 0.1, 93);
  auto run = [&] {
    return run_with_grads([&](const Tensor& e, const Tensor& c,
                              const Tensor&) { return cut_cross_entropy(e, c, x, with(Reduction::none)); },
                          E, C, {});
  };
  set_num_threads(1);
  Grads one = run();
  set_num_threads(std::max(2, threads));
  Grads many = run();
  set_num_threads(threads);
  EXPECT_TRUE(equal(one.loss, many.loss));  // the forward's blocking does not depend on threads
  EXPECT_LE(relative_gap(many.dE, one.dE), 1e-6);
  EXPECT_TRUE(equal(one.dC, many.dC));  // each dC row has a single owner
}

TEST_F(CCE, NeverAllocatesNTimesV) {
  // N x V float32 logits would take 8 MiB here; CCE's forward + backward must stay far below.
  const int64_t N = 512, D = 32, V = 4096;
  Tensor E = randn_like_shape({N, D}, 1.0, 95, kFloat32).requires_grad_();
  Tensor C = randn_like_shape({V, D}, 1.0, 96, kFloat32).requires_grad_();
  Tensor x = random_targets({N}, V, 0.0, 97);
  const int64_t logits_bytes = N * V * 4, grads_bytes = (N + V) * D * 4;
  cpu::reset_peak_memory_stats();
  const int64_t before = cpu::memory_stats().current_bytes;
  Tensor loss = cut_cross_entropy(E, C, x);
  loss.backward();
  const int64_t extra = cpu::memory_stats().peak_bytes - before - grads_bytes;
  EXPECT_LT(extra, logits_bytes / 4) << "extra " << extra << " bytes";
}

TEST_F(CCE, Float32MatchesFloat64) {
  Tensor E = R({9, 4}, -1, 1, 101), C = R({11, 4}, -1, 1, 102), b = R({11}, -1, 1, 103);
  Tensor x = I({0, 10, 3, -100, 5, 5, 7, 1, 2}, {9});
  auto f = [&](const Tensor& e, const Tensor& c, const Tensor& bb) {
    return cut_cross_entropy(e, c, x, with(Reduction::mean, 4.0, 0, bb));
  };
  Grads d = run_with_grads(f, E, C, b);
  Grads s = run_with_grads(f, E.to(kFloat32), C.to(kFloat32), b.to(kFloat32));
  EXPECT_EQ(s.loss.dtype(), kFloat32);
  EXPECT_LE(relative_gap(s.loss, d.loss), 1e-6);
  EXPECT_LE(relative_gap(s.dE, d.dE), 1e-5);
  EXPECT_LE(relative_gap(s.dC, d.dC), 1e-5);
  EXPECT_LE(relative_gap(s.db, d.db), 1e-5);
}

// ---- bfloat16 inputs (the CPU widens them to float32 once) --------------------------------------

TEST_F(CCE, Bfloat16RunsTheFloat32AlgorithmOnTheRoundedValues) {
  // The same computation as float32 on the bf16 values: the loss and LSE bit for bit, and the
  // gradients are the float32 gradients rounded to bf16. The CPU always sums in float32, so
  // accumulate_fp32 (a CUDA choice, off by default) changes nothing here.
  EXPECT_FALSE(CCEOptions{}.accumulate_fp32);
  tiny_tiles();
  Tensor E = R({2, 7, 5}, -1, 1, 110, false).to(kBFloat16), C = R({13, 5}, -1, 1, 111, false).to(kBFloat16);
  Tensor b = R({13}, -1, 1, 112, false).to(kBFloat16);
  Tensor x = I({0, 12, 3, -100, 5, 5, 7, 1, 2, 11, -100, 4, 6, 9}, {2, 7});
  for (bool filter : {false, true})
    for (bool fp32 : {false, true}) {
      SCOPED_TRACE(fmt::format("filter {} accumulate_fp32 {}", filter, fp32));
      CCEOptions o = with(Reduction::none, 3.0, 1);
      o.filter_gradients = filter;
      o.filter_eps = 1e-3;  // the same for both dtypes (the defaults differ)
      o.accumulate_fp32 = fp32;
      auto f = [&](const Tensor& e, const Tensor& c, const Tensor& bb) {
        CCEOptions oo = o;
        oo.bias = bb;
        auto r = cut_cross_entropy_with_lse(e, c, x, oo);
        return r.loss + r.lse * 0.25;
      };
      Grads h = run_with_grads(f, E, C, b);
      Grads s = run_with_grads(f, E.to(kFloat32), C.to(kFloat32), b.to(kFloat32));
      EXPECT_EQ(h.loss.dtype(), kFloat32);
      EXPECT_EQ(h.dE.dtype(), kBFloat16);
      EXPECT_EQ(h.dC.dtype(), kBFloat16);
      EXPECT_EQ(h.db.dtype(), kBFloat16);
      EXPECT_TRUE(equal(h.loss, s.loss));
      EXPECT_TRUE(equal(h.dE, s.dE.to(kBFloat16)));
      EXPECT_TRUE(equal(h.dC, s.dC.to(kBFloat16)));
      EXPECT_TRUE(equal(h.db, s.db.to(kBFloat16)));
    }
}

TEST_F(CCE, Bfloat16DefaultFilterEpsilonIsTwoToTheMinus12) {
  // Spec example 4 in bf16 (every value exact): |G| off the target is 1.233641e-4, below
  // 2^-12 = 2.44e-4, so with vocabulary blocks of 2 the tile {2, 3} is skipped by default.
  cpu::cce::tile_config().bwd_vocab = 2;
  losses::detail::cce_sort_vocabulary() = false;
  Tensor e = T({3, 0}, {1, 2}, false).to(kBFloat16).requires_grad_();
  Tensor c = T({3, 0, 0, 1, 0, 2, 0, -1}, {4, 2}, false).to(kBFloat16).requires_grad_();
  Tensor loss = cut_cross_entropy(e, c, I({0}, {1}), with(Reduction::sum));
  EXPECT_NEAR(loss.item<double>(), 0.000370161, 2e-6);  // LSE - 9 in float32
  loss.backward();
  // filtered dE = [-0.001110277, 0.000123364] and dC rows 2, 3 zero, to bf16 rounding (2^-9)
  std::vector<double> de = e.grad().to(kFloat64).to_vector<double>();
  EXPECT_NEAR(de[0], -0.001110277, 0.001110277 / 256);
  EXPECT_NEAR(de[1], 0.000123364, 0.000123364 / 256);
  std::vector<double> dc = c.grad().to(kFloat64).to_vector<double>();
  EXPECT_NEAR(dc[0], -0.001110277, 0.001110277 / 256);
  EXPECT_NEAR(dc[2], 0.000370092, 0.000370092 / 256);  // row 1 (kept tile): S_1 e_0 = 1.233641e-4 * 3
  for (int i = 4; i < 8; ++i) EXPECT_EQ(dc[i], 0.0) << i;
}

TEST_F(CCE, DeterministicOptionDefaultsOffAndTheCPUIgnoresIt) {
  // The CPU kernels are deterministic anyway: the flag (a CUDA choice) must not change a bit.
  EXPECT_FALSE(CCEOptions{}.deterministic);
  tiny_tiles();
  Tensor E = R({9, 4}, -1, 1, 120), C = R({11, 4}, -1, 1, 121), b = R({11}, -1, 1, 122);
  Tensor x = I({0, 10, 3, -100, 5, 5, 7, 1, 2}, {9});
  auto f = [&](bool det) {
    return [&, det](const Tensor& e, const Tensor& c, const Tensor& bb) {
      CCEOptions o = with(Reduction::none, 2.0, 0, bb);
      o.deterministic = det;
      return cut_cross_entropy(e, c, x, o);
    };
  };
  Grads a = run_with_grads(f(false), E, C, b), d = run_with_grads(f(true), E, C, b);
  EXPECT_TRUE(equal(a.loss, d.loss));
  EXPECT_TRUE(equal(a.dE, d.dE));
  EXPECT_TRUE(equal(a.dC, d.dC));
  EXPECT_TRUE(equal(a.db, d.db));
}

// ---- errors -----------------------------------------------------------------------------------

TEST_F(CCE, Errors) {
  Tensor E = R({4, 3}, -1, 1, 1, false), C = R({5, 3}, -1, 1, 2, false), x = I({0, 1, 2, 3}, {4});
  const char* n = "cut_cross_entropy: ";
  (void)n;
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(R({4}, -1, 1, 1, false), C, I({0}, {1})),
                         "cut_cross_entropy: embeddings must be [N, D] or [B, T, D], got shape [4]");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, R({5, 3, 1}, -1, 1, 2, false), x),
                         "cut_cross_entropy: classifier must be [V, D], got shape [5,3,1]");
  EMBER_EXPECT_THROW_MSG(
      cut_cross_entropy(E, R({5, 2}, -1, 1, 2, false), x),
      "cut_cross_entropy: embeddings [4,3] and classifier [5,2] have different widths (3 vs 2)");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C.to(kFloat32), x),
                         "cut_cross_entropy: classifier is float32 but embeddings are float64");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(I({1, 2}, {1, 2}), C, I({0}, {1})),
                         "cut_cross_entropy: embeddings must be float32, float64 or bfloat16, got int64");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E.to(kFloat32), C.to(kBFloat16), x),
                         "cut_cross_entropy: classifier is bfloat16 but embeddings are float32");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(zeros({4, 0}, kFloat64), zeros({5, 0}, kFloat64), x),
                         "cut_cross_entropy: embeddings [4,0] have width 0");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, zeros({0, 3}, kFloat64), x),
                         "cut_cross_entropy: classifier [0,3] has no rows");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C, x.to(kFloat32)),
                         "cut_cross_entropy: target must be int64 class ids, got float32");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C, I({0, 1, 2}, {3})),
                         "cut_cross_entropy: target has shape [3] but embeddings [4,3] need [4]");
  EMBER_EXPECT_THROW_MSG(
      cut_cross_entropy(E, C, I({0, 1, 5, 3}, {4})),
      "cut_cross_entropy: target 5 at position 2 is outside [0, 5) and is not ignore_index (-100)");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(R({2, 2, 3}, -1, 1, 1, false), C, I({0, 1, 2, -7}, {2, 2})),
                         "cut_cross_entropy: target -7 at position [1,1] is outside [0, 5)");
  EMBER_EXPECT_THROW_MSG(
      cut_cross_entropy(E, C, x, with(Reduction::mean, 0, 0, R({4}, -1, 1, 3, false))),
      "cut_cross_entropy: bias has shape [4] but the classifier has V = 5 rows (expected [5])");
  EMBER_EXPECT_THROW_MSG(
      cut_cross_entropy(E, C, x, with(Reduction::mean, 0, 0, R({5}, -1, 1, 3, false).to(kFloat32))),
      "cut_cross_entropy: bias is float32 but embeddings are float64");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C, x, with(Reduction::mean, -1.0)),
                         "cut_cross_entropy: softcap must be a finite value >= 0 (0 = no cap), got -1");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C, x, with(Reduction::mean, NAN)),
                         "cut_cross_entropy: softcap must");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C, x, with(Reduction::mean, 0, 5)),
                         "cut_cross_entropy: shift must lie in [0, T] = [0, 4] (T = sequence length), got 5");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C, x, with(Reduction::mean, 0, -1)), "got -1");
  CCEOptions bad_eps;
  bad_eps.filter_eps = -1e-3;
  EMBER_EXPECT_THROW_MSG(
      cut_cross_entropy(E, C, x, bad_eps),
      "cut_cross_entropy: filter_eps must be a finite value >= 0 (0 = the dtype's default)");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(E, C, x, with(static_cast<Reduction>(9))),
                         "cut_cross_entropy: unknown reduction 9");
  EMBER_EXPECT_THROW_MSG(cut_cross_entropy(Tensor(), C, x), "cut_cross_entropy");
}

TEST_F(CCE, InPlaceChangeBeforeBackwardIsReported) {
  Tensor E = R({3, 2}, -1, 1, 1), C = R({4, 2}, -1, 1, 2, false);
  Tensor e = E.detach().clone().requires_grad_();
  Tensor loss;
  {
    Tensor w = e * 1.0;  // a non-leaf we may modify
    loss = cut_cross_entropy(w, C, I({0, 1, 2}, {3}));
    NoGradGuard g;
    w.add_(1.0);
  }
  EXPECT_TRUE(throws_error([&] { loss.backward(); }, "cut_cross_entropy"));
}

}  // namespace
}  // namespace ember::testing
