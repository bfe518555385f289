// The CUDA queries for builds without the CUDA backend. With the backend, cuda/runtime.cu
// defines them instead.
#ifndef EMBER_WITH_CUDA
#include "ember/cuda.h"

namespace ember::cuda {
bool is_available() { return false; }
int device_count() { return 0; }
bool is_built() { return false; }
void synchronize() {}
MemoryStats memory_stats(int) { return {}; }
void reset_peak_memory_stats(int) {}
void empty_cache() {}
void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }
}  // namespace ember::cuda
#endif
