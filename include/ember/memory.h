#pragma once
#include <cstdint>

namespace ember {
struct MemoryStats {
  int64_t current_bytes = 0;  // allocated now
  int64_t peak_bytes = 0;     // high-water mark since the last reset
  int64_t allocations = 0;    // number of allocations since start
  int64_t cached_bytes = 0;   // held by a caching allocator (CUDA; CPU blocks >= 64 KiB), not in use
};
namespace cpu {
MemoryStats memory_stats();
void reset_peak_memory_stats();
}  // namespace cpu
}  // namespace ember
