#pragma once
// Typed element pointers for the loss kernels: kernels receive `const Tensor&` handles (the
// dispatch contract) but own the right to write their outputs.
#include "ember/tensor.h"

namespace ember::losses::cpu {
template <class T>
const T* in_data(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <class T>
T* out_data(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}
}  // namespace ember::losses::cpu
