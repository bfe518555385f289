// conv2d: argument checks, the kernel call, and the backward, whose two halves are ops of their
// own (the kernels are in ops/cpu/conv.cpp).
#include "ops/kernels/conv.h"

#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/linalg.h"

namespace ember {

EMBER_DEFINE_STUB(conv2d_forward_stub, Conv2dForwardFn);
EMBER_DEFINE_STUB(conv2d_backward_input_stub, Conv2dBackwardInputFn);
EMBER_DEFINE_STUB(conv2d_backward_weight_stub, Conv2dBackwardWeightFn);

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

std::string pair_str(std::array<int64_t, 2> v) { return fmt::format("[{},{}]", v[0], v[1]); }

// The checks conv2d and conv_transpose2d share, before their channel rules: the ranks (`layout`
// names the weight's dims) and the arguments that must be positive or non-negative.
void check_conv_shapes(const char* op, const char* layout, const Tensor& x, const Tensor& w,
                       const Conv2dParams& p) {
  if (x.dim() != 4)
    fail("{}: expected input [N,C,H,W] (or unbatched [C,H,W]), got shape {}", op, shape_str(x.shape()));
  if (w.dim() != 4) fail("{}: expected weight {}, got shape {}", op, layout, shape_str(w.shape()));
  if (p.groups < 1) fail("{}: groups must be positive, got {}", op, p.groups);
  if (p.stride[0] < 1 || p.stride[1] < 1) fail("{}: stride must be positive, got {}", op, pair_str(p.stride));
  if (p.dilation[0] < 1 || p.dilation[1] < 1)
    fail("{}: dilation must be positive, got {}", op, pair_str(p.dilation));
  if (p.padding[0] < 0 || p.padding[1] < 0)
    fail("{}: padding must be non-negative, got {}", op, pair_str(p.padding));
  if (w.size(2) < 1 || w.size(3) < 1)
    fail("{}: kernel size must be positive, got weight {}", op, shape_str(w.shape()));
}

// ... and after them: the bias's size, one floating dtype, one device.
void check_conv_operands(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                         int64_t out_channels) {
  if (b.defined() && (b.dim() != 1 || b.size(0) != out_channels))
    fail("{}: bias must have shape [{}] (out_channels), got {}", op, out_channels, shape_str(b.shape()));
  if (x.dtype() != w.dtype() || (b.defined() && b.dtype() != x.dtype()))
    fail("{}: dtype mismatch: input {}, weight {}{}", op, x.dtype(), w.dtype(),
         b.defined() ? fmt::format(", bias {}", b.dtype()) : "");
  if (!is_floating(x.dtype())) fail("{}: expected floating-point tensors, got {}", op, x.dtype());
  check_same_device(op, {x, w, b});
}

void check_conv_args(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  check_conv_shapes("conv2d", "[out_channels, in_channels/groups, kH, kW]", x, w, p);
  if (x.size(1) != w.size(1) * p.groups)
    fail("conv2d: input {} has {} channels, but weight {} with groups={} expects {}", shape_str(x.shape()),
         x.size(1), shape_str(w.shape()), p.groups, w.size(1) * p.groups);
  if (w.size(0) % p.groups != 0)
    fail("conv2d: out_channels ({}) must be divisible by groups ({})", w.size(0), p.groups);
  for (int d = 0; d < 2; ++d) {
    int64_t in = x.size(2 + d) + 2 * p.padding[d], kernel = p.dilation[d] * (w.size(2 + d) - 1) + 1;
    if (in < kernel)
      fail("conv2d: input {} padded by {} is smaller than the kernel {} dilated by {} (size {} in dim {})",
           shape_str(x.shape()), pair_str(p.padding), shape_str({w.size(2), w.size(3)}), pair_str(p.dilation),
           kernel, 2 + d);
  }
  check_conv_operands("conv2d", x, w, b, w.size(0));
}

Tensor conv2d_with(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  return conv2d(x, w, Tensor(), p.stride, p.padding, p.dilation, p.groups);
}

// conv2d's two adjoints, as ops of their own. With y = conv2d(x, w), both bilinear:
//   input_grad(g, w)  = dL/dx = the adjoint of x -> conv2d(x, w), applied to g;
//   weight_grad(x, g) = dL/dw = the adjoint of w -> conv2d(x, w), applied to g.
// Each one's derivatives are the other two ops again (from <input_grad(g, w), u> = <g, conv2d(u, w)>
// and <weight_grad(x, g), v> = <g, conv2d(x, v)>), so recording them makes conv2d differentiable
// to any order. Unrecorded (the usual backward) each is one kernel call.
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& g, const Shape& w_shape, const Conv2dParams& p);

// One of the two backward kernels, `kernel(out, g, other)` with `other` the weight (input
// gradient) or the input (weight gradient), into a new tensor of `shape`. The kernels overwrite
// their output; with an empty operand the gradient is all zeros.
Tensor run_backward_kernel(DispatchStub<Conv2dBackwardInputFn>& kernel, const Shape& shape, const Tensor& g,
                           const Tensor& other, const Conv2dParams& p) {
  if (shape_numel(shape) == 0 || other.numel() == 0 || g.numel() == 0) return zeros(shape, g.options());
  Tensor out = empty_tensor(shape, g.dtype(), g.device());
  kernel(g.device(), out, contiguous_raw(g), contiguous_raw(other), p);
  return out;
}

Tensor conv2d_input_grad(const Tensor& g, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  Tensor dx = run_backward_kernel(conv2d_backward_input_stub, x_shape, g, w, p);
  if (autograd::any_requires_grad({g, w})) {
    autograd::record(
        "conv2d_input_grad", {g, w}, dx,
        [sg = SavedTensor(g), sw = SavedTensor(w), w_shape = w.shape(), p](const BackwardArgs& a) {
          const Tensor& u = a.grad();
          return Grads{
              a.needs(0) ? conv2d_with(u, sw.unpack("conv2d_input_grad"), p) : Tensor(),
              a.needs(1) ? conv2d_weight_grad(u, sg.unpack("conv2d_input_grad"), w_shape, p) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return dx;
}

Tensor conv2d_weight_grad(const Tensor& x, const Tensor& g, const Shape& w_shape, const Conv2dParams& p) {
  Tensor dw = run_backward_kernel(conv2d_backward_weight_stub, w_shape, g, x, p);
  if (autograd::any_requires_grad({x, g})) {
    autograd::record(
        "conv2d_weight_grad", {x, g}, dw,
        [sx = SavedTensor(x), sg = SavedTensor(g), x_shape = x.shape(), p](const BackwardArgs& a) {
          const Tensor& v = a.grad();
          return Grads{
              a.needs(0) ? conv2d_input_grad(sg.unpack("conv2d_weight_grad"), v, x_shape, p) : Tensor(),
              a.needs(1) ? conv2d_with(sx.unpack("conv2d_weight_grad"), v, p) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return dw;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, std::array<int64_t, 2> stride,
              std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation, int64_t groups) {
  if (any_bfloat16(x, w, b))  // float32 accumulation, rounded output
    return via_float32(
        [&](const Tensor& xf, const Tensor& wf, const Tensor& bf) {
          return conv2d(xf, wf, bf, stride, padding, dilation, groups);
        },
        x, w, b);
  check_defined("conv2d", x, "input");
  check_defined("conv2d", w, "weight");
  if (x.dim() == 3) return conv2d(x.unsqueeze(0), w, b, stride, padding, dilation, groups).squeeze(0);
  const Conv2dParams p{stride, padding, dilation, groups};
  check_conv_args(x, w, b, p);

  const Tensor xc = contiguous_raw(x), wc = contiguous_raw(w),
               bc = b.defined() ? contiguous_raw(b) : Tensor();
  const Shape out_shape{x.size(0), w.size(0),
                        conv2d_output_size(x.size(2), w.size(2), stride[0], padding[0], dilation[0]),
                        conv2d_output_size(x.size(3), w.size(3), stride[1], padding[1], dilation[1])};
  Tensor out = empty_tensor(out_shape, x.dtype(), x.device());
  if (out.numel() > 0) {
    if (w.numel() > 0) {
      conv2d_forward_stub(x.device(), out, xc, wc, bc, p);
    } else {  // zero input channels: every output is just the bias
      copy_into(out, b.defined() ? bc.view({-1, 1, 1}) : zeros({}, x.options()));
    }
  }

  if (autograd::any_requires_grad({x, w, b})) {
    // xc and wc are x and w themselves when contiguous; otherwise packed copies, which have no
    // history, so a recorded backward (create_graph) takes the originals.
    autograd::record(
        "conv2d", {x, w, b}, out,
        [sx = SavedTensor(xc), sw = SavedTensor(wc), x_hist = SavedTensor(x), w_hist = SavedTensor(w),
         p](const BackwardArgs& a) {
          const bool recording = GradMode::is_enabled();
          Tensor xv = (recording ? x_hist : sx).unpack("conv2d"),
                 wv = (recording ? w_hist : sw).unpack("conv2d");
          // (packed once for both halves; a recorded pass keeps the gradient's own history)
          const Tensor g = recording ? a.grad() : contiguous_raw(a.grad());
          return Grads{a.needs(0) ? conv2d_input_grad(g, wv, xv.shape(), p) : Tensor(),
                       a.needs(1) ? conv2d_weight_grad(xv, g, wv.shape(), p) : Tensor(),
                       a.needs(2) ? g.sum({0, 2, 3}) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

// conv_transpose2d is conv2d's input gradient made public: y = conv_transpose2d(x, w) is the adjoint
// of u -> conv2d(u, w) applied to x, so its weight layout [C_in, C_out/groups, kH, kW] is conv2d's
// [out_channels, in_channels/groups, kH, kW] read the other way round, and its backward (and every
// higher derivative) is conv2d's adjoint pair again.
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, std::array<int64_t, 2> stride,
                        std::array<int64_t, 2> padding, std::array<int64_t, 2> output_padding, int64_t groups,
                        std::array<int64_t, 2> dilation) {
  if (any_bfloat16(x, w, b))  // float32 accumulation, rounded output
    return via_float32(
        [&](const Tensor& xf, const Tensor& wf, const Tensor& bf) {
          return conv_transpose2d(xf, wf, bf, stride, padding, output_padding, groups, dilation);
        },
        x, w, b);
  constexpr const char* op = "conv_transpose2d";
  check_defined(op, x, "input");
  check_defined(op, w, "weight");
  if (x.dim() == 3)
    return conv_transpose2d(x.unsqueeze(0), w, b, stride, padding, output_padding, groups, dilation)
        .squeeze(0);
  const Conv2dParams p{stride, padding, dilation, groups};
  check_conv_shapes(op, "[in_channels, out_channels/groups, kH, kW]", x, w, p);
  for (int d = 0; d < 2; ++d)
    if (output_padding[d] < 0 || output_padding[d] >= std::max(stride[d], dilation[d]))
      fail("{}: output_padding {} must be non-negative and smaller than stride {} or dilation {}", op,
           pair_str(output_padding), pair_str(stride), pair_str(dilation));
  if (x.size(1) != w.size(0))
    fail("{}: input {} has {} channels, but weight {} expects {} (its first dim)", op, shape_str(x.shape()),
         x.size(1), shape_str(w.shape()), w.size(0));
  if (w.size(0) % groups != 0)
    fail("{}: in_channels ({}) must be divisible by groups ({})", op, w.size(0), groups);
  const int64_t out_channels = w.size(1) * groups;
  check_conv_operands(op, x, w, b, out_channels);

  Shape out_shape{x.size(0), out_channels, 0, 0};
  for (int d = 0; d < 2; ++d) {
    out_shape[2 + d] = (x.size(2 + d) - 1) * stride[d] - 2 * padding[d] + dilation[d] * (w.size(2 + d) - 1) +
                       output_padding[d] + 1;
    if (out_shape[2 + d] < 1)
      fail("{}: input {} with stride {}, padding {} and kernel {} gives an empty output (size {} in dim {})",
           op, shape_str(x.shape()), pair_str(stride), pair_str(padding), shape_str({w.size(2), w.size(3)}),
           out_shape[2 + d], 2 + d);
  }
  // An output_padding of at least the stride (allowed when the dilation is larger) adds output rows
  // that a conv2d of the output would map past x's last row: that row is zeros in the adjoint.
  Tensor g = x;
  for (int d = 0; d < 2; ++d) {
    const int64_t rows =
        conv2d_output_size(out_shape[2 + d], w.size(2 + d), stride[d], padding[d], dilation[d]);
    if (rows > g.size(2 + d)) {
      Shape tail = g.shape();
      tail[2 + d] = rows - g.size(2 + d);
      g = cat({g, zeros(tail, g.options())}, 2 + d);
    }
  }
  Tensor y = conv2d_input_grad(g, w, out_shape, p);
  return b.defined() ? y + b.view({1, out_channels, 1, 1}) : y;
}

}  // namespace ember
