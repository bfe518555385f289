// CUDA kernels of cross_entropy and nll_loss (contracts: losses/kernels/cross_entropy.h; the CPU
// version is losses/cpu/cross_entropy.cpp).
//
// Targets first: one thread per row records the row's weight (0 when ignored) and, when its
// target is invalid, its own index. Two reductions (reduce_stub) then give the mean's divisor and
// the first invalid row; the forward kernels must *return* that index, so the host waits for this
// one number (the only synchronisation in the loss).
// The rows [outer, C, inner] are lanes of cuda/lanes.cuh (row r = o * inner + i reads x[o, :, i]):
// one row of threads per loss row computes the log-sum-exp (max, then sum of exp in double) and
// the loss. The log-sum-exp stays in two parts, max and log(sum) (saved as a float64 pair per
// row), and the loss is log(sum) - (x_y - max): a float32 lse = max + log(sum) would only be good
// to ulp(max), more than the whole loss of a confident row. The backward is elementwise: one
// thread per score.
#include "cuda/lanes.cuh"
#include "cuda/math.cuh"
#include "losses/kernels/cross_entropy.h"
#include "ops/kernels/reduce.h"

namespace ember::losses::cuda_kernels {
namespace {

using ember::cuda::blocks_for;
using ember::cuda::KernelContext;
using ember::cuda::kLaneThreads;
using ember::cuda::kThreads;
using ember::cuda::LaneLaunch;
using ember::cuda::Lanes;
using ember::cuda::row_reduce;

constexpr int64_t kValid = INT64_MAX;  // "no invalid target" in the per-row table

__device__ __forceinline__ bool is_ignored(int64_t y, const ClassTargetParams& p) {
  return p.has_ignore_index && y == p.ignore_index;
}

template <class T>
__global__ void check_targets_kernel(double* row_weight, int64_t* row_bad, const int64_t* y, int64_t rows,
                                     int64_t classes, const T* w, ClassTargetParams p) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = y[r];
    const bool ignored = is_ignored(t, p), valid = ignored || (t >= 0 && t < classes);
    row_bad[r] = valid ? kValid : r;
    row_weight[r] = ignored || !valid ? 0.0 : (w ? static_cast<double>(w[t]) : 1.0);
  }
}

template <class T>
__global__ void store_divisor_kernel(T* denominator, const double* sum) {
  *denominator = static_cast<T>(*sum);
}

// Validates the targets and writes the divisor; returns the first invalid row or -1.
template <class T>
int64_t check_targets(const KernelContext& ctx, const Tensor& target, int64_t classes, const Tensor& weight,
                      const Tensor& denominator, const ClassTargetParams& p) {
  const int64_t rows = target.numel();
  const Device device = target.device();
  if (rows == 0) {
    EMBER_CUDA_CHECK(cudaMemsetAsync(denominator.raw_data(), 0, sizeof(T), ctx.stream));
    return -1;
  }
  Tensor row_weight = empty_tensor({rows}, DType::float64, device);
  Tensor row_bad = empty_tensor({rows}, DType::int64, device);
  check_targets_kernel<T><<<blocks_for(rows, kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<double*>(row_weight.raw_data()), static_cast<int64_t*>(row_bad.raw_data()),
      static_cast<const int64_t*>(target.raw_data()), rows, classes,
      weight.defined() ? static_cast<const T*>(weight.raw_data()) : nullptr, p);
  EMBER_CUDA_CHECK_LAUNCH("check_targets_kernel");
  Tensor sum = empty_tensor({1}, DType::float64, device), first_bad = empty_tensor({1}, DType::int64, device);
  reduce_stub(device, ReduceOp::sum, sum, row_weight, std::vector<bool>{true});
  reduce_stub(device, ReduceOp::min, first_bad, row_bad, std::vector<bool>{true});
  store_divisor_kernel<T><<<1, 1, 0, ctx.stream>>>(static_cast<T*>(denominator.raw_data()),
                                                   static_cast<const double*>(sum.raw_data()));
  EMBER_CUDA_CHECK_LAUNCH("store_divisor_kernel");
  int64_t bad = kValid;
  EMBER_CUDA_CHECK(
      cudaMemcpyAsync(&bad, first_bad.raw_data(), sizeof(bad), cudaMemcpyDeviceToHost, ctx.stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return bad == kValid ? -1 : bad;
}

struct MaxIgnoringNaN {  // std::max(a, b) = a < b ? b : a, which skips a NaN b
  __device__ double operator()(double a, double b) const { return a < b ? b : a; }
};
struct Sum {
  __device__ double operator()(double a, double b) const { return a + b; }
};

template <class T>
__global__ void cross_entropy_forward_kernel(T* loss, double* lse, const T* x, const int64_t* y, const T* w,
                                             Lanes g, ClassTargetParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* row = reinterpret_cast<double*>(smem_raw) + threadIdx.y * blockDim.x;
  const int64_t rows = g.count(), C = g.n, stride = g.inner;
  const double eps = p.label_smoothing;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < rows;
       r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t r = r0 + threadIdx.y;
    const bool valid = r < rows;
    const T* xr = x + (valid ? g.base(r) : 0);
    // log sum exp, shifted by the row max (a NaN score makes the sum NaN; a row of -inf gives NaN)
    T m = -HUGE_VAL;
    if (valid)
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) m = m < xr[c * stride] ? xr[c * stride] : m;
    m = static_cast<T>(row_reduce(static_cast<double>(m), MaxIgnoringNaN{}, row));
    double s = 0;
    if (valid)
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += ember::cuda::dmath::exp(xr[c * stride] - m);
    s = row_reduce(s, Sum{}, row);
    const double max = m, log_sum = ::log(s);
    // lse - x_c = log_sum - (x_c - max), with x_c - max exact in double for float scores
    auto nll = [&](int64_t c) { return log_sum - (static_cast<double>(xr[c * stride]) - max); };
    const int64_t t = valid ? y[r] : 0;
    const bool ignored = !valid || is_ignored(t, p);
    // sum_c w_c (lse - x_c): cross-entropy against the uniform distribution (label smoothing)
    double smooth = 0;
    if (eps > 0 && !ignored)
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) smooth += (w ? w[c] : 1.0) * nll(c);
    if (eps > 0) smooth = row_reduce(smooth, Sum{}, row);  // eps is the same for the whole block
    if (!valid || threadIdx.x != 0) continue;
    lse[2 * r] = max;
    lse[2 * r + 1] = log_sum;
    if (ignored) {
      loss[r] = 0;
      continue;
    }
    const double wy = w ? w[t] : 1.0;
    double value = (1.0 - eps) * wy * nll(t);
    if (eps > 0) value += eps / static_cast<double>(C) * smooth;
    loss[r] = static_cast<T>(value);
  }
}

// d loss / d x_c = g * (p_c * total - (1 - eps) w_y [c = y] - (eps / C) w_c), one thread per score,
// with p_c = exp(x_c - max) / sum as on the CPU (lse holds (max, log sum) per row). The target's
// entry is (p_y - 1) onehot + p_y (total - onehot) in double with p_y - 1 from expm1, so a
// confident row (p_y ~ 1) keeps its relative accuracy and still sums to 0.
template <class T>
__global__ void cross_entropy_backward_kernel(T* grad, const T* gl, const T* x, const double* lse,
                                              const int64_t* y, const T* w, const double* weight_total,
                                              Lanes g, ClassTargetParams p) {
  const int64_t C = g.n, inner = g.inner, total_n = g.count() * C;
  const double eps = p.label_smoothing;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total_n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // e = (o * C + c) * inner + i  ->  row r = o * inner + i, class c
    const int64_t i = e % inner, c = (e / inner) % C, o = e / (inner * C);
    const int64_t r = o * inner + i, t = y[r];
    if (is_ignored(t, p)) {
      grad[e] = 0;
      continue;
    }
    const double wy = w ? w[t] : 1.0;
    const double wt = w ? *weight_total : static_cast<double>(C);
    const double max = lse[2 * r], log_sum = lse[2 * r + 1];
    const double onehot = gl[r] * (1.0 - eps) * wy;
    const double total = onehot + gl[r] * eps * wt / static_cast<double>(C);
    const double smooth = gl[r] * eps / static_cast<double>(C);
    if (c == t) {
      const double py_minus_1 = ember::cuda::dmath::expm1((static_cast<double>(x[e]) - max) - log_sum);
      grad[e] = static_cast<T>(py_minus_1 * onehot + (py_minus_1 + 1.0) * (total - onehot) -
                               smooth * (w ? static_cast<double>(w[c]) : 1.0));
      continue;
    }
    T v = ember::cuda::dmath::exp(x[e] - static_cast<T>(max)) *
          static_cast<T>(total * ember::cuda::dmath::exp(-log_sum));
    if (eps > 0) v -= static_cast<T>(smooth) * (w ? w[c] : T(1));
    grad[e] = v;
  }
}

template <class T>
__global__ void nll_forward_kernel(T* loss, const T* x, const int64_t* y, const T* w, Lanes g,
                                   ClassTargetParams p) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < g.count();
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = y[r];
    loss[r] = is_ignored(t, p) ? T(0) : -(w ? w[t] : T(1)) * x[g.base(r) + t * g.inner];
  }
}

template <class T>
__global__ void nll_backward_kernel(T* grad, const T* gl, const int64_t* y, const T* w, Lanes g,
                                    ClassTargetParams p) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < g.count();
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = y[r];
    if (!is_ignored(t, p)) grad[g.base(r) + t * g.inner] = -(w ? w[t] : T(1)) * gl[r];
  }
}

// ---- host side ----

Lanes rows_of(const Tensor& blocked) { return Lanes{blocked.size(0), blocked.size(1), blocked.size(2)}; }

void check_args(const char* op, const Tensor& scores, const Tensor& target, const Tensor& weight) {
  if (scores.dim() != 3 || !scores.is_contiguous() || target.dtype() != DType::int64 ||
      !target.is_contiguous() || target.numel() != scores.size(0) * scores.size(2) ||
      (weight.defined() &&
       (weight.numel() != scores.size(1) || weight.dtype() != scores.dtype() || !weight.is_contiguous())))
    fail(
        "{} (cuda): expected contiguous [outer, C, inner] scores with int64 targets for each row and a [C] "
        "weight, "
        "got scores {} {}, target {} {}",
        op, scores.dtype(), shape_str(scores.shape()), target.dtype(), shape_str(target.shape()));
}

template <class T>
const T* weight_ptr(const Tensor& w) {
  return w.defined() ? static_cast<const T*>(w.raw_data()) : nullptr;
}

int64_t cross_entropy_forward_cuda(const Tensor& loss, const Tensor& lse, const Tensor& denominator,
                                   const Tensor& logits, const Tensor& target, const Tensor& weight,
                                   const ClassTargetParams& params) {
  check_args("cross_entropy", logits, target, weight);
  KernelContext ctx(logits, "cross_entropy");
  return dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() -> int64_t {
    const Lanes g = rows_of(logits);
    const int64_t bad = check_targets<T>(ctx, target, g.n, weight, denominator, params);
    if (bad >= 0 || g.count() == 0) return bad;
    const LaneLaunch launch = ember::cuda::lane_launch(g);
    cross_entropy_forward_kernel<T><<<launch.grid, launch.block, kLaneThreads * sizeof(double), ctx.stream>>>(
        static_cast<T*>(loss.raw_data()), static_cast<double*>(lse.raw_data()),
        static_cast<const T*>(logits.raw_data()), static_cast<const int64_t*>(target.raw_data()),
        weight_ptr<T>(weight), g, params);
    EMBER_CUDA_CHECK_LAUNCH("cross_entropy_forward_kernel");
    return -1;
  });
}

void cross_entropy_backward_cuda(const Tensor& grad, const Tensor& grad_loss, const Tensor& logits,
                                 const Tensor& lse, const Tensor& target, const Tensor& weight,
                                 const ClassTargetParams& params) {
  check_args("cross_entropy backward", logits, target, weight);
  if (grad.shape() != logits.shape() || !grad.is_contiguous() || grad_loss.numel() != target.numel())
    fail("cross_entropy backward (cuda): gradient {} for logits {}", shape_str(grad.shape()),
         shape_str(logits.shape()));
  if (grad.numel() == 0) return;
  KernelContext ctx(logits, "cross_entropy backward");
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    Tensor weight_total;  // sum of the class weights, in double (as on the CPU)
    if (weight.defined()) {
      weight_total = empty_tensor({1}, DType::float64, logits.device());
      reduce_stub(logits.device(), ReduceOp::sum, weight_total, weight, std::vector<bool>{true});
    }
    cross_entropy_backward_kernel<T><<<blocks_for(grad.numel(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(grad.raw_data()), static_cast<const T*>(grad_loss.raw_data()),
        static_cast<const T*>(logits.raw_data()), static_cast<const double*>(lse.raw_data()),
        static_cast<const int64_t*>(target.raw_data()), weight_ptr<T>(weight),
        weight.defined() ? static_cast<const double*>(weight_total.raw_data()) : nullptr, rows_of(logits),
        params);
    EMBER_CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
  });
}

int64_t nll_forward_cuda(const Tensor& loss, const Tensor& denominator, const Tensor& input,
                         const Tensor& target, const Tensor& weight, const ClassTargetParams& params) {
  check_args("nll_loss", input, target, weight);
  KernelContext ctx(input, "nll_loss");
  return dispatch_floating(input.dtype(), "nll_loss", [&]<class T>() -> int64_t {
    const Lanes g = rows_of(input);
    const int64_t bad = check_targets<T>(ctx, target, g.n, weight, denominator, params);
    if (bad >= 0 || g.count() == 0) return bad;
    nll_forward_kernel<T><<<blocks_for(g.count(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(loss.raw_data()), static_cast<const T*>(input.raw_data()),
        static_cast<const int64_t*>(target.raw_data()), weight_ptr<T>(weight), g, params);
    EMBER_CUDA_CHECK_LAUNCH("nll_forward_kernel");
    return -1;
  });
}

void nll_backward_cuda(const Tensor& grad, const Tensor& grad_loss, const Tensor& target,
                       const Tensor& weight, const ClassTargetParams& params) {
  check_args("nll_loss backward", grad, target, weight);
  if (grad.numel() == 0) return;
  KernelContext ctx(grad, "nll_loss backward");
  EMBER_CUDA_CHECK(
      cudaMemsetAsync(grad.raw_data(), 0, grad.numel() * element_size(grad.dtype()), ctx.stream));
  dispatch_floating(grad.dtype(), "nll_loss", [&]<class T>() {
    const Lanes g = rows_of(grad);
    nll_backward_kernel<T><<<blocks_for(g.count(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(grad.raw_data()), static_cast<const T*>(grad_loss.raw_data()),
        static_cast<const int64_t*>(target.raw_data()), weight_ptr<T>(weight), g, params);
    EMBER_CUDA_CHECK_LAUNCH("nll_backward_kernel");
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(cross_entropy_forward_stub, cuda, &cross_entropy_forward_cuda);
EMBER_REGISTER_KERNEL(cross_entropy_backward_stub, cuda, &cross_entropy_backward_cuda);
EMBER_REGISTER_KERNEL(nll_forward_stub, cuda, &nll_forward_cuda);
EMBER_REGISTER_KERNEL(nll_backward_stub, cuda, &nll_backward_cuda);

}  // namespace ember::losses::cuda_kernels
