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

// A problem with confident rows, where gradient filtering skips almost everything but the target:
// E [N, D], C [V, D] with D = V + 3 (float64, CPU), a bias [V] (std 0.1) and targets x [N] in
// [0, target_classes), every 7th one ignored (-100). C_j = [onehot(j) | noise]. A scored row in an
// even block of `block` scored rows (a backward tile's rows) has E_i = [gap onehot(x_i) | noise],
// so its target logit exceeds every other by gap minus a few nats (over 40 for the default gap:
// every other S is below the float64 filter's 2^-57 ~ e^-39.5); the other rows have
// E_i = [0 | noise] (a near-uniform softmax). The noise columns (3, entries N(0, 0.5)) and the
// bias give the logits a spread of std ~0.45.
struct ConfidentProblem {
  Tensor E, C, bias, x;
};

inline ConfidentProblem confident_problem(int64_t N, int64_t V, int64_t block, int64_t target_classes,
                                          uint64_t seed, double gap = 50.0) {
  constexpr int64_t kNoise = 3;
  const int64_t D = V + kNoise;
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> noise(0.0, 0.5), small(0.0, 0.1);
  std::uniform_int_distribution<int64_t> pick(0, target_classes - 1);
  std::vector<double> e(static_cast<size_t>(N * D), 0.0), c(static_cast<size_t>(V * D), 0.0),
      b(static_cast<size_t>(V));
  std::vector<int64_t> x(static_cast<size_t>(N));
  for (int64_t i = 0, k = 0; i < N; ++i) {  // k counts the scored rows
    const int64_t t = pick(gen);
    const bool scored = i % 7 != 3;
    x[i] = scored ? t : -100;
    if (scored && (k / block) % 2 == 0) e[i * D + t] = gap;
    k += scored;
    for (int64_t d = V; d < D; ++d) e[i * D + d] = noise(gen);
  }
  for (int64_t j = 0; j < V; ++j) {
    c[j * D + j] = 1.0;
    for (int64_t d = V; d < D; ++d) c[j * D + d] = noise(gen);
    b[j] = small(gen);
  }
  return {tensor<double>(e, {N, D}), tensor<double>(c, {V, D}), tensor<double>(b, {V}),
          tensor<int64_t>(x, {N})};
}

}  // namespace ember::testing
