// nn::functional::masked_softmax: the scaled, masked softmax of attention as one kernel each way
// (ops/kernels/masked_softmax.h). Composed from generic ops it would take a scale pass, a mask
// build, a masked_fill and the softmax forward, and as many passes backward; the fused kernels
// read the scores once per step and never build a [Tq, Tk] mask.
#include "ops/kernels/masked_softmax.h"

#include <cmath>

#include "ember/nn/functional.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(masked_softmax_stub, MaskedSoftmaxFn);
EMBER_DEFINE_STUB(masked_softmax_backward_stub, MaskedSoftmaxBackwardFn);

namespace nn::functional {

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// The kernels walk contiguous rows; attention scores from matmul already are, anything else is
// packed once.
Tensor packed(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.detach().contiguous(); }

}  // namespace

Tensor masked_softmax(const Tensor& scores, double scale, bool causal, const Tensor& key_padding_mask) {
  const char* op = "masked_softmax";
  check_defined(op, scores, "scores");
  if (!scores.is_floating_point())
    fail("{}: scores dtype {} is not floating point; convert with .to(kFloat32) first", op, scores.dtype());
  if (scores.dim() != 4)
    fail("{}: scores must be [B, H, Tq, Tk] (4-D), got {}", op, shape_str(scores.shape()));
  if (!std::isfinite(scale)) fail("{}: scale must be finite, got {}", op, scale);
  const int64_t B = scores.size(0), Tk = scores.size(3);
  Tensor pad;
  if (key_padding_mask.defined()) {
    if (key_padding_mask.dtype() != DType::boolean)
      fail("{}: key_padding_mask must be bool (true = padding), got {}", op, key_padding_mask.dtype());
    if (key_padding_mask.shape() != Shape{B, Tk})
      fail("{}: key_padding_mask of shape {} should be [B, Tk] = [{}, {}] for scores {}", op,
           shape_str(key_padding_mask.shape()), B, Tk, shape_str(scores.shape()));
    check_same_device(op, {scores, key_padding_mask});
    pad = packed(key_padding_mask);
  }

  if (is_bfloat16(scores))  // float32 kernels both ways; the casts carry the gradient
    return via_float32([&](const Tensor& f) { return masked_softmax(f, scale, causal, key_padding_mask); },
                       scores);

  Tensor out = empty_tensor(scores.shape(), scores.dtype(), scores.device());
  if (out.numel() > 0) masked_softmax_stub(scores.device(), out, packed(scores), pad, scale, causal);
  if (autograd::any_requires_grad({scores})) {
    autograd::record(
        op, {scores}, out,
        [op, scale, causal, sy = SavedTensor::output(out)](const BackwardArgs& a) {
          Tensor y = sy.unpack(op);
          // create_graph: the softmax gradient in recorded ops (masked positions have y = 0, so they get 0)
          if (GradMode::is_enabled()) return Grads{softmax_grad_recorded(a.grad(), y, -1) * scale};
          Tensor g = packed(cast_raw(a.grad(), y.dtype()));
          Tensor grad_in = empty_tensor(y.shape(), y.dtype(), y.device());
          if (grad_in.numel() > 0) masked_softmax_backward_stub(y.device(), grad_in, g, y, scale, causal);
          return Grads{grad_in};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace nn::functional
}  // namespace ember
