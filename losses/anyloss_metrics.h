#pragma once
// The built-in AnyLoss metrics as plain functions of the four soft confusion cells, each with
// its four partial derivatives, so the loss's backward is closed-form (see anyloss.cpp).
#include "ember/losses/anyloss.h"

namespace ember::losses {

struct MetricValue {
  double value = 0;
  double d_tp = 0, d_fn = 0, d_fp = 0, d_tn = 0;  // partial derivatives of value
};

// Evaluates `metric` (f_beta uses beta). Degenerate cells give what the formula gives (0/0 = NaN).
MetricValue evaluate_metric(Metric metric, double beta, double tp, double fn, double fp, double tn);

}  // namespace ember::losses
