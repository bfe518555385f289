#pragma once
// Ops that work along one dim (softmax, scans, arg-reduce) see a contiguous tensor as a 3-D block
// [outer, n, inner]: n elements along the dim, `outer` = product of the sizes before it, `inner` =
// product of the sizes after it. Element (o, k, j) sits at (o * n + k) * inner + j, and the n
// elements (o, 0..n-1, j) form one "lane" that the op processes on its own.
//
// Two memory layouts follow from that:
//   * inner == 1 ("rows", e.g. softmax over the last dim): each lane is one contiguous run.
//   * inner > 1 ("columns", e.g. softmax over channels of [N, C, H, W]): neighbouring lanes lie
//     side by side, lane j of the next k is `inner` elements further on. Walking one lane at a
//     time would read n scattered elements per lane; instead a job takes a block of up to
//     kLaneBlock neighbouring lanes and walks k outermost, so every read is a contiguous run of
//     the block (which vectorises) and each cache line is used once.
#include <algorithm>
#include <cstdint>

#include "core/parallel.h"
#include "ember/tensor.h"

namespace ember::cpu {

struct LaneGeometry {
  int64_t outer = 1, n = 1, inner = 1;
};

// A 0-d tensor is a single lane of one element (dim is 0 there).
inline LaneGeometry lane_geometry(const Shape& shape, int64_t dim) {
  LaneGeometry g;
  if (shape.empty()) return g;
  for (int64_t d = 0; d < dim; ++d) g.outer *= shape[d];
  g.n = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) g.inner *= shape[d];
  return g;
}

inline constexpr int64_t kLaneBlock = 256;

// Calls job(o, j0, j1) for every outer index o and block of lanes [j0, j1) (at most kLaneBlock
// wide; always [0, 1) when inner == 1), spread over the threads with ~kDefaultGrain elements
// per task. A job owns its lanes: jobs never write the same element.
template <class Job>
void for_each_lane_block(const LaneGeometry& g, const Job& job) {
  const int64_t blocks = (g.inner + kLaneBlock - 1) / kLaneBlock;
  const int64_t elements_per_job = std::max<int64_t>(1, g.n * std::min(g.inner, kLaneBlock));
  const int64_t grain = std::max<int64_t>(1, kDefaultGrain / elements_per_job);
  parallel_for(0, g.outer * blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      int64_t o = t / blocks, j0 = (t % blocks) * kLaneBlock;
      job(o, j0, std::min(g.inner, j0 + kLaneBlock));
    }
  });
}

}  // namespace ember::cpu
