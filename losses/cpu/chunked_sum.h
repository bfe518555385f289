#pragma once
// Deterministic parallel sums for the CPU loss kernels.
//
// A loss is a single number, so its forward is a reduction. To make that number independent of
// the thread count (a loss that changes in the last bit when you change OMP_NUM_THREADS makes
// tests flaky and runs hard to reproduce), the range is cut into fixed-size chunks, each chunk is
// accumulated in order (in double), and the chunk partials are then added in chunk order.
#include <array>
#include <cstdint>
#include <vector>

#include "core/parallel.h"

namespace ember::cpu {

inline constexpr int64_t kSumChunk = 4096;

// Returns K sums over [0, n). `chunk(begin, end, acc)` adds the contributions of elements
// [begin, end) into acc (which starts at zero).
template <int K, class Chunk>
std::array<double, K> chunked_sums(int64_t n, const Chunk& chunk) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<std::array<double, K>> partial(static_cast<size_t>(chunks));
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      std::array<double, K> acc{};
      chunk(c * kSumChunk, std::min(n, (c + 1) * kSumChunk), acc);
      partial[static_cast<size_t>(c)] = acc;
    }
  });
  std::array<double, K> total{};
  for (const auto& p : partial)
    for (int k = 0; k < K; ++k) total[k] += p[k];
  return total;
}

}  // namespace ember::cpu
