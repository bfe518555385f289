#pragma once
// Layers over [N, C, *spatial] inputs also take one unbatched [C, *spatial] sample, as PyTorch's
// do: the sample gets a batch dim of 1 for the op, and loses it again after.
#include "ember/error.h"
#include "ember/tensor.h"

namespace ember::nn::detail {

// Runs op on the batched form of `input`, which has `spatial` (1 or 2) spatial dims.
template <class Op>
Tensor on_batched(const char* layer, int spatial, const Tensor& input, const Op& op) {
  if (!input.defined()) fail("{}: input is an undefined tensor", layer);
  const char* dims = spatial == 1 ? "L" : "H, W";
  const int64_t rank = spatial + 2;
  if (input.dim() != rank - 1 && input.dim() != rank)
    fail("{}: expected input [N, C, {}] or [C, {}], got shape {}", layer, dims, dims,
         shape_str(input.shape()));
  if (input.dim() == rank) return op(input);
  return op(input.unsqueeze(0)).squeeze(0);
}

}  // namespace ember::nn::detail
