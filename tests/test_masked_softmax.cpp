// nn::functional::masked_softmax: hand-computed rows for every mask kind (causal with Tq == Tk,
// Tq < Tk and Tq > Tk, key padding, both at once, rows with no visible key or only -inf scores),
// agreement with the composite softmax(masked_fill(scale * x)) on random inputs, strided input,
// bfloat16, and the errors. The harness adds, per row, the float32 forward, a float64 gradcheck and
// CPU-vs-CUDA parity (forward and backward).
#include <ember/nn/functional.h>

#include <cmath>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

namespace F = nn::functional;
const double kInf = std::numeric_limits<double>::infinity();
const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln5 = std::log(5.0), ln7 = std::log(7.0);

Tensor B(const std::vector<bool>& values, const Shape& shape) { return tensor<bool>(values, shape); }

// in[0] = scores; in[1] (optional) = key padding mask.
OpFn msm(double scale, bool causal) {
  return [=](const std::vector<Tensor>& in) {
    return F::masked_softmax(in[0], scale, causal, in.size() > 1 ? in[1] : Tensor());
  };
}

std::vector<OpCase> masked_softmax_cases() {
  return with_gradgradcheck({
      // scale 0.5 turns {0, 2 ln2, 2 ln3} into {0, ln2, ln3}: weights 1:2:3
      {"scaled",
       msm(0.5, false),
       {T({0, 2 * ln2, 2 * ln3}, {1, 1, 1, 3})},
       T({1.0 / 6, 2.0 / 6, 3.0 / 6}, {1, 1, 1, 3}, false)},
      // Tq == Tk: query 0 sees key 0 only (the 7 is ignored), query 1 sees both: 1:3
      {"causal_square",
       msm(1.0, true),
       {T({5, 7, 0, ln3}, {1, 1, 2, 2})},
       T({1, 0, 0.25, 0.75}, {1, 1, 2, 2}, false)},
      // Tq = 2 < Tk = 3 (offset 1): query 0 sees keys 0-1 (1:3), query 1 sees all (1:2:5)
      {"causal_fewer_queries",
       msm(1.0, true),
       {T({0, ln3, 9, 0, ln2, ln5}, {1, 1, 2, 3})},
       T({0.25, 0.75, 0, 1.0 / 8, 2.0 / 8, 5.0 / 8}, {1, 1, 2, 3}, false)},
      // Tq = 3 > Tk = 2 (offset -1): query 0 sees nothing (zeros), query 1 key 0, query 2 both (3:1)
      {"causal_more_queries",
       msm(1.0, true),
       {T({4, -1, 2, 6, ln3, 0}, {1, 1, 3, 2})},
       T({0, 0, 1, 0, 0.75, 0.25}, {1, 1, 3, 2}, false)},
      // B = 2, H = 2, Tq = 1, Tk = 3; batch 0 pads key 1, batch 1 pads key 0 (for both heads)
      {"key_padding",
       msm(1.0, false),
       {T({0, 100, ln3, 2 * ln2, -7, 0, 42, 0, ln2, 0, ln7, 0}, {2, 2, 1, 3}),
        B({false, true, false, true, false, false}, {2, 3})},
       T({0.25, 0, 0.75, 0.8, 0, 0.2, 0, 1.0 / 3, 2.0 / 3, 0, 7.0 / 8, 1.0 / 8}, {2, 2, 1, 3}, false)},
      // causal and padding together: query 0's only key is padding, so its row is all zeros
      {"causal_and_padding_fully_masked",
       msm(1.0, true),
       {T({3, 8, -2, 1}, {1, 1, 2, 2}), B({true, false}, {1, 2})},
       T({0, 0, 0, 1}, {1, 1, 2, 2}, false)},
      // -inf scores get weight 0; a row of only -inf scores is all zeros (PyTorch: NaN)
      {"minus_inf_scores",
       msm(1.0, false),
       {T({-kInf, 0, ln3, -kInf, -kInf, -kInf}, {1, 1, 2, 3})},
       T({0, 0.25, 0.75, 0, 0, 0}, {1, 1, 2, 3}, false)},
      // a NaN score makes its row NaN, also when every other visible score is -inf; padded keys
      // stay 0 (no gradcheck: finite differences of NaN say nothing)
      {"nan_propagates",
       msm(1.0, false),
       {T({0, NAN, 5, -kInf, NAN, 2}, {1, 1, 2, 3}), B({false, false, true}, {1, 3})},
       T({NAN, NAN, 0, NAN, NAN, 0}, {1, 1, 2, 3}, false),
       1e-6,
       /*gradcheck=*/false},
      // gradcheck on random scores with every feature at once (values checked against the composite below)
      {"random_causal_padded",
       msm(0.7, true),
       {R({2, 2, 3, 4}, -2, 2, 61), B({false, false, true, false, true, false, false, false}, {2, 4})},
       Tensor()},
  });
}

EMBER_OP_SUITE(MaskedSoftmax, masked_softmax_cases);

// The same thing from generic ops: softmax(masked_fill(scale * x, hidden, -inf)) with NaN rows
// (no visible key) replaced by zeros.
Tensor composite(const Tensor& x, double scale, bool causal, const Tensor& pad) {
  const int64_t Tq = x.size(2), Tk = x.size(3);
  Tensor hidden = zeros({1, 1, Tq, Tk}, TensorOptions(kBool));
  if (causal) {
    Tensor rows = arange(static_cast<double>(Tq), TensorOptions(kInt64)).view({Tq, 1});
    Tensor cols = arange(static_cast<double>(Tk), TensorOptions(kInt64)).view({1, Tk});
    hidden = logical_or(hidden, cols > rows + static_cast<double>(Tk - Tq));
  }
  if (pad.defined()) hidden = logical_or(hidden, pad.view({pad.size(0), 1, 1, Tk}));
  Tensor y = softmax(masked_fill(x * scale, hidden, -kInf), -1);
  return masked_fill(y, isnan(y), 0.0);
}

TEST(MaskedSoftmax, MatchesCompositeOnRandomInputs) {
  Tensor pad = R({3, 37}, 0, 1, 62, false) > 0.7;
  for (bool causal : {false, true})
    for (int64_t Tq : {1, 20, 37, 50}) {
      SCOPED_TRACE(fmt::format("causal {} Tq {}", causal, Tq));
      Tensor x = R({3, 2, Tq, 37}, -4, 4, 63, false);
      for (const Tensor& p : {Tensor(), pad}) {
        Tensor want = composite(x, 0.3, causal, p);
        EXPECT_TRUE(tensors_close(F::masked_softmax(x, 0.3, causal, p), want, 1e-12));
        EXPECT_TRUE(
            tensors_close(F::masked_softmax(x.to(kFloat32), 0.3, causal, p).to(kFloat64), want, 1e-5));
      }
    }
}

TEST(MaskedSoftmax, BackwardMatchesComposite) {
  Tensor pad = B({false, true, false, false, false, false, false, true, true, false}, {2, 5});
  Tensor w = R({2, 3, 4, 5}, -1, 1, 64, false);
  for (bool causal : {false, true}) {
    SCOPED_TRACE(causal ? "causal" : "not causal");
    Tensor a = R({2, 3, 4, 5}, -3, 3, 65), b = a.detach().clone().requires_grad_();
    (F::masked_softmax(a, 1.5, causal, pad) * w).sum().backward();
    (composite(b, 1.5, causal, pad) * w).sum().backward();
    EXPECT_TRUE(tensors_close(a.grad(), b.grad(), 1e-12));
  }
}

TEST(MaskedSoftmax, FullyMaskedRowHasZeroGradient) {
  // Tq = 3 > Tk = 2: query 0 sees no key, query 1 only key 0 (y = {1, 0}: constant), query 2 both
  // with y = {3/4, 1/4}, so for the loss sum(y * w) its gradient is y * (w - sum(w * y)).
  Tensor x = T({4, -1, 2, 6, ln3, 0}, {1, 1, 3, 2});
  Tensor w = T({5, -3, 2, 7, 1, -1}, {1, 1, 3, 2}, false);
  (F::masked_softmax(x, 1.0, /*causal=*/true) * w).sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), T({0, 0, 0, 0, 0.375, -0.375}, {1, 1, 3, 2}, false), 1e-12));
}

TEST(MaskedSoftmax, StridedScoresArePacked) {
  Tensor x = R({2, 5, 3, 4}, -2, 2, 67, false).transpose(1, 3);  // [2, 4, 3, 5], not contiguous
  ASSERT_FALSE(x.is_contiguous());
  Tensor pad = B({true, false, false, false, true, false, false, true, false, false}, {2, 5});
  EXPECT_TRUE(tensors_close(F::masked_softmax(x, 0.5, true, pad), composite(x, 0.5, true, pad), 1e-12));
  // a strided (expanded) padding mask too
  Tensor pad_row = B({false, false, true, false, false}, {1, 5}).expand({2, 5});
  EXPECT_TRUE(tensors_close(F::masked_softmax(x, 0.5, false, pad_row),
                            composite(x, 0.5, false, pad_row.contiguous()), 1e-12));
}

TEST(MaskedSoftmax, BFloat16RunsTheFloat32KernelAndRoundsOnce) {
  Tensor x = R({1, 2, 3, 4}, -2, 2, 68, false).to(kBFloat16).requires_grad_();
  Tensor pad = B({false, true, false, false}, {1, 4});
  Tensor y = F::masked_softmax(x, 0.5, true, pad);
  EXPECT_EQ(y.dtype(), kBFloat16);
  Tensor want = F::masked_softmax(x.detach().to(kFloat32), 0.5, true, pad).to(kBFloat16);
  EXPECT_TRUE(tensors_close(y, want, 0));
  (y * R({1, 2, 3, 4}, -1, 1, 69, false).to(kBFloat16)).sum().backward();
  EXPECT_EQ(x.grad().dtype(), kBFloat16);
  EXPECT_TRUE(tensors_close(x.grad().narrow(3, 1, 1), zeros({1, 2, 3, 1}), 0));  // padded key
}

TEST(MaskedSoftmax, EmptyShapes) {
  EXPECT_EQ(F::masked_softmax(zeros({2, 3, 0, 4}), 1.0, true).shape(), (Shape{2, 3, 0, 4}));
  EXPECT_EQ(F::masked_softmax(zeros({2, 3, 4, 0}), 1.0, true, zeros({2, 0}, TensorOptions(kBool))).shape(),
            (Shape{2, 3, 4, 0}));
}

TEST(MaskedSoftmax, Errors) {
  Tensor x = zeros({2, 3, 4, 5});
  EMBER_EXPECT_THROW_MSG(F::masked_softmax(zeros({3, 4, 5}), 1.0),
                         "masked_softmax: scores must be [B, H, Tq, Tk] (4-D), got [3,4,5]");
  EMBER_EXPECT_THROW_MSG(F::masked_softmax(zeros({2, 3, 4, 5}, TensorOptions(kInt64)), 1.0),
                         "masked_softmax: scores dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(F::masked_softmax(x, NAN), "masked_softmax: scale must be finite, got nan");
  EMBER_EXPECT_THROW_MSG(F::masked_softmax(x, 1.0, false, zeros({2, 5})),
                         "masked_softmax: key_padding_mask must be bool (true = padding), got float32");
  EMBER_EXPECT_THROW_MSG(
      F::masked_softmax(x, 1.0, false, zeros({2, 4}, TensorOptions(kBool))),
      "masked_softmax: key_padding_mask of shape [2,4] should be [B, Tk] = [2, 5] for scores "
      "[2,3,4,5]");
  EMBER_EXPECT_THROW_MSG(F::masked_softmax(Tensor(), 1.0), "masked_softmax");
}

}  // namespace
}  // namespace ember::testing
