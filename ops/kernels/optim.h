#pragma once
// Fused optimizer updates: one pass over a parameter's elements reads the gradient and the state
// and writes the new state and the new parameter in place. Contract: param, grad and the state
// tensors have one shape, one floating dtype and one device (any strides); scalars are computed
// by the caller. Formulas: include/ember/optim/sgd.h and adam.h.
#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

// momentum_buffer is undefined when momentum == 0; first_step means the buffer holds no history
// yet and is set to the (weight-decayed) gradient.
using SgdStepFn = void (*)(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, double lr,
                           double momentum, double dampening, double weight_decay, bool nesterov,
                           bool first_step);

// max_exp_avg_sq is undefined unless amsgrad. decoupled = AdamW's weight decay. step_size is
// lr / (1 - beta1^t) and bias_correction2_sqrt is sqrt(1 - beta2^t).
using AdamStepFn = void (*)(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                            const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, double lr, double beta1,
                            double beta2, double eps, double weight_decay, bool decoupled, double step_size,
                            double bias_correction2_sqrt);

EMBER_DECLARE_STUB(sgd_step_stub, SgdStepFn);
EMBER_DECLARE_STUB(adam_step_stub, AdamStepFn);

}  // namespace ember
