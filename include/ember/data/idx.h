#pragma once
// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), plain or gzipped
// (detected from the content, not the name). Layout: two zero bytes, a type code, the number of
// dimensions, one big-endian uint32 per dimension, then the elements, big-endian, row-major.
// A malformed or truncated file throws ember::Error naming the file and the byte offset (offsets in
// a gzipped file count bytes of the decompressed data).
#include <string>

#include "ember/data/dataset.h"

namespace ember::data {

// Any IDX file as a tensor of its element type: uint8 -> uint8; int8, int16, int32 -> int32;
// float32 -> float32; float64 -> float64.
Tensor read_idx(const std::string& path);
// A 3-d uint8 IDX file of N images H x W -> float32 [N, 1, H, W] scaled to [0, 1].
Tensor read_idx_images(const std::string& path);
// A 1-d uint8 IDX file of N labels -> int64 [N].
Tensor read_idx_labels(const std::string& path);

// MNIST-layout data in `root`: {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte,
// each optionally ending in .gz. Works for MNIST and Fashion-MNIST alike.
class MNIST : public TensorDataset {
 public:
  explicit MNIST(const std::string& root, bool train = true);
};

}  // namespace ember::data
