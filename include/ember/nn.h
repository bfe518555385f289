#pragma once
// ember::nn: modules, layers, initialisers, the functional normalisation ops, and the papers'
// models (CIFAR ResNets / Wide ResNets, FCN; docs/models.md).
#include "ember/nn/activation.h"
#include "ember/nn/attention.h"
#include "ember/nn/container.h"
#include "ember/nn/conv.h"
#include "ember/nn/fcn.h"
#include "ember/nn/functional.h"
#include "ember/nn/init.h"
#include "ember/nn/linear.h"
#include "ember/nn/module.h"
#include "ember/nn/normalization.h"
#include "ember/nn/pooling.h"
#include "ember/nn/recurrent.h"
#include "ember/nn/resnet.h"
#include "ember/nn/size2.h"
#include "ember/nn/transformer.h"
#include "ember/nn/upsample.h"
