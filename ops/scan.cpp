// cumsum, cumprod and logcumsumexp: running sums and products along one dim, through scan_stub.
#include <cmath>

#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(scan_stub, ScanFn);
using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

Tensor scan_raw(ScanOp op, const Tensor& x, int64_t dim, bool reverse, bool exclusive) {
  int64_t d = wrap_dim(dim, x.dim(), "scan");
  if (x.dtype() == DType::bfloat16)  // accumulates in float32, rounds each output once
    return via_float32_raw([&](const Tensor& f) { return scan_raw(op, f, d, reverse, exclusive); }, x);
  // The kernel walks lanes of a contiguous [outer, n, inner] block (ops/cpu/lanes.h); a strided
  // input is packed once, as PyTorch's CPU scans do.
  Tensor in = x.is_contiguous() ? x : x.detach().contiguous();
  DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::int64;
  Tensor out = empty_tensor(x.shape(), out_dtype, x.device());
  if (out.numel() > 0) scan_stub(x.device(), op, out, in, d, reverse, exclusive);
  return out;
}

namespace {
// cumsum's gradient, the running sum from the end: x[k] appears in every out[j] with j >= k. The two
// are adjoint, so under create_graph each is recorded with the other as its gradient.
Tensor reverse_cumsum(const Tensor& g, int64_t d) {
  Tensor out = scan_raw(ScanOp::sum, g, d, /*reverse=*/true);
  record_linear("cumsum_backward", g, out, [d](const Tensor& u) { return cumsum(u, d); });
  return out;
}
}  // namespace

Tensor cumsum(const Tensor& x, int64_t dim) {
  check_defined("cumsum", x);
  int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  Tensor out = scan_raw(ScanOp::sum, x, d);
  if (autograd::any_requires_grad({x})) {
    autograd::record(
        "cumsum", {x}, out, [d](const BackwardArgs& a) { return Grads{reverse_cumsum(a.grad(), d)}; },
        autograd::DoubleBackward::supported);
  }
  return out;
}

namespace {

// The gradient of y = cumprod(x) along d, for output gradient g:
//   grad[i] = sum_{j>=i} g[j] prod_{k<=j, k!=i} x[k].
// Without zeros, prod_{k<=j, k!=i} x[k] = y[j] / x[i], so grad = reverse_cumsum(g y) / x. With
// z1 < z2 the first two zeros of a lane (z2 = n when there is one zero):
//   i <  z1: every term with j >= z1 has the factor x[z1] = 0, so the same formula holds with
//            g y masked to j < z1 (the mask keeps an infinite g[j] from making 0 * inf = NaN),
//            and x[i] != 0 there;
//   i == z1: the terms j >= z2 have the factor x[z2] = 0; for z1 <= j < z2 the product without
//            x[z1] is the cumprod of x with x[z1] replaced by 1, so grad[z1] is the reverse cumsum
//            of g times that cumprod, masked to j < z2 -- no division;
//   i >  z1: every term has the factor x[z1] = 0 (k = z1 != i, z1 < i <= j): 0.
// The masks come from the running count of zeros. This is PyTorch's cumprod_backward (first order),
// with the same one host sync to take the zero-free path.
Tensor cumprod_backward(const Tensor& g, const Tensor& x, const Tensor& y, int64_t d) {
  if (x.numel() <= 1 || x.size(d) == 1) return g;  // y = x
  auto reverse_cumsum = [d](const Tensor& t) { return scan_raw(ScanOp::sum, t, d, /*reverse=*/true); };
  Tensor is_zero = x == 0.0;
  if (!is_zero.any().item<bool>()) return reverse_cumsum(g * y) / x;
  Tensor zeros_so_far = scan_raw(ScanOp::sum, is_zero, d);
  Tensor before_first = zeros_so_far == 0.0;   // i < z1
  Tensor before_second = zeros_so_far == 1.0;  // z1 <= i < z2
  Tensor first = is_zero && before_second;     // i == z1
  Tensor grad_before = reverse_cumsum(where(before_first, g * y, 0.0)) / x;
  Tensor y_without_first = scan_raw(ScanOp::prod, where(first, 1.0, x), d);
  Tensor grad_first = reverse_cumsum(where(before_second, g * y_without_first, 0.0));
  return where(before_first, grad_before, where(first, grad_first, 0.0));
}

}  // namespace

Tensor cumprod(const Tensor& x, int64_t dim) {
  check_defined("cumprod", x);
  int64_t d = wrap_dim(dim, x.dim(), "cumprod");
  // float32 forward and backward, one rounding each way (the casts are differentiable)
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return cumprod(f, d); }, x);
  Tensor out = scan_raw(ScanOp::prod, x, d);
  if (autograd::any_requires_grad({x})) {
    auto backward = [d, sx = SavedTensor(x), sy = SavedTensor(out)](const BackwardArgs& a) {
      return Grads{cumprod_backward(a.grad(), sx.unpack("cumprod"), sy.unpack("cumprod"), d)};
    };
    autograd::record("cumprod", {x}, out, backward);
  }
  return out;
}

Tensor logcumsumexp(const Tensor& x, int64_t dim) {
  check_defined("logcumsumexp", x);
  if (!is_floating(x.dtype()))
    fail("logcumsumexp: input dtype {} is not floating point; convert with .to(kFloat32) first", x.dtype());
  int64_t d = wrap_dim(dim, x.dim(), "logcumsumexp");
  Tensor out = scan_raw(ScanOp::logsumexp, x, d);
  if (autograd::any_requires_grad({x})) {
    auto backward = [d, sx = SavedTensor(x), sy = SavedTensor(out)](const BackwardArgs& a) {
      // d y[j] / d x[k] = exp(x[k] - y[j]) for k <= j, so
      //   grad[k] = sum_{j>=k} g[j] exp(x[k] - y[j])
      //           = exp(x[k] + log sum_{j>=k} exp(log g[j] - y[j])).
      // The reversed log-sum-exp scan keeps that finite where exp(-y[j]) alone would
      // overflow. log needs g > 0, so the positive and negative parts of g go separately (as
      // in PyTorch and TensorFlow); log(0) = -inf simply drops the other part's entries.
      Tensor x = sx.unpack("logcumsumexp"), y = sy.unpack("logcumsumexp"), g = a.grad();
      auto part = [&](const Tensor& g_part) {
        Tensor log_g = log(clamp_min(g_part, 0.0));
        return exp(scan_raw(ScanOp::logsumexp, log_g - y, d, /*reverse=*/true) + x);
      };
      return Grads{part(g) - part(-g)};
    };
    autograd::record("logcumsumexp", {x}, out, backward);
  }
  return out;
}

}  // namespace ember
