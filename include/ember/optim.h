#pragma once
// ember::optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), learning-rate schedulers and
// gradient clipping.
#include "ember/optim/adagrad.h"
#include "ember/optim/adam.h"
#include "ember/optim/clip_grad.h"
#include "ember/optim/optimizer.h"
#include "ember/optim/plateau.h"
#include "ember/optim/rmsprop.h"
#include "ember/optim/scheduler.h"
#include "ember/optim/sgd.h"
