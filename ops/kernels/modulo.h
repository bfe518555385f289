#pragma once
// fmod and remainder as PyTorch's kernels compute them, shared by the CPU and CUDA kernels.
// fmod takes the sign of the dividend (C's fmod, integer %), remainder that of the divisor
// (Python's %): the fmod result shifted by the divisor where it is nonzero and of the other sign.
#include <type_traits>

#include "core/host_device.h"

namespace ember {

// Integer fmod. The ops reject a zero divisor before any kernel runs (PyTorch's ZeroDivisionError);
// x % -1 is 0 without dividing, since INT_MIN % -1 traps on x86 (PyTorch's own kernel crashes there).
template <class T>
EMBER_HD T integer_fmod(T a, T b) {
  if constexpr (std::is_signed_v<T>)
    if (b == T(-1)) return T(0);
  return b == T(0) ? T(0) : static_cast<T>(a % b);
}

// The remainder from the fmod `mod` of a by b: integers and floats alike.
template <class T>
EMBER_HD T remainder_from_fmod(T mod, T b) {
  if constexpr (std::is_unsigned_v<T>)
    return mod;
  else
    return mod != T(0) && ((b < T(0)) != (mod < T(0))) ? static_cast<T>(mod + b) : mod;
}

}  // namespace ember
