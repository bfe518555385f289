#pragma once
// ember::optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam),
// learning-rate schedulers and gradient clipping.
#include "ember/optim/adadelta.h"
#include "ember/optim/adagrad.h"
#include "ember/optim/adam.h"
#include "ember/optim/adamax.h"
#include "ember/optim/clip_grad.h"
#include "ember/optim/nadam.h"
#include "ember/optim/optimizer.h"
#include "ember/optim/plateau.h"
#include "ember/optim/radam.h"
#include "ember/optim/rmsprop.h"
#include "ember/optim/scheduler.h"
#include "ember/optim/sgd.h"
