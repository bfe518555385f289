#pragma once
// Per-example transforms, applied by the DataLoader to each example's data before batching.
// Random transforms draw only from the RandomStream they are given, so they are reproducible:
// the loader keys that stream by (seed, epoch, example index), and the one-argument call operator
// keys it from ember's global generator (so ember::manual_seed governs it).
// Transforms work on CPU tensors whose last two dimensions are height and width ([C, H, W] images).
#include <array>
#include <memory>
#include <vector>

#include "ember/data/random_stream.h"
#include "ember/tensor.h"

namespace ember::data {

class Transform {
 public:
  virtual ~Transform() = default;
  virtual Tensor apply(const Tensor& x, RandomStream& rng) const = 0;
  Tensor operator()(const Tensor& x) const;
};

// (x - mean[c]) / std[c] per channel c; the channel dimension is -3 ([C, H, W] or [N, C, H, W]).
// One mean/std value applies to every element of a tensor of any shape. Needs a floating input
// (bfloat16 is computed in float32 and rounded once).
class Normalize : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std);
  Tensor apply(const Tensor& x, RandomStream& rng) const override;

 private:
  std::vector<double> mean_, std_;
};

// Pads the last two dimensions with `padding` zeros on every side, then cuts out a random
// size[0] x size[1] window (top row drawn first, then left column, each uniformly).
class RandomCrop : public Transform {
 public:
  RandomCrop(std::array<int64_t, 2> size, int64_t padding = 0);
  Tensor apply(const Tensor& x, RandomStream& rng) const override;

 private:
  std::array<int64_t, 2> size_;
  int64_t padding_;
};

// Mirrors the last dimension with probability p (one uniform draw per call, flipped when < p).
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor apply(const Tensor& x, RandomStream& rng) const override;

 private:
  double p_;
};

// Applies transforms in order, all drawing from the same stream.
class Compose : public Transform {
 public:
  explicit Compose(std::vector<std::shared_ptr<const Transform>> transforms);
  Tensor apply(const Tensor& x, RandomStream& rng) const override;

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

}  // namespace ember::data
