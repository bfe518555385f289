// Rearranging ops: flip, roll, repeat, tril, triu, pixel_shuffle and pixel_unshuffle. Each returns a new
// tensor, never a view (as in PyTorch), and each is a composition of existing differentiable ops --
// index_select, narrow + cat, expand + clone, where -- so autograd, every dtype (bfloat16 included) and the
// CUDA backend come with those ops: no kernel and no backward formula of its own.
#include <algorithm>

#include "ops/internal.h"

namespace ember {

namespace {

TensorOptions index_options(const Tensor& x) { return TensorOptions(DType::int64).device(x.device()); }

// tril (lower) or triu: where(mask, x, 0) with a [rows, cols] mask built from two aranges and
// broadcast over the leading (batch) dims, so the one copy is the where itself.
Tensor triangle(const char* op, const Tensor& x, int64_t diagonal, bool lower) {
  check_defined(op, x);
  if (x.dim() < 2) fail("{}: expects a tensor with at least 2 dims, got shape {}", op, shape_str(x.shape()));
  const int64_t rows = x.size(-2), cols = x.size(-1);
  // col - row lies in [-(rows - 1), cols - 1], so clamping the diagonal to [-rows, cols] keeps and
  // clears the same elements, and keeps the (double) arange bounds exact for any diagonal.
  const int64_t d = std::clamp(diagonal, -rows, cols);
  Tensor row = arange(static_cast<double>(rows), index_options(x)).unsqueeze(1);  // [rows, 1]
  Tensor col_minus_d =
      arange(static_cast<double>(-d), static_cast<double>(cols - d), 1, index_options(x));  // [cols]
  Tensor keep = lower ? le(col_minus_d, row) : ge(col_minus_d, row);  // col - row <= d (>= d)
  return where(keep, x, 0.0);
}

}  // namespace

Tensor flip(const Tensor& x, const Shape& dims) {
  check_defined("flip", x);
  std::vector<bool> flipped(std::max<int64_t>(x.dim(), 1));  // a 0-d tensor accepts dim 0 / -1, as in PyTorch
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), "flip");
    if (flipped[w]) fail("flip: dim {} appears multiple times in the list of dims {}", w, shape_str(dims));
    flipped[w] = true;
  }
  // One index_select per flipped dim, with the reversed positions n-1, ..., 0. Dims of size 0 or 1
  // read the same either way and are skipped; with none left the result is a plain copy.
  Tensor out;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t n = x.size(d);
    if (!flipped[d] || n <= 1) continue;
    Tensor reversed = arange(static_cast<double>(n - 1), -1.0, -1.0, index_options(x));
    out = index_select(out.defined() ? out : x, d, reversed);
  }
  return out.defined() ? out : x.clone();
}

Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims) {
  check_defined("roll", x);
  if (dims.empty()) {  // roll the flattened tensor, then give it its shape back
    if (shifts.size() != 1)
      fail("roll: shifts has {} entries but dims is empty (the flattened roll takes exactly one)",
           shifts.size());
    return roll(x.reshape({-1}), shifts, {0}).view(x.shape());
  }
  if (shifts.size() != dims.size())
    fail("roll: shifts has {} entries but dims has {}; they must match", shifts.size(), dims.size());
  if (x.dim() == 0)
    fail("roll: a 0-d tensor has no dims to roll along (got dims {}); pass empty dims", shape_str(dims));
  // The net shift of each dim in [0, n): negative and oversized shifts wrap, and a dim named twice
  // is rolled by the sum of its shifts (PyTorch rolls it twice).
  Shape net(x.dim(), 0);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], x.dim(), "roll"), n = x.size(d);
    if (n == 0) continue;
    const int64_t s = shifts[i] % n < 0 ? shifts[i] % n + n : shifts[i] % n;  // in [0, n)
    net[d] = net[d] < n - s ? net[d] + s : net[d] - (n - s);                  // (net + s) mod n, no overflow
  }
  // out[i] = x[(i - s) mod n]: the last s entries, then the first n - s; one cat (one copy) per dim.
  Tensor out;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t s = net[d], n = x.size(d);
    if (s == 0) continue;
    const Tensor& in = out.defined() ? out : x;
    out = cat({in.narrow(d, n - s, s), in.narrow(d, 0, n - s)}, d);
  }
  return out.defined() ? out : x.clone();
}

Tensor repeat(const Tensor& x, const Shape& repeats) {
  check_defined("repeat", x);
  if (static_cast<int64_t>(repeats.size()) < x.dim())
    fail("repeat: repeats {} has {} entries but the input of shape {} has {} dims (one per dim at least)",
         shape_str(repeats), repeats.size(), shape_str(x.shape()), x.dim());
  for (int64_t r : repeats)
    if (r < 0) fail("repeat: repeats must be non-negative, got {}", shape_str(repeats));
  // x seen as [1, s0, 1, s1, ...] (new leading dims are size 1) and expanded to [r0, s0, r1, s1, ...]:
  // its row-major order is exactly the tiling, so one clone writes the result and the reshape to
  // [r0*s0, r1*s1, ...] is free. (The clone also makes all-ones repeats a copy, never a view.)
  const size_t lead = repeats.size() - x.dim();
  Shape unit, tiled, shape;
  for (size_t i = 0; i < repeats.size(); ++i) {
    const int64_t s = i < lead ? 1 : x.size(static_cast<int64_t>(i - lead));
    unit.insert(unit.end(), {1, s});
    tiled.insert(tiled.end(), {repeats[i], s});
    int64_t n = 0;
    if (__builtin_mul_overflow(repeats[i], s, &n))
      fail("repeat: repeats {} on shape {} give more elements than a 64-bit count can hold",
           shape_str(repeats), shape_str(x.shape()));
    shape.push_back(n);
  }
  check_shape_valid(shape, "repeat");  // the product of the sizes must not overflow either
  Tensor out = x.reshape(unit).expand(tiled).clone();
  return out.view(shape);
}

Tensor tril(const Tensor& x, int64_t diagonal) { return triangle("tril", x, diagonal, /*lower=*/true); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle("triu", x, diagonal, /*lower=*/false); }

// Tensor methods: thin aliases, as in ops/tensor_methods.cpp.
Tensor Tensor::flip(const Shape& dims) const { return ember::flip(*this, dims); }
Tensor Tensor::roll(const Shape& shifts, const Shape& dims) const { return ember::roll(*this, shifts, dims); }
Tensor Tensor::repeat(const Shape& repeats) const { return ember::repeat(*this, repeats); }
Tensor Tensor::tril(int64_t diagonal) const { return ember::tril(*this, diagonal); }
Tensor Tensor::triu(int64_t diagonal) const { return ember::triu(*this, diagonal); }

namespace {

// pixel_shuffle is one permutation, [*, C, r, r, H, W] -> [*, C, H, r, W, r], between two
// reshapes; pixel_unshuffle is its inverse. The permuted reshape is the one copy.
Tensor shuffle_pixels(const char* op, const Tensor& x, int64_t r, bool up) {
  check_defined(op, x);
  if (x.dim() < 3) fail("{}: expected input [*, C, H, W], got shape {}", op, shape_str(x.shape()));
  if (r < 1) fail("{}: the {} factor must be positive, got {}", op, up ? "upscale" : "downscale", r);
  const int64_t c = x.size(-3), h = x.size(-2), w = x.size(-1);
  if (up && c % (r * r) != 0)
    fail("{}: the channels of input {} ({}) must be divisible by the square of the upscale factor {}", op,
         shape_str(x.shape()), c, r);
  if (!up && (h % r != 0 || w % r != 0))
    fail("{}: the height and width of input {} must be divisible by the downscale factor {}", op,
         shape_str(x.shape()), r);
  const Shape lead(x.shape().begin(), x.shape().end() - 3);
  const auto lead_and = [&lead](std::initializer_list<int64_t> tail) {
    Shape s = lead;
    s.insert(s.end(), tail);
    return s;
  };
  const int64_t b = static_cast<int64_t>(lead.size());
  // up: [*, C, r, r, H, W] -> [*, C, H, r, W, r]; down: [*, C, H, r, W, r] -> [*, C, r, r, H, W]
  static constexpr std::array<int64_t, 5> shuffle{0, 3, 1, 4, 2}, unshuffle{0, 2, 4, 1, 3};
  Shape order;
  for (int64_t i = 0; i < b; ++i) order.push_back(i);  // the leading dims stay in front
  for (int64_t i : up ? shuffle : unshuffle) order.push_back(b + i);
  if (up) {
    const int64_t oc = c / (r * r);
    return x.reshape(lead_and({oc, r, r, h, w})).permute(order).reshape(lead_and({oc, h * r, w * r}));
  }
  return x.reshape(lead_and({c, h / r, r, w / r, r}))
      .permute(order)
      .reshape(lead_and({c * r * r, h / r, w / r}));
}

}  // namespace

Tensor pixel_shuffle(const Tensor& x, int64_t upscale_factor) {
  return shuffle_pixels("pixel_shuffle", x, upscale_factor, true);
}

Tensor pixel_unshuffle(const Tensor& x, int64_t downscale_factor) {
  return shuffle_pixels("pixel_unshuffle", x, downscale_factor, false);
}

}  // namespace ember
