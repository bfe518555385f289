// CPU kernels of PLD (contract in losses/kernels/pld.h). Per row, forward:
//   1. rank: the true class first, then the others by a stable descending sort of the teacher
//      logits (a bucket sort, linear for real logits: losses/cpu/ranking.h);
//   2. weights: alpha_k = softmax(t / tau)[order_k];
//   3. suffix log-sum-exps Lambda_k of the ranked student logits u, giving sigma_k, kappa_k and
//      the step losses l_k = Lambda_k - u_k, then loss = sum_k alpha_k l_k.
// Step 3 has two paths. The fast one shifts the whole row by M = max u once and sums
// E_k = exp(u_k - M) from the back: exact as long as every E_k is a normal number, i.e. the row's
// spread max u - min u stays below ~80 (float) or ~700 (double), which covers real logits; its
// loops are independent element by element, so they vectorise. The stable one (rows with a wider
// spread or non-finite values) keeps the suffix sum as m + log S with a running max m, rescaling S
// whenever the max changes, so no tail underflows (the trap the spec warns about).
// Backward: the recurrence c_k = c_{k-1} kappa_{k-1} + alpha_k, g_k = sigma_k c_k - alpha_k.
#include "losses/kernels/pld.h"

#include <atomic>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "losses/cpu/data.h"
#include "losses/cpu/ranking.h"
#include "losses/cpu/row_ops.h"
#include "losses/cpu/vector_math.h"

namespace ember::losses::cpu {
namespace {

// Largest spread max u - min u for which every exp(u - max u) is a normal number.
template <class T>
constexpr double kFastSpread = sizeof(T) == 4 ? 80.0 : 700.0;

void atomic_min(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load();
  while ((cur < 0 || v < cur) && !a.compare_exchange_weak(cur, v)) {
  }
}

// Per-thread buffers, reused row after row.
template <class T>
struct RowBuffers {
  Ranker<T> ranker;
  std::vector<T> teacher, student, weights, u, e, step;
  std::vector<double> suffix;
  std::vector<int32_t> order;
  std::vector<T> alpha, sigma, kappa;  // used when the caller does not keep them for backward
  explicit RowBuffers(int64_t C, bool keep_outputs)
      : ranker(C),
        teacher(C),
        student(C),
        weights(C),
        u(C),
        e(C),
        step(C),
        suffix(C),
        order(keep_outputs ? 0 : C),
        alpha(keep_outputs ? 0 : C),
        sigma(keep_outputs ? 0 : C),
        kappa(keep_outputs ? 0 : C) {}
};

// Step 3, fast path: one shift M for the whole row (see the file comment for when it is exact).
template <class T>
double scan_shifted(const T* u, const T* alpha, T* sigma, T* kappa, RowBuffers<T>& b, int64_t C, T M) {
  T* e = b.e.data();
  T* step = b.step.data();
  double* suffix = b.suffix.data();
  for (int64_t k = 0; k < C; ++k) e[k] = exp_of(u[k] - M);
  suffix_sums(e, C, suffix);  // S_k, accumulated in double
  for (int64_t k = 0; k + 1 < C; ++k) {
    const T S = static_cast<T>(suffix[k]), inv = T(1) / S;
    sigma[k] = e[k] * inv;
    kappa[k] = static_cast<T>(suffix[k + 1]) * inv;
    // Lambda_k - u_k = log S_k + M - u_k; S_k lies in [E_k, C], a positive normal number
    step[k] = log_positive(S) + (M - u[k]);
  }
  sigma[C - 1] = 1;  // the last choice is forced: l_{C-1} = 0 exactly
  kappa[C - 1] = 0;
  step[C - 1] = 0;
  return sum_of(alpha, C, step);
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

template <class T>
PLDCheck pld_forward(const Tensor& loss_t, const Tensor& order_t, const Tensor& alpha_t,
                     const Tensor& sigma_t, const Tensor& kappa_t, const Tensor& student_t,
                     const Tensor& teacher_t, const Tensor& target_t, double temperature) {
  const int64_t outer = student_t.size(0), C = student_t.size(1), inner = student_t.size(2);
  const int64_t rows = outer * inner;
  const T* s = in_data<T>(student_t);
  const T* t = in_data<T>(teacher_t);
  const int64_t* y = in_data<int64_t>(target_t);
  T* loss = out_data<T>(loss_t);
  const bool keep = order_t.defined();
  PLDCheck check;
  for (int64_t r = 0; r < rows; ++r)
    if (y[r] < 0 || y[r] >= C) {
      check.bad_target = r;
      return check;
    }
  std::atomic<int64_t> nan_row{-1};
  const T inv_tau = static_cast<T>(1.0 / temperature);

  parallel_for(0, rows, std::max<int64_t>(1, kDefaultGrain / C), [&](int64_t begin, int64_t end) {
    RowBuffers<T> b(C, keep);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t base = (r / inner) * C * inner + r % inner, label = y[r];
      int32_t* order = keep ? out_data<int32_t>(order_t) + r * C : b.order.data();
      T* alpha = keep ? out_data<T>(alpha_t) + r * C : b.alpha.data();
      T* sigma = keep ? out_data<T>(sigma_t) + r * C : b.sigma.data();
      T* kappa = keep ? out_data<T>(kappa_t) + r * C : b.kappa.data();
      // the row's classes, contiguous (a copy only for dense [N, C, d...] inputs)
      const T* tr = t + base;
      const T* sr = s + base;
      if (inner != 1) {
        for (int64_t c = 0; c < C; ++c) b.teacher[c] = tr[c * inner];
        for (int64_t c = 0; c < C; ++c) b.student[c] = sr[c * inner];
        tr = b.teacher.data();
        sr = b.student.data();
      }

      // 1. ranking
      const RowStats<T> teacher = row_stats(tr, C);
      if (teacher.has_nan) {
        atomic_min(nan_row, r);
        continue;
      }
      order[0] = static_cast<int32_t>(label);
      b.ranker.rank(tr, C, label, teacher.max, teacher.min, order + 1);

      // 2. teacher weights, computed in class order and gathered into target order
      T* w = b.weights.data();
      for (int64_t c = 0; c < C; ++c) w[c] = exp_of((tr[c] - teacher.max) * inv_tau);
      const double z = sum_of(w, C);
      const T inv_z = static_cast<T>(1.0 / z);
      for (int64_t k = 0; k < C; ++k) alpha[k] = w[order[k]] * inv_z;

      // 3. student logits in target order, then the suffix log-sum-exps
      T* u = b.u.data();
      for (int64_t k = 0; k < C; ++k) u[k] = sr[order[k]];
      const RowStats<T> student = row_stats(u, C);
      const bool shifted =
          student.all_finite() && static_cast<double>(student.max) - student.min <= kFastSpread<T>;
      loss[r] = static_cast<T>(shifted ? scan_shifted(u, alpha, sigma, kappa, b, C, student.max)
                                       : scan_rescaled(u, alpha, sigma, kappa, C));
    }
  });
  check.nan_teacher_row = nan_row.load();
  return check;
}

template <class T>
void pld_backward(const Tensor& grad_t, const Tensor& grad_loss_t, const Tensor& order_t,
                  const Tensor& alpha_t, const Tensor& sigma_t, const Tensor& kappa_t) {
  const int64_t outer = grad_t.size(0), C = grad_t.size(1), inner = grad_t.size(2);
  const int64_t rows = outer * inner;
  const T* g = in_data<T>(grad_loss_t);
  const int32_t* order_all = in_data<int32_t>(order_t);
  const T* alpha_all = in_data<T>(alpha_t);
  const T* sigma_all = in_data<T>(sigma_t);
  const T* kappa_all = in_data<T>(kappa_t);
  T* grad = out_data<T>(grad_t);
  parallel_for(0, rows, std::max<int64_t>(1, kDefaultGrain / C), [&](int64_t begin, int64_t end) {
    std::vector<T> c(C), scratch(C);
    for (int64_t r = begin; r < end; ++r) {
      const int32_t* order = order_all + r * C;
      const T* alpha = alpha_all + r * C;
      const T* sigma = sigma_all + r * C;
      const T* kappa = kappa_all + r * C;
      T* out = grad + (r / inner) * C * inner + r % inner;
      const T scale = g[r];
      // c_k = sum_{j <= k} alpha_j exp(Lambda_k - Lambda_j) = kappa_{k-1} c_{k-1} + alpha_k: every
      // factor kappa <= 1, so c stays bounded by sum(alpha) = 1 and nothing overflows.
      linear_recurrence(kappa, alpha, C, c.data(), scratch.data());
      for (int64_t k = 0; k < C; ++k) out[order[k] * inner] = scale * (sigma[k] * c[k] - alpha[k]);
    }
  });
}

PLDCheck pld_forward_cpu(const Tensor& loss, const Tensor& order, const Tensor& alpha, const Tensor& sigma,
                         const Tensor& kappa, const Tensor& student, const Tensor& teacher,
                         const Tensor& target, double temperature) {
  return dispatch_floating(student.dtype(), "pld", [&]<class T>() {
    return pld_forward<T>(loss, order, alpha, sigma, kappa, student, teacher, target, temperature);
  });
}
void pld_backward_cpu(const Tensor& grad, const Tensor& grad_loss, const Tensor& order, const Tensor& alpha,
                      const Tensor& sigma, const Tensor& kappa) {
  dispatch_floating(grad.dtype(), "pld",
                    [&]<class T>() { pld_backward<T>(grad, grad_loss, order, alpha, sigma, kappa); });
}

}  // namespace

EMBER_REGISTER_KERNEL(pld_forward_stub, cpu, &pld_forward_cpu);
EMBER_REGISTER_KERNEL(pld_backward_stub, cpu, &pld_backward_cpu);

}  // namespace ember::losses::cpu
