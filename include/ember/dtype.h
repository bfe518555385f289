#pragma once
// Element types. Every tensor has exactly one; binary ops promote their operands to a common
// type first (bool < uint8 < int32 < int64 < bfloat16 < float32 < float64), so kernels see one type.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/error.h"

namespace ember {

enum class DType : uint8_t { float32, float64, int64, int32, uint8, boolean, bfloat16 };

// bfloat16 is the upper half of an IEEE float32: the same 8-bit exponent (so the same range) with
// a 7-bit mantissa. ember stores it and converts at the edges; kernels that accept it load to float32,
// compute in float32 and round back to nearest-even, as tensor cores and PyTorch do.
struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  explicit bfloat16(float f) : bits(round_to_bits(f)) {}
  explicit operator float() const { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

  static uint16_t round_to_bits(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round half to even on the dropped 16 bits
    return static_cast<uint16_t>(u >> 16);
  }
};

inline constexpr DType kFloat32 = DType::float32;
inline constexpr DType kFloat64 = DType::float64;
inline constexpr DType kFloat = DType::float32;
inline constexpr DType kDouble = DType::float64;
inline constexpr DType kInt64 = DType::int64;
inline constexpr DType kLong = DType::int64;
inline constexpr DType kInt32 = DType::int32;
inline constexpr DType kInt = DType::int32;
inline constexpr DType kUInt8 = DType::uint8;
inline constexpr DType kBool = DType::boolean;
inline constexpr DType kBFloat16 = DType::bfloat16;

size_t element_size(DType);
std::string_view dtype_name(DType);
inline bool is_floating(DType t) {
  return t == DType::float32 || t == DType::float64 || t == DType::bfloat16;
}
inline bool is_integral(DType t) { return !is_floating(t) && t != DType::boolean; }
DType promote_types(DType a, DType b);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::float32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::float64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::int64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::int32;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::uint8;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::boolean;
}
template <>
constexpr DType dtype_of<bfloat16>() {
  return DType::bfloat16;
}

// The error every dtype switch raises for bfloat16 where an op has no bfloat16 kernel.
[[noreturn]] inline void fail_bfloat16(std::string_view op) {
  fail("{}: not implemented for bfloat16 tensors; convert with .to(ember::kFloat32) first", op);
}

// Calls fn.template operator()<T>() with T the C++ type of `t`:
//   dispatch_all(t, "exp", [&]<class T>() { ... });
template <class F>
decltype(auto) dispatch_all(DType t, std::string_view op, F&& fn) {
  switch (t) {
    case DType::float32:
      return fn.template operator()<float>();
    case DType::float64:
      return fn.template operator()<double>();
    case DType::int64:
      return fn.template operator()<int64_t>();
    case DType::int32:
      return fn.template operator()<int32_t>();
    case DType::uint8:
      return fn.template operator()<uint8_t>();
    case DType::boolean:
      return fn.template operator()<bool>();
    case DType::bfloat16:
      fail_bfloat16(op);
  }
  fail("{}: unknown dtype", op);
}

// Like dispatch_all, for ops defined on floating types only.
template <class F>
decltype(auto) dispatch_floating(DType t, std::string_view op, F&& fn) {
  switch (t) {
    case DType::float32:
      return fn.template operator()<float>();
    case DType::float64:
      return fn.template operator()<double>();
    case DType::bfloat16:
      fail_bfloat16(op);
    default:
      fail("{}: expected a floating dtype (float32 or float64), got {}", op, dtype_name(t));
  }
}

// Numeric types (everything but bool).
template <class F>
decltype(auto) dispatch_numeric(DType t, std::string_view op, F&& fn) {
  if (t == DType::boolean) fail("{}: not defined for bool tensors", op);
  return dispatch_all(t, op, std::forward<F>(fn));
}

}  // namespace ember

template <>
struct fmt::formatter<ember::DType> : fmt::formatter<std::string_view> {
  auto format(ember::DType t, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(ember::dtype_name(t), ctx);
  }
};
