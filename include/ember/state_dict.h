#pragma once
// StateDict: named tensors plus string metadata. It is what a module, an optimizer or a learning-rate
// scheduler hands out to be saved and takes back to be restored, and exactly what one safetensors
// file holds (tensors + the "__metadata__" string map). Scalars (a step count, a learning rate) go
// into metadata as text that round-trips exactly.
#include <map>
#include <string>

#include "ember/tensor.h"

namespace ember {

struct StateDict {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;

  // Adds every entry of `other` under `prefix` ("model." + "fc1.weight"); throws on a clash.
  void insert(const std::string& prefix, const StateDict& other);
  // The entries whose key starts with `prefix`, with the prefix removed.
  StateDict extract(const std::string& prefix) const;
  bool empty() const { return tensors.empty() && metadata.empty(); }
};

}  // namespace ember
