// The 1-D convolutions and pools are the 2-D ones on a height-1 image: [N, C, L] becomes
// [N, C, 1, L], a kernel of size k becomes 1 x k with stride 1 and no padding in the height. So
// they share the 2-D ops' kernels on every backend and their derivatives to any order, and this
// file only translates arguments. The 1-D checks come first, so a mistake is reported in the
// caller's own 1-D terms; anything the 2-D op still rejects (dtypes, devices) is reported with
// the 1-D op's name in front.
#include "ops/internal.h"

namespace ember {

namespace {

// Throws unless x is [N, C, L] or unbatched [C, L].
void check_sequence_input(const char* op, const Tensor& x) {
  check_defined(op, x, "input");
  if (x.dim() != 2 && x.dim() != 3)
    fail("{}: expected input [N, C, L] (or unbatched [C, L]), got shape {}", op, shape_str(x.shape()));
}

// Runs the 2-D op on x with a height dim of 1 inserted, and removes it from the result.
template <class Op2d>
Tensor on_height_one(const char* op, const Tensor& x, Op2d op2d) {
  try {
    return op2d(x.unsqueeze(-2)).squeeze(-2);
  } catch (const Error& e) {
    throw Error(fmt::format("{} (as its 2-D form on [N, C, 1, L]): {}", op, e.what()));
  }
}

// The checks conv1d and conv_transpose1d share: ranks, positive sizes, groups.
void check_conv1d_args(const char* op, const char* layout, const Tensor& x, const Tensor& w, int64_t stride,
                       int64_t padding, int64_t dilation, int64_t groups) {
  check_sequence_input(op, x);
  check_defined(op, w, "weight");
  if (w.dim() != 3) fail("{}: expected weight {}, got shape {}", op, layout, shape_str(w.shape()));
  if (stride < 1) fail("{}: stride must be positive, got {}", op, stride);
  if (padding < 0) fail("{}: padding must be non-negative, got {}", op, padding);
  if (dilation < 1) fail("{}: dilation must be positive, got {}", op, dilation);
  if (groups < 1) fail("{}: groups must be positive, got {}", op, groups);
  if (w.size(2) < 1) fail("{}: kernel size must be positive, got weight {}", op, shape_str(w.shape()));
}

// For the pools: kernel, stride (0 = the kernel size) and padding, and an output of length >= 1.
void check_pool1d_args(const char* op, const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  check_sequence_input(op, x);
  if (kernel < 1) fail("{}: kernel size must be positive, got {}", op, kernel);
  if (stride < 0) fail("{}: stride must be positive (or 0 for the kernel size), got {}", op, stride);
  if (padding < 0 || 2 * padding > kernel)
    fail("{}: padding {} must be non-negative and at most half the kernel size {}", op, padding, kernel);
  if (x.size(-1) + 2 * padding < kernel)
    fail("{}: input {} padded by {} is shorter than the kernel size {}", op, shape_str(x.shape()), padding,
         kernel);
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  constexpr const char* op = "conv1d";
  check_conv1d_args(op, "[out_channels, in_channels/groups, k]", x, w, stride, padding, dilation, groups);
  const int64_t channels = x.size(-2);
  if (channels != w.size(1) * groups)
    fail("{}: input {} has {} channels, but weight {} with groups={} expects {}", op, shape_str(x.shape()),
         channels, shape_str(w.shape()), groups, w.size(1) * groups);
  if (w.size(0) % groups != 0)
    fail("{}: out_channels ({}) must be divisible by groups ({})", op, w.size(0), groups);
  const int64_t span = dilation * (w.size(2) - 1) + 1;
  if (x.size(-1) + 2 * padding < span)
    fail("{}: input {} padded by {} is shorter than the kernel {} dilated by {} (span {})", op,
         shape_str(x.shape()), padding, w.size(2), dilation, span);
  if (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0)))
    fail("{}: bias must have shape [{}] (out_channels), got {}", op, w.size(0), shape_str(b.shape()));
  const Tensor w2 = w.unsqueeze(2);  // [out, in/groups, 1, k]
  return on_height_one(op, x, [&](const Tensor& x2) {
    return conv2d(x2, w2, b, {1, stride}, {0, padding}, {1, dilation}, groups);
  });
}

Tensor conv_transpose1d(const Tensor& x, const Tensor& w, const Tensor& b, int64_t stride, int64_t padding,
                        int64_t output_padding, int64_t groups, int64_t dilation) {
  constexpr const char* op = "conv_transpose1d";
  check_conv1d_args(op, "[in_channels, out_channels/groups, k]", x, w, stride, padding, dilation, groups);
  if (output_padding < 0 || output_padding >= std::max(stride, dilation))
    fail("{}: output_padding {} must be non-negative and smaller than stride {} or dilation {}", op,
         output_padding, stride, dilation);
  if (x.size(-2) != w.size(0))
    fail("{}: input {} has {} channels, but weight {} expects {} (its first dim)", op, shape_str(x.shape()),
         x.size(-2), shape_str(w.shape()), w.size(0));
  if (w.size(0) % groups != 0)
    fail("{}: in_channels ({}) must be divisible by groups ({})", op, w.size(0), groups);
  const int64_t length =
      (x.size(-1) - 1) * stride - 2 * padding + dilation * (w.size(2) - 1) + output_padding + 1;
  if (length < 1)
    fail("{}: input {} with stride {}, padding {} and kernel {} gives an empty output (length {})", op,
         shape_str(x.shape()), stride, padding, w.size(2), length);
  if (b.defined() && (b.dim() != 1 || b.size(0) != w.size(1) * groups))
    fail("{}: bias must have shape [{}] (out_channels), got {}", op, w.size(1) * groups,
         shape_str(b.shape()));
  const Tensor w2 = w.unsqueeze(2);  // [in, out/groups, 1, k]
  return on_height_one(op, x, [&](const Tensor& x2) {
    return conv_transpose2d(x2, w2, b, {1, stride}, {0, padding}, {0, output_padding}, groups, {1, dilation});
  });
}

Tensor max_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  check_pool1d_args("max_pool1d", x, kernel, stride, padding);
  return on_height_one("max_pool1d", x, [&](const Tensor& x2) {
    return max_pool2d(x2, {1, kernel}, {1, stride}, {0, padding});
  });
}

Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  check_pool1d_args("avg_pool1d", x, kernel, stride, padding);
  return on_height_one("avg_pool1d", x, [&](const Tensor& x2) {
    return avg_pool2d(x2, {1, kernel}, {1, stride}, {0, padding});
  });
}

Tensor adaptive_avg_pool1d(const Tensor& x, int64_t output_size) {
  check_sequence_input("adaptive_avg_pool1d", x);
  if (output_size < 1) fail("adaptive_avg_pool1d: output size must be positive, got {}", output_size);
  return on_height_one("adaptive_avg_pool1d", x, [&](const Tensor& x2) {
    return adaptive_avg_pool2d(x2, {1, output_size});
  });
}

}  // namespace ember
