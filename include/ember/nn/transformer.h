#pragma once
// TransformerBlock: one pre-norm transformer layer (GPT-2 / ViT style), batch first.
#include "ember/nn/attention.h"
#include "ember/nn/container.h"
#include "ember/nn/normalization.h"

namespace ember::nn {

//   x = x + dropout(attn(ln1(x)))
//   x = x + dropout(mlp(ln2(x))),   mlp = Linear(E, H) -> GELU -> Linear(H, E)
// with H = mlp_hidden (4 * E when 0). Input [B, T, E] (or [T, E]). Children are named ln1, attn,
// ln2, mlp ("mlp.0.weight", ...). causal = true makes every forward use a causal mask.
class TransformerBlock : public Module {
 public:
  TransformerBlock(int64_t embed_dim, int64_t num_heads, int64_t mlp_hidden = 0, double dropout = 0.0,
                   bool causal = false);
  Tensor forward(const Tensor& x) override;
  // key_padding_mask: [B, T] bool, true marks padding positions.
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask);
  std::string extra_repr() const override;

  bool causal;
  double dropout;
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<MultiheadAttention> attn;
  std::shared_ptr<Sequential> mlp;
};

}  // namespace ember::nn
