#pragma once
// How the Cut Cross-Entropy forward (cce_tiled.cu) cuts each row block's walk over the
// vocabulary into "splits", one thread block per (row block, split). Plain host code, so the CPU
// tests check it (CudaLosses.CCEForwardSplitsFillWholeWaves).
#include <algorithm>
#include <cstdint>

namespace ember::cuda_kernels::cce {

// The fraction of the GPU's block slots doing work when row_blocks x splits items, each walking
// its share of vocab_blocks tiles, run in waves of `slots` resident blocks: the work over
// (waves x the slots a wave fills x the longest item).
inline double wave_fill(int64_t row_blocks, int64_t vocab_blocks, int64_t slots, int64_t splits) {
  const int64_t items = row_blocks * splits, waves = (items + slots - 1) / slots;
  const double longest = static_cast<double>((vocab_blocks + splits - 1) / splits);
  return static_cast<double>(row_blocks * vocab_blocks) /
         (static_cast<double>(waves) * static_cast<double>(std::min(slots, items)) * longest);
}

// The split count: a partial last wave leaves SMs idle (576 items on 264 slots take three waves
// for 2.2 waves of work), so at least one full wave and, among up to 8x that many splits, the
// count whose waves are fullest (the first such). It depends on the problem and the GPU only, so
// a given GPU always merges the partial log-sum-exps the same way.
inline int64_t forward_splits(int64_t row_blocks, int64_t vocab_blocks, int64_t slots) {
  const int64_t first = std::clamp<int64_t>((slots + row_blocks - 1) / row_blocks, 1, vocab_blocks);
  const int64_t last = std::min(vocab_blocks, 8 * first);
  int64_t best = first;
  double best_fill = 0;
  for (int64_t s = first; s <= last; ++s)
    if (const double fill = wave_fill(row_blocks, vocab_blocks, slots, s); fill > best_fill + 1e-9) {
      best_fill = fill;
      best = s;
    }
  return best;
}

}  // namespace ember::cuda_kernels::cce
