#pragma once
// Small helpers every example program uses: wall-clock timing and parameter counts.
// Header-only (examples/CMakeLists.txt builds each *.cpp as its own program).
#include <ember/nn.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace examples {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The number of values in `tensors` (e.g. a model's parameters, or some of them).
inline int64_t count_elements(const std::vector<ember::Tensor>& tensors) {
  int64_t n = 0;
  for (const ember::Tensor& t : tensors) n += t.numel();
  return n;
}

inline int64_t count_parameters(const ember::nn::Module& model) { return count_elements(model.parameters()); }

}  // namespace examples
