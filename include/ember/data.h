#pragma once
// ember::data — datasets, a batching DataLoader with a background thread, transforms, and readers
// for IDX (MNIST, Fashion-MNIST), CIFAR-10/100 binary and CSV/TSV files.
#include "ember/data/cifar.h"
#include "ember/data/csv.h"
#include "ember/data/dataloader.h"
#include "ember/data/dataset.h"
#include "ember/data/idx.h"
#include "ember/data/random_stream.h"
#include "ember/data/transforms.h"
