#pragma once
// The umbrella header: everything a user of ember needs.
#include "ember/autograd.h"
#include "ember/cuda.h"
#include "ember/device.h"
#include "ember/dtype.h"
#include "ember/error.h"
#include "ember/memory.h"
#include "ember/ops.h"
#include "ember/random.h"
#include "ember/tensor.h"
#include "ember/threads.h"

#include "ember/checkpoint.h"
#include "ember/data.h"
#include "ember/losses.h"
#include "ember/nn.h"
#include "ember/optim.h"
#include "ember/train.h"
