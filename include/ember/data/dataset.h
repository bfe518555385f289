#pragma once
// A Dataset is anything that can hand out example i of size(). The DataLoader calls get() from its
// background thread, so get() must be safe to call concurrently with the caller's own work (reading
// immutable tensors, as TensorDataset does, is).
#include <cstdint>
#include <vector>

#include "ember/tensor.h"

namespace ember::data {

// One example: its input and its target (the target may be undefined for unlabelled data).
struct Example {
  Tensor data;
  Tensor target;
};

// A batch: the examples' inputs stacked along a new first dimension, and their targets likewise.
struct Batch {
  Tensor data;    // [batch, ...example shape]
  Tensor target;  // [batch, ...target shape]; a scalar target per example gives [batch]
  int64_t size() const { return data.defined() ? data.size(0) : 0; }
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
};

// Examples are slices along the first dimension of two tensors: get(i) = {data[i], targets[i]}.
// get() returns views, so no data is copied until the loader stacks a batch.
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor data, Tensor targets);
  int64_t size() const override;
  Example get(int64_t index) const override;
  const Tensor& data() const { return data_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor data_, targets_;
};

// Stacks examples into a batch: every example's data must have one shape and dtype (and likewise
// every target). Throws ember::Error naming the first example that differs.
Batch collate(const std::vector<Example>& examples);

}  // namespace ember::data
