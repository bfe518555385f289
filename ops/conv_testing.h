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
}  // namespace ember::detail
