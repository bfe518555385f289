// batch_norm, layer_norm and group_norm: validation, the running-statistics update, and the
// autograd record. The arithmetic lives in the kernels (ops/kernels/norm.h; CPU: ops/cpu/norm.cpp).
// rms_norm is a composite: a few elementwise ops and a mean, whose backward (and every higher
// derivative) is that of the ops it is made of, on every backend.
#include "ops/kernels/norm.h"

#include <limits>

#include "ember/nn/functional.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(batch_norm_stats_stub, BatchNormStatsFn);
EMBER_DEFINE_STUB(batch_norm_apply_stub, BatchNormApplyFn);
EMBER_DEFINE_STUB(batch_norm_backward_stub, BatchNormBackwardFn);
EMBER_DEFINE_STUB(layer_norm_forward_stub, LayerNormForwardFn);
EMBER_DEFINE_STUB(layer_norm_backward_stub, LayerNormBackwardFn);
EMBER_DEFINE_STUB(group_norm_forward_stub, GroupNormForwardFn);
EMBER_DEFINE_STUB(group_norm_backward_stub, GroupNormBackwardFn);

namespace nn::functional {

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// A per-channel (or per-feature) tensor must match the input's dtype and device and have `shape`.
void check_aux(const char* op, const Tensor& input, const Tensor& t, const char* what, const Shape& shape) {
  if (!t.defined()) return;
  if (t.shape() != shape)
    fail("{}: {} has shape {}, expected {} for input of shape {}", op, what, shape_str(t.shape()),
         shape_str(shape), shape_str(input.shape()));
  if (t.dtype() != input.dtype())
    fail("{}: {} is {} but the input is {}; convert them to one dtype", op, what, t.dtype(), input.dtype());
  if (t.device() != input.device())
    fail("{}: {} is on {} but the input is on {}", op, what, t.device(), input.device());
}

// layer_norm and rms_norm normalise over the trailing dims `normalized_shape` of the input.
void check_normalized_shape(const char* op, const Tensor& input, const Shape& normalized_shape) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  if (k == 0) fail("{}: normalized_shape must not be empty", op);
  bool tail_matches = input.dim() >= k;
  for (int64_t d = 0; tail_matches && d < k; ++d)
    tail_matches = input.size(input.dim() - k + d) == normalized_shape[d];
  if (!tail_matches)
    fail("{}: input of shape {} does not end with normalized_shape {}", op, shape_str(input.shape()),
         shape_str(normalized_shape));
}

// The raw data of an optional tensor, contiguous, with the given shape (undefined stays undefined).
Tensor raw(const Tensor& t, const Shape& shape) {
  return t.defined() ? t.detach().contiguous().view(shape) : Tensor();
}

Tensor new_like(bool wanted, const Shape& shape, const Tensor& like) {
  return wanted ? empty_tensor(shape, like.dtype(), like.device()) : Tensor();
}

// The gradients of a normalisation y = xhat w + b, xhat = (x - mean) rstd, written in recorded ops
// for a backward pass that is itself recorded (create_graph); the kernels compute the same.
// x, w, g come shaped so that mean and rstd broadcast against them; the statistics reduce over
// `dims`, the weight and bias gradients over `param_dims`. With batch_stats the statistics are the
// batch's own, functions of x; otherwise the given constants (batch_norm in evaluation mode).
struct NormGradients {
  Tensor input, weight, bias;
};
NormGradients norm_gradients_recorded(const Tensor& x, const Tensor& w, const Tensor& g, const Shape& dims,
                                      const Shape& param_dims, bool batch_stats, Tensor mean, Tensor rstd,
                                      double eps) {
  if (batch_stats) {
    mean = x.mean(dims, true);
    rstd = rsqrt(square(x - mean).mean(dims, true) + eps);  // the biased variance normalises
  }
  Tensor xhat = (x - mean) * rstd;
  Tensor dxhat = w.defined() ? g * w : g;
  Tensor dx = batch_stats ? rstd * (dxhat - dxhat.mean(dims, true) - xhat * (dxhat * xhat).mean(dims, true))
                          : dxhat * rstd;
  return {dx, (g * xhat).sum(param_dims), g.sum(param_dims)};
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum, double eps) {
  if (any_bfloat16(input, weight, bias, running_mean, running_var)) {
    // Statistics and normalisation in float32, as PyTorch computes them. bfloat16 running buffers
    // are updated through float32 twins and rounded back once; float32 ones are updated in place.
    Tensor rm = bf16_upcast(running_mean), rv = bf16_upcast(running_var);
    Tensor out =
        via_float32([&](const Tensor& x, const Tensor& w,
                        const Tensor& b) { return batch_norm(x, rm, rv, w, b, training, momentum, eps); },
                    input, weight, bias);
    if (training && is_bfloat16(running_mean)) {
      NoGradGuard no_grad;
      Tensor mean_buffer = running_mean, var_buffer = running_var;  // handles to the caller's buffers
      mean_buffer.copy_(rm);
      var_buffer.copy_(rv);
    }
    return out;
  }
  const char* op = "batch_norm";
  check_defined(op, input);
  if (!input.is_floating_point()) fail("{}: expected a floating input, got {}", op, input.dtype());
  if (input.dim() < 2)
    fail("{}: expected an input of shape [N, C, ...], got {}", op, shape_str(input.shape()));
  if (!(eps > 0)) fail("{}: eps must be positive, got {}", op, eps);
  const int64_t N = input.size(0), C = input.size(1), S = input.numel() / std::max<int64_t>(N * C, 1);
  const Shape channel{C};
  check_aux(op, input, weight, "weight", channel);
  check_aux(op, input, bias, "bias", channel);
  check_aux(op, input, running_mean, "running_mean", channel);
  check_aux(op, input, running_var, "running_var", channel);
  if (running_mean.defined() != running_var.defined())
    fail("{}: running_mean and running_var must both be given or both be omitted", op);
  if (!training && !running_mean.defined())
    fail("{}: evaluation mode needs running_mean and running_var (or pass training = true)", op);
  const int64_t M = N * S;  // values per channel
  if (training && M <= 1)
    fail("{}: expected more than 1 value per channel when training, got input of shape {}", op,
         shape_str(input.shape()));
  if (input.numel() == 0) return empty_like(input);

  Tensor x = input.detach().contiguous().view({N, C, S});
  Tensor mean, invstd;
  {
    NoGradGuard no_grad;
    if (training) {
      mean = empty_tensor(channel, x.dtype(), x.device());
      Tensor var = empty_tensor(channel, x.dtype(), x.device());
      batch_norm_stats_stub(x.device(), x, mean, var);
      invstd = rsqrt(var + eps);
      if (running_mean.defined()) {
        // The running variance estimates the population variance, hence Bessel's correction.
        Tensor rm = running_mean, rv = running_var;
        rm.mul_(1.0 - momentum).add_(mean, momentum);
        rv.mul_(1.0 - momentum).add_(var, momentum * static_cast<double>(M) / static_cast<double>(M - 1));
      }
    } else {
      mean = running_mean.detach().contiguous().clone();  // a snapshot: the buffers change later
      invstd = rsqrt(running_var.detach() + eps);
    }
  }
  Tensor w = raw(weight, channel), b = raw(bias, channel);
  Tensor out = empty_tensor(x.shape(), x.dtype(), x.device());
  batch_norm_apply_stub(x.device(), x, mean, invstd, w, b, out);
  out = out.view(input.shape());

  if (autograd::any_requires_grad({input, weight, bias})) {
    Shape in_shape = input.shape();
    autograd::record(
        op, {input, weight, bias}, out,
        [=, sx = SavedTensor(x), sw = SavedTensor(w), x_hist = SavedTensor(input),
         w_hist = SavedTensor(weight)](const BackwardArgs& a) {
          if (GradMode::is_enabled()) {  // create_graph
            const Tensor w3 = w_hist.defined() ? w_hist.unpack(op).view({1, C, 1}) : Tensor();
            NormGradients r = norm_gradients_recorded(x_hist.unpack(op).reshape({N, C, S}), w3,
                                                      a.grad().reshape({N, C, S}), {0, 2}, {0, 2}, training,
                                                      mean.view({1, C, 1}), invstd.view({1, C, 1}), eps);
            return Grads{r.input.view(in_shape), r.weight, r.bias};
          }
          Tensor xs = sx.unpack("batch_norm"), ws = sw.unpack("batch_norm");
          Tensor g = a.grad().contiguous().view(xs.shape());
          Tensor gi = new_like(a.needs(0), xs.shape(), xs);
          Tensor gw = new_like(a.needs(1), channel, xs);
          Tensor gb = new_like(a.needs(2), channel, xs);
          batch_norm_backward_stub(xs.device(), g, xs, mean, invstd, ws, training, gi, gw, gb);
          return Grads{gi.defined() ? gi.view(in_shape) : gi, gw, gb};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  if (any_bfloat16(input, weight, bias))  // statistics in float32, as PyTorch computes them
    return via_float32([&](const Tensor& x, const Tensor& w,
                           const Tensor& b) { return layer_norm(x, normalized_shape, w, b, eps); },
                       input, weight, bias);
  const char* op = "layer_norm";
  check_defined(op, input);
  if (!input.is_floating_point()) fail("{}: expected a floating input, got {}", op, input.dtype());
  if (!(eps > 0)) fail("{}: eps must be positive, got {}", op, eps);
  check_normalized_shape(op, input, normalized_shape);
  check_aux(op, input, weight, "weight", normalized_shape);
  check_aux(op, input, bias, "bias", normalized_shape);
  const int64_t N = shape_numel(normalized_shape);
  const int64_t M = N == 0 ? 0 : input.numel() / N;
  if (input.numel() == 0) return empty_like(input);

  Tensor x = input.detach().contiguous().view({M, N});
  Tensor w = raw(weight, {N}), b = raw(bias, {N});
  Tensor out = empty_tensor({M, N}, x.dtype(), x.device());
  Tensor mean = empty_tensor({M}, x.dtype(), x.device());
  Tensor rstd = empty_tensor({M}, x.dtype(), x.device());
  layer_norm_forward_stub(x.device(), x, w, b, eps, out, mean, rstd);
  out = out.view(input.shape());

  if (autograd::any_requires_grad({input, weight, bias})) {
    Shape in_shape = input.shape();
    autograd::record(
        op, {input, weight, bias}, out,
        [=, sx = SavedTensor(x), sw = SavedTensor(w), x_hist = SavedTensor(input),
         w_hist = SavedTensor(weight)](const BackwardArgs& a) {
          if (GradMode::is_enabled()) {  // create_graph
            const Tensor w2 = w_hist.defined() ? w_hist.unpack(op).reshape({1, N}) : Tensor();
            NormGradients r = norm_gradients_recorded(x_hist.unpack(op).reshape({M, N}), w2,
                                                      a.grad().reshape({M, N}), {1}, {0}, true, {}, {}, eps);
            return Grads{r.input.view(in_shape), r.weight.view(normalized_shape),
                         r.bias.view(normalized_shape)};
          }
          Tensor xs = sx.unpack("layer_norm"), ws = sw.unpack("layer_norm");
          Tensor g = a.grad().contiguous().view({M, N});
          Tensor gi = new_like(a.needs(0), {M, N}, xs);
          Tensor gw = new_like(a.needs(1), {N}, xs);
          Tensor gb = new_like(a.needs(2), {N}, xs);
          layer_norm_backward_stub(xs.device(), g, xs, mean, rstd, ws, gi, gw, gb);
          return Grads{gi.defined() ? gi.view(in_shape) : gi, gw.defined() ? gw.view(normalized_shape) : gw,
                       gb.defined() ? gb.view(normalized_shape) : gb};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  if (any_bfloat16(input, weight, bias))  // statistics and affine in float32, rounded once
    return via_float32([&](const Tensor& x, const Tensor& w,
                           const Tensor& b) { return group_norm(x, num_groups, w, b, eps); },
                       input, weight, bias);
  const char* op = "group_norm";
  check_defined(op, input);
  if (input.dim() < 2) fail("{}: expected input [N, C, *], got shape {}", op, shape_str(input.shape()));
  const int64_t N = input.size(0), C = input.size(1);
  if (num_groups <= 0 || C % num_groups != 0)
    fail("{}: num_groups = {} must be positive and divide the {} channels of input shape {}", op, num_groups,
         C, shape_str(input.shape()));
  check_aux(op, input, weight, "weight", {C});
  check_aux(op, input, bias, "bias", {C});
  if (!input.is_floating_point()) fail("{}: expected a floating input, got {}", op, input.dtype());
  if (!(eps > 0)) fail("{}: eps must be positive, got {}", op, eps);
  const int64_t G = num_groups, S = input.numel() / std::max<int64_t>(N * C, 1);
  if (input.numel() == 0) return empty_like(input);

  Tensor x = input.detach().contiguous().view({N, C, S});
  Tensor w = raw(weight, {C}), b = raw(bias, {C});
  Tensor out = empty_tensor({N, C, S}, x.dtype(), x.device());
  Tensor mean = empty_tensor({N, G}, x.dtype(), x.device());
  Tensor rstd = empty_tensor({N, G}, x.dtype(), x.device());
  group_norm_forward_stub(x.device(), x, G, w, b, eps, out, mean, rstd);
  out = out.view(input.shape());

  if (autograd::any_requires_grad({input, weight, bias})) {
    Shape in_shape = input.shape();
    autograd::record(
        op, {input, weight, bias}, out,
        [=, sx = SavedTensor(x), sw = SavedTensor(w), x_hist = SavedTensor(input),
         w_hist = SavedTensor(weight)](const BackwardArgs& a) {
          if (GradMode::is_enabled()) {  // create_graph: [N, G, C / G, S], statistics over dims 2 and 3
            const Shape grouped{N, G, C / G, S};
            const Tensor w4 = w_hist.defined() ? w_hist.unpack(op).reshape({1, G, C / G, 1}) : Tensor();
            NormGradients r =
                norm_gradients_recorded(x_hist.unpack(op).reshape(grouped), w4, a.grad().reshape(grouped),
                                        {2, 3}, {0, 3}, true, {}, {}, eps);
            return Grads{r.input.view(in_shape), r.weight.reshape({C}), r.bias.reshape({C})};
          }
          Tensor xs = sx.unpack(op), ws = sw.unpack(op);
          Tensor g = a.grad().contiguous().view({N, C, S});
          Tensor gi = new_like(a.needs(0), {N, C, S}, xs);
          Tensor gw = new_like(a.needs(1), {C}, xs);
          Tensor gb = new_like(a.needs(2), {C}, xs);
          group_norm_backward_stub(xs.device(), g, xs, G, mean, rstd, ws, gi, gw, gb);
          return Grads{gi.defined() ? gi.view(in_shape) : gi, gw, gb};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps) {
  if (any_bfloat16(input, weight))  // in float32 (eps too), rounded once, as PyTorch computes it
    return via_float32(
        [&](const Tensor& x, const Tensor& w) { return rms_norm(x, normalized_shape, w, eps); }, input,
        weight);
  const char* op = "rms_norm";
  check_defined(op, input);
  if (!input.is_floating_point()) fail("{}: expected a floating input, got {}", op, input.dtype());
  if (eps && !(*eps >= 0)) fail("{}: eps must be >= 0, got {}", op, *eps);
  check_normalized_shape(op, input, normalized_shape);
  check_aux(op, input, weight, "weight", normalized_shape);
  // the machine epsilon of the computing dtype when none is given (PyTorch's default)
  const double e = eps ? *eps
                       : (input.dtype() == DType::float64 ? std::numeric_limits<double>::epsilon()
                                                          : std::numeric_limits<float>::epsilon());
  Shape dims;
  for (int64_t d = input.dim() - static_cast<int64_t>(normalized_shape.size()); d < input.dim(); ++d)
    dims.push_back(d);
  Tensor y = input * rsqrt(square(input).mean(dims, /*keepdim=*/true) + e);
  return weight.defined() ? y * weight : y;
}

}  // namespace nn::functional
}  // namespace ember
