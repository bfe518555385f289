#pragma once
// Tile sizes of the CPU Cut Cross-Entropy kernels (kept apart from cce_tiles.h so tests can
// include it without the BLAS headers).
#include <cstdint>

namespace ember::cpu::cce {

// Tile sizes. A forward tile is fwd_rows x fwd_vocab; a backward tile is bwd_rows x bwd_vocab
// (smaller in the vocabulary direction, so that gradient filtering finds more all-negligible
// tiles). group_elements bounds the backward's per-thread dE accumulators (rows x D elements in
// all). Tests shrink the tiles to exercise every edge with tiny inputs.
struct TileConfig {
  int64_t fwd_rows = 256;
  int64_t fwd_vocab = 512;
  int64_t bwd_rows = 256;
  int64_t bwd_vocab = 256;
  int64_t group_elements = int64_t{1} << 21;
};
TileConfig& tile_config();  // process-wide; change only while no CCE kernel runs

// What the most recent CPU backward did: how many (row block x vocabulary block) tiles it
// visited, for how many it computed the logits (the others the signal mask dropped unseen) and
// how many survived gradient filtering (for benchmarks and tests).
struct BackwardStats {
  int64_t tiles = 0;
  int64_t computed = 0;
  int64_t kept = 0;
};
BackwardStats& last_backward_stats();

}  // namespace ember::cpu::cce
