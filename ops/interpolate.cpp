// interpolate (torch.nn.functional.interpolate):
//   nearest:  y[j] = x[src(j)], one index_select over the flattened spatial dims (whose backward is
//             the matching index_add);
//   linear:   resampling is separable: one 1-d resampling per spatial dim, the innermost first,
//             y[j] = l0[j] x[i0[j]] + l1[j] x[i1[j]] along that dim, as one pass of combine_rows
//             (ops/kernels/combine_rows.h) with a two-entry row per output position; its gradient
//             is combine_rows with the transposed matrix, so every derivative is that one kernel.
// The source positions follow PyTorch's CPU kernels step for step, in the same floating type (float
// for float32 and bfloat16, double for float64), so that positions falling exactly between two
// pixels round the same way; innermost dim first makes bilinear's arithmetic PyTorch's
// h0 (w0 x00 + w1 x01) + h1 (w0 x10 + w1 x11).
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "ember/nn/functional.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/kernels/combine_rows.h"

namespace ember {
EMBER_DEFINE_STUB(combine_rows_stub, CombineRowsFn);
}

namespace ember::nn::functional {

namespace {

bool is_linear(InterpolateMode mode) {
  return mode == InterpolateMode::linear || mode == InterpolateMode::bilinear ||
         mode == InterpolateMode::trilinear;
}

// The number of spatial dims a linear mode works on (its input is [N, C, spatial...]).
int64_t linear_mode_dims(InterpolateMode mode) {
  return mode == InterpolateMode::linear ? 1 : mode == InterpolateMode::bilinear ? 2 : 3;
}

// One spatial dim's resampling: in -> out positions, and the scale_factor the caller gave for it
// (0 when the output size was given instead).
struct Resize {
  int64_t in, out;
  double scale_factor;
};

// Output position j's source position per input position unit (PyTorch's compute_scales_value):
// 1 / scale_factor when one was given, else in / out.
template <class T>
T source_scale(const Resize& r) {
  return r.scale_factor > 0 ? static_cast<T>(1.0 / r.scale_factor) : static_cast<T>(r.in) / r.out;
}

std::vector<int64_t> nearest_sources(const Resize& r, bool exact) {
  std::vector<int64_t> src(static_cast<size_t>(r.out));
  const float scale = source_scale<float>(r);
  for (int64_t j = 0; j < r.out; ++j) {
    int64_t i;
    if (!exact && r.out == r.in) {
      i = j;  // PyTorch's shortcuts, whatever the scale factor
    } else if (!exact && r.out == 2 * r.in) {
      i = j >> 1;
    } else {
      i = exact ? static_cast<int64_t>(std::floor(static_cast<float>((j + 0.5) * scale)))
                : static_cast<int64_t>(std::floor(static_cast<float>(j) * scale));
    }
    src[j] = std::min(i, r.in - 1);
  }
  return src;
}

// The two source positions and weights of every output position of a linear resampling.
struct LinearTaps {
  std::vector<int64_t> i0, i1;
  std::vector<double> l0, l1;
};

template <class T>
LinearTaps linear_taps(const Resize& r, bool align_corners) {
  LinearTaps taps;
  const T scale = align_corners ? (r.out > 1 ? static_cast<T>(r.in - 1) / static_cast<T>(r.out - 1) : T(0))
                                : source_scale<T>(r);
  for (int64_t j = 0; j < r.out; ++j) {
    T real = align_corners ? scale * static_cast<T>(j) : scale * (static_cast<T>(j) + T(0.5)) - T(0.5);
    if (real < 0) real = 0;  // the first half pixel repeats the edge
    const int64_t i0 = static_cast<int64_t>(real);
    const T lambda = std::clamp(real - static_cast<T>(i0), T(0), T(1));
    taps.i0.push_back(i0);
    taps.i1.push_back(i0 + (i0 < r.in - 1 ? 1 : 0));
    taps.l0.push_back(static_cast<double>(T(1) - lambda));
    taps.l1.push_back(static_cast<double>(lambda));
  }
  return taps;
}

Tensor indices_on(const std::vector<int64_t>& v, const Tensor& like) {
  return tensor<int64_t>(v).to(like.device());
}

// Nearest modes pick one source pixel per output pixel, so all spatial dims go in one index_select
// over the flattened spatial dims (one pass over the output, not one per dim): output pixel
// (o_1, ..., o_k) reads flat input position sum_d src_d[o_d] * (input stride of dim d).
Tensor resample_nearest(const Tensor& x, const std::vector<Resize>& sizes, bool exact) {
  std::vector<int64_t> flat{0};
  Shape out_shape{x.size(0), x.size(1)};
  int64_t in_pixels = 1;
  for (const Resize& r : sizes) {
    const std::vector<int64_t> src = nearest_sources(r, exact);
    std::vector<int64_t> next;
    next.reserve(flat.size() * src.size());
    for (int64_t base : flat)
      for (int64_t i : src) next.push_back(base * r.in + i);
    flat = std::move(next);
    out_shape.push_back(r.out);
    in_pixels *= r.in;
  }
  return index_select(x.reshape({x.size(0), x.size(1), in_pixels}), 2, indices_on(flat, x)).view(out_shape);
}

// A sparse [rows, cols] matrix in compressed rows, on the device of the tensor it applies to
// (ops/kernels/combine_rows.h).
struct RowCombination {
  int64_t rows = 0, cols = 0;
  Tensor offsets, col, weight;
};

// y = A x along dim d (x's size there is A's column count). The gradient is A^T g along d: the
// same op with the two matrices swapped, so the backward is recorded under create_graph and every
// higher derivative comes with it.
Tensor combine_rows(const Tensor& x, int64_t d, const RowCombination& a, const RowCombination& a_t) {
  Shape out_shape = x.shape();
  out_shape[static_cast<size_t>(d)] = a.rows;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < d; ++k) outer *= x.size(k);
  for (int64_t k = d + 1; k < x.dim(); ++k) inner *= x.size(k);
  Tensor y = empty_tensor({outer, a.rows, inner}, x.dtype(), x.device());
  combine_rows_stub(x.device(), x.detach().contiguous().view({outer, a.cols, inner}), a.offsets, a.col,
                    a.weight, y);
  y = y.view(out_shape);
  if (autograd::any_requires_grad({x}))
    autograd::record(
        "interpolate", {x}, y,
        [d, a, a_t](const autograd::BackwardArgs& args) {
          return std::vector<Tensor>{combine_rows(args.grad(), d, a_t, a)};
        },
        autograd::DoubleBackward::supported);
  return y;
}

// x resampled along dim d by a linear mode: one pass, y[j] = l0[j] x[i0[j]] + l1[j] x[i1[j]].
Tensor resample_linear(const Tensor& x, int64_t d, const Resize& r, bool align_corners) {
  const LinearTaps taps = x.dtype() == DType::float64 ? linear_taps<double>(r, align_corners)
                                                      : linear_taps<float>(r, align_corners);
  auto on_device = [&](const std::vector<int64_t>& offsets, const std::vector<int64_t>& col,
                       const std::vector<double>& weight, int64_t rows, int64_t cols) {
    return RowCombination{rows, cols, indices_on(offsets, x), indices_on(col, x),
                          tensor<double>(weight).to(x.dtype()).to(x.device())};
  };
  // A: output position j takes (i0, l0) then (i1, l1).
  std::vector<int64_t> offsets, col;
  std::vector<double> weight;
  for (int64_t j = 0; j < r.out; ++j) {
    offsets.push_back(2 * j);
    col.insert(col.end(), {taps.i0[j], taps.i1[j]});
    weight.insert(weight.end(), {taps.l0[j], taps.l1[j]});
  }
  offsets.push_back(2 * r.out);
  const RowCombination a = on_device(offsets, col, weight, r.out, r.in);
  // A^T: input position i gives to the output positions that read it, in output order.
  std::vector<int64_t> t_offsets(static_cast<size_t>(r.in + 1), 0), t_col(col.size());
  std::vector<double> t_weight(col.size());
  for (int64_t i : col) ++t_offsets[static_cast<size_t>(i + 1)];
  for (int64_t i = 0; i < r.in; ++i) t_offsets[i + 1] += t_offsets[i];
  std::vector<int64_t> fill(t_offsets.begin(), t_offsets.end() - 1);
  for (size_t e = 0; e < col.size(); ++e) {
    const int64_t at = fill[static_cast<size_t>(col[e])]++;
    t_col[at] = static_cast<int64_t>(e / 2);
    t_weight[at] = weight[e];
  }
  return combine_rows(x, d, a, on_device(t_offsets, t_col, t_weight, r.in, r.out));
}

std::string input_forms(int64_t spatial_dims) {
  return spatial_dims == 1 ? "[N, C, W]" : spatial_dims == 2 ? "[N, C, H, W]" : "[N, C, D, H, W]";
}

// Each spatial dim's resize, from the options, with their checks.
std::vector<Resize> resizes(const Tensor& input, const InterpolateOptions& o) {
  const int64_t spatial = input.dim() - 2;
  const bool has_size = !o.size.empty(), has_scale = !o.scale_factor.empty();
  if (has_size == has_scale)
    fail("interpolate: give either size or scale_factor, {}", has_size ? "not both" : "got neither");
  const size_t given = has_size ? o.size.size() : o.scale_factor.size();
  if (given != 1 && given != static_cast<size_t>(spatial))
    fail("interpolate: {} {} needs one value or one per spatial dim ({}) of input shape {}",
         has_size ? "size" : "scale_factor",
         has_size ? fmt::format("[{}]", fmt::join(o.size, ","))
                  : fmt::format("[{}]", fmt::join(o.scale_factor, ",")),
         spatial, shape_str(input.shape()));
  std::vector<Resize> out;
  for (int64_t k = 0; k < spatial; ++k) {
    const size_t at = given == 1 ? 0 : static_cast<size_t>(k);
    Resize r{input.size(k + 2), 0, 0.0};
    if (r.in <= 0)
      fail("interpolate: input of shape {} has an empty spatial dim {}", shape_str(input.shape()), k + 2);
    if (has_size) {
      r.out = o.size[at];
    } else {
      r.scale_factor = o.scale_factor[at];
      if (!(r.scale_factor > 0) || !std::isfinite(r.scale_factor))
        fail("interpolate: scale_factor must be positive and finite, got {}", r.scale_factor);
      r.out = static_cast<int64_t>(std::floor(static_cast<double>(r.in) * r.scale_factor));
    }
    if (r.out <= 0)
      fail("interpolate: input of shape {} would resample dim {} to size {}; sizes must be positive",
           shape_str(input.shape()), k + 2, r.out);
    out.push_back(r);
  }
  return out;
}

}  // namespace

const char* mode_name(InterpolateMode mode) {
  switch (mode) {
    case InterpolateMode::nearest:
      return "nearest";
    case InterpolateMode::nearest_exact:
      return "nearest-exact";
    case InterpolateMode::linear:
      return "linear";
    case InterpolateMode::bilinear:
      return "bilinear";
    case InterpolateMode::trilinear:
      return "trilinear";
  }
  return "?";
}

Tensor interpolate(const Tensor& input, const InterpolateOptions& options) {
  check_defined("interpolate", input);
  const InterpolateMode mode = options.mode;
  if (input.dim() < 3 || input.dim() > 5)
    fail("interpolate: expected input [N, C, W], [N, C, H, W] or [N, C, D, H, W], got shape {}",
         shape_str(input.shape()));
  if (is_linear(mode)) {
    const int64_t dims = linear_mode_dims(mode);
    if (input.dim() != dims + 2)
      fail("interpolate: {} mode needs a {}-d input {}, got shape {}", mode_name(mode), dims + 2,
           input_forms(dims), shape_str(input.shape()));
    if (!input.is_floating_point())
      fail("interpolate: {} mode needs a floating input, got {}", mode_name(mode), input.dtype());
    if (input.dtype() == DType::bfloat16)  // weights and sums in float32, rounded once
      return via_float32([&](const Tensor& x) { return interpolate(x, options); }, input);
  } else if (options.align_corners) {
    fail("interpolate: align_corners applies to the linear modes (linear, bilinear, trilinear), not {}",
         mode_name(mode));
  }
  const std::vector<Resize> sizes = resizes(input, options);
  const bool align_corners = options.align_corners.value_or(false);
  if (!is_linear(mode)) return resample_nearest(input, sizes, mode == InterpolateMode::nearest_exact);
  Tensor y = input;
  for (int64_t k = static_cast<int64_t>(sizes.size()) - 1; k >= 0; --k)
    y = resample_linear(y, k + 2, sizes[static_cast<size_t>(k)], align_corners);
  return y;
}

}  // namespace ember::nn::functional
