#pragma once
// OPL, orthogonal projection loss (Ranasinghe et al., ICCV 2021). See docs/losses/opl.md.
//
// On a batch of L2-normalised features: L = (1 - s) + gamma * d, where s is the mean cosine over
// ordered pairs of distinct examples with the same label and d the mean cosine over pairs with
// different labels. An empty set of pairs has mean 0 (a batch of one gives L = 1).
#include "ember/tensor.h"

namespace ember::losses {

struct OPLOptions {
  double gamma = 0.5;           // >= 0, weight of the inter-class term
  bool absolute_inter = false;  // false: d = mean cos (the repo's loss.py); true: d = mean |cos|
                                // (the repo's CIFAR/ImageNet variant)
};
// features: [B, D] floating (B, D >= 1); target: int64 [B], compared only for equality.
// Returns a scalar. Gradients flow into the features through the normalisation.
Tensor opl(const Tensor& features, const Tensor& target, const OPLOptions& = {});

}  // namespace ember::losses
