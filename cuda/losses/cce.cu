// CUDA kernels of Cut Cross-Entropy (contract: losses/kernels/cce.h; the CPU reference is
// losses/cpu/cce_forward.cpp and cce_backward.cpp, the method in ../shared/papers/cce.md).
//
// The registered entry points send float32 and bfloat16 to the tiled tensor-core kernels of
// cce_tiled.cu and keep float64 on the kernels below (and float32 where no tiled configuration
// fits the device's shared memory: the float32 backward on sm_86 / sm_89).
//
// This is the simple, correct version: every logit zhat_rj = softcap(e_r . c_j + b_j) is
// computed by one warp (its 32 lanes split the D products, a shuffle reduction adds them, in a
// fixed order so every recomputation of the same logit gives the same bits) and consumed at once;
// no logit is ever written to global memory and nothing of size R x V is allocated. It uses no
// shared-memory GEMM tiles: it is the float64 path and the reference the tiled kernels are
// checked against.
//
// Forward (cce_forward_kernel): one block per scored row. Each warp computes the target logit,
// then sweeps a strided share of the vocabulary keeping an online log-sum-exp (running max m, sum
// s of exp(z - m) in double) and, when asked, setting the signal mask's bit of each class with
// z >= max(m, target logit) + log eps - margin; the block combines the warps' (m, s) pairs and
// thread 0 writes lse and nll. logit_avg_kernel (only when asked): one block per vocabulary
// entry, warps over the scored rows, a fixed-order sum divided by n.
//
// Backward: dz_rj = g (S_rj - 1[j = x]) + h S_rj (times the soft cap's slope), recomputed from lse.
//   * Gradient filtering (filter_eps > 0): tile_flags_kernel marks each tile (the CPU's tiles:
//     bwd_rows consecutive scored rows x bwd_vocab consecutive positions of the visiting order,
//     from ember::cpu::cce::tile_config(), so both backends skip the same tiles) as kept when some
//     |S - onehot| >= eps or it holds the target of a row with an LSE gradient h != 0, with the
//     CPU's exact test, after the signal mask's test (which drops a tile without computing its
//     logits). Skipped tiles compute no logits below.
//   * dE (de_kernel): one block per scored row; chunks of 64 vocabulary positions: the warps put
//     the chunk's dz into shared memory, then the threads, one per feature d, add
//     sum_c dz_c C[j_c, d] into dE[r, d]. Each block alone writes its row: no atomics.
//   * dC and db (dc_kernel): one block per vocabulary entry, the mirror image over chunks of 64
//     scored rows, adding sum_c dz_c E[r_c, d] into dC[j, d] and sum_c dz_c into db[j].
// Every sum runs in a fixed order, so results are deterministic run to run. Accumulation is in T
// (fp32 for float32 inputs, as in the CPU's GEMMs), the log-sum-exp sums in double.
#include <cstdint>

#include "cuda/loops.cuh"
#include "cuda/losses/cce_tiled.h"
#include "cuda/math.cuh"
#include "losses/cpu/cce_config.h"
#include "losses/kernels/cce.h"

namespace ember::cuda_kernels::cce {
namespace {

using ember::cuda::KernelContext;
namespace dmath = ember::cuda::dmath;

constexpr int kWarps = 8;
constexpr int kBlockThreads = kWarps * 32;
constexpr int kChunk = 64;  // vocabulary positions (dE) or scored rows (dC) per shared-memory chunk
constexpr unsigned int kMaxGrid = 65535;
constexpr unsigned int kFullMask = 0xffffffffu;

// a . b over D, by one warp; every lane returns the same value (lane 0's sum, broadcast).
template <class T>
__device__ __forceinline__ T warp_dot(const T* a, const T* b, int64_t D, int lane) {
  T s = 0;
  for (int64_t d = lane; d < D; d += 32) s += a[d] * b[d];
  for (int off = 16; off > 0; off /= 2) s += __shfl_down_sync(kFullMask, s, off);
  return __shfl_sync(kFullMask, s, 0);
}

struct Problem {
  int64_t n, V, D;
  const int64_t* rows;     // [n] scored rows of E, ascending
  const int64_t* targets;  // [n] their class ids
};

// The (capped) logit zhat_rj, as the CPU's finish_logits: add the bias, then cap * tanh(z / cap).
template <class T>
__device__ __forceinline__ T logit(const T* E, const T* C, const T* bias, int64_t r, int64_t j, int64_t D,
                                   T cap, int lane) {
  T z = warp_dot(E + r * D, C + j * D, D, lane);
  if (bias) z += bias[j];
  if (cap > 0) z = cap * dmath::tanh(z * (T(1) / cap));
  return z;
}

// The signal mask (losses/kernels/cce.h): where the forward records which classes may pass the
// backward's filter for each group of kSignalRows scored rows.
struct SignalMask {
  uint32_t* bits;  // [groups x words] or null (not wanted)
  int64_t words;
  double log_eps;  // a class is marked when z >= signal_threshold(L, log_eps)
};

__device__ __forceinline__ void mark_signal(const SignalMask& mask, int64_t k, int64_t j) {
  uint32_t* word = mask.bits + (k / kSignalRows) * mask.words + j / 32;
  const uint32_t bit = 1u << (j % 32);
  if (!(*static_cast<volatile uint32_t*>(word) & bit)) atomicOr(word, bit);  // bits are only ever set
}

template <class T>
__global__ void cce_forward_kernel(T* lse, T* nll, const T* E, const T* C, const T* bias, Problem p, T cap,
                                   SignalMask mask) {
  __shared__ T warp_m[kWarps];
  __shared__ double warp_s[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T neg_inf = -HUGE_VAL;
  for (int64_t k = blockIdx.x; k < p.n; k += gridDim.x) {
    const int64_t r = p.rows[k];
    const T zt = logit(E, C, bias, r, p.targets[k], p.D, cap, lane);
    if (mask.bits && threadIdx.x == 0) mark_signal(mask, k, p.targets[k]);
    T m = neg_inf;  // the warp's online log-sum-exp: lse = m + log s
    double s = 0;
    for (int64_t j = warp; j < p.V; j += kWarps) {
      const T z = logit(E, C, bias, r, j, p.D, cap, lane);
      // The running max and the target logit are lower bounds of lse; a NaN logit marks.
      if (mask.bits && lane == 0 && !(z < signal_threshold<T>(m > zt ? m : zt, mask.log_eps)))
        mark_signal(mask, k, j);
      if (z != z) {
        s = z;  // NaN propagates into lse
      } else if (z > m) {
        s = s * ::exp(static_cast<double>(m) - z) + 1.0;  // rescale to the new max (m = -inf: s = 0)
        m = z;
      } else if (z != neg_inf) {
        s += ::exp(static_cast<double>(z) - m);
      }
    }
    if (lane == 0) {
      warp_m[warp] = m;
      warp_s[warp] = s;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      T M = neg_inf;
      for (int w = 0; w < kWarps; ++w) M = warp_m[w] > M ? warp_m[w] : M;
      double S = 0;
      for (int w = 0; w < kWarps; ++w)
        if (warp_m[w] != neg_inf || warp_s[w] != warp_s[w])
          S += warp_s[w] * ::exp(static_cast<double>(warp_m[w]) - M);
      const T l = S != S ? static_cast<T>(S) : M == neg_inf ? neg_inf : static_cast<T>(M + ::log(S));
      lse[r] = l;
      nll[r] = l - zt;
    }
    __syncthreads();  // the warp slots are rewritten for the next row
  }
}

template <class T>
__global__ void logit_avg_kernel(T* avg, const T* E, const T* C, const T* bias, Problem p, T cap) {
  __shared__ double warp_sum[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t j = blockIdx.x; j < p.V; j += gridDim.x) {
    double acc = 0;
    for (int64_t k = warp; k < p.n; k += kWarps) acc += logit(E, C, bias, p.rows[k], j, p.D, cap, lane);
    if (lane == 0) warp_sum[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
      double total = 0;
      for (int w = 0; w < kWarps; ++w) total += warp_sum[w];
      avg[j] = static_cast<T>(total / static_cast<double>(p.n));
    }
    __syncthreads();
  }
}

// What the backward needs per scored row besides the logits.
template <class T>
struct Grads {
  const T* lse;          // [R]
  const T* grad_nll;     // [R]
  const T* grad_lse;     // [R] or null (zero)
  const int64_t* order;  // [V] visiting order or null (identity)
  const uint8_t* kept;   // [row blocks x vocab blocks] or null (no filtering)
  int64_t NB, VB, vocab_blocks;
  T cap;
  const uint32_t* signal;  // the forward's signal mask [groups x signal_words] or null
  int64_t signal_words;
};

template <class T>
__device__ __forceinline__ int64_t class_at(const Grads<T>& g, int64_t position) {
  return g.order ? g.order[position] : position;
}
template <class T>
__device__ __forceinline__ bool tile_kept(const Grads<T>& g, int64_t k, int64_t position) {
  return !g.kept || g.kept[(k / g.NB) * g.vocab_blocks + position / g.VB];
}

// dz for scored row k and class j from its logit z (the CPU's gradient_row).
template <class T>
__device__ __forceinline__ T dz_of(T z, int64_t r, bool is_target, const Grads<T>& g) {
  const T lse = g.lse[r], gn = g.grad_nll[r], h = g.grad_lse ? g.grad_lse[r] : T(0);
  const T gh = gn + h;
  if (is_target) {
    T dz = gh * dmath::exp(z - lse) - gn;
    if (g.cap > 0) {
      const T u = z / g.cap;
      dz *= T(1) - u * u;
    }
    return dz;
  }
  if (g.cap > 0) {
    const T u = z * (T(1) / g.cap);
    return gh * dmath::exp(z - lse) * (T(1) - u * u);
  }
  return gh * dmath::exp(z - lse);
}

// kept[tile] = does some entry of the tile have |S - onehot| >= eps, or is the target of a row with
// an LSE gradient h != 0 in it (the CPU's tile_has_signal, entry by entry: off the target S >= eps
// <=> z - lse >= log eps; a NaN keeps the tile). On the target dz = g (S - 1) + h S is ~h on a
// confident row however small |S - 1| is, hence the rule; every skipped entry then has
// |dz| < (|g| + |h|) eps (the derivation is at the CPU's tile_has_signal).
template <class T>
__global__ void tile_flags_kernel(uint8_t* kept, const T* E, const T* C, const T* bias, Problem p, Grads<T> g,
                                  int64_t row_blocks, T eps) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T log_eps = dmath::log(eps);
  for (int64_t tile = blockIdx.x; tile < row_blocks * g.vocab_blocks; tile += gridDim.x) {
    const int64_t k0 = (tile / g.vocab_blocks) * g.NB, p0 = (tile % g.vocab_blocks) * g.VB;
    const int64_t nb = min(g.NB, p.n - k0), cols = min(g.VB, p.V - p0);
    // The signal mask's test first: without a marked (row group, class) or a NaN lse the
    // filter would drop the tile, and no logit of it need be computed.
    int maybe = g.signal ? 0 : 1;
    if (g.signal) {
      for (int64_t i = threadIdx.x; i < nb; i += blockDim.x) maybe |= dmath::isnan(g.lse[p.rows[k0 + i]]);
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
        for (int64_t k = k0; k < k0 + nb; k += kSignalRows - k % kSignalRows)  // each row group once
          maybe |= signal_bit(g.signal, g.signal_words, k, class_at(g, p0 + c));
    }
    int signal = 0;
    maybe = __syncthreads_or(maybe);
    for (int64_t e = warp; maybe && e < nb * cols && !signal; e += kWarps) {
      const int64_t k = k0 + e / cols, j = class_at(g, p0 + e % cols), r = p.rows[k];
      const T z = logit(E, C, bias, r, j, p.D, g.cap, lane), lse = g.lse[r];
      if (p.targets[k] == j)  // an LSE gradient h != 0 keeps its row's target tile (the CPU's rule)
        signal = (g.grad_lse && g.grad_lse[r] != T(0)) || !(dmath::fabs(dmath::exp(z - lse) - T(1)) < eps);
      else
        signal = !(z - lse < log_eps);
    }
    signal = __syncthreads_or(signal);
    if (threadIdx.x == 0) kept[tile] = signal ? 1 : 0;
  }
}

template <class T>
__global__ void de_kernel(T* dE, const T* E, const T* C, const T* bias, Problem p, Grads<T> g) {
  __shared__ T dz_s[kChunk];
  __shared__ int64_t class_s[kChunk];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t k = blockIdx.x; k < p.n; k += gridDim.x) {
    const int64_t r = p.rows[k];
    for (int64_t q0 = 0; q0 < p.V; q0 += kChunk) {
      const int64_t cols = min(static_cast<int64_t>(kChunk), p.V - q0);
      for (int64_t c = warp; c < cols; c += kWarps) {
        const int64_t j = class_at(g, q0 + c);
        T dz = 0;
        if (tile_kept(g, k, q0 + c))
          dz = dz_of(logit(E, C, bias, r, j, p.D, g.cap, lane), r, p.targets[k] == j, g);
        if (lane == 0) {
          dz_s[c] = dz;
          class_s[c] = j;
        }
      }
      __syncthreads();
      for (int64_t d = threadIdx.x; d < p.D; d += blockDim.x) {
        T acc = dE[r * p.D + d];
        for (int64_t c = 0; c < cols; ++c)
          if (dz_s[c] != T(0)) acc += dz_s[c] * C[class_s[c] * p.D + d];
        dE[r * p.D + d] = acc;
      }
      __syncthreads();
    }
  }
}

template <class T>
__global__ void dc_kernel(T* dC, T* db, const T* E, const T* C, const T* bias, Problem p, Grads<T> g) {
  __shared__ T dz_s[kChunk];
  __shared__ int64_t row_s[kChunk];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t q = blockIdx.x; q < p.V; q += gridDim.x) {
    const int64_t j = class_at(g, q);
    for (int64_t k0 = 0; k0 < p.n; k0 += kChunk) {
      const int64_t nb = min(static_cast<int64_t>(kChunk), p.n - k0);
      for (int64_t c = warp; c < nb; c += kWarps) {
        const int64_t k = k0 + c, r = p.rows[k];
        T dz = 0;
        if (tile_kept(g, k, q))
          dz = dz_of(logit(E, C, bias, r, j, p.D, g.cap, lane), r, p.targets[k] == j, g);
        if (lane == 0) {
          dz_s[c] = dz;
          row_s[c] = r;
        }
      }
      __syncthreads();
      if (dC)
        for (int64_t d = threadIdx.x; d < p.D; d += blockDim.x) {
          T acc = dC[j * p.D + d];
          for (int64_t c = 0; c < nb; ++c)
            if (dz_s[c] != T(0)) acc += dz_s[c] * E[row_s[c] * p.D + d];
          dC[j * p.D + d] = acc;
        }
      if (db && threadIdx.x == 0) {
        T acc = db[j];
        for (int64_t c = 0; c < nb; ++c) acc += dz_s[c];
        db[j] = acc;
      }
      __syncthreads();
    }
  }
}

unsigned int grid_for(int64_t items) {
  return static_cast<unsigned int>(items < kMaxGrid ? items : kMaxGrid);
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

// float64, or float32 where the tiled kernels do not fit (the only dtypes that come here).
size_t element_bytes(const Tensor& E) { return E.dtype() == DType::float64 ? sizeof(double) : sizeof(float); }

Problem problem_of(const Tensor& C, const Tensor& rows, const Tensor& targets) {
  return Problem{rows.numel(), C.size(0), C.size(1), static_cast<const int64_t*>(rows.raw_data()),
                 static_cast<const int64_t*>(targets.raw_data())};
}

void cce_forward_cuda(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                      const Tensor& targets, double softcap, const Tensor& lse, const Tensor& nll,
                      const Tensor& logit_avg, double filter_eps, const Tensor& signal_mask) {
  if (E.dtype() != DType::float64 &&
      tiled_forward(E, C, bias, rows, targets, softcap, lse, nll, logit_avg, filter_eps, signal_mask))
    return;
  const Problem p = problem_of(C, rows, targets);
  KernelContext ctx(E, "cut_cross_entropy");
  if (p.n == 0) {
    if (logit_avg.defined())
      EMBER_CUDA_CHECK(cudaMemsetAsync(logit_avg.raw_data(), 0, p.V * element_bytes(E), ctx.stream));
    return;
  }
  dispatch_floating(E.dtype(), "cut_cross_entropy", [&]<class T>() {
    const T* e = static_cast<const T*>(E.raw_data());
    const T* c = static_cast<const T*>(C.raw_data());
    const T cap = static_cast<T>(softcap);
    const SignalMask mask{signal_mask.defined() ? static_cast<uint32_t*>(signal_mask.raw_data()) : nullptr,
                          signal_mask_words(p.V), std::log(filter_eps)};
    cce_forward_kernel<T><<<grid_for(p.n), kBlockThreads, 0, ctx.stream>>>(
        static_cast<T*>(lse.raw_data()), static_cast<T*>(nll.raw_data()), e, c, ptr_or_null<T>(bias), p, cap,
        mask);
    EMBER_CUDA_CHECK_LAUNCH("cce_forward_kernel");
    if (logit_avg.defined()) {
      logit_avg_kernel<T><<<grid_for(p.V), kBlockThreads, 0, ctx.stream>>>(
          static_cast<T*>(logit_avg.raw_data()), e, c, ptr_or_null<T>(bias), p, cap);
      EMBER_CUDA_CHECK_LAUNCH("logit_avg_kernel");
    }
  });
}

void cce_backward_cuda(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                       const Tensor& targets, double softcap, const Tensor& lse, const Tensor& grad_nll,
                       const Tensor& grad_lse, double filter_eps, const Tensor& vocab_order,
                       const Tensor& signal_mask, bool deterministic, bool accumulate_fp32, const Tensor& dE,
                       const Tensor& dC, const Tensor& db) {
  if (E.dtype() != DType::float64 &&
      tiled_backward(E, C, bias, rows, targets, softcap, lse, grad_nll, grad_lse, filter_eps, vocab_order,
                     signal_mask, deterministic, accumulate_fp32, dE, dC, db))
    return;
  // (These kernels are deterministic whatever `deterministic` says, and float64 accumulates in
  // float64, so accumulate_fp32 does not apply.)
  const Problem p = problem_of(C, rows, targets);
  KernelContext ctx(E, "cut_cross_entropy backward");
  for (const Tensor* out : {&dE, &dC, &db})  // the contract: the kernel writes every entry
    if (out->defined())
      EMBER_CUDA_CHECK(cudaMemsetAsync(out->raw_data(), 0, out->numel() * element_bytes(E), ctx.stream));
  if (p.n == 0) return;
  const ember::cpu::cce::TileConfig cfg = ember::cpu::cce::tile_config();
  dispatch_floating(E.dtype(), "cut_cross_entropy", [&]<class T>() {
    const T* e = static_cast<const T*>(E.raw_data());
    const T* c = static_cast<const T*>(C.raw_data());
    const T* b = ptr_or_null<T>(bias);
    Grads<T> g{static_cast<const T*>(lse.raw_data()),
               static_cast<const T*>(grad_nll.raw_data()),
               ptr_or_null<T>(grad_lse),
               vocab_order.defined() ? static_cast<const int64_t*>(vocab_order.raw_data()) : nullptr,
               nullptr,
               cfg.bwd_rows,
               cfg.bwd_vocab,
               (p.V + cfg.bwd_vocab - 1) / cfg.bwd_vocab,
               static_cast<T>(softcap),
               signal_mask.defined() ? static_cast<const uint32_t*>(signal_mask.raw_data()) : nullptr,
               signal_mask_words(p.V)};
    Tensor kept;
    if (filter_eps > 0) {
      const int64_t row_blocks = (p.n + cfg.bwd_rows - 1) / cfg.bwd_rows;
      kept = empty_tensor({row_blocks * g.vocab_blocks}, DType::uint8, E.device());
      tile_flags_kernel<T><<<grid_for(row_blocks * g.vocab_blocks), kBlockThreads, 0, ctx.stream>>>(
          static_cast<uint8_t*>(kept.raw_data()), e, c, b, p, g, row_blocks, static_cast<T>(filter_eps));
      EMBER_CUDA_CHECK_LAUNCH("tile_flags_kernel");
      g.kept = static_cast<const uint8_t*>(kept.raw_data());
    }
    if (dE.defined()) {
      de_kernel<T>
          <<<grid_for(p.n), kBlockThreads, 0, ctx.stream>>>(static_cast<T*>(dE.raw_data()), e, c, b, p, g);
      EMBER_CUDA_CHECK_LAUNCH("de_kernel");
    }
    if (dC.defined() || db.defined()) {
      dc_kernel<T><<<grid_for(p.V), kBlockThreads, 0, ctx.stream>>>(
          dC.defined() ? static_cast<T*>(dC.raw_data()) : nullptr,
          db.defined() ? static_cast<T*>(db.raw_data()) : nullptr, e, c, b, p, g);
      EMBER_CUDA_CHECK_LAUNCH("dc_kernel");
    }
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(cce_forward_stub, cuda, &cce_forward_cuda);
EMBER_REGISTER_KERNEL(cce_backward_stub, cuda, &cce_backward_cuda);

}  // namespace ember::cuda_kernels::cce
