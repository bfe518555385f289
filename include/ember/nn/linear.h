#pragma once
// Linear (y = x W^T + b), Flatten, Unflatten and Embedding.
#include <optional>

#include "ember/nn/module.h"

namespace ember::nn {

// Applies y = x W^T + b to the last dim of x. weight: [out_features, in_features], bias:
// [out_features]. PyTorch's init: W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t in_features, out_features;
  Tensor weight, bias;  // bias is undefined when built with bias = false
};

// Flattens dims start_dim..end_dim into one (a view when possible).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t start_dim, end_dim;
};

// Splits dim into `sizes` (a view when possible): Flatten's inverse.
class Unflatten : public Module {
 public:
  Unflatten(int64_t dim, Shape sizes);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t dim;
  Shape sizes;
};

// A lookup table: indices (int64 or int32, any shape) -> rows of weight [num_embeddings,
// embedding_dim]. PyTorch's init: N(0, 1), with the padding_idx row zero. The padding row gets no
// gradient; a negative padding_idx counts from the end.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt);
  Tensor forward(const Tensor& indices) override;
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;  // normalised to [0, num_embeddings)
  Tensor weight;
};

}  // namespace ember::nn
