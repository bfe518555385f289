#pragma once
// bfloat16 parameters in the optimizers. The update kernels exist for float32 and float64; a
// bfloat16 parameter (and its bfloat16 gradient and state) steps on float32 copies, which are then
// rounded back once: the update is computed in float32 and stored in bfloat16, as PyTorch's
// optimizers do for bfloat16 parameters. Widening is exact, so a tensor the step only reads (the
// gradient) rounds back to the same bits.
#include <tuple>

#include "ops/bf16_compute.h"

namespace ember::optim::detail {

// step(ts...) on the tensors themselves, or on float32 twins of the bfloat16 ones among them
// (undefined tensors pass through), copied back afterwards. Call under NoGradGuard.
template <class Step, class... Ts>
void step_in_float32_if_bfloat16(Step&& step, const Ts&... ts) {
  if (!any_bfloat16(ts...)) {
    step(ts...);
    return;
  }
  std::tuple<Ts...> twins{bf16_upcast(ts)...};
  std::apply(step, twins);
  auto round_back = [](const Tensor& original, const Tensor& twin) {
    if (!is_bfloat16(original)) return;
    Tensor dst = original;  // a handle to the caller's storage
    dst.copy_(twin);
  };
  std::apply([&](const auto&... twin) { (round_back(ts, twin), ...); }, twins);
}

}  // namespace ember::optim::detail
