#pragma once
// The tiled Cut Cross-Entropy kernels for float32 and bfloat16 inputs (cce_tiled.cu). cce.cu
// registers the stubs and sends float64 to its simple one-warp-per-logit kernels, everything
// else here. Same arguments as the stubs of losses/kernels/cce.h. Both return false, having done
// nothing, when no tile configuration fits the device's shared memory (only the float32 backward
// on sm_86 / sm_89: 99 KiB per block); cce.cu then runs its simple kernels.
#include "ember/tensor.h"

namespace ember::cuda_kernels::cce {

bool tiled_forward(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                   const Tensor& targets, double softcap, const Tensor& lse, const Tensor& nll,
                   const Tensor& logit_avg, double filter_eps, const Tensor& signal_mask);

bool tiled_backward(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                    const Tensor& targets, double softcap, const Tensor& lse, const Tensor& grad_nll,
                    const Tensor& grad_lse, double filter_eps, const Tensor& vocab_order,
                    const Tensor& signal_mask, bool deterministic, bool accumulate_fp32, const Tensor& dE,
                    const Tensor& dC, const Tensor& db);

}  // namespace ember::cuda_kernels::cce
