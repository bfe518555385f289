// logsumexp, var, std and norm. Each forward is a few reductions and elementwise ops run on the
// detached input; each records one node whose backward is the closed-form derivative, instead
// of letting autograd retrace (and keep alive) every intermediate of the forward.
#include <cmath>

#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// Number of elements that each output of a reduction over `mask` combines.
int64_t reduced_count(const Tensor& x, const std::vector<bool>& mask) {
  int64_t count = 1;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.size(d);
  return count;
}

}  // namespace

// ---- logsumexp ----

Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim) {
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return logsumexp(f, dims, keepdim); }, x);
  check_floating("logsumexp", x);
  const auto mask = dims_mask(dims, x.dim(), "logsumexp");
  const Shape kshape = reduced_shape(x.shape(), mask, true);
  Tensor xd = x.detach(), out_keep;
  if (x.numel() == 0) {
    out_keep = full(kshape, -INFINITY, x.options());  // log of an empty sum
  } else {
    // log sum exp(x) = m + log sum exp(x - m) with m the max, so exp never overflows. An infinite
    // max (a lane of all -inf, or one holding +inf) is replaced by 0, which keeps x - m from
    // computing inf - inf: such a lane then gives log(0) = -inf or log(inf) = inf, as it should.
    Tensor m = amax(xd, dims, true);
    m = where(isinf(m), 0.0, m);
    out_keep = log(sum(exp(xd - m), dims, true)) + m;
  }
  Tensor out = keepdim ? out_keep : out_keep.view(reduced_shape(x.shape(), mask, false));
  if (autograd::any_requires_grad({x})) {
    auto backward = [kshape, dims, sx = SavedTensor(x), so = SavedTensor(out_keep)](const BackwardArgs& a) {
      // d/dx_i log sum_j exp(x_j) = exp(x_i - out): the softmax of the lane. The saved result has
      // no history; a recorded backward (create_graph) recomputes it from x, which has.
      Tensor x = sx.unpack("logsumexp");
      Tensor lse = GradMode::is_enabled() ? logsumexp(x, dims, true) : so.unpack("logsumexp");
      return Grads{a.grad().reshape(kshape) * exp(x - lse)};
    };
    autograd::record("logsumexp", {x}, out, backward, autograd::DoubleBackward::supported);
  }
  return out;
}

// ---- var and std ----

namespace {

// var = sum((x - mean)^2) / (N - correction), from the centred values (the two-pass formula: it
// does not lose precision the way E[x^2] - E[x]^2 does when the mean is large). Like PyTorch, a
// divisor N - correction <= 0 is clamped to 0, so the result is inf or NaN rather than negative.
Tensor variance(const char* name, const Tensor& x, const Shape& dims, int64_t correction, bool keepdim,
                bool take_sqrt) {
  if (is_bfloat16(x))  // accumulates in float32, rounds once
    return via_float32(
        [&](const Tensor& f) { return variance(name, f, dims, correction, keepdim, take_sqrt); }, x);
  check_floating(name, x);
  const auto mask = dims_mask(dims, x.dim(), name);
  const Shape kshape = reduced_shape(x.shape(), mask, true);
  const double divisor = static_cast<double>(std::max<int64_t>(0, reduced_count(x, mask) - correction));
  Tensor xd = x.detach();
  Tensor centred = xd - mean(xd, dims, true);
  Tensor out = sum(square(centred), dims, keepdim) / divisor;
  if (take_sqrt) out = sqrt(out);
  if (autograd::any_requires_grad({x})) {
    auto backward = [name, dims, kshape, divisor, take_sqrt, sc = SavedTensor(centred), sx = SavedTensor(x),
                     so = take_sqrt ? SavedTensor(out) : SavedTensor()](const BackwardArgs& a) {
      // d var / d x_i = 2 (x_i - mean) / divisor (the mean's own dependence on x_i cancels,
      // since the centred values sum to zero). d std = d var / (2 std), taken as 0 where std
      // = 0 (a constant lane), where the derivative does not exist; PyTorch does the same.
      // The saved centred values and result have no history; a recorded backward (create_graph)
      // recomputes them from x, which has.
      const bool recording = GradMode::is_enabled();
      Tensor c = sc.unpack(name);
      if (recording) {
        Tensor xv = sx.unpack(name);
        c = xv - mean(xv, dims, true);
      }
      Tensor g = a.grad().reshape(kshape);
      if (!take_sqrt) return Grads{g * c * (2.0 / divisor)};
      Tensor s = recording ? sqrt(sum(square(c), dims, true) / divisor) : so.unpack(name).reshape(kshape);
      return Grads{where(s == 0.0, 0.0, g / (s * divisor)) * c};
    };
    autograd::record(name, {x}, out, backward, autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace

Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return variance("var", x, dims, correction, keepdim, /*take_sqrt=*/false);
}
Tensor std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return variance("std", x, dims, correction, keepdim, /*take_sqrt=*/true);
}

// ---- norm ----
//   p = 2:     sqrt(sum x^2)           p = 1: sum |x|          p = 0: number of nonzeros
//   p = inf:   max |x|                 p = -inf: min |x|       other p > 0: (sum |x|^p)^(1/p)

Tensor norm(const Tensor& x, double p, const Shape& dims, bool keepdim) {
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return norm(f, p, dims, keepdim); }, x);
  check_floating("norm", x);
  if (std::isnan(p) || (p < 0 && !std::isinf(p))) fail("norm: p must be > 0, 0, inf or -inf; got {}", p);
  const auto mask = dims_mask(dims, x.dim(), "norm");
  const Shape kshape = reduced_shape(x.shape(), mask, true);
  const bool is_inf = std::isinf(p);
  if (is_inf && reduced_count(x, mask) == 0 && shape_numel(kshape) > 0)
    fail("norm: the {}-norm of an empty set is undefined (input shape {})", p, shape_str(x.shape()));
  Tensor xd = x.detach(), out;
  if (p == 2)
    out = sqrt(sum(square(xd), dims, keepdim));
  else if (p == 1)
    out = sum(abs(xd), dims, keepdim);
  else if (p == 0)
    out = sum((xd != 0.0).to(x.dtype()), dims, keepdim);
  else if (is_inf)
    out = p > 0 ? amax(abs(xd), dims, keepdim) : amin(abs(xd), dims, keepdim);
  else
    out = pow(sum(pow(abs(xd), p), dims, keepdim), 1.0 / p);

  if (autograd::any_requires_grad({x})) {
    auto backward = [p, is_inf, dims, kshape, sx = SavedTensor(x),
                     so = SavedTensor(out)](const BackwardArgs& a) {
      // (the saved result has no history: a recorded backward recomputes it from x, which has)
      Tensor x = sx.unpack("norm");
      Tensor n = GradMode::is_enabled() ? norm(x, p, dims, true) : so.unpack("norm").reshape(kshape);
      Tensor g = a.grad().reshape(kshape);
      if (p == 0) return Grads{zeros_like(x)};  // piecewise constant
      if (p == 1) return Grads{g * sign(x)};
      // d/dx_i (sum |x|^p)^(1/p) = sign(x_i) |x_i|^(p-1) / n^(p-1); for p = 2 that is x_i / n.
      // Where n = 0 every x_i is 0 and the derivative does not exist; the gradient there is 0
      // (not 0/0 = NaN), as in PyTorch.
      if (p == 2) return Grads{x * where(n == 0.0, 0.0, g / n)};
      if (is_inf) {
        // max |x|: like amax, the gradient is shared evenly by the elements attaining it.
        Tensor hit = (abs(x) == n).to(x.dtype());
        return Grads{sign(x) * hit * (g / sum(hit, dims, true))};
      }
      Tensor ax = abs(x);
      Tensor scaled = pow(ax, p - 1.0);
      if (p < 1) scaled = where(ax == 0.0, 0.0, scaled);  // |0|^(p-1) = inf; take the subgradient 0
      return Grads{sign(x) * scaled * where(n == 0.0, 0.0, g / pow(n, p - 1.0))};
    };
    autograd::record("norm", {x}, out, backward, autograd::DoubleBackward::supported);
  }
  return out;
}
Tensor norm(const Tensor& x, double p) { return norm(x, p, {}, false); }

// F.normalize: a composite of norm, clamp_min and a division, so its backward (and any higher
// derivative) is theirs. A slice whose norm is below eps is divided by eps (a zero slice stays zero).
Tensor normalize(const Tensor& x, double p, int64_t dim, double eps) {
  check_floating("normalize", x);
  if (!(eps >= 0)) fail("normalize: eps must be >= 0, got {}", eps);
  const int64_t d = wrap_dim(dim, x.dim(), "normalize");
  return x / clamp_min(norm(x, p, {d}, /*keepdim=*/true), eps);
}

}  // namespace ember
