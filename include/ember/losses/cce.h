#pragma once
// Cut Cross-Entropy (Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models",
// ICLR 2025). See docs/losses/cce.md.
//
// The cross-entropy of a linear classifier head, loss_i = logsumexp_j(z_ij) - z_{i,x_i} with
// z = E C^T (+ b), computed without ever storing the N x V logits: the logits are produced tile
// by tile into a small scratch buffer, folded into a running log-sum-exp, and recomputed in the
// backward pass, which accumulates dE, dC and db directly (skipping tiles whose gradient is
// below the dtype's resolution). Memory beyond the inputs and their gradients is O(N + V).
#include <cstdint>

#include "ember/losses/reduction.h"
#include "ember/tensor.h"

namespace ember::losses {

struct CCEOptions {
  Tensor bias;                  // [V] classifier bias (optional); receives a gradient
  int64_t ignore_index = -100;  // targets equal to this contribute nothing
  // > 0: logits become softcap * tanh(logits / softcap) (Gemma 2 uses 30)
  double softcap = 0.0;
  // k > 0: row t of each sequence is scored against target t + k (next-token prediction: 1)
  int64_t shift = 0;
  // mean: over the non-ignored rows (NaN when there are none, as cross_entropy)
  Reduction reduction = Reduction::mean;
  // Skip backward tiles whose |softmax - onehot| is below filter_eps everywhere (a tile holding the
  // target of a row whose returned lse gets a gradient is always kept); 0 = the dtype's default,
  // machine epsilon / 32 (2^-28 for float32, 2^-57 for float64).
  bool filter_gradients = true;
  double filter_eps = 0.0;
  // CUDA: accumulate dE / dC / db in a fixed order (the same bits on every run) instead of with
  // atomics, at the cost of recomputing the logits twice in the backward. The CPU always is.
  bool deterministic = false;
  // bfloat16 inputs on CUDA: true = accumulate dE and dC in float32 scratch and round once at the
  // end (more precise, like the paper's CCE-Kahan, but ~2x the bf16 gradients in extra memory);
  // false = add each tile's contribution into the bf16 gradients in place (the paper's plain
  // CCE: gradient memory at its lower bound, every addition rounded to bf16). The deterministic
  // mode always sums in float32. No effect on the CPU (it always accumulates in float32) or for
  // float32 / float64 inputs.
  bool accumulate_fp32 = false;
};

// embeddings: [N, D] (one sequence, as far as `shift` is concerned) or [B, T, D]; classifier:
// [V, D]; target: int64 class ids of shape [N] or [B, T], each in [0, V) or ignore_index.
// Reduction::none returns [N - shift] or [B, T - shift] with 0 at ignored positions.
Tensor cut_cross_entropy(const Tensor& embeddings, const Tensor& classifier, const Tensor& target,
                         const CCEOptions& options = {});

// The loss together with each position's log-sum-exp (the reference's return_lse), laid out
// like Reduction::none (0 at ignored positions). Gradients flow through both, so a z-loss
// regulariser is  weight * (lse * lse).sum() / (number of non-ignored positions).
struct CCEResult {
  Tensor loss;
  Tensor lse;
};
CCEResult cut_cross_entropy_with_lse(const Tensor& embeddings, const Tensor& classifier, const Tensor& target,
                                     const CCEOptions& options = {});

}  // namespace ember::losses
