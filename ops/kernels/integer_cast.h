#pragma once
// A floating-point value written into an integer tensor, the same on every backend. A plain C++
// cast is undefined out of range, and the two compilers differ there: GCC's x86 code wraps
// (uint8 from -1.0 gives 255, as PyTorch), nvcc's cvt instruction saturates (0). Going through
// int64 first, then narrowing modulo 2^bits (defined for integers since C++20), gives PyTorch's
// results on both; a NaN or a value beyond int64 becomes INT64_MIN first, x86's "integer
// indefinite", which is what PyTorch's CPU kernels produce too.
#include <cstdint>
#include <type_traits>

#include "core/host_device.h"

namespace ember {

template <class T, class F>
EMBER_HD T integer_from(F v) {
  static_assert(std::is_integral_v<T> && std::is_floating_point_v<F>);
  const double d = static_cast<double>(v);
  constexpr double kTwo63 = 9223372036854775808.0;
  const int64_t i = (d < kTwo63 && d >= -kTwo63) ? static_cast<int64_t>(d) : INT64_MIN;  // (NaN: INT64_MIN)
  return static_cast<T>(i);
}

}  // namespace ember
