#pragma once
// The built-in AnyLoss metrics as plain functions of the four soft confusion cells, each with
// its four partial derivatives, so the loss's backward is closed-form (see anyloss.cpp).
#include "ember/losses/anyloss.h"
#include "ember/tensor.h"

namespace ember::losses {

// V is double for the loss and its closed-form backward, or a 0-d Tensor for a backward that is
// itself recorded (create_graph), where the partials are functions of the probabilities too.
template <class V>
struct MetricValue {
  V value, d_tp, d_fn, d_fp, d_tn;  // the metric and its partial derivatives
};

// Evaluates `metric` (f_beta uses beta). Degenerate cells give what the formula gives (0/0 = NaN).
// Defined for V = double and V = Tensor.
template <class V>
MetricValue<V> evaluate_metric(Metric metric, double beta, const V& tp, const V& fn, const V& fp,
                               const V& tn);

}  // namespace ember::losses
