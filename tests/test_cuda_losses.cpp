// The paper losses' CUDA kernels (cuda/losses/*.cu) against their CPU reference, on inputs chosen
// to take each kernel's code paths: odd widths, rows wider than the shared-memory sort, dense
// [N, C, d] layouts, exact ties in the teacher, rows that need the rescaling scan, infinities.
// Each test compares values and the input gradients of sum(out * w) for a fixed random w, in
// float64 and float32. Without a GPU every test skips with one message.
#include <ember/losses.h>

#include <limits>
#include <random>
#include <string>

#include "harness.h"
#include "losses/cce_testing.h"
#include "losses/cpu/cce_config.h"

namespace ember::testing {
namespace {

#define REQUIRE_GPU() \
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device available (the CUDA tests need a GPU)"

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs f on CPU and on CUDA copies of `inputs` (floating inputs cast to `dtype`); compares the
// outputs and, when the output requires grad, the input gradients of sum(out * w).
void expect_parity(const Fn& f, const std::vector<Tensor>& inputs, DType dtype, double tol) {
  std::vector<Tensor> cpu_in = inputs_on(inputs, Device::cpu(), dtype);
  std::vector<Tensor> gpu_in = inputs_on(inputs, Device::cuda(), dtype);
  Tensor c = f(cpu_in), g = f(gpu_in);
  ASSERT_EQ(g.device(), Device::cuda());
  ASSERT_EQ(g.dtype(), dtype);
  EXPECT_TRUE(tensors_close(g.cpu(), c, tol)) << "forward";
  if (!c.requires_grad()) return;
  Tensor w = R(c.shape(), -1, 1, 99, false).to(c.dtype());
  (c * w).sum().backward();
  (g * w.cuda()).sum().backward();
  for (size_t i = 0; i < cpu_in.size(); ++i)
    if (cpu_in[i].defined() && cpu_in[i].requires_grad() && cpu_in[i].grad().defined()) {
      ASSERT_TRUE(gpu_in[i].grad().defined()) << "input " << i;
      EXPECT_TRUE(tensors_close(gpu_in[i].grad().cpu(), cpu_in[i].grad(), tol)) << "gradient of input " << i;
    }
}

// Both dtypes with their tolerances.
void expect_parity_both(const Fn& f, const std::vector<Tensor>& inputs) {
  {
    SCOPED_TRACE("float64");
    expect_parity(f, inputs, kFloat64, 1e-10);
  }
  {
    SCOPED_TRACE("float32");
    expect_parity(f, inputs, kFloat32, 2e-4);
  }
}

// Random class ids in [0, classes) of the given shape.
Tensor class_ids(const Shape& shape, int64_t classes, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int64_t> pick(0, classes - 1);
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::vector<int64_t> v(static_cast<size_t>(count));
  for (int64_t& x : v) x = pick(gen);
  return I(v, shape);
}

// Integer-valued logits in [0, levels): many exact ties in the teacher's ranking.
Tensor tied(const Shape& shape, int levels, uint64_t seed) {
  return R(shape, 0, levels, seed, false).to(kInt64).to(kFloat64);
}

Fn pld_fn(double temperature) {
  return [=](const std::vector<Tensor>& in) {
    return losses::pld(in[0], in[1], in[2],
                       {.temperature = temperature, .reduction = losses::Reduction::none});
  };
}

TEST(CudaLosses, PLDOddWidthsAndTemperatures) {
  REQUIRE_GPU();
  for (int64_t C : {1, 2, 7, 37, 130}) {
    SCOPED_TRACE("C = " + std::to_string(C));
    expect_parity_both(pld_fn(1.0), {R({9, C}, -4, 4, 1), R({9, C}, -4, 4, 2, false), class_ids({9}, C, 3)});
    expect_parity_both(pld_fn(2.5), {R({5, C}, -4, 4, 4), R({5, C}, -4, 4, 5, false), class_ids({5}, C, 6)});
  }
}

TEST(CudaLosses, PLDTeacherTiesFollowTheStableOrder) {
  REQUIRE_GPU();
  // Three levels over 50 classes: long runs of equal teacher logits, ranked by class index.
  expect_parity_both(pld_fn(1.0), {R({12, 50}, -3, 3, 7), tied({12, 50}, 3, 8), class_ids({12}, 50, 9)});
  // Signed zeros tie with each other.
  Tensor teacher = T({0.0, -0.0, 0.0, -0.0, 1.0, 0.0, -0.0, 1.0}, {2, 4}).detach();
  expect_parity_both(pld_fn(1.0), {R({2, 4}, -2, 2, 10), teacher, I({1, 3}, {2})});
}

TEST(CudaLosses, PLDWideRowsUseTheGlobalSortSlots) {
  REQUIRE_GPU();
  // 3000 classes: 4096 sort slots, in shared memory for float32 and in global scratch for
  // float64; 256 threads, each scanning a chunk of 12 steps.
  expect_parity_both(pld_fn(1.0),
                     {R({3, 3000}, -5, 5, 11), R({3, 3000}, -5, 5, 12, false), class_ids({3}, 3000, 13)});
}

TEST(CudaLosses, PLDDenseLayout) {
  REQUIRE_GPU();
  // [N, C, d1, d2]: rows are strided by d1 * d2
  expect_parity_both(pld_fn(1.5), {R({2, 11, 3, 5}, -3, 3, 14), R({2, 11, 3, 5}, -3, 3, 15, false),
                                   class_ids({2, 3, 5}, 11, 16)});
}

TEST(CudaLosses, PLDRescalingScanForWideSpreadsAndInfinities) {
  REQUIRE_GPU();
  // Row 0 spreads over 2000 (past both dtypes' fast-path limit); row 1 holds -inf logits.
  const double inf = std::numeric_limits<double>::infinity();
  Tensor student = T({-1000.0, 5.0, 1000.0, 0.0, 2.0, -inf, 1.0, -inf, 0.5, 3.0}, {2, 5});
  Tensor teacher = T({1.0, 2.0, 3.0, 4.0, 5.0, 0.5, -1.0, 2.0, 0.0, 1.0}, {2, 5}).detach();
  expect_parity(pld_fn(1.0), {student, teacher, I({2, 0}, {2})}, kFloat64, 1e-10);
  // float32: a spread of 100 exceeds its fast-path limit (80) but not float64's
  Tensor student32 = R({4, 20}, -50, 50, 17);
  expect_parity(pld_fn(1.0), {student32, R({4, 20}, -2, 2, 18, false), class_ids({4}, 20, 19)}, kFloat32,
                2e-4);
}

TEST(CudaLosses, PLDMeanReductionAndErrors) {
  REQUIRE_GPU();
  Fn mean = [](const std::vector<Tensor>& in) { return losses::pld(in[0], in[1], in[2]); };
  expect_parity_both(mean, {R({6, 9}, -2, 2, 20), R({6, 9}, -2, 2, 21, false), class_ids({6}, 9, 22)});
  // The same messages as on the CPU: the first bad target, the first NaN teacher row.
  Tensor s = R({3, 4}, -1, 1, 23, false).cuda();
  Tensor t = R({3, 4}, -1, 1, 24, false).cuda();
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t, I({0, 4, 9}, {3}).cuda()),
                         "pld: target 4 at position 1 is out of range for 4 classes");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor t_nan = T({0.0, 1.0, 2.0, 3.0, 0.0, 1.0, nan, 3.0, nan, 0.0, 0.0, 0.0}, {3, 4}).detach().cuda();
  EMBER_EXPECT_THROW_MSG(losses::pld(s, t_nan, I({0, 1, 2}, {3}).cuda()), "row 1 contains NaN");
}

Fn opl_fn(double gamma, bool absolute_inter) {
  return [=](const std::vector<Tensor>& in) {
    return losses::opl(in[0], in[1], {.gamma = gamma, .absolute_inter = absolute_inter});
  };
}

TEST(CudaLosses, OPLOddShapesAndBothInterTerms) {
  REQUIRE_GPU();
  for (bool absolute : {false, true}) {
    SCOPED_TRACE(absolute ? "absolute_inter" : "signed inter");
    expect_parity_both(opl_fn(0.5, absolute), {R({13, 7}, -1, 1, 30), class_ids({13}, 3, 31)});
    expect_parity_both(opl_fn(2.0, absolute), {R({40, 129}, -1, 1, 32), class_ids({40}, 5, 33)});
    // one sample: no pairs at all, both means empty (loss 1, gradient 0)
    expect_parity_both(opl_fn(0.5, absolute), {R({1, 5}, -1, 1, 34), I({2}, {1})});
  }
}

TEST(CudaLosses, OPLSinglePairKindsAndZeroRows) {
  REQUIRE_GPU();
  // only positive pairs, then only negative pairs
  expect_parity_both(opl_fn(0.5, false), {R({6, 4}, -1, 1, 35), I({1, 1, 1, 1, 1, 1}, {6})});
  expect_parity_both(opl_fn(0.5, true), {R({6, 4}, -1, 1, 36), I({0, 1, 2, 3, 4, 5}, {6})});
  // an all-zero row takes the clamped-norm branch of the backward
  Tensor f = T({0, 0, 0, 1, 2, -1, 0.5, 0.5, 3, -2, 1, 0}, {4, 3});
  expect_parity_both(opl_fn(1.0, false), {f, I({0, 1, 0, 1}, {4})});
}

// in = {embeddings, classifier, target, bias (optional)}; per-position losses (Reduction::none).
Fn cce_fn(losses::CCEOptions o) {
  return [=](const std::vector<Tensor>& in) mutable {
    o.bias = in.size() > 3 ? in[3] : Tensor();
    o.reduction = losses::Reduction::none;
    return losses::cut_cross_entropy(in[0], in[1], in[2], o);
  };
}

// Shrinks the CPU's backward tiles (which the CUDA backward reuses for gradient filtering) for the
// lifetime of the object, so that small inputs span many tiles and leave partial ones.
struct SmallTiles {
  cpu::cce::TileConfig saved = cpu::cce::tile_config();
  SmallTiles() {
    cpu::cce::tile_config().bwd_rows = 4;
    cpu::cce::tile_config().bwd_vocab = 8;
  }
  ~SmallTiles() { cpu::cce::tile_config() = saved; }
};

TEST(CudaLosses, CCEMatchesTheCPUForEveryOption) {
  REQUIRE_GPU();
  SmallTiles tiles;
  const Tensor E = R({10, 6}, -1, 1, 40), C = R({37, 6}, -1, 1, 41), bias = R({37}, -1, 1, 42);
  const Tensor y = I({3, -100, 36, 0, 5, 5, -100, 20, 11, 1}, {10});  // two ignored rows
  expect_parity_both(cce_fn({}), {E, C, y});
  expect_parity_both(cce_fn({}), {E, C, y, bias});
  expect_parity_both(cce_fn({.softcap = 2.0}), {E, C, y, bias});
  expect_parity_both(cce_fn({.shift = 1}), {E, C, y});
  expect_parity_both(cce_fn({.filter_gradients = false}), {E, C, y, bias});
  // [B, T, D] with shift: rows are scored against the next position of their own sequence
  expect_parity_both(cce_fn({.shift = 1}), {R({2, 5, 6}, -1, 1, 43), C, y.view({2, 5})});
}

TEST(CudaLosses, CCEFilteringSkipsTheSameTiles) {
  REQUIRE_GPU();
  SmallTiles tiles;
  // A coarse filter_eps: many tiles are skipped, and the two backends must skip the same ones
  // (in natural and in sorted vocabulary order).
  const Tensor E = R({12, 5}, -3, 3, 44), C = R({50, 5}, -3, 3, 45);
  const Tensor y = class_ids({12}, 50, 46);
  for (bool sorted : {true, false}) {
    SCOPED_TRACE(sorted ? "sorted vocabulary" : "natural order");
    losses::detail::cce_sort_vocabulary() = sorted;
    expect_parity_both(cce_fn({.filter_eps = 1e-3}), {E, C, y});
  }
  losses::detail::cce_sort_vocabulary() = true;
}

TEST(CudaLosses, CCEWithLseAndEdgeShapes) {
  REQUIRE_GPU();
  Fn with_lse = [](const std::vector<Tensor>& in) {
    losses::CCEResult r =
        losses::cut_cross_entropy_with_lse(in[0], in[1], in[2], {.reduction = losses::Reduction::none});
    return r.loss + r.lse * r.lse;  // both outputs receive a gradient
  };
  expect_parity_both(with_lse, {R({7, 9}, -1, 1, 47), R({300, 9}, -1, 1, 48), class_ids({7}, 300, 49)});
  // N = 1; all rows ignored (mean is NaN on both, gradients zero)
  expect_parity_both(cce_fn({}), {R({1, 4}, -1, 1, 50), R({5, 4}, -1, 1, 51), I({2}, {1})});
  Fn mean = [](const std::vector<Tensor>& in) { return losses::cut_cross_entropy(in[0], in[1], in[2]); };
  expect_parity_both(mean, {R({3, 4}, -1, 1, 52), R({5, 4}, -1, 1, 53), I({-100, -100, -100}, {3})});
}

TEST(CudaLosses, CCEAgreesWithMaterialisedCrossEntropyOnTheGPU) {
  REQUIRE_GPU();
  // V = 1000: not a multiple of any tile; logits of the baseline are materialised, CCE's are not
  const Tensor e = R({16, 32}, -1, 1, 54, false).cuda(), c = R({1000, 32}, -0.5, 0.5, 55, false).cuda();
  const Tensor y = class_ids({16}, 1000, 56).cuda();
  Tensor E = e.clone().requires_grad_(), C = c.clone().requires_grad_();
  Tensor cce = losses::cut_cross_entropy(E, C, y, {.filter_gradients = false});
  cce.backward();
  Tensor E2 = e.clone().requires_grad_(), C2 = c.clone().requires_grad_();
  Tensor base = losses::cross_entropy(E2.matmul(C2.t()), y);
  base.backward();
  ASSERT_EQ(cce.device(), Device::cuda());
  EXPECT_TRUE(tensors_close(cce.cpu(), base.cpu(), 1e-10));
  EXPECT_TRUE(tensors_close(E.grad().cpu(), E2.grad().cpu(), 1e-10));
  EXPECT_TRUE(tensors_close(C.grad().cpu(), C2.grad().cpu(), 1e-10));
}

}  // namespace
}  // namespace ember::testing
