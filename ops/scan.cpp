// cumsum and logcumsumexp: running sums along one dim, through scan_stub.
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

Tensor cumsum(const Tensor& x, int64_t dim) {
  check_defined("cumsum", x);
  int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  Tensor out = scan_raw(ScanOp::sum, x, d);
  if (autograd::any_requires_grad({x})) {
    autograd::record("cumsum", {x}, out, [d](const BackwardArgs& a) {
      // x[k] appears in every out[j] with j >= k: its gradient is the reversed running sum.
      return Grads{scan_raw(ScanOp::sum, a.grad(), d, /*reverse=*/true)};
    });
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
