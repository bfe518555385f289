// CPU kernel of PLD (contract in losses/kernels/pld.h). Per row:
//   1. rank: the true class first, then the others by a stable descending sort of the teacher
//      logits (a bucket sort, linear for real logits: losses/cpu/ranking.h);
//   2. weights: alpha_k = softmax(t / tau)[order_k], in ranked order from the start (the ranker
//      also returns the ranked teacher logits);
//   3. suffix log-sum-exps Lambda_k of the ranked student logits u, the step losses
//      l_k = Lambda_k - u_k and loss = sum_k alpha_k l_k;
//   4. when a backward will run, the row's gradient g_k = sum_{j <= k} alpha_j exp(u_k - Lambda_j)
//      - alpha_k, scattered to class order_k: computed here, while everything it needs is in
//      cache, instead of saving per-step state for a separate backward pass to read back.
// Steps 3 and 4 have two paths. The fast one shifts the whole row by M = max u once and sums
// E_k = exp(u_k - M) from the back (S_k = exp(Lambda_k - M)): exact as long as every E_k is a
// normal number, i.e. the row's spread max u - min u stays below ~80 (float) or ~700 (double),
// which covers real logits. Its gradient is g_k = E_k P_k - alpha_k with the prefix sums
// P_k = sum_{j <= k} alpha_j / S_j; every loop is independent element by element (so it
// vectorises) except the two running sums, which run as four interleaved chains. The stable path
// (rows with a wider spread or non-finite values) keeps the suffix sum as m + log S with a
// running max m, rescaling S whenever the max changes, so no tail underflows (the trap the spec
// warns about); its gradient is the recurrence c_k = c_{k-1} kappa_{k-1} + alpha_k,
// g_k = sigma_k c_k - alpha_k, with sigma_k = exp(u_k - Lambda_k), kappa_k = exp(Lambda_{k+1} -
// Lambda_k), whose factors are all <= 1.
#include "losses/kernels/pld.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "losses/cpu/data.h"
#include "losses/cpu/ranking.h"
#include "losses/cpu/row_ops.h"
#include "ops/cpu/vector_math.h"

namespace ember::losses::cpu {
namespace {

using ember::cpu::exp_of;
using ember::cpu::log_positive;

// Largest spread max u - min u for which every exp(u - max u) is a normal number.
template <class T>
constexpr double kFastSpread = sizeof(T) == 4 ? 80.0 : 700.0;

void atomic_min(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load();
  while ((cur < 0 || v < cur) && !a.compare_exchange_weak(cur, v)) {
  }
}

// Per-thread buffers, reused row after row (all in ranked order but `teacher`, `student` and
// `grad`, which are in class order). A row's working set (these, the ranker's and the row itself:
// ~70 KB at C = 1000) is larger than a core's L1 cache, so some buffers serve twice within a row:
// `alpha` first holds the ranked teacher logits, and the fast path's E_k live in `grad` until the
// gradient overwrites them, so that its scattered stores land on lines that were just read.
// `suffix` and `prefix` hold the fast path's running sums, and first their terms (see scan_shifted).
template <class T>
struct RowBuffers {
  Ranker<T> ranker;
  std::vector<T> teacher, student, grad, u, alpha, step, sigma, kappa, c;
  std::vector<double> suffix, prefix;
  std::vector<int32_t> order;
  explicit RowBuffers(int64_t C)
      : ranker(C),
        teacher(C),
        student(C),
        grad(C),
        u(C),
        alpha(C),
        step(C),
        sigma(C),
        kappa(C),
        c(C),
        suffix(C),
        prefix(C),
        order(C) {}
};

// Steps 3 and 4, fast path: one shift M for the whole row (see the file comment for when it is
// exact). `alpha` comes in unnormalised (exp((t - max t) / tau) in ranked order) and leaves
// normalised: its sum rides along in the loop of the suffix sums, as the loss's does in the loop of
// the prefix sums (FourSums in row_ops.h: those loops, one element at a time per chain, have room
// for a second set of chains). Returns the row's loss; writes g to grad[order_k] (class order)
// unless grad is null. e is scratch space for E_k, and may be grad. Always inlined, so that its exp
// and log loops are compiled for the target of forward_rows' clones.
// The terms of both running sums are written in double by the vector loops that compute them, and
// the running sums then replace them in place: per element, their scalar loops are then a load-add
// and a store, without the float-to-double conversion (two more instructions and a third to
// break its false dependency).
template <class T>
[[gnu::always_inline]] inline double scan_shifted(const T* u, T* alpha, const int32_t* order,
                                                  RowBuffers<T>& b, int64_t C, T M, T* e, T* grad) {
  T* step = b.step.data();
  double* suffix = b.suffix.data();  // E_k, then S_k (see below)
  double* prefix = b.prefix.data();  // q_k = alpha_k / S_k, then P_k
  for (int64_t k = 0; k < C; ++k) {
    e[k] = exp_of(u[k] - M);
    suffix[k] = e[k];
  }
  // S_k = sum_{l >= k} E_l in double; l_k = Lambda_k - u_k = log S_k + M - u_k, where S_k lies
  // in [E_k, C], a positive normal number. The last choice is forced: l_{C-1} = 0 exactly.
  FourSums<T> z(alpha, C);  // the teacher softmax's normaliser
  const RunningSums S = suffix_sums(suffix, C, suffix, z);
  const T inv_z = static_cast<T>(1.0 / z.total());
  if (!grad) {
    S.for_each([&](int64_t k, double S_k) {
      alpha[k] *= inv_z;
      step[k] = log_positive(static_cast<T>(S_k)) + (M - u[k]);
    });
    step[C - 1] = 0;
    return sum_of(alpha, C, step);
  }
  S.for_each([&](int64_t k, double S_k) {
    const T S = static_cast<T>(S_k);
    alpha[k] *= inv_z;
    step[k] = log_positive(S) + (M - u[k]);
    prefix[k] = alpha[k] / S;  // (the quotient in T, stored as a double)
  });
  step[C - 1] = 0;
  // g_k = sum_{j <= k} alpha_j E_k / S_j - alpha_k = E_k P_k - alpha_k. E_k P_k <= sum alpha = 1
  // (S_j >= S_k >= E_k), and P_k <= 1 / min E stays far from overflowing. The loss, sum_k alpha_k
  // l_k, is summed in the prefix sums' loop.
  FourSums<T, true> loss_sum(alpha, C, step);
  const RunningSums P = prefix_sums(prefix, C, prefix, loss_sum);
  const double loss = loss_sum.total();  // (before step[] is reused for g)
  P.for_each([&](int64_t k, double P_k) { step[k] = static_cast<T>(e[k] * P_k) - alpha[k]; });
  for (int64_t k = 0; k < C; ++k) grad[order[k]] = step[k];  // (e is dead: grad may be e)
  return loss;
}

// Step 3, stable path: suffix sum as m + log S with a running max m.
template <class T>
double scan_rescaled(const T* u, const T* alpha, T* sigma, T* kappa, int64_t C) {
  T m = u[C - 1];
  double S = 1, loss = 0;
  sigma[C - 1] = 1;  // forced even when u = -inf (the reference code gives NaN there)
  kappa[C - 1] = 0;
  for (int64_t k = C - 2; k >= 0; --k) {
    double S_new, step, e;
    if (u[k] <= m) {
      // u == m also covers -inf == -inf: equal worths, not exp(NaN)
      e = u[k] == m ? 1.0 : std::exp(static_cast<double>(u[k]) - m);
      S_new = S + e;
      step = std::log(S_new) + (u[k] == m ? 0.0 : static_cast<double>(m) - u[k]);
    } else {  // a new maximum (or NaN, which then propagates): rescale S to it
      S *= std::exp(static_cast<double>(m) - u[k]);
      e = 1.0;
      S_new = S + 1.0;
      step = std::log(S_new);
      m = u[k];
    }
    sigma[k] = static_cast<T>(e / S_new);  // Lambda_k - u_k = -log sigma_k
    kappa[k] = static_cast<T>(S / S_new);  // exp(Lambda_{k+1} - Lambda_k)
    S = S_new;
    // alpha may underflow to exactly 0 for a far-off class; 0 * inf must not poison the row
    if (alpha[k] != 0) loss += alpha[k] * step;
  }
  return loss;
}

// Step 4, stable path: the recurrence of the file comment.
template <class T>
void gradient_rescaled(const T* alpha, const int32_t* order, RowBuffers<T>& b, int64_t C, T* grad) {
  const T* sigma = b.sigma.data();
  T* c = b.c.data();
  // c_k = sum_{j <= k} alpha_j exp(Lambda_k - Lambda_j) = kappa_{k-1} c_{k-1} + alpha_k: every
  // factor kappa <= 1, so c stays bounded by sum(alpha) = 1 and nothing overflows.
  linear_recurrence(b.kappa.data(), alpha, C, c, b.step.data());
  for (int64_t k = 0; k < C; ++k) grad[order[k]] = sigma[k] * c[k] - alpha[k];
}

template <class T>
struct ForwardArgs {
  T* loss;
  T* grad;  // null when no backward will run
  const T* student;
  const T* teacher;
  const int64_t* target;
  int64_t C, inner;
  T inv_tau;
};

// Rows [begin, end): the whole per-row pipeline, compiled for SSE2, AVX2 and AVX-512 (EMBER_VECTOR_CLONES;
// the exp/log loops are most of its time). Returns the first row whose teacher logits hold a NaN,
// or -1.
template <class T>
EMBER_VECTOR_CLONES int64_t forward_rows(const ForwardArgs<T>& a, int64_t begin, int64_t end) {
  const int64_t C = a.C, inner = a.inner;
  RowBuffers<T> b(C);
  int32_t* order = b.order.data();
  T* alpha = b.alpha.data();
  T* u = b.u.data();
  for (int64_t r = begin; r < end; ++r) {
    const int64_t base = (r / inner) * C * inner + r % inner, label = a.target[r];
    // the row's classes, contiguous (a copy only for dense [N, C, d...] inputs)
    const T* tr = a.teacher + base;
    const T* sr = a.student + base;
    if (inner != 1) {
      for (int64_t c = 0; c < C; ++c) b.teacher[c] = tr[c * inner];
      for (int64_t c = 0; c < C; ++c) b.student[c] = sr[c * inner];
      tr = b.teacher.data();
      sr = b.student.data();
    }

    // 1. ranking
    const RowStats<T> teacher = row_stats(tr, C);
    if (teacher.has_nan) return r;
    T* ranked_teacher = alpha;  // (turned into alpha in place)
    order[0] = static_cast<int32_t>(label);
    ranked_teacher[0] = tr[label];
    b.ranker.rank(tr, C, label, teacher.max, teacher.min, order + 1, ranked_teacher + 1);

    // 2. teacher weights, straight in ranked order (the ranker hands back the ranked teacher
    // logits; normalised in step 3), then the student logits gathered into ranked order (3.).
    // The student row is read once in order just before, so that the gather finds it in cache;
    // its spread is a property of the row, measured where the loop vectorises.
    for (int64_t k = 0; k < C; ++k) alpha[k] = exp_of((ranked_teacher[k] - teacher.max) * a.inv_tau);
    const RowStats<T> student = row_stats(sr, C);
    for (int64_t k = 0; k < C; ++k) u[k] = sr[order[k]];

    // 3. and 4.: the suffix log-sum-exps, the loss and the gradient. The gradient is scattered
    // into a row buffer (in cache) and then written out in order: scattered stores straight into
    // the freshly allocated output would each wait for their cache line.
    T* g = a.grad ? b.grad.data() : nullptr;
    if (student.all_finite() && static_cast<double>(student.max) - student.min <= kFastSpread<T>) {
      a.loss[r] = static_cast<T>(scan_shifted(u, alpha, order, b, C, student.max, b.grad.data(), g));
    } else {
      const T inv_z = static_cast<T>(1.0 / sum_of(alpha, C));  // (scan_shifted does this itself)
      for (int64_t k = 0; k < C; ++k) alpha[k] *= inv_z;
      a.loss[r] = static_cast<T>(scan_rescaled(u, alpha, b.sigma.data(), b.kappa.data(), C));
      if (g) gradient_rescaled(alpha, order, b, C, g);
    }
    if (g) {
      T* out = a.grad + base;
      if (inner == 1) {
        std::copy(g, g + C, out);
      } else {
        for (int64_t c = 0; c < C; ++c) out[c * inner] = g[c];
      }
    }
  }
  return -1;
}

template <class T>
PLDCheck pld_forward(const Tensor& loss_t, const Tensor& grad_t, const Tensor& student_t,
                     const Tensor& teacher_t, const Tensor& target_t, double temperature) {
  const int64_t outer = student_t.size(0), C = student_t.size(1), inner = student_t.size(2);
  const int64_t rows = outer * inner;
  const ForwardArgs<T> args{out_data<T>(loss_t),
                            grad_t.defined() ? out_data<T>(grad_t) : nullptr,
                            in_data<T>(student_t),
                            in_data<T>(teacher_t),
                            in_data<int64_t>(target_t),
                            C,
                            inner,
                            static_cast<T>(1.0 / temperature)};
  PLDCheck check;
  for (int64_t r = 0; r < rows; ++r)
    if (args.target[r] < 0 || args.target[r] >= C) {
      check.bad_target = r;
      return check;
    }
  std::atomic<int64_t> nan_row{-1};
  parallel_for(0, rows, std::max<int64_t>(1, kDefaultGrain / C), [&](int64_t begin, int64_t end) {
    const int64_t bad = forward_rows(args, begin, end);
    if (bad >= 0) atomic_min(nan_row, bad);
  });
  check.nan_teacher_row = nan_row.load();
  return check;
}

PLDCheck pld_forward_cpu(const Tensor& loss, const Tensor& grad_student, const Tensor& student,
                         const Tensor& teacher, const Tensor& target, double temperature) {
  return dispatch_floating(student.dtype(), "pld", [&]<class T>() {
    return pld_forward<T>(loss, grad_student, student, teacher, target, temperature);
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(pld_forward_stub, cpu, &pld_forward_cpu);

}  // namespace ember::losses::cpu
