#pragma once
// Distance layers: the modules of cosine_similarity and pairwise_distance (ember/ops.h).
#include "ember/nn/module.h"

namespace ember::nn {

class CosineSimilarity : public Module {
 public:
  explicit CosineSimilarity(int64_t dim = 1, double eps = 1e-8);
  using Module::forward;  // the one-input form throws: these take two
  Tensor forward(const Tensor& x1, const Tensor& x2);
  std::string extra_repr() const override;

  int64_t dim;
  double eps;
};

class PairwiseDistance : public Module {
 public:
  explicit PairwiseDistance(double p = 2.0, double eps = 1e-6, bool keepdim = false);
  using Module::forward;  // the one-input form throws: these take two
  Tensor forward(const Tensor& x1, const Tensor& x2);
  std::string extra_repr() const override;

  double p, eps;
  bool keepdim;
};

}  // namespace ember::nn
