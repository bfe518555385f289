#pragma once
// ember::nn::functional: the normalisation ops behind BatchNorm, LayerNorm and GroupNorm and the
// softmax behind MultiheadAttention, as fused kernels (one forward and one backward kernel each,
// behind dispatch stubs; see ops/kernels/norm.h and ops/kernels/masked_softmax.h); rms_norm, a
// composite of plain ops (ops/norm.cpp); interpolate (ops/interpolate.cpp);
// scaled_dot_product_attention (nn/layers/attention.cpp).
#include <optional>
#include <vector>

#include "ember/tensor.h"

namespace ember::nn::functional {

// Batch normalisation over dim 1 of input [N, C, *]: statistics per channel over N and the
// trailing dims. weight/bias ([C]) may be undefined (no affine transform).
//   training = true:  normalises with the batch mean and biased variance; if running_mean and
//                     running_var ([C]) are defined, updates them in place:
//                       running = (1 - momentum) * running + momentum * batch
//                     with the unbiased variance (n / (n - 1)), as PyTorch does.
//   training = false: normalises with running_mean / running_var (which must be defined).
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

// Layer normalisation over the trailing dims `normalized_shape` of input; weight/bias have shape
// normalized_shape (or are undefined).
Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// Group normalisation of input [N, C, *]: the C channels split into num_groups groups of C /
// num_groups consecutive channels, and each sample's group is normalised with its own mean and biased
// variance (over the group's channels and the trailing dims); then the per-channel weight and bias
// ([C], optional). num_groups = 1 is a layer norm over [C, *] with per-channel affine; num_groups = C
// is instance normalisation.
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

// Root-mean-square normalisation over the trailing dims `normalized_shape`:
//   y = x / sqrt(mean(x^2) + eps) * weight
// (no centring, no bias). eps unset: the machine epsilon of the dtype the op computes in (float32
// for float32 and bfloat16 inputs, float64 for float64), as PyTorch's rms_norm.
Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

// ---- resampling (torch.nn.functional.interpolate) ----

// nearest:       output position j reads input position floor(j * in / out) (PyTorch's "nearest")
// nearest_exact: floor((j + 0.5) * in / out), pixel centres aligned (PyTorch's "nearest-exact")
// linear, bilinear, trilinear: the weighted mean of the two (four, eight) nearest input positions,
//   on [N, C, W], [N, C, H, W] and [N, C, D, H, W] inputs respectively.
// (With scale_factor given, in / out above is 1 / scale_factor, as in PyTorch.)
enum class InterpolateMode { nearest, nearest_exact, linear, bilinear, trilinear };
const char* mode_name(InterpolateMode mode);  // PyTorch's spelling: "nearest-exact", "bilinear", ...

struct InterpolateOptions {
  std::vector<int64_t> size;         // output spatial size: one value per spatial dim, or one for all;
  std::vector<double> scale_factor;  // or a factor per spatial dim (or one): out = floor(in * factor)
  InterpolateMode mode = InterpolateMode::nearest;
  // Linear modes only (unset: false). true: the corner pixels' centres of input and output
  // coincide, so positions scale by (in - 1) / (out - 1) and scale_factor only sets the size.
  std::optional<bool> align_corners;
};

// Resamples the spatial dims (all but the first two) of input [N, C, W], [N, C, H, W] or
// [N, C, D, H, W]; e.g. interpolate(x, {.scale_factor = {2.0}, .mode = InterpolateMode::bilinear}).
// Nearest modes take any dtype; linear modes a floating one (bfloat16 computes in float32).
// Differentiable (to any order) in the input.
Tensor interpolate(const Tensor& input, const InterpolateOptions& options);

// The attention weights of scaled dot-product attention, in one pass over the scores:
//   out = softmax(scale * scores, dim = -1) over the keys each query may see
// for scores [B, H, Tq, Tk] (= Q K^T per head). Query i does not see key j when
//   causal and j > i + (Tk - Tq)   (the last query lines up with the last key; Tq == Tk: j > i)
//   key_padding_mask[b, j] is true (bool [B, Tk], true = padding, PyTorch's convention).
// A query that sees no key, or only -inf scores, gets all-zero weights and a zero gradient
// (PyTorch gives NaN there). Differentiable in scores.
Tensor masked_softmax(const Tensor& scores, double scale, bool causal = false,
                      const Tensor& key_padding_mask = {});

// torch.nn.functional.scaled_dot_product_attention (PyTorch 2.x), written with matmul and
// masked_softmax (nn/layers/attention.cpp):
//   out = dropout(softmax(scale * Q K^T + mask)) V
// for query [..., L, E], key [..., S, E], value [..., S, Ev] (leading dims broadcast, as matmul's)
// -> [..., L, Ev]. scale defaults to 1 / sqrt(E). attn_mask broadcasts to [..., L, S]: bool with
// PyTorch's SDPA convention, true = may attend (the opposite of MultiheadAttention's masks), or
// floating, added to the scaled scores. is_causal lets query i see keys 0..i (top-left aligned;
// not together with attn_mask). A query that may see no key gets zero weights, as PyTorch's math
// path (_safe_softmax, 2.5+). dropout_p > 0 drops weights whenever called, as the functional does.
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask = {}, double dropout_p = 0.0,
                                    bool is_causal = false, std::optional<double> scale = std::nullopt);

}  // namespace ember::nn::functional
