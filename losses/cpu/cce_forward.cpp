// Cut Cross-Entropy, CPU forward: the row-wise log-sum-exp of E·C^T without storing E·C^T.
//
// The idea. Cross-entropy needs two numbers per scored row r: the target logit z_{r,x_r} and
// LSE_r = log sum_j exp(z_rj). Neither needs the whole row of V logits at once. We walk the
// vocabulary in blocks of fwd_vocab entries; for a block of fwd_rows rows, one GEMM produces the
// [rows x block] tile of logits in a scratch buffer (512 KiB with the default sizes, so it stays
// in L2), and each row's running maximum m and running sum l = sum exp(z - m) absorb the tile:
//
//     m' = max(m, max_j z_j)                  (the new reference point)
//     l' = l * exp(m - m') + sum_j exp(z_j - m')   (rescale the old sum to m', add the tile)
//
// This "online log-sum-exp" is exact (not an approximation) and never overflows, since every
// exponent is <= 0. At the end LSE = m + log(l). The target logit is read out of whichever tile
// holds it, so it is bit-for-bit the value that entered the sum, and nll = LSE - z_x >= 0 up to
// the rounding of the log.
//
// Parallelism. Tasks are (row block, vocabulary split) pairs. With many rows, every task covers
// all of the vocabulary (one split); with few rows the vocabulary is split too, so that short
// batches still use every thread, and each split keeps its own (m, l) per row; the splits are
// merged afterwards with the same rescaling rule (log-add-exp). The number of splits depends
// only on the problem size, never on the thread count, so the loss is the same on any number
// of threads.
//
// Vocabulary sorting statistic. When the backward will filter gradients, the forward also
// computes each vocabulary entry's average logit over the scored rows; the backward orders its
// vocabulary blocks by it. Without a softcap the logits are linear in E, so the average is
// C (mean of the rows of E) + bias: one matrix-vector product after the loop. With a softcap
// (tanh) each tile's logits are added into per-thread partial column sums instead.
//
// Signal mask (losses/kernels/cce.h). When the backward will filter gradients, the forward also
// marks, per group of 128 scored rows, the classes whose softmax might reach filter_eps in the
// backward: z >= L + log(eps) - margin, where L, a lower bound of the row's LSE known at that
// moment, is the larger of its running max and its "probe" bound: the row's largest logit over
// the targets of its row block, computed up front (one small GEMM per row block) so that even a
// split's first tile is judged against a tight bound. On a language model's logits a row's most
// likely class is usually some row's target nearby, and its own target alone would not do: a
// row with a surprising target would mark every class within log(1/eps) nats of it.
// The backward then passes over unmarked tiles unseen.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
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

// Aim for at least this many tasks when choosing the number of vocabulary splits.
constexpr int64_t kMinTasks = 32;

// ORs `bits` into word w of row k's group in the signal mask. Tasks of one row block run
// concurrently, hence the atomic; most calls find the bits set already and only read.
inline void mark_signal_bits(uint32_t* mask, int64_t words, int64_t k, int64_t w, uint32_t bits) {
  std::atomic_ref<uint32_t> word(mask[(k / kSignalRows) * words + w]);
  if ((word.load(std::memory_order_relaxed) & bits) != bits) word.fetch_or(bits, std::memory_order_relaxed);
}

// Marks the classes j0 + c (c < n) whose logit x[c] reaches the threshold (a NaN marks), for row
// k: the bits of each 32-class word are gathered first, then set with one OR. A word whose bits
// are all set already (by an earlier row of the group: when the softmax is flat, the first row
// sets them all) is passed over without reading the logits.
template <class T>
void mark_row(uint32_t* mask, int64_t words, int64_t k, int64_t j0, const T* x, int64_t n, T threshold) {
  for (int64_t c = 0; c < n;) {
    const int64_t j = j0 + c, end = std::min(n, c + 32 - j % 32);  // the rest of j's word
    const uint32_t span = (end - c == 32 ? ~0u : (1u << (end - c)) - 1u) << (j % 32);
    const std::atomic_ref<uint32_t> word(mask[(k / kSignalRows) * words + j / 32]);
    if ((word.load(std::memory_order_relaxed) & span) == span) {
      c = end;
      continue;
    }
    uint32_t bits = 0;
    for (int64_t i = c; i < end; ++i) bits |= static_cast<uint32_t>(!(x[i] < threshold)) << ((j0 + i) % 32);
    if (bits) mark_signal_bits(mask, words, k, j / 32, bits);
    c = end;
  }
}

// sum_c exp(x[c] - ref) of one tile row: the forward's only per-logit transcendental, vectorised
// (ops/cpu/vector_math.h; SSE2, AVX2 and AVX-512 clones).
template <class T>
EMBER_VECTOR_CLONES T tile_row_sum_exp(const T* x, int64_t n, T ref) {
  return sum_exp<T>(x, n, ref);
}

// bound[k] = max over the targets t of row block [k0, k1) of zhat_kt: a lower bound of row k's
// LSE (the probe bound above). One GEMM of the block's rows against its targets' C rows.
template <class T>
void probe_bounds(const T* E, const T* C, const T* bias, const int64_t* rows, const int64_t* targets,
                  int64_t k0, int64_t k1, int64_t D, T cap, T* bound) {
  const int64_t nb = k1 - k0;
  Tensor scratch = empty_tensor({2 * nb * D + nb * nb + nb}, dtype_of<T>(), Device::cpu());
  T* e_buf = scratch.data_ptr<T>();
  T* c_buf = e_buf + nb * D;
  T* tile = c_buf + nb * D;
  T* b_buf = tile + nb * nb;
  for (int64_t t = 0; t < nb; ++t) {
    std::memcpy(c_buf + t * D, C + targets[k0 + t] * D, D * sizeof(T));
    if (bias) b_buf[t] = bias[targets[k0 + t]];
  }
  logits_tile(row_block(E, D, rows, k0, k1, e_buf), nb, c_buf, nb, D, tile);
  for (int64_t i = 0; i < nb; ++i) {
    T* x = tile + i * nb;
    finish_logits(x, nb, bias ? b_buf : nullptr, cap);
    bound[k0 + i] = *std::max_element(x, x + nb);
  }
}

template <class T>
void cce_forward_typed(const Tensor& E_t, const Tensor& C_t, const Tensor& bias_t, const Tensor& rows_t,
                       const Tensor& targets_t, double softcap, const Tensor& lse_t, const Tensor& nll_t,
                       const Tensor& avg_t, double filter_eps, const Tensor& mask_t) {
  const int64_t n = rows_t.numel(), V = C_t.size(0), D = C_t.size(1);
  const bool want_avg = avg_t.defined();
  const bool avg_by_columns = want_avg && softcap != 0;  // else C (mean E) + bias, after the loop
  T* avg_out = want_avg ? static_cast<T*>(avg_t.raw_data()) : nullptr;
  if (n == 0) {
    if (want_avg) std::fill(avg_out, avg_out + V, T(0));
    return;
  }
  const T* E = E_t.data_ptr<T>();
  const T* C = C_t.data_ptr<T>();
  const T* bias = bias_t.defined() ? bias_t.data_ptr<T>() : nullptr;
  const int64_t* rows = rows_t.data_ptr<int64_t>();
  const int64_t* targets = targets_t.data_ptr<int64_t>();
  T* lse_out = static_cast<T*>(lse_t.raw_data());
  T* nll_out = static_cast<T*>(nll_t.raw_data());
  const T cap = static_cast<T>(softcap);
  uint32_t* mask = mask_t.defined() ? static_cast<uint32_t*>(mask_t.raw_data()) : nullptr;
  const int64_t words = signal_mask_words(V);
  const T log_eps = static_cast<T>(std::log(filter_eps));

  const cce::TileConfig cfg = cce::tile_config();
  const int64_t NB = cfg.fwd_rows, VB = cfg.fwd_vocab;
  const int64_t row_blocks = (n + NB - 1) / NB, vocab_blocks = (V + VB - 1) / VB;
  const int64_t splits = std::clamp<int64_t>((kMinTasks + row_blocks - 1) / row_blocks, 1, vocab_blocks);
  const int64_t tasks = row_blocks * splits;
  const int64_t workers = std::min<int64_t>(get_num_threads(), tasks);

  // All scratch is ember tensors, so memory_stats() sees it: per worker one logits tile and one
  // gathered row block; per (split, row) the running max and sum; per row the target logit;
  // per worker a column-sum vector when the sorting statistic is wanted.
  const int64_t per_worker = NB * VB + NB * D;
  Tensor scratch = empty_tensor({workers * per_worker}, dtype_of<T>(), Device::cpu());
  Tensor running = empty_tensor({2 * splits * n}, DType::float64, Device::cpu());
  Tensor target_logit = empty_tensor({n}, dtype_of<T>(), Device::cpu());
  Tensor col_sums = avg_by_columns ? zeros({workers, V}, DType::float64) : Tensor();
  double* run_m = running.data_ptr<double>();
  double* run_l = run_m + splits * n;
  T* tz = target_logit.data_ptr<T>();
  // For the signal mask: each row's probe bound up front, and every target's bit.
  Tensor bound_t = mask ? empty_tensor({n}, dtype_of<T>(), Device::cpu()) : Tensor();
  T* bound = mask ? bound_t.data_ptr<T>() : nullptr;
  if (mask) {
    parallel_for(0, row_blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        probe_bounds(E, C, bias, rows, targets, b * NB, std::min(n, (b + 1) * NB), D, cap, bound);
    });
    for (int64_t k = 0; k < n; ++k)
      mark_signal_bits(mask, words, k, targets[k] / 32, 1u << (targets[k] % 32));
  }

  auto run_task = [&](int64_t task, int64_t w) {
    const int64_t b = task / splits, s = task % splits;
    const int64_t k0 = b * NB, k1 = std::min(n, k0 + NB), nb = k1 - k0;
    T* tile = scratch.data_ptr<T>() + w * per_worker;
    const T* Eb = row_block(E, D, rows, k0, k1, tile + NB * VB);
    double* m = run_m + s * n + k0;
    double* l = run_l + s * n + k0;
    std::fill(m, m + nb, -std::numeric_limits<double>::infinity());
    std::fill(l, l + nb, 0.0);
    const int64_t j_begin = s * vocab_blocks / splits, j_end = (s + 1) * vocab_blocks / splits;
    for (int64_t J = j_begin; J < j_end; ++J) {
      const int64_t j0 = J * VB, vb = std::min(VB, V - j0);
      logits_tile(Eb, nb, C + j0 * D, vb, D, tile);
      for (int64_t i = 0; i < nb; ++i) {
        T* x = tile + i * vb;
        finish_logits(x, vb, bias ? bias + j0 : nullptr, cap);
        const int64_t t = targets[k0 + i];
        if (t >= j0 && t < j0 + vb) tz[k0 + i] = x[t - j0];
        T tile_max = -std::numeric_limits<T>::infinity();
        for (int64_t c = 0; c < vb; ++c)  // a NaN wins and stays, so NaN reaches the sum and the LSE
          tile_max = (x[c] > tile_max || std::isnan(x[c])) ? x[c] : tile_max;
        const double m_new = std::max(m[i], static_cast<double>(tile_max));
        if (mask) {  // a NaN threshold or logit marks: !(x < threshold)
          const T threshold = signal_threshold(std::max(static_cast<T>(m_new), bound[k0 + i]), log_eps);
          if (!(tile_max < threshold)) mark_row(mask, words, k0 + i, j0, x, vb, threshold);
        }
        // A tile of only -inf logits (e.g. a -inf bias block) adds exp(-inf) = 0: skip it, which
        // also avoids (-inf) - (-inf) = NaN below.
        if (tile_max == -std::numeric_limits<T>::infinity()) continue;
        const T ref = static_cast<T>(m_new);  // exact: m_new is a T value
        const T sum = tile_row_sum_exp(x, vb, ref);
        l[i] = l[i] * std::exp(m[i] - m_new) + static_cast<double>(sum);
        m[i] = m_new;
      }
      if (avg_by_columns) {
        double* cs = col_sums.data_ptr<double>() + w * V + j0;
        for (int64_t i = 0; i < nb; ++i)
          for (int64_t c = 0; c < vb; ++c) cs[c] += tile[i * vb + c];
      }
    }
  };
  // Worker w takes tasks w, w + workers, ... (static, so every run schedules the same way).
  parallel_for(0, workers, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w)
      for (int64_t task = w; task < tasks; task += workers) run_task(task, w);
  });

  // Merge the splits: LSE = M + log(sum_s l_s exp(m_s - M)), M = max_s m_s.
  parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      double big_m = -std::numeric_limits<double>::infinity();
      for (int64_t s = 0; s < splits; ++s) big_m = std::max(big_m, run_m[s * n + k]);
      // Splits whose max is big_m itself add l unscaled; this also covers big_m = -inf (every
      // logit -inf: log(0) = -inf) without evaluating exp(-inf - -inf), and lets a NaN through.
      double sum = 0;
      for (int64_t s = 0; s < splits; ++s) {
        const double ms = run_m[s * n + k], ls = run_l[s * n + k];
        sum += ms == big_m ? ls : ls * std::exp(ms - big_m);
      }
      const double lse = big_m + std::log(sum);
      lse_out[rows[k]] = static_cast<T>(lse);
      nll_out[rows[k]] = static_cast<T>(lse - static_cast<double>(tz[k]));
    }
  });

  if (want_avg && !avg_by_columns) {
    std::vector<double> mean_e(static_cast<size_t>(D), 0.0);
    for (int64_t k = 0; k < n; ++k) {
      const T* e = E + rows[k] * D;
      for (int64_t d = 0; d < D; ++d) mean_e[d] += static_cast<double>(e[d]);
    }
    for (double& v : mean_e) v /= static_cast<double>(n);
    parallel_for(0, V, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const T* c = C + j * D;
        double dot = bias ? static_cast<double>(bias[j]) : 0.0;
        for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(c[d]) * mean_e[d];
        avg_out[j] = static_cast<T>(dot);
      }
    });
  } else if (want_avg) {
    const double* cs = col_sums.data_ptr<double>();
    parallel_for(0, V, 8192, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        double s = 0;
        for (int64_t w = 0; w < workers; ++w) s += cs[w * V + j];
        avg_out[j] = static_cast<T>(s / static_cast<double>(n));
      }
    });
  }
}

void cce_forward_cpu(const Tensor& E, const Tensor& C, const Tensor& bias, const Tensor& rows,
                     const Tensor& targets, double softcap, const Tensor& lse, const Tensor& nll,
                     const Tensor& logit_avg, double filter_eps, const Tensor& signal_mask) {
  if (E.dtype() == DType::bfloat16) {  // float32 math on widened copies (lse, nll are float32)
    cce_forward_typed<float>(cce::widened_to_float(E), cce::widened_to_float(C), cce::widened_to_float(bias),
                             rows, targets, softcap, lse, nll, logit_avg, filter_eps, signal_mask);
    return;
  }
  dispatch_floating(E.dtype(), "cut_cross_entropy", [&]<class T>() {
    cce_forward_typed<T>(E, C, bias, rows, targets, softcap, lse, nll, logit_avg, filter_eps, signal_mask);
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(cce_forward_stub, cpu, &cce_forward_cpu);

}  // namespace ember::cpu
