// max_pool2d, avg_pool2d, adaptive_avg_pool2d: argument checks, kernel calls and backward.
// Inputs are [N,C,H,W] or unbatched [C,H,W]; kernels see them as a stack of [H,W] planes.
#include "ops/kernels/pool.h"

#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/linalg.h"

namespace ember {

EMBER_DEFINE_STUB(max_pool2d_stub, MaxPool2dFn);
EMBER_DEFINE_STUB(max_pool2d_backward_stub, MaxPool2dBackwardFn);
EMBER_DEFINE_STUB(avg_pool2d_stub, AvgPool2dFn);
EMBER_DEFINE_STUB(avg_pool2d_backward_stub, AvgPool2dBackwardFn);
EMBER_DEFINE_STUB(adaptive_avg_pool2d_stub, AdaptiveAvgPool2dFn);
EMBER_DEFINE_STUB(adaptive_avg_pool2d_backward_stub, AdaptiveAvgPool2dBackwardFn);

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

std::string pair_str(std::array<int64_t, 2> v) { return fmt::format("[{},{}]", v[0], v[1]); }

// What every pool needs to know about its input: the planes view and the output shape.
struct PoolInput {
  Tensor planes;  // contiguous [P, H, W]
  Shape lead;     // the dims in front of H, W ([N, C] or [C])
  Shape out_shape(int64_t oh, int64_t ow) const {
    Shape s = lead;
    s.push_back(oh);
    s.push_back(ow);
    return s;
  }
};

PoolInput pool_input(const char* op, const Tensor& x, bool floating_only) {
  check_defined(op, x);
  if (x.dim() != 3 && x.dim() != 4)
    fail("{}: expected input [N,C,H,W] or [C,H,W], got shape {}", op, shape_str(x.shape()));
  if (x.dtype() == DType::boolean || (floating_only && !is_floating(x.dtype())))
    fail("{}: expected a {} tensor, got {}", op, floating_only ? "floating-point" : "numeric", x.dtype());
  Shape lead(x.shape().begin(), x.shape().end() - 2);
  const Tensor xc = contiguous_raw(x);
  return {xc.view({shape_numel(lead), x.size(-2), x.size(-1)}), lead};
}

// Validates kernel/stride/padding (stride 0 = the kernel size) and returns them with the output size.
Pool2dParams pool_params(const char* op, const Tensor& x, std::array<int64_t, 2> kernel,
                         std::array<int64_t, 2> stride, std::array<int64_t, 2> padding, int64_t* oh,
                         int64_t* ow) {
  Pool2dParams p{kernel, stride, padding};
  for (int d = 0; d < 2; ++d) {
    if (kernel[d] < 1) fail("{}: kernel size must be positive, got {}", op, pair_str(kernel));
    if (stride[d] < 0)
      fail("{}: stride must be positive (or 0 for the kernel size), got {}", op, pair_str(stride));
    if (stride[d] == 0) p.stride[d] = kernel[d];
    if (padding[d] < 0 || 2 * padding[d] > kernel[d])
      fail("{}: padding {} must be non-negative and at most half the kernel size {}", op, pair_str(padding),
           pair_str(kernel));
    if (x.size(x.dim() - 2 + d) + 2 * padding[d] < kernel[d])
      fail("{}: input {} padded by {} is smaller than the kernel {}", op, shape_str(x.shape()),
           pair_str(padding), pair_str(kernel));
  }
  *oh = (x.size(-2) + 2 * p.padding[0] - kernel[0]) / p.stride[0] + 1;
  *ow = (x.size(-1) + 2 * p.padding[1] - kernel[1]) / p.stride[1] + 1;
  return p;
}

// An average pool's backward, `kernel(dx, g)` on [P, H, W] planes. It is linear in the gradient and
// its adjoint is the pool itself, with which it is recorded (create_graph): pooling differentiates
// to any order.
template <class Kernel, class Pool>
Tensor avg_pool_backward(const char* name, const Tensor& grad, const Shape& plane_shape, const Shape& x_shape,
                         Kernel kernel, Pool pool) {
  Tensor g = contiguous_raw(grad);
  g = g.view({plane_shape[0], g.size(-2), g.size(-1)});
  Tensor dx = empty_tensor(x_shape, g.dtype(), g.device());
  if (dx.numel() > 0) kernel(dx.view(plane_shape), g);
  record_linear(name, grad, dx, pool);
  return dx;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding) {
  if (is_bfloat16(x))
    return via_float32([&](const Tensor& f) { return max_pool2d(f, kernel, stride, padding); }, x);
  PoolInput in = pool_input("max_pool2d", x, false);
  int64_t oh, ow;
  const Pool2dParams p = pool_params("max_pool2d", x, kernel, stride, padding, &oh, &ow);
  const int64_t planes = in.planes.size(0);
  Tensor out = empty_tensor({planes, oh, ow}, x.dtype(), x.device());
  Tensor indices = empty_tensor({planes, oh, ow}, DType::int64, x.device());
  if (out.numel() > 0) max_pool2d_stub(x.device(), out, indices, in.planes, p);
  out = out.view(in.out_shape(oh, ow));

  if (autograd::any_requires_grad({x})) {
    // Only the argmax positions are needed for the backward, not the input itself.
    autograd::record(
        "max_pool2d", {x}, out,
        [indices, plane_shape = in.planes.shape(), x_shape = x.shape()](const BackwardArgs& a) {
          if (GradMode::is_enabled()) {  // create_graph: the same sum into the argmax positions, recorded
            const int64_t planes = plane_shape[0];
            Tensor flat = zeros({planes, plane_shape[1] * plane_shape[2]}, a.grad().options());
            return Grads{scatter_add(flat, 1, indices.view({planes, -1}), a.grad().reshape({planes, -1}))
                             .view(x_shape)};
          }
          Tensor g = contiguous_raw(a.grad()).view(indices.shape());
          Tensor dx = empty_tensor(plane_shape, g.dtype(), g.device());
          if (dx.numel() > 0) max_pool2d_backward_stub(g.device(), dx, g, indices);
          return Grads{dx.view(x_shape)};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding) {
  if (is_bfloat16(x))
    return via_float32([&](const Tensor& f) { return avg_pool2d(f, kernel, stride, padding); }, x);
  PoolInput in = pool_input("avg_pool2d", x, true);
  int64_t oh, ow;
  const Pool2dParams p = pool_params("avg_pool2d", x, kernel, stride, padding, &oh, &ow);
  Tensor out = empty_tensor({in.planes.size(0), oh, ow}, x.dtype(), x.device());
  if (out.numel() > 0) avg_pool2d_stub(x.device(), out, in.planes, p);
  out = out.view(in.out_shape(oh, ow));

  if (autograd::any_requires_grad({x})) {
    autograd::record(
        "avg_pool2d", {x}, out,
        [p, plane_shape = in.planes.shape(), x_shape = x.shape()](const BackwardArgs& a) {
          return Grads{avg_pool_backward(
              "avg_pool2d_backward", a.grad(), plane_shape, x_shape,
              [p](const Tensor& dx, const Tensor& g) { avg_pool2d_backward_stub(g.device(), dx, g, p); },
              [p](const Tensor& u) { return avg_pool2d(u, p.kernel, p.stride, p.padding); })};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  if (is_bfloat16(x))
    return via_float32([&](const Tensor& f) { return adaptive_avg_pool2d(f, output_size); }, x);
  PoolInput in = pool_input("adaptive_avg_pool2d", x, true);
  if (output_size[0] < 1 || output_size[1] < 1)
    fail("adaptive_avg_pool2d: output size must be positive, got {}", pair_str(output_size));
  if (x.size(-2) < 1 || x.size(-1) < 1)
    fail("adaptive_avg_pool2d: input {} has an empty spatial dim", shape_str(x.shape()));
  const auto [oh, ow] = output_size;
  Tensor out = empty_tensor({in.planes.size(0), oh, ow}, x.dtype(), x.device());
  if (out.numel() > 0) adaptive_avg_pool2d_stub(x.device(), out, in.planes);
  out = out.view(in.out_shape(oh, ow));

  if (autograd::any_requires_grad({x})) {
    autograd::record(
        "adaptive_avg_pool2d", {x}, out,
        [output_size, plane_shape = in.planes.shape(), x_shape = x.shape()](const BackwardArgs& a) {
          return Grads{avg_pool_backward(
              "adaptive_avg_pool2d_backward", a.grad(), plane_shape, x_shape,
              [](const Tensor& dx, const Tensor& g) { adaptive_avg_pool2d_backward_stub(g.device(), dx, g); },
              [output_size](const Tensor& u) { return adaptive_avg_pool2d(u, output_size); })};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace ember
