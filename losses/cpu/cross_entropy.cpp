// CPU kernels of cross_entropy and nll_loss (contracts in losses/kernels/cross_entropy.h).
// One pass over the targets (serial: it is C times cheaper than the rows) validates them and sums
// the mean's divisor; the rows then run in parallel, each touching only its own C scores.
#include "losses/kernels/cross_entropy.h"

#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "losses/cpu/data.h"
#include "ops/cpu/vector_math.h"

namespace ember::losses::cpu {
namespace {

using ember::cpu::exp_of;
using ember::cpu::sum_exp;

struct Rows {
  int64_t outer, classes, inner;
  explicit Rows(const Tensor& blocked)
      : outer(blocked.size(0)), classes(blocked.size(1)), inner(blocked.size(2)) {}
  int64_t count() const { return outer * inner; }
  // Offset of element (row r, class 0); class c is `c * inner` further.
  int64_t base(int64_t r) const { return (r / inner) * classes * inner + r % inner; }
  // Rows per parallel task: about 32k scores of work each.
  int64_t grain() const { return std::max<int64_t>(1, kDefaultGrain / classes); }
};

bool is_ignored(int64_t y, const ClassTargetParams& p) { return p.has_ignore_index && y == p.ignore_index; }

// Returns the first invalid target (or -1) and sets `divisor` to the sum of the targets' weights.
template <class T>
int64_t check_targets(const int64_t* y, int64_t n, int64_t classes, const T* w, const ClassTargetParams& p,
                      double& divisor) {
  divisor = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (is_ignored(y[r], p)) continue;
    if (y[r] < 0 || y[r] >= classes) return r;
    divisor += w ? static_cast<double>(w[y[r]]) : 1.0;
  }
  return -1;
}

// A row's log-sum-exp kept in two parts, lse = max + log_sum: float32's lse rounded to one
// number is only good to ulp(max) in absolute terms, which for a confident row (70, 58, 50) is
// more than the loss itself (6e-6). The loss and the softmax are formed from (x - max) and
// log_sum apart, as PyTorch's log_softmax does. Both parts are kept in double for the backward
// (16 bytes a row, next to C scores of the row): the max is exact there, and log_sum rounded
// to float would cost ulp(log_sum) (up to ~5e-7 for C ~ 1000) in every softmax entry.
struct RowLSE {
  double max;      // max_c x_c (exact: one of the scores)
  double log_sum;  // log sum_c exp(x_c - max), in [0, log C]
};

// The row's max and log sum_c exp(x[c * stride] - max). A NaN score makes the sum NaN; a row of
// -inf gives NaN, as log_softmax does. Contiguous rows take the vectorised exp (vector_math.h;
// SSE2, AVX2 and AVX-512 clones).
template <class T>
EMBER_VECTOR_CLONES RowLSE row_logsumexp(const T* x, int64_t classes, int64_t stride) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < classes; ++c) m = std::max(m, x[c * stride]);
  double s = 0;
  if (stride == 1) {
    s = sum_exp<double>(x, classes, m);
  } else {
    for (int64_t c = 0; c < classes; ++c) s += exp_of(x[c * stride] - m);
  }
  return {static_cast<double>(m), std::log(s)};
}

// out[c * stride] = exp(x[c * stride] - max) * scale, with scale = total / sum (the softmax times
// total), vectorised as above. exp(x - max) / sum keeps every entry within a few ulps relative;
// exp(x - max - log_sum) would add the rounding of x - max - log_sum, ~ulp(x - max) relative.
template <class T>
EMBER_VECTOR_CLONES void scaled_softmax_row(T* out, const T* x, int64_t classes, int64_t stride, T max,
                                            T scale) {
  if (stride == 1) {
    for (int64_t c = 0; c < classes; ++c) out[c] = exp_of(x[c] - max) * scale;
  } else {
    for (int64_t c = 0; c < classes; ++c) out[c * stride] = exp_of(x[c * stride] - max) * scale;
  }
}

template <class T>
int64_t cross_entropy_forward(const Tensor& loss_t, const Tensor& lse_t, const Tensor& denom_t,
                              const Tensor& logits_t, const Tensor& target_t, const Tensor& weight_t,
                              const ClassTargetParams& p) {
  const Rows rows(logits_t);
  const int64_t C = rows.classes;
  const T* x = in_data<T>(logits_t);
  const int64_t* y = in_data<int64_t>(target_t);
  const T* w = weight_t.defined() ? in_data<T>(weight_t) : nullptr;
  T* loss = out_data<T>(loss_t);
  double* lse = out_data<double>(lse_t);
  double divisor = 0;
  int64_t bad = check_targets(y, rows.count(), C, w, p, divisor);
  if (bad >= 0) return bad;
  *out_data<T>(denom_t) = static_cast<T>(divisor);

  const double eps = p.label_smoothing;
  parallel_for(0, rows.count(), rows.grain(), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* row = x + rows.base(r);
      const RowLSE l = row_logsumexp(row, C, rows.inner);
      lse[2 * r] = l.max;
      lse[2 * r + 1] = l.log_sum;
      if (is_ignored(y[r], p)) {
        loss[r] = 0;
        continue;
      }
      // lse - x_c = log_sum - (x_c - max), with x_c - max exact in double for float scores
      auto nll = [&](int64_t c) { return l.log_sum - (static_cast<double>(row[c * rows.inner]) - l.max); };
      const double wy = w ? w[y[r]] : 1.0;
      double value = (1.0 - eps) * wy * nll(y[r]);
      if (eps > 0) {
        // sum_c w_c (lse - x_c): the cross-entropy against the uniform distribution, per class weighted
        double smooth = 0;
        for (int64_t c = 0; c < C; ++c) smooth += (w ? w[c] : 1.0) * nll(c);
        value += eps / static_cast<double>(C) * smooth;
      }
      loss[r] = static_cast<T>(value);
    }
  });
  return -1;
}

template <class T>
void cross_entropy_backward(const Tensor& grad_t, const Tensor& grad_loss_t, const Tensor& logits_t,
                            const Tensor& lse_t, const Tensor& target_t, const Tensor& weight_t,
                            const ClassTargetParams& p) {
  const Rows rows(logits_t);
  const int64_t C = rows.classes, stride = rows.inner;
  const T* x = in_data<T>(logits_t);
  const double* lse = in_data<double>(lse_t);
  const T* g = in_data<T>(grad_loss_t);
  const int64_t* y = in_data<int64_t>(target_t);
  const T* w = weight_t.defined() ? in_data<T>(weight_t) : nullptr;
  T* grad = out_data<T>(grad_t);
  const double eps = p.label_smoothing;
  double weight_total = static_cast<double>(C);
  if (w) {
    weight_total = 0;
    for (int64_t c = 0; c < C; ++c) weight_total += w[c];
  }

  parallel_for(0, rows.count(), rows.grain(), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* row = x + rows.base(r);
      T* out = grad + rows.base(r);
      if (is_ignored(y[r], p)) {
        for (int64_t c = 0; c < C; ++c) out[c * stride] = 0;
        continue;
      }
      const double max = lse[2 * r], log_sum = lse[2 * r + 1];
      const double wy = w ? w[y[r]] : 1.0;
      // d loss / d x_c = p_c * total - onehot [c = y] - (eps / C) w_c, onehot = (1 - eps) w_y
      const double onehot = g[r] * (1.0 - eps) * wy;
      const double total = onehot + g[r] * eps * weight_total / static_cast<double>(C);
      const double smooth = g[r] * eps / static_cast<double>(C);
      scaled_softmax_row(out, row, C, stride, static_cast<T>(max),
                         static_cast<T>(total * std::exp(-log_sum)));
      if (eps > 0)
        for (int64_t c = 0; c < C; ++c) out[c * stride] -= static_cast<T>(smooth) * (w ? w[c] : T(1));
      // The target's entry again, in double: p_y total - onehot = (p_y - 1) onehot + p_y (total -
      // onehot) with p_y - 1 from expm1, so a confident row (p_y ~ 1) keeps its relative accuracy
      // and the row still sums to 0 (float32's p_y - 1 would be off by ulp(1) = 6e-8).
      const double arg = (static_cast<double>(row[y[r] * stride]) - max) - log_sum;
      const double py_minus_1 = std::expm1(arg);
      out[y[r] * stride] = static_cast<T>(py_minus_1 * onehot + (py_minus_1 + 1.0) * (total - onehot) -
                                          smooth * (w ? static_cast<double>(w[y[r]]) : 1.0));
    }
  });
}

template <class T>
int64_t nll_forward(const Tensor& loss_t, const Tensor& denom_t, const Tensor& input_t,
                    const Tensor& target_t, const Tensor& weight_t, const ClassTargetParams& p) {
  const Rows rows(input_t);
  const T* x = in_data<T>(input_t);
  const int64_t* y = in_data<int64_t>(target_t);
  const T* w = weight_t.defined() ? in_data<T>(weight_t) : nullptr;
  T* loss = out_data<T>(loss_t);
  double divisor = 0;
  int64_t bad = check_targets(y, rows.count(), rows.classes, w, p, divisor);
  if (bad >= 0) return bad;
  *out_data<T>(denom_t) = static_cast<T>(divisor);
  for (int64_t r = 0; r < rows.count(); ++r) {
    if (is_ignored(y[r], p)) {
      loss[r] = 0;
      continue;
    }
    loss[r] = -(w ? w[y[r]] : T(1)) * x[rows.base(r) + y[r] * rows.inner];
  }
  return -1;
}

template <class T>
void nll_backward(const Tensor& grad_t, const Tensor& grad_loss_t, const Tensor& target_t,
                  const Tensor& weight_t, const ClassTargetParams& p) {
  const Rows rows(grad_t);
  const T* g = in_data<T>(grad_loss_t);
  const int64_t* y = in_data<int64_t>(target_t);
  const T* w = weight_t.defined() ? in_data<T>(weight_t) : nullptr;
  T* grad = out_data<T>(grad_t);
  std::fill(grad, grad + grad_t.numel(), T(0));
  for (int64_t r = 0; r < rows.count(); ++r)
    if (!is_ignored(y[r], p)) grad[rows.base(r) + y[r] * rows.inner] = -(w ? w[y[r]] : T(1)) * g[r];
}

int64_t cross_entropy_forward_cpu(const Tensor& loss, const Tensor& lse, const Tensor& denominator,
                                  const Tensor& logits, const Tensor& target, const Tensor& weight,
                                  const ClassTargetParams& params) {
  return dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    return cross_entropy_forward<T>(loss, lse, denominator, logits, target, weight, params);
  });
}
void cross_entropy_backward_cpu(const Tensor& grad, const Tensor& grad_loss, const Tensor& logits,
                                const Tensor& lse, const Tensor& target, const Tensor& weight,
                                const ClassTargetParams& params) {
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    cross_entropy_backward<T>(grad, grad_loss, logits, lse, target, weight, params);
  });
}
int64_t nll_forward_cpu(const Tensor& loss, const Tensor& denominator, const Tensor& input,
                        const Tensor& target, const Tensor& weight, const ClassTargetParams& params) {
  return dispatch_floating(input.dtype(), "nll_loss", [&]<class T>() {
    return nll_forward<T>(loss, denominator, input, target, weight, params);
  });
}
void nll_backward_cpu(const Tensor& grad, const Tensor& grad_loss, const Tensor& target, const Tensor& weight,
                      const ClassTargetParams& params) {
  dispatch_floating(grad.dtype(), "nll_loss",
                    [&]<class T>() { nll_backward<T>(grad, grad_loss, target, weight, params); });
}

}  // namespace

EMBER_REGISTER_KERNEL(cross_entropy_forward_stub, cpu, &cross_entropy_forward_cpu);
EMBER_REGISTER_KERNEL(cross_entropy_backward_stub, cpu, &cross_entropy_backward_cpu);
EMBER_REGISTER_KERNEL(nll_forward_stub, cpu, &nll_forward_cpu);
EMBER_REGISTER_KERNEL(nll_backward_stub, cpu, &nll_backward_cpu);

}  // namespace ember::losses::cpu
