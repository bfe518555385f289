#pragma once
// Margin and embedding losses, with PyTorch's semantics (torch.nn.functional's formulas, defaults
// and reductions): ranking pairs, hinge and soft-margin classification, multi-class and
// multi-label margins, and the metric-learning losses over embedding pairs and triplets.
#include "ember/losses/reduction.h"
#include "ember/tensor.h"

namespace ember::losses {

struct MarginRankingOptions {
  double margin = 0.0;
  Reduction reduction = Reduction::mean;
};
// max(0, -y (x1 - x2) + margin), y = 1 (x1 should rank higher) or -1; x1, x2 and y broadcast.
Tensor margin_ranking_loss(const Tensor& x1, const Tensor& x2, const Tensor& target,
                           const MarginRankingOptions& = {});

struct HingeEmbeddingOptions {
  double margin = 1.0;
  Reduction reduction = Reduction::mean;
};
// x where y = 1, max(0, margin - x) where y = -1 (x is typically a distance); as in PyTorch, any
// other label gets both terms. x and y broadcast; y receives no gradient.
Tensor hinge_embedding_loss(const Tensor& input, const Tensor& target, const HingeEmbeddingOptions& = {});

struct SoftMarginOptions {
  Reduction reduction = Reduction::mean;
};
// log(1 + exp(-y x)), y = 1 or -1 (broadcast to x's shape). Computed as softplus(-y x), which stays
// finite where PyTorch's exp overflows to inf.
Tensor soft_margin_loss(const Tensor& input, const Tensor& target, const SoftMarginOptions& = {});

struct MultilabelSoftMarginOptions {
  Tensor weight;  // [C] per-class weights (any shape that broadcasts to the input's); as in PyTorch a
                  // plain factor, so it receives a gradient when it requires one
  Reduction reduction = Reduction::mean;
};
// Per example of input [N, C] (or [C], or [..., C]: the classes are the last dim), -mean over
// classes of w_c (y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)); y holds 0/1 (or
// probabilities) per class and broadcasts to the input's shape.
Tensor multilabel_soft_margin_loss(const Tensor& input, const Tensor& target,
                                   const MultilabelSoftMarginOptions& = {});

struct MultiMarginOptions {
  int64_t p = 1;  // 1 or 2
  double margin = 1.0;
  Tensor weight;  // [C] per-class weights (constant), indexed by the target class
  Reduction reduction = Reduction::mean;
};
// The multi-class hinge loss of input [N, C] (or [C], or a 0-d score: one class) and int64 class ids
// y [N] (or 0-d, or [1] for one example): sum over i != y of w_y max(0, margin - x_y + x_i)^p, divided
// by C. A class id outside [0, C) is an error. Reduction::none gives [N], or 0-d for a 0-d target.
Tensor multi_margin_loss(const Tensor& input, const Tensor& target, const MultiMarginOptions& = {});

struct CosineEmbeddingOptions {
  double margin = 0.0;  // in [-1, 1]
  Reduction reduction = Reduction::mean;
};
// With cos = sum(x1 x2) / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12)) along the last dim (x1, x2 [N, D]
// with a 1-D target y [N], or [D] with a 0-d y; x1 and x2 broadcast; PyTorch's own epsilon, not
// cosine_similarity's): 1 - cos where y = 1, max(0, cos - margin) where y = -1, 0 for any other label.
Tensor cosine_embedding_loss(const Tensor& x1, const Tensor& x2, const Tensor& target,
                             const CosineEmbeddingOptions& = {});

struct TripletMarginOptions {
  double margin = 1.0;
  double p = 2.0;     // the norm of pairwise_distance
  double eps = 1e-6;  // pairwise_distance's eps
  bool swap = false;  // use d(positive, negative) when it is smaller than d(anchor, negative)
  Reduction reduction = Reduction::mean;
};
// max(0, d(a, p) - d(a, n) + margin) with d = pairwise_distance (over the last dim); a, p, n of one
// rank (typically [N, D] or [D]) whose shapes broadcast.
Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative,
                           const TripletMarginOptions& = {});

}  // namespace ember::losses
