#pragma once
// Queries that exist in every build; without the CUDA backend (or without a GPU) they report
// that no device is available.
#include "ember/memory.h"

namespace ember::cuda {
bool is_available();
int device_count();
bool is_built();  // whether this build has the CUDA backend at all
void synchronize();
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
void empty_cache();
void set_allow_tf32(bool allow);  // matmul may use TF32 tensor cores (off by default)
bool allow_tf32();
}  // namespace ember::cuda
