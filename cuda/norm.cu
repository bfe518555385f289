// CUDA batch norm, layer norm and group norm, forward and backward (contracts: ops/kernels/norm.h). The
// formulas, the double accumulators and the order of the final sums are the CPU's
// (ops/cpu/norm.cpp).
//
// Batch norm sees x [N, C, S] as N*C planes of S contiguous values. Channel sums are taken in
// two steps, as on the CPU: one row of threads per plane sums its S values (plane_sums), then
// the [N, C] table of plane sums is reduced over N by the reduction kernel (reduce_stub), which
// always combines in the same order for the same shape. Elementwise passes then apply
// per-channel coefficients computed once per channel.
//
// Layer norm gives each of the M rows of x [M, N] to one row of threads (cuda/lanes.cuh): the
// row's mean, variance and outputs need three row_reduce'd sums and one more pass. The weight
// and bias gradients are column sums over rows, taken like the CPU: 64 fixed blocks of rows, one
// partial sum per block and column, then the blocks added in order.
//
// Group norm's rows are each sample's channel groups (contiguous): the forward is layer norm's with
// a per-channel affine; the backward takes batch norm's per-plane sums, from which come the
// per-channel weight and bias gradients (samples added in order) and two coefficients per row for
// an elementwise input gradient.
#include "cuda/lanes.cuh"
#include "cuda/math.cuh"
#include "ops/kernels/norm.h"
#include "ops/kernels/reduce.h"

namespace ember::cuda {
namespace {

struct Sum {
  __device__ double operator()(double a, double b) const { return a + b; }
};

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}
template <class T>
T* out_ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

// ---- batch norm ----

// out[p] = sum over i < S of f(p, i), one row of threads per plane p.
template <class F>
__global__ void plane_sums_kernel(double* out, Lanes g, F f) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* row = reinterpret_cast<double*>(smem_raw) + threadIdx.y * blockDim.x;
  const int64_t planes = g.count();
  for (int64_t p0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; p0 < planes;
       p0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t p = p0 + threadIdx.y;
    double s = 0;
    if (p < planes)
      for (int64_t i = threadIdx.x; i < g.n; i += blockDim.x) s += f(p, i);
    s = row_reduce(s, Sum{}, row);
    if (p < planes && threadIdx.x == 0) out[p] = s;
  }
}

// The sum of f(p, i) over i < S for each of the N * C planes p: a contiguous [N, C] double tensor.
template <class F>
Tensor plane_sums(const KernelContext& ctx, int64_t N, int64_t C, int64_t S, Device device, F f) {
  Tensor planes = empty_tensor({N, C}, DType::float64, device);
  const Lanes g{N * C, S, 1};
  const LaneLaunch launch = lane_launch(g);
  plane_sums_kernel<<<launch.grid, launch.block, kLaneThreads * sizeof(double), ctx.stream>>>(
      static_cast<double*>(planes.raw_data()), g, f);
  EMBER_CUDA_CHECK_LAUNCH("plane_sums_kernel");
  return planes;
}

// Per-channel sums of f over the planes: returns a contiguous [1, C] double tensor.
template <class F>
Tensor channel_sums(const KernelContext& ctx, int64_t N, int64_t C, int64_t S, Device device, F f) {
  Tensor planes = plane_sums(ctx, N, C, S, device, f);
  Tensor sums = empty_tensor({1, C}, DType::float64, device);
  reduce_stub(device, ReduceOp::sum, sums, planes, std::vector<bool>{true, false});
  return sums;
}

template <class T>
__global__ void bn_finish_stats_kernel(T* mean, T* var, const double* mu_sum, const double* sq_sum, int64_t C,
                                       double count) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    mean[c] = static_cast<T>(mu_sum[c] / count);
    var[c] = static_cast<T>(sq_sum[c] / count);
  }
}

template <class T>
void bn_stats(const KernelContext& ctx, const Tensor& x, const Tensor& mean, const Tensor& var) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
  const T* px = static_cast<const T*>(x.raw_data());
  const double count = static_cast<double>(N * S);
  // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels badly.
  Tensor mu = channel_sums(ctx, N, C, S, x.device(), [=] __device__(int64_t p, int64_t i) {
    return static_cast<double>(px[p * S + i]);
  });
  const double* pmu = static_cast<const double*>(mu.raw_data());
  Tensor sq = channel_sums(ctx, N, C, S, x.device(), [=] __device__(int64_t p, int64_t i) {
    const double m = pmu[p % C] / count;
    const double d = px[p * S + i] - m;
    return d * d;
  });
  bn_finish_stats_kernel<T><<<blocks_for(C, kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<T*>(mean.raw_data()), static_cast<T*>(var.raw_data()), pmu,
      static_cast<const double*>(sq.raw_data()), C, count);
  EMBER_CUDA_CHECK_LAUNCH("bn_finish_stats_kernel");
}

// y = x * scale[c] + shift[c], with scale = invstd * weight and shift = bias - mean * scale.
template <class T>
__global__ void bn_coefficients_kernel(T* scale, T* shift, const T* mean, const T* invstd, const T* w,
                                       const T* b, int64_t C) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double s = static_cast<double>(invstd[c]) * (w ? static_cast<double>(w[c]) : 1.0);
    scale[c] = static_cast<T>(s);
    shift[c] = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - static_cast<double>(mean[c]) * s);
  }
}

template <class T>
__global__ void bn_apply_kernel(T* y, const T* x, const T* scale, const T* shift, int64_t C, int64_t S,
                                int64_t total) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = (i / S) % C;
    y[i] = x[i] * scale[c] + shift[c];
  }
}

template <class T>
void bn_apply(const KernelContext& ctx, const Tensor& x, const Tensor& mean, const Tensor& invstd,
              const Tensor& w, const Tensor& b, const Tensor& out) {
  const int64_t C = x.size(1), S = x.size(2);
  Tensor coef = empty_tensor({2, C}, x.dtype(), x.device());
  T* scale = static_cast<T*>(coef.raw_data());
  T* shift = scale + C;
  bn_coefficients_kernel<T><<<blocks_for(C, kThreads), kThreads, 0, ctx.stream>>>(
      scale, shift, static_cast<const T*>(mean.raw_data()), static_cast<const T*>(invstd.raw_data()),
      ptr_or_null<T>(w), ptr_or_null<T>(b), C);
  EMBER_CUDA_CHECK_LAUNCH("bn_coefficients_kernel");
  bn_apply_kernel<T><<<blocks_for(x.numel(), kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()), scale, shift, C, S, x.numel());
  EMBER_CUDA_CHECK_LAUNCH("bn_apply_kernel");
}

// Per channel: the parameter gradients, and the coefficients of
//   dx = k * dy - ka - (x - m) * kr,  k = weight * invstd,  ka = k * sum(dy) / M,
//   kr = k * invstd^2 * sum(dy * (x - mean)) / M      (ka = kr = 0 without batch statistics)
template <class T>
__global__ void bn_backward_channel_kernel(T* gw, T* gb, T* coef, const double* sum_dy,
                                           const double* sum_dy_xc, const T* mean, const T* invstd,
                                           const T* w, int64_t C, double M, bool batch_stats,
                                           bool need_sums) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double sd = need_sums ? sum_dy[c] : 0.0, sdx = need_sums ? sum_dy_xc[c] : 0.0;
    if (gb) gb[c] = static_cast<T>(sd);
    if (gw) gw[c] = static_cast<T>(sdx * invstd[c]);
    const double kc = (w ? static_cast<double>(w[c]) : 1.0) * static_cast<double>(invstd[c]);
    const double ic = invstd[c];
    coef[c] = static_cast<T>(kc);
    coef[C + c] = static_cast<T>(batch_stats ? kc * sd / M : 0.0);
    coef[2 * C + c] = static_cast<T>(batch_stats ? kc * ic * ic * sdx / M : 0.0);
    coef[3 * C + c] = mean[c];
  }
}

template <class T>
__global__ void bn_backward_input_kernel(T* dx, const T* g, const T* x, const T* coef, int64_t C, int64_t S,
                                         int64_t total) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = (i / S) % C;
    dx[i] = coef[c] * g[i] - coef[C + c] - (x[i] - coef[3 * C + c]) * coef[2 * C + c];
  }
}

template <class T>
void bn_backward(const KernelContext& ctx, const Tensor& grad_out, const Tensor& x, const Tensor& mean,
                 const Tensor& invstd, const Tensor& w, bool batch_stats, const Tensor& grad_input,
                 const Tensor& grad_weight, const Tensor& grad_bias) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
  const T* px = static_cast<const T*>(x.raw_data());
  const T* pg = static_cast<const T*>(grad_out.raw_data());
  const T* pm = static_cast<const T*>(mean.raw_data());
  const bool need_sums =
      grad_weight.defined() || grad_bias.defined() || (grad_input.defined() && batch_stats);
  Tensor sum_dy, sum_dy_xc;
  if (need_sums) {
    sum_dy = channel_sums(ctx, N, C, S, x.device(), [=] __device__(int64_t p, int64_t i) {
      return static_cast<double>(pg[p * S + i]);
    });
    sum_dy_xc = channel_sums(ctx, N, C, S, x.device(), [=] __device__(int64_t p, int64_t i) {
      const double m = pm[p % C];
      return static_cast<double>(pg[p * S + i]) * (px[p * S + i] - m);
    });
  }
  Tensor coef = empty_tensor({4, C}, x.dtype(), x.device());
  bn_backward_channel_kernel<T><<<blocks_for(C, kThreads), kThreads, 0, ctx.stream>>>(
      out_ptr<T>(grad_weight), out_ptr<T>(grad_bias), static_cast<T*>(coef.raw_data()),
      need_sums ? static_cast<const double*>(sum_dy.raw_data()) : nullptr,
      need_sums ? static_cast<const double*>(sum_dy_xc.raw_data()) : nullptr, pm,
      static_cast<const T*>(invstd.raw_data()), ptr_or_null<T>(w), C, static_cast<double>(N * S), batch_stats,
      need_sums);
  EMBER_CUDA_CHECK_LAUNCH("bn_backward_channel_kernel");
  if (!grad_input.defined()) return;
  bn_backward_input_kernel<T><<<blocks_for(x.numel(), kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<T*>(grad_input.raw_data()), pg, px, static_cast<const T*>(coef.raw_data()), C, S,
      x.numel());
  EMBER_CUDA_CHECK_LAUNCH("bn_backward_input_kernel");
}

// ---- layer norm ----

// The mean and rstd = 1 / sqrt(biased var + eps) of a row of n values, in double and in two passes
// (as on the CPU), by one row of threads. A row past the end (valid false) joins the reductions
// with nothing.
template <class T>
__device__ void row_moments(const T* v, int64_t n, bool valid, double eps, double* row, double& mu,
                            double& rs) {
  double s = 0, q = 0;
  if (valid)
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += v[i];
  mu = row_reduce(s, Sum{}, row) / static_cast<double>(n);
  if (valid)
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) q += (v[i] - mu) * (v[i] - mu);
  rs = 1.0 / ::sqrt(row_reduce(q, Sum{}, row) / static_cast<double>(n) + eps);
}

template <class T>
__global__ void ln_forward_kernel(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t M,
                                  int64_t N, double eps) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* row = reinterpret_cast<double*>(smem_raw) + threadIdx.y * blockDim.x;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < M;
       r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t r = r0 + threadIdx.y;
    const bool valid = r < M;
    const T* v = x + (valid ? r : 0) * N;
    double mu, rs;
    row_moments(v, N, valid, eps, row, mu, rs);
    if (!valid) continue;
    if (threadIdx.x == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
    }
    const T tm = static_cast<T>(mu), trs = static_cast<T>(rs);
    T* o = y + r * N;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
      o[i] = (v[i] - tm) * trs * (w ? w[i] : T(1)) + (b ? b[i] : T(0));
  }
}

template <class T>
__global__ void ln_backward_input_kernel(T* dx, const T* g, const T* x, const T* mean, const T* rstd,
                                         const T* w, int64_t M, int64_t N) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* row = reinterpret_cast<double*>(smem_raw) + threadIdx.y * blockDim.x;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < M;
       r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t r = r0 + threadIdx.y;
    const bool valid = r < M;
    const T* gr = g + (valid ? r : 0) * N;
    const T* v = x + (valid ? r : 0) * N;
    const double mu = valid ? static_cast<double>(mean[r]) : 0.0,
                 rs = valid ? static_cast<double>(rstd[r]) : 0.0;
    double sum_g = 0, sum_gx = 0;  // sums of g = dy * w and of g * xhat
    if (valid)
      for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
        const double gi = static_cast<double>(gr[i]) * (w ? static_cast<double>(w[i]) : 1.0);
        sum_g += gi;
        sum_gx += gi * (v[i] - mu) * rs;
      }
    sum_g = row_reduce(sum_g, Sum{}, row);
    sum_gx = row_reduce(sum_gx, Sum{}, row);
    if (!valid) continue;
    const T a = static_cast<T>(sum_g / static_cast<double>(N));
    const T c = static_cast<T>(sum_gx / static_cast<double>(N));
    const T tm = static_cast<T>(mu), trs = static_cast<T>(rs);
    T* o = dx + r * N;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
      const T xhat = (v[i] - tm) * trs;
      o[i] = trs * (gr[i] * (w ? w[i] : T(1)) - a - xhat * c);
    }
  }
}

constexpr int64_t kLnBlocks = 64;  // row blocks for the column sums (as on the CPU)

// part_w[blk, i] = sum over the block's rows of dy * xhat, part_b[blk, i] = sum of dy.
template <class T>
__global__ void ln_column_partials_kernel(double* part_w, double* part_b, const T* g, const T* x,
                                          const T* mean, const T* rstd, int64_t M, int64_t N, int64_t blocks,
                                          int64_t rows_per) {
  const int64_t total = blocks * N;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = t % N, blk = t / N;
    const int64_t end = (blk + 1) * rows_per < M ? (blk + 1) * rows_per : M;
    double sw = 0, sb = 0;
    for (int64_t r = blk * rows_per; r < end; ++r) {
      const double mu = mean[r], rs = rstd[r];
      sw += static_cast<double>(g[r * N + i]) * (x[r * N + i] - mu) * rs;
      sb += g[r * N + i];
    }
    part_w[t] = sw;
    part_b[t] = sb;
  }
}

template <class T>
__global__ void ln_column_finish_kernel(T* gw, T* gb, const double* part_w, const double* part_b, int64_t N,
                                        int64_t blocks) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < N;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sw = 0, sb = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      sw += part_w[blk * N + i];
      sb += part_b[blk * N + i];
    }
    if (gw) gw[i] = static_cast<T>(sw);
    if (gb) gb[i] = static_cast<T>(sb);
  }
}

template <class T>
void ln_forward(const KernelContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const int64_t M = x.size(0), N = x.size(1);
  const LaneLaunch launch = lane_launch(Lanes{M, N, 1});
  ln_forward_kernel<T><<<launch.grid, launch.block, kLaneThreads * sizeof(double), ctx.stream>>>(
      static_cast<T*>(out.raw_data()), static_cast<T*>(mean.raw_data()), static_cast<T*>(rstd.raw_data()),
      static_cast<const T*>(x.raw_data()), ptr_or_null<T>(w), ptr_or_null<T>(b), M, N, eps);
  EMBER_CUDA_CHECK_LAUNCH("ln_forward_kernel");
}

template <class T>
void ln_backward(const KernelContext& ctx, const Tensor& grad_out, const Tensor& x, const Tensor& mean,
                 const Tensor& rstd, const Tensor& w, const Tensor& grad_input, const Tensor& grad_weight,
                 const Tensor& grad_bias) {
  const int64_t M = x.size(0), N = x.size(1);
  const T* pg = static_cast<const T*>(grad_out.raw_data());
  const T* px = static_cast<const T*>(x.raw_data());
  const T* pm = static_cast<const T*>(mean.raw_data());
  const T* pr = static_cast<const T*>(rstd.raw_data());
  if (grad_input.defined()) {
    const LaneLaunch launch = lane_launch(Lanes{M, N, 1});
    ln_backward_input_kernel<T><<<launch.grid, launch.block, kLaneThreads * sizeof(double), ctx.stream>>>(
        static_cast<T*>(grad_input.raw_data()), pg, px, pm, pr, ptr_or_null<T>(w), M, N);
    EMBER_CUDA_CHECK_LAUNCH("ln_backward_input_kernel");
  }
  if (!grad_weight.defined() && !grad_bias.defined()) return;
  const int64_t blocks = std::min<int64_t>(M, kLnBlocks), rows_per = (M + blocks - 1) / blocks;
  Tensor parts = empty_tensor({2, blocks, N}, DType::float64, x.device());
  double* part_w = static_cast<double*>(parts.raw_data());
  double* part_b = part_w + blocks * N;
  ln_column_partials_kernel<T><<<blocks_for(blocks * N, kThreads), kThreads, 0, ctx.stream>>>(
      part_w, part_b, pg, px, pm, pr, M, N, blocks, rows_per);
  EMBER_CUDA_CHECK_LAUNCH("ln_column_partials_kernel");
  ln_column_finish_kernel<T><<<blocks_for(N, kThreads), kThreads, 0, ctx.stream>>>(
      out_ptr<T>(grad_weight), out_ptr<T>(grad_bias), part_w, part_b, N, blocks);
  EMBER_CUDA_CHECK_LAUNCH("ln_column_finish_kernel");
}

// ---- group norm ----
// x [N, C, S]: row r = n * G + g (sample n's group g) is the contiguous run of M = Cg * S values
// from r * M (Cg = C / G channels); plane p = n * C + c lies in row p / Cg.

template <class T>
__global__ void gn_forward_kernel(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                                  int64_t G, int64_t Cg, int64_t S, double eps) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* row = reinterpret_cast<double*>(smem_raw) + threadIdx.y * blockDim.x;
  const int64_t M = Cg * S;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < rows;
       r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t r = r0 + threadIdx.y;
    const bool valid = r < rows;
    const T* v = x + (valid ? r : 0) * M;
    double mu, rs;
    row_moments(v, M, valid, eps, row, mu, rs);
    if (!valid) continue;
    if (threadIdx.x == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
    }
    T* o = y + r * M;
    for (int64_t i = threadIdx.x; i < M; i += blockDim.x) {  // y = x * scale + shift, per channel
      const int64_t c = r % G * Cg + i / S;
      const double sc = rs * (w ? static_cast<double>(w[c]) : 1.0);
      o[i] = v[i] * static_cast<T>(sc) + static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - mu * sc);
    }
  }
}

// grad_weight[c] = sum over n of sum_dy_xc[n, c] * rstd of its row; grad_bias[c] = sum of sum_dy.
template <class T>
__global__ void gn_param_grads_kernel(T* gw, T* gb, const double* sum_dy, const double* sum_dy_xc,
                                      const T* rstd, int64_t N, int64_t C, int64_t Cg) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sw = 0, sb = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t p = n * C + c;
      sw += sum_dy_xc[p] * static_cast<double>(rstd[p / Cg]);
      sb += sum_dy[p];
    }
    if (gw) gw[c] = static_cast<T>(sw);
    if (gb) gb[c] = static_cast<T>(sb);
  }
}

// Per row, with B = sum(g) and A = sum(g (x - mean)) (g = dy * w): coef[r] = ka = rstd B / M and
// coef[rows + r] = kr = rstd^3 A / M, for dx = rstd w[c] dy - ka - (x - mean) kr.
template <class T>
__global__ void gn_row_coefficients_kernel(T* coef, const double* sum_dy, const double* sum_dy_xc,
                                           const T* rstd, const T* w, int64_t rows, int64_t G, int64_t Cg,
                                           int64_t S) {
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sum_g = 0, sum_g_xc = 0;
    for (int64_t j = 0; j < Cg; ++j) {
      const double wc = w ? static_cast<double>(w[r % G * Cg + j]) : 1.0;
      sum_g += wc * sum_dy[r * Cg + j];
      sum_g_xc += wc * sum_dy_xc[r * Cg + j];
    }
    const double rs = rstd[r], M = static_cast<double>(Cg * S);
    coef[r] = static_cast<T>(rs * sum_g / M);
    coef[rows + r] = static_cast<T>(rs * rs * rs * sum_g_xc / M);
  }
}

template <class T>
__global__ void gn_backward_input_kernel(T* dx, const T* g, const T* x, const T* mean, const T* rstd,
                                         const T* w, const T* coef, int64_t rows, int64_t C, int64_t Cg,
                                         int64_t S, int64_t n) {
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = idx / S, r = p / Cg;
    const T k = static_cast<T>(static_cast<double>(rstd[r]) * (w ? static_cast<double>(w[p % C]) : 1.0));
    dx[idx] = k * g[idx] - coef[r] - (x[idx] - mean[r]) * coef[rows + r];
  }
}

template <class T>
void gn_forward(const KernelContext& ctx, const Tensor& x, int64_t G, const Tensor& w, const Tensor& b,
                double eps, const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
  const LaneLaunch launch = lane_launch(Lanes{N * G, C / G * S, 1});
  gn_forward_kernel<T><<<launch.grid, launch.block, kLaneThreads * sizeof(double), ctx.stream>>>(
      static_cast<T*>(out.raw_data()), static_cast<T*>(mean.raw_data()), static_cast<T*>(rstd.raw_data()),
      static_cast<const T*>(x.raw_data()), ptr_or_null<T>(w), ptr_or_null<T>(b), N * G, G, C / G, S, eps);
  EMBER_CUDA_CHECK_LAUNCH("gn_forward_kernel");
}

template <class T>
void gn_backward(const KernelContext& ctx, const Tensor& grad_out, const Tensor& x, int64_t G,
                 const Tensor& mean, const Tensor& rstd, const Tensor& w, const Tensor& grad_input,
                 const Tensor& grad_weight, const Tensor& grad_bias) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), Cg = C / G, rows = N * G;
  const T* px = static_cast<const T*>(x.raw_data());
  const T* pg = static_cast<const T*>(grad_out.raw_data());
  const T* pm = static_cast<const T*>(mean.raw_data());
  const T* pr = static_cast<const T*>(rstd.raw_data());
  Tensor sum_dy = plane_sums(ctx, N, C, S, x.device(), [=] __device__(int64_t p, int64_t i) {
    return static_cast<double>(pg[p * S + i]);
  });
  Tensor sum_dy_xc = plane_sums(ctx, N, C, S, x.device(), [=] __device__(int64_t p, int64_t i) {
    return static_cast<double>(pg[p * S + i]) * (px[p * S + i] - static_cast<double>(pm[p / Cg]));
  });
  const double* psd = static_cast<const double*>(sum_dy.raw_data());
  const double* psx = static_cast<const double*>(sum_dy_xc.raw_data());
  if (grad_weight.defined() || grad_bias.defined()) {
    gn_param_grads_kernel<T><<<blocks_for(C, kThreads), kThreads, 0, ctx.stream>>>(
        out_ptr<T>(grad_weight), out_ptr<T>(grad_bias), psd, psx, pr, N, C, Cg);
    EMBER_CUDA_CHECK_LAUNCH("gn_param_grads_kernel");
  }
  if (!grad_input.defined()) return;
  Tensor coef = empty_tensor({2, rows}, x.dtype(), x.device());
  T* pc = static_cast<T*>(coef.raw_data());
  gn_row_coefficients_kernel<T><<<blocks_for(rows, kThreads), kThreads, 0, ctx.stream>>>(
      pc, psd, psx, pr, ptr_or_null<T>(w), rows, G, Cg, S);
  EMBER_CUDA_CHECK_LAUNCH("gn_row_coefficients_kernel");
  gn_backward_input_kernel<T><<<blocks_for(x.numel(), kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<T*>(grad_input.raw_data()), pg, px, pm, pr, ptr_or_null<T>(w), pc, rows, C, Cg, S,
      x.numel());
  EMBER_CUDA_CHECK_LAUNCH("gn_backward_input_kernel");
}

// ---- host-side contract checks and dtype dispatch ----

void check_norm(const char* op, const Tensor& x, int64_t dims,
                const std::vector<std::pair<const Tensor*, int64_t>>& per_feature) {
  if (x.dim() != dims || !x.is_contiguous())
    fail("{} (cuda): expected a contiguous {}-d input, got {}", op, dims, shape_str(x.shape()));
  for (auto [t, size] : per_feature)
    if (t->defined() &&
        (t->numel() != size || !t->is_contiguous() || t->dtype() != x.dtype() || t->device() != x.device()))
      fail("{} (cuda): expected a contiguous [{}] tensor of {}, got {} {}", op, size, x.dtype(), t->dtype(),
           shape_str(t->shape()));
}

void bn_stats_cuda(const Tensor& x, const Tensor& mean, const Tensor& var) {
  check_norm("batch_norm", x, 3, {{&mean, x.size(1)}, {&var, x.size(1)}});
  if (x.numel() == 0) return;
  KernelContext ctx(x, "batch_norm");
  dispatch_floating(x.dtype(), "batch_norm", [&]<class T>() { bn_stats<T>(ctx, x, mean, var); });
}

void bn_apply_cuda(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& w,
                   const Tensor& b, const Tensor& out) {
  check_norm("batch_norm", x, 3,
             {{&mean, x.size(1)}, {&invstd, x.size(1)}, {&w, x.size(1)}, {&b, x.size(1)}});
  check_norm("batch_norm", out, 3, {});
  if (x.numel() == 0) return;
  KernelContext ctx(x, "batch_norm");
  dispatch_floating(x.dtype(), "batch_norm",
                    [&]<class T>() { bn_apply<T>(ctx, x, mean, invstd, w, b, out); });
}

void bn_backward_cuda(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                      const Tensor& w, bool batch_stats, const Tensor& gi, const Tensor& gw,
                      const Tensor& gb) {
  const int64_t C = x.dim() == 3 ? x.size(1) : 0;
  check_norm("batch_norm backward", x, 3, {{&mean, C}, {&invstd, C}, {&w, C}, {&gw, C}, {&gb, C}});
  if (g.shape() != x.shape() || (gi.defined() && gi.shape() != x.shape()))
    fail("batch_norm backward (cuda): gradient shapes differ from the input's {}", shape_str(x.shape()));
  KernelContext ctx(x, "batch_norm backward");
  dispatch_floating(x.dtype(), "batch_norm_backward",
                    [&]<class T>() { bn_backward<T>(ctx, g, x, mean, invstd, w, batch_stats, gi, gw, gb); });
}

void ln_forward_cuda(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& out,
                     const Tensor& mean, const Tensor& rstd) {
  check_norm("layer_norm", x, 2, {{&w, x.size(1)}, {&b, x.size(1)}, {&mean, x.size(0)}, {&rstd, x.size(0)}});
  if (out.shape() != x.shape()) fail("layer_norm (cuda): output shape differs from the input's");
  if (x.numel() == 0) return;
  KernelContext ctx(x, "layer_norm");
  dispatch_floating(x.dtype(), "layer_norm",
                    [&]<class T>() { ln_forward<T>(ctx, x, w, b, eps, out, mean, rstd); });
}

void ln_backward_cuda(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                      const Tensor& w, const Tensor& gi, const Tensor& gw, const Tensor& gb) {
  const int64_t M = x.dim() == 2 ? x.size(0) : 0, N = x.dim() == 2 ? x.size(1) : 0;
  check_norm("layer_norm backward", x, 2, {{&mean, M}, {&rstd, M}, {&w, N}, {&gw, N}, {&gb, N}});
  if (g.shape() != x.shape() || (gi.defined() && gi.shape() != x.shape()))
    fail("layer_norm backward (cuda): gradient shapes differ from the input's {}", shape_str(x.shape()));
  if (M == 0 || N == 0) return;
  KernelContext ctx(x, "layer_norm backward");
  dispatch_floating(x.dtype(), "layer_norm_backward",
                    [&]<class T>() { ln_backward<T>(ctx, g, x, mean, rstd, w, gi, gw, gb); });
}

void check_groups(const char* op, const Tensor& x, int64_t groups) {
  if (groups <= 0 || (x.dim() == 3 && x.size(1) % groups != 0))
    fail("{} (cuda): {} groups do not divide the channels of {}", op, groups, shape_str(x.shape()));
}

void gn_forward_cuda(const Tensor& x, int64_t groups, const Tensor& w, const Tensor& b, double eps,
                     const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const int64_t N = x.dim() == 3 ? x.size(0) : 0, C = x.dim() == 3 ? x.size(1) : 0;
  check_norm("group_norm", x, 3, {{&w, C}, {&b, C}, {&mean, N * groups}, {&rstd, N * groups}});
  check_groups("group_norm", x, groups);
  if (out.shape() != x.shape()) fail("group_norm (cuda): output shape differs from the input's");
  if (x.numel() == 0) return;
  KernelContext ctx(x, "group_norm");
  dispatch_floating(x.dtype(), "group_norm",
                    [&]<class T>() { gn_forward<T>(ctx, x, groups, w, b, eps, out, mean, rstd); });
}

void gn_backward_cuda(const Tensor& g, const Tensor& x, int64_t groups, const Tensor& mean,
                      const Tensor& rstd, const Tensor& w, const Tensor& gi, const Tensor& gw,
                      const Tensor& gb) {
  const int64_t N = x.dim() == 3 ? x.size(0) : 0, C = x.dim() == 3 ? x.size(1) : 0;
  check_norm("group_norm backward", x, 3,
             {{&mean, N * groups}, {&rstd, N * groups}, {&w, C}, {&gw, C}, {&gb, C}});
  check_groups("group_norm backward", x, groups);
  if (g.shape() != x.shape() || (gi.defined() && gi.shape() != x.shape()))
    fail("group_norm backward (cuda): gradient shapes differ from the input's {}", shape_str(x.shape()));
  if (x.numel() == 0) return;
  KernelContext ctx(x, "group_norm backward");
  dispatch_floating(x.dtype(), "group_norm_backward",
                    [&]<class T>() { gn_backward<T>(ctx, g, x, groups, mean, rstd, w, gi, gw, gb); });
}

}  // namespace

EMBER_REGISTER_KERNEL(batch_norm_stats_stub, cuda, &bn_stats_cuda);
EMBER_REGISTER_KERNEL(batch_norm_apply_stub, cuda, &bn_apply_cuda);
EMBER_REGISTER_KERNEL(batch_norm_backward_stub, cuda, &bn_backward_cuda);
EMBER_REGISTER_KERNEL(layer_norm_forward_stub, cuda, &ln_forward_cuda);
EMBER_REGISTER_KERNEL(layer_norm_backward_stub, cuda, &ln_backward_cuda);
EMBER_REGISTER_KERNEL(group_norm_forward_stub, cuda, &gn_forward_cuda);
EMBER_REGISTER_KERNEL(group_norm_backward_stub, cuda, &gn_backward_cuda);

}  // namespace ember::cuda
