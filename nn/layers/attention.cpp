// MultiheadAttention: the in-projection, scaled dot-product attention per head with masks, and
// the out-projection, composed from ember ops: batched matmul (strided-batched GEMMs over the
// heads, cuBLAS on the GPU), the fused masked_softmax (nn/functional.h), dropout. Also the
// functional scaled_dot_product_attention, the same core with PyTorch 2.x's SDPA mask convention.
#include "ember/nn/attention.h"

#include <cmath>
#include <limits>

#include "ember/nn/functional.h"
#include "ember/nn/init.h"
#include "ember/ops.h"

namespace ember::nn {

Tensor causal_mask(int64_t query_len, int64_t key_len, Device device) {
  if (query_len < 0 || key_len < 0)
    fail("causal_mask: lengths must be non-negative, got {} x {}", query_len, key_len);
  Tensor rows =
      arange(static_cast<double>(query_len), TensorOptions(DType::int64).device(device)).unsqueeze(1);
  Tensor cols = arange(static_cast<double>(key_len), TensorOptions(DType::int64).device(device)).unsqueeze(0);
  return cols > rows;
}

namespace functional {

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  if (!query.defined() || !key.defined() || !value.defined())
    fail("{}: query, key and value must be defined", op);
  if (query.dim() < 2 || key.dim() < 2 || value.dim() < 2)
    fail("{}: query {}, key {} and value {} must be at least 2-D ([..., L, E], [..., S, E], [..., S, Ev])",
         op, shape_str(query.shape()), shape_str(key.shape()), shape_str(value.shape()));
  const int64_t L = query.size(-2), S = key.size(-2), E = query.size(-1);
  if (key.size(-1) != E)
    fail("{}: query {} and key {} differ in their last dim ({} vs {})", op, shape_str(query.shape()),
         shape_str(key.shape()), E, key.size(-1));
  if (value.size(-2) != S)
    fail("{}: key {} and value {} differ in length ({} vs {})", op, shape_str(key.shape()),
         shape_str(value.shape()), S, value.size(-2));
  if (attn_mask.defined() && is_causal) fail("{}: give attn_mask or is_causal, not both", op);
  if (!(dropout_p >= 0 && dropout_p < 1)) fail("{}: dropout_p must be in [0, 1), got {}", op, dropout_p);
  const double s = scale.value_or(1.0 / std::sqrt(static_cast<double>(E)));

  Tensor scores = matmul(query, key.transpose(-2, -1));  // [..., L, S]
  const Shape scores_shape = scores.shape();
  // masked_softmax takes [B, H, L, S]: the leading dims are folded into B.
  auto weights_of = [&](const Tensor& t, double sc, bool causal) {
    return masked_softmax(t.reshape({-1, 1, L, S}), sc, causal).view(scores_shape);
  };
  Tensor weights;
  if (!attn_mask.defined() && (!is_causal || L == S)) {
    weights = weights_of(scores, s, is_causal);  // scale and causal rule fused into the softmax
  } else {
    scores = scores * s;
    if (is_causal) {
      scores = masked_fill(scores, nn::causal_mask(L, S, scores.device()),
                           -std::numeric_limits<double>::infinity());
    } else if (attn_mask.dtype() == DType::boolean) {
      scores = masked_fill(scores, logical_not(attn_mask), -std::numeric_limits<double>::infinity());
    } else if (attn_mask.is_floating_point()) {
      scores = scores + attn_mask.to(scores.dtype());
    } else {
      fail("{}: attn_mask must be bool (true = may attend) or floating (added to the scores), got {}", op,
           attn_mask.dtype());
    }
    weights = weights_of(scores, 1.0, false);
  }
  if (dropout_p > 0) weights = ember::dropout(weights, dropout_p, true);
  return matmul(weights, value);
}

}  // namespace functional

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h, double p, bool bias, bool bf)
    : embed_dim(e), num_heads(h), head_dim(h > 0 ? e / h : 0), dropout(p), batch_first(bf) {
  if (e <= 0 || h <= 0) fail("MultiheadAttention: embed_dim ({}) and num_heads ({}) must be positive", e, h);
  if (e % h != 0) fail("MultiheadAttention: embed_dim ({}) must be divisible by num_heads ({})", e, h);
  if (!(p >= 0 && p <= 1)) fail("MultiheadAttention: dropout must be in [0, 1], got {}", p);
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * e, e}));
  if (bias) in_proj_bias = register_parameter("in_proj_bias", empty({3 * e}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, bias));
  reset_parameters();
}

void MultiheadAttention::reset_parameters() {
  init::xavier_uniform_(in_proj_weight);
  if (in_proj_bias.defined()) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
}

Tensor MultiheadAttention::forward(const Tensor& x) { return attend(x, x, x, {}, {}, false, false).first; }

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& mask, const Tensor& key_padding_mask, bool is_causal) {
  return attend(query, key, value, mask, key_padding_mask, is_causal, false).first;
}

std::pair<Tensor, Tensor> MultiheadAttention::forward_with_weights(const Tensor& query, const Tensor& key,
                                                                   const Tensor& value, const Tensor& mask,
                                                                   const Tensor& key_padding_mask,
                                                                   bool is_causal) {
  return attend(query, key, value, mask, key_padding_mask, is_causal, true);
}

std::pair<Tensor, Tensor> MultiheadAttention::attend(const Tensor& query, const Tensor& key,
                                                     const Tensor& value, const Tensor& mask,
                                                     const Tensor& key_padding_mask, bool is_causal,
                                                     bool need_weights) {
  const char* op = "MultiheadAttention";
  if (!query.defined() || !key.defined() || !value.defined())
    fail("{}: query, key and value must be defined", op);
  const int64_t nd = query.dim();
  if ((nd != 2 && nd != 3) || key.dim() != nd || value.dim() != nd)
    fail("{}: query, key and value must all be 3-D (batched) or all 2-D (unbatched), got {}, {}, {}", op,
         shape_str(query.shape()), shape_str(key.shape()), shape_str(value.shape()));
  const bool batched = nd == 3;
  // Bring everything to [B, len, E].
  auto to_ble = [&](const Tensor& t) {
    return !batched ? t.unsqueeze(0) : batch_first ? t : t.transpose(0, 1);
  };
  Tensor q = to_ble(query), k = to_ble(key), v = to_ble(value);
  const int64_t B = q.size(0), L = q.size(1), S = k.size(1), E = embed_dim, H = num_heads, D = head_dim;
  if (q.size(2) != E || k.size(2) != E || v.size(2) != E)
    fail("{}: query {}, key {} and value {} must have embed_dim = {} features", op, shape_str(query.shape()),
         shape_str(key.shape()), shape_str(value.shape()), E);
  if (k.size(0) != B || v.size(0) != B || v.size(1) != S)
    fail("{}: query {}, key {} and value {} disagree on batch size or key/value length", op,
         shape_str(query.shape()), shape_str(key.shape()), shape_str(value.shape()));

  // Project, then split E into H heads of D: [B, len, E] -> [B, H, len, D].
  auto heads = [&](const Tensor& t, int64_t len) { return t.view({B, len, H, D}).permute({0, 2, 1, 3}); };
  auto project = [&](const Tensor& t, int64_t block, int64_t len) {
    Tensor w = in_proj_weight.narrow(0, block * E, E);
    Tensor b = in_proj_bias.defined() ? in_proj_bias.narrow(0, block * E, E) : Tensor();
    return heads(linear(t, w, b), len);
  };
  Tensor qh, kh, vh;
  if (query.impl() == key.impl() && key.impl() == value.impl()) {
    // Self-attention: the three projections as one GEMM with the whole in_proj_weight ([3E, E],
    // q, k, v blocks in its rows), [B, L, 3E], cut into q, k, v views (one GEMM each way in the
    // backward too, instead of three, and no sum of three input gradients).
    std::vector<Tensor> qkv = linear(q, in_proj_weight, in_proj_bias).chunk(3, -1);
    qh = heads(qkv[0], L), kh = heads(qkv[1], S), vh = heads(qkv[2], S);
  } else {
    qh = project(q, 0, L), kh = project(k, 1, S), vh = project(v, 2, S);
  }
  // Scores [B, H, L, S], then the weights. The common masks (causal self-attention, a bool key
  // padding mask) go straight to the fused masked_softmax, which also applies the scale. Other
  // masks are folded into the scaled scores first (PyTorch adds a float mask after scaling):
  // float ones are added, bool ones (true = may not attend) collected into `blocked`.
  Tensor scores = matmul(qh, kh.transpose(-2, -1));
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  bool scaled = false;
  Tensor blocked;
  auto add_mask = [&](const Tensor& m, const char* what) {
    if (!m.is_floating_point() && m.dtype() != DType::boolean)
      fail("{}: {} must be bool (true = masked) or floating (added to the scores), got {}", op, what,
           m.dtype());
    if (!scaled) scores = scores * scale;
    scaled = true;
    if (m.dtype() == DType::boolean)
      blocked = blocked.defined() ? logical_or(blocked, m) : m;
    else
      scores = scores + m.to(scores.dtype());
  };
  if (mask.defined()) {
    if (mask.dim() == 2 && mask.size(0) == L && mask.size(1) == S) {
      add_mask(mask, "mask");
    } else if (mask.dim() == 3 && mask.size(0) == B * H && mask.size(1) == L && mask.size(2) == S) {
      add_mask(mask.reshape({B, H, L, S}), "mask");
    } else {
      fail("{}: mask of shape {} should be [L, S] = [{}, {}] or [B * num_heads, L, S] = [{}, {}, {}]", op,
           shape_str(mask.shape()), L, S, B * H, L, S);
    }
  }
  Tensor padding;  // bool [B, S] for masked_softmax
  if (key_padding_mask.defined()) {
    Shape want = batched ? Shape{B, S} : Shape{S};
    if (key_padding_mask.shape() != want)
      fail("{}: key_padding_mask of shape {} should be {}", op, shape_str(key_padding_mask.shape()),
           shape_str(want));
    if (key_padding_mask.dtype() == DType::boolean)
      padding = key_padding_mask.reshape({B, S});
    else
      add_mask(key_padding_mask.reshape({B, 1, 1, S}), "key_padding_mask");
  }
  // masked_softmax's causal rule lines the last query up with the last key; causal_mask (and
  // PyTorch's is_causal) lines up the first ones. They agree when L == S.
  const bool fused_causal = is_causal && L == S;
  if (is_causal && !fused_causal) add_mask(causal_mask(L, S, scores.device()), "causal mask");
  if (blocked.defined()) scores = masked_fill(scores, blocked, -std::numeric_limits<double>::infinity());

  Tensor attn = functional::masked_softmax(scores, scaled ? 1.0 : scale, fused_causal, padding);
  if (dropout > 0 && is_training()) attn = ember::dropout(attn, dropout, true);
  Tensor out = matmul(attn, vh).permute({0, 2, 1, 3}).reshape({B, L, E});  // heads side by side again
  out = out_proj->forward(out);
  out = !batched ? out.squeeze(0) : batch_first ? out : out.transpose(0, 1);

  Tensor weights;
  if (need_weights) {
    weights = attn.mean({1});  // average over heads: [B, L, S]
    if (!batched) weights = weights.squeeze(0);
  }
  return {out, weights};
}

std::string MultiheadAttention::extra_repr() const {
  return fmt::format("embed_dim={}, num_heads={}, dropout={}, bias={}, batch_first={}", embed_dim, num_heads,
                     dropout, in_proj_bias.defined(), batch_first);
}

}  // namespace ember::nn
