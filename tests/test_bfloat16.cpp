// bfloat16: the rounding of ember::bfloat16, casts to and from every dtype, creation, printing,
// ops computed in float32 and rounded once (checked bit for bit against that recipe), the cast's
// backward, the errors of ops without a bfloat16 path, safetensors' BF16 code, a loss on
// bfloat16 inputs, and CUDA/CPU agreement of the cast kernels.
#include <ember/checkpoint.h>
#include <ember/losses.h>
#include <ember/nn/functional.h>
#include <ember/nn/init.h>
#include <ember/nn/linear.h>
#include <ember/optim/adam.h>
#include <ember/optim/sgd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>

#include "harness.h"

namespace ember::testing {
namespace {

uint16_t bits_of(float f) { return bfloat16(f).bits; }
float float_of_bits(uint32_t u) { return std::bit_cast<float>(u); }
float bf16_value(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

// The raw bits of a bfloat16 tensor (on any device, any layout).
std::vector<uint16_t> bits_of(const Tensor& t) {
  EXPECT_EQ(t.dtype(), kBFloat16);
  std::vector<bfloat16> v = t.to_vector<bfloat16>();
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[i].bits;
  return out;
}

// A bfloat16 tensor holding exactly these bit patterns.
Tensor from_bits(const std::vector<uint16_t>& bits, const Shape& shape) {
  std::vector<bfloat16> v(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) v[i].bits = bits[i];
  return tensor<bfloat16>(v, shape);
}

// A float32 tensor holding exactly these bit patterns.
Tensor floats_from_bits(const std::vector<uint32_t>& bits) {
  std::vector<float> v(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) v[i] = float_of_bits(bits[i]);
  return tensor<float>(v);
}

// Float32 inputs whose conversion exercises every rounding rule, with the bfloat16 bits each
// must give (worked out by hand from the bit patterns).
struct EdgeCase {
  uint32_t in;
  uint16_t out;
};
const std::vector<EdgeCase> kEdges = {
    {0x3f800000u, 0x3f80},  // 1.0: exact
    {0x3f808000u, 0x3f80},  // tie, lower neighbour even: down
    {0x3f818000u, 0x3f82},  // tie, lower neighbour odd: up
    {0x3f808001u, 0x3f81},  // just above a tie: up
    {0xbf808000u, 0xbf80},  // negative tie: down in magnitude
    {0x7fc00000u, 0x7fc0},  // quiet NaN
    {0x7f800001u, 0x7fc0},  // signalling NaN whose payload is all in the dropped bits: made quiet
    {0xff800001u, 0xffc0},  // negative NaN keeps its sign
    {0x7fa00000u, 0x7fe0},  // NaN payload in the kept bits survives, quiet bit set
    {0x7f800000u, 0x7f80},  // +inf
    {0xff800000u, 0xff80},  // -inf
    {0x00000001u, 0x0000},  // smallest float32 denormal: below half of bfloat16's smallest
    {0x00010000u, 0x0001},  // bfloat16's smallest denormal, exact
    {0x00018000u, 0x0002},  // denormal tie, odd: up
    {0x00008001u, 0x0001},  // just above half the smallest denormal: up
    {0x7f7fffffu, 0x7f80},  // FLT_MAX overflows to inf
    {0x7f7f0000u, 0x7f7f},  // bfloat16's largest finite value, exact
    {0x7f7f7fffu, 0x7f7f},  // just below the tie above it: stays finite
    {0x7f7f8000u, 0x7f80},  // the tie above it, odd: overflows to inf
    {0x00000000u, 0x0000},  // +0
    {0x80000000u, 0x8000},  // -0
};
std::vector<uint32_t> edge_inputs() {
  std::vector<uint32_t> v;
  for (const EdgeCase& e : kEdges) v.push_back(e.in);
  return v;
}
std::vector<uint16_t> edge_outputs() {
  std::vector<uint16_t> v;
  for (const EdgeCase& e : kEdges) v.push_back(e.out);
  return v;
}

// ---- the scalar type ----------------------------------------------------------------------------

TEST(BFloat16Rounding, NearestEvenNaNInfDenormalsOverflow) {
  for (const EdgeCase& e : kEdges)
    EXPECT_EQ(bits_of(float_of_bits(e.in)), e.out) << "input bits 0x" << std::hex << e.in;
  EXPECT_EQ(bits_of(1.0f), 0x3f80);
  EXPECT_EQ(bits_of(0.1f), 0x3dcd);  // 0x3dcccccd: the dropped half is above the tie
  EXPECT_EQ(static_cast<float>(bfloat16(3.140625f)), 3.140625f);  // exactly representable
  EXPECT_TRUE(std::isnan(static_cast<float>(bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(static_cast<float>(bfloat16(std::numeric_limits<float>::max())), INFINITY);
}

TEST(BFloat16Rounding, EveryBitPatternSurvivesFloat32) {
  // bfloat16 -> float32 is exact, so float32 -> bfloat16 must give the same bits back; only
  // signalling NaNs change (they come back quiet).
  std::vector<uint16_t> all(65536);
  for (uint32_t b = 0; b < 65536; ++b) all[b] = static_cast<uint16_t>(b);
  Tensor x = from_bits(all, {65536});
  std::vector<uint16_t> back = bits_of(x.to(kFloat32).to(kBFloat16));
  std::vector<float> f = x.to_vector<float>();
  int64_t widen_errors = 0, round_trip_errors = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    if (std::bit_cast<uint32_t>(f[b]) != b << 16) ++widen_errors;
    bool nan = (b & 0x7fffu) > 0x7f80u;
    if (nan ? back[b] != (b | 0x40u) : back[b] != b) ++round_trip_errors;
  }
  EXPECT_EQ(widen_errors, 0);
  EXPECT_EQ(round_trip_errors, 0);
}

// ---- casts ---------------------------------------------------------------------------------

TEST(BFloat16Cast, FromFloat32RoundsLikeTheScalar) {
  Tensor x = floats_from_bits(edge_inputs()).to(kBFloat16);
  EXPECT_EQ(x.dtype(), kBFloat16);
  EXPECT_EQ(bits_of(x), edge_outputs());
}

TEST(BFloat16Cast, RoundTripsThroughEveryDtype) {
  // float64 -> bfloat16 goes through float32 (PyTorch's c10::BFloat16 does the same).
  Tensor d = tensor<double>({1.0 / 3.0, -2.5, 1e-3, 65504.0});
  EXPECT_EQ(bits_of(d.to(kBFloat16)), (std::vector<uint16_t>{0x3eab, 0xc020, 0x3a83, 0x4780}));
  EXPECT_EQ(d.to(kBFloat16).to(kFloat64).to_vector<double>(),
            (std::vector<double>{0.333984375, -2.5, 0.00099945068359375, 65536.0}));
  // Integers: exact up to 256, then 8 significant bits (257 ties to the even 256).
  Tensor i = tensor<int64_t>({0, 1, -3, 255, 256, 257, 1000, 1001});
  EXPECT_EQ(i.to(kBFloat16).to(kInt64).to_vector<int64_t>(),
            (std::vector<int64_t>{0, 1, -3, 255, 256, 256, 1000, 1000}));
  EXPECT_EQ(tensor<int32_t>({7, -7}).to(kBFloat16).to(kInt32).to_vector<int32_t>(),
            (std::vector<int32_t>{7, -7}));
  EXPECT_EQ(tensor<uint8_t>({0, 128, 255}).to(kBFloat16).to(kUInt8).to_vector<uint8_t>(),
            (std::vector<uint8_t>{0, 128, 255}));
  // bool -> 0/1; bfloat16 -> bool is "nonzero" (so -0 is false and NaN is true).
  EXPECT_EQ(bits_of(tensor<bool>({true, false}).to(kBFloat16)), (std::vector<uint16_t>{0x3f80, 0x0000}));
  Tensor b = from_bits({0x0000, 0x8000, 0x3f00, 0x7fc0, 0x0001}, {5}).to(kBool);
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{false, false, true, true, true}));
  // bfloat16 -> int truncates toward zero, like float32 -> int.
  EXPECT_EQ(tensor<float>({2.75f, -2.75f}).to(kBFloat16).to(kInt64).to_vector<int64_t>(),
            (std::vector<int64_t>{2, -2}));
}

TEST(BFloat16Cast, LayoutOpsCopiesAndScalars) {
  Tensor x = arange(0, 6, 1, kFloat32).reshape({2, 3}).to(kBFloat16);
  Tensor t = x.t();
  EXPECT_FALSE(t.is_contiguous());
  Tensor c = t.contiguous();
  EXPECT_EQ(c.dtype(), kBFloat16);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(x.clone().to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(x.select(1, 2).to_vector<float>(), (std::vector<float>{2, 5}));
  EXPECT_EQ(x.slice(1, 1, 3).to(kFloat64).to_vector<double>(), (std::vector<double>{1, 2, 4, 5}));
  // copy_ casts into a bfloat16 view, and out of one.
  Tensor dst = zeros({2, 3}, kBFloat16);
  dst.select(0, 1).copy_(tensor<double>({0.1, 0.2, 0.3}));
  EXPECT_EQ(bits_of(dst), (std::vector<uint16_t>{0, 0, 0, 0x3dcd, 0x3e4d, 0x3e9a}));
  Tensor f = zeros({3}, kFloat32);
  f.copy_(dst.select(0, 1));
  EXPECT_EQ(f.to_vector<float>(),
            (std::vector<float>{bf16_value(0x3dcd), bf16_value(0x3e4d), bf16_value(0x3e9a)}));
  EXPECT_FLOAT_EQ(x.select(0, 1).select(0, 2).item<float>(), 5.0f);
  Tensor joined = cat({x, x.select(0, 0).unsqueeze(0)}, 0);
  EXPECT_EQ(joined.dtype(), kBFloat16);
  EXPECT_EQ(joined.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5, 0, 1, 2}));
}

TEST(BFloat16Cast, CreationFunctions) {
  EXPECT_EQ(bits_of(zeros({2}, kBFloat16)), (std::vector<uint16_t>{0, 0}));
  EXPECT_EQ(bits_of(ones({2}, kBFloat16)), (std::vector<uint16_t>{0x3f80, 0x3f80}));
  EXPECT_EQ(bits_of(full({1}, 0.1, kBFloat16)), (std::vector<uint16_t>{0x3dcd}));
  EXPECT_EQ(bits_of(empty({3}, kBFloat16)).size(), 3u);
  EXPECT_EQ(arange(0, 3, 1, kBFloat16).to_vector<float>(), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(bits_of(tensor<double>({0.1}, kBFloat16)), (std::vector<uint16_t>{0x3dcd}));
  EXPECT_EQ(bits_of(eye(2, kBFloat16)), (std::vector<uint16_t>{0x3f80, 0, 0, 0x3f80}));
  // Random bfloat16 tensors are the float32 draws, rounded: the same seed gives the same numbers.
  manual_seed(7);
  Tensor f = randn({64}, kFloat32);
  manual_seed(7);
  Tensor b = randn({64}, kBFloat16);
  EXPECT_EQ(bits_of(b), bits_of(f.to(kBFloat16)));
  manual_seed(7);
  Tensor u = rand({64}, kBFloat16);
  EXPECT_EQ(u.dtype(), kBFloat16);
  EXPECT_TRUE((u >= 0.0).all().item<bool>() && (u <= 1.0).all().item<bool>());
  EXPECT_EQ(zeros_like(b).dtype(), kBFloat16);
}

TEST(BFloat16Dtype, NamePromotionAndPrinting) {
  EXPECT_EQ(element_size(kBFloat16), 2u);
  EXPECT_EQ(dtype_name(kBFloat16), "bfloat16");
  EXPECT_TRUE(is_floating(kBFloat16));
  EXPECT_FALSE(is_integral(kBFloat16));
  EXPECT_EQ(promote_types(kBFloat16, kFloat32), kFloat32);
  EXPECT_EQ(promote_types(kBFloat16, kFloat64), kFloat64);
  EXPECT_EQ(promote_types(kBFloat16, kInt64), kBFloat16);
  EXPECT_EQ(promote_types(kBool, kBFloat16), kBFloat16);
  Tensor x = tensor<double>({1.0, 1.0 / 3.0}).to(kBFloat16);
  Tensor f = ones({2}, kFloat32);
  EXPECT_EQ((x + f).dtype(), kFloat32);
  EXPECT_EQ((x + tensor<int64_t>({1, 2})).dtype(), kBFloat16);
  EXPECT_EQ((x * 2.0).dtype(), kBFloat16);
  EXPECT_EQ(x.str(), "tensor([1.0000, 0.3340], shape=[2], dtype=bfloat16)");
  Tensor g = x.detach().requires_grad_(true);
  EXPECT_EQ((g * 2.0).str(), "tensor([2.0000, 0.6680], shape=[2], dtype=bfloat16, grad_fn=<mul>)");
  EXPECT_TRUE(equal(x, x.clone()));
  EXPECT_FALSE(equal(x, ones({2}, kBFloat16)));
  EXPECT_TRUE(allclose(x, tensor<double>({1.0, 1.0 / 3.0}), 1e-2, 0));
  EXPECT_FALSE(allclose(x, tensor<double>({1.0, 1.0 / 3.0}), 1e-4, 0));
}

// ---- compute: float32 kernels, one rounding -------------------------------------------------

// The bfloat16 result must be the float32 result of the same (bfloat16-valued) inputs, rounded.
void expect_float32_then_round(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                               const std::vector<Tensor>& bf16_inputs, const std::string& what) {
  std::vector<Tensor> f32;
  for (const Tensor& t : bf16_inputs) f32.push_back(t.dtype() == kBFloat16 ? t.to(kFloat32) : t);
  Tensor got = f(bf16_inputs), want = f(f32);
  ASSERT_EQ(got.dtype(), want.dtype() == kFloat32 ? kBFloat16 : want.dtype()) << what;
  if (got.dtype() == kBFloat16) {
    EXPECT_EQ(bits_of(got), bits_of(want.to(kBFloat16))) << what;
  } else {
    EXPECT_TRUE(equal(got, want)) << what;
  }
}

TEST(BFloat16Compute, HandComputedSingleRounding) {
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: it rounds to the even 1.
  Tensor one = tensor<float>({1.0f}).to(kBFloat16), tiny = tensor<float>({0.00390625f}).to(kBFloat16);
  EXPECT_EQ(bits_of(one + tiny), (std::vector<uint16_t>{0x3f80}));
  // 1 + 3 * 2^-8 = 0x3f818000: a tie whose lower neighbour is odd, so it rounds up to 1 + 2^-6.
  EXPECT_EQ(bits_of(one + tiny * 3.0), (std::vector<uint16_t>{0x3f82}));
  // A sum accumulates in float32 and rounds once: 1 + 2^-8 + 2^-8 = 1 + 2^-7 exactly, where
  // rounding after each addition would have lost both small terms.
  Tensor v = tensor<float>({1.0f, 0.00390625f, 0.00390625f}).to(kBFloat16);
  EXPECT_EQ(bits_of(v.sum()), (std::vector<uint16_t>{0x3f81}));
  EXPECT_EQ(v.sum().dtype(), kBFloat16);
  // In place, through the same path.
  Tensor w = one.clone();
  w.add_(tiny * 3.0);
  EXPECT_EQ(bits_of(w), (std::vector<uint16_t>{0x3f82}));
  w.mul_(2.0);
  EXPECT_EQ(bits_of(w), (std::vector<uint16_t>{0x4002}));
}

TEST(BFloat16Compute, OpsMatchFloat32ThenRound) {
  manual_seed(3);
  Tensor x = randn({4, 6}, kBFloat16), y = randn({4, 6}, kBFloat16), m = randn({6, 3}, kBFloat16);
  Tensor pos = rand({4, 6}, kBFloat16) + 0.5;
  using V = std::vector<Tensor>;
  expect_float32_then_round([](const V& a) { return a[0] + a[1]; }, {x, y}, "add");
  expect_float32_then_round([](const V& a) { return a[0] * a[1]; }, {x, y}, "mul");
  expect_float32_then_round([](const V& a) { return a[0] - a[1]; }, {x, y}, "sub");
  expect_float32_then_round([](const V& a) { return a[0] / a[1]; }, {x, y}, "div");
  expect_float32_then_round([](const V& a) { return exp(a[0]); }, {x}, "exp");
  expect_float32_then_round([](const V& a) { return log(a[0]); }, {pos}, "log");
  expect_float32_then_round([](const V& a) { return sigmoid(a[0]); }, {x}, "sigmoid");
  expect_float32_then_round([](const V& a) { return gelu(a[0]); }, {x}, "gelu");
  expect_float32_then_round([](const V& a) { return relu(a[0]); }, {x}, "relu");
  expect_float32_then_round([](const V& a) { return clamp(a[0], -0.5, 0.5); }, {x}, "clamp");
  expect_float32_then_round([](const V& a) { return where(a[0] > 0.0, a[0], a[1]); }, {x, y}, "where");
  expect_float32_then_round([](const V& a) { return a[0] > a[1]; }, {x, y}, "gt");
  expect_float32_then_round([](const V& a) { return maximum(a[0], a[1]); }, {x, y}, "maximum");
  expect_float32_then_round([](const V& a) { return a[0].sum({1}); }, {x}, "sum");
  expect_float32_then_round([](const V& a) { return a[0].mean({0}); }, {x}, "mean");
  expect_float32_then_round([](const V& a) { return a[0].amax({1}); }, {x}, "amax");
  expect_float32_then_round([](const V& a) { return a[0].argmax(1); }, {x}, "argmax");
  expect_float32_then_round([](const V& a) { return a[0].cumsum(1); }, {x}, "cumsum");
  expect_float32_then_round([](const V& a) { return softmax(a[0], 1); }, {x}, "softmax");
  expect_float32_then_round([](const V& a) { return log_softmax(a[0], 0); }, {x}, "log_softmax");
  expect_float32_then_round([](const V& a) { return a[0].logsumexp({1}); }, {x}, "logsumexp");
  expect_float32_then_round([](const V& a) { return a[0].var({1}); }, {x}, "var");
  expect_float32_then_round([](const V& a) { return matmul(a[0], a[1]); }, {x, m}, "matmul");
  expect_float32_then_round([](const V& a) { return linear(a[0], a[1].t(), Tensor()); }, {x, m}, "linear");
  expect_float32_then_round([](const V& a) { return a[0].sort(1).first; }, {x}, "sort");
  expect_float32_then_round(
      [](const V& a) {
        return a[0].index_select(0, tensor<int64_t>({2, 0}));
      },
      {x}, "index_select");
  expect_float32_then_round([](const V& a) { return nn::functional::layer_norm(a[0], {6}); }, {x},
                            "layer_norm");
}

// ---- autograd -----------------------------------------------------------------------------

TEST(BFloat16Autograd, CastBackwardCastsTheGradient) {
  // float64 -> bfloat16 -> float64: the gradient reaching x is the upstream gradient cast to
  // bfloat16 and back (the cast's derivative is the identity, applied in the narrower dtype).
  Tensor x = tensor<double>({0.5, -1.25, 3.0}).requires_grad_(true);
  Tensor w = tensor<double>({0.1, 1.0 / 3.0, -2.5});
  Tensor z = x.to(kBFloat16).to(kFloat64);
  EXPECT_EQ(z.dtype(), kFloat64);
  (z * w).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), kFloat64);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0.10009765625, 0.333984375, -2.5}));
  EXPECT_TRUE(equal(x.grad(), w.to(kBFloat16).to(kFloat64)));
}

TEST(BFloat16Autograd, LeafGradientsAreBFloat16AndAccumulate) {
  Tensor x = tensor<float>({0.5f, -1.25f, 3.0f}).to(kBFloat16).requires_grad_(true);
  (x * x).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().dtype(), kBFloat16);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1.0f, -2.5f, 6.0f}));
  (x * x).sum().backward();  // AccumulateGrad adds bfloat16 to bfloat16
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2.0f, -5.0f, 12.0f}));
}

TEST(BFloat16Autograd, ComposedOpsGradientsMatchFloat32Rounded) {
  manual_seed(11);
  Tensor xb = randn({3, 5}, kBFloat16), wb = randn({5, 2}, kBFloat16);
  Tensor x = xb.clone().requires_grad_(true), w = wb.clone().requires_grad_(true);
  Tensor x32 = xb.to(kFloat32).requires_grad_(true), w32 = wb.to(kFloat32).requires_grad_(true);
  log_softmax(matmul(x, w), 1).select(1, 0).sum().backward();
  log_softmax(matmul(x32, w32), 1).select(1, 0).sum().backward();
  ASSERT_EQ(x.grad().dtype(), kBFloat16);
  ASSERT_EQ(w.grad().dtype(), kBFloat16);
  // Forward rounding of the bfloat16 matmul output shifts the float32 backward slightly: compare
  // within a few bfloat16 ulps.
  EXPECT_TRUE(tensors_close(x.grad().to(kFloat64), x32.grad().to(kFloat64), 2e-2));
  EXPECT_TRUE(tensors_close(w.grad().to(kFloat64), w32.grad().to(kFloat64), 2e-2));
}

TEST(BFloat16Modules, InitAndALinearLayerInBFloat16) {
  // nn::init draws in float32 and rounds: the same numbers as randn, rounded.
  Tensor t = empty({64}, kBFloat16);
  manual_seed(9);
  nn::init::normal_(t);
  manual_seed(9);
  EXPECT_EQ(bits_of(t), bits_of(randn({64}, kFloat32).to(kBFloat16)));
  // A module converted with to(kBFloat16) runs (and trains) in bfloat16.
  manual_seed(2);
  nn::Linear lin(4, 3);
  lin.to(kBFloat16);
  ASSERT_EQ(lin.weight.dtype(), kBFloat16);
  Tensor x = randn({2, 4}, kBFloat16);
  Tensor y = lin.forward(x);
  ASSERT_EQ(y.dtype(), kBFloat16);
  Tensor y32 = linear(x.to(kFloat32), lin.weight.to(kFloat32), lin.bias.to(kFloat32));
  EXPECT_EQ(bits_of(y), bits_of(y32.to(kBFloat16)));
  y.sum().backward();
  ASSERT_TRUE(lin.weight.grad().defined());
  EXPECT_EQ(lin.weight.grad().dtype(), kBFloat16);
  // d sum(x W^T + b) / dW[o, i] = sum over rows of x[:, i], the same for every output o.
  Tensor expected = x.to(kFloat32).sum({0}).to(kBFloat16);
  for (int64_t o = 0; o < 3; ++o) EXPECT_EQ(bits_of(lin.weight.grad().select(0, o)), bits_of(expected));
}

// ---- errors -------------------------------------------------------------------------------

TEST(BFloat16Compute, BatchNormRunsInFloat32AndUpdatesTheBuffers) {
  manual_seed(4);
  const Tensor x = randn({4, 3, 2, 2}, kBFloat16), w = randn({3}, kBFloat16), b = randn({3}, kBFloat16);
  Tensor rm = randn({3}, kBFloat16), rv = rand({3}, kBFloat16) + 0.5;
  Tensor rm32 = rm.to(kFloat32), rv32 = rv.to(kFloat32);
  Tensor xg = x.clone().requires_grad_(), x32 = x.to(kFloat32).requires_grad_();
  Tensor y = nn::functional::batch_norm(xg, rm, rv, w, b, true, 0.1, 1e-5);
  Tensor y32 = nn::functional::batch_norm(x32, rm32, rv32, w.to(kFloat32), b.to(kFloat32), true, 0.1, 1e-5);
  ASSERT_EQ(y.dtype(), kBFloat16);
  EXPECT_EQ(bits_of(y), bits_of(y32.to(kBFloat16)));    // float32 math, one rounding
  EXPECT_EQ(bits_of(rm), bits_of(rm32.to(kBFloat16)));  // the running buffers, rounded once
  EXPECT_EQ(bits_of(rv), bits_of(rv32.to(kBFloat16)));
  // The gradient is the float32 one, rounded.
  y.square().sum().backward();
  y32.to(kBFloat16).to(kFloat32).square().sum().backward();
  ASSERT_EQ(xg.grad().dtype(), kBFloat16);
  EXPECT_LE(relative_gap(xg.grad().to(kFloat32), x32.grad()), 1e-2);
  // float32 running buffers beside bfloat16 activations (mixed precision) are updated in place.
  Tensor fm = zeros({3}), fv = ones({3});
  nn::functional::batch_norm(x, fm, fv, Tensor(), Tensor(), true, 0.1, 1e-5);
  EXPECT_GT(fm.abs().sum().item<double>(), 0.0);
  // Evaluation mode reads the buffers.
  Tensor e = nn::functional::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
  Tensor e32 = nn::functional::batch_norm(x.to(kFloat32), rm.to(kFloat32), rv.to(kFloat32), w.to(kFloat32),
                                          b.to(kFloat32), false, 0.1, 1e-5);
  EXPECT_EQ(bits_of(e), bits_of(e32.to(kBFloat16)));
}

// bfloat16 parameters step in float32 and are stored rounded (as in PyTorch): one step equals the
// float32 step on the same values, rounded once; the state (momentum, moments) is bfloat16 too.
TEST(BFloat16Compute, OptimizersStepInFloat32AndRoundOnce) {
  manual_seed(5);
  using MakeOpt = std::function<std::unique_ptr<optim::Optimizer>(const Tensor&)>;
  const std::vector<std::pair<const char*, MakeOpt>> optimizers = {
      {"SGD",
       [](const Tensor& p) {
         return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{0.1});
       }},
      {"SGD momentum nesterov decay",
       [](const Tensor& p) {
         return std::make_unique<optim::SGD>(std::vector<Tensor>{p},
                                             optim::SGDOptions{0.1, 0.9, 0.0, 0.01, true});
       }},
      {"Adam amsgrad",
       [](const Tensor& p) {
         return std::make_unique<optim::Adam>(std::vector<Tensor>{p},
                                              optim::AdamOptions{0.01, {0.9, 0.999}, 1e-8, 0.0, true});
       }},
      {"AdamW",
       [](const Tensor& p) {
         return std::make_unique<optim::AdamW>(std::vector<Tensor>{p}, optim::AdamWOptions{0.01});
       }},
  };
  for (const auto& [name, make] : optimizers) {
    SCOPED_TRACE(name);
    Tensor w = randn({7}, kBFloat16).requires_grad_(), w32 = w.detach().to(kFloat32).requires_grad_();
    const Tensor g = randn({7}, kBFloat16);
    auto opt = make(w), opt32 = make(w32);
    w.set_grad(g.clone());
    w32.set_grad(g.to(kFloat32));
    opt->step();
    opt32->step();
    ASSERT_EQ(w.dtype(), kBFloat16);
    EXPECT_EQ(bits_of(w), bits_of(w32.to(kBFloat16)));
    // Later steps round the state as well: they stay within bfloat16 resolution of float32.
    for (int step = 0; step < 5; ++step) {
      opt->step();
      opt32->step();
    }
    EXPECT_LE(relative_gap(w.to(kFloat32), w32), 2e-2);
  }
}

TEST(BFloat16Errors, DtypeMismatchesSaySo) {
  Tensor x = ones({2, 3}, kBFloat16);
  EMBER_EXPECT_THROW_MSG(x.data_ptr<float>(), "data_ptr: requested float32 but the tensor is bfloat16");
  EMBER_EXPECT_THROW_MSG(matmul(ones({2, 2}, kBFloat16), ones({2, 2}, kFloat32)),
                         "dtype mismatch (bfloat16 vs float32)");
}

// ---- safetensors ----------------------------------------------------------------------------

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ember_bf16_" + name)).string();
}
std::string file_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(BFloat16Safetensors, SavesAndLoadsBF16) {
  Tensor w = from_bits({0x3f80, 0xc020, 0x7f80, 0x0001, 0x3dcd, 0x8000}, {2, 3});
  const std::string p = temp_path("roundtrip.safetensors");
  save_safetensors(p, std::map<std::string, Tensor>{{"w", w}});
  EXPECT_NE(file_bytes(p).find(R"("dtype":"BF16")"), std::string::npos);
  StateDict loaded = load_safetensors(p);
  Tensor back = loaded.tensors.at("w");
  EXPECT_EQ(back.dtype(), kBFloat16);
  EXPECT_EQ(back.shape(), (Shape{2, 3}));
  EXPECT_EQ(bits_of(back), bits_of(w));
  std::filesystem::remove(p);
}

TEST(BFloat16Safetensors, ReadsAFileAsPyTorchWritesIt) {
  // safetensors.torch.save_file({"a": torch.tensor([1.0, -2.5], dtype=torch.bfloat16)}): little-
  // endian 0x3f80, 0xc020 after an 8-byte header length and the JSON header.
  const std::string header = R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})";
  const std::string p = temp_path("torch.safetensors");
  {
    std::ofstream out(p, std::ios::binary);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i)));
    out << header;
    const unsigned char data[] = {0x80, 0x3f, 0x20, 0xc0};
    out.write(reinterpret_cast<const char*>(data), 4);
  }
  Tensor a = load_safetensors(p).tensors.at("a");
  EXPECT_EQ(a.dtype(), kBFloat16);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.0f, -2.5f}));
  std::filesystem::remove(p);
}

// ---- losses -------------------------------------------------------------------------------

TEST(BFloat16Losses, CrossEntropyIsTheFloat32LossRounded) {
  manual_seed(5);
  Tensor logits_b = randn({4, 5}, kBFloat16), target = tensor<int64_t>({0, 3, 4, 1});
  Tensor lb = logits_b.clone().requires_grad_(true), l32 = logits_b.to(kFloat32).requires_grad_(true);
  Tensor loss_b = losses::cross_entropy(lb, target), loss_32 = losses::cross_entropy(l32, target);
  ASSERT_EQ(loss_b.dtype(), kBFloat16);
  // Within bfloat16's half-ulp relative rounding error of the float32 loss -- in fact its rounding.
  EXPECT_NEAR(loss_b.item<float>(), loss_32.item<float>(), std::abs(loss_32.item<float>()) * 0x1p-8);
  EXPECT_EQ(bits_of(loss_b), bits_of(loss_32.to(kBFloat16)));
  loss_b.backward();
  loss_32.backward();
  ASSERT_EQ(lb.grad().dtype(), kBFloat16);
  EXPECT_EQ(bits_of(lb.grad()), bits_of(l32.grad().to(kBFloat16)));
}

TEST(BFloat16Losses, ElementwiseAndBinaryLosses) {
  Tensor x = tensor<float>({0.5f, -1.0f, 2.0f}).to(kBFloat16),
         y = tensor<float>({0.0f, 1.0f, 1.0f}).to(kBFloat16);
  Tensor mse = losses::mse_loss(x, y);
  EXPECT_EQ(mse.dtype(), kBFloat16);
  EXPECT_FLOAT_EQ(mse.item<float>(), bf16_value(bits_of((0.25f + 4.0f + 1.0f) / 3.0f)));
  Tensor bce = losses::binary_cross_entropy_with_logits(x, y);
  Tensor bce32 = losses::binary_cross_entropy_with_logits(x.to(kFloat32), y.to(kFloat32));
  EXPECT_EQ(bits_of(bce), bits_of(bce32.to(kBFloat16)));
}

// Every standard and paper loss (except cut_cross_entropy, which has its own tests) on bfloat16
// inputs: `inputs` are differentiated; `teachers` are floating inputs that are not (they take the
// dtype of the run); `fixed` (targets, class weights) are passed as they are. `fn` takes them in
// that order.
struct LossCase {
  const char* name;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<Tensor> inputs, fixed, teachers;
};

std::vector<LossCase> bf16_loss_cases() {
  using V = std::vector<Tensor>;
  manual_seed(21);
  Tensor logits = randn({4, 5}, kBFloat16), other = randn({4, 5}, kBFloat16);
  Tensor y = tensor<int64_t>({0, 3, 4, 1}), y01 = tensor<float>({0, 1, 1, 0}).to(kBFloat16);
  Tensor p = rand({4}, kBFloat16), soft = rand({4, 5}, kBFloat16);
  Tensor w = tensor<float>({1.0f, 0.5f, 2.0f, 1.0f, 0.25f}).to(kBFloat16);
  // Inputs that are themselves op results are made in float32 and rounded once, so that both
  // versions of each loss see the same values.
  Tensor log_p = log_softmax(logits.to(kFloat32), 1).to(kBFloat16);
  Tensor q = softmax(other.to(kFloat32), 1).to(kBFloat16);
  Tensor probs = sigmoid(logits.to(kFloat32)).to(kBFloat16);
  return {
      {"cross_entropy weighted smoothed",
       [](const V& a) { return losses::cross_entropy(a[0], a[1], {.weight = a[2], .label_smoothing = 0.1}); },
       {logits},
       {y, w}},
      {"cross_entropy probabilities",
       [](const V& a) { return losses::cross_entropy(a[0], a[1]); },
       {logits, q}},
      {"nll_loss",
       [](const V& a) { return losses::nll_loss(a[0], a[1], {.weight = a[2]}); },
       {log_p},
       {y, w}},
      {"bce_with_logits",
       [](const V& a) { return losses::binary_cross_entropy_with_logits(a[0], a[1]); },
       {logits, soft}},
      {"bce", [](const V& a) { return losses::binary_cross_entropy(a[0], a[1]); }, {probs, soft}},
      {"mse", [](const V& a) { return losses::mse_loss(a[0], a[1]); }, {logits, other}},
      {"l1", [](const V& a) { return losses::l1_loss(a[0], a[1]); }, {logits, other}},
      {"smooth_l1",
       [](const V& a) { return losses::smooth_l1_loss(a[0], a[1], {.beta = 0.5}); },
       {logits, other}},
      {"kl_div", [](const V& a) { return losses::kl_div(a[0], a[1]); }, {log_p, q}},
      {"kd_loss",
       [](const V& a) { return losses::kd_loss(a[0], a[1], {.temperature = 2.0}); },
       {logits, other}},
      {"generalized_cross_entropy",
       [](const V& a) { return losses::generalized_cross_entropy(a[0], a[1], 0.5); },
       {logits},
       {y}},
      {"mae_loss", [](const V& a) { return losses::mae_loss(a[0], a[1]); }, {logits}, {y}},
      {"sum_exponential_loss",
       [](const V& a) { return losses::sum_exponential_loss(a[0], a[1]); },
       {logits},
       {y}},
      {"opl", [](const V& a) { return losses::opl(a[0], a[1]); }, {logits}, {y}},
      {"tri_bce",
       [](const V& a) { return losses::tri_bce(a[0], a[1], a[2], a[3]); },
       {logits.select(1, 0), logits.select(1, 1), other.select(1, 2)},
       {y01}},
      {"anyloss", [](const V& a) { return losses::anyloss(a[0], a[1]); }, {p}, {y01}},
      {"pld",
       [](const V& a) { return losses::pld(a[0], a[1], a[2], {.temperature = 2.0}); },
       {logits},
       {y},
       {other}},
  };
}

// The case's inputs as fresh leaves of `dtype` on `device` (requiring gradients), its teachers as
// `dtype` on `device`, then its fixed tensors on `device`.
std::vector<Tensor> case_arguments(const LossCase& c, DType dtype, Device device) {
  std::vector<Tensor> args;
  for (const Tensor& t : c.inputs) args.push_back(t.detach().to(device, dtype).requires_grad_(true));
  for (const Tensor& t : c.teachers) args.push_back(t.to(device, dtype));
  for (const Tensor& t : c.fixed) args.push_back(t.to(device));
  return args;
}

// On bfloat16 inputs each loss is the float32 loss of the same values rounded to bfloat16, and
// each input's gradient is the float32 gradient rounded.
TEST(BFloat16Losses, EveryLossIsItsFloat32VersionRounded) {
  for (const LossCase& c : bf16_loss_cases()) {
    std::vector<Tensor> b = case_arguments(c, kBFloat16, Device::cpu()),
                        f = case_arguments(c, kFloat32, Device::cpu());
    Tensor loss_b = c.fn(b), loss_f = c.fn(f);
    ASSERT_EQ(loss_b.dtype(), kBFloat16) << c.name;
    EXPECT_EQ(bits_of(loss_b), bits_of(loss_f.to(kBFloat16))) << c.name;
    loss_b.backward();
    loss_f.backward();
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      ASSERT_TRUE(b[i].grad().defined() && f[i].grad().defined()) << c.name << " input " << i;
      ASSERT_EQ(b[i].grad().dtype(), kBFloat16) << c.name;
      EXPECT_EQ(bits_of(b[i].grad()), bits_of(f[i].grad().to(kBFloat16))) << c.name << " input " << i;
    }
  }
}

// ---- CUDA ---------------------------------------------------------------------------------

TEST(BFloat16Cuda, CastsMatchTheCpuBitForBit) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device available (the CUDA tests need a GPU)";
  manual_seed(1);
  Tensor edge = floats_from_bits(edge_inputs());
  Tensor f = cat({edge, randn({4093}, kFloat32) * 100.0});  // odd size: the vector path's tail
  EXPECT_EQ(bits_of(f.cuda().to(kBFloat16)), bits_of(f.to(kBFloat16)));
  Tensor d = f.to(kFloat64);
  EXPECT_EQ(bits_of(d.cuda().to(kBFloat16)), bits_of(d.to(kBFloat16)));
  Tensor i = tensor<int64_t>({0, 1, -3, 255, 257, 1001});
  EXPECT_EQ(bits_of(i.cuda().to(kBFloat16)), bits_of(i.to(kBFloat16)));
  Tensor b = f.to(kBFloat16);
  Tensor bg = b.cuda();
  EXPECT_EQ(bits_of(bg), bits_of(b));  // a transfer moves the bits
  // To float32 is exact (a shift), NaN payloads included: compare bits (equal() is false on NaN).
  auto float_bits = [](const Tensor& t) {
    std::vector<uint32_t> bits;
    for (float v : t.to_vector<float>()) bits.push_back(std::bit_cast<uint32_t>(v));
    return bits;
  };
  EXPECT_EQ(float_bits(bg.to(kFloat32).cpu()), float_bits(b.to(kFloat32)));
  // To integers only finite, in-range values convert the same everywhere (NaN, inf and overflow
  // are undefined in C++ and differ between the CPU and the GPU, as in PyTorch).
  Tensor in_range = b.narrow(0, edge.numel(), 4093);
  EXPECT_TRUE(equal(in_range.cuda().to(kInt64).cpu(), in_range.to(kInt64)));
  EXPECT_TRUE(equal(bg.to(kBool).cpu(), b.to(kBool)));
  // Strided source and destination.
  Tensor m = randn({33, 17}, kFloat32);
  EXPECT_EQ(bits_of(m.cuda().t().to(kBFloat16)), bits_of(m.t().to(kBFloat16)));
  EXPECT_EQ(bits_of(m.to(kBFloat16).cuda().t().contiguous()), bits_of(m.to(kBFloat16).t().contiguous()));
  EXPECT_EQ(bits_of(full({5}, 0.1, TensorOptions(kBFloat16).device(Device::cuda()))),
            std::vector<uint16_t>(5, 0x3dcd));
  // An op on CUDA runs the float32 kernel and the same rounding.
  Tensor s = randn({8, 9}, kBFloat16);
  Tensor got = softmax(s.cuda(), 1).cpu();
  EXPECT_EQ(got.dtype(), kBFloat16);
  EXPECT_TRUE(tensors_close(got.to(kFloat64), softmax(s, 1).to(kFloat64), 1e-2));
}

// The same losses on CUDA: bfloat16 in, bfloat16 out, within one bfloat16 rounding of the CPU's
// (both compute in float32 and round once; their float32 sums may differ in order, which can move
// a value across a rounding boundary).
TEST(BFloat16Cuda, EveryLossMatchesTheCpu) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device available (the CUDA tests need a GPU)";
  constexpr double kOneRounding = 0x1p-7;  // two half-ulps of bfloat16's 8-bit significand
  for (const LossCase& c : bf16_loss_cases()) {
    std::vector<Tensor> g = case_arguments(c, kBFloat16, Device::cuda()),
                        h = case_arguments(c, kBFloat16, Device::cpu());
    Tensor loss_g = c.fn(g), loss_h = c.fn(h);
    ASSERT_EQ(loss_g.dtype(), kBFloat16) << c.name;
    EXPECT_TRUE(loss_g.device().is_cuda()) << c.name;
    EXPECT_LE(relative_gap(loss_g, loss_h), kOneRounding) << c.name;
    loss_g.backward();
    loss_h.backward();
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      ASSERT_TRUE(g[i].grad().defined()) << c.name << " input " << i;
      EXPECT_EQ(g[i].grad().dtype(), kBFloat16) << c.name;
      EXPECT_LE(relative_gap(g[i].grad(), h[i].grad()), kOneRounding) << c.name << " input " << i;
    }
  }
}

// bfloat16 matmul and linear on CUDA run on the bf16 tensor cores (cuBLAS, float32 accumulation,
// one rounding), not on float32 copies: within one bfloat16 rounding of the CPU's float32 GEMM of
// the widened operands, also for transposed, batched, broadcast and vector operands and for the
// gradients; and the only memory a product asks for is its bf16 output.
TEST(BFloat16Cuda, MatmulAndLinearRunInBFloat16AndMatchTheCpu) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device available (the CUDA tests need a GPU)";
  constexpr double kOneRounding = 0x1p-7;
  using Pair = std::pair<Tensor, Tensor>;
  const Tensor m = randn({37, 70}, kBFloat16), k = randn({70, 45}, kBFloat16);
  const Tensor batch = randn({3, 16, 33}, kBFloat16), w = randn({33, 9}, kBFloat16);
  const Tensor v = randn({70}, kBFloat16);
  for (const auto& [a, b] : {Pair{m, k}, Pair{k.t(), m.t()}, Pair{batch, w},
                             Pair{batch, batch.transpose(1, 2)}, Pair{m, v}, Pair{v, k}}) {
    SCOPED_TRACE(fmt::format("{} @ {}", shape_str(a.shape()), shape_str(b.shape())));
    const Tensor got = matmul(a.cuda(), b.cuda());
    ASSERT_EQ(got.dtype(), kBFloat16);
    EXPECT_LE(relative_gap(got.cpu(), matmul(a, b)), kOneRounding);
  }
  // linear with bias, forward and every gradient
  const Tensor x = randn({2, 5, 70}, kBFloat16), weight = randn({45, 70}, kBFloat16),
               bias = randn({45}, kBFloat16);
  std::vector<Tensor> on_gpu{x.cuda().requires_grad_(), weight.cuda().requires_grad_(),
                             bias.cuda().requires_grad_()};
  std::vector<Tensor> on_cpu{x.detach().requires_grad_(), weight.detach().requires_grad_(),
                             bias.detach().requires_grad_()};
  const Tensor y_gpu = linear(on_gpu[0], on_gpu[1], on_gpu[2]),
               y_cpu = linear(on_cpu[0], on_cpu[1], on_cpu[2]);
  EXPECT_LE(relative_gap(y_gpu.cpu(), y_cpu), kOneRounding);
  (y_gpu * y_gpu.detach()).sum().backward();
  (y_cpu * y_gpu.detach().cpu()).sum().backward();
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(on_gpu[i].grad().dtype(), kBFloat16);
    EXPECT_LE(relative_gap(on_gpu[i].grad().cpu(), on_cpu[i].grad()), kOneRounding) << "input " << i;
  }
  // No float32 copies: a [1024, 512] @ [512, 1024] product allocates its 2 MiB output and nothing
  // else (float32 operands and output would add 8 MiB).
  const Tensor big_a = randn({1024, 512}, kBFloat16).cuda(), big_b = randn({512, 1024}, kBFloat16).cuda();
  cuda::synchronize();
  cuda::reset_peak_memory_stats();
  const int64_t before = cuda::memory_stats().current_bytes;
  const Tensor big = matmul(big_a, big_b);
  cuda::synchronize();
  EXPECT_LE(cuda::memory_stats().peak_bytes - before, 1024 * 1024 * 2);
}

}  // namespace
}  // namespace ember::testing
