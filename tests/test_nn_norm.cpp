// BatchNorm1d/2d, LayerNorm and their fused ops (nn::functional::batch_norm / layer_norm):
// hand-computed values, running statistics, gradchecks in every mode, and errors.
#include <ember/nn.h>

#include <cmath>
#include <limits>

#include "harness.h"
#include "nn_test_util.h"

namespace ember::testing {
namespace {

namespace F = nn::functional;
constexpr double kEps = 1e-5;

// ---- the fused ops through the op harness (forward, gradcheck, CUDA parity) ----

std::vector<OpCase> norm_op_cases() {
  // batch_norm on [N = 3, C = 2]: channel 0 = {1, 3, 5} (mean 3, biased var 8/3),
  // channel 1 = {10, 20, 60} (mean 30, biased var 1400/3).
  Tensor x = T({1, 10, 3, 20, 5, 60}, {3, 2});
  Tensor w = T({2.0, 0.5}, {2}), b = T({1.0, -1.0}, {2});
  const double s0 = std::sqrt(8.0 / 3 + kEps), s1 = std::sqrt(1400.0 / 3 + kEps);
  Tensor bn_expected = tensor<double>(
      {-2 / s0 * 2 + 1, -20 / s1 * 0.5 - 1, 1, -10 / s1 * 0.5 - 1, 2 / s0 * 2 + 1, 30 / s1 * 0.5 - 1},
      {3, 2});
  // Eval mode uses the given running statistics instead.
  Tensor rm = T({1.0, -2.0}, {2}, false), rv = T({4.0, 0.25}, {2}, false);
  const double r0 = std::sqrt(4 + kEps), r1 = std::sqrt(0.25 + kEps);
  Tensor bn_eval_expected = tensor<double>({0 / r0 * 2 + 1, 12 / r1 * 0.5 - 1, 2 / r0 * 2 + 1,
                                            22 / r1 * 0.5 - 1, 4 / r0 * 2 + 1, 62 / r1 * 0.5 - 1},
                                           {3, 2});
  // layer_norm over the last dim of [2, 4]: row 0 = {1, 2, 3, 4} (mean 2.5, var 1.25),
  // row 1 = {-2, 0, 0, 2} (mean 0, var 2).
  Tensor lx = T({1, 2, 3, 4, -2, 0, 0, 2}, {2, 4});
  Tensor lw = T({1, 0.5, 2, -1}, {4}), lb = T({0, 1, 0, -1}, {4});
  const double q0 = std::sqrt(1.25 + kEps), q1 = std::sqrt(2 + kEps);
  Tensor ln_expected = tensor<double>({-1.5 / q0, -0.5 / q0 * 0.5 + 1, 0.5 / q0 * 2, -1.5 / q0 - 1,  //
                                       -2 / q1, 1, 0, -2 / q1 - 1},
                                      {2, 4});
  Tensor ln_plain = tensor<double>({-1.5 / q0, -0.5 / q0, 0.5 / q0, 1.5 / q0, -2 / q1, 0, 0, 2 / q1}, {2, 4});
  // group_norm on [1, 4, 2] with 2 groups: group 0 = channels {1, 2}, {3, 6} (mean 3, var 3.5),
  // group 1 = channels {0, 4}, {-4, 8} (mean 2, var 20); then the per-channel affine.
  Tensor gx = T({1, 2, 3, 6, 0, 4, -4, 8}, {1, 4, 2});
  Tensor gw = T({2, 0.5, 1, -1}, {4}), gb = T({1, 0, -1, 0.5}, {4});
  const double a = std::sqrt(3.5 + kEps), c = std::sqrt(20 + kEps);
  Tensor gn_expected = tensor<double>(
      {-4 / a + 1, -2 / a + 1, 0, 1.5 / a, -2 / c - 1, 2 / c - 1, 6 / c + 0.5, -6 / c + 0.5}, {1, 4, 2});
  // rms_norm over the last dim of lx: mean squares 7.5 and 2
  const double m0 = std::sqrt(7.5 + 1e-6), m1 = std::sqrt(2 + 1e-6);
  Tensor rms_expected = tensor<double>({1 / m0, 1 / m0, 6 / m0, -4 / m0, -2 / m1, 0, 0, -2 / m1}, {2, 4});
  const double e0 = std::sqrt(7.5 + std::numeric_limits<double>::epsilon()), e1 = std::sqrt(2.0);
  Tensor rms_plain = tensor<double>({1 / e0, 2 / e0, 3 / e0, 4 / e0, -2 / e1, 0, 0, 2 / e1}, {2, 4});
  return with_gradgradcheck({
      {"group_norm",
       [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 2, in[1], in[2]); },
       {gx, gw, gb},
       gn_expected},
      {"group_norm_4d_no_affine",
       [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 3); },
       {R({2, 6, 2, 2}, -1, 1, 27)},
       Tensor()},
      // num_groups = C: instance normalisation; num_groups = 1: one group of every channel
      {"group_norm_instance",
       [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 3, in[1], in[2], 1e-3); },
       {R({2, 3, 4}, -1, 1, 28), R({3}, 0.5, 1.5, 29), R({3}, -1, 1, 30)},
       Tensor()},
      {"group_norm_one_group",
       [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 1, in[1]); },
       {R({2, 4, 3}, -1, 1, 31), R({4}, 0.5, 1.5, 32)},
       Tensor()},
      // [N, C] (one value per channel) with a bias alone; and a larger [N, C, H, W] whose groups
      // span several channels of several values
      {"group_norm_2d_bias_only",
       [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 2, Tensor(), in[1]); },
       {R({3, 4}, -1, 1, 36), R({4}, -1, 1, 37)},
       Tensor()},
      {"group_norm_4d_affine",
       [](const std::vector<Tensor>& in) { return F::group_norm(in[0], 3, in[1], in[2]); },
       {R({2, 6, 3, 5}, -2, 3, 38), R({6}, -1.5, 1.5, 39), R({6}, -1, 1, 40)},
       Tensor()},
      {"rms_norm",
       [](const std::vector<Tensor>& in) { return F::rms_norm(in[0], {4}, in[1], 1e-6); },
       {lx, lw},
       rms_expected},
      {"rms_norm_default_eps",
       [](const std::vector<Tensor>& in) { return F::rms_norm(in[0], {4}); },
       {lx},
       rms_plain},
      {"rms_norm_2d_shape",
       [](const std::vector<Tensor>& in) {
         return F::rms_norm(in[0], {2, 3}, in[1], 1e-5);
       },
       {R({2, 2, 3}, -2, 2, 33), R({2, 3}, 0.5, 1.5, 34)},
       Tensor()},
      {"batch_norm_train",
       [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], {}, {}, in[1], in[2], true); },
       {x, w, b},
       bn_expected},
      {"batch_norm_train_no_affine",
       [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], {}, {}, {}, {}, true); },
       {x},
       tensor<double>({-2 / s0, -20 / s1, 0, -10 / s1, 2 / s0, 30 / s1}, {3, 2})},
      {"batch_norm_eval",
       [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], in[3], in[4], in[1], in[2], false); },
       {x, w, b, rm, rv},
       bn_eval_expected},
      // [N, C, L] with L = 2 and random values: gradcheck over the spatial reduction.
      {"batch_norm_3d_train",
       [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], {}, {}, in[1], in[2], true); },
       {R({3, 2, 2}, -1, 1, 21), R({2}, 0.5, 1.5, 22), R({2}, -1, 1, 23)},
       Tensor()},
      {"layer_norm",
       [](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {4}, in[1], in[2]); },
       {lx, lw, lb},
       ln_expected},
      {"layer_norm_no_affine",
       [](const std::vector<Tensor>& in) { return F::layer_norm(in[0], {4}); },
       {lx},
       ln_plain},
      {"layer_norm_2d_shape",
       [](const std::vector<Tensor>& in) {
         return F::layer_norm(in[0], {2, 3}, in[1], in[2]);
       },
       {R({2, 2, 3}, -2, 2, 24), R({2, 3}, 0.5, 1.5, 25), R({2, 3}, -1, 1, 26)},
       Tensor()},
  });
}
EMBER_OP_SUITE(NormOps, norm_op_cases);

// ---- BatchNorm modules ----

TEST(BatchNorm, TrainingUpdatesRunningStatsLikePyTorch) {
  nn::BatchNorm1d bn(2);
  set_values(bn.weight, {2.0, 0.5});
  set_values(bn.bias, {1.0, -1.0});
  Tensor x = tensor<float>({1, 10, 3, 20, 5, 60}, {3, 2});
  const double s0 = std::sqrt(8.0 / 3 + kEps), s1 = std::sqrt(1400.0 / 3 + kEps);
  EXPECT_TRUE(tensors_close(
      bn.forward(x),
      tensor<double>({-4 / s0 + 1, -10 / s1 - 1, 1, -5 / s1 - 1, 4 / s0 + 1, 15 / s1 - 1}, {3, 2}), 1e-5));
  // running = 0.9 * running + 0.1 * batch, with the unbiased variance (8/2 = 4 and 1400/2 = 700).
  EXPECT_TRUE(tensors_close(bn.running_mean, tensor<double>({0.3, 3.0}, {2}), 1e-6));
  EXPECT_TRUE(tensors_close(bn.running_var, tensor<double>({0.9 + 0.4, 0.9 + 70.0}, {2}), 1e-5));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  // Eval mode: normalise with the running estimates, update nothing.
  bn.eval();
  const double e0 = std::sqrt(1.3 + kEps), e1 = std::sqrt(70.9 + kEps);
  EXPECT_TRUE(
      tensors_close(bn.forward(x),
                    tensor<double>({(1 - 0.3) / e0 * 2 + 1, (10 - 3) / e1 * 0.5 - 1, (3 - 0.3) / e0 * 2 + 1,
                                    (20 - 3) / e1 * 0.5 - 1, (5 - 0.3) / e0 * 2 + 1, (60 - 3) / e1 * 0.5 - 1},
                                   {3, 2}),
                    1e-5));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  EXPECT_TRUE(tensors_close(bn.running_mean, tensor<double>({0.3, 3.0}, {2}), 1e-6));
}

TEST(BatchNorm, CumulativeAverageWithoutMomentum) {
  nn::BatchNorm1d bn(1, kEps, std::nullopt);
  bn.forward(tensor<float>({1, 3}, {2, 1}));  // mean 2, unbiased var 2: factor 1/1 replaces
  EXPECT_TRUE(tensors_close(bn.running_mean, tensor<double>({2.0}, {1}), 1e-6));
  EXPECT_TRUE(tensors_close(bn.running_var, tensor<double>({2.0}, {1}), 1e-6));
  bn.forward(tensor<float>({6, 10}, {2, 1}));  // mean 8, unbiased var 8: factor 1/2 averages
  EXPECT_TRUE(tensors_close(bn.running_mean, tensor<double>({5.0}, {1}), 1e-6));
  EXPECT_TRUE(tensors_close(bn.running_var, tensor<double>({5.0}, {1}), 1e-6));
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 2);
}

TEST(BatchNorm, BatchNorm2dPerChannelOverBatchAndSpace) {
  nn::BatchNorm2d bn(2);
  // channel 0 = {1, 2, 3, 6} (mean 3, var 3.5); channel 1 = {0, 4, -4, 8} (mean 2, var 20)
  Tensor x = tensor<float>({1, 2, 0, 4, 3, 6, -4, 8}, {2, 2, 1, 2});
  const double a = std::sqrt(3.5 + kEps), c = std::sqrt(20 + kEps);
  EXPECT_TRUE(tensors_close(
      bn.forward(x), tensor<double>({-2 / a, -1 / a, -2 / c, 2 / c, 0, 3 / a, -6 / c, 6 / c}, {2, 2, 1, 2}),
      1e-5));
  EXPECT_TRUE(tensors_close(bn.running_mean, tensor<double>({0.3, 0.2}, {2}), 1e-6));
  EXPECT_TRUE(
      tensors_close(bn.running_var, tensor<double>({0.9 + 0.1 * 14 / 3.0, 0.9 + 0.1 * 80 / 3.0}, {2}), 1e-5));
}

TEST(BatchNorm, WithoutRunningStatsOrAffine) {
  nn::BatchNorm1d bn(2, kEps, 0.1, /*affine=*/false, /*track_running_stats=*/false);
  EXPECT_TRUE(bn.parameters().empty());
  EXPECT_TRUE(bn.named_buffers().empty());
  Tensor x = tensor<float>({1, 10, 3, 20, 5, 60}, {3, 2});
  Tensor train_out = bn.forward(x);
  bn.eval();  // still batch statistics: there are no running ones
  EXPECT_TRUE(tensors_close(bn.forward(x), train_out, 1e-6));
  const double s0 = std::sqrt(8.0 / 3 + kEps);
  EXPECT_NEAR(train_out.to_vector<double>()[0], -2 / s0, 1e-5);
}

TEST(BatchNorm, BufferNamesMatchPyTorch) {
  nn::BatchNorm2d bn(4);
  std::vector<std::string> names;
  for (const auto& [n, t] : bn.named_buffers()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(bn.state_dict().size(), 5u);
  EXPECT_EQ(bn.str(), "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)");
}

TEST(BatchNorm, ModuleGradcheckTrainAndEval) {
  auto bn = std::make_shared<nn::BatchNorm2d>(2);
  set_values(bn->weight, {1.5, -0.5});
  set_values(bn->bias, {0.2, 0.3});
  Tensor x = R({2, 2, 2, 2}, -1, 1, 31);
  EXPECT_TRUE(
      module_gradcheck(*bn, {&bn->weight, &bn->bias}, x, [&](const Tensor& in) { return bn->forward(in); }));
  bn->eval();
  set_values(bn->running_var, {0.5, 2.0});
  EXPECT_TRUE(
      module_gradcheck(*bn, {&bn->weight, &bn->bias}, x, [&](const Tensor& in) { return bn->forward(in); }));
}

TEST(BatchNorm, LargeFloat32MatchesComposedReference) {
  // Enough work for the kernels' parallel paths; compared with mean/var built from plain ops.
  manual_seed(8);
  Tensor x = randn({16, 3, 20, 20}) * 3.0 + 1.0;
  Tensor w = randn({3}), b = randn({3});
  Tensor y = F::batch_norm(x, {}, {}, w, b, true);
  Tensor x64 = x.to(DType::float64);
  Tensor mean = x64.mean({0, 2, 3}, true);
  Tensor var = (x64 - mean).square().mean({0, 2, 3}, true);
  Tensor ref = (x64 - mean) / (var + kEps).sqrt() * w.to(DType::float64).view({1, 3, 1, 1}) +
               b.to(DType::float64).view({1, 3, 1, 1});
  EXPECT_TRUE(tensors_close(y.to(DType::float64), ref, 1e-5));
}

TEST(BatchNorm, Errors) {
  nn::BatchNorm1d bn1(3);
  EMBER_EXPECT_THROW_MSG(
      bn1.forward(zeros({2, 4})),
      "BatchNorm1d: input of shape [2,4] has 4 channels in dim 1, expected num_features = 3");
  EMBER_EXPECT_THROW_MSG(bn1.forward(zeros({2, 3, 4, 5})),
                         "BatchNorm1d: expected input [N, C] or [N, C, L], got shape [2,3,4,5]");
  EMBER_EXPECT_THROW_MSG(bn1.forward(zeros({1, 3})),
                         "expected more than 1 value per channel when training, got input of shape [1,3]");
  nn::BatchNorm2d bn2(3);
  EMBER_EXPECT_THROW_MSG(bn2.forward(zeros({2, 3, 4})),
                         "BatchNorm2d: expected input [N, C, H, W], got shape [2,3,4]");
  EMBER_EXPECT_THROW_MSG(bn2.forward(zeros({2, 3, 2, 2}, DType::float64)),
                         "weight is float32 but the input is float64");
  EMBER_EXPECT_THROW_MSG(nn::BatchNorm2d(0), "num_features must be positive");
  EMBER_EXPECT_THROW_MSG(nn::BatchNorm2d(2, 0.0), "eps must be positive");
  EMBER_EXPECT_THROW_MSG(F::batch_norm(zeros({2, 3}), {}, {}, {}, {}, false),
                         "evaluation mode needs running_mean");
  EMBER_EXPECT_THROW_MSG(F::batch_norm(zeros({2, 3}), zeros({3}), {}, {}, {}, true), "both be given");
  EMBER_EXPECT_THROW_MSG(F::batch_norm(zeros({2, 3}), zeros({2}), ones({2}), {}, {}, true),
                         "running_mean has shape [2], expected [3]");
  EMBER_EXPECT_THROW_MSG(F::batch_norm(zeros({2}, DType::int64), {}, {}, {}, {}, true),
                         "expected a floating input, got int64");
}

// ---- LayerNorm module ----

TEST(LayerNorm, ModuleForwardAndGradcheck) {
  auto ln = std::make_shared<nn::LayerNorm>(4);
  set_values(ln->weight, {1, 0.5, 2, -1});
  set_values(ln->bias, {0, 1, 0, -1});
  const double q0 = std::sqrt(1.25 + kEps);
  Tensor y = ln->forward(tensor<float>({1, 2, 3, 4}, {1, 1, 4}));  // leading dims are free
  EXPECT_TRUE(
      tensors_close(y, tensor<double>({-1.5 / q0, -0.25 / q0 + 1, 1 / q0, -1.5 / q0 - 1}, {1, 1, 4}), 1e-5));
  EXPECT_TRUE(module_gradcheck(*ln, {&ln->weight, &ln->bias}, R({3, 4}, -2, 2, 41),
                               [&](const Tensor& x) { return ln->forward(x); }));
  nn::LayerNorm plain({2, 2}, 1e-3, /*elementwise_affine=*/false);
  EXPECT_TRUE(plain.parameters().empty());
  const double s = std::sqrt(1.25 + 1e-3);
  EXPECT_TRUE(tensors_close(plain.forward(tensor<float>({1, 2, 3, 4}, {2, 2})),
                            tensor<double>({-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}, {2, 2}), 1e-5));
}

TEST(LayerNorm, LargeFloat32MatchesComposedReference) {
  manual_seed(9);
  Tensor x = randn({300, 96}) * 2.0 - 0.5;
  Tensor w = randn({96}), b = randn({96});
  Tensor x64 = x.to(DType::float64);
  Tensor mean = x64.mean({1}, true);
  Tensor var = (x64 - mean).square().mean({1}, true);
  Tensor ref = (x64 - mean) / (var + kEps).sqrt() * w.to(DType::float64) + b.to(DType::float64);
  Tensor xr = x.detach().requires_grad_(), wr = w.detach().requires_grad_(), br = b.detach().requires_grad_();
  Tensor y = F::layer_norm(xr, {96}, wr, br);
  EXPECT_TRUE(tensors_close(y.to(DType::float64), ref, 1e-5));
  // Weight and bias gradients summed over 300 rows (the blocked column reduction).
  Tensor g = randn({300, 96});
  (y * g).sum().backward();
  Tensor xhat = (x64 - mean) / (var + kEps).sqrt();
  EXPECT_TRUE(tensors_close(wr.grad().to(DType::float64), (g.to(DType::float64) * xhat).sum({0}), 1e-4));
  EXPECT_TRUE(tensors_close(br.grad().to(DType::float64), g.to(DType::float64).sum({0}), 1e-4));
}

TEST(LayerNorm, Errors) {
  nn::LayerNorm ln({3, 4});
  EMBER_EXPECT_THROW_MSG(ln.forward(zeros({2, 4, 3})),
                         "layer_norm: input of shape [2,4,3] does not end with normalized_shape [3,4]");
  EMBER_EXPECT_THROW_MSG(ln.forward(zeros({4})), "does not end with normalized_shape");
  EMBER_EXPECT_THROW_MSG(nn::LayerNorm(Shape{}), "normalized_shape must not be empty");
  EMBER_EXPECT_THROW_MSG(nn::LayerNorm(0), "must have positive sizes");
  EMBER_EXPECT_THROW_MSG(F::layer_norm(zeros({2, 3}), {3}, ones({4})), "weight has shape [4], expected [3]");
}

// ---- GroupNorm and RMSNorm modules ----

TEST(GroupNorm, ModuleMatchesComposedReference) {
  nn::GroupNorm gn(3, 6);
  EXPECT_EQ(gn.str(), "GroupNorm(3, 6, eps=1e-05, affine=true)");
  std::vector<std::string> names;
  for (const auto& [n, t] : gn.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"}));
  EXPECT_TRUE(tensors_close(gn.weight, ones({6}), 0));
  EXPECT_TRUE(tensors_close(gn.bias, zeros({6}), 0));
  manual_seed(10);
  gn.weight.detach().copy_(randn({6}));
  gn.bias.detach().copy_(randn({6}));
  Tensor x = randn({3, 6, 4, 5}) * 2.0 + 1.0;
  // the reference: mean and biased variance of each sample's two consecutive channels
  Tensor g64 = x.to(DType::float64).view({3, 3, 40});
  Tensor mean = g64.mean({2}, true);
  Tensor var = (g64 - mean).square().mean({2}, true);
  Tensor ref = ((g64 - mean) / (var + kEps).sqrt()).view({3, 6, 4, 5}) *
                   gn.weight.to(DType::float64).view({1, 6, 1, 1}) +
               gn.bias.to(DType::float64).view({1, 6, 1, 1});
  Tensor y = gn.forward(x);
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_TRUE(tensors_close(y.to(DType::float64), ref, 1e-5));
  // statistics of the sample itself: eval mode changes nothing
  gn.eval();
  EXPECT_TRUE(tensors_close(gn.forward(x), y, 0));
}

TEST(GroupNorm, ModuleGradcheckAndBfloat16) {
  auto gn = std::make_shared<nn::GroupNorm>(2, 4);
  set_values(gn->weight, {1.5, -0.5, 1, 2});
  set_values(gn->bias, {0.2, 0.3, -1, 0});
  EXPECT_TRUE(module_gradcheck(*gn, {&gn->weight, &gn->bias}, R({2, 4, 3}, -1, 1, 35),
                               [&](const Tensor& in) { return gn->forward(in); }));
  nn::GroupNorm plain(2, 4, 1e-5, /*affine=*/false);
  EXPECT_TRUE(plain.parameters().empty());
  Tensor x = tensor<float>({1, 2, 3, 6, 0, 4, -4, 8}, {1, 4, 2});
  Tensor y = plain.forward(x.to(DType::bfloat16));
  EXPECT_EQ(y.dtype(), DType::bfloat16);
  EXPECT_TRUE(tensors_close(y, plain.forward(x), 1e-2));
}

TEST(GroupNorm, Errors) {
  EMBER_EXPECT_THROW_MSG(nn::GroupNorm(4, 6),
                         "GroupNorm: num_channels = 6 must be a positive multiple of num_groups = 4");
  EMBER_EXPECT_THROW_MSG(nn::GroupNorm(0, 6), "must be a positive multiple");
  EMBER_EXPECT_THROW_MSG(nn::GroupNorm(2, 6, 0.0), "GroupNorm: eps must be positive");
  nn::GroupNorm gn(2, 4);
  EMBER_EXPECT_THROW_MSG(gn.forward(zeros({2, 6, 3})),
                         "GroupNorm: expected input [N, 4, *], got shape [2,6,3]");
  EMBER_EXPECT_THROW_MSG(gn.forward(zeros({4})), "expected input [N, 4, *], got shape [4]");
  EMBER_EXPECT_THROW_MSG(
      F::group_norm(zeros({2, 6}), 4),
      "group_norm: num_groups = 4 must be positive and divide the 6 channels of input shape [2,6]");
  EMBER_EXPECT_THROW_MSG(F::group_norm(zeros({3}), 1), "group_norm: expected input [N, C, *], got shape [3]");
  EMBER_EXPECT_THROW_MSG(F::group_norm(zeros({2, 6}), 2, ones({4})), "weight has shape [4], expected [6]");
  EMBER_EXPECT_THROW_MSG(F::group_norm(zeros({2, 6}, DType::int64), 2),
                         "group_norm: expected a floating input, got int64");
  EMBER_EXPECT_THROW_MSG(F::group_norm(zeros({2, 6}), 2, Tensor(), Tensor(), 0.0),
                         "group_norm: eps must be positive, got 0");
  EXPECT_EQ(F::group_norm(zeros({0, 6, 3}), 2).shape(), (Shape{0, 6, 3}));
}

// The fused kernels against the composite they replaced: layer_norm over each sample's channel
// groups, then the per-channel affine; forward and all three gradients, float32 and float64.
TEST(GroupNorm, FusedKernelsMatchTheComposite) {
  for (DType dt : {DType::float32, DType::float64}) {
    Tensor x = (randn({4, 12, 5, 3}) * 3.0 + 2.0).to(dt).requires_grad_();
    Tensor w = randn({12}).to(dt).requires_grad_(), b = randn({12}).to(dt).requires_grad_();
    Tensor x2 = x.detach().requires_grad_(), w2 = w.detach().requires_grad_(),
           b2 = b.detach().requires_grad_();
    Tensor y = F::group_norm(x, 4, w, b);
    Tensor y2 = F::layer_norm(x2.reshape({4, 4, 45}), {45}).view({4, 12, 5, 3}) * w2.view({1, 12, 1, 1}) +
                b2.view({1, 12, 1, 1});
    const double tol = dt == DType::float32 ? 1e-5 : 1e-12;
    EXPECT_TRUE(tensors_close(y, y2, tol));
    Tensor g = randn({4, 12, 5, 3}).to(dt);
    (y * g).sum().backward();
    (y2 * g).sum().backward();
    EXPECT_TRUE(tensors_close(x.grad(), x2.grad(), tol));
    EXPECT_TRUE(tensors_close(w.grad(), w2.grad(), tol));
    EXPECT_TRUE(tensors_close(b.grad(), b2.grad(), tol));
  }
}

TEST(RMSNorm, ModuleDefaultsAndMachineEpsilon) {
  nn::RMSNorm rms(4);
  EXPECT_EQ(rms.str(), "RMSNorm([4], eps=None, elementwise_affine=true)");
  EXPECT_EQ(nn::RMSNorm({2, 3}, 1e-6, false).str(), "RMSNorm([2,3], eps=1e-06, elementwise_affine=false)");
  EXPECT_EQ(rms.parameters().size(), 1u);  // weight only: no bias
  EXPECT_TRUE(tensors_close(rms.weight, ones({4}), 0));
  // eps unset is the computing dtype's machine epsilon: it dominates a tiny mean square in float32
  // (1e-8 vs 1.19e-7), not in float64 (2.2e-16)
  nn::RMSNorm tiny(2);
  Tensor x = tensor<float>({1e-4f, -1e-4f}, {1, 2});
  const double f32 = 1e-4 / std::sqrt(1e-8 + std::numeric_limits<float>::epsilon());
  EXPECT_TRUE(tensors_close(tiny.forward(x), tensor<double>({f32, -f32}, {1, 2}), 1e-5));
  EXPECT_TRUE(tensors_close(F::rms_norm(x.to(DType::float64), {2}), tensor<double>({1, -1}, {1, 2}), 1e-7));
  // bfloat16 computes in float32 with float32's epsilon, and rounds once
  Tensor h = tiny.forward(x.to(DType::bfloat16));
  EXPECT_EQ(h.dtype(), DType::bfloat16);
  EXPECT_NEAR(h.to_vector<double>()[0], f32, 1e-2);
}

TEST(RMSNorm, ModuleGradcheck) {
  auto rms = std::make_shared<nn::RMSNorm>(Shape{3}, 1e-5);
  set_values(rms->weight, {1.5, -0.5, 2});
  EXPECT_TRUE(module_gradcheck(*rms, {&rms->weight}, R({2, 2, 3}, -1, 1, 36),
                               [&](const Tensor& in) { return rms->forward(in); }));
}

TEST(RMSNorm, Errors) {
  EMBER_EXPECT_THROW_MSG(nn::RMSNorm(Shape{}), "RMSNorm: normalized_shape must not be empty");
  EMBER_EXPECT_THROW_MSG(nn::RMSNorm(0), "must have positive sizes");
  EMBER_EXPECT_THROW_MSG(nn::RMSNorm(3, -1.0), "RMSNorm: eps must be >= 0, got -1");
  nn::RMSNorm rms({3, 4});
  EMBER_EXPECT_THROW_MSG(rms.forward(zeros({2, 4, 3})),
                         "rms_norm: input of shape [2,4,3] does not end with normalized_shape [3,4]");
  EMBER_EXPECT_THROW_MSG(F::rms_norm(zeros({2, 3}), {3}, ones({4})),
                         "rms_norm: weight has shape [4], expected [3]");
  EMBER_EXPECT_THROW_MSG(F::rms_norm(zeros({2, 3}, DType::int64), {3}),
                         "expected a floating input, got int64");
  EMBER_EXPECT_THROW_MSG(F::rms_norm(zeros({2, 3}), {3}, {}, -1e-3), "rms_norm: eps must be >= 0");
}

}  // namespace
}  // namespace ember::testing
