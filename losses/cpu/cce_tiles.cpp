#include "losses/cpu/cce_config.h"

namespace ember::cpu::cce {
TileConfig& tile_config() {
  static TileConfig config;
  return config;
}
BackwardStats& last_backward_stats() {
  static BackwardStats stats;
  return stats;
}
}  // namespace ember::cpu::cce
