// Closed forms of the built-in AnyLoss metrics and their partial derivatives.
//
// Write P = TP + FN (positives) and Q = TN + FP (negatives); both depend on the labels only. The
// derivatives below treat the four cells as independent variables; anyloss.cpp then moves along
// the only directions q_i can take (dTP = -dFN for a positive, dFP = -dTN for a negative).
#include "losses/anyloss_metrics.h"

#include <cmath>

#include "ember/error.h"
#include "ember/ops.h"

namespace ember::losses {

template <class V>
MetricValue<V> evaluate_metric(Metric metric, double beta, const V& tp, const V& fn, const V& fp,
                               const V& tn) {
  using std::sqrt;          // ember::sqrt for a Tensor, by argument-dependent lookup
  const V zero = tp * 0.0;  // a partial the metric does not have
  MetricValue<V> m{zero, zero, zero, zero, zero};
  const V pos = tp + fn, neg = tn + fp;
  switch (metric) {
    case Metric::accuracy: {
      const V n = tp + fn + fp + tn;
      m.value = (tp + tn) / n;
      m.d_tp = m.d_tn = 1.0 / n - m.value / n;  // d/dX of (TP + TN) / (TP + FN + FP + TN)
      m.d_fn = m.d_fp = -m.value / n;
      break;
    }
    case Metric::f_beta: {
      const double b2 = beta * beta;
      const V num = (1 + b2) * tp, den = (1 + b2) * tp + b2 * fn + fp;
      m.value = num / den;
      m.d_tp = (1 + b2) / den - num * (1 + b2) / (den * den);
      m.d_fn = -num * b2 / (den * den);
      m.d_fp = -num / (den * den);
      break;
    }
    case Metric::g_mean: {
      const V tpr = tp / pos, tnr = tn / neg;
      m.value = sqrt(tpr * tnr);
      // d sqrt(u) = du / (2 sqrt(u)); dTPR/dTP = FN/P^2, dTPR/dFN = -TP/P^2, likewise for TNR.
      const V half_inv = 0.5 / m.value;
      m.d_tp = half_inv * tnr * fn / (pos * pos);
      m.d_fn = -half_inv * tnr * tp / (pos * pos);
      m.d_tn = half_inv * tpr * fp / (neg * neg);
      m.d_fp = -half_inv * tpr * tn / (neg * neg);
      break;
    }
    case Metric::balanced_accuracy:
      m.value = 0.5 * (tp / pos + tn / neg);
      m.d_tp = 0.5 * fn / (pos * pos);
      m.d_fn = -0.5 * tp / (pos * pos);
      m.d_tn = 0.5 * fp / (neg * neg);
      m.d_fp = -0.5 * tn / (neg * neg);
      break;
    case Metric::precision: {
      const V pp = tp + fp;
      m.value = tp / pp;
      m.d_tp = fp / (pp * pp);
      m.d_fp = -tp / (pp * pp);
      break;
    }
    case Metric::recall:
      m.value = tp / pos;
      m.d_tp = fn / (pos * pos);
      m.d_fn = -tp / (pos * pos);
      break;
    case Metric::specificity:
      m.value = tn / neg;
      m.d_tn = fp / (neg * neg);
      m.d_fp = -tn / (neg * neg);
      break;
    case Metric::mcc: {
      // mcc = num / sqrt(D), D = (TP+FP)(TP+FN)(TN+FP)(TN+FN):
      //   d mcc/dX = (d num/dX) / sqrt(D) - mcc/2 * d log(D)/dX.
      const V a = tp + fp, b = tp + fn, c = tn + fp, d = tn + fn;
      const V num = tp * tn - fp * fn, root = sqrt(a * b * c * d);
      m.value = num / root;
      m.d_tp = tn / root - 0.5 * m.value * (1.0 / a + 1.0 / b);
      m.d_tn = tp / root - 0.5 * m.value * (1.0 / c + 1.0 / d);
      m.d_fp = -fn / root - 0.5 * m.value * (1.0 / a + 1.0 / c);
      m.d_fn = -fp / root - 0.5 * m.value * (1.0 / b + 1.0 / d);
      break;
    }
    default:
      fail("anyloss: unknown metric {}", static_cast<int>(metric));
  }
  return m;
}

template MetricValue<double> evaluate_metric(Metric, double, const double&, const double&, const double&,
                                             const double&);
template MetricValue<Tensor> evaluate_metric(Metric, double, const Tensor&, const Tensor&, const Tensor&,
                                             const Tensor&);

}  // namespace ember::losses
