#pragma once
// Internal switches of cut_cross_entropy for tests and benchmarks (not part of the public API).
#include <cstdint>

namespace ember::losses::detail {
// Whether the backward visits the vocabulary sorted by the forward's average logit when it
// filters gradients (default true). Worked example 4 of cce.md assumes the natural order.
bool& cce_sort_vocabulary();

// Whether the forward records the signal mask (losses/kernels/cce.h) for a filtered backward,
// which then passes over the tiles the filter would drop without recomputing them (default true).
// It changes no result, only the time: tests compare both settings.
bool& cce_signal_mask();

// Which tensor-core path the CUDA kernels use for bf16 inputs (cuda/losses/cce_tiled.cu): `mma`
// (ldmatrix + mma.sync, 128 x 128 tiles, three or four stages; the default, the fastest on an
// H200: 205 TFLOP/s forward), `wmma` (nvcuda::wmma, 64 x 128 tiles, two cp.async stages; 128) or
// `mma_wide` (mma with 128 x 256 forward tiles; 189). Starts as the environment variable
// EMBER_CCE_CORE says ("wmma", "mma" or "mma_wide"; anything else throws ember::Error), else as
// `mma`.
enum class CCECudaCore { wmma, mma, mma_wide };
CCECudaCore& cce_cuda_core();
// The core a value of EMBER_CCE_CORE names (null or empty: mma).
CCECudaCore cce_cuda_core_named(const char* value);

// A cap on the shared memory per block the CUDA kernels may use, in bytes (0, the default: the
// device's own limit). Tests set 99 KiB to take the paths of sm_86 / sm_89 GPUs on a larger one.
int64_t& cce_cuda_shared_memory_limit();
}  // namespace ember::losses::detail
