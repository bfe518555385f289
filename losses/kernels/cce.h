#pragma once
// Cut Cross-Entropy kernels (CPU: losses/cpu/cce_forward.cpp and cce_backward.cpp; a CUDA
// backend registers the same signatures).
//
// Shared contract. E: [R, D] contiguous (the embeddings, flattened over the batch dims);
// C: [V, D] contiguous; bias: [V] or undefined; all of one floating dtype, the input dtype
// (float32, float64 or bfloat16). The per-row vectors (lse, nll, grad_nll, grad_lse) and
// logit_avg are of the accumulation dtype: float32 for bfloat16 inputs, the input dtype
// otherwise (see cce_accumulation_dtype in losses/cce.cpp). rows: int64 [n], the
// rows of E that are scored, in ascending order; targets: int64 [n], their class ids, already
// checked to lie in [0, V). Write zhat_rj = softcap(e_r . c_j + b_j) for the (capped) logits.
// Neither kernel may allocate anything of size R x V.
#include <cstdint>

#include "core/dispatch.h"
#include "core/host_device.h"
#include "ember/tensor.h"

namespace ember {

// The signal mask: what the forward learns about which tiles the backward's gradient filter will
// keep, so that the backward can pass over the others without recomputing their logits (on a
// language model's logits most tiles, each costing a full tile of E C^T). An int32 tensor read as
// uint32 words, [ceil(n / kSignalRows), ceil(V / 32)]: bit j % 32 of word [q][j / 32] stands for
// class j and the scored rows k in [q kSignalRows, (q + 1) kSignalRows). A clear bit promises that
// for each of those rows zhat_kj < signal_threshold(L_k, log(filter_eps)) for a lower bound
// L_k <= lse, and that j is none of their targets: then S_kj < filter_eps whatever rounding (under
// the margin: kSignalMargin nats, plus kSignalRelativeMargin of |L_k| for rounding that grows with
// the logits' size) separates the backward's recomputed logit from the forward's.
constexpr int64_t kSignalRows = 128;
constexpr double kSignalMargin = 0.5;
constexpr double kSignalRelativeMargin = 1.0 / 65536;
EMBER_HD int64_t signal_mask_groups(int64_t n) { return (n + kSignalRows - 1) / kSignalRows; }
EMBER_HD int64_t signal_mask_words(int64_t V) { return (V + 31) / 32; }
// The logit at and above which a class is marked, for a lower bound L of lse.
template <class T>
EMBER_HD T signal_threshold(T bound, T log_eps) {
  return bound + (log_eps - T(kSignalMargin)) - (bound < 0 ? -bound : bound) * T(kSignalRelativeMargin);
}
EMBER_HD bool signal_bit(const uint32_t* mask, int64_t words, int64_t k, int64_t j) {
  return (mask[(k / kSignalRows) * words + j / 32] >> (j % 32)) & 1u;
}

// Forward. For every k < n, with r = rows[k]:
//   lse[r] = log sum_j exp(zhat_rj),   nll[r] = lse[r] - zhat_{r, targets[k]}.
// lse and nll are [R] of the accumulation dtype, zero-filled by the caller; entries of unscored
// rows are left alone. logit_avg, when defined ([V], accumulation dtype), receives
//   logit_avg[j] = sum_k zhat_{rows[k], j} / n,
// the statistic the backward sorts the vocabulary by. signal_mask, when defined (zero-filled by the
// caller; filter_eps > 0 then), receives the bits of every scored row's target and of every
// (k, j) with zhat_kj >= signal_threshold(L_k, log(filter_eps)) or zhat_kj NaN, where L_k is any
// lower bound of lse the kernel holds when it sees zhat_kj (the row's running max, its logit for
// some class). Extra bits cost time, never accuracy; a missing one is a wrong gradient.
using CCEForwardFn = void (*)(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                              const Tensor& targets, double softcap, const Tensor& lse, const Tensor& nll,
                              const Tensor& logit_avg, double filter_eps, const Tensor& signal_mask);
EMBER_DECLARE_STUB(cce_forward_stub, CCEForwardFn);

// Backward. grad_nll and grad_lse are [R] (grad_lse may be undefined: zero); for a scored row r
// with target x, softmax S_rj = exp(zhat_rj - lse[r]), g = grad_nll[r], h = grad_lse[r]:
//   dzhat_rj = g (S_rj - 1[j = x]) + h S_rj,    dz_rj = dzhat_rj (1 - (zhat_rj / softcap)^2) when capped,
//   dE[r] += sum_j dz_rj c_j,   dC[j] += sum_r dz_rj e_r,   db[j] += sum_r dz_rj.
// dE [R, D], dC [V, D], db [V] (input dtype) are allocated by the caller, or undefined when not
// wanted; the kernel writes every entry (zero where nothing contributes).
// Gradient filtering: with filter_eps > 0, a tile (a block of rows x a block of vocabulary
// entries) whose max |S_rj - 1[j = x]| is below filter_eps contributes nothing, unless it holds
// the target of a row whose LSE gradient is nonzero (there dz ~ that gradient however close S is
// to 1; see tile_has_signal in losses/cpu/cce_backward.cpp).
// vocab_order: an int64 [V] permutation, or undefined for 0..V-1: vocabulary blocks are formed
// from consecutive entries of this order. It never changes the math, only which tiles filtering
// can skip (sorting by logit_avg groups the rarely-likely entries into all-skippable tiles).
// deterministic: the results must be the same bits on every run (the CPU kernels always are;
// the CUDA kernels otherwise accumulate with atomics). Tile sizes, and so which tiles filtering
// skips, are the backend's own.
// signal_mask: the forward's (see above), or undefined. A tile none of whose (row, class) bits is
// set and none of whose rows has a NaN lse (which makes every entry of the row pass the filter)
// is one the filter drops, so a backend may drop it without computing it: same gradients.
// accumulate_fp32 (bfloat16 inputs only): sum dE and dC in float32 and round once at the end.
// When false a backend may instead add each tile's contribution into the bf16 outputs in place
// (the CUDA kernels do: no gradient memory beyond the outputs, but every addition rounds to
// bf16). The CPU kernels always sum in float32 and ignore it.
using CCEBackwardFn = void (*)(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                               const Tensor& targets, double softcap, const Tensor& lse,
                               const Tensor& grad_nll, const Tensor& grad_lse, double filter_eps,
                               const Tensor& vocab_order, const Tensor& signal_mask, bool deterministic,
                               bool accumulate_fp32, const Tensor& dE, const Tensor& dC, const Tensor& db);
EMBER_DECLARE_STUB(cce_backward_stub, CCEBackwardFn);

}  // namespace ember
