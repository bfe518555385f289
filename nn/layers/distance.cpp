// The distance layers: each forwards its two inputs to its op (ember/ops.h), which checks them.
#include "ember/nn/distance.h"

#include <cmath>

#include "ember/ops.h"

namespace ember::nn {

CosineSimilarity::CosineSimilarity(int64_t d, double e) : dim(d), eps(e) {
  if (!(eps >= 0)) fail("CosineSimilarity: eps must be >= 0, got {}", eps);
}
Tensor CosineSimilarity::forward(const Tensor& x1, const Tensor& x2) {
  return cosine_similarity(x1, x2, dim, eps);
}
std::string CosineSimilarity::extra_repr() const { return fmt::format("dim={}, eps={}", dim, eps); }

PairwiseDistance::PairwiseDistance(double p_, double e, bool k) : p(p_), eps(e), keepdim(k) {
  if (std::isnan(p) || (p < 0 && !std::isinf(p)))
    fail("PairwiseDistance: p must be > 0, 0, inf or -inf; got {}", p);
}
Tensor PairwiseDistance::forward(const Tensor& x1, const Tensor& x2) {
  return pairwise_distance(x1, x2, p, eps, keepdim);
}
std::string PairwiseDistance::extra_repr() const {
  return fmt::format("p={}, eps={}, keepdim={}", p, eps, keepdim);
}

}  // namespace ember::nn
