// MultiheadAttention and TransformerBlock: hand-computed attention with every mask kind, head
// splitting, agreement with PyTorch (state dicts and outputs recorded by
// tests/fixtures/make_torch_models.py), gradchecks, and errors.
#include <ember/checkpoint.h>
#include <ember/nn.h>

#include <cmath>

#include "harness.h"
#include "nn_test_util.h"

namespace ember::testing {
namespace {

// An attention layer whose projections are all the identity, so the output is plain
// softmax(q k^T / sqrt(d)) v per head.
std::shared_ptr<nn::MultiheadAttention> identity_attention(int64_t e, int64_t h, bool batch_first = true) {
  auto mha = std::make_shared<nn::MultiheadAttention>(e, h, 0.0, true, batch_first);
  NoGradGuard g;
  mha->in_proj_weight.copy_(cat({eye(e), eye(e), eye(e)}, 0));
  mha->in_proj_bias.zero_();
  mha->out_proj->weight.copy_(eye(e));
  mha->out_proj->bias.zero_();
  mha->to(DType::float64);
  return mha;
}

TEST(Attention, HandComputedWithMasks) {
  auto mha = identity_attention(2, 1);
  Tensor q = tensor<double>({1, 0, 0, 1}, {2, 2});  // unbatched [L = 2, E = 2]
  Tensor v = tensor<double>({1, 2, 3, 4}, {2, 2});
  // scores = q q^T / sqrt(2) = I / sqrt(2): each query prefers its own key with weight p.
  const double a = 1 / std::sqrt(2.0), p = std::exp(a) / (std::exp(a) + 1), r = 1 - p;
  auto [out, w] = mha->forward_with_weights(q, q, v);
  EXPECT_TRUE(tensors_close(w, tensor<double>({p, r, r, p}, {2, 2}), 1e-12));
  EXPECT_TRUE(tensors_close(out, tensor<double>({p + 3 * r, 2 * p + 4 * r, r + 3 * p, 2 * r + 4 * p}, {2, 2}),
                            1e-12));
  // Causal: query 0 sees only key 0.
  auto [cout, cw] = mha->forward_with_weights(q, q, v, {}, {}, /*is_causal=*/true);
  EXPECT_TRUE(tensors_close(cw, tensor<double>({1, 0, r, p}, {2, 2}), 1e-12));
  EXPECT_TRUE(tensors_close(cout, tensor<double>({1, 2, r + 3 * p, 2 * r + 4 * p}, {2, 2}), 1e-12));
  // The same causal mask given explicitly as a bool [L, S] mask.
  EXPECT_TRUE(tensors_close(mha->forward(q, q, v, nn::causal_mask(2, 2)), cout, 1e-12));
  // Key padding: key 1 is padding, so both queries read value 0.
  Tensor pad = tensor<bool>({false, true});
  EXPECT_TRUE(tensors_close(mha->forward(q, q, v, {}, pad), tensor<double>({1, 2, 1, 2}, {2, 2}), 1e-12));
  // A float mask is added to the scores: -a on the diagonal evens the weights out.
  Tensor additive = tensor<double>({-a, 0, 0, -a}, {2, 2});
  EXPECT_TRUE(tensors_close(mha->forward(q, q, v, additive), tensor<double>({2, 3, 2, 3}, {2, 2}), 1e-12));
  // Single-argument forward is unmasked self-attention.
  EXPECT_TRUE(tensors_close(mha->forward(v), mha->forward(v, v, v), 0));
}

TEST(Attention, HeadsSplitTheEmbedding) {
  // E = 4 with 2 heads: head 0 attends with dims 0-1, head 1 with dims 2-3 (scale 1/sqrt(2)).
  auto mha = identity_attention(4, 2);
  Tensor x = R({1, 3, 4}, -1, 1, 51, false);
  Tensor out = mha->forward(x);
  std::vector<Tensor> heads;
  for (int h = 0; h < 2; ++h) {
    Tensor xh = x.narrow(2, 2 * h, 2);
    Tensor attn = softmax(matmul(xh, xh.transpose(1, 2)) / std::sqrt(2.0), -1);
    heads.push_back(matmul(attn, xh));
  }
  EXPECT_TRUE(tensors_close(out, cat(heads, 2), 1e-12));
  // A [B * num_heads, L, S] mask masks per head: block key 2 for head 1 only.
  std::vector<bool> m(2 * 3 * 3, false);
  for (int i = 0; i < 3; ++i) m[9 + i * 3 + 2] = true;
  Tensor per_head = tensor<bool>(m, {2, 3, 3});
  Tensor x1 = x.narrow(2, 2, 2), keys = x1.narrow(1, 0, 2);
  Tensor h1 = matmul(softmax(matmul(x1, keys.transpose(1, 2)) / std::sqrt(2.0), -1), keys);
  EXPECT_TRUE(tensors_close(mha->forward(x, x, x, per_head), cat({heads[0], h1}, 2), 1e-12));
}

TEST(Attention, FullyMaskedQueryGetsZeroWeights) {
  // Every key of batch 1 is padding: its weights are zeros (PyTorch gives NaN), its output is
  // out_proj's bias, and no gradient flows back to its inputs. Batch 0 only loses key 1.
  auto mha = identity_attention(2, 1);
  {
    NoGradGuard g;
    mha->out_proj->bias.copy_(tensor<double>({0.5, -2}));
  }
  Tensor x = R({2, 3, 2}, -1, 1, 57);
  Tensor pad = tensor<bool>({false, true, false, true, true, true}, {2, 3});
  auto [out, w] = mha->forward_with_weights(x, x, x, {}, pad);
  EXPECT_TRUE(tensors_close(w.narrow(0, 1, 1), zeros({1, 3, 3}, TensorOptions(kFloat64)), 0));
  EXPECT_TRUE(tensors_close(w.narrow(0, 0, 1).narrow(2, 1, 1), zeros({1, 3, 1}, TensorOptions(kFloat64)), 0));
  EXPECT_TRUE(tensors_close(w.sum({2}).narrow(0, 0, 1), ones({1, 3}, TensorOptions(kFloat64)), 1e-12));
  EXPECT_TRUE(tensors_close(out.narrow(0, 1, 1), tensor<double>({0.5, -2, 0.5, -2, 0.5, -2}, {1, 3, 2}), 0));
  out.sum().backward();
  EXPECT_TRUE(tensors_close(x.grad().narrow(0, 1, 1), zeros({1, 3, 2}, TensorOptions(kFloat64)), 0));
}

TEST(Attention, CausalMaskRules) {
  auto mha = identity_attention(4, 2);
  // L == S takes the fused causal path; it must agree with the explicit mask (generic path).
  Tensor x = R({2, 5, 4}, -1, 1, 58, false);
  EXPECT_TRUE(tensors_close(mha->forward(x, x, x, {}, {}, /*is_causal=*/true),
                            mha->forward(x, x, x, nn::causal_mask(5, 5)), 1e-12));
  // L != S keeps causal_mask's rule (query i sees keys 0..i, as PyTorch's is_causal), not the
  // fused op's last-query-sees-last-key rule: query 0 sees key 0 only, query 1 keys 0 and 1.
  Tensor q = R({2, 2, 4}, -1, 1, 59, false), kv = R({2, 3, 4}, -1, 1, 60, false);
  auto [out, w] = mha->forward_with_weights(q, kv, kv, {}, {}, /*is_causal=*/true);
  EXPECT_TRUE(tensors_close(w.narrow(1, 0, 1), tensor<double>({1, 0, 0, 1, 0, 0}, {2, 1, 3}), 1e-12));
  EXPECT_TRUE(tensors_close(w.narrow(1, 1, 1).narrow(2, 2, 1), zeros({2, 1, 1}, TensorOptions(kFloat64)), 0));
  EXPECT_TRUE(tensors_close(out, mha->forward(q, kv, kv, nn::causal_mask(2, 3)), 1e-12));
}

TEST(Attention, MatchesPyTorchSeqFirst) {
  StateDict f = load_safetensors(fixture("torch_transformer.safetensors"));
  nn::MultiheadAttention mha(8, 4);  // batch_first = false, PyTorch's default
  mha.to(DType::float64);
  mha.load_state_dict(f.extract("mha.").tensors);
  auto [out, w] =
      mha.forward_with_weights(f.tensors.at("mha_query"), f.tensors.at("mha_kv"), f.tensors.at("mha_kv"));
  EXPECT_TRUE(tensors_close(out, f.tensors.at("mha_output"), 1e-10));
  EXPECT_TRUE(tensors_close(w, f.tensors.at("mha_weights"), 1e-10));
}

TEST(TransformerBlock, MatchesPyTorch) {
  StateDict f = load_safetensors(fixture("torch_transformer.safetensors"));
  nn::TransformerBlock plain(8, 2, 16), causal(8, 2, 16, 0.0, /*causal=*/true);
  for (nn::TransformerBlock* b : {&plain, &causal}) {
    b->to(DType::float64);
    b->load_state_dict(f.extract("model.").tensors);  // same names: ln1, attn, ln2, mlp.0, mlp.2
    b->eval();
  }
  const Tensor& x = f.tensors.at("input");
  EXPECT_TRUE(tensors_close(plain.forward(x), f.tensors.at("output_plain"), 1e-10));
  EXPECT_TRUE(tensors_close(causal.forward(x), f.tensors.at("output_causal"), 1e-10));
  EXPECT_TRUE(tensors_close(plain.forward(x, f.tensors.at("padding")), f.tensors.at("output_padded"), 1e-10));
}

TEST(TransformerBlock, StructureAndNames) {
  nn::TransformerBlock block(8, 2);
  std::vector<std::string> names;
  for (const auto& [n, t] : block.named_parameters()) names.push_back(n);
  EXPECT_EQ(names,
            (std::vector<std::string>{"ln1.weight", "ln1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
                                      "attn.out_proj.weight", "attn.out_proj.bias", "ln2.weight", "ln2.bias",
                                      "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}));
  EXPECT_EQ(block.mlp->at<nn::Linear>(0)->out_features, 32);  // 4 * embed_dim by default
  EXPECT_TRUE(block.attn->batch_first);
  EXPECT_EQ(block.forward(zeros({3, 5, 8})).shape(), (Shape{3, 5, 8}));
  EXPECT_EQ(block.forward(zeros({5, 8})).shape(), (Shape{5, 8}));  // unbatched
}

TEST(Attention, Gradcheck) {
  manual_seed(52);
  auto mha = std::make_shared<nn::MultiheadAttention>(4, 2, 0.0, true, true);
  Tensor pad = tensor<bool>({false, false, true, false, false, false}, {2, 3});
  EXPECT_TRUE(module_gradcheck(
      *mha, {&mha->in_proj_weight, &mha->in_proj_bias, &mha->out_proj->weight, &mha->out_proj->bias},
      R({2, 3, 4}, -1, 1, 53),
      [&](const Tensor& x) { return mha->forward(x, x, x, {}, pad, /*is_causal=*/true); }));
}

// Self-attention (query, key and value the same tensor) projects with one GEMM over the whole
// in_proj_weight; with three distinct tensors it projects each alone. Same values, same gradients.
TEST(Attention, SelfAttentionFastPathMatchesThreeProjections) {
  manual_seed(57);
  nn::MultiheadAttention mha(8, 2, 0.0, true, true);
  mha.to(DType::float64);
  Tensor x = R({2, 5, 8}, -1, 1, 58);
  Tensor fused = mha.forward(x), apart = mha.forward(x, x.clone(), x.clone());
  EXPECT_TRUE(tensors_close(fused, apart, 1e-13));
  auto grads = [&](const Tensor& out) {
    mha.zero_grad();
    out.backward(R({2, 5, 8}, -1, 1, 59, false));
    return std::vector<Tensor>{mha.in_proj_weight.grad().clone(), mha.in_proj_bias.grad().clone()};
  };
  std::vector<Tensor> a = grads(fused), b = grads(apart);
  EXPECT_TRUE(tensors_close(a[0], b[0], 1e-13));
  EXPECT_TRUE(tensors_close(a[1], b[1], 1e-13));
}

TEST(TransformerBlock, Gradcheck) {
  manual_seed(54);
  auto block = std::make_shared<nn::TransformerBlock>(4, 2, 6, 0.0, true);
  std::vector<Tensor*> params{&block->ln1->weight,
                              &block->ln1->bias,
                              &block->attn->in_proj_weight,
                              &block->attn->in_proj_bias,
                              &block->attn->out_proj->weight,
                              &block->attn->out_proj->bias,
                              &block->ln2->weight,
                              &block->ln2->bias};
  for (int i : {0, 2}) {
    auto lin = block->mlp->at<nn::Linear>(i);
    params.push_back(&lin->weight);
    params.push_back(&lin->bias);
  }
  // Zero-initialised biases would make some checks trivial; give everything random values.
  for (Tensor* p : params) nn::init::uniform_(*p, -0.8, 0.8);
  EXPECT_TRUE(module_gradcheck(*block, params, R({1, 3, 4}, -1, 1, 55),
                               [&](const Tensor& x) { return block->forward(x); }));
}

TEST(Attention, DropoutOnlyWhileTraining) {
  manual_seed(56);
  nn::MultiheadAttention mha(4, 2, 0.5, true, true);
  Tensor x = randn({2, 5, 4});
  mha.eval();
  Tensor a = mha.forward(x), b = mha.forward(x);
  EXPECT_TRUE(equal(a, b));
  mha.train();
  EXPECT_FALSE(allclose(mha.forward(x), a));
}

TEST(Attention, Errors) {
  EMBER_EXPECT_THROW_MSG(nn::MultiheadAttention(6, 4), "embed_dim (6) must be divisible by num_heads (4)");
  EMBER_EXPECT_THROW_MSG(nn::MultiheadAttention(4, 2, 1.5), "dropout must be in [0, 1]");
  nn::MultiheadAttention mha(4, 2, 0.0, true, true);
  Tensor x = zeros({2, 3, 4});
  EMBER_EXPECT_THROW_MSG(
      mha.forward(x, x, x, zeros({3, 2}, DType::boolean)),
      "mask of shape [3,2] should be [L, S] = [3, 3] or [B * num_heads, L, S] = [4, 3, 3]");
  EMBER_EXPECT_THROW_MSG(mha.forward(x, x, x, {}, zeros({2, 4}, DType::boolean)),
                         "key_padding_mask of shape [2,4] should be [2,3]");
  EMBER_EXPECT_THROW_MSG(mha.forward(x, x, x, zeros({3, 3}, DType::int64)), "mask must be bool");
  EMBER_EXPECT_THROW_MSG(mha.forward(zeros({2, 3, 5})), "must have embed_dim = 4 features");
  EMBER_EXPECT_THROW_MSG(mha.forward(x, zeros({3, 3, 4}), zeros({3, 3, 4})), "disagree on batch size");
  EMBER_EXPECT_THROW_MSG(mha.forward(x, zeros({3, 4}), zeros({3, 4})),
                         "must all be 3-D (batched) or all 2-D");
}

// ---- scaled_dot_product_attention (PyTorch 2.x's functional) ----

namespace sdpa_tests {
namespace F = nn::functional;
const double kInf = std::numeric_limits<double>::infinity();

// softmax(scale q k^T + mask) v with plain ops, the reference for the fused path.
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& float_mask, double scale) {
  Tensor scores = matmul(q, k.transpose(-2, -1)) * scale;
  if (float_mask.defined()) scores = scores + float_mask;
  return matmul(softmax(scores, -1), v);
}

std::vector<OpCase> sdpa_cases() {
  auto bool_mask =
      tensor<bool>({true, false, true, true, true, false, false, true, true, true, false, true}, {3, 4});
  return with_gradgradcheck({
      {"sdpa_plain",
       [](const std::vector<Tensor>& in) { return F::scaled_dot_product_attention(in[0], in[1], in[2]); },
       {R({2, 3, 5}, -1, 1, 50), R({2, 4, 5}, -1, 1, 51), R({2, 4, 3}, -1, 1, 52)},
       Tensor()},
      {"sdpa_causal_square",
       [](const std::vector<Tensor>& in) {
         return F::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0.0, true);
       },
       {R({2, 2, 4, 3}, -1, 1, 53), R({2, 2, 4, 3}, -1, 1, 54), R({2, 2, 4, 2}, -1, 1, 55)},
       Tensor()},
      {"sdpa_causal_wide_scaled",
       [](const std::vector<Tensor>& in) {
         return F::scaled_dot_product_attention(in[0], in[1], in[2], {}, 0.0, true, 0.7);
       },
       {R({3, 2}, -1, 1, 56), R({5, 2}, -1, 1, 57), R({5, 3}, -1, 1, 58)},
       Tensor()},
      {"sdpa_bool_mask",
       [bool_mask](const std::vector<Tensor>& in) {
         return F::scaled_dot_product_attention(in[0], in[1], in[2], on_device_of(bool_mask, in[0]));
       },
       {R({2, 3, 2}, -1, 1, 59), R({2, 4, 2}, -1, 1, 60), R({2, 4, 2}, -1, 1, 61)},
       Tensor()},
      {"sdpa_float_mask",
       [](const std::vector<Tensor>& in) {
         return F::scaled_dot_product_attention(in[0], in[1], in[2], in[3]);
       },
       {R({2, 3, 2}, -1, 1, 62), R({2, 4, 2}, -1, 1, 63), R({2, 4, 2}, -1, 1, 64), R({3, 4}, -1, 1, 65)},
       Tensor()},
  });
}
}  // namespace sdpa_tests

EMBER_OP_SUITE(ScaledDotProductAttention, sdpa_tests::sdpa_cases);

TEST(ScaledDotProductAttention, HandComputedAndAgainstTheComposite) {
  using namespace sdpa_tests;
  // L = 1, S = 2, E = 1: scores [0, 2], weights [1, e^2] / (1 + e^2), out (1 + 3 e^2) / (1 + e^2)
  const double e2 = std::exp(2.0);
  Tensor out = F::scaled_dot_product_attention(tensor<double>({1}, {1, 1}), tensor<double>({0, 2}, {2, 1}),
                                               tensor<double>({1, 3}, {2, 1}));
  EXPECT_NEAR(out.item<double>(), (1 + 3 * e2) / (1 + e2), 1e-14);

  Tensor q = R({2, 3, 6, 4}, -2, 2, 70, false), k = R({2, 3, 5, 4}, -2, 2, 71, false),
         v = R({2, 3, 5, 3}, -2, 2, 72, false);
  Tensor none;
  EXPECT_TRUE(tensors_close(F::scaled_dot_product_attention(q, k, v), reference(q, k, v, none, 0.5), 1e-12));
  // is_causal is top-left aligned: query i sees keys 0..i, also when L != S
  Tensor allowed = tril(ones({6, 5}, DType::boolean));
  Tensor float_mask = where(allowed, zeros({6, 5}, DType::float64), full({6, 5}, -kInf, DType::float64));
  EXPECT_TRUE(tensors_close(F::scaled_dot_product_attention(q, k, v, {}, 0.0, true),
                            reference(q, k, v, float_mask, 0.5), 1e-12));
  EXPECT_TRUE(tensors_close(F::scaled_dot_product_attention(q, k, v, allowed),
                            reference(q, k, v, float_mask, 0.5), 1e-12));
  Tensor qs = R({3, 5, 4}, -2, 2, 73, false);
  Tensor square = tril(ones({5, 5}, DType::boolean));
  Tensor k0 = k.select(0, 0), v0 = v.select(0, 0);
  EXPECT_TRUE(tensors_close(F::scaled_dot_product_attention(qs, k0, v0, {}, 0.0, true),
                            F::scaled_dot_product_attention(qs, k0, v0, square), 1e-12));
  // a query that may see no key gets zeros
  Tensor blind = ones({6, 5}, DType::boolean);
  blind.select(0, 2).fill_(0.0);
  Tensor y = F::scaled_dot_product_attention(q, k, v, blind);
  EXPECT_EQ(y.select(-2, 2).abs().max().item<double>(), 0.0);
  // dropout: the reference's weights dropped with the same random stream
  manual_seed(5);
  Tensor dropped = F::scaled_dot_product_attention(q, k, v, {}, 0.4);
  manual_seed(5);
  Tensor expect = matmul(dropout(softmax(matmul(q, k.transpose(-2, -1)) * 0.5, -1), 0.4, true), v);
  EXPECT_TRUE(tensors_close(dropped, expect, 1e-12));
}

TEST(ScaledDotProductAttention, Errors) {
  namespace F = nn::functional;
  Tensor q = zeros({2, 3, 4}), k = zeros({2, 5, 4}), v = zeros({2, 5, 3});
  EMBER_EXPECT_THROW_MSG(
      F::scaled_dot_product_attention(q, zeros({2, 5, 6}), v),
      "scaled_dot_product_attention: query [2,3,4] and key [2,5,6] differ in their last dim (4 vs 6)");
  EMBER_EXPECT_THROW_MSG(F::scaled_dot_product_attention(q, k, zeros({2, 4, 3})),
                         "key [2,5,4] and value [2,4,3] differ in length (5 vs 4)");
  EMBER_EXPECT_THROW_MSG(F::scaled_dot_product_attention(q, k, v, ones({3, 5}, DType::boolean), 0.0, true),
                         "give attn_mask or is_causal, not both");
  EMBER_EXPECT_THROW_MSG(F::scaled_dot_product_attention(q, k, v, {}, 1.0),
                         "dropout_p must be in [0, 1), got 1");
  EMBER_EXPECT_THROW_MSG(F::scaled_dot_product_attention(q, k, v, ones({3, 5}, DType::int64)),
                         "attn_mask must be bool (true = may attend) or floating");
  EMBER_EXPECT_THROW_MSG(F::scaled_dot_product_attention(zeros({4}), k, v), "must be at least 2-D");
}

}  // namespace
}  // namespace ember::testing
