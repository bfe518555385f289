// cumsum, cumprod and logcumsumexp: running sums and products along one dim, through scan_stub.
#include <cmath>
#include <limits>

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
Tensor cumprod_backward_masked(const Tensor& g, const Tensor& x, const Tensor& y, const Tensor& is_zero,
                               int64_t d) {
  Tensor zeros_so_far = scan_raw(ScanOp::sum, is_zero, d);
  Tensor before_first = zeros_so_far == 0.0;   // i < z1
  Tensor before_second = zeros_so_far == 1.0;  // z1 <= i < z2
  Tensor first = is_zero && before_second;     // i == z1
  Tensor grad_before = reverse_cumsum(where(before_first, g * y, 0.0), d) / x;
  Tensor y_without_first = scan_raw(ScanOp::prod, where(first, 1.0, x), d);
  Tensor grad_first = reverse_cumsum(where(before_second, g * y_without_first, 0.0), d);
  return where(before_first, grad_before, where(first, grad_first, 0.0));
}

// The same gradient where it must differentiate again (create_graph) and x has zeros. The masks
// above hold only at the zeros themselves: the terms they drop are products containing x[z1],
// zero in value but not in their derivative by x[z1]. So this writes the sum out in recorded ops,
//   grad[i] = prod_{k<i} x[k] (g[i] + sum_{j>i} g[j] prod_{i<k<=j} x[k]),
// one position of the lanes at a time: O(n^2) work, as PyTorch does in this case.
Tensor cumprod_backward_recorded_with_zeros(const Tensor& g, const Tensor& x, int64_t d) {
  const int64_t n = x.size(d);
  std::vector<Tensor> positions;
  positions.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Tensor grad_i = g.narrow(d, i, 1);
    if (i + 1 < n) {
      Tensor later = cumprod(x.narrow(d, i + 1, n - i - 1), d);  // prod_{i<k<=j} x[k], j > i
      grad_i = grad_i + sum(g.narrow(d, i + 1, n - i - 1) * later, {d}, /*keepdim=*/true);
    }
    if (i > 0) grad_i = grad_i * prod(x.narrow(d, 0, i), d, /*keepdim=*/true);
    positions.push_back(grad_i);
  }
  return cat(positions, d);
}

Tensor cumprod_backward(const Tensor& g, const Tensor& x, const Tensor& y, int64_t d) {
  if (x.numel() <= 1 || x.size(d) == 1) return g;  // y = x
  Tensor is_zero = x == 0.0;
  if (!is_zero.any().item<bool>()) return reverse_cumsum(g * y, d) / x;  // recorded ops throughout
  if (GradMode::is_enabled()) return cumprod_backward_recorded_with_zeros(g, x, d);
  return cumprod_backward_masked(g, x, y, is_zero, d);
}

}  // namespace

Tensor cumprod(const Tensor& x, int64_t dim) {
  check_defined("cumprod", x);
  int64_t d = wrap_dim(dim, x.dim(), "cumprod");
  // float32 forward and backward, one rounding each way (the casts are differentiable)
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return cumprod(f, d); }, x);
  Tensor out = scan_raw(ScanOp::prod, x, d);
  if (autograd::any_requires_grad({x})) {
    auto backward = [d, sx = SavedTensor(x), sy = SavedTensor::output(out)](const BackwardArgs& a) {
      return Grads{cumprod_backward(a.grad(), sx.unpack("cumprod"), sy.unpack("cumprod"), d)};
    };
    autograd::record("cumprod", {x}, out, backward, autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor exclusive_cumprod(const Tensor& x, int64_t d, bool reverse) {
  const int64_t n = x.size(d);
  if (!GradMode::is_enabled() || n == 0) return scan_raw(ScanOp::prod, x, d, reverse, /*exclusive=*/true);
  Tensor one = ones_like(x.narrow(d, 0, 1));
  if (!reverse) return cumprod(cat({one, x.narrow(d, 0, n - 1)}, d), d);
  return flip(cumprod(flip(cat({x.narrow(d, 1, n - 1), one}, d), {d}), d), {d});
}

namespace {

// The most negative finite value of a floating dtype: logcumsumexp's backward takes it for log(0),
// so that it and the differences it enters stay finite (-inf - -inf would be NaN), derivatives
// included.
double lowest_finite(DType dtype) {
  switch (dtype) {
    case DType::float64:
      return std::numeric_limits<double>::lowest();
    case DType::bfloat16:
      return -3.3895313892515355e38;  // 0xff7f
    default:
      return std::numeric_limits<float>::lowest();
  }
}

Tensor logcumsumexp_along(const Tensor& x, int64_t d, bool reverse);

// The gradient of y = logcumsumexp(x) along d (from the end when `reverse`): d y[j] / d x[k] =
// exp(x[k] - y[j]) for k <= j (k >= j), so
//   grad[k] = sum_{j>=k} g[j] exp(x[k] - y[j]) = exp(x[k] + log sum_{j>=k} exp(log g[j] - y[j])),
// a logcumsumexp in the other direction, which keeps it finite where exp(-y[j]) alone would
// overflow. log needs g > 0, so the positive and negative parts of g go separately (as in
// PyTorch and TensorFlow). Recorded ops throughout, the other direction's scan included, so the
// gradient differentiates again.
Tensor logcumsumexp_backward(const Tensor& g, const Tensor& x, const Tensor& y, int64_t d, bool reverse) {
  const double log_zero = lowest_finite(g.dtype());
  auto part = [&](const Tensor& g_part) {
    Tensor positive = g_part > 0.0;
    // the inner where keeps log's derivative finite where the outer one drops its value
    Tensor log_g = where(positive, log(where(positive, g_part, 1.0)), log_zero);
    return exp(logcumsumexp_along(log_g - y, d, !reverse) + x);
  };
  return part(g) - part(-g);
}

Tensor logcumsumexp_along(const Tensor& x, int64_t d, bool reverse) {
  Tensor out = scan_raw(ScanOp::logsumexp, x, d, reverse);
  if (autograd::any_requires_grad({x})) {
    auto backward = [d, reverse, sx = SavedTensor(x), sy = SavedTensor::output(out)](const BackwardArgs& a) {
      return Grads{
          logcumsumexp_backward(a.grad(), sx.unpack("logcumsumexp"), sy.unpack("logcumsumexp"), d, reverse)};
    };
    autograd::record("logcumsumexp", {x}, out, backward, autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace

Tensor logcumsumexp(const Tensor& x, int64_t dim) {
  check_defined("logcumsumexp", x);
  if (!is_floating(x.dtype()))
    fail("logcumsumexp: input dtype {} is not floating point; convert with .to(kFloat32) first", x.dtype());
  return logcumsumexp_along(x, wrap_dim(dim, x.dim(), "logcumsumexp"), /*reverse=*/false);
}

}  // namespace ember
