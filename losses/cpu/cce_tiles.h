#pragma once
// The pieces the CPU Cut Cross-Entropy kernels share: fetching a block of embedding rows, and
// turning a raw E·C^T tile into (bias-added, soft-capped) logits.
//
// Memory layout: every tile is a dense row-major [rows x cols] block with leading dimension
// `cols`, produced by one GEMM into a small per-thread scratch buffer and consumed while it is
// still in cache. No buffer ever spans all N rows and all V columns.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "losses/cpu/cce_config.h"
#include "ops/cpu/blas.h"

namespace ember::cpu::cce {

// The embedding rows rows[k0..k1) as a [k1-k0, D] matrix: a pointer straight into E when they are
// consecutive (the common case: nothing ignored), otherwise a copy gathered into `buffer`.
// `rows` is strictly ascending, so consecutive <=> the end points are k1-k0-1 apart.
template <class T>
const T* row_block(const T* E, int64_t D, const int64_t* rows, int64_t k0, int64_t k1, T* buffer) {
  if (rows[k1 - 1] - rows[k0] == k1 - 1 - k0) return E + rows[k0] * D;
  for (int64_t k = k0; k < k1; ++k) std::memcpy(buffer + (k - k0) * D, E + rows[k] * D, D * sizeof(T));
  return buffer;
}

// tile[rows x cols] = Eb[rows x D] · Cb[cols x D]^T  (one GEMM, fp32 accumulation for float).
template <class T>
void logits_tile(const T* Eb, int64_t rows, const T* Cb, int64_t cols, int64_t D, T* tile) {
  blas_gemm<T>(false, true, static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(D), T(1), Eb,
               static_cast<int>(D), Cb, static_cast<int>(D), T(0), tile, static_cast<int>(cols));
}

// One tile row of raw dot products -> the logits the loss sees: add the bias (if any), then
// apply the soft cap  s * tanh(z / s)  (if softcap > 0).
template <class T>
inline void finish_logits(T* x, int64_t cols, const T* bias, T softcap) {
  if (bias != nullptr)
    for (int64_t c = 0; c < cols; ++c) x[c] += bias[c];
  if (softcap > 0) {
    const T inv = T(1) / softcap;
    for (int64_t c = 0; c < cols; ++c) x[c] = softcap * std::tanh(x[c] * inv);
  }
}

}  // namespace ember::cpu::cce
