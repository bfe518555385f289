// pad (torch.nn.functional.pad): every mode is a composite of differentiable ops, so the backward and
// every higher derivative come from them, on every backend. constant: narrow (negative pads crop)
// and cat with filled blocks; reflect, replicate, circular: one index_select per padded dim, with the
// source index of every output position (its backward is the matching index_add).
#include <fmt/ranges.h>

#include <algorithm>

#include "ops/internal.h"

namespace ember {

namespace {

const char* mode_name(PadMode mode) {
  switch (mode) {
    case PadMode::constant:
      return "constant";
    case PadMode::reflect:
      return "reflect";
    case PadMode::replicate:
      return "replicate";
    case PadMode::circular:
      return "circular";
  }
  return "?";
}

// The input position that output position j (of n + before + after) reads along a dim of size n.
int64_t source_index(PadMode mode, int64_t j, int64_t before, int64_t n) {
  const int64_t i = j - before;
  switch (mode) {
    case PadMode::reflect:  // mirrored about the edge elements, which are not repeated
      return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
    case PadMode::replicate:
      return std::clamp<int64_t>(i, 0, n - 1);
    case PadMode::circular:
      return ((i % n) + n) % n;
    case PadMode::constant:
      break;
  }
  return i;
}

Tensor pad_constant(Tensor x, int64_t d, int64_t before, int64_t after, double value) {
  const int64_t n = x.size(d);
  if (before < 0 || after < 0) {  // crop first
    const int64_t start = std::max<int64_t>(0, -before), stop = n - std::max<int64_t>(0, -after);
    x = x.narrow(d, start, stop - start);
  }
  std::vector<Tensor> parts;
  auto block = [&](int64_t size) {
    Shape shape = x.shape();
    shape[d] = size;
    parts.push_back(full(shape, value, x.options()));
  };
  if (before > 0) block(before);
  parts.push_back(x);
  if (after > 0) block(after);
  return parts.size() == 1 ? x : cat(parts, d);
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pad, PadMode mode, double value) {
  check_defined("pad", x, "input");
  const int64_t pairs = static_cast<int64_t>(pad.size()) / 2;
  if (pad.size() % 2 != 0 || pairs > x.dim())
    fail("pad: the padding {} must hold (before, after) pairs for at most the input's {} dims (shape {})",
         fmt::format("[{}]", fmt::join(pad, ",")), x.dim(), shape_str(x.shape()));
  if (mode != PadMode::constant && value != 0.0)
    fail("pad: a fill value ({}) applies to constant mode only, not {}", value, mode_name(mode));
  Tensor y = x;
  for (int64_t k = 0; k < pairs; ++k) {
    const int64_t d = x.dim() - 1 - k, before = pad[2 * k], after = pad[2 * k + 1], n = x.size(d);
    if (n + before + after < 0 || (before < 0 && -before > n) || (after < 0 && -after > n))
      fail("pad: padding ({}, {}) of dim {} (size {}) would leave a negative size", before, after, d, n);
    if (mode == PadMode::constant) {
      y = pad_constant(y, d, before, after, value);
      continue;
    }
    if (before < 0 || after < 0)
      fail("pad: negative padding ({}, {}) of dim {} is supported in constant mode only, not {}", before,
           after, d, mode_name(mode));
    if (before == 0 && after == 0) continue;
    const bool fits = mode == PadMode::reflect    ? before < n && after < n
                      : mode == PadMode::circular ? before <= n && after <= n
                                                  : n > 0;
    if (!fits)
      fail("pad: {} padding ({}, {}) of dim {} needs {} (size {})", mode_name(mode), before, after, d,
           mode == PadMode::reflect    ? "each pad smaller than the dim"
           : mode == PadMode::circular ? "each pad at most the dim"
                                       : "a non-empty dim",
           n);
    std::vector<int64_t> source(static_cast<size_t>(n + before + after));
    for (int64_t j = 0; j < static_cast<int64_t>(source.size()); ++j)
      source[j] = source_index(mode, j, before, n);
    y = index_select(y, d, tensor<int64_t>(source).to(x.device()));
  }
  return y;
}

}  // namespace ember
