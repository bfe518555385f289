#include "ember/data/dataset.h"

#include <cstring>

#include "ember/error.h"

namespace ember::data {

TensorDataset::TensorDataset(Tensor data, Tensor targets)
    : data_(std::move(data)), targets_(std::move(targets)) {
  if (!data_.defined()) fail("TensorDataset: the data tensor is undefined");
  if (data_.dim() == 0) fail("TensorDataset: data must have a first (example) dimension, got a 0-d tensor");
  if (targets_.defined()) {
    if (targets_.dim() == 0)
      fail("TensorDataset: targets must have a first (example) dimension, got a 0-d tensor");
    if (targets_.size(0) != data_.size(0))
      fail("TensorDataset: data {} and targets {} differ in the number of examples ({} vs {})",
           shape_str(data_.shape()), shape_str(targets_.shape()), data_.size(0), targets_.size(0));
  }
}

int64_t TensorDataset::size() const { return data_.size(0); }

Example TensorDataset::get(int64_t index) const {
  if (index < 0 || index >= size())
    fail("TensorDataset::get: index {} out of range for a dataset of {} examples", index, size());
  return Example{data_.select(0, index), targets_.defined() ? targets_.select(0, index) : Tensor()};
}

namespace {

// Copies tensors of one shape and dtype into consecutive slices of a new [n, ...] tensor.
Tensor stack_rows(const std::vector<Example>& examples, bool targets) {
  const char* what = targets ? "target" : "data";
  auto field = [&](size_t i) -> const Tensor& { return targets ? examples[i].target : examples[i].data; };
  const Tensor& first = field(0);
  if (!first.defined()) {
    for (size_t i = 1; i < examples.size(); ++i)
      if (field(i).defined()) fail("collate: example 0 has no {} but example {} has one", what, i);
    return Tensor();
  }
  if (!first.device().is_cpu())
    fail("collate: example 0's {} is on {}; examples must be CPU tensors", what, first.device().str());
  Shape shape = first.shape();
  shape.insert(shape.begin(), static_cast<int64_t>(examples.size()));
  Tensor out = empty(shape, TensorOptions(first.dtype()));
  const size_t row_bytes = static_cast<size_t>(first.numel()) * element_size(first.dtype());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t i = 0; i < examples.size(); ++i) {
    const Tensor& t = field(i);
    if (!t.defined()) fail("collate: example {} has no {} but example 0 has one", i, what);
    if (t.shape() != first.shape() || t.dtype() != first.dtype() || !t.device().is_cpu())
      fail("collate: example {}'s {} is {} {} on {}, but example 0's is {} {} on cpu", i, what, t.dtype(),
           shape_str(t.shape()), t.device().str(), first.dtype(), shape_str(first.shape()));
    Tensor src = t.is_contiguous() ? t : t.contiguous();
    // Empty examples have no buffer: memcpy's pointers must not be null even for 0 bytes (UBSan).
    if (row_bytes > 0) std::memcpy(dst + i * row_bytes, src.raw_data(), row_bytes);
  }
  return out;
}

}  // namespace

Batch collate(const std::vector<Example>& examples) {
  if (examples.empty()) fail("collate: no examples to stack");
  return Batch{stack_rows(examples, false), stack_rows(examples, true)};
}

}  // namespace ember::data
