// The paper losses' CUDA kernels (cuda/losses/*.cu) against their CPU reference, on inputs chosen
// to take each kernel's code paths: odd widths, rows wider than the shared-memory sort, dense
// [N, C, d] layouts, exact ties in the teacher, rows that need the rescaling scan, infinities.
// Each test compares values and the input gradients of sum(out * w) for a fixed random w, in
// float64 and float32 (Cut Cross-Entropy also bfloat16, against the CPU and against materialised
// cross_entropy on the GPU). Without a GPU every test skips with one message.
#include <ember/losses.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>

#include "cce_problems.h"
#include "cuda/losses/cce_splits.h"
#include "cuda/mma.h"
#include "harness.h"
#include "losses/cce_testing.h"
#include "losses/cpu/cce_config.h"
#include "losses/kernels/cce.h"

namespace ember::testing {
namespace {

// The shared CUDA test helpers (tests/harness.h) under this file's short names.
#define REQUIRE_GPU() EMBER_SKIP_WITHOUT_GPU()

using Fn = OpFn;

// expect_cuda_parity with every floating input cast to `dtype`.
void expect_parity(const Fn& f, const std::vector<Tensor>& inputs, DType dtype, double tol) {
  expect_cuda_parity(f, inputs, tol, dtype);
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

// cross_entropy on confident float32 rows: the loss log(sum) - (x_y - max) and the gradient
// softmax - onehot keep their relative accuracy (a float32 lse = max + log(sum) is only good to
// ulp(max), more than the loss 6.1e-6 of the row (70, 58, 50)). Checked against long double, as
// [2, 3] rows and as the [1, 3, 2] layout, with and without label smoothing.
TEST(CudaLosses, CrossEntropyConfidentFloat32Rows) {
  REQUIRE_GPU();
  const std::vector<float> rows = {70, 58, 50, -20, -33, -35.5};
  const std::vector<int64_t> y = {0, 1};
  for (double eps : {0.0, 0.1}) {
    SCOPED_TRACE(::testing::Message() << "eps " << eps);
    // long double reference: per row (1 - eps)(lse - x_y) + eps / C sum_c (lse - x_c), and
    // d / dx_c = p_c - (1 - eps) [c = y] - eps / C
    std::vector<double> loss_ref(2), grad_ref(6);
    for (int r = 0; r < 2; ++r) {
      long double m = -INFINITY, s = 0, smooth = 0;
      for (int c = 0; c < 3; ++c) m = std::max(m, static_cast<long double>(rows[r * 3 + c]));
      for (int c = 0; c < 3; ++c) s += std::exp(static_cast<long double>(rows[r * 3 + c]) - m);
      const long double lse = m + std::log(s);
      for (int c = 0; c < 3; ++c) smooth += lse - rows[r * 3 + c];
      loss_ref[r] = static_cast<double>((1 - static_cast<long double>(eps)) * (lse - rows[r * 3 + y[r]]) +
                                        static_cast<long double>(eps) / 3 * smooth);
      for (int c = 0; c < 3; ++c)
        grad_ref[r * 3 + c] = static_cast<double>(std::exp(rows[r * 3 + c] - lse) -
                                                  (1 - static_cast<long double>(eps)) * (c == y[r]) -
                                                  static_cast<long double>(eps) / 3);
    }
    auto close = [](const Tensor& t, const std::vector<double>& ref, double rel) {
      const std::vector<double> v = t.cpu().to(kFloat64).to_vector<double>();
      for (size_t i = 0; i < v.size(); ++i)
        if (!(std::abs(v[i] - ref[i]) <= rel * std::abs(ref[i])))
          return ::testing::AssertionFailure() << "element " << i << ": " << v[i] << " vs " << ref[i];
      return ::testing::AssertionSuccess();
    };
    losses::CrossEntropyOptions o{.label_smoothing = eps, .reduction = losses::Reduction::none};
    Tensor x = tensor<float>(rows, {2, 3}).cuda().requires_grad_(true);
    Tensor loss = losses::cross_entropy(x, I(y, {2}).cuda(), o);
    EXPECT_TRUE(close(loss, loss_ref, 4.0 / (1 << 24)));
    loss.sum().backward();
    EXPECT_TRUE(close(x.grad(), grad_ref, 1e-6));
    // [1, 3, 2]: the two rows as positions d = 0, 1
    std::vector<float> spatial(6);
    std::vector<double> spatial_grad(6);
    for (int d = 0; d < 2; ++d)
      for (int c = 0; c < 3; ++c)
        spatial[c * 2 + d] = rows[d * 3 + c], spatial_grad[c * 2 + d] = grad_ref[d * 3 + c];
    Tensor xs = tensor<float>(spatial, {1, 3, 2}).cuda().requires_grad_(true);
    Tensor sloss = losses::cross_entropy(xs, I(y, {1, 2}).cuda(), o);
    EXPECT_TRUE(close(sloss, loss_ref, 4.0 / (1 << 24)));
    sloss.sum().backward();
    EXPECT_TRUE(close(xs.grad(), spatial_grad, 1e-6));
  }
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
  // With a gradient wanted, the skipped row's ranked state is never written: the gradient kernel
  // must not run (it scattered through recycled memory). Fill the allocator's cache with garbage
  // blocks of the state's size first, then check the error and that the device still works.
  for (int i = 0; i < 4; ++i) (void)full({64, 1000}, 1e9, TensorOptions(DType::int32).device(Device::cuda()));
  Tensor big = R({64, 1000}, -1, 1, 25).cuda().detach().requires_grad_();
  Tensor big_t = R({64, 1000}, -1, 1, 26, false).cuda();
  Tensor bad = class_ids({64}, 1000, 27);
  bad.data_ptr<int64_t>()[5] = 1000;
  EMBER_EXPECT_THROW_MSG(losses::pld(big, big_t, bad.cuda()),
                         "pld: target 1000 at position 5 is out of range");
  cuda::synchronize();
  EXPECT_EQ((ones({4}).cuda() * 2.0).sum().item<float>(), 8.0f);
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

// ---- Cut Cross-Entropy ---------------------------------------------------------------------------
// float64 runs on the simple kernels of cuda/losses/cce.cu (which filter on the CPU's tiles);
// float32 and bfloat16 on the tiled kernels of cce_tiled.cu (64 x 128 tiles, float32 on FMA,
// bfloat16 on tensor cores).

// in = {embeddings, classifier, target, bias (optional)}; per-position losses (Reduction::none).
Fn cce_fn(losses::CCEOptions o) {
  return [=](const std::vector<Tensor>& in) mutable {
    o.bias = in.size() > 3 ? in[3] : Tensor();
    o.reduction = losses::Reduction::none;
    return losses::cut_cross_entropy(in[0], in[1], in[2], o);
  };
}

// Sets the CPU's backward tiles for the lifetime of the object (the float64 CUDA kernels filter on
// them too), restoring them and vocabulary sorting afterwards.
struct CPUTiles {
  cpu::cce::TileConfig saved = cpu::cce::tile_config();
  CPUTiles(int64_t rows, int64_t vocab) {
    cpu::cce::tile_config().bwd_rows = rows;
    cpu::cce::tile_config().bwd_vocab = vocab;
  }
  ~CPUTiles() {
    cpu::cce::tile_config() = saved;
    losses::detail::cce_sort_vocabulary() = true;
  }
};
constexpr int64_t kTiledRows = 64, kTiledVocab = 128;  // the tile of cuda/losses/cce_tiled.cu

TEST(CudaLosses, CCEMatchesTheCPUForEveryOption) {
  REQUIRE_GPU();
  CPUTiles tiles(4, 8);  // small inputs span many (float64) tiles
  const Tensor E = R({10, 6}, -1, 1, 40), C = R({37, 6}, -1, 1, 41), bias = R({37}, -1, 1, 42);
  const Tensor y = I({3, -100, 36, 0, 5, 5, -100, 20, 11, 1}, {10});  // two ignored rows
  expect_parity_both(cce_fn({}), {E, C, y});
  expect_parity_both(cce_fn({}), {E, C, y, bias});
  expect_parity_both(cce_fn({.softcap = 2.0}), {E, C, y, bias});
  expect_parity_both(cce_fn({.shift = 1}), {E, C, y});
  expect_parity_both(cce_fn({.filter_gradients = false}), {E, C, y, bias});
  expect_parity_both(cce_fn({.deterministic = true}), {E, C, y, bias});
  // [B, T, D] with shift: rows are scored against the next position of their own sequence
  expect_parity_both(cce_fn({.shift = 1}), {R({2, 5, 6}, -1, 1, 43), C, y.view({2, 5})});
}

TEST(CudaLosses, CCEMatchesTheCPUAcrossManyTiles) {
  REQUIRE_GPU();
  // 150 rows (three row blocks of 64, the last partial) x 300 classes (three vocabulary blocks of
  // 128, the last partial); D = 33 (not a multiple of the 32-wide chunk, nor of a 16-byte vector).
  const Tensor E = R({150, 33}, -1, 1, 60), C = R({300, 33}, -1, 1, 61), bias = R({300}, -2, 2, 62);
  const Tensor y = class_ids({150}, 300, 63);
  for (bool det : {false, true}) {
    SCOPED_TRACE(det ? "deterministic" : "atomics");
    expect_parity_both(cce_fn({.softcap = 3.0, .filter_gradients = false, .deterministic = det}),
                       {E, C, y, bias});
  }
  // D = 64: the 16-byte vector loads
  expect_parity_both(cce_fn({}), {R({70, 64}, -1, 1, 64), R({260, 64}, -1, 1, 65), class_ids({70}, 260, 66)});
}

// Inputs where gradient filtering with eps = 1e-3 skips whole tiles: targets lie in classes
// 0..99, and classes 128.. carry a bias of -20, so their softmax entries (~e^-20) are negligible.
struct FilterCase {
  Tensor E = R({150, 5}, -1, 1, 44), C = R({300, 5}, -1, 1, 45), y = class_ids({150}, 100, 46), bias;
  FilterCase() {
    std::vector<double> b(300, 0.0);
    for (size_t j = 128; j < b.size(); ++j) b[j] = -20.0;
    bias = T(b, {300}, false);
  }
};

TEST(CudaLosses, CCEFilteringSkipsTheSameTiles) {
  REQUIRE_GPU();
  // The CPU filters on tiles of the tiled kernel's shape, so both backends skip the same tiles
  // (in natural and in sorted vocabulary order, float64 and float32).
  CPUTiles tiles(kTiledRows, kTiledVocab);
  const FilterCase f;
  for (bool sorted : {true, false}) {
    SCOPED_TRACE(sorted ? "sorted vocabulary" : "natural order");
    losses::detail::cce_sort_vocabulary() = sorted;
    expect_parity_both(cce_fn({.filter_eps = 1e-3}), {f.E, f.C, f.y, f.bias});
  }
}

TEST(CudaLosses, CCEFilteringReallySkipsOnTheGPU) {
  REQUIRE_GPU();
  // Natural order: vocabulary blocks 1 and 2 (classes 128..299) are negligible for every row, so
  // with filtering their dC rows stay exactly 0; without, they get the small exact gradient.
  CPUTiles tiles(kTiledRows, kTiledVocab);
  losses::detail::cce_sort_vocabulary() = false;
  const FilterCase f;
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    auto dC = [&](bool filter) {
      Tensor C = f.C.detach().to(Device::cuda(), dt).requires_grad_();
      losses::CCEOptions o{
          .bias = f.bias.to(Device::cuda(), dt), .filter_gradients = filter, .filter_eps = 1e-3};
      losses::cut_cross_entropy(f.E.detach().to(Device::cuda(), dt), C, f.y.cuda(), o).backward();
      return C.grad().to(kFloat64).cpu().narrow(0, 128, 172);
    };
    EXPECT_EQ(dC(true).abs().max().item<double>(), 0.0);
    EXPECT_GT(dC(false).abs().max().item<double>(), 0.0);
  }
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
  // one row against a vocabulary of one tile's worth plus one (the forward splits it in two)
  expect_parity_both(cce_fn({}), {R({1, 8}, -1, 1, 57), R({129, 8}, -1, 1, 58), I({128}, {1})});
}

struct CCEGrads {
  Tensor loss, dE, dC, db;
};

// Per-position losses of CCE (or of the materialised reference) for inputs moved to `device` as
// `dtype`, and the gradients of sum(loss * w) + 0.1 sum(lse) (w = cos(index)), so that both the
// per-row upstream gradient g and the LSE's h vary.
CCEGrads run_cce(const Tensor& E0, const Tensor& C0, const Tensor& y0, const Tensor& b0, losses::CCEOptions o,
                 Device device, DType dtype, bool materialised = false) {
  Tensor E = E0.detach().to(device, dtype).requires_grad_(),
         C = C0.detach().to(device, dtype).requires_grad_();
  Tensor b = b0.defined() ? b0.detach().to(device, dtype).requires_grad_() : Tensor();
  const Tensor y = y0.to(device);
  o.bias = b;
  o.reduction = losses::Reduction::none;
  Tensor loss, lse;
  if (!materialised) {
    losses::CCEResult r = losses::cut_cross_entropy_with_lse(E, C, y, o);
    loss = r.loss;
    lse = r.lse;
  } else {  // the logits, in float32 at least, then cross_entropy; lse from logsumexp
    const DType wide = dtype == kBFloat16 ? kFloat32 : dtype;
    Tensor e = E.to(wide), x = y;
    if (o.shift > 0) {
      const int64_t seq = E.dim() - 2, T = E.size(seq);
      e = e.narrow(seq, 0, T - o.shift);
      x = y.narrow(y.dim() - 1, o.shift, T - o.shift);
    }
    Tensor logits = e.reshape({-1, E.size(-1)}).matmul(C.to(wide).t());
    if (b.defined()) logits = logits + b.to(wide);
    if (o.softcap > 0) logits = tanh(logits / o.softcap) * o.softcap;
    losses::CrossEntropyOptions ce;
    ce.reduction = losses::Reduction::none;
    loss = losses::cross_entropy(logits, x.reshape({-1}), ce).reshape(x.shape());
    lse = logsumexp(logits, {1}).reshape(x.shape()) * (x != -100).to(wide);
  }
  const Tensor w =
      cos(arange(0.0, static_cast<double>(loss.numel()), 1.0, loss.options())).reshape(loss.shape());
  ((loss * w).sum() + lse.sum() * 0.1).backward();
  return {loss, E.grad(), C.grad(), b.defined() ? b.grad() : Tensor()};
}

void expect_close(const CCEGrads& a, const CCEGrads& b, double loss_tol, double grad_tol) {
  EXPECT_LE(relative_gap(a.loss, b.loss), loss_tol) << "loss";
  EXPECT_LE(relative_gap(a.dE, b.dE), grad_tol) << "dE";
  EXPECT_LE(relative_gap(a.dC, b.dC), grad_tol) << "dC";
  if (b.db.defined()) EXPECT_LE(relative_gap(a.db, b.db), grad_tol) << "db";
}

// bf16 gradients against a reference, by accumulation mode (max |diff| / max |ref|). Both modes
// round dz to bf16 before the gradient products and the result to bf16 (2^-9 relative each), so
// accumulate_fp32 keeps 1.5e-2. In place (the default), each of an entry's k tile contributions
// is rounded to bf16 once more and each addition rounds the running sum (2^-9 of it): up to 2k
// more half-ulps, adding like a random walk, ~sqrt(2k) 2^-9 ~ 0.8% typical for the k <= 8
// contributions per entry of the shapes here (e.g. dE of 1000 classes: 8 vocabulary blocks).
constexpr double kBf16Fp32Tol = 1.5e-2, kBf16InPlaceTol = 2.5e-2;

struct Shape3 {
  Shape e;  // [N, D] or [B, T, D]
  int64_t V;
};

TEST(CudaLosses, CCEAgreesWithMaterialisedCrossEntropyOnTheGPU) {
  REQUIRE_GPU();
  // V not a multiple of the 128-wide tile; N = 1; [B, T, D] with a shift; ignored rows; D both a
  // multiple of 8 (vector loads) and not.
  const std::vector<Shape3> shapes = {{{16, 32}, 1000}, {{1, 7}, 300}, {{2, 70, 24}, 257}, {{130, 64}, 129}};
  uint64_t seed = 200;
  for (const Shape3& s : shapes)
    for (double cap : {0.0, 4.0}) {
      const int64_t D = s.e.back();
      const Tensor E = R(s.e, -1, 1, seed, false), C = R({s.V, D}, -0.5, 0.5, seed + 1, false);
      const Tensor b = R({s.V}, -1, 1, seed + 2, false);
      Shape ys(s.e.begin(), s.e.end() - 1);
      Tensor y = class_ids(ys, s.V, seed + 3).reshape({-1});
      std::vector<int64_t> yv = y.to_vector<int64_t>();
      for (size_t i = 0; i < yv.size(); i += 5) yv[i] = -100;  // every fifth position ignored
      y = I(yv, ys);
      seed += 10;
      losses::CCEOptions o{.softcap = cap, .shift = s.e.size() == 3 ? 1 : 0, .filter_gradients = false};
      const std::string what = fmt::format("E {} V {} softcap {}", shape_str(s.e), s.V, cap);
      {
        SCOPED_TRACE("float64 " + what);
        expect_close(run_cce(E, C, y, b, o, Device::cuda(), kFloat64),
                     run_cce(E, C, y, b, o, Device::cuda(), kFloat64, true), 1e-12, 1e-11);
      }
      {
        SCOPED_TRACE("float32 " + what);
        expect_close(run_cce(E, C, y, b, o, Device::cuda(), kFloat32),
                     run_cce(E, C, y, b, o, Device::cuda(), kFloat32, true), 2e-6, 2e-5);
      }
      {
        // bf16 inputs against fp32 math on the same (rounded) values: the loss differs by fp32
        // rounding only; the gradients by bf16 rounding (kBf16*Tol). D = 7 takes the scalar bf16
        // atomics of the in-place mode, the even widths the bfloat162 pairs.
        const Tensor Eb = E.to(kBFloat16), Cb = C.to(kBFloat16), bb = b.to(kBFloat16);
        const CCEGrads ref = run_cce(Eb, Cb, y, bb, o, Device::cuda(), kFloat32, true);
        for (bool fp32 : {false, true}) {
          SCOPED_TRACE(fmt::format("bfloat16 accumulate_fp32 {} {}", fp32, what));
          losses::CCEOptions ob = o;
          ob.accumulate_fp32 = fp32;
          CCEGrads g = run_cce(Eb, Cb, y, bb, ob, Device::cuda(), kBFloat16);
          EXPECT_EQ(g.loss.dtype(), kFloat32);
          EXPECT_EQ(g.dE.dtype(), kBFloat16);
          EXPECT_EQ(g.dC.dtype(), kBFloat16);
          expect_close(g, ref, 2e-5, fp32 ? kBf16Fp32Tol : kBf16InPlaceTol);
        }
      }
    }
}

// A gradient through the returned LSE under gradient filtering: it adds h S to every dz, ~h at a
// confident row's target however small |S - onehot| is there, so the tile holding the target of a
// row with h != 0 must be kept (on each backend; cce.cu and cce_tiled.cu test it as the CPU does).
// Scored rows 0..63 and 128.. are confident (target logit ahead by > 40 nats) with targets in
// classes 0..99, so filtering skips most of their tiles; rows 64..127 have a near-uniform softmax.
TEST(CudaLosses, CCELseGradientSurvivesFilteringOnConfidentRows) {
  REQUIRE_GPU();
  CPUTiles tiles(kTiledRows, kTiledVocab);  // the CPU keeps the tiles the GPU keeps
  const ConfidentProblem f = confident_problem(150, 300, kTiledRows, 100, 77);
  Fn z_loss = [](const std::vector<Tensor>& in) {
    losses::CCEResult r = losses::cut_cross_entropy_with_lse(
        in[0], in[1], in[2], {.bias = in[3], .reduction = losses::Reduction::none});
    return r.loss + r.lse * r.lse * 0.01;  // h = 0.02 lse w (w: the parity check's weights)
  };
  for (bool sorted : {false, true}) {
    SCOPED_TRACE(sorted ? "sorted vocabulary" : "natural order");
    losses::detail::cce_sort_vocabulary() = sorted;
    // (the problem's tensors are constants: as leaves that require grad, the gradients are compared too)
    auto leaf = [](const Tensor& t) { return t.detach().requires_grad_(true); };
    expect_parity_both(z_loss, {leaf(f.E), leaf(f.C), f.x, leaf(f.bias)});
  }
  // Against materialised logits on the GPU (run_cce's h = 0.1 on every row), filtering on.
  const losses::CCEOptions o{};
  {
    SCOPED_TRACE("float64");
    expect_close(run_cce(f.E, f.C, f.x, f.bias, o, Device::cuda(), kFloat64),
                 run_cce(f.E, f.C, f.x, f.bias, o, Device::cuda(), kFloat64, true), 1e-12, 1e-11);
  }
  {
    SCOPED_TRACE("float32");
    expect_close(run_cce(f.E, f.C, f.x, f.bias, o, Device::cuda(), kFloat32),
                 run_cce(f.E, f.C, f.x, f.bias, o, Device::cuda(), kFloat32, true), 2e-6, 2e-5);
  }
  const Tensor Eb = f.E.to(kBFloat16), Cb = f.C.to(kBFloat16), bb = f.bias.to(kBFloat16);
  const CCEGrads ref = run_cce(Eb, Cb, f.x, bb, o, Device::cuda(), kFloat32, true);
  for (bool fp32 : {false, true}) {
    SCOPED_TRACE(fmt::format("bfloat16 accumulate_fp32 {}", fp32));
    expect_close(run_cce(Eb, Cb, f.x, bb, {.accumulate_fp32 = fp32}, Device::cuda(), kBFloat16), ref, 2e-5,
                 fp32 ? kBf16Fp32Tol : kBf16InPlaceTol);
  }
}

TEST(CudaLosses, CCEBfloat16MatchesTheCPU) {
  REQUIRE_GPU();
  // The CPU runs bf16 inputs in float32 (exact products, fp32 sums); the GPU on tensor cores
  // (exact products, fp32 sums in another order; dz rounded to bf16 before the gradient GEMMs;
  // by default dE and dC summed in bf16 in place, with accumulate_fp32 in fp32 scratch).
  const Tensor E = R({150, 48}, -1, 1, 70, false).to(kBFloat16),
               C = R({300, 48}, -1, 1, 71, false).to(kBFloat16);
  const Tensor b = R({300}, -1, 1, 72, false).to(kBFloat16);
  const Tensor y = class_ids({150}, 300, 73);
  for (losses::CCEOptions o :
       {losses::CCEOptions{}, losses::CCEOptions{.softcap = 3.0}, losses::CCEOptions{.accumulate_fp32 = true},
        losses::CCEOptions{.softcap = 3.0, .accumulate_fp32 = true},
        losses::CCEOptions{.filter_gradients = false, .deterministic = true}}) {
    SCOPED_TRACE(fmt::format("softcap {} deterministic {} accumulate_fp32 {}", o.softcap, o.deterministic,
                             o.accumulate_fp32));
    CCEGrads g = run_cce(E, C, y, b, o, Device::cuda(), kBFloat16);
    CCEGrads c = run_cce(E, C, y, b, o, Device::cpu(), kBFloat16);
    EXPECT_EQ(c.dE.dtype(), kBFloat16);
    const bool in_place = !o.accumulate_fp32 && !o.deterministic;
    expect_close(g, c, 2e-5, in_place ? kBf16InPlaceTol : kBf16Fp32Tol);
  }
  // Larger D with the 16-byte vector loads (D % 8 == 0) and a D tail past the 64-wide chunk.
  const Tensor E2 = R({40, 200}, -1, 1, 74, false).to(kBFloat16),
               C2 = R({260, 200}, -0.3, 0.3, 75, false).to(kBFloat16);
  const Tensor y2 = class_ids({40}, 260, 76);
  expect_close(run_cce(E2, C2, y2, Tensor(), {}, Device::cuda(), kBFloat16),
               run_cce(E2, C2, y2, Tensor(), {}, Device::cpu(), kBFloat16), 2e-5, kBf16InPlaceTol);
  expect_close(run_cce(E2, C2, y2, Tensor(), {.accumulate_fp32 = true}, Device::cuda(), kBFloat16),
               run_cce(E2, C2, y2, Tensor(), {}, Device::cpu(), kBFloat16), 2e-5, kBf16Fp32Tol);
}

TEST(CudaLosses, CCEDeterministicIsBitwiseRepeatable) {
  REQUIRE_GPU();
  // 300 rows x 1000 classes: 5 x 8 tiles, so the atomics of the default mode race on every dE and
  // dC row; the deterministic mode must give the same bits twice (and agree with the default,
  // which for bf16 sums in bf16 in place: up to 8 contributions per dE entry, 5 per dC entry).
  const Tensor E = R({300, 40}, -1, 1, 80, false), C = R({1000, 40}, -1, 1, 81, false);
  const Tensor b = R({1000}, -1, 1, 82, false);
  const Tensor y = class_ids({300}, 1000, 83);
  for (DType dt : {kFloat32, kBFloat16}) {
    SCOPED_TRACE(std::string(dtype_name(dt)));
    const losses::CCEOptions det{.deterministic = true};
    CCEGrads a = run_cce(E, C, y, b, det, Device::cuda(), dt);
    CCEGrads a2 = run_cce(E, C, y, b, det, Device::cuda(), dt);
    EXPECT_TRUE(equal(a.loss.cpu(), a2.loss.cpu()));
    EXPECT_TRUE(equal(a.dE.cpu(), a2.dE.cpu()));
    EXPECT_TRUE(equal(a.dC.cpu(), a2.dC.cpu()));
    EXPECT_TRUE(equal(a.db.cpu(), a2.db.cpu()));
    expect_close(run_cce(E, C, y, b, {}, Device::cuda(), dt), a, 0.0,
                 dt == kBFloat16 ? kBf16InPlaceTol : 1e-5);
    if (dt == kBFloat16)  // fp32 sums in another order: only the final rounding to bf16 differs
      expect_close(run_cce(E, C, y, b, {.accumulate_fp32 = true}, Device::cuda(), dt), a, 0.0, 1e-2);
  }
}

TEST(CudaLosses, CCEAtomicLaunchOrderCoversEveryTile) {
  REQUIRE_GPU();
  // 1100 rows = 18 row blocks: one full launch group of 16 row blocks and a partial one of 2, so
  // the grouped tile order of the atomic backward must visit every (row block, vocabulary block).
  const Tensor E = R({1100, 8}, -1, 1, 84, false), C = R({300, 8}, -1, 1, 85, false);
  const Tensor y = class_ids({1100}, 300, 86);
  const losses::CCEOptions o{.filter_gradients = false};
  expect_close(run_cce(E, C, y, Tensor(), o, Device::cuda(), kFloat32),
               run_cce(E, C, y, Tensor(), o, Device::cpu(), kFloat32), 2e-6, 2e-5);
}

TEST(CudaLosses, CCEGradcheckOnTheGPU) {
  REQUIRE_GPU();
  // float64 (the simple kernels), every option that changes the math.
  const Tensor E = R({5, 3}, -1, 1, 90), C = R({7, 3}, -1, 1, 91), b = R({7}, -1, 1, 92);
  const Tensor y = I({0, 6, 3, -100, 2}, {5});
  for (losses::CCEOptions o : {losses::CCEOptions{}, losses::CCEOptions{.softcap = 0.7},
                               losses::CCEOptions{.shift = 1, .filter_gradients = false}}) {
    SCOPED_TRACE(fmt::format("softcap {} shift {}", o.softcap, o.shift));
    auto fn = [o, y](const std::vector<Tensor>& in) {
      losses::CCEOptions oo = o;
      oo.bias = in[2];
      auto r = losses::cut_cross_entropy_with_lse(in[0], in[1], y.cuda(), oo);
      return r.loss + (r.lse * r.lse).sum() * 0.1;
    };
    EXPECT_TRUE(passes_gradcheck(fn, inputs_on({E, C, b}, Device::cuda())));
  }
}

TEST(CudaLosses, CCEOnTheGPUNeverAllocatesNTimesV) {
  REQUIRE_GPU();
  // float32 logits would take 64 MiB; beyond the inputs and dE + dC (the outputs), CCE's forward
  // plus backward may use O(N + V) scratch only. (R() is float64: the inputs are made float32, the
  // dtype whose gradient bytes are subtracted below.)
  const int64_t N = 1024, D = 64, V = 16384;
  Tensor E = R({N, D}, -1, 1, 93, false).to(Device::cuda(), kFloat32).requires_grad_();
  Tensor C = R({V, D}, -1, 1, 94, false).to(Device::cuda(), kFloat32).requires_grad_();
  const Tensor y = class_ids({N}, V, 95).cuda();
  cuda::synchronize();
  cuda::reset_peak_memory_stats();
  const int64_t before = cuda::memory_stats().current_bytes;
  losses::cut_cross_entropy(E, C, y).backward();
  cuda::synchronize();
  const int64_t extra = cuda::memory_stats().peak_bytes - before - (N + V) * D * 4;
  EXPECT_LT(extra, N * V * 4 / 16) << "extra " << extra << " bytes";
}

// Growth of the GPU's allocated bytes during CCE's backward (the forward has run), bf16 inputs.
int64_t bf16_backward_peak_growth(int64_t N, int64_t D, int64_t V, bool accumulate_fp32) {
  Tensor E = R({N, D}, -1, 1, 96, false).to(Device::cuda(), kBFloat16).requires_grad_();
  Tensor C = R({V, D}, -1, 1, 97, false).to(Device::cuda(), kBFloat16).requires_grad_();
  const Tensor y = class_ids({N}, V, 98).cuda();
  Tensor loss = losses::cut_cross_entropy(E, C, y, {.accumulate_fp32 = accumulate_fp32});
  cuda::synchronize();
  cuda::reset_peak_memory_stats();
  const int64_t before = cuda::memory_stats().current_bytes;
  loss.backward();
  cuda::synchronize();
  return cuda::memory_stats().peak_bytes - before;
}

TEST(CudaLosses, CCEBfloat16GradientMemoryIsAtTheLowerBound) {
  REQUIRE_GPU();
  // The target: the backward's peak is the bf16 dE + dC it must return (the lower bound)
  // plus O(N + V) (per-row vectors, the vocabulary order and its sort, db's fp32 sums): within
  // 1% + 4 MiB here. accumulate_fp32 adds fp32 scratch of both shapes: twice the bound again.
  // dE and dC are powers of two in bytes (1 and 16 MiB), so the caching allocator's size classes
  // (steps of 1/8 of a power of two) add nothing to them; at the Gemma 2 shape they round dC's
  // 1125 MiB up to 1152 MiB, which bench_cuda_cce's peak includes.
  const int64_t N = 2048, D = 256, V = 32768;
  const int64_t bound = (N + V) * D * 2;  // 17.8 MB
  const int64_t in_place = bf16_backward_peak_growth(N, D, V, false);
  EXPECT_GE(in_place, bound);  // the outputs themselves
  EXPECT_LE(in_place, bound + bound / 100 + (int64_t{4} << 20)) << "bound " << bound;
  const int64_t fp32 = bf16_backward_peak_growth(N, D, V, true);
  EXPECT_GE(fp32, 3 * bound) << "bound " << bound;
}

// ---- the mma core of the bf16 CCE kernels ----------------------------------------------------

// Sets the CUDA kernels' bf16 core for the lifetime of the object.
struct CudaCore {
  losses::detail::CCECudaCore saved = losses::detail::cce_cuda_core();
  explicit CudaCore(losses::detail::CCECudaCore core) { losses::detail::cce_cuda_core() = core; }
  ~CudaCore() { losses::detail::cce_cuda_core() = saved; }
};

// Runs everywhere (no GPU needed): an emulation of ldmatrix .x4 (and .trans) as the PTX ISA
// describes it, checking that the row addresses the mma core gives it (cuda_mma::ldsm_*_offset)
// deliver to each lane exactly the values mma.m16n8k16 expects in its registers
// (cuda_mma::a_element / b_element), that those addresses are 16-byte aligned and free of bank
// conflicts with the core's shared-memory row strides, and that the accumulator layout covers the
// 16 x 8 tile once in the pattern the core's stores assume.
TEST(CudaMma, LdmatrixFeedsTheMmaFragments) {
  namespace mma = cuda_mma;
  // A shared-memory tile whose element (row, col) holds its own coordinates.
  auto value = [](int row, int col) { return 1000 * row + col; };
  // ldmatrix .x4: register q of lane l holds row l / 4 of matrix q, columns 2 (l % 4) + {0, 1}; the
  // address of that row came from lane 8 q + l / 4.
  auto ldsm = [&](mma::Coord (*offset)(int), int lane, int q, int half) {
    const mma::Coord row = offset(8 * q + lane / 4);
    return value(row.row, row.col + 2 * (lane % 4) + half);
  };
  // .trans: register q of lane l holds column l / 4 of rows 2 (l % 4) + {0, 1} of matrix q; the
  // address of row 2 (l % 4) + half came from lane 8 q + 2 (l % 4) + half.
  auto ldsm_trans = [&](mma::Coord (*offset)(int), int lane, int q, int half) {
    const mma::Coord row = offset(8 * q + 2 * (lane % 4) + half);
    return value(row.row, row.col + lane / 4);
  };
  for (int lane = 0; lane < 32; ++lane) {
    SCOPED_TRACE(fmt::format("lane {}", lane));
    for (int q = 0; q < 4; ++q)
      for (int half = 0; half < 2; ++half) {
        const mma::Coord a = mma::a_element(lane, q, half);
        EXPECT_EQ(ldsm(mma::ldsm_a_offset, lane, q, half), value(a.row, a.col)) << "A register " << q;
        // B stored [n][k]: registers 0, 1 are b0, b1 of columns 0..7; 2, 3 those of columns 8..15.
        const mma::Coord b = mma::b_element(lane, q % 2, half);  // (k, n)
        EXPECT_EQ(ldsm(mma::ldsm_b_offset, lane, q, half), value(8 * (q / 2) + b.col, b.row))
            << "B register " << q;
        // A stored [k][m] (A^T row-major): element (m, k) of A sits at (k, m).
        EXPECT_EQ(ldsm_trans(mma::ldsm_a_trans_offset, lane, q, half), value(a.col, a.row))
            << "A (trans) register " << q;
        // B stored [k][n]: element (k, n) of fragment q / 2 sits at (k, 8 (q / 2) + n).
        EXPECT_EQ(ldsm_trans(mma::ldsm_b_trans_offset, lane, q, half), value(b.row, 8 * (q / 2) + b.col))
            << "B (trans) register " << q;
      }
    // The core stores values 0, 1 at (row, col + {0, 1}) of acc_element(lane, 0) and 2, 3 eight rows on.
    const mma::Coord first = mma::acc_element(lane, 0);
    for (int e = 0; e < 4; ++e) {
      const mma::Coord c = mma::acc_element(lane, e);
      EXPECT_EQ(c.row, first.row + 8 * (e / 2));
      EXPECT_EQ(c.col, first.col + e % 2);
    }
  }
  int covered[16][8] = {};
  for (int lane = 0; lane < 32; ++lane)
    for (int e = 0; e < 4; ++e) {
      const mma::Coord c = mma::acc_element(lane, e);
      ASSERT_TRUE(c.row >= 0 && c.row < 16 && c.col >= 0 && c.col < 8);
      ++covered[c.row][c.col];
    }
  for (const auto& row : covered)
    for (int count : row) EXPECT_EQ(count, 1);
  // Alignment and banks: each phase of 8 lanes reads 8 rows of 16 bytes; shared memory serves them
  // in one pass when they fall in the 8 distinct 16-byte bank groups of a 128-byte line. Row
  // strides (bf16 elements) of cuda/losses/cce_tiled.cu's Cfg<bf16, Core::mma, ...>: LDS = 40 for
  // the E / C chunks of the logits, LDG = 136 for dz, LDB = 72 for the gradient chunks.
  struct Use {
    mma::Coord (*offset)(int);
    int stride;
    const char* what;
  };
  for (const Use& u : {Use{mma::ldsm_a_offset, 40, "E chunk"}, Use{mma::ldsm_b_offset, 40, "C chunk"},
                       Use{mma::ldsm_a_offset, 136, "dz"}, Use{mma::ldsm_a_trans_offset, 136, "dz^T"},
                       Use{mma::ldsm_b_trans_offset, 72, "gradient chunk"}})
    for (int phase = 0; phase < 4; ++phase) {
      std::vector<int> groups;
      for (int lane = 8 * phase; lane < 8 * phase + 8; ++lane) {
        const mma::Coord o = u.offset(lane);
        const int byte = 2 * (o.row * u.stride + o.col);
        EXPECT_EQ(byte % 16, 0) << u.what;
        groups.push_back(byte / 16 % 8);
      }
      std::sort(groups.begin(), groups.end());
      EXPECT_EQ(std::unique(groups.begin(), groups.end()), groups.end())
          << "bank conflict in phase " << phase << " of " << u.what;
    }
}

// ---- a CPU model of ldmatrix and mma.sync, to run whole block products of the kernels ----------

// A warp's registers as values: [lane][register][half].
template <int R>
using WarpRegs = std::array<std::array<std::array<float, 2>, R>, 32>;

// ldmatrix .x4 (or .trans) from `smem`, each lane giving the row address `address(lane)`.
template <class Address>
WarpRegs<4> emulate_ldsm(const std::vector<float>& smem, bool trans, Address&& address) {
  WarpRegs<4> r{};
  for (int lane = 0; lane < 32; ++lane)
    for (int q = 0; q < 4; ++q)
      for (int h = 0; h < 2; ++h) {
        // plain: row lane / 4 of matrix q, columns 2 (lane % 4) + h; .trans: column lane / 4 of
        // row 2 (lane % 4) + h. Each row's address comes from the lane that named it.
        const int row_lane = 8 * q + (trans ? 2 * (lane % 4) + h : lane / 4);
        const int col = trans ? lane / 4 : 2 * (lane % 4) + h;
        r[lane][q][h] = smem.at(static_cast<size_t>(address(row_lane) + col));
      }
  return r;
}

// acc += a b for one m16n8k16 fragment product, reading and writing registers by the layouts.
void emulate_mma(WarpRegs<2>& acc, const WarpRegs<4>& a, const WarpRegs<2>& b) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane)
    for (int h = 0; h < 2; ++h) {
      for (int r = 0; r < 4; ++r) {
        const cuda_mma::Coord e = cuda_mma::a_element(lane, r, h);
        A[e.row][e.col] = a[lane][r][h];
      }
      for (int r = 0; r < 2; ++r) {
        const cuda_mma::Coord e = cuda_mma::b_element(lane, r, h);  // (k, n)
        B[e.row][e.col] = b[lane][r][h];
      }
    }
  for (int lane = 0; lane < 32; ++lane)
    for (int e = 0; e < 4; ++e) {
      const cuda_mma::Coord c = cuda_mma::acc_element(lane, e);
      float sum = 0;
      for (int k = 0; k < 16; ++k) sum += A[c.row][k] * B[k][c.col];
      acc[lane][e / 2][e % 2] += sum;
    }
}

// C[M x N] = A[M x K] B[K x N] by the block walk of cuda/mma.h's mma_step and store_block for
// warp grid G (each warp: its MI x NI fragments, 16 values of K per step, B fragments loaded in
// pairs), with A stored [m][k] or k-major [k][m] (row stride lda) and B stored [n][k] or k-major
// [k][n] (ldb). Small integer values keep every sum exact; padding holds NaN, so reading it shows.
template <int M, int N, int kWarpsM, int kWarpsN>
void expect_block_product(int K, bool a_k_major, int lda, bool b_k_major, int ldb) {
  using G = cuda_mma::WarpGrid<M, N, kWarpsM, kWarpsN>;
  SCOPED_TRACE(fmt::format("[{} x {}] x [{} x {}], warps {} x {}, A {} (ld {}), B {} (ld {})", M, K, K, N,
                           kWarpsM, kWarpsN, a_k_major ? "[k][m]" : "[m][k]", lda,
                           b_k_major ? "[k][n]" : "[n][k]", ldb));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto a_value = [](int m, int k) { return static_cast<float>((7 * m + 3 * k) % 11 - 5); };
  auto b_value = [](int k, int n) { return static_cast<float>((5 * k + 2 * n) % 7 - 3); };
  std::vector<float> As(static_cast<size_t>((a_k_major ? K : M) * lda), nan);
  std::vector<float> Bs(static_cast<size_t>((b_k_major ? K : N) * ldb), nan);
  for (int k = 0; k < K; ++k) {
    for (int m = 0; m < M; ++m) As[a_k_major ? k * lda + m : m * lda + k] = a_value(m, k);
    for (int n = 0; n < N; ++n) Bs[b_k_major ? k * ldb + n : n * ldb + k] = b_value(k, n);
  }
  std::vector<float> C(static_cast<size_t>(M * N), nan);
  std::vector<int> writes(C.size(), 0);
  for (int warp = 0; warp < G::kWarps; ++warp) {
    std::vector<std::vector<WarpRegs<2>>> acc(G::MI, std::vector<WarpRegs<2>>(G::NI, WarpRegs<2>{}));
    for (int k = 0; k < K; k += 16) {
      std::vector<WarpRegs<4>> a(G::MI);
      std::vector<WarpRegs<2>> b(G::NI);
      for (int i = 0; i < G::MI; ++i)
        a[i] = emulate_ldsm(As, a_k_major, [&](int lane) {
          return cuda_mma::a_address(a_k_major, G::m0(warp) + 16 * i, k, lane, lda);
        });
      for (int j = 0; j < G::NI; j += 2) {
        const WarpRegs<4> r = emulate_ldsm(Bs, b_k_major, [&](int lane) {
          return cuda_mma::b_address(b_k_major, G::n0(warp) + 8 * j, k, lane, ldb);
        });
        for (int lane = 0; lane < 32; ++lane) {
          b[j][lane] = {r[lane][0], r[lane][1]};
          b[j + 1][lane] = {r[lane][2], r[lane][3]};
        }
      }
      for (int i = 0; i < G::MI; ++i)
        for (int j = 0; j < G::NI; ++j) emulate_mma(acc[i][j], a[i], b[j]);
    }
    for (int i = 0; i < G::MI; ++i)
      for (int j = 0; j < G::NI; ++j)
        for (int lane = 0; lane < 32; ++lane)
          for (int e = 0; e < 4; ++e) {
            const cuda_mma::Coord at =
                cuda_mma::acc_position(G::m0(warp) + 16 * i, G::n0(warp) + 8 * j, e, lane);
            ASSERT_TRUE(at.row >= 0 && at.row < M && at.col >= 0 && at.col < N);
            C[at.row * N + at.col] = acc[i][j][lane][e / 2][e % 2];
            ++writes[at.row * N + at.col];
          }
  }
  int wrong = 0;
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      float want = 0;
      for (int k = 0; k < K; ++k) want += a_value(m, k) * b_value(k, n);
      if (C[m * N + n] != want || writes[m * N + n] != 1) ++wrong;
    }
  EXPECT_EQ(wrong, 0) << "of " << M * N << " outputs";
}

// The mma core's block products in cuda/losses/cce_tiled.cu, run through the CPU model with the
// same address functions, warp grids and shared-memory strides (bf16 elements): the logits tiles
// (E rows [m][k] and C rows [n][k], LDS = 40, warps 2 x 4; 64 x 128, 128 x 128 and mma_wide's
// 128 x 256; one 32-wide chunk of D), and the gradient chunks (warps 4 x 2, 64 columns of D):
// dE = dz [m][k] (LDG = 136) times C rows [k][n] (LDB = 72), dC = dz^T (dz read k-major) times E
// rows [k][n], for 64- and 128-row tiles.
TEST(CudaMma, BlockProductsOfTheKernelsAreRight) {
  expect_block_product<64, 128, 2, 4>(32, false, 40, false, 40);
  expect_block_product<128, 128, 2, 4>(32, false, 40, false, 40);
  expect_block_product<128, 256, 2, 4>(32, false, 40, false, 40);
  expect_block_product<64, 64, 4, 2>(128, false, 136, true, 72);   // dE, 64-row tiles
  expect_block_product<128, 64, 4, 2>(128, false, 136, true, 72);  // dE, 128-row tiles
  expect_block_product<128, 64, 4, 2>(64, true, 136, true, 72);    // dC, 64-row tiles
  expect_block_product<128, 64, 4, 2>(128, true, 136, true, 72);   // dC, 128-row tiles
}

TEST(CudaLosses, CCEForwardSplitsFillWholeWaves) {
  using cuda_kernels::cce::forward_splits;
  using cuda_kernels::cce::wave_fill;
  // The Gemma 2 forward on an H200 (132 SMs): 64 or 128 row blocks of 2000 (1000 for mma_wide)
  // vocabulary blocks, 2 (or 1) blocks per SM. The old rule (enough splits for two blocks per
  // slot) filled 72% and 81% of the slots; the chosen counts fill 97% or more.
  EXPECT_NEAR(wave_fill(64, 2000, 264, 9), 0.725, 1e-3);
  EXPECT_NEAR(wave_fill(128, 2000, 264, 5), 0.808, 1e-3);
  EXPECT_EQ(forward_splits(64, 2000, 264), 33);  // 2112 items = 8 full waves
  EXPECT_GT(wave_fill(64, 2000, 264, 33), 0.99);
  for (const auto& [rows, vocab, slots] : {std::tuple{128, 2000, 264}, std::tuple{64, 1000, 132},
                                           std::tuple{64, 2000, 216}, std::tuple{17, 300, 264}}) {
    const int64_t s = forward_splits(rows, vocab, slots);
    EXPECT_GE(s, 1);
    EXPECT_LE(s, vocab);
    EXPECT_GT(wave_fill(rows, vocab, slots, s), 0.95) << rows << " x " << vocab << " on " << slots;
  }
  // Small problems: never more splits than vocabulary blocks, at least one.
  EXPECT_EQ(forward_splits(1, 3, 264), 3);
  EXPECT_EQ(forward_splits(200, 1, 264), 1);
  EXPECT_EQ(forward_splits(1, 1, 1), 1);
}

TEST(CudaMma, CoreNamedByTheEnvironment) {
  using losses::detail::CCECudaCore;
  EXPECT_EQ(losses::detail::cce_cuda_core_named(nullptr), CCECudaCore::mma);
  EXPECT_EQ(losses::detail::cce_cuda_core_named(""), CCECudaCore::mma);
  EXPECT_EQ(losses::detail::cce_cuda_core_named("wmma"), CCECudaCore::wmma);
  EXPECT_EQ(losses::detail::cce_cuda_core_named("mma"), CCECudaCore::mma);
  EXPECT_EQ(losses::detail::cce_cuda_core_named("mma_wide"), CCECudaCore::mma_wide);
  EMBER_EXPECT_THROW_MSG(
      losses::detail::cce_cuda_core_named("MMA"),
      "cut_cross_entropy: EMBER_CCE_CORE is \"MMA\"; expected \"wmma\", \"mma\" or \"mma_wide\"");
}

TEST(CudaLosses, CCEMmaCoreMatchesTheWmmaCoreAndTheCPU) {
  REQUIRE_GPU();
  using losses::detail::CCECudaCore;
  // Shapes for the mma core's edges: one row; 150 and 300 rows (128-row blocks, the last partial);
  // D below, at and past the 32-wide chunk, with a tail (200 = 6 x 32 + 8); V not a multiple of
  // 128 (nor of mma_wide's 256-wide forward tiles); [B, T, D] with a shift. D = 12 is not a
  // multiple of 8: the wmma core serves it. In these
  // random logits every tile holds entries above the filter's 2^-12, so the mma core's 128-row
  // and the wmma core's 64-row filter tiles both keep everything.
  struct Case {
    Shape e;
    int64_t V;
  };
  const std::vector<Case> cases = {{{1, 8}, 300},    {{150, 48}, 300},   {{300, 200}, 1000},
                                   {{257, 64}, 129}, {{2, 70, 24}, 257}, {{40, 12}, 100}};
  uint64_t seed = 500;
  for (const Case& k : cases) {
    const int64_t D = k.e.back();
    const Tensor E = R(k.e, -1, 1, seed, false).to(kBFloat16),
                 C = R({k.V, D}, -0.5, 0.5, seed + 1, false).to(kBFloat16);
    const Tensor b = R({k.V}, -1, 1, seed + 2, false).to(kBFloat16);
    Shape ys(k.e.begin(), k.e.end() - 1);
    Tensor y = class_ids(ys, k.V, seed + 3).reshape({-1});
    std::vector<int64_t> yv = y.to_vector<int64_t>();
    for (size_t i = 3; i < yv.size(); i += 7) yv[i] = -100;
    y = I(yv, ys);
    seed += 10;
    const int shift = k.e.size() == 3 ? 1 : 0;
    for (losses::CCEOptions o :
         {losses::CCEOptions{}, losses::CCEOptions{.softcap = 3.0, .filter_gradients = false},
          losses::CCEOptions{.accumulate_fp32 = true},
          losses::CCEOptions{.filter_gradients = false, .deterministic = true}}) {
      o.shift = shift;
      SCOPED_TRACE(fmt::format("E {} V {} softcap {} accumulate_fp32 {} deterministic {}", shape_str(k.e),
                               k.V, o.softcap, o.accumulate_fp32, o.deterministic));
      const bool in_place = !o.accumulate_fp32 && !o.deterministic;
      CCEGrads wmma;
      {
        CudaCore core(CCECudaCore::wmma);
        wmma = run_cce(E, C, y, b, o, Device::cuda(), kBFloat16);
      }
      const CCEGrads cpu = run_cce(E, C, y, b, o, Device::cpu(), kBFloat16);
      for (CCECudaCore which : {CCECudaCore::mma, CCECudaCore::mma_wide}) {
        SCOPED_TRACE(which == CCECudaCore::mma ? "mma" : "mma_wide");
        CudaCore core(which);
        const CCEGrads mma = run_cce(E, C, y, b, o, Device::cuda(), kBFloat16);
        // The products are the same tensor-core sums in the same order; only the forward's split
        // of the vocabulary (so the order of the LSE merge) and the atomics' order differ.
        expect_close(mma, wmma, 1e-5, in_place ? kBf16InPlaceTol : 1e-2);
        expect_close(mma, cpu, 2e-5, in_place ? kBf16InPlaceTol : kBf16Fp32Tol);
      }
    }
  }
  // Every row ignored: nothing to score, zero gradients.
  CudaCore core(CCECudaCore::mma);
  const Tensor E = R({20, 32}, -1, 1, 600, false).to(kBFloat16),
               C = R({50, 32}, -1, 1, 601, false).to(kBFloat16);
  const CCEGrads g =
      run_cce(E, C, full({20}, -100.0, TensorOptions(kInt64)), Tensor(), {}, Device::cuda(), kBFloat16);
  EXPECT_EQ(g.dE.to(kFloat64).abs().max().item<double>(), 0.0);
  EXPECT_EQ(g.dC.to(kFloat64).abs().max().item<double>(), 0.0);
}

TEST(CudaLosses, CCEMmaCoreDeterministicIsBitwiseRepeatable) {
  REQUIRE_GPU();
  CudaCore core(losses::detail::CCECudaCore::mma);
  const Tensor E = R({300, 40}, -1, 1, 610, false), C = R({1000, 40}, -1, 1, 611, false);
  const Tensor y = class_ids({300}, 1000, 612);
  const losses::CCEOptions det{.deterministic = true};
  CCEGrads a = run_cce(E, C, y, Tensor(), det, Device::cuda(), kBFloat16);
  CCEGrads a2 = run_cce(E, C, y, Tensor(), det, Device::cuda(), kBFloat16);
  EXPECT_TRUE(equal(a.loss.cpu(), a2.loss.cpu()));
  EXPECT_TRUE(equal(a.dE.cpu(), a2.dE.cpu()));
  EXPECT_TRUE(equal(a.dC.cpu(), a2.dC.cpu()));
}

// A block of an sm_86 / sm_89 GPU gets 99 KiB of shared memory: there the bf16 kernels take the
// wmma core with one synchronous stage, and the float32 backward (118.5 KiB tiled) the simple
// kernels of cce.cu. Capping the limit takes those paths on any GPU; they must match the CPU. Below
// what every bf16 kernel needs, the call stops with a clear error.
TEST(CudaLosses, CCEFitsDevicesWith99KiBOfSharedMemory) {
  REQUIRE_GPU();
  struct Cap {
    explicit Cap(int64_t bytes) { losses::detail::cce_cuda_shared_memory_limit() = bytes; }
    ~Cap() { losses::detail::cce_cuda_shared_memory_limit() = 0; }
  } cap(99 * 1024);
  const Tensor E = R({150, 64}, -1, 1, 700, false), C = R({300, 64}, -1, 1, 701, false);
  const Tensor b = R({300}, -1, 1, 702, false);
  const Tensor y = class_ids({150}, 300, 703);
  for (DType dt : {kFloat32, kBFloat16})
    for (bool det : {false, true}) {
      SCOPED_TRACE(fmt::format("{} deterministic {}", dtype_name(dt), det));
      const losses::CCEOptions o{.deterministic = det};
      const double tol = dt == kFloat32 ? 2e-5 : det ? kBf16Fp32Tol : kBf16InPlaceTol;
      expect_close(run_cce(E, C, y, b, o, Device::cuda(), dt), run_cce(E, C, y, b, o, Device::cpu(), dt),
                   2e-5, tol);
    }
  losses::detail::cce_cuda_shared_memory_limit() = 48 * 1024;
  EXPECT_TRUE(
      throws_error([&] { run_cce(E, C, y, b, {}, Device::cuda(), kBFloat16); }, "no bf16 kernel fits"));
}

// The signal mask on the GPU (losses/kernels/cce.h). Read directly, the forward's mask holds every
// (row group, class) bit the filter needs (judged on float64 logits of the same rounded inputs,
// far inside the mask's margin) and few more; and the backward that drops unmarked tiles unseen
// gives the same bits as the one that computes them (deterministic mode, so sums run in a fixed
// order), on each dtype and each bf16 core.
TEST(CudaLosses, CCESignalMaskMarksWhatTheFilterKeepsAndChangesNoGradient) {
  REQUIRE_GPU();
  using losses::detail::CCECudaCore;
  const int64_t N = 300, D = 64, V = 3000, groups = signal_mask_groups(N), words = signal_mask_words(V);
  const LmProblem lm = lm_problem(N, D, V, 31);
  const double eps = std::ldexp(1.0, -12);
  for (DType dt : {kFloat64, kFloat32, kBFloat16})
    for (CCECudaCore which : {CCECudaCore::wmma, CCECudaCore::mma, CCECudaCore::mma_wide}) {
      if (dt != kBFloat16 && which != CCECudaCore::wmma) continue;  // the cores are bf16's
      SCOPED_TRACE(fmt::format("{} core {}", dtype_name(dt), static_cast<int>(which)));
      CudaCore core(which);
      const Tensor E = lm.E.to(dt), C = lm.C.to(dt);
      const DType acc = dt == kBFloat16 ? kFloat32 : dt;
      const TensorOptions on_gpu = TensorOptions(acc).device(Device::cuda());
      Tensor lse = zeros({N}, on_gpu), nll = zeros({N}, on_gpu);
      Tensor mask = zeros({groups, words}, TensorOptions(kInt32).device(Device::cuda()));
      cce_forward_stub(Device::cuda(), E.cuda(), C.cuda(), Tensor(), arange(0.0, double(N)).to(kInt64).cuda(),
                       lm.x.cuda(), 0.0, lse, nll, Tensor(), eps, mask);
      const Tensor logits = E.to(kFloat64).matmul(C.to(kFloat64).t());
      const std::vector<double> z = logits.to_vector<double>(),
                                l = logsumexp(logits, {1}).to_vector<double>();
      const std::vector<int64_t> x = lm.x.to_vector<int64_t>();
      const std::vector<int32_t> bits32 = mask.cpu().to_vector<int32_t>();
      const uint32_t* bits = reinterpret_cast<const uint32_t*>(bits32.data());
      int64_t missing = 0, needed = 0, set = 0;
      for (int64_t q = 0; q < groups; ++q)
        for (int64_t j = 0; j < V; ++j) {
          bool need = false;
          for (int64_t k = q * kSignalRows; k < std::min(N, (q + 1) * kSignalRows); ++k)
            need |= x[k] == j || z[k * V + j] - l[k] >= std::log(eps);
          const bool bit = signal_bit(bits, words, q * kSignalRows, j);
          missing += need && !bit;
          needed += need;
          set += bit;
        }
      EXPECT_EQ(missing, 0) << needed << " needed";
      EXPECT_GT(needed, 0);
      EXPECT_LT(set, groups * V / 4) << needed << " needed";

      auto run = [&](bool with_mask) {
        losses::detail::cce_signal_mask() = with_mask;
        CCEGrads g = run_cce(lm.E, lm.C, lm.x, Tensor(), {.filter_eps = eps, .deterministic = true},
                             Device::cuda(), dt);
        losses::detail::cce_signal_mask() = true;
        return g;
      };
      const CCEGrads plain = run(false), masked = run(true);
      EXPECT_TRUE(tensors_close(masked.loss.cpu(), plain.loss.cpu(), 0));
      EXPECT_TRUE(tensors_close(masked.dE.cpu(), plain.dE.cpu(), 0));
      EXPECT_TRUE(tensors_close(masked.dC.cpu(), plain.dC.cpu(), 0));
      // ... and the default (atomic, in place for bf16) mode agrees with them to its rounding.
      expect_close(run_cce(lm.E, lm.C, lm.x, Tensor(), {.filter_eps = eps}, Device::cuda(), dt), plain, 1e-6,
                   dt == kBFloat16 ? kBf16InPlaceTol : 1e-5);
    }
}

}  // namespace
}  // namespace ember::testing
