// Cut Cross-Entropy, CPU backward: dE, dC and db by recomputing the logits tile by tile.
//
// The gradient of nll_r = LSE_r - z_{r,x_r} with respect to the logits is softmax minus one-hot,
// scaled by the upstream gradient g_r (plus h_r * softmax when the caller also used LSE_r):
//
//     dz_rj = g_r (S_rj - 1[j = x_r]) + h_r S_rj,    S_rj = exp(z_rj - LSE_r),
//
// and the logits are z = E C^T + b, so dE = dz C, dC = dz^T E and db = column sums of dz. The
// forward saved only LSE (one number per row), so each tile of z is recomputed with one GEMM,
// turned into dz in place, and consumed by two more GEMMs (dE rows += dz C_J, dC_J += dz^T E_R).
// That is 3 GEMMs of the same size per tile: the backward costs about 3x the forward.
//
// Gradient filtering. S_rj sums to 1 over j, so in a large vocabulary almost all entries are
// tiny. A tile in which every |S_rj - 1[j = x_r]| is below filter_eps (2^-28 for float32: far
// below what float32 sums can resolve) contributes nothing measurable, and is skipped after the
// first GEMM. The test runs on the unscaled softmax-minus-onehot, as in the reference, but on
// the logits (S >= eps <=> z - LSE >= log eps), so a skipped tile costs no exponentials either.
// With an LSE gradient h_r the target entry is g_r (S - 1) + h_r S, ~h_r on a confident row however
// small |S - 1| is, so a tile holding the target of a row with h_r != 0 is always kept (see
// tile_has_signal for the bound this gives every skipped entry).
//
// The signal mask. With the forward's mask (losses/kernels/cce.h) a tile none of whose classes is
// marked for its rows is dropped before that first GEMM: on a language model's logits, where
// filtering drops most tiles, this takes most of the backward's work away.
//
// Vocabulary sorting. Filtering only pays off when a tile's entries are *all* negligible. The
// forward recorded each entry's average logit; visiting the vocabulary in that order groups the
// never-likely entries into tiles of their own, which the filter then skips. A block J of the
// sorted order gathers its C rows (and bias entries) into a contiguous buffer and scatters its
// dC rows back at the end; the math is unchanged.
//
// Parallelism without write conflicts. Threads own vocabulary blocks (block J belongs to worker
// J mod workers), so each thread is the only writer of its dC and db rows. dE rows, in contrast,
// receive a contribution from every vocabulary block: each thread accumulates its own copy of
// dE for a group of rows, and the copies are added together when the group is done. The group
// size is chosen so all the copies together hold at most group_elements values, which keeps
// the extra memory small and independent of N.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "ember/threads.h"
#include "losses/cpu/cce_bfloat16.h"
#include "losses/cpu/cce_tiles.h"
#include "losses/kernels/cce.h"
#include "ops/cpu/vector_math.h"

namespace ember::cpu {
namespace {

using cce::finish_logits;
using cce::logits_tile;
using cce::row_block;

// What the gradient of one tile row needs besides its logits.
template <class T>
struct RowInfo {
  const T* lse;             // [R]
  const T* grad_nll;        // [R]
  const T* grad_lse;        // [R] or null (zero)
  const int64_t* rows;      // [n]
  const int64_t* targets;   // [n]
  const int64_t* position;  // where each vocabulary id sits in the visiting order; null = identity
};

// The column of row k's target in a tile covering visiting-order positions p0 .. p0 + cols
// (outside [0, cols) when the target is in another tile).
template <class T>
int64_t target_column(int64_t k, int64_t p0, const RowInfo<T>& info) {
  const int64_t t = info.targets[k];
  return (info.position ? info.position[t] : t) - p0;
}

// Gradient filtering's test, run on the logits before any exponential: does some entry of the
// tile have |S - onehot| >= eps, or is the target of a row with an LSE gradient h != 0 in it? Off
// the target column |S| >= eps  <=>  z - LSE >= log(eps), so a max over the row decides it; the
// target column is checked on its own.
//
// What a skipped tile drops. Off the target dz = (g + h) S (times the soft cap's slope, <= 1)
// with S < eps, so |dz| < (|g| + |h|) eps. On the target dz = g (S - 1) + h S: with h = 0 that is
// |g| |S - 1| < |g| eps, but with h != 0 it is ~h on a confident row (S ~ 1), whatever |S - 1| is
// (a z-loss's whole gradient there), and for S < eps it is ~g: either way not negligible, hence
// the rule that such a tile is kept. So every skipped entry has |dz_rj| < (|g_r| + |h_r|) eps:
// the plain loss's bound |g_r| eps with the row's full upstream scale, and skipping a tile changes
// dE_r by less than (|g_r| + |h_r|) eps sum_j |c_j| and dC_j by less than
// eps sum_r (|g_r| + |h_r|) |e_r| over its entries. The threshold itself stays on S, so the signal
// mask (a bound on S from the forward, and every target marked) drops only tiles this test drops.
// Without an LSE gradient (h absent or 0) the test is the plain loss's, fast path included.
template <class T>
bool tile_has_signal(const T* tile, int64_t nb, int64_t cols, int64_t k0, int64_t p0, const RowInfo<T>& info,
                     T eps) {
  const T log_eps = std::log(eps);
  for (int64_t i = 0; i < nb; ++i) {
    const T* x = tile + i * cols;
    const int64_t r = info.rows[k0 + i];
    const T lse = info.lse[r];
    const int64_t tc = target_column(k0 + i, p0, info);
    T row_max = -std::numeric_limits<T>::infinity();
    for (int64_t c = 0; c < cols; ++c) {
      if (c == tc) continue;
      row_max = (x[c] > row_max || std::isnan(x[c])) ? x[c] : row_max;  // a NaN wins: keep the tile
    }
    if (!(row_max - lse < log_eps)) return true;
    if (tc >= 0 && tc < cols) {
      const T h = info.grad_lse ? info.grad_lse[r] : T(0);
      if (h != T(0) || !(std::abs(std::exp(x[tc] - lse) - T(1)) < eps)) return true;  // NaN h keeps
    }
  }
  return false;
}

// The signal mask's test: might the tile of scored rows k0 .. k1 and visiting-order positions
// p0 .. p0 + cols pass the filter? Some (row group, class) bit is set, or some row's LSE is NaN.
template <class T>
bool tile_may_have_signal(const uint32_t* mask, int64_t words, int64_t k0, int64_t k1, int64_t p0,
                          int64_t cols, const int64_t* order, const RowInfo<T>& info) {
  for (int64_t q = k0 / kSignalRows; q <= (k1 - 1) / kSignalRows; ++q)
    for (int64_t c = 0; c < cols; ++c)
      if (signal_bit(mask, words, q * kSignalRows, order ? order[p0 + c] : p0 + c)) return true;
  for (int64_t k = k0; k < k1; ++k)
    if (std::isnan(info.lse[info.rows[k]])) return true;
  return false;
}

// Turns one tile row of logits x (visiting-order positions p0 .. p0 + cols) into dz, in place.
// Vectorised exp (ops/cpu/vector_math.h; SSE2, AVX2 and AVX-512 clones).
template <class T>
EMBER_VECTOR_CLONES void gradient_row(T* x, int64_t cols, int64_t k, int64_t p0, const RowInfo<T>& info,
                                      T cap) {
  const int64_t r = info.rows[k];
  const int64_t tc = target_column(k, p0, info);
  const bool has_target = tc >= 0 && tc < cols;
  const T lse = info.lse[r], g = info.grad_nll[r], h = info.grad_lse ? info.grad_lse[r] : T(0);
  // Every column first gets the off-target value dz = (g + h) S, times the slope of the soft cap,
  // d/dz [cap tanh(z / cap)] = 1 - tanh^2 = 1 - (zhat / cap)^2; the target column is redone below.
  const T z_target = has_target ? x[tc] : T(0);
  const T gh = g + h;
  if (cap > 0) {
    const T inv = T(1) / cap;
    for (int64_t c = 0; c < cols; ++c) {
      const T u = x[c] * inv;
      x[c] = gh * exp_of(x[c] - lse) * (T(1) - u * u);
    }
  } else {
    for (int64_t c = 0; c < cols; ++c) x[c] = gh * exp_of(x[c] - lse);
  }
  if (has_target) {
    T dz = gh * std::exp(z_target - lse) - g;
    if (cap > 0) {
      const T u = z_target / cap;
      dz *= T(1) - u * u;
    }
    x[tc] = dz;
  }
}

template <class T>
void cce_backward_typed(const Tensor& E_t, const Tensor& C_t, const Tensor& bias_t, const Tensor& rows_t,
                        const Tensor& targets_t, double softcap, const Tensor& lse_t,
                        const Tensor& grad_nll_t, const Tensor& grad_lse_t, double filter_eps,
                        const Tensor& order_t, const Tensor& mask_t, const Tensor& dE_t, const Tensor& dC_t,
                        const Tensor& db_t) {
  const int64_t n = rows_t.numel(), V = C_t.size(0), D = C_t.size(1);
  for (const Tensor* out : {&dE_t, &dC_t, &db_t})  // the contract: every entry is written
    if (out->defined()) std::fill_n(static_cast<T*>(out->raw_data()), out->numel(), T(0));
  if (n == 0) {
    cce::last_backward_stats() = {};
    return;
  }
  const T* E = E_t.data_ptr<T>();
  const T* C = C_t.data_ptr<T>();
  const T* bias = bias_t.defined() ? bias_t.data_ptr<T>() : nullptr;
  const int64_t* rows = rows_t.data_ptr<int64_t>();
  const int64_t* order = order_t.defined() ? order_t.data_ptr<int64_t>() : nullptr;
  T* dE = dE_t.defined() ? static_cast<T*>(dE_t.raw_data()) : nullptr;
  T* dC = dC_t.defined() ? static_cast<T*>(dC_t.raw_data()) : nullptr;
  T* db = db_t.defined() ? static_cast<T*>(db_t.raw_data()) : nullptr;
  const T cap = static_cast<T>(softcap), eps = static_cast<T>(filter_eps);
  const uint32_t* mask =
      mask_t.defined() && eps > 0 ? static_cast<const uint32_t*>(mask_t.raw_data()) : nullptr;
  const int64_t words = signal_mask_words(V);

  // The inverse of the visiting order: position[id] = where vocabulary id sits in it.
  Tensor position_t;
  if (order) {
    position_t = empty_tensor({V}, DType::int64, Device::cpu());
    int64_t* pos = position_t.data_ptr<int64_t>();
    for (int64_t p = 0; p < V; ++p) pos[order[p]] = p;
  }
  const RowInfo<T> info{lse_t.data_ptr<T>(),
                        grad_nll_t.data_ptr<T>(),
                        grad_lse_t.defined() ? grad_lse_t.data_ptr<T>() : nullptr,
                        rows,
                        targets_t.data_ptr<int64_t>(),
                        order ? position_t.data_ptr<int64_t>() : nullptr};

  const cce::TileConfig cfg = cce::tile_config();
  const int64_t NB = cfg.bwd_rows, VB = cfg.bwd_vocab;
  const int64_t vocab_blocks = (V + VB - 1) / VB;
  const int64_t workers = std::min<int64_t>(get_num_threads(), vocab_blocks);
  // Rows per group: a multiple of NB, with workers * group * D <= group_elements (at least NB).
  const int64_t group = std::min(n, std::max<int64_t>(1, cfg.group_elements / (workers * D * NB)) * NB);

  // Scratch, per worker: the tile; its dE copy for the current group; for a sorted order the
  // gathered C rows, bias entries and the dC rows of the block being visited. Shared: the
  // group's embedding rows when they are not consecutive in E.
  const int64_t tile_size = NB * VB, de_size = dE ? group * D : 0;
  const int64_t gather_size = order ? VB * D + VB + (dC ? VB * D : 0) : 0;
  const int64_t per_worker = tile_size + de_size + gather_size;
  Tensor scratch = empty_tensor({workers * per_worker}, dtype_of<T>(), Device::cpu());
  Tensor group_rows;  // allocated only if some group's rows are not consecutive
  for (int64_t g0 = 0; g0 < n && !group_rows.defined(); g0 += group) {
    const int64_t g1 = std::min(n, g0 + group);
    if (rows[g1 - 1] - rows[g0] != g1 - 1 - g0)
      group_rows = empty_tensor({group * D}, dtype_of<T>(), Device::cpu());
  }

  std::vector<cce::BackwardStats> stats(static_cast<size_t>(workers));
  for (int64_t g0 = 0; g0 < n; g0 += group) {
    const int64_t g1 = std::min(n, g0 + group), ng = g1 - g0;
    const T* Eg = row_block(E, D, rows, g0, g1, group_rows.defined() ? group_rows.data_ptr<T>() : nullptr);

    auto visit_block = [&](int64_t J, T* tile, T* dE_copy, T* gather, cce::BackwardStats& st) {
      const int64_t p0 = J * VB, cols = std::min(VB, V - p0);
      // The block's classifier rows, bias entries and dC destination.
      const T* Cj = C + p0 * D;
      const T* bj = bias ? bias + p0 : nullptr;
      T* dCj = dC ? dC + p0 * D : nullptr;
      if (order) {
        T* c_buf = gather;
        T* b_buf = c_buf + VB * D;
        for (int64_t c = 0; c < cols; ++c) std::memcpy(c_buf + c * D, C + order[p0 + c] * D, D * sizeof(T));
        if (bias)
          for (int64_t c = 0; c < cols; ++c) b_buf[c] = bias[order[p0 + c]];
        Cj = c_buf;
        bj = bias ? b_buf : nullptr;
        if (dC) {
          dCj = b_buf + VB;
          std::fill(dCj, dCj + cols * D, T(0));
        }
      }
      bool any_kept = false;
      for (int64_t R0 = 0; R0 < ng; R0 += NB) {
        const int64_t nb = std::min(NB, ng - R0);
        const T* Er = Eg + R0 * D;
        ++st.tiles;
        if (mask && !tile_may_have_signal(mask, words, g0 + R0, g0 + R0 + nb, p0, cols, order, info))
          continue;
        ++st.computed;
        logits_tile(Er, nb, Cj, cols, D, tile);  // recompute z for this tile
        for (int64_t i = 0; i < nb; ++i) finish_logits(tile + i * cols, cols, bj, cap);
        // Gradient filtering: a tile that is negligible everywhere costs one GEMM and one pass.
        if (eps > 0 && !tile_has_signal(tile, nb, cols, g0 + R0, p0, info, eps)) continue;
        ++st.kept;
        any_kept = true;
        for (int64_t i = 0; i < nb; ++i) gradient_row(tile + i * cols, cols, g0 + R0 + i, p0, info, cap);
        const int ib = static_cast<int>(nb), ic = static_cast<int>(cols), id = static_cast<int>(D);
        if (dE_copy)
          blas_gemm<T>(false, false, ib, id, ic, T(1), tile, ic, Cj, id, T(1), dE_copy + R0 * D, id);
        if (dCj) blas_gemm<T>(true, false, ic, id, ib, T(1), tile, ic, Er, id, T(1), dCj, id);
        if (db)
          for (int64_t i = 0; i < nb; ++i)
            for (int64_t c = 0; c < cols; ++c) db[order ? order[p0 + c] : p0 + c] += tile[i * cols + c];
      }
      if (order && dC && any_kept)
        for (int64_t c = 0; c < cols; ++c) {
          T* dst = dC + order[p0 + c] * D;
          const T* src = dCj + c * D;
          for (int64_t d = 0; d < D; ++d) dst[d] += src[d];
        }
    };

    parallel_for(0, workers, 1, [&](int64_t w0, int64_t w1) {
      for (int64_t w = w0; w < w1; ++w) {
        T* tile = scratch.data_ptr<T>() + w * per_worker;
        T* dE_copy = dE ? tile + tile_size : nullptr;
        T* gather = tile + tile_size + de_size;
        if (dE_copy) std::fill(dE_copy, dE_copy + ng * D, T(0));
        for (int64_t J = w; J < vocab_blocks; J += workers) visit_block(J, tile, dE_copy, gather, stats[w]);
      }
    });

    // dE[rows[k]] += the workers' copies, in worker order (deterministic for a thread count).
    if (dE)
      parallel_for(g0, g1, std::max<int64_t>(1, 16384 / D), [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          T* dst = dE + rows[k] * D;
          for (int64_t w = 0; w < workers; ++w) {
            const T* src = scratch.data_ptr<T>() + w * per_worker + tile_size + (k - g0) * D;
            for (int64_t d = 0; d < D; ++d) dst[d] += src[d];
          }
        }
      });
  }
  cce::BackwardStats total;
  for (const auto& st : stats) {
    total.tiles += st.tiles;
    total.computed += st.computed;
    total.kept += st.kept;
  }
  cce::last_backward_stats() = total;
}

void cce_backward_cpu(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                      const Tensor& targets, double softcap, const Tensor& lse, const Tensor& grad_nll,
                      const Tensor& grad_lse, double filter_eps, const Tensor& vocab_order,
                      const Tensor& signal_mask, bool /*deterministic: always*/,
                      bool /*accumulate_fp32: always for bfloat16*/, const Tensor& dE, const Tensor& dC,
                      const Tensor& db) {
  if (E.dtype() == DType::bfloat16) {  // float32 math on widened copies, gradients rounded at the end
    const Tensor dE32 = cce::float_twin(dE), dC32 = cce::float_twin(dC), db32 = cce::float_twin(db);
    cce_backward_typed<float>(cce::widened_to_float(E), cce::widened_to_float(C), cce::widened_to_float(bias),
                              rows, targets, softcap, lse, grad_nll, grad_lse, filter_eps, vocab_order,
                              signal_mask, dE32, dC32, db32);
    cce::round_into_bfloat16(dE32, dE);
    cce::round_into_bfloat16(dC32, dC);
    cce::round_into_bfloat16(db32, db);
    return;
  }
  dispatch_floating(E.dtype(), "cut_cross_entropy", [&]<class T>() {
    cce_backward_typed<T>(E, C, bias, rows, targets, softcap, lse, grad_nll, grad_lse, filter_eps,
                          vocab_order, signal_mask, dE, dC, db);
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(cce_backward_stub, cpu, &cce_backward_cpu);

}  // namespace ember::cpu
