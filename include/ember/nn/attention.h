#pragma once
// MultiheadAttention (PyTorch's parameter names and init) and the masks it takes.
#include <utility>

#include "ember/nn/linear.h"

namespace ember::nn {

// out = softmax(Q K^T / sqrt(head_dim) + mask) V per head, heads concatenated, then out_proj.
// Q, K, V are query/key/value projected by the rows of in_proj_weight [3E, E] (q, k, v blocks)
// plus in_proj_bias [3E]; out_proj is a Linear(E, E). Init as PyTorch: xavier_uniform_ on
// in_proj_weight, zeros for both biases, Linear's default for out_proj.weight.
//
// Shapes (E = embed_dim, L = target length, S = source length, B = batch):
//   batch_first = false (PyTorch's default): query [L, B, E], key/value [S, B, E]
//   batch_first = true:                      query [B, L, E], key/value [B, S, E]
//   unbatched:                               query [L, E], key/value [S, E]
// Masks (true = "may not attend"; a floating mask is added to the scores instead):
//   mask              [L, S] or [B * num_heads, L, S] (PyTorch's attn_mask)
//   key_padding_mask  [B, S] (or [S] unbatched): true marks padding keys to ignore
//   is_causal         position i attends to keys 0..i only (adds causal_mask(L, S))
// The weights come from nn::functional::masked_softmax: a query row with every key masked gets
// all-zero weights (its output is out_proj's bias) and a zero gradient, where PyTorch gives NaN.
// Dropout (on the attention weights) is active in training mode only.
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     bool batch_first = false);
  // Self-attention without masks: forward(x, x, x).
  Tensor forward(const Tensor& x) override;
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& mask = {},
                 const Tensor& key_padding_mask = {}, bool is_causal = false);
  // Also returns the attention weights averaged over heads: [B, L, S] (or [L, S] unbatched).
  std::pair<Tensor, Tensor> forward_with_weights(const Tensor& query, const Tensor& key, const Tensor& value,
                                                 const Tensor& mask = {}, const Tensor& key_padding_mask = {},
                                                 bool is_causal = false);
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t embed_dim, num_heads, head_dim;
  double dropout;
  bool batch_first;
  Tensor in_proj_weight, in_proj_bias;  // in_proj_bias is undefined when bias = false
  std::shared_ptr<Linear> out_proj;

 private:
  std::pair<Tensor, Tensor> attend(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& mask, const Tensor& key_padding_mask, bool is_causal,
                                   bool need_weights);
};

// [L, S] bool, true above the diagonal: query i may not see keys j > i.
Tensor causal_mask(int64_t query_len, int64_t key_len, Device device = Device::cpu());

}  // namespace ember::nn
