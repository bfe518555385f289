#pragma once
// Inputs for the Cut Cross-Entropy tests (test_cce.cpp, test_cuda_losses.cpp) whose logits look
// like a language model's, where gradient filtering and the signal mask have work to do.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "ember/ember.h"

namespace ember::testing {

// E [N, D], C [V, D] (float64, CPU) and targets x [N]. Column 0 of E is 1 and column 0 of C
// carries a Zipf log-prior -alpha log(rank) over a shuffled vocabulary (so that sorting has work to
// do); the other columns are noise giving the logits std `noise`; the targets follow the prior.
// Most classes are then negligible for every row.
struct LmProblem {
  Tensor E, C, x;
};

inline LmProblem lm_problem(int64_t N, int64_t D, int64_t V, uint64_t seed, double alpha = 4.0,
                            double noise = 3.0) {
  std::mt19937_64 gen(seed);
  std::vector<int64_t> rank(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) rank[j] = j + 1;
  std::shuffle(rank.begin(), rank.end(), gen);
  // Each noise logit is a sum of D - 1 products of two such values: std `noise`.
  std::normal_distribution<double> normal(0.0, std::sqrt(noise / std::sqrt(static_cast<double>(D - 1))));
  std::vector<double> e(static_cast<size_t>(N * D)), c(static_cast<size_t>(V * D)),
      weight(static_cast<size_t>(V));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t d = 0; d < D; ++d) e[i * D + d] = d == 0 ? 1.0 : normal(gen);
  for (int64_t j = 0; j < V; ++j) {
    const double prior = -alpha * std::log(static_cast<double>(rank[j]));
    weight[j] = std::exp(prior);
    for (int64_t d = 0; d < D; ++d) c[j * D + d] = d == 0 ? prior : normal(gen);
  }
  std::discrete_distribution<int64_t> draw(weight.begin(), weight.end());
  std::vector<int64_t> x(static_cast<size_t>(N));
  for (int64_t& t : x) t = draw(gen);
  return {tensor<double>(e, {N, D}), tensor<double>(c, {V, D}), tensor<int64_t>(x, {N})};
}

}  // namespace ember::testing
