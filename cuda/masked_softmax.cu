// CUDA masked softmax of attention, forward and backward (contract: ops/kernels/masked_softmax.h;
// the CPU twin is ops/cpu/masked_softmax.cpp, and the arithmetic is the same step for step).
//
// One warp per row (the Tk scores of one query): lane l takes keys l, l + 32, ..., so each step
// of the warp reads 32 neighbouring scores (one coalesced access), and the warp combines its
// lanes' partial max / sum with butterfly shuffles (__shfl_xor_sync), after which every lane holds
// the result: no shared memory and no __syncthreads. A block is kWarps warps on kWarps rows; the
// grid strides over rows. Attention rows are short (Tk is a sequence length, up to a few thousand),
// so a warp per row keeps every SM busy with many rows at once, and the row's second and third
// reads come from L1/L2. Only the causally visible prefix of a row is read.
#include <cstdint>

#include "cuda/math.cuh"
#include "cuda/runtime.h"
#include "ops/kernels/masked_softmax.h"

namespace ember::cuda {
namespace {

constexpr int kWarps = 8;  // rows (warps) per block
constexpr int kWarpSize = 32;
constexpr unsigned int kFullMask = 0xffffffffu;

// max that lets a NaN through, so a NaN score makes its row NaN. (The CPU keeps its max loop
// vectorisable and catches the NaN later; the results are the same.)
template <class T>
__device__ __forceinline__ T nan_max(T m, T v) {
  return (v > m || v != v) ? v : m;
}

template <class T>
__device__ __forceinline__ T warp_max(T v) {
  for (int off = kWarpSize / 2; off > 0; off /= 2) v = nan_max(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
  for (int off = kWarpSize / 2; off > 0; off /= 2) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

struct Rows {
  int64_t count, H, Tq, Tk;
};

// The rows of warp w are w, w + total warps, ...: the loop condition depends on the warp alone,
// so all 32 lanes always take part in the shuffles.
__device__ __forceinline__ int64_t first_row() {
  return static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarpSize;
}
__device__ __forceinline__ int64_t row_stride() { return static_cast<int64_t>(gridDim.x) * kWarps; }

template <class T, bool kPadded>
__global__ void masked_softmax_kernel(T* y, const T* x, const bool* pad, Rows rows, T scale, bool causal) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t Tk = rows.Tk;
  const T neg_inf = -HUGE_VAL;
  for (int64_t r = first_row(); r < rows.count; r += row_stride()) {
    const int64_t visible = visible_keys(r % rows.Tq, rows.Tq, Tk, causal);
    const T* xr = x + r * Tk;
    T* yr = y + r * Tk;
    const bool* pr = kPadded ? pad + (r / (rows.H * rows.Tq)) * Tk : nullptr;
    // 1. the max of the visible scaled scores
    T m = neg_inf;
    for (int64_t j = lane; j < visible; j += kWarpSize)
      if (!kPadded || !pr[j]) m = nan_max(m, scale * xr[j]);
    m = warp_max(m);
    if (m == neg_inf) {  // no visible key with a score above -inf: a row of zeros
      for (int64_t j = lane; j < Tk; j += kWarpSize) yr[j] = T(0);
      continue;
    }
    // 2. the sum of exp(v - m), in double
    double s = 0;
    for (int64_t j = lane; j < visible; j += kWarpSize)
      if (!kPadded || !pr[j]) s += static_cast<double>(dmath::exp(scale * xr[j] - m));
    s = warp_sum(s);
    // 3. the weights; hidden keys get 0
    const T inv = static_cast<T>(1.0 / s);
    for (int64_t j = lane; j < Tk; j += kWarpSize)
      yr[j] = (j < visible && (!kPadded || !pr[j])) ? dmath::exp(scale * xr[j] - m) * inv : T(0);
  }
}

// grad_x_j = scale * y_j * (g_j - sum_k g_k y_k); causally hidden keys are written as 0 unread.
template <class T>
__global__ void masked_softmax_backward_kernel(T* gx, const T* g, const T* y, Rows rows, T scale,
                                               bool causal) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t Tk = rows.Tk;
  for (int64_t r = first_row(); r < rows.count; r += row_stride()) {
    const int64_t visible = visible_keys(r % rows.Tq, rows.Tq, Tk, causal);
    const T* gr = g + r * Tk;
    const T* yr = y + r * Tk;
    T* gxr = gx + r * Tk;
    double dot = 0;
    for (int64_t j = lane; j < visible; j += kWarpSize) dot += static_cast<double>(gr[j]) * yr[j];
    const T d = static_cast<T>(warp_sum(dot));
    for (int64_t j = lane; j < Tk; j += kWarpSize) gxr[j] = j < visible ? scale * yr[j] * (gr[j] - d) : T(0);
  }
}

// The kernels index raw rows: every tensor must be a contiguous [B, H, Tq, Tk] of one dtype.
void check_rows(const char* op, const std::vector<const Tensor*>& ts) {
  const Tensor& first = *ts[0];
  for (const Tensor* t : ts)
    if (t->dim() != 4 || t->shape() != first.shape() || t->dtype() != first.dtype() || !t->is_contiguous() ||
        t->device() != first.device())
      fail(
          "{} (cuda): expected contiguous [B, H, Tq, Tk] tensors of one shape, dtype and device, "
          "got {} {} and {} {}",
          op, shape_str(first.shape()), first.dtype(), shape_str(t->shape()), t->dtype());
}

Rows rows_of(const Tensor& t) {
  return Rows{t.size(0) * t.size(1) * t.size(2), t.size(1), t.size(2), t.size(3)};
}

void masked_softmax_cuda(const Tensor& out, const Tensor& scores, const Tensor& key_padding_mask,
                         double scale, bool causal) {
  check_rows("masked_softmax", {&out, &scores});
  const bool padded = key_padding_mask.defined();
  if (padded && (key_padding_mask.dtype() != DType::boolean || !key_padding_mask.is_contiguous() ||
                 key_padding_mask.shape() != Shape{scores.size(0), scores.size(3)} ||
                 key_padding_mask.device() != scores.device()))
    fail("masked_softmax (cuda): key_padding_mask must be a contiguous bool [B, Tk] on {}, got {} {} on {}",
         scores.device(), shape_str(key_padding_mask.shape()), key_padding_mask.dtype(),
         key_padding_mask.device());
  const Rows rows = rows_of(scores);
  if (rows.count == 0 || rows.Tk == 0) return;
  KernelContext ctx(scores, "masked_softmax");
  const unsigned int grid = blocks_for(rows.count, kWarps);
  dispatch_floating(scores.dtype(), "masked_softmax", [&]<class T>() {
    T* y = static_cast<T*>(out.raw_data());
    const T* x = static_cast<const T*>(scores.raw_data());
    const T s = static_cast<T>(scale);
    if (padded) {
      const bool* pad = static_cast<const bool*>(key_padding_mask.raw_data());
      masked_softmax_kernel<T, true><<<grid, kWarps * kWarpSize, 0, ctx.stream>>>(y, x, pad, rows, s, causal);
    } else {
      masked_softmax_kernel<T, false>
          <<<grid, kWarps * kWarpSize, 0, ctx.stream>>>(y, x, nullptr, rows, s, causal);
    }
    EMBER_CUDA_CHECK_LAUNCH("masked_softmax_kernel");
  });
}

void masked_softmax_backward_cuda(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                  double scale, bool causal) {
  check_rows("masked_softmax_backward", {&grad_in, &grad_out, &out});
  const Rows rows = rows_of(out);
  if (rows.count == 0 || rows.Tk == 0) return;
  KernelContext ctx(out, "masked_softmax_backward");
  const unsigned int grid = blocks_for(rows.count, kWarps);
  dispatch_floating(out.dtype(), "masked_softmax_backward", [&]<class T>() {
    masked_softmax_backward_kernel<T><<<grid, kWarps * kWarpSize, 0, ctx.stream>>>(
        static_cast<T*>(grad_in.raw_data()), static_cast<const T*>(grad_out.raw_data()),
        static_cast<const T*>(out.raw_data()), rows, static_cast<T>(scale), causal);
    EMBER_CUDA_CHECK_LAUNCH("masked_softmax_backward_kernel");
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(masked_softmax_stub, cuda, &masked_softmax_cuda);
EMBER_REGISTER_KERNEL(masked_softmax_backward_stub, cuda, &masked_softmax_backward_cuda);

}  // namespace ember::cuda
