#pragma once
// AnyLoss (Han, Moniz, Chawla, "AnyLoss: Transforming Classification Metrics into Loss
// Functions", arXiv 2405.14745). See docs/losses/anyloss.md.
//
// Each probability p_i is pushed towards 0 or 1 by the steep "amplifying" sigmoid
// q_i = sigmoid(L (p_i - 1/2)); the confusion-matrix cells become differentiable batch sums
//   TP = sum y q,  FN = sum y (1 - q),  FP = sum (1 - y) q,  TN = sum (1 - y)(1 - q),
// and the loss is 1 - metric(TP, FN, FP, TN). It is a batch-level loss, not a mean of
// per-sample terms, so it depends on the batch's composition.
#include <cstdint>
#include <functional>

#include "ember/tensor.h"

namespace ember::losses {

enum class Metric {
  accuracy,           // (TP + TN) / n
  f_beta,             // (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)
  g_mean,             // sqrt(TP / (TP + FN) * TN / (TN + FP))
  balanced_accuracy,  // (TP / (TP + FN) + TN / (TN + FP)) / 2
  precision,          // TP / (TP + FP)
  recall,             // TP / (TP + FN)
  specificity,        // TN / (TN + FP)
  mcc,                // (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); 1 - mcc is in [0, 2]
};

// The soft confusion matrix, as 0-d tensors on the autograd graph.
struct SoftConfusion {
  Tensor tp, fn, fp, tn;
};

struct AnyLossOptions {
  Metric metric = Metric::f_beta;
  double beta = 1.0;        // for Metric::f_beta
  double amplifier = 73.0;  // L of the amplifying sigmoid (the paper's and the official code's value)
  // When set, replaces `metric`: loss = 1 - custom(confusion), differentiated by autograd. It
  // must return a tensor with one element.
  std::function<Tensor(const SoftConfusion&)> custom;
  // 0 (default): n = the batch size. > 0: n is this fixed count instead, as in the official
  // Keras code, which used the whole training fold's size with mini-batches (this inflates TN by
  // fixed_n - batch size); for reference parity only. Must be >= the batch size.
  int64_t fixed_n = 0;
};

// probabilities: [N] or [N, 1], values in [0, 1] (sigmoid outputs, not logits); target: 0/1
// labels of the same shape (a float tensor; the class of interest, usually the minority, is 1).
// Returns a 0-d tensor. With a class absent from the batch, metrics that divide by its count
// (g_mean, balanced_accuracy, recall, specificity, mcc) are 0/0 = NaN, as in the paper.
Tensor anyloss(const Tensor& probabilities, const Tensor& target, const AnyLossOptions& options = {});

}  // namespace ember::losses
