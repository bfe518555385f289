#pragma once
// ember::nn: modules, layers, initialisers and the functional normalisation ops.
#include "ember/nn/activation.h"
#include "ember/nn/attention.h"
#include "ember/nn/container.h"
#include "ember/nn/conv.h"
#include "ember/nn/functional.h"
#include "ember/nn/init.h"
#include "ember/nn/linear.h"
#include "ember/nn/module.h"
#include "ember/nn/normalization.h"
#include "ember/nn/pooling.h"
#include "ember/nn/size2.h"
#include "ember/nn/transformer.h"
