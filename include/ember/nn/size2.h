#pragma once
// Size2: a (height, width) pair that a single number also converts to, so layers take PyTorch's
// `3` or `{3, 5}` for kernel sizes, strides, paddings and dilations.
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <string>

namespace ember::nn {

struct Size2 {
  int64_t h = 0, w = 0;
  Size2(int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose, as PyTorch's int
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
  std::array<int64_t, 2> array() const { return {h, w}; }
  bool operator==(const Size2&) const = default;
  std::string str() const { return h == w ? fmt::format("{}", h) : fmt::format("({}, {})", h, w); }
};

}  // namespace ember::nn
