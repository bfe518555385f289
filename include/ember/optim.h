#pragma once
// ember::optim: optimizers (SGD, Adam, AdamW), learning-rate schedulers and gradient clipping.
#include "ember/optim/adam.h"
#include "ember/optim/clip_grad.h"
#include "ember/optim/optimizer.h"
#include "ember/optim/scheduler.h"
#include "ember/optim/sgd.h"
