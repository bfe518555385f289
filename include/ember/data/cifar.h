#pragma once
// The CIFAR-10 and CIFAR-100 binary formats (https://www.cs.toronto.edu/~kriz/cifar.html).
// CIFAR-10 record: 1 label byte + 3072 pixel bytes; CIFAR-100 record: 1 coarse label byte +
// 1 fine label byte + 3072 pixel bytes. Pixels are 1024 red, then 1024 green, then 1024 blue,
// each 32 x 32 row-major. Gzipped files are read too. A truncated record or an out-of-range label
// throws ember::Error naming the file and the byte offset.
#include <string>
#include <vector>

#include "ember/data/dataset.h"

namespace ember::data {

enum class CifarFormat { cifar10, cifar100 };

struct CifarData {
  Tensor images;         // float32 [N, 3, 32, 32] scaled to [0, 1]
  Tensor labels;         // int64 [N]: the class (CIFAR-10) or the fine label (CIFAR-100)
  Tensor coarse_labels;  // int64 [N]: the superclass (CIFAR-100 only; undefined for CIFAR-10)
};

// Reads and concatenates the records of one or more files.
CifarData read_cifar(const std::vector<std::string>& paths, CifarFormat format);

// root/data_batch_{1..5}.bin (train) or root/test_batch.bin, as in cifar-10-batches-bin.
class CIFAR10 : public TensorDataset {
 public:
  explicit CIFAR10(const std::string& root, bool train = true);
};

// root/train.bin or root/test.bin, as in cifar-100-binary; targets are the fine labels, or the
// coarse ones when `coarse` is set.
class CIFAR100 : public TensorDataset {
 public:
  CIFAR100(const std::string& root, bool train = true, bool coarse = false);
};

}  // namespace ember::data
