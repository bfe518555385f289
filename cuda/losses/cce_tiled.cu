// The fast Cut Cross-Entropy kernels for float32 and bfloat16 inputs (contract:
// losses/kernels/cce.h; method: ../shared/papers/cce.md, "CUDA algorithm"; CPU reference:
// losses/cpu/cce_forward.cpp and cce_backward.cpp). float64 stays on the simple kernels of cce.cu.
//
// Tiles. A thread block (256 threads, 8 warps) owns a tile of BM scored rows x BN = 128
// vocabulary positions. It computes the tile's logits E_R C_J^T by walking D in chunks of
// BK: both chunks are staged in shared memory, multiplied, and accumulated in registers, in
// fp32. Three multiply paths ("cores", see Cfg) fill the same [BM x BN] fp32 tile in shared
// memory:
//   * bfloat16, wmma (EMBER_CCE_CORE=wmma): tensor cores through nvcuda::wmma (16x16x16 bf16 fragments,
//     fp32 accumulators; sm_80+), BM = 64, BK = 64, two cp.async stages. Each warp owns a 32 x 32
//     corner of the tile (2 x 2 fragments).
//   * bfloat16, mma (the default; losses::detail::cce_cuda_core()): the same tensor-core
//     instruction written directly (ldmatrix + mma.sync.m16n8k16, cuda/mma.h), BM = 128, BK = 32,
//     four cp.async stages in the forward and three in the backward; each warp owns a 64 x 32
//     strip. Same products in the same order as wmma, so the same logits (the backward's filter
//     decides on 128-row tiles, though). The backward's gradient products run on it too
//     (ldmatrix .trans reads dz^T and the k-major gradient chunks). mma_wide: the same with
//     128 x 256 forward tiles (64 x 64 warp strips, one block per SM). On an H200 at the Gemma 2
//     size the forwards run at 205 (mma), 189 (mma_wide) and 128 (wmma) TFLOP/s: wmma's bf16
//     fragment loads compile to 32-bit LDS instead of LDSM, and its two stages hide less latency.
//   * float32: plain fp32 FMAs (exactly the products the CPU's sgemm adds, so float32 matches the
//     CPU to rounding). Each thread owns a 4 x 8 grid of logits, strided by 16 so that a warp's
//     shared-memory reads hit distinct banks or broadcast.
// The logits tile lives only in shared memory; nothing of size N x V is ever written.
//
// Forward (cce_forward_kernel). A block takes one row block and a contiguous range ("split") of
// vocabulary blocks, and keeps each row's online log-sum-exp in shared memory: running max m and
// running sum l = sum exp(z - m) (l in double, as on the CPU). Per tile: add the bias, apply the
// soft cap, mask positions >= V; one warp per row takes the tile max and the sum of exp(z - m'),
// and lane 0 folds them in: l = l exp(m - m') + sum, m = m'. The target logit is written by the
// one tile that holds it (so it is exactly the value that entered the sum). At the end each
// block writes its partial (m, l) to a [splits x n] buffer, and lse_combine_kernel merges the
// splits with the same rule in a fixed order (no atomics: the loss is deterministic).
//
// Signal mask (losses/kernels/cce.h, when asked). Each item first computes one extra tile: its
// rows against the classes that are their targets (the "probe" tile); a row's largest logit there
// is a lower bound of its LSE, and usually close to it (a row's likeliest class tends to be some
// nearby row's target). The epilogue then marks, per row group, the classes with
// z >= max(running max, probe bound) + log eps - margin: a ballot per 32 columns and one atomicOr
// per warp and word. The backward drops the tiles whose classes carry no mark before computing
// them (and before loading anything but their indices).
//
// Vocabulary sorting statistic (logit_avg, when asked): per tile column sums of the finished
// logits, added into an int64 fixed-point accumulator with integer atomics (2^-20 resolution).
// Integer addition is associative, so the statistic, and with it the backward's visiting order,
// are the same bits on every run. It is only an ordering key; sums are clamped to +-2^28 per tile.
//
// Backward (cce_backward_kernel). A block recomputes a tile's logits exactly as the forward, then
// turns them into dz = g (S - onehot) + h S (times the soft cap's slope 1 - (zhat / cap)^2), with
// S = exp(zhat - lse). Gradient filtering: if no entry of the tile has |S - onehot| >= eps (the
// CPU's test: off the target z - lse >= log eps, on it |S - 1| >= eps or an LSE gradient h != 0),
// the block skips the tile (__syncthreads_or makes that decision block-wide). Otherwise dz goes to
// shared memory in the input dtype (bf16 for bf16 inputs, as in the reference), and D is walked in
// chunks of BD = 64:
//   dE[rows of R] += dz  C_J[:, chunk]      ([BM x BN] x [BN x BD])
//   dC[cols of J] += dz^T E_R[:, chunk]     ([BN x BM] x [BM x BD])
// on the same multiply paths, each result staged in shared memory and added to fp32 global
// accumulators. The vocabulary blocks run through `vocab_order` when the caller sorted it (the
// index indirection is on the C rows loaded and the dC rows written). Two accumulation modes:
//   * default: one block per tile, atomicAdd (see "Where the sums go"). The launch order is
//     grouped (16 row blocks fastest, then the vocabulary), so concurrent blocks share C_J and
//     E_R in L2 without all piling their atomics onto the same dE or dC rows. Fast, but the
//     summation order depends on scheduling.
//   * deterministic: two launches. One block per row block walks every vocabulary block in order
//     and alone owns its dE rows; one block per vocabulary block walks every row block in order
//     and alone owns its dC rows and db entries. Plain read-add-writes in a fixed order: the same
//     bits on every run, at the cost of recomputing every tile's logits twice.
// Where the sums go. float32 inputs accumulate straight into dE/dC/db. bfloat16 inputs, by default
// with atomics, add into the bf16 dE and dC themselves (the paper's plain CCE: no gradient memory
// beyond the outputs): two neighbouring columns per __nv_bfloat162 atomicAdd when D is even (one
// instruction on sm_90, a 32-bit compare-and-swap loop on sm_80), one __nv_bfloat16 atomicAdd
// per column otherwise. Each contribution is rounded to bf16 and each addition rounds again, so an
// entry that receives k tile contributions carries up to ~2k half-ulps of rounding (k <= V / BN
// for dE, n / BM for dC, far fewer once filtering skips tiles). db (O(V)) always sums in fp32
// scratch. With accumulate_fp32, and always in the deterministic mode, bf16 inputs accumulate into
// fp32 scratch of the outputs' shapes that is rounded to bf16 at the end (the reference's
// "accum_*_fp32" / CCE-Kahan memory: twice the bf16 gradients again).
//
// Loads. On the bf16 paths (when D is a multiple of 8 and the inputs are 16-byte aligned; else the
// wmma core loads synchronously) the logits' E and C chunks go through cp.async: double-buffered
// on the wmma core (the copy of chunk c + 1 runs while chunk c is on the tensor cores), four
// stages deep on the mma core. Everything else loads synchronously (16-byte loads when it can).
//
// What is not here yet: cp.async for the gradient chunks, TF32 for float32, Kahan-compensated
// bf16 accumulation, a deterministic mode without fp32 scratch, and enough blocks for its dE walk
// (one block per 64-row block: 128 at N = 8192, half of what an H200 holds at once).
#include <cuda_bf16.h>
#include <cuda_pipeline.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/tensor_impl.h"
#include "cuda/losses/cce_splits.h"
#include "cuda/losses/cce_tiled.h"
#include "cuda/mma.h"
#include "cuda/runtime.h"
#include "losses/cce_testing.h"
#include "losses/kernels/cce.h"

namespace ember::cuda_kernels::cce {
namespace {

using ember::cuda::KernelContext;
namespace wmma = nvcuda::wmma;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTileCols = 128;      // vocabulary positions per tile (Cfg::BN), unless a Cfg says otherwise
constexpr int BD = 64;              // D chunk of the gradient products
constexpr int64_t kGroupRows = 16;  // row blocks per group of the atomic backward's launch order
constexpr unsigned kFullMask = 0xffffffffu;
constexpr double kAvgScale = 1048576.0;    // 2^20: fixed-point scale of the sorting statistic
constexpr double kAvgClamp = 268435456.0;  // 2^28: bound on one tile's column sum

static_assert(kThreads == 256, "the SIMT micro-tiles assume a 16 x 16 thread grid");
static_assert(BD == 64, "the warp layouts below assume 64-wide gradient chunks");

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class In>
__device__ __forceinline__ In from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);  // round to nearest even
}

// max that lets a NaN win (the CPU's tile max does the same), so NaN reaches the LSE.
__device__ __forceinline__ float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off /= 2) v = nan_max(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

// How the logits product runs (the "core" of a tile):
//   simt  float32 on FMAs; one staging buffer, BK = 32.
//   wmma  bf16 on tensor cores through nvcuda::wmma; two cp.async stages of BK = 64 (or one
//         synchronous buffer, where the device's shared memory per block is too small for two).
//   mma   bf16 on tensor cores through ldmatrix + mma.sync (cuda/mma.h); kStages cp.async stages
//         of BK = 32, warp tiles of (BM / 2) x (BN / 4), the fp32 logits tile overlaying the stages.
enum class Core { simt, wmma, mma };

// A tile configuration: input type, core and scored rows per tile (BM), with the leading
// dimensions (in elements) of the shared-memory buffers. The bf16 paddings keep every ldmatrix
// row and wmma fragment pointer aligned (16 / 32 bytes) and put the 8 rows an ldmatrix phase reads
// in distinct banks; the float padding of 1 spreads the SIMT loop's strided reads over the banks.
template <class In, Core kCore, int kRows, int kPipeline = 1, int kCols = kTileCols>
struct Cfg {
  using T = In;
  static constexpr Core core = kCore;
  static constexpr int BM = kRows;  // scored rows per tile
  static constexpr int BN = kCols;  // vocabulary positions per tile
  static constexpr bool kTensorCores = kCore != Core::simt;
  static constexpr int BK = kCore == Core::wmma ? 64 : 32;  // D chunk of the logits product
  static constexpr int kStages = kPipeline;
  static constexpr bool kOverlay = kCore == Core::mma;  // logits tile overlays the stages
  static constexpr int kPad = kTensorCores ? 8 : 1;
  static constexpr int LDS = BK + kPad;  // logits staging: E chunk [BM][LDS], C chunk [BN][LDS]
  static constexpr int LDB = BD + kPad;  // gradient staging: E chunk [BM][LDB], C chunk [BN][LDB]
  static constexpr int LDG = BN + kPad;  // dz in the input dtype [BM][LDG]
  static constexpr int LDL = BN + 4;     // fp32 logits / dz tile [BM][LDL]
  static constexpr int LDO = BD + 4;     // fp32 product staging [BN][LDO] (dE uses BM rows)

  static_assert(kTensorCores == std::is_same_v<In, __nv_bfloat16>,
                "bf16 runs on tensor cores, float32 on FMAs");
  static_assert(kCore != Core::mma || kStages >= 2, "the mma core's pipeline needs two stages at least");
  static_assert(kCore != Core::wmma || kStages <= 2, "the wmma core double-buffers at most");
  static_assert(kCore != Core::simt || kStages == 1, "the simt core loads synchronously");
  static_assert(BM % 32 == 0 && BM <= BN, "row blocks split over 2 warp rows of 16-row fragments");
  static_assert(BN == kTileCols || kCore == Core::mma, "only the mma core's logits take other widths");
  static_assert(BN % 128 == 0, "4 warp columns of 32-wide strips (or wider)");
  // Blocks per SM the kernels are compiled for: two (registers capped at 128), one for the wide
  // mma tiles, whose 64 x 64 warp strips hold 128 fp32 accumulators per thread.
  static constexpr int kMinBlocks = BM * BN / kThreads > 64 ? 1 : 2;
  using LogitsGrid = ember::cuda_mma::WarpGrid<BM, BN, 2, 4>;
  static_assert(LogitsGrid::kWarps == kWarps, "one warp per block of the logits tile");
  // wmma: ldm a multiple of 16 bytes and every 16-row fragment step 32-byte aligned; ldmatrix,
  // cp.async and the vector stores: staging rows 16-byte aligned.
  static_assert(!kTensorCores || (LDS * sizeof(In)) % 16 == 0, "cp.async needs 16-byte staging rows");
  static_assert(!kTensorCores || (16 * LDS * sizeof(In)) % 32 == 0,
                "E/C staging fragments must be 32-byte aligned");
  static_assert(!kTensorCores || (16 * LDB * sizeof(In)) % 32 == 0,
                "gradient staging fragments must be aligned");
  static_assert(!kTensorCores || (16 * LDG * sizeof(In)) % 32 == 0, "dz fragments must be 32-byte aligned");
  static_assert((LDL * sizeof(float)) % 16 == 0 && (16 * LDL * sizeof(float)) % 32 == 0, "logits tile ldm");
  static_assert((LDO * sizeof(float)) % 16 == 0 && (16 * LDO * sizeof(float)) % 32 == 0,
                "product staging ldm");
};

// The warp grid of the mma core's gradient products [M x BD] (cuda/mma.h): warps 4 x 2. (The
// logits tile's is Cfg::LogitsGrid: warps 2 x 4.)
template <int M>
using GradientGrid = ember::cuda_mma::WarpGrid<M, BD, 4, 2>;

using CfgF32 = Cfg<float, Core::simt, 64>;
using CfgWmma = Cfg<__nv_bfloat16, Core::wmma, 64, 2>;
// The wmma core with one synchronous buffer: for devices with 99 KiB of shared memory per block
// (sm_86, sm_89), where the two-stage backward (108.5 KiB) does not fit.
using CfgWmmaOneStage = Cfg<__nv_bfloat16, Core::wmma, 64, 1>;
// The mma core's tiles: 128 x 128 (each C chunk serves twice the rows of a 64-row tile, and a
// warp's fragments are reused across a 64 x 32 strip), four stages in the forward; three in the
// backward, whose dz tile and gradient staging must also fit beside them for two blocks per SM.
using CfgMmaForward = Cfg<__nv_bfloat16, Core::mma, 128, 4>;
using CfgMmaBackward = Cfg<__nv_bfloat16, Core::mma, 128, 3>;
using CfgMmaBackwardRows = Cfg<__nv_bfloat16, Core::mma, 64, 4>;  // the deterministic dE walk
// The wide forward (core mma_wide): 128 x 256 tiles, 64 x 64 warp strips (an A fragment feeds eight
// mma, a B fragment four: 128 bytes of shared memory per mma against 192), one block per SM.
using CfgMmaForwardWide = Cfg<__nv_bfloat16, Core::mma, 128, 4, 256>;

constexpr size_t round_up(size_t bytes) { return (bytes + 127) / 128 * 128; }
constexpr size_t max_of(size_t a, size_t b) { return a > b ? a : b; }

// The dynamic shared memory of one block, carved into 128-byte aligned regions. Without overlay:
// [indices | row vectors | staging | logits tile / product staging | G]. With overlay (mma), one
// region holds the pipeline stages during the logits product, then the fp32 logits tile (and dz),
// then in the backward the gradient chunks' staging followed by the product staging:
// [indices | row vectors | stages = tile = (gradient staging, out) | G].
template <class L, bool kBackward>
struct Smem {
  static constexpr int BN = L::BN;
  using In = typename L::T;
  static constexpr int BM = L::BM;
  static constexpr size_t kIndexBytes = round_up((2 * BM + BN) * sizeof(int64_t));
  static constexpr size_t kRowBytes = round_up(BM * (4 * sizeof(float) + sizeof(double)));
  static constexpr size_t kPipeBytes = round_up(L::kStages * (BM + BN) * L::LDS * sizeof(In));
  static constexpr size_t kGradStageBytes = kBackward ? round_up((BM + BN) * L::LDB * sizeof(In)) : 0;
  static constexpr size_t kLogitsBytes = round_up(BM * L::LDL * sizeof(float));
  static constexpr size_t kOutBytes = kBackward ? round_up(max_of(BM, BN) * L::LDO * sizeof(float)) : 0;
  static constexpr size_t kStageBytes =
      L::kOverlay ? max_of(max_of(kPipeBytes, kLogitsBytes), kGradStageBytes + kOutBytes)
                  : max_of(kPipeBytes, kGradStageBytes);
  static constexpr size_t kTileBytes = L::kOverlay ? 0 : max_of(kLogitsBytes, kOutBytes);
  static constexpr size_t kGBytes = kBackward ? round_up(BM * L::LDG * sizeof(In)) : 0;
  static constexpr size_t kBytes = kIndexBytes + kRowBytes + kStageBytes + kTileBytes + kGBytes;

  int64_t* rows;   // [BM] row of E of each tile row, -1 past n
  int64_t* tgt;    // [BM] its target class, -1 past n
  int64_t* cols;   // [BN] class id of each tile column, -1 past V
  float* row_lse;  // [BM] backward: lse, grad_nll, grad_lse of each tile row
  float* row_g;
  float* row_h;
  float* run_m;      // [BM] forward: running max
  float* row_bound;  // [BM] forward: the probe bound of each row (in row_lse's place)
  double* run_l;     // [BM] forward: running sum of exp(z - m)
  In* stage;         // staging of the input chunks
  float* tile;       // fp32 logits, then dz
  float* out;        // backward: staging of the products' results
  In* G;             // backward: dz in the input dtype

  __device__ explicit Smem(char* base) {
    rows = reinterpret_cast<int64_t*>(base);
    tgt = rows + BM;
    cols = tgt + BM;
    char* r = base + kIndexBytes;
    run_l = reinterpret_cast<double*>(r);
    row_lse = reinterpret_cast<float*>(r + BM * sizeof(double));
    row_g = row_lse + BM;
    row_h = row_g + BM;
    run_m = row_h + BM;
    row_bound = row_lse;
    char* region = base + kIndexBytes + kRowBytes;
    stage = reinterpret_cast<In*>(region);
    tile = reinterpret_cast<float*>(L::kOverlay ? region : region + kStageBytes);
    out = L::kOverlay ? reinterpret_cast<float*>(region + kGradStageBytes) : tile;
    G = reinterpret_cast<In*>(region + kStageBytes + kTileBytes);
  }
};

template <class In>
struct Params {
  const In* E;             // [R, D]
  const In* C;             // [V, D]
  const In* bias;          // [V] or null
  const int64_t* rows;     // [n] scored rows, ascending
  const int64_t* targets;  // [n] their class ids
  const int64_t* order;    // [V] backward visiting order, or null (identity)
  int64_t n, V, D;
  float cap;  // soft cap, 0 = none
  bool vec;   // D and both base pointers allow 16-byte loads
  // forward
  float* part_m;                  // [splits x n]
  double* part_l;                 // [splits x n]
  float* target_logit;            // [n]
  unsigned long long* avg_fixed;  // [V] or null: fixed-point column sums
  float mark_log_eps;             // log(eps), for the signal mask's threshold
  // both: the signal mask [groups x signal_words] (forward: written; backward: read), or null
  uint32_t* signal;
  int64_t signal_words;
  // backward
  const float* lse;       // [R]
  const float* grad_nll;  // [R]
  const float* grad_lse;  // [R] or null
  float eps, log_eps;     // eps = 0: no filtering
  float* dE;              // [R, D] fp32 or null
  float* dC;              // [V, D] fp32 or null
  float* db;              // [V] fp32 or null
  // bf16 inputs, default mode: dE / dC accumulated in place in the bf16 outputs (then the fp32
  // dE / dC above are null)
  __nv_bfloat16* dE16;  // [R, D] or null
  __nv_bfloat16* dC16;  // [V, D] or null
  bool pairs;           // D even and both bf16 outputs 4-byte aligned: __nv_bfloat162 atomics
};

// --- tile set-up -------------------------------------------------------------------------------

template <class L, bool kB>
__device__ void setup_rows(const Smem<L, kB>& s, const Params<typename L::T>& p, int64_t k0) {
  for (int i = threadIdx.x; i < L::BM; i += kThreads) {
    const int64_t k = k0 + i;
    const bool valid = k < p.n;
    const int64_t r = valid ? p.rows[k] : -1;
    s.rows[i] = r;
    s.tgt[i] = valid ? p.targets[k] : -1;
    if constexpr (kB) {
      s.row_lse[i] = valid ? p.lse[r] : 0.f;
      s.row_g[i] = valid ? p.grad_nll[r] : 0.f;
      s.row_h[i] = valid && p.grad_lse ? p.grad_lse[r] : 0.f;
    }
  }
}

template <class L, bool kB>
__device__ void setup_cols(const Smem<L, kB>& s, const Params<typename L::T>& p, int64_t p0) {
  constexpr int BN = L::BN;
  for (int c = threadIdx.x; c < BN; c += kThreads) {
    const int64_t q = p0 + c;
    s.cols[c] = q < p.V ? (p.order ? p.order[q] : q) : -1;
  }
}

// dst[r][0..WIDTH) = src[idx[r]][d0 .. d0 + WIDTH) for r < count (row stride LD in dst), zero
// where idx[r] < 0 or past D. Copies bits (no conversion). With `vec`, 16 bytes per load (and per
// store when the rows of dst are 16-byte aligned: bf16).
template <int WIDTH, int LD, class In>
__device__ void load_chunk(In* dst, const In* src, const int64_t* idx, int count, int64_t D, int64_t d0,
                           bool vec) {
  using Bits = std::conditional_t<sizeof(In) == 2, uint16_t, uint32_t>;
  constexpr int kPerVec = 16 / sizeof(In);
  static_assert(WIDTH % kPerVec == 0, "chunk width must be a whole number of 16-byte vectors");
  Bits* out = reinterpret_cast<Bits*>(dst);
  const Bits* in = reinterpret_cast<const Bits*>(src);
  if (vec) {
    constexpr int kVecs = WIDTH / kPerVec;
    union {
      uint4 v;
      Bits b[kPerVec];
    } buf;
    for (int e = threadIdx.x; e < count * kVecs; e += kThreads) {
      const int r = e / kVecs, c = (e % kVecs) * kPerVec;
      const int64_t row = idx[r], d = d0 + c;
      // D is a multiple of kPerVec, so a vector is entirely inside [0, D) or entirely past it.
      if (row >= 0 && d < D)
        buf.v = *reinterpret_cast<const uint4*>(in + row * D + d);
      else
        buf.v = make_uint4(0, 0, 0, 0);
      if constexpr (LD * sizeof(In) % 16 == 0) {  // rows 16-byte aligned: one vector store
        *reinterpret_cast<uint4*>(out + r * LD + c) = buf.v;
      } else {
#pragma unroll
        for (int q = 0; q < kPerVec; ++q) out[r * LD + c + q] = buf.b[q];
      }
    }
  } else {
    for (int e = threadIdx.x; e < count * WIDTH; e += kThreads) {
      const int r = e / WIDTH, c = e % WIDTH;
      const int64_t row = idx[r], d = d0 + c;
      out[r * LD + c] = (row >= 0 && d < D) ? in[row * D + d] : Bits(0);
    }
  }
}

// --- the multiply paths --------------------------------------------------------------------------

// SIMT fp32: acc[i][j] += sum_k A(m_i, k) B(k, n_j) with m_i = ty + 16 i, n_j = tx + 16 j, where
// A(m, k) = A[m * a_m + k * a_k] and B(k, n) = B[k * b_k + n * b_n] (shared memory).
template <int TM, int TN>
__device__ __forceinline__ void simt_gemm(float (&acc)[TM][TN], const float* A, int a_m, int a_k,
                                          const float* B, int b_k, int b_n, int K) {
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  for (int k = 0; k < K; ++k) {
    float a[TM], b[TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) a[i] = A[(ty + 16 * i) * a_m + k * a_k];
#pragma unroll
    for (int j = 0; j < TN; ++j) b[j] = B[k * b_k + (tx + 16 * j) * b_n];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

template <int TM, int TN>
__device__ __forceinline__ void simt_store(float* out, int ld, const float (&acc)[TM][TN]) {
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) out[(ty + 16 * i) * ld + tx + 16 * j] = acc[i][j];
}

using FragAcc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
using FragARow = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
using FragACol = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major>;
using FragBRow = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
using FragBCol = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major>;

// One logits chunk on tensor cores: acc += Es[32-row strip of this warp] Cs[32-column strip]^T.
template <int BK, int LDS>
__device__ __forceinline__ void mma_chunk(FragAcc (&acc)[2][2], const __nv_bfloat16* Es,
                                          const __nv_bfloat16* Cs, int wm, int wn) {
#pragma unroll
  for (int ks = 0; ks < BK / 16; ++ks) {
    FragARow a[2];
    FragBCol b[2];  // B = Cs^T: element (k, n) = Cs[n][k], a column-major [BK x BN]
#pragma unroll
    for (int x = 0; x < 2; ++x) wmma::load_matrix_sync(a[x], Es + (wm * 32 + 16 * x) * LDS + ks * 16, LDS);
#pragma unroll
    for (int y = 0; y < 2; ++y) wmma::load_matrix_sync(b[y], Cs + (wn * 32 + 16 * y) * LDS + ks * 16, LDS);
#pragma unroll
    for (int x = 0; x < 2; ++x)
#pragma unroll
      for (int y = 0; y < 2; ++y) wmma::mma_sync(acc[x][y], a[x], b[y], acc[x][y]);
  }
}

// Starts the asynchronous copy (cp.async, sm_80+) of chunk d0 of the E rows and C rows into
// `stage` ([BM + BN][LDS]: the E rows, then the C rows), 16 bytes per copy; padding rows and
// columns past D are zero-filled by the copy itself. Needs p.vec (D a multiple of 8, aligned).
// The caller commits the copies as one group (__pipeline_commit).
template <class L, bool kB>
__device__ __forceinline__ void issue_chunk(typename L::T* stage, const Smem<L, kB>& s,
                                            const Params<typename L::T>& p, int64_t d0) {
  constexpr int BN = L::BN;
  using In = typename L::T;
  constexpr int kPerVec = 16 / sizeof(In), kVecs = L::BK / kPerVec;
  for (int e = threadIdx.x; e < (L::BM + BN) * kVecs; e += kThreads) {
    const int r = e / kVecs, c = (e % kVecs) * kPerVec;
    const bool is_e = r < L::BM;
    const int64_t row = is_e ? s.rows[r] : s.cols[r - L::BM], d = d0 + c;
    const In* base = is_e ? p.E : p.C;
    const bool valid = row >= 0 && d < p.D;
    __pipeline_memcpy_async(stage + r * L::LDS + c, valid ? base + row * p.D + d : base, 16, valid ? 0 : 16);
  }
}

// The logits product of the wmma core: s.tile = E_R C_J^T. bf16 with 16-byte rows and two stages:
// double-buffered, the copy of chunk c + 1 runs while chunk c is multiplied. Otherwise one buffer:
// load, synchronise, multiply, synchronise.
template <class L, bool kB>
__device__ void logits_wmma(const Smem<L, kB>& s, const Params<typename L::T>& p) {
  constexpr int BN = L::BN;
  using In = typename L::T;
  static_assert(L::BM == 64, "warp tiles of 32 x 32");
  In* Es = s.stage;                                                 // [BM][LDS]
  In* Cs = s.stage + L::BM * L::LDS;                                // [BN][LDS]
  const int warp = threadIdx.x / 32, wm = warp / 4, wn = warp % 4;  // warp tile 32 x 32
  FragAcc acc[2][2];
#pragma unroll
  for (int x = 0; x < 2; ++x)
#pragma unroll
    for (int y = 0; y < 2; ++y) wmma::fill_fragment(acc[x][y], 0.f);
  if (L::kStages == 2 && p.vec) {
    In* stage[2] = {s.stage, s.stage + (L::BM + BN) * L::LDS};
    const int64_t chunks = (p.D + L::BK - 1) / L::BK;
    issue_chunk(stage[0], s, p, 0);
    __pipeline_commit();
    for (int64_t c = 0; c < chunks; ++c) {
      if (c + 1 < chunks) {
        // stage[(c + 1) % 2] was last read by chunk c - 1, which ended with __syncthreads.
        issue_chunk(stage[(c + 1) % 2], s, p, (c + 1) * L::BK);
        __pipeline_commit();
        __pipeline_wait_prior(1);  // this thread's copies of chunk c have landed
      } else {
        __pipeline_wait_prior(0);
      }
      __syncthreads();  // ... and everyone else's
      mma_chunk<L::BK, L::LDS>(acc, stage[c % 2], stage[c % 2] + L::BM * L::LDS, wm, wn);
      __syncthreads();  // chunk c is consumed before its buffer is refilled
    }
  } else {
    for (int64_t d0 = 0; d0 < p.D; d0 += L::BK) {
      __syncthreads();  // the previous chunk is consumed
      load_chunk<L::BK, L::LDS>(Es, p.E, s.rows, L::BM, p.D, d0, p.vec);
      load_chunk<L::BK, L::LDS>(Cs, p.C, s.cols, BN, p.D, d0, p.vec);
      __syncthreads();
      mma_chunk<L::BK, L::LDS>(acc, Es, Cs, wm, wn);
    }
  }
#pragma unroll
  for (int x = 0; x < 2; ++x)
#pragma unroll
    for (int y = 0; y < 2; ++y)
      wmma::store_matrix_sync(s.tile + (wm * 32 + 16 * x) * L::LDL + wn * 32 + 16 * y, acc[x][y], L::LDL,
                              wmma::mem_row_major);
}

// The logits product of the mma core: s.tile = E_R C_J^T, with a kStages-deep cp.async pipeline
// (chunks c + 1 .. c + kStages - 1 are in flight while chunk c is multiplied: the L2 / memory
// latency of one chunk is longer than the tensor cores take for it). Needs p.vec.
//
// Warps form a 2 x 4 grid; a warp owns rows [wm WM, (wm + 1) WM) and columns [wn WN, (wn + 1) WN)
// of the tile (WM = BM / 2, WN = BN / 4): MI = WM / 16 fragments of 16 rows by NI = WN / 8
// fragments of 8 columns. Per 16-wide step of D it loads its A fragments (one ldmatrix .x4 each,
// from the E rows) and its B fragments (one ldmatrix .x4 per 16 columns, from the C rows: C_J is
// stored [n][k], i.e. B = C_J^T column-major, which is what mma's ".col" B operand wants) and
// issues MI x NI mma.sync.
//
// Pipeline bookkeeping: every thread commits exactly one cp.async group per chunk slot (an empty
// one past the last chunk), so "all but the newest kStages - 2 groups have landed" means chunk c
// has. The buffer refilled at step c, (c - 1) % kStages, was read by step c - 1, which every warp
// has finished once it passes step c's __syncthreads.
template <class L, bool kB>
__device__ void logits_mma(const Smem<L, kB>& s, const Params<typename L::T>& p) {
  constexpr int BN = L::BN;
  using In = typename L::T;
  namespace mma = ember::cuda_mma;
  using Grid = typename L::LogitsGrid;
  constexpr int S = L::kStages;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t chunks = (p.D + L::BK - 1) / L::BK;
  auto buffer = [&](int64_t c) { return s.stage + (c % S) * (L::BM + BN) * L::LDS; };
  for (int c = 0; c < S - 1; ++c) {
    if (c < chunks) issue_chunk(buffer(c), s, p, c * L::BK);
    __pipeline_commit();
  }
  float acc[Grid::MI][Grid::NI][4] = {};
  for (int64_t c = 0; c < chunks; ++c) {
    __pipeline_wait_prior(S - 2);  // this thread's copies of chunk c have landed
    __syncthreads();               // ... and everyone else's; chunk c - 1 is consumed
    if (c + S - 1 < chunks) issue_chunk(buffer(c + S - 1), s, p, (c + S - 1) * L::BK);
    __pipeline_commit();
    const In* chunk = buffer(c);  // [BM][LDS] E rows ([m][k]), then [BN][LDS] C rows ([n][k])
#pragma unroll
    for (int k = 0; k < L::BK; k += 16)
      mma::mma_step<Grid, false, false>(acc, chunk, L::LDS, chunk + L::BM * L::LDS, L::LDS, k, warp, lane);
  }
  __pipeline_wait_prior(0);  // only empty groups can remain; leave none behind
  __syncthreads();           // every warp is done with the stages that s.tile overlays
  mma::store_block<Grid>(s.tile, L::LDL, acc, warp, lane);
}

// The logits product of the simt core (float32): one buffer, load, synchronise, multiply.
template <class L, bool kB>
__device__ void logits_simt(const Smem<L, kB>& s, const Params<typename L::T>& p) {
  constexpr int BN = L::BN;
  static_assert(L::BM == 64, "the SIMT micro-tiles cover 64 x 128");
  float* Es = s.stage;                   // [BM][LDS]
  float* Cs = s.stage + L::BM * L::LDS;  // [BN][LDS]
  float acc[L::BM / 16][BN / 16] = {};
  for (int64_t d0 = 0; d0 < p.D; d0 += L::BK) {
    __syncthreads();
    load_chunk<L::BK, L::LDS>(Es, p.E, s.rows, L::BM, p.D, d0, p.vec);
    load_chunk<L::BK, L::LDS>(Cs, p.C, s.cols, BN, p.D, d0, p.vec);
    __syncthreads();
    simt_gemm(acc, Es, L::LDS, 1, Cs, 1, L::LDS, L::BK);
  }
  simt_store(s.tile, L::LDL, acc);
}

// s.tile[BM x BN] = E_R C_J^T for the rows s.rows and classes s.cols, fp32, on the configuration's
// core. Ends synchronised.
template <class L, bool kB>
__device__ void compute_logits(const Smem<L, kB>& s, const Params<typename L::T>& p) {
  if constexpr (L::core == Core::mma)
    logits_mma(s, p);
  else if constexpr (L::core == Core::wmma)
    logits_wmma(s, p);
  else
    logits_simt(s, p);
  __syncthreads();
}

// out[M x BD] = A[M x K] B[K x BD] on the mma core (the gradient products): 8 warps as 4 x 2, each
// owning an (M / 4) x 32 block of out, fp32 accumulators stored to `out` (leading dimension LDO).
// A is read from shared memory stored [m][k] (row stride LDA), or with kAKMajor stored [k][m] (dz
// for dz^T); B is stored [k][n] (row stride LDB), read with ldmatrix .trans.
template <int M, int K, bool kAKMajor, int LDA, int LDB, int LDO>
__device__ void gradient_product_mma(float* out, const __nv_bfloat16* A, const __nv_bfloat16* B) {
  namespace mma = ember::cuda_mma;
  using Grid = GradientGrid<M>;
  static_assert(K % 16 == 0, "whole 16-wide steps");
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float acc[Grid::MI][Grid::NI][4] = {};
#pragma unroll
  for (int k = 0; k < K; k += 16) mma::mma_step<Grid, kAKMajor, true>(acc, A, LDA, B, LDB, k, warp, lane);
  mma::store_block<Grid>(out, LDO, acc, warp, lane);
}

// out[BM x BD] = G[BM x BN] Cg[BN x BD]   (the dE chunk)
template <class L>
__device__ void product_dE(float* out, const typename L::T* G, const typename L::T* Cg) {
  constexpr int BN = L::BN;
  constexpr int BM = L::BM;
  if constexpr (L::core == Core::mma) {
    gradient_product_mma<BM, BN, false, L::LDG, L::LDB, L::LDO>(out, G, Cg);
  } else if constexpr (L::kTensorCores) {
    static_assert(BM == 64, "the wmma core's tiles have 64 rows");
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;  // warp tile 16 x 32
    FragAcc acc[2];
    wmma::fill_fragment(acc[0], 0.f);
    wmma::fill_fragment(acc[1], 0.f);
#pragma unroll
    for (int ks = 0; ks < BN / 16; ++ks) {
      FragARow a;
      wmma::load_matrix_sync(a, G + (wm * 16) * L::LDG + ks * 16, L::LDG);
#pragma unroll
      for (int y = 0; y < 2; ++y) {
        FragBRow b;
        wmma::load_matrix_sync(b, Cg + (ks * 16) * L::LDB + wn * 32 + 16 * y, L::LDB);
        wmma::mma_sync(acc[y], a, b, acc[y]);
      }
    }
#pragma unroll
    for (int y = 0; y < 2; ++y)
      wmma::store_matrix_sync(out + (wm * 16) * L::LDO + wn * 32 + 16 * y, acc[y], L::LDO,
                              wmma::mem_row_major);
  } else {
    float acc[BM / 16][BD / 16] = {};
    simt_gemm(acc, G, L::LDG, 1, Cg, L::LDB, 1, BN);
    simt_store(out, L::LDO, acc);
  }
}

// out[BN x BD] = G[BM x BN]^T Eg[BM x BD]   (the dC chunk)
template <class L>
__device__ void product_dC(float* out, const typename L::T* G, const typename L::T* Eg) {
  constexpr int BN = L::BN;
  constexpr int BM = L::BM;
  if constexpr (L::core == Core::mma) {
    gradient_product_mma<BN, BM, true, L::LDG, L::LDB, L::LDO>(out, G, Eg);
  } else if constexpr (L::kTensorCores) {
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;  // warp tile 32 x 32
    FragAcc acc[2][2];
#pragma unroll
    for (int x = 0; x < 2; ++x)
#pragma unroll
      for (int y = 0; y < 2; ++y) wmma::fill_fragment(acc[x][y], 0.f);
#pragma unroll
    for (int ks = 0; ks < BM / 16; ++ks) {
      FragACol a[2];  // A = G^T: element (m, k) = G[k][m], a column-major [BN x BM]
      FragBRow b[2];
#pragma unroll
      for (int x = 0; x < 2; ++x)
        wmma::load_matrix_sync(a[x], G + (ks * 16) * L::LDG + wm * 32 + 16 * x, L::LDG);
#pragma unroll
      for (int y = 0; y < 2; ++y)
        wmma::load_matrix_sync(b[y], Eg + (ks * 16) * L::LDB + wn * 32 + 16 * y, L::LDB);
#pragma unroll
      for (int x = 0; x < 2; ++x)
#pragma unroll
        for (int y = 0; y < 2; ++y) wmma::mma_sync(acc[x][y], a[x], b[y], acc[x][y]);
    }
#pragma unroll
    for (int x = 0; x < 2; ++x)
#pragma unroll
      for (int y = 0; y < 2; ++y)
        wmma::store_matrix_sync(out + (wm * 32 + 16 * x) * L::LDO + wn * 32 + 16 * y, acc[x][y], L::LDO,
                                wmma::mem_row_major);
  } else {
    float acc[BN / 16][BD / 16] = {};
    simt_gemm(acc, G, 1, L::LDG, Eg, L::LDB, 1, BM);
    simt_store(out, L::LDO, acc);
  }
}

// The logit the loss sees: bias, then cap * tanh(z / cap) (the CPU's finish_logits).
template <class In>
__device__ __forceinline__ float finish_logit(float z, const Params<In>& p, int64_t j) {
  if (p.bias) z += to_float(p.bias[j]);
  if (p.cap > 0.f) z = p.cap * tanhf(z * (1.f / p.cap));
  return z;
}

// --- forward -------------------------------------------------------------------------------------

// Folds the tile in s.tile into the running (m, l) of its rows; records target logits; leaves the
// finished logits (-inf at masked columns) in s.tile for the column sums.
// With the signal mask, also marks the classes each row might keep in the backward (see the top).
template <class L>
__device__ void forward_epilogue(const Smem<L, false>& s, const Params<typename L::T>& p, int64_t k0) {
  constexpr int BN = L::BN;
  static_assert(kSignalRows % L::BM == 0, "a tile's rows share one row group of the signal mask");
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  uint32_t marks = 0;  // bit t: column lane + 32 t is marked for some row of this warp
  for (int i = warp; i < L::BM; i += kWarps) {
    if (s.rows[i] < 0) continue;  // uniform across the warp
    float z[BN / 32];
    float zmax = -INFINITY;
#pragma unroll
    for (int t = 0; t < BN / 32; ++t) {
      const int c = lane + 32 * t;
      const int64_t j = s.cols[c];
      float v = -INFINITY;
      if (j >= 0) {
        v = finish_logit(s.tile[i * L::LDL + c], p, j);
        if (j == s.tgt[i]) p.target_logit[k0 + i] = v;  // exactly one tile holds the target
      }
      z[t] = v;
      s.tile[i * L::LDL + c] = v;
      zmax = nan_max(zmax, v);
    }
    zmax = warp_max(zmax);
    const float m_old = s.run_m[i];
    const float m_new = nan_max(m_old, zmax);
    if (p.signal) {  // m_new and the probe bound are lower bounds of lse; a NaN logit marks
      const float threshold = signal_threshold(fmaxf(m_new, s.row_bound[i]), p.mark_log_eps);
#pragma unroll
      for (int t = 0; t < BN / 32; ++t)
        if (s.cols[lane + 32 * t] >= 0 && !(z[t] < threshold)) marks |= 1u << t;
    }
    // A tile of only -inf logits adds nothing (and would give -inf - -inf = NaN below).
    if (zmax == -INFINITY) continue;
    float sum = 0.f;
#pragma unroll
    for (int t = 0; t < BN / 32; ++t) sum += expf(z[t] - m_new);
    sum = warp_sum(sum);
    if (lane == 0) {
      s.run_l[i] = s.run_l[i] * exp(static_cast<double>(m_old) - m_new) + sum;
      s.run_m[i] = m_new;
    }
  }
  if (p.signal) {
    // Columns 32 t .. 32 t + 31 are the classes of one mask word (the forward's order is the
    // identity and BN is a multiple of 32).
    uint32_t* group = p.signal + (k0 / kSignalRows) * p.signal_words;
#pragma unroll
    for (int t = 0; t < BN / 32; ++t) {
      const uint32_t word = __ballot_sync(kFullMask, (marks >> t) & 1u);
      if (lane == 0 && word != 0) atomicOr(group + s.cols[32 * t] / 32, word);
    }
  }
}

// The probe tile (s.tile holds the tile rows' logits against their own targets, s.cols): each
// row's largest finished logit there becomes its bound; with mark_targets, the targets' bits.
template <class L>
__device__ void probe_bounds(const Smem<L, false>& s, const Params<typename L::T>& p, int64_t k0,
                             bool mark_targets) {
  constexpr int BN = L::BN;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int i = warp; i < L::BM; i += kWarps) {
    if (s.rows[i] < 0) continue;  // uniform across the warp
    float best = -INFINITY;
    for (int c = lane; c < BN; c += 32)
      if (s.cols[c] >= 0) best = fmaxf(best, finish_logit(s.tile[i * L::LDL + c], p, s.cols[c]));
    best = warp_max(best);
    if (lane == 0) {
      s.row_bound[i] = best;
      const int64_t t = s.tgt[i];
      if (mark_targets)
        atomicOr(p.signal + ((k0 + i) / kSignalRows) * p.signal_words + t / 32, 1u << (t % 32));
    }
  }
}

// Column sums of the finished logits over the tile's scored rows, into the fixed-point statistic.
template <class L>
__device__ void forward_column_sums(const Smem<L, false>& s, const Params<typename L::T>& p) {
  constexpr int BN = L::BN;
  for (int c = threadIdx.x; c < BN; c += kThreads) {
    const int64_t j = s.cols[c];
    if (j < 0) continue;
    double sum = 0;
    for (int i = 0; i < L::BM; ++i)
      if (s.rows[i] >= 0) sum += s.tile[i * L::LDL + c];
    sum = sum != sum ? 0.0 : fmin(fmax(sum, -kAvgClamp), kAvgClamp);
    // Two's complement: adding the unsigned image of a negative number subtracts it.
    atomicAdd(p.avg_fixed + j, static_cast<unsigned long long>(__double2ll_rn(sum * kAvgScale)));
  }
}

template <class L>
__global__ void __launch_bounds__(kThreads, L::kMinBlocks)  // L::kMinBlocks per SM (registers)
    cce_forward_kernel(Params<typename L::T> p, int64_t row_blocks, int64_t vocab_blocks, int64_t splits) {
  constexpr int BN = L::BN;
  extern __shared__ __align__(128) char smem_raw[];
  const Smem<L, false> s(smem_raw);
  for (int64_t item = blockIdx.x; item < row_blocks * splits; item += gridDim.x) {
    const int64_t b = item % row_blocks, split = item / row_blocks, k0 = b * L::BM;
    __syncthreads();  // the previous item is done with the shared buffers
    setup_rows(s, p, k0);
    for (int i = threadIdx.x; i < L::BM; i += kThreads) {
      s.run_m[i] = -INFINITY;
      s.run_l[i] = 0.0;
    }
    if (p.signal) {  // the probe tile: the rows against their targets (BM <= BN columns)
      __syncthreads();
      for (int c = threadIdx.x; c < BN; c += kThreads) s.cols[c] = c < L::BM ? s.tgt[c] : -1;
      __syncthreads();
      compute_logits(s, p);
      probe_bounds(s, p, k0, split == 0);
    }
    const int64_t j_begin = split * vocab_blocks / splits, j_end = (split + 1) * vocab_blocks / splits;
    for (int64_t J = j_begin; J < j_end; ++J) {
      __syncthreads();
      setup_cols(s, p, J * BN);
      __syncthreads();
      compute_logits(s, p);
      forward_epilogue(s, p, k0);
      if (p.avg_fixed) {
        __syncthreads();
        forward_column_sums(s, p);
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < L::BM; i += kThreads)
      if (s.rows[i] >= 0) {
        p.part_m[split * p.n + k0 + i] = s.run_m[i];
        p.part_l[split * p.n + k0 + i] = s.run_l[i];
      }
  }
}

// lse = M + log(sum_s l_s exp(m_s - M)), M = max_s m_s, in split order (the CPU's merge rule);
// nll = lse - target logit. One thread per scored row.
__global__ void lse_combine_kernel(float* lse, float* nll, const float* part_m, const double* part_l,
                                   const float* target_logit, const int64_t* rows, int64_t n,
                                   int64_t splits) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float big_m = -INFINITY;
    for (int64_t s = 0; s < splits; ++s) big_m = nan_max(big_m, part_m[s * n + k]);
    // Splits at the max add l unscaled: covers big_m = -inf (every logit -inf: log 0 = -inf).
    double sum = 0;
    for (int64_t s = 0; s < splits; ++s) {
      const float ms = part_m[s * n + k];
      const double ls = part_l[s * n + k];
      sum += ms == big_m ? ls : ls * exp(static_cast<double>(ms) - big_m);
    }
    const double l = big_m + log(sum);
    lse[rows[k]] = static_cast<float>(l);
    nll[rows[k]] = static_cast<float>(l - target_logit[k]);
  }
}

__global__ void logit_avg_kernel(float* avg, const unsigned long long* fixed, int64_t V, int64_t n) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < V;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x)
    avg[j] = static_cast<float>(static_cast<double>(static_cast<long long>(fixed[j])) / kAvgScale /
                                static_cast<double>(n));
}

// --- backward ------------------------------------------------------------------------------------

// Adds out[count x BD] (leading dimension LDO) into dst[idx[r]][d0 + c], skipping padding and
// exact zeros. kAtomic: fp32 atomicAdd; otherwise this block is the only writer of these rows.
template <class L, bool kAtomic>
__device__ void flush(const float* out, int count, const int64_t* idx, float* dst, int64_t D, int64_t d0) {
  for (int e = threadIdx.x; e < count * BD; e += kThreads) {
    const int r = e / BD, c = e % BD;
    const int64_t row = idx[r], d = d0 + c;
    if (row < 0 || d >= D) continue;
    const float v = out[r * L::LDO + c];
    if (v == 0.f) continue;
    if constexpr (kAtomic)
      atomicAdd(dst + row * D + d, v);
    else
      dst[row * D + d] += v;
  }
}

// Adds out[count x BD] (leading dimension LDO) into the bf16 gradient dst[idx[r]][d0 + c] with bf16
// atomics, skipping padding and exact zeros. With `pairs` a thread takes columns c, c + 1 in one
// __nv_bfloat162 atomic: c and d0 are even and so is D, so the pair's address is 4-byte aligned
// and d + 1 < D. Each value is rounded to bf16 once, then the addition rounds once more.
template <class L>
__device__ void flush_bf16(const float* out, int count, const int64_t* idx, __nv_bfloat16* dst, int64_t D,
                           int64_t d0, bool pairs) {
  constexpr int kPairs = BD / 2;
  for (int e = threadIdx.x; e < count * kPairs; e += kThreads) {
    const int r = e / kPairs, c = 2 * (e % kPairs);
    const int64_t row = idx[r], d = d0 + c;
    if (row < 0 || d >= D) continue;
    const float v0 = out[r * L::LDO + c], v1 = out[r * L::LDO + c + 1];
    __nv_bfloat16* at = dst + row * D + d;
    if (pairs) {
      if (v0 != 0.f || v1 != 0.f)
        atomicAdd(reinterpret_cast<__nv_bfloat162*>(at), __floats2bfloat162_rn(v0, v1));
    } else {
      if (v0 != 0.f) atomicAdd(at, __float2bfloat16(v0));
      if (v1 != 0.f && d + 1 < D) atomicAdd(at + 1, __float2bfloat16(v1));
    }
  }
}

// Recomputes tile (row block starting at k0, visiting-order block starting at p0), forms dz, and
// unless filtered adds its contributions to p.dE / p.dC / p.db / p.dE16 / p.dC16 (whichever are
// non-null).
template <bool kAtomic, class L>
__device__ void backward_tile(const Smem<L, true>& s, const Params<typename L::T>& p, int64_t k0,
                              int64_t p0) {
  constexpr int BN = L::BN;
  using In = typename L::T;
  constexpr int BM = L::BM;
  static_assert(kSignalRows % BM == 0, "a tile's rows share one row group of the signal mask");
  __syncthreads();  // the previous tile is done with every shared buffer
  setup_rows(s, p, k0);
  setup_cols(s, p, p0);
  __syncthreads();
  if (p.signal) {  // no class marked for these rows and no NaN lse: the filter would drop the tile
    const uint32_t* group = p.signal + (k0 / kSignalRows) * p.signal_words;
    int maybe = 0;
    for (int c = threadIdx.x; c < BN; c += kThreads) {
      const int64_t j = s.cols[c];
      if (j >= 0) maybe |= (group[j / 32] >> (j % 32)) & 1u;
    }
    for (int i = threadIdx.x; i < BM; i += kThreads) maybe |= s.rows[i] >= 0 && s.row_lse[i] != s.row_lse[i];
    if (!__syncthreads_or(maybe)) return;  // block-uniform
  }
  compute_logits(s, p);

  // dz, one warp per row; the filter test runs on the unscaled S - onehot (the CPU's test).
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int signal = 0;
  for (int i = warp; i < BM; i += kWarps) {
    const bool row_ok = s.rows[i] >= 0;
    const float lse = s.row_lse[i], g = s.row_g[i], gh = g + s.row_h[i];
#pragma unroll
    for (int t = 0; t < BN / 32; ++t) {
      const int c = lane + 32 * t;
      const int64_t j = s.cols[c];
      float dz = 0.f;
      if (row_ok && j >= 0) {
        const float z = finish_logit(s.tile[i * L::LDL + c], p, j);
        const float S = expf(z - lse);
        const bool on_target = j == s.tgt[i];
        // A NaN keeps the tile, as on the CPU; so does the target of a row with an LSE gradient
        // h != 0 (dz there is ~h on a confident row however small |S - 1| is; the CPU's
        // tile_has_signal derives the bound (|g| + |h|) eps this leaves on every skipped entry).
        if (p.eps > 0.f && !signal)
          signal = on_target ? s.row_h[i] != 0.f || !(fabsf(S - 1.f) < p.eps) : !(z - lse < p.log_eps);
        dz = gh * S - (on_target ? g : 0.f);
        if (p.cap > 0.f) {
          const float u = z * (1.f / p.cap);
          dz *= 1.f - u * u;
        }
      }
      s.tile[i * L::LDL + c] = dz;
      s.G[i * L::LDG + c] = from_float<In>(dz);
    }
  }
  if (p.eps > 0.f) {
    if (!__syncthreads_or(signal)) return;  // block-uniform: every thread sees the same result
  } else {
    __syncthreads();
  }

  if (p.db) {  // column sums of the fp32 dz
    for (int c = threadIdx.x; c < BN; c += kThreads) {
      const int64_t j = s.cols[c];
      if (j < 0) continue;
      float sum = 0.f;
      for (int i = 0; i < BM; ++i) sum += s.tile[i * L::LDL + c];
      if (sum == 0.f) continue;
      if constexpr (kAtomic)
        atomicAdd(p.db + j, sum);
      else
        p.db[j] += sum;
    }
  }

  In* Eg = s.stage;                // [BM][LDB]
  In* Cg = s.stage + BM * L::LDB;  // [BN][LDB]
  float* out = s.out;              // product staging (dz in s.tile is no longer needed)
  const bool want_dE = p.dE || p.dE16, want_dC = p.dC || p.dC16;
  for (int64_t d0 = 0; d0 < p.D; d0 += BD) {
    __syncthreads();  // db sums / the previous chunk's flush are done with s.tile, s.out, staging
    if (want_dE) load_chunk<BD, L::LDB>(Cg, p.C, s.cols, BN, p.D, d0, p.vec);
    if (want_dC) load_chunk<BD, L::LDB>(Eg, p.E, s.rows, BM, p.D, d0, p.vec);
    __syncthreads();
    if (want_dE) {
      product_dE<L>(out, s.G, Cg);
      __syncthreads();
      if (p.dE16)
        flush_bf16<L>(out, BM, s.rows, p.dE16, p.D, d0, p.pairs);
      else
        flush<L, kAtomic>(out, BM, s.rows, p.dE, p.D, d0);
    }
    if (want_dC) {
      if (want_dE) __syncthreads();  // the dE flush is done reading `out`
      product_dC<L>(out, s.G, Eg);
      __syncthreads();
      if (p.dC16)
        flush_bf16<L>(out, BN, s.cols, p.dC16, p.D, d0, p.pairs);
      else
        flush<L, kAtomic>(out, BN, s.cols, p.dC, p.D, d0);
    }
  }
}

// How a backward launch walks the tiles.
enum class Walk {
  tiles,  // one tile per item, in grouped order (below); atomics
  rows,   // item = row block, all vocabulary blocks in order; this block owns the dE rows
  vocab,  // item = vocabulary block, all row blocks in order; this block owns the dC rows and db
};

// (2 blocks per SM: caps registers at 128. Two blocks' shared memory fit for the bf16 tiles on
// sm_90; the float32 backward (118.5 KiB) and, on sm_80, every backward run one block per SM.)
template <class L, Walk kWalk>
__global__ void __launch_bounds__(kThreads, 2)
    cce_backward_kernel(Params<typename L::T> p, int64_t row_blocks, int64_t vocab_blocks) {
  static_assert(L::kMinBlocks == 2, "the backward's tiles fit two blocks per SM");
  constexpr int BN = L::BN;
  constexpr int BM = L::BM;
  extern __shared__ __align__(128) char smem_raw[];
  const Smem<L, true> s(smem_raw);
  constexpr bool kAtomic = kWalk == Walk::tiles;
  const int64_t items = kWalk == Walk::tiles  ? row_blocks * vocab_blocks
                        : kWalk == Walk::rows ? row_blocks
                                              : vocab_blocks;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    if constexpr (kWalk == Walk::tiles) {
      // Grouped order: row blocks fastest within groups of kGroupRows, then vocabulary blocks.
      // Blocks running at the same time then cover ~kGroupRows row blocks x a few dozen vocabulary
      // blocks: each C_J and E_R is read by several of them while in L2, and no dE or dC row is
      // hit by more than a few dozen concurrent atomics.
      const int64_t group = item / (kGroupRows * vocab_blocks), local = item % (kGroupRows * vocab_blocks);
      const int64_t group_rows = min(kGroupRows, row_blocks - group * kGroupRows);
      backward_tile<kAtomic>(s, p, (group * kGroupRows + local % group_rows) * BM, (local / group_rows) * BN);
    } else if constexpr (kWalk == Walk::rows) {
      for (int64_t J = 0; J < vocab_blocks; ++J) backward_tile<kAtomic>(s, p, item * BM, J * BN);
    } else {
      for (int64_t b = 0; b < row_blocks; ++b) backward_tile<kAtomic>(s, p, b * BM, item * BN);
    }
  }
}

__global__ void round_to_bf16_kernel(__nv_bfloat16* out, const float* in, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

// --- host side -----------------------------------------------------------------------------------

// ember::bfloat16 and __nv_bfloat16 are both the upper 16 bits of an IEEE float.
static_assert(sizeof(ember::bfloat16) == sizeof(__nv_bfloat16));

template <class In>
const In* in_ptr(const Tensor& t) {
  return t.defined() ? reinterpret_cast<const In*>(t.raw_data()) : nullptr;
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

unsigned int grid_of(int64_t items) {
  constexpr int64_t kMax = int64_t{1} << 30;
  return static_cast<unsigned int>(items < 1 ? 1 : items < kMax ? items : kMax);
}

template <class In>
Params<In> common_params(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                         const Tensor& targets, double softcap) {
  Params<In> p{};
  p.E = in_ptr<In>(E);
  p.C = in_ptr<In>(C);
  p.bias = in_ptr<In>(bias);
  p.rows = static_cast<const int64_t*>(rows.raw_data());
  p.targets = static_cast<const int64_t*>(targets.raw_data());
  p.n = rows.numel();
  p.V = C.size(0);
  p.D = C.size(1);
  p.cap = static_cast<float>(softcap);
  p.vec = p.D % (16 / static_cast<int64_t>(sizeof(In))) == 0 && aligned16(p.E) && aligned16(p.C);
  return p;
}

template <class Kernel>
void allow_shared_memory(Kernel kernel, size_t bytes) {
  EMBER_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// The forward's launches on tile configuration L.
template <class L>
void forward_launch(Params<typename L::T> p, const KernelContext& ctx, const Tensor& lse, const Tensor& nll,
                    const Tensor& logit_avg, double filter_eps, const Tensor& signal_mask) {
  constexpr int BN = L::BN;
  const int64_t row_blocks = (p.n + L::BM - 1) / L::BM, vocab_blocks = (p.V + BN - 1) / BN;
  constexpr size_t smem = Smem<L, false>::kBytes;
  allow_shared_memory(cce_forward_kernel<L>, smem);
  int per_sm = 0;
  EMBER_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, cce_forward_kernel<L>, kThreads, smem));
  const int64_t slots = std::max(per_sm, 1) * static_cast<int64_t>(ember::cuda::sm_count(ctx.device));
  const int64_t splits = forward_splits(row_blocks, vocab_blocks, slots);
  const Device device = lse.device();
  Tensor part_m = empty_tensor({splits * p.n}, DType::float32, device);
  Tensor part_l = empty_tensor({splits * p.n}, DType::float64, device);
  Tensor target_logit = empty_tensor({p.n}, DType::float32, device);
  Tensor avg_fixed;
  if (logit_avg.defined()) {
    avg_fixed = empty_tensor({p.V}, DType::int64, device);
    EMBER_CUDA_CHECK(cudaMemsetAsync(avg_fixed.raw_data(), 0, p.V * sizeof(int64_t), ctx.stream));
    p.avg_fixed = static_cast<unsigned long long*>(avg_fixed.raw_data());
  }
  p.part_m = static_cast<float*>(part_m.raw_data());
  p.part_l = static_cast<double*>(part_l.raw_data());
  p.target_logit = static_cast<float*>(target_logit.raw_data());
  if (signal_mask.defined()) {
    p.signal = static_cast<uint32_t*>(signal_mask.raw_data());
    p.signal_words = signal_mask_words(p.V);
    p.mark_log_eps = static_cast<float>(std::log(filter_eps));
  }

  cce_forward_kernel<L>
      <<<grid_of(row_blocks * splits), kThreads, smem, ctx.stream>>>(p, row_blocks, vocab_blocks, splits);
  EMBER_CUDA_CHECK_LAUNCH("cce_forward_kernel");
  lse_combine_kernel<<<ember::cuda::blocks_for(p.n, kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<float*>(lse.raw_data()), static_cast<float*>(nll.raw_data()), p.part_m, p.part_l,
      p.target_logit, p.rows, p.n, splits);
  EMBER_CUDA_CHECK_LAUNCH("lse_combine_kernel");
  if (logit_avg.defined()) {
    logit_avg_kernel<<<ember::cuda::blocks_for(p.V, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<float*>(logit_avg.raw_data()), p.avg_fixed, p.V, p.n);
    EMBER_CUDA_CHECK_LAUNCH("logit_avg_kernel");
  }
}

// The shared memory a block may use on this device (227 KiB on sm_90, 163 KiB on sm_80, 99 KiB on
// sm_86 / sm_89), or less when a test asks (losses::detail::cce_cuda_shared_memory_limit()).
size_t shared_memory_limit(int device) {
  int limit = 0;
  EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int64_t asked = losses::detail::cce_cuda_shared_memory_limit();
  return static_cast<size_t>(asked > 0 && asked < limit ? asked : limit);
}

// Runs `launch.template operator()<Cfg>()` with the first tile configuration, in this order, that
// the call may use and whose block fits the device's shared memory, and returns whether one did:
//   float32: the simt core;
//   bf16: the mma core when it was chosen (cce_cuda_core()) and the inputs allow cp.async (p.vec),
//   with 128 x 256 forward tiles for mma_wide; else the wmma core, two stages, then one.
// (Only the float32 backward, 118.5 KiB, can find none: on sm_86 / sm_89. cce.cu then runs its
// simple kernels.) A launch that does nothing asks whether a configuration fits.
template <class In, bool kForward, class Launch>
bool with_config(const Params<In>& p, int device, Launch&& launch) {
  using losses::detail::CCECudaCore;
  const size_t limit = shared_memory_limit(device);
  auto fits = [&]<class L>() { return Smem<L, !kForward>::kBytes <= limit; };
  auto run = [&]<class L>() {
    launch.template operator()<L>();
    return true;
  };
  if constexpr (std::is_same_v<In, float>) {
    return fits.template operator()<CfgF32>() && run.template operator()<CfgF32>();
  } else {
    const CCECudaCore core = losses::detail::cce_cuda_core();
    const bool mma = p.vec && core != CCECudaCore::wmma;
    if constexpr (kForward) {
      if (mma && core == CCECudaCore::mma_wide && fits.template operator()<CfgMmaForwardWide>())
        return run.template operator()<CfgMmaForwardWide>();
      if (mma && fits.template operator()<CfgMmaForward>()) return run.template operator()<CfgMmaForward>();
    } else {
      if (mma && fits.template operator()<CfgMmaBackward>()) return run.template operator()<CfgMmaBackward>();
    }
    if (fits.template operator()<CfgWmma>()) return run.template operator()<CfgWmma>();
    return fits.template operator()<CfgWmmaOneStage>() && run.template operator()<CfgWmmaOneStage>();
  }
}

// Whether some tile configuration of with_config fits; when none does, float32 returns to the
// caller's simple kernels, and bf16 (whose smallest block, 82 KiB, fits every sm_80+ GPU unless a
// test asks for less) stops with an error.
template <class In, bool kForward>
bool some_config_fits(const Params<In>& p, int device) {
  if (with_config<In, kForward>(p, device, [&]<class L>() {})) return true;
  if (std::is_same_v<In, __nv_bfloat16>)
    fail("cut_cross_entropy: no bf16 kernel fits in {} bytes of shared memory per block",
         shared_memory_limit(device));
  return false;
}

template <class In>
bool forward_typed(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                   const Tensor& targets, double softcap, const Tensor& lse, const Tensor& nll,
                   const Tensor& logit_avg, double filter_eps, const Tensor& signal_mask) {
  KernelContext ctx(E, "cut_cross_entropy");
  Params<In> p = common_params<In>(E, C, bias, rows, targets, softcap);
  if (!some_config_fits<In, true>(p, ctx.device)) return false;
  if (p.n == 0) {
    if (logit_avg.defined())
      EMBER_CUDA_CHECK(cudaMemsetAsync(logit_avg.raw_data(), 0, p.V * sizeof(float), ctx.stream));
    return true;
  }
  return with_config<In, true>(p, ctx.device, [&]<class L>() {
    forward_launch<L>(p, ctx, lse, nll, logit_avg, filter_eps, signal_mask);
  });
}

// An fp32 accumulator for a gradient output: the output itself for float32 (zeroed), fresh
// zeroed scratch for bfloat16 (rounded into the output at the end).
Tensor fp32_accumulator(const Tensor& out, cudaStream_t stream) {
  if (!out.defined()) return Tensor();
  Tensor acc = out.dtype() == DType::float32 ? out : empty_tensor(out.shape(), DType::float32, out.device());
  EMBER_CUDA_CHECK(cudaMemsetAsync(acc.raw_data(), 0, acc.numel() * sizeof(float), stream));
  return acc;
}

// A bf16 output that the kernel accumulates in place: zeroed (bf16 +0 is all zero bits).
__nv_bfloat16* zeroed_bf16(const Tensor& out, cudaStream_t stream) {
  if (!out.defined()) return nullptr;
  EMBER_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.numel() * sizeof(__nv_bfloat16), stream));
  return static_cast<__nv_bfloat16*>(out.raw_data());
}

bool aligned4(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 4 == 0; }

float* f32_or_null(const Tensor& t) { return t.defined() ? static_cast<float*>(t.raw_data()) : nullptr; }

template <class In>
bool backward_typed(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                    const Tensor& targets, double softcap, const Tensor& lse, const Tensor& grad_nll,
                    const Tensor& grad_lse, double filter_eps, const Tensor& vocab_order,
                    const Tensor& signal_mask, bool deterministic, bool accumulate_fp32, const Tensor& dE,
                    const Tensor& dC, const Tensor& db) {
  KernelContext ctx(E, "cut_cross_entropy backward");
  Params<In> p = common_params<In>(E, C, bias, rows, targets, softcap);
  if (!some_config_fits<In, false>(p, ctx.device)) return false;
  // bf16 dE / dC accumulate in place unless fp32 sums were asked for (or a fixed order, which
  // the deterministic walks get from plain fp32 read-add-writes).
  const bool in_place = std::is_same_v<In, __nv_bfloat16> && !accumulate_fp32 && !deterministic;
  if (in_place) {
    p.dE16 = zeroed_bf16(dE, ctx.stream);
    p.dC16 = zeroed_bf16(dC, ctx.stream);
    p.pairs = p.D % 2 == 0 && aligned4(p.dE16) && aligned4(p.dC16);
  }
  Tensor dE_acc = in_place ? Tensor() : fp32_accumulator(dE, ctx.stream),
         dC_acc = in_place ? Tensor() : fp32_accumulator(dC, ctx.stream),
         db_acc = fp32_accumulator(db, ctx.stream);
  if (p.n > 0) {
    p.order = vocab_order.defined() ? static_cast<const int64_t*>(vocab_order.raw_data()) : nullptr;
    p.lse = static_cast<const float*>(lse.raw_data());
    p.grad_nll = static_cast<const float*>(grad_nll.raw_data());
    p.grad_lse = grad_lse.defined() ? static_cast<const float*>(grad_lse.raw_data()) : nullptr;
    p.eps = static_cast<float>(filter_eps);
    p.log_eps = filter_eps > 0 ? std::log(p.eps) : 0.f;
    if (p.eps > 0.f && signal_mask.defined()) {  // (the filter's own switch: eps in float)
      p.signal = static_cast<uint32_t*>(signal_mask.raw_data());
      p.signal_words = signal_mask_words(p.V);
    }
    // One launch of walk W on tile configuration K (its own row blocks and shared memory).
    auto launch = [&]<class K, Walk W>(Params<In> q, const char* name) {
      const int64_t row_blocks = (p.n + K::BM - 1) / K::BM, vocab_blocks = (p.V + K::BN - 1) / K::BN;
      const int64_t items = W == Walk::tiles  ? row_blocks * vocab_blocks
                            : W == Walk::rows ? row_blocks
                                              : vocab_blocks;
      constexpr size_t smem = Smem<K, true>::kBytes;
      allow_shared_memory(cce_backward_kernel<K, W>, smem);
      cce_backward_kernel<K, W><<<grid_of(items), kThreads, smem, ctx.stream>>>(q, row_blocks, vocab_blocks);
      ember::cuda::detail::check_cuda(cudaGetLastError(), name, __FILE__, __LINE__);
    };
    with_config<In, false>(p, ctx.device, [&]<class L>() {
      if (!deterministic) {
        p.dE = f32_or_null(dE_acc);
        p.dC = f32_or_null(dC_acc);
        p.db = f32_or_null(db_acc);
        launch.template operator()<L, Walk::tiles>(p, "launch of cce_backward_kernel (tiles)");
      } else {
        if (dE_acc.defined()) {
          // One block per row block walks the whole vocabulary: with the mma core's 128-row tiles
          // that would be half as many blocks as 64-row tiles give (a quarter of an H200's slots
          // at N = 8192), so this walk takes 64-row tiles (dE is then filtered on 64 x 128 tiles).
          using Rows = std::conditional_t<L::core == Core::mma, CfgMmaBackwardRows, L>;
          Params<In> q = p;
          q.dE = f32_or_null(dE_acc);
          launch.template operator()<Rows, Walk::rows>(q, "launch of cce_backward_kernel (rows)");
        }
        if (dC_acc.defined() || db_acc.defined()) {
          Params<In> q = p;
          q.dC = f32_or_null(dC_acc);
          q.db = f32_or_null(db_acc);
          launch.template operator()<L, Walk::vocab>(q, "launch of cce_backward_kernel (vocab)");
        }
      }
    });
  }
  if constexpr (std::is_same_v<In, __nv_bfloat16>) {
    for (const auto& [out, acc] : {std::pair{dE, dE_acc}, std::pair{dC, dC_acc}, std::pair{db, db_acc}}) {
      if (!acc.defined()) continue;  // undefined output, or accumulated in place
      round_to_bf16_kernel<<<grid_of((acc.numel() + kThreads - 1) / kThreads), kThreads, 0, ctx.stream>>>(
          static_cast<__nv_bfloat16*>(out.raw_data()), static_cast<const float*>(acc.raw_data()),
          acc.numel());
      EMBER_CUDA_CHECK_LAUNCH("round_to_bf16_kernel");
    }
  }
  return true;
}

}  // namespace

bool tiled_forward(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                   const Tensor& targets, double softcap, const Tensor& lse, const Tensor& nll,
                   const Tensor& logit_avg, double filter_eps, const Tensor& signal_mask) {
  if (E.dtype() == DType::bfloat16)
    return forward_typed<__nv_bfloat16>(E, C, bias, rows, targets, softcap, lse, nll, logit_avg, filter_eps,
                                        signal_mask);
  return forward_typed<float>(E, C, bias, rows, targets, softcap, lse, nll, logit_avg, filter_eps,
                              signal_mask);
}

bool tiled_backward(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                    const Tensor& targets, double softcap, const Tensor& lse, const Tensor& grad_nll,
                    const Tensor& grad_lse, double filter_eps, const Tensor& vocab_order,
                    const Tensor& signal_mask, bool deterministic, bool accumulate_fp32, const Tensor& dE,
                    const Tensor& dC, const Tensor& db) {
  if (E.dtype() == DType::bfloat16)
    return backward_typed<__nv_bfloat16>(E, C, bias, rows, targets, softcap, lse, grad_nll, grad_lse,
                                         filter_eps, vocab_order, signal_mask, deterministic, accumulate_fp32,
                                         dE, dC, db);
  return backward_typed<float>(E, C, bias, rows, targets, softcap, lse, grad_nll, grad_lse, filter_eps,
                               vocab_order, signal_mask, deterministic, accumulate_fp32, dE, dC, db);
}

}  // namespace ember::cuda_kernels::cce
