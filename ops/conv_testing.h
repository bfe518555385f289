#pragma once
// Internal switch of conv2d for tests and benchmarks (not part of the public API).

namespace ember::detail {
// Which algorithm the CPU conv2d uses for the 3x3, stride-1 convolutions Winograd F(2x2, 3x3) can
// compute (ops/cpu/conv_winograd.h); every other convolution goes through im2col + GEMM.
//   automatic  Winograd where it is faster (WinogradShape::pays), the default
//   winograd   Winograd wherever it can: tests use it to run small shapes through it
//   im2col     never Winograd: tests compare the two, benchmarks time them
enum class Conv2dAlgorithm { automatic, winograd, im2col };
Conv2dAlgorithm& conv2d_algorithm();

// Sets the algorithm for a scope (forward and backward both read it) and restores the previous one.
struct Conv2dAlgorithmScope {
  explicit Conv2dAlgorithmScope(Conv2dAlgorithm algorithm) : previous(conv2d_algorithm()) {
    conv2d_algorithm() = algorithm;
  }
  ~Conv2dAlgorithmScope() { conv2d_algorithm() = previous; }
  Conv2dAlgorithmScope(const Conv2dAlgorithmScope&) = delete;
  Conv2dAlgorithmScope& operator=(const Conv2dAlgorithmScope&) = delete;
  Conv2dAlgorithm previous;
};
}  // namespace ember::detail
