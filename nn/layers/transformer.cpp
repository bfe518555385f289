// TransformerBlock: pre-norm residual attention + MLP.
#include "ember/nn/transformer.h"

#include "ember/nn/activation.h"
#include "ember/ops.h"

namespace ember::nn {

TransformerBlock::TransformerBlock(int64_t e, int64_t h, int64_t hidden, double p, bool is_causal)
    : causal(is_causal), dropout(p) {
  if (hidden < 0)
    fail("TransformerBlock: mlp_hidden must be non-negative (0 means 4 * embed_dim), got {}", hidden);
  if (hidden == 0) hidden = 4 * e;
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(e));
  attn = register_module("attn", std::make_shared<MultiheadAttention>(e, h, p, true, /*batch_first=*/true));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(e));
  mlp = register_module(
      "mlp", std::make_shared<Sequential>(std::make_shared<Linear>(e, hidden), std::make_shared<GELU>(),
                                          std::make_shared<Linear>(hidden, e)));
}

Tensor TransformerBlock::forward(const Tensor& x) { return forward(x, Tensor()); }

Tensor TransformerBlock::forward(const Tensor& x, const Tensor& key_padding_mask) {
  auto drop = [&](const Tensor& t) { return dropout > 0 ? ember::dropout(t, dropout, is_training()) : t; };
  Tensor h = ln1->forward(x);
  Tensor y = x + drop(attn->forward(h, h, h, {}, key_padding_mask, causal));
  return y + drop(mlp->forward(ln2->forward(y)));
}

std::string TransformerBlock::extra_repr() const {
  return fmt::format("causal={}, dropout={}", causal, dropout);
}

}  // namespace ember::nn
