// CUDA kernels of OPL (contract: losses/kernels/opl.h; the CPU reference is losses/cpu/opl.cpp,
// the math docs/losses/opl.md). The batch Gram formulation, as on the CPU:
//
// Forward
//   1. normalize_rows_kernel: one block per row; |f_i| by a block reduction in double, then
//      f^_i = f_i / max(|f_i|, 1e-12).
//   2. G = F^ F^T on cuBLAS (gemm_rowmajor), then mirror_upper_kernel copies the upper triangle
//      onto the lower one so that G is exactly symmetric (the GEMM may round G_ij and G_ji
//      differently, and sign(G) must agree between the two in the backward).
//   3. pair_sums_kernel: a grid-stride pass over the upper triangle i < j accumulating, in double,
//      the positive-pair sum of G, the negative-pair sum of c(G) and both pair counts. Each block
//      writes its four partial sums; finish_loss_kernel (one block) adds the partials in a fixed
//      order, so the result is deterministic (no floating-point atomics), and writes
//      loss = 1 - s + gamma d.
// Backward
//   1. pair_sums_kernel again, for the counts P and Q (it only reads labels and G: O(B^2)).
//   2. weights_kernel: W_ij = 2 g (-[pos] / P + gamma [neg] c'(G_ij) / Q) with g the upstream
//      gradient, read on the device (folding it into W avoids a host round trip).
//   3. grad = W F^ on cuBLAS; W is symmetric, so this is (W + W^T) F^ / 2 as the math needs.
//   4. project_rows_kernel: one block per row removes the radial component and divides by the
//      norm: (g_i - f^_i (f^_i . g_i)) / |f_i|, or g_i / 1e-12 where the norm was clamped.
#include <algorithm>
#include <cstdint>

#include "cuda/blas.h"
#include "cuda/loops.cuh"
#include "cuda/math.cuh"
#include "losses/kernels/opl.h"

namespace ember::losses::cuda_kernels {
namespace {

using ember::cuda::blocks_for;
using ember::cuda::KernelContext;
using ember::cuda::kThreads;

constexpr int kRowThreads = 256;  // threads per block of the per-row kernels (a power of two)
constexpr int kPairBlocks = 256;  // blocks of the pair reduction (its partials are summed in order)
constexpr unsigned int kMaxGrid = 65535;

__device__ double block_sum(double v, double* slots) {
  const int tid = threadIdx.x;
  slots[tid] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (tid < half) slots[tid] += slots[tid + half];
    __syncthreads();
  }
  const double r = slots[0];
  __syncthreads();
  return r;
}

template <class T>
__global__ void normalize_rows_kernel(T* fhat, T* norms, const T* f, int64_t B, int64_t D) {
  __shared__ double slots[kRowThreads];
  for (int64_t i = blockIdx.x; i < B; i += gridDim.x) {
    const T* row = f + i * D;
    double sq = 0;
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x) sq += static_cast<double>(row[k]) * row[k];
    const double norm = ::sqrt(block_sum(sq, slots));
    if (threadIdx.x == 0) norms[i] = static_cast<T>(norm);
    // (as the CPU's std::max(norm, floor): a NaN norm stays NaN)
    const T inv = static_cast<T>(1.0 / (norm < kOPLNormFloor ? kOPLNormFloor : norm));
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x) fhat[i * D + k] = row[k] * inv;
  }
}

template <class T>
__global__ void mirror_upper_kernel(T* G, int64_t B) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < B * B;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / B, j = e % B;
    if (j < i) G[e] = G[j * B + i];
  }
}

// partials[block * 4 + q]: q = 0 positive sum of G, 1 negative sum of c(G), 2 P, 3 Q (ordered pairs).
template <class T>
__global__ void pair_sums_kernel(double* partials, const T* G, const int64_t* y, int64_t B,
                                 bool absolute_inter) {
  __shared__ double slots[kRowThreads];
  double pos = 0, neg = 0, np = 0, nn = 0;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < B * B;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / B, j = e % B;
    if (j <= i) continue;  // each unordered pair once; it stands for two ordered ones
    const double g = G[e];
    if (y[i] == y[j]) {
      pos += 2 * g;
      np += 2;
    } else {
      neg += 2 * (absolute_inter ? ::fabs(g) : g);
      nn += 2;
    }
  }
  pos = block_sum(pos, slots);
  neg = block_sum(neg, slots);
  np = block_sum(np, slots);
  nn = block_sum(nn, slots);
  if (threadIdx.x == 0) {
    double* out = partials + blockIdx.x * 4;
    out[0] = pos;
    out[1] = neg;
    out[2] = np;
    out[3] = nn;
  }
}

// Adds the partials of `blocks` blocks in a fixed order into totals[0..3] (one block launch).
__global__ void sum_partials_kernel(double* totals, const double* partials, int blocks) {
  __shared__ double slots[kRowThreads];
  for (int q = 0; q < 4; ++q) {
    double v = 0;
    for (int b = threadIdx.x; b < blocks; b += blockDim.x) v += partials[b * 4 + q];
    v = block_sum(v, slots);
    if (threadIdx.x == 0) totals[q] = v;
  }
}

template <class T>
__global__ void finish_loss_kernel(T* loss, const double* totals, double gamma) {
  const double s = totals[2] > 0 ? totals[0] / totals[2] : 0.0;  // an empty mean is 0
  const double d = totals[3] > 0 ? totals[1] / totals[3] : 0.0;
  *loss = static_cast<T>(1.0 - s + gamma * d);
}

template <class T>
__global__ void weights_kernel(T* W, const T* G, const int64_t* y, const double* totals, const T* grad_loss,
                               int64_t B, double gamma, bool absolute_inter) {
  const double P = totals[2], Q = totals[3];
  const T w_pos = P > 0 ? static_cast<T>(-1.0 / P) : T(0);
  const T w_neg = Q > 0 ? static_cast<T>(gamma / Q) : T(0);
  const T scale = T(2) * *grad_loss;  // dL/dF^ = (W + W^T) F^ = 2 W F^
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < B * B;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / B, j = e % B;
    T w = 0;
    if (i != j) {
      const T g = G[e];
      const T sign = static_cast<T>((g > 0) - (g < 0));  // sign(0) = 0, as PyTorch's abs backward
      w = y[i] == y[j] ? w_pos : w_neg * (absolute_inter ? sign : T(1));
    }
    W[e] = scale * w;
  }
}

template <class T>
__global__ void project_rows_kernel(T* grad, const T* fhat, const T* norms, int64_t B, int64_t D) {
  __shared__ double slots[kRowThreads];
  for (int64_t i = blockIdx.x; i < B; i += gridDim.x) {
    T* g = grad + i * D;
    const T* u = fhat + i * D;
    if (!(norms[i] > kOPLNormFloor)) {  // clamped: f^ = f / 1e-12 is linear in f (block-uniform)
      for (int64_t k = threadIdx.x; k < D; k += blockDim.x) g[k] = static_cast<T>(g[k] / kOPLNormFloor);
      continue;
    }
    double radial = 0;
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x) radial += static_cast<double>(u[k]) * g[k];
    const T r = static_cast<T>(block_sum(radial, slots)), inv = static_cast<T>(1.0 / norms[i]);
    for (int64_t k = threadIdx.x; k < D; k += blockDim.x) g[k] = (g[k] - u[k] * r) * inv;
  }
}

unsigned int row_grid(int64_t rows) { return static_cast<unsigned int>(rows < kMaxGrid ? rows : kMaxGrid); }

// totals (float64 [4] on the device) = positive sum, negative sum, P, Q.
template <class T>
Tensor pair_totals(const KernelContext& ctx, const Tensor& gram, const Tensor& labels, bool absolute_inter) {
  const int64_t B = gram.size(0);
  const Device device = gram.device();
  const unsigned int blocks = std::min<unsigned int>(kPairBlocks, blocks_for(B * B, kRowThreads));
  Tensor partials = empty_tensor({static_cast<int64_t>(blocks), 4}, DType::float64, device);
  Tensor totals = empty_tensor({4}, DType::float64, device);
  pair_sums_kernel<T><<<blocks, kRowThreads, 0, ctx.stream>>>(
      static_cast<double*>(partials.raw_data()), static_cast<const T*>(gram.raw_data()),
      static_cast<const int64_t*>(labels.raw_data()), B, absolute_inter);
  EMBER_CUDA_CHECK_LAUNCH("pair_sums_kernel");
  sum_partials_kernel<<<1, kRowThreads, 0, ctx.stream>>>(static_cast<double*>(totals.raw_data()),
                                                         static_cast<const double*>(partials.raw_data()),
                                                         static_cast<int>(blocks));
  EMBER_CUDA_CHECK_LAUNCH("sum_partials_kernel");
  return totals;
}

void opl_forward_cuda(const Tensor& loss, const Tensor& normalized, const Tensor& norms, const Tensor& gram,
                      const Tensor& features, const Tensor& labels, double gamma, bool absolute_inter) {
  KernelContext ctx(features, "opl");
  const int64_t B = features.size(0), D = features.size(1);
  dispatch_floating(features.dtype(), "opl", [&]<class T>() {
    T* fhat = static_cast<T*>(normalized.raw_data());
    T* G = static_cast<T*>(gram.raw_data());
    normalize_rows_kernel<T><<<row_grid(B), kRowThreads, 0, ctx.stream>>>(
        fhat, static_cast<T*>(norms.raw_data()), static_cast<const T*>(features.raw_data()), B, D);
    EMBER_CUDA_CHECK_LAUNCH("normalize_rows_kernel");
    // G [B, B] = F^ [B, D] @ F^^T: the second operand is F^'s buffer read transposed
    ember::cuda::gemm_rowmajor<T>(ctx.device, false, true, B, B, D, T(1), fhat, D, 0, fhat, D, 0, T(0), G, B,
                                  0);
    mirror_upper_kernel<T><<<blocks_for(B * B, kThreads), kThreads, 0, ctx.stream>>>(G, B);
    EMBER_CUDA_CHECK_LAUNCH("mirror_upper_kernel");
    Tensor totals = pair_totals<T>(ctx, gram, labels, absolute_inter);
    finish_loss_kernel<T><<<1, 1, 0, ctx.stream>>>(static_cast<T*>(loss.raw_data()),
                                                   static_cast<const double*>(totals.raw_data()), gamma);
    EMBER_CUDA_CHECK_LAUNCH("finish_loss_kernel");
  });
}

void opl_backward_cuda(const Tensor& grad, const Tensor& grad_loss, const Tensor& normalized,
                       const Tensor& norms, const Tensor& gram, const Tensor& labels, double gamma,
                       bool absolute_inter) {
  KernelContext ctx(grad, "opl backward");
  const int64_t B = normalized.size(0), D = normalized.size(1);
  dispatch_floating(grad.dtype(), "opl", [&]<class T>() {
    const T* fhat = static_cast<const T*>(normalized.raw_data());
    const T* G = static_cast<const T*>(gram.raw_data());
    Tensor totals = pair_totals<T>(ctx, gram, labels, absolute_inter);
    Tensor W = empty_tensor({B, B}, grad.dtype(), grad.device());
    weights_kernel<T><<<blocks_for(B * B, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(W.raw_data()), G, static_cast<const int64_t*>(labels.raw_data()),
        static_cast<const double*>(totals.raw_data()), static_cast<const T*>(grad_loss.raw_data()), B, gamma,
        absolute_inter);
    EMBER_CUDA_CHECK_LAUNCH("weights_kernel");
    T* g = static_cast<T*>(grad.raw_data());
    ember::cuda::gemm_rowmajor<T>(ctx.device, false, false, B, D, B, T(1),
                                  static_cast<const T*>(W.raw_data()), B, 0, fhat, D, 0, T(0), g, D, 0);
    project_rows_kernel<T>
        <<<row_grid(B), kRowThreads, 0, ctx.stream>>>(g, fhat, static_cast<const T*>(norms.raw_data()), B, D);
    EMBER_CUDA_CHECK_LAUNCH("project_rows_kernel");
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(opl_forward_stub, cuda, &opl_forward_cuda);
EMBER_REGISTER_KERNEL(opl_backward_stub, cuda, &opl_backward_cuda);

}  // namespace ember::losses::cuda_kernels
