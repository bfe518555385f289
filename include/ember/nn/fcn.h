#pragma once
// FCN (Li et al., "FCN: Fusing Exponential and Linear Cross Network for Click-Through Rate
// Prediction", arXiv 2407.13349; titled "DCNv3" in v1-v6) in the form of its reference code,
// salmon1802/FCN = FuxiCTR model_zoo/DCNv3 (class DCNv3 = FCN, class ECN = the ECN tower alone).
//
// Shapes: B = batch, F = fields, d = embedding_dim, H = num_heads, D = F * d (one head's cross
// width), M = D / 2. One cross layer, on the last axis of x [B, H, D] (every head shares weights):
//
//   c = W x                      W: Linear(D, M, bias = false)
//   c = BN(c)                    only with batch_norm: BatchNorm1d(H) over [B, H, M]
//   h = cat(c, c * ReLU(LN(c)))  the Self-Mask; ReLU(c) when layer_norm = false
//   x' = anchor * (h + b) + x    b: [D]; anchor = x (ECN) or the tower input x_1 (LCN)
//   x' = Dropout(x')             only when dropout > 0
//
// A tower's logit is its head Linear(D, 1) averaged over the H heads; FCN's logit is the mean of
// the two towers' logits. Training uses Tri-BCE on the three logits:
//
//   nn::FCN model(options);
//   nn::FCNOutput out = model.forward_all(fields);                           // fields: int64 [B, F]
//   Tensor loss = losses::tri_bce(out.logit, out.logit_ecn, out.logit_lcn, labels);  // labels: float [B]
//
// Parameter and buffer names are the reference code's, so state dicts match its PyTorch modules:
// "embedding_layer.embedding_layer.embedding_layer.embedding_layers.<field>.weight", "ECN.w.0.weight",
// "ECN.b.0", "ECN.layer_norm.0.weight", "ECN.batch_norm.0.running_mean", "ECN.dfc.weight", "LCN.sfc.bias",
// ... Initialisation is FuxiCTR's: embeddings N(0, 1e-4^2) with the padding row 0 zero, every Linear
// xavier_normal with zero bias, b ~ U[0, 1), LayerNorm/BatchNorm gamma = 1, beta = 0.
// Sequence (multi-token) fields are not supported: every field is one categorical index.
#include <memory>
#include <string>
#include <vector>

#include "ember/nn/activation.h"
#include "ember/nn/linear.h"
#include "ember/nn/normalization.h"

namespace ember::nn {

// One embedding table per categorical field, each of width d * H. Row 0 of every table is padding:
// zero at init and never updated (nn.Embedding's padding_idx = 0). forward maps int64 fields
// [B, F] to the tower input [B, H, D]: head k takes columns [k d, (k + 1) d) of every field's row,
// and each head's vector is the first halves (d / 2 values) of all fields, then the second halves:
// x_1 = [e_1a, ..., e_Fa, e_1b, ..., e_Fb]. d must be even.
class MultiHeadFeatureEmbedding : public Module {
 public:
  // vocab_sizes[f]: rows of field f's table, padding row included. field_names: the tables' names
  // in the state dict (empty: "0", "1", ...).
  MultiHeadFeatureEmbedding(std::vector<int64_t> vocab_sizes, int64_t embedding_dim, int64_t num_heads = 1,
                            std::vector<std::string> field_names = {});
  Tensor forward(const Tensor& fields) override;
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t num_fields, embedding_dim, num_heads;
  std::vector<std::shared_ptr<Embedding>> tables;  // one per field, width embedding_dim * num_heads
};

struct CrossNetworkOptions {
  bool layer_norm = true;   // false: the mask is ReLU(c) (the paper's "w/o LN" ablation)
  bool batch_norm = false;  // BatchNorm1d(num_heads) on c
  double dropout = 0.0;     // after every layer, training mode only
};

// One cross layer (see the top of this file). Its children are named w, b, batch_norm, layer_norm,
// dropout. Inside a tower the same pieces are also registered in the tower's per-kind lists
// (the reference code's layout), and the CrossLayer itself is not a child of the tower: the tower's
// train()/eval() reaches its BatchNorm and Dropout, not the CrossLayer's own (unused) mode flag.
class CrossLayer : public Module {
 public:
  CrossLayer(int64_t input_dim, int64_t num_heads = 1, const CrossNetworkOptions& options = {});
  // h = cat(c, c * mask), before the bias: [B, H, D].
  Tensor cross_vector(const Tensor& x);
  // anchor * (h + b) + x, then dropout. x, anchor: [B, H, D].
  Tensor forward(const Tensor& x, const Tensor& anchor);
  Tensor forward(const Tensor& x) override { return forward(x, x); }  // the ECN form
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t input_dim, num_heads;
  std::shared_ptr<Linear> w;
  Tensor b;
  std::shared_ptr<BatchNorm1d> batch_norm;  // null unless options.batch_norm
  std::shared_ptr<LayerNorm> layer_norm;    // null unless options.layer_norm
  std::shared_ptr<Dropout> dropout;         // null unless options.dropout > 0
};

// A tower: num_layers cross layers and a head. forward: x_1 [B, H, D] -> logits [B].
class CrossNetwork : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  // The tower's last cross output (the head's input), [B, H, D].
  Tensor cross(const Tensor& x);
  std::string extra_repr() const override;

  bool exponential;  // ECN (anchor = x_l) or LCN (anchor = x_1)
  int64_t input_dim, num_heads;
  std::vector<std::shared_ptr<CrossLayer>> layers;
  std::shared_ptr<Linear> head;  // registered as "dfc" (ECN) or "sfc" (LCN)

 protected:
  CrossNetwork(bool exponential, int64_t num_layers, int64_t input_dim, int64_t num_heads,
               const CrossNetworkOptions& options);
};

// ECN: x_{l+1} = x_l * (h_l + b_l) + x_l, so the interaction order doubles per layer.
class ExponentialCrossNetwork : public CrossNetwork {
 public:
  ExponentialCrossNetwork(int64_t num_layers, int64_t input_dim, int64_t num_heads = 1,
                          const CrossNetworkOptions& options = {})
      : CrossNetwork(true, num_layers, input_dim, num_heads, options) {}
};

// LCN: x_{l+1} = x_1 * (h_l + b_l) + x_l, so the order grows by one per layer.
class LinearCrossNetwork : public CrossNetwork {
 public:
  LinearCrossNetwork(int64_t num_layers, int64_t input_dim, int64_t num_heads = 1,
                     const CrossNetworkOptions& options = {})
      : CrossNetwork(false, num_layers, input_dim, num_heads, options) {}
};

// Defaults are the paper's best Criteo run except dropout (Criteo: ecn 0.1, lcn 0.2).
struct FCNOptions {
  std::vector<int64_t> vocab_sizes;      // one per field, padding row 0 included
  std::vector<std::string> field_names;  // optional state-dict names of the tables
  int64_t embedding_dim = 16;            // d, even
  int64_t num_heads = 1;
  int64_t ecn_layers = 3;  // num_deep_cross_layers
  int64_t lcn_layers = 4;  // num_shallow_cross_layers
  double ecn_dropout = 0.0;
  double lcn_dropout = 0.0;
  bool batch_norm = false;
  bool layer_norm = true;
};

struct FCNOutput {
  Tensor logit;      // z = (z_D + z_S) / 2, [B]
  Tensor logit_ecn;  // z_D, [B]
  Tensor logit_lcn;  // z_S, [B]
};

// FCN: one shared embedding, an ECN and an LCN tower (children "embedding_layer", "ECN", "LCN").
// fields: int64 [B, F], every index in [0, vocab_sizes[f]). The outputs feed
// losses::tri_bce(out.logit, out.logit_ecn, out.logit_lcn, labels) directly; predictions are
// sigmoid(out.logit).
class FCN : public Module {
 public:
  explicit FCN(FCNOptions options);
  FCNOutput forward_all(const Tensor& fields);
  Tensor forward(const Tensor& fields) override { return forward_all(fields).logit; }
  std::string extra_repr() const override;

  FCNOptions options;
  std::shared_ptr<MultiHeadFeatureEmbedding> embedding_layer;
  std::shared_ptr<ExponentialCrossNetwork> ecn;
  std::shared_ptr<LinearCrossNetwork> lcn;
};

struct ECNOptions {
  std::vector<int64_t> vocab_sizes;
  std::vector<std::string> field_names;
  int64_t embedding_dim = 16;
  int64_t num_heads = 1;
  int64_t num_layers = 3;
  double dropout = 0.0;
  bool batch_norm = false;
  bool layer_norm = true;
};

// The ECN tower alone on the embedding (the paper's ECN; children "embedding_layer", "ECN").
// forward returns the logit [B]; it is trained with plain BCE on logits.
class ECN : public Module {
 public:
  explicit ECN(ECNOptions options);
  Tensor forward(const Tensor& fields) override;
  std::string extra_repr() const override;

  ECNOptions options;
  std::shared_ptr<MultiHeadFeatureEmbedding> embedding_layer;
  std::shared_ptr<ExponentialCrossNetwork> ecn;
};

}  // namespace ember::nn
