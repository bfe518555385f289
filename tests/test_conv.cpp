// conv2d and pooling: hand-computed values, a direct-loop reference for the convolution (forward
// and both gradients), gradchecks over strides/padding/dilation/groups, and errors.
#include <cmath>

#include "harness.h"
#include "ops/conv_testing.h"

namespace ember::testing {
namespace {

struct ConvArgs {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

// The definition of conv2d as nested loops over float64 values (ops/kernels/conv.h).
struct NaiveConv {
  Tensor x, w, b;
  ConvArgs p;
  int64_t n, c, h, wd, o, kh, kw, oh, ow, cg, og;
  NaiveConv(const Tensor& x_, const Tensor& w_, const Tensor& b_, ConvArgs p_)
      : x(x_.detach().to(kFloat64).contiguous()), w(w_.detach().to(kFloat64).contiguous()), p(p_) {
    if (b_.defined()) b = b_.detach().to(kFloat64);
    n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
    o = w.size(0), kh = w.size(2), kw = w.size(3);
    oh = (h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
    ow = (wd + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
    cg = c / p.groups, og = o / p.groups;
  }
  // Calls f(out index, x index, w index) for every product term of the convolution.
  template <class F>
  void for_each_term(F f) const {
    for (int64_t i0 = 0; i0 < n; ++i0)
      for (int64_t oc = 0; oc < o; ++oc)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j)
            for (int64_t ci = 0; ci < cg; ++ci)
              for (int64_t a = 0; a < kh; ++a)
                for (int64_t bb = 0; bb < kw; ++bb) {
                  int64_t ih = i * p.stride[0] - p.padding[0] + a * p.dilation[0];
                  int64_t iw = j * p.stride[1] - p.padding[1] + bb * p.dilation[1];
                  if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                  int64_t cin = (oc / og) * cg + ci;
                  f(((i0 * o + oc) * oh + i) * ow + j, ((i0 * c + cin) * h + ih) * wd + iw,
                    ((oc * cg + ci) * kh + a) * kw + bb);
                }
  }
  Tensor forward() const {
    std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), out(n * o * oh * ow, 0.0);
    for_each_term([&](int64_t oi, int64_t xi, int64_t wi) { out[oi] += xv[xi] * wv[wi]; });
    Tensor r = tensor<double>(out, {n, o, oh, ow});
    return b.defined() ? r + b.view({-1, 1, 1}) : r;
  }
  std::pair<Tensor, Tensor> backward(const Tensor& g) const {
    std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), gv = g.to_vector<double>();
    std::vector<double> dx(xv.size(), 0.0), dw(wv.size(), 0.0);
    for_each_term([&](int64_t oi, int64_t xi, int64_t wi) {
      dx[xi] += gv[oi] * wv[wi];
      dw[wi] += gv[oi] * xv[xi];
    });
    return {tensor<double>(dx, x.shape()), tensor<double>(dw, w.shape())};
  }
};

OpFn conv_fn(ConvArgs p) {
  return [p](const std::vector<Tensor>& in) {
    return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p.stride, p.padding, p.dilation, p.groups);
  };
}

std::vector<OpCase> conv_cases() {
  Tensor x9 = T({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w1234 = T({1, 2, 3, 4}, {1, 1, 2, 2});
  std::vector<OpCase> cases = {
      // out[i,j] = 1 x[i,j] + 2 x[i,j+1] + 3 x[i+1,j] + 4 x[i+1,j+1] + bias
      {"conv_2x2_bias",
       conv_fn({}),
       {x9, w1234, T({1}, {1})},
       tensor<double>({38, 48, 68, 78}, {1, 1, 2, 2})},
      // a 2x2 box filter with padding 1 and stride 2 sees 1, 2+3, 4+7 and 5+6+8+9
      {"conv_pad1_stride2",
       conv_fn({{2, 2}, {1, 1}}),
       {x9, T({1, 1, 1, 1}, {1, 1, 2, 2})},
       tensor<double>({1, 5, 11, 28}, {1, 1, 2, 2})},
      // dilation 2: the taps are the four corners, 1*1 + 2*3 + 3*7 + 4*9
      {"conv_dilation2", conv_fn({{1, 1}, {0, 0}, {2, 2}}), {x9, w1234}, tensor<double>({64}, {1, 1, 1, 1})},
      // groups 2 with a 1x1 kernel (the no-im2col path): channel 0 times 2, channel 1 times 3
      {"conv_groups_pointwise",
       conv_fn({{1, 1}, {0, 0}, {1, 1}, 2}),
       {T({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2}), T({2, 3}, {2, 1, 1, 1})},
       tensor<double>({2, 4, 6, 8, 15, 18, 21, 24}, {1, 2, 2, 2})},
      // every weight 1 over 2 channels: the sum of all 8 inputs
      {"conv_sum_channels",
       conv_fn({}),
       {T({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2}), T({1, 1, 1, 1, 1, 1, 1, 1}, {1, 2, 2, 2})},
       tensor<double>({36}, {1, 1, 1, 1})},
  };
  // Against the loop reference, with gradcheck, over the argument space.
  auto ref = [&](const std::string& name, const Shape& xs, const Shape& ws, bool bias, ConvArgs p) {
    Tensor x = R(xs, -1, 1, 41), w = R(ws, -1, 1, 42);
    std::vector<Tensor> in{x, w};
    if (bias) in.push_back(R({ws[0]}, -1, 1, 43));
    cases.push_back({name, conv_fn(p), in, NaiveConv(x, w, bias ? in[2] : Tensor(), p).forward()});
  };
  ref("conv_stride2_pad1_dil2_groups2", {1, 4, 5, 5}, {2, 2, 3, 3}, true, {{2, 2}, {1, 1}, {2, 2}, 2});
  ref("conv_rect_kernel", {2, 2, 4, 5}, {3, 2, 2, 3}, true, {});
  ref("conv_asymmetric_args", {1, 2, 5, 4}, {2, 2, 3, 2}, false, {{1, 2}, {0, 1}, {2, 1}, 1});
  ref("conv_pointwise", {2, 3, 3, 3}, {2, 3, 1, 1}, true, {});
  ref("conv_pointwise_strided", {1, 2, 4, 4}, {2, 2, 1, 1}, false, {{2, 2}, {0, 0}, {1, 1}, 1});
  ref("conv_depthwise", {1, 3, 4, 4}, {3, 1, 2, 2}, false, {{1, 1}, {1, 1}, {1, 1}, 3});
  {
    Tensor x = R({2, 4, 4}, -1, 1, 44), w = R({3, 2, 2, 2}, -1, 1, 45);
    cases.push_back(
        {"conv_unbatched", conv_fn({}), {x, w}, NaiveConv(x.unsqueeze(0), w, {}, {}).forward().squeeze(0)});
  }
  return with_gradgradcheck(cases);  // conv2d differentiates to any order
}
EMBER_OP_SUITE(Conv2d, conv_cases);

// ---- conv_transpose2d ----

struct TransposeArgs {
  std::array<int64_t, 2> stride{1, 1}, padding{0, 0}, output_padding{0, 0};
  int64_t groups = 1;
  std::array<int64_t, 2> dilation{1, 1};
};

OpFn conv_transpose_fn(TransposeArgs p) {
  return [p](const std::vector<Tensor>& in) {
    return conv_transpose2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p.stride, p.padding,
                            p.output_padding, p.groups, p.dilation);
  };
}

// The definition as a scatter: input pixel (ci, i, j) adds x * w[ci, co, a, b] onto output pixel
// (group's co, i * stride - padding + a * dilation, ...), for every tap that lands inside the output.
Tensor conv_transpose_reference(const Tensor& x_in, const Tensor& w_in, const Tensor& b, TransposeArgs p) {
  const Tensor x = x_in.detach().contiguous(), w = w_in.detach().contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t og = w.size(1), kh = w.size(2), kw = w.size(3), o = og * p.groups, cg = c / p.groups;
  const int64_t oh =
      (h - 1) * p.stride[0] - 2 * p.padding[0] + p.dilation[0] * (kh - 1) + p.output_padding[0] + 1;
  const int64_t ow =
      (wd - 1) * p.stride[1] - 2 * p.padding[1] + p.dilation[1] * (kw - 1) + p.output_padding[1] + 1;
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> out(n * o * oh * ow, 0.0);
  for (int64_t i0 = 0; i0 < n; ++i0)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < wd; ++j)
          for (int64_t co = 0; co < og; ++co)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t bb = 0; bb < kw; ++bb) {
                const int64_t y = i * p.stride[0] - p.padding[0] + a * p.dilation[0];
                const int64_t z = j * p.stride[1] - p.padding[1] + bb * p.dilation[1];
                if (y < 0 || y >= oh || z < 0 || z >= ow) continue;
                const int64_t oc = (ci / cg) * og + co;
                out[((i0 * o + oc) * oh + y) * ow + z] +=
                    xv[((i0 * c + ci) * h + i) * wd + j] * wv[((ci * og + co) * kh + a) * kw + bb];
              }
  Tensor r = tensor<double>(out, {n, o, oh, ow});
  return b.defined() ? r + b.detach().view({-1, 1, 1}) : r;
}

std::vector<OpCase> conv_transpose_cases() {
  Tensor x4 = T({1, 2, 3, 4}, {1, 1, 2, 2}), w4 = T({1, 2, 3, 4}, {1, 1, 2, 2});
  std::vector<OpCase> cases = {
      // the full convolution of [[1,2],[3,4]] with itself: y[1][1] = 1*4 + 2*3 + 3*2 + 4*1 = 20
      {"convT_full",
       conv_transpose_fn({}),
       {x4, w4},
       tensor<double>({1, 4, 4, 6, 20, 16, 9, 24, 16}, {1, 1, 3, 3})},
      // stride 2: the four copies of w, scaled by x, side by side without overlap
      {"convT_stride2",
       conv_transpose_fn({{2, 2}}),
       {x4, w4},
       tensor<double>({1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16}, {1, 1, 4, 4})},
      // PyTorch 1.13: conv_transpose2d(x4, ones(1,1,3,3), stride=2, padding=1, output_padding=1)
      {"convT_stride2_pad1_outpad1",
       conv_transpose_fn({{2, 2}, {1, 1}, {1, 1}}),
       {x4, T(std::vector<double>(9, 1.0), {1, 1, 3, 3})},
       tensor<double>({1, 3, 2, 2, 4, 10, 6, 6, 3, 7, 4, 4, 3, 7, 4, 4}, {1, 1, 4, 4})},
      // output_padding 2 >= stride 1 (allowed by dilation 3): two extra rows and columns of zeros
      // (PyTorch 1.13's values)
      {"convT_outpad_beyond_stride",
       conv_transpose_fn({{1, 1}, {0, 0}, {2, 2}, 1, {3, 3}}),
       {x4, w4},
       tensor<double>({1, 2, 0, 2, 4,  0, 0,  3,  4, 0, 6, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 6, 0, 4,
                       8, 0, 0, 9, 12, 0, 12, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                      {1, 1, 7, 7})},
  };
  auto ref = [&](const std::string& name, const Shape& xs, const Shape& ws, bool bias, TransposeArgs p) {
    Tensor x = R(xs, -1, 1, 51), w = R(ws, -1, 1, 52);
    std::vector<Tensor> in{x, w};
    if (bias) in.push_back(R({ws[1] * p.groups}, -1, 1, 53));
    cases.push_back(
        {name, conv_transpose_fn(p), in, conv_transpose_reference(x, w, bias ? in[2] : Tensor(), p)});
  };
  ref("convT_groups2_stride2_pad1_outpad1_bias", {2, 4, 3, 3}, {4, 3, 3, 3}, true,
      {{2, 2}, {1, 1}, {1, 1}, 2});
  ref("convT_rect_asymmetric_dilated", {1, 2, 3, 4}, {2, 3, 2, 3}, false,
      {{2, 1}, {1, 0}, {1, 0}, 1, {1, 2}});
  ref("convT_depthwise", {1, 3, 3, 3}, {3, 1, 2, 2}, true, {{2, 2}, {0, 0}, {0, 0}, 3});
  ref("convT_pointwise", {2, 3, 2, 2}, {3, 2, 1, 1}, true, {});
  {
    Tensor x = R({2, 3, 3}, -1, 1, 54), w = R({2, 2, 3, 3}, -1, 1, 55);
    cases.push_back({"convT_unbatched",
                     conv_transpose_fn({{2, 2}, {1, 1}}),
                     {x, w},
                     conv_transpose_reference(x.unsqueeze(0), w, {}, {{2, 2}, {1, 1}}).squeeze(0)});
  }
  return with_gradgradcheck(cases);  // conv2d's adjoint pair: differentiable to any order
}
EMBER_OP_SUITE(ConvTranspose2d, conv_transpose_cases);

// conv_transpose2d is the adjoint of conv2d in its input: <conv2d(u, w), x> = <conv_transpose2d(x, w), u>.
TEST(ConvTranspose2d, IsTheAdjointOfConv2d) {
  const std::array<int64_t, 2> stride{2, 3}, padding{1, 2}, dilation{2, 1};
  Tensor w = R({6, 2, 3, 3}, -1, 1, 61, false);  // conv2d: 4 -> 6 channels in 2 groups
  Tensor u = R({2, 4, 9, 11}, -1, 1, 62, false);
  Tensor y = conv2d(u, w, {}, stride, padding, dilation, 2);
  Tensor x = R(y.shape(), -1, 1, 63, false);
  // the output_padding that gives back u's size
  std::array<int64_t, 2> output_padding{};
  for (int d = 0; d < 2; ++d)
    output_padding[d] =
        u.size(2 + d) - ((y.size(2 + d) - 1) * stride[d] - 2 * padding[d] + dilation[d] * 2 + 1);
  Tensor v = conv_transpose2d(x, w, {}, stride, padding, output_padding, 2, dilation);
  ASSERT_EQ(v.shape(), u.shape());
  EXPECT_NEAR((y * x).sum().item<double>(), (v * u).sum().item<double>(), 1e-10);
}

TEST(ConvTranspose2d, Errors) {
  Tensor x = ones({1, 4, 3, 3}), w = ones({4, 2, 3, 3});
  EMBER_EXPECT_THROW_MSG(
      conv_transpose2d(ones({4, 5}), w),
      "conv_transpose2d: expected input [N,C,H,W] (or unbatched [C,H,W]), got shape [4,5]");
  EMBER_EXPECT_THROW_MSG(
      conv_transpose2d(x, ones({4, 2, 3})),
      "conv_transpose2d: expected weight [in_channels, out_channels/groups, kH, kW], got shape "
      "[4,2,3]");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(x, ones({2, 2, 3, 3})),
                         "conv_transpose2d: input [1,4,3,3] has 4 channels, but weight [2,2,3,3] expects 2");
  EMBER_EXPECT_THROW_MSG(
      conv_transpose2d(ones({1, 3, 3, 3}), ones({3, 1, 1, 1}), {}, {1, 1}, {0, 0}, {0, 0}, 2),
      "conv_transpose2d: in_channels (3) must be divisible by groups (2)");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(x, w, {}, {1, 1}, {0, 0}, {0, 0}, 0),
                         "conv_transpose2d: groups must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(x, w, {}, {0, 1}),
                         "conv_transpose2d: stride must be positive, got [0,1]");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(x, w, {}, {1, 1}, {0, -1}),
                         "conv_transpose2d: padding must be non-negative, got [0,-1]");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(x, w, {}, {1, 1}, {0, 0}, {0, 0}, 1, {1, 0}),
                         "conv_transpose2d: dilation must be positive, got [1,0]");
  EMBER_EXPECT_THROW_MSG(
      conv_transpose2d(x, w, {}, {2, 2}, {0, 0}, {2, 0}),
      "conv_transpose2d: output_padding [2,0] must be non-negative and smaller than stride [2,2] "
      "or dilation [1,1]");
  EMBER_EXPECT_THROW_MSG(
      conv_transpose2d(x, w, {}, {1, 1}, {3, 3}),
      "conv_transpose2d: input [1,4,3,3] with stride [1,1], padding [3,3] and kernel [3,3] gives "
      "an empty output (size -1 in dim 2)");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(x, w, ones({4})),
                         "conv_transpose2d: bias must have shape [2] (out_channels), got [4]");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(x, ones({4, 2, 3, 3}, kFloat64)),
                         "conv_transpose2d: dtype mismatch: input float32, weight float64");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(ones({1, 4, 3, 3}, kInt64), ones({4, 2, 3, 3}, kInt64)),
                         "conv_transpose2d: expected floating-point tensors, got int64");
  EMBER_EXPECT_THROW_MSG(conv_transpose2d(Tensor(), w), "conv_transpose2d: input is an undefined tensor");
}

TEST(ConvTranspose2d, Float32AndBfloat16MatchFloat64) {
  Tensor x = R({2, 4, 5, 5}, -1, 1, 71, false), w = R({4, 3, 3, 3}, -1, 1, 72, false),
         b = R({3}, -1, 1, 73, false);
  Tensor ref = conv_transpose2d(x, w, b, {2, 2}, {1, 1}, {1, 1});
  Tensor f32 = conv_transpose2d(x.to(kFloat32), w.to(kFloat32), b.to(kFloat32), {2, 2}, {1, 1}, {1, 1});
  EXPECT_LT(relative_gap(f32, ref), 1e-6);
  Tensor bf = conv_transpose2d(x.to(DType::bfloat16), w.to(DType::bfloat16), b.to(DType::bfloat16), {2, 2},
                               {1, 1}, {1, 1});
  EXPECT_EQ(bf.dtype(), DType::bfloat16);
  EXPECT_LT(relative_gap(bf, ref), 2e-2);
}

std::vector<OpCase> pool_cases() {
  Tensor x16 = T({1, 5, 2, 7, 3, 6, 8, 4, 9, 16, 10, 11, 12, 13, 15, 14}, {1, 1, 4, 4});
  Tensor x9 = T({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor neg16 = T({-9, -8, -7, -6, -5, -2, -12, -3, -4, -10, -11, -1, -13, -14, -15, -16}, {1, 1, 4, 4});
  auto maxp = [](std::array<int64_t, 2> k, std::array<int64_t, 2> s = {0, 0},
                 std::array<int64_t, 2> p = {0, 0}) {
    return [=](const std::vector<Tensor>& in) { return max_pool2d(in[0], k, s, p); };
  };
  auto avgp = [](std::array<int64_t, 2> k, std::array<int64_t, 2> s = {0, 0},
                 std::array<int64_t, 2> p = {0, 0}) {
    return [=](const std::vector<Tensor>& in) { return avg_pool2d(in[0], k, s, p); };
  };
  auto adap = [](std::array<int64_t, 2> o) {
    return [=](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], o); };
  };
  return with_gradgradcheck({
      {"max_2x2", maxp({2, 2}), {x16}, tensor<double>({6, 8, 16, 15}, {1, 1, 2, 2})},
      // padding is -inf: with all-negative inputs no window's max is 0; the windows (clipped to the
      // input) are rows/cols {0,1} and {1,2,3}
      {"max_pad_is_minus_inf",
       maxp({3, 3}, {2, 2}, {1, 1}),
       {neg16},
       tensor<double>({-2, -2, -2, -1}, {1, 1, 2, 2})},
      // overlapping windows (stride 1): the centre 9 wins all four, so its gradient is 4
      {"max_overlapping",
       maxp({2, 2}, {1, 1}),
       {T({1, 2, 3, 4, 9, 5, 6, 7, 8}, {1, 1, 3, 3})},
       tensor<double>({9, 9, 9, 9}, {1, 1, 2, 2})},
      {"max_rect_unbatched",
       maxp({1, 2}),
       {T({1, 3, 2, 4, 8, 7, 6, 5}, {2, 2, 2})},
       tensor<double>({3, 4, 8, 6}, {2, 2, 1})},
      {"max_gradcheck", maxp({3, 2}, {2, 1}, {1, 1}), {R({2, 2, 5, 4})}, Tensor()},
      // 2x2 / stride 2 (the fast path) on odd sizes: the last row and column are in no window, so
      // the 9s there never win; blocks {3,1,2,7} and {8,5,0,4}
      {"max_2x2_odd_sizes",
       maxp({2, 2}),
       {T({3, 1, 9, 2, 7, 4, 8, 5, 6, 0, 4, 1, 9, 9, 9}, {1, 1, 5, 3})},
       tensor<double>({7, 8}, {1, 1, 2, 1})},
      {"max_2x2_gradcheck_odd_sizes", maxp({2, 2}), {R({2, 3, 5, 7}, -1, 1, 46)}, Tensor()},
      // kernel 2 with padding 1 is not the fast path: windows rows/cols {0} and {1,2}
      {"max_2x2_padded", maxp({2, 2}, {2, 2}, {1, 1}), {x9}, tensor<double>({1, 3, 7, 9}, {1, 1, 2, 2})},
      {"avg_2x2",
       avgp({2, 2}),
       {T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4})},
       tensor<double>({3.5, 5.5, 11.5, 13.5}, {1, 1, 2, 2})},
      // count_include_pad: the corner window holds only x[0,0] = 1 but still divides by 4
      {"avg_pad_counts_padding",
       avgp({2, 2}, {2, 2}, {1, 1}),
       {x9},
       tensor<double>({0.25, 1.25, 2.75, 7}, {1, 1, 2, 2})},
      {"avg_gradcheck", avgp({3, 2}, {1, 2}, {1, 1}), {R({2, 2, 4, 5})}, Tensor()},
      // windows [0,2) and [1,3) in each dim
      {"adaptive_3_to_2", adap({2, 2}), {x9}, tensor<double>({3, 4, 6, 7}, {1, 1, 2, 2})},
      {"adaptive_global", adap({1, 1}), {x9}, tensor<double>({5}, {1, 1, 1, 1})},
      // upsampling: windows [0,1) [0,2) [1,2) [1,3) [2,3)
      {"adaptive_3_to_5",
       adap({1, 5}),
       {T({1, 2, 3}, {1, 1, 1, 3})},
       tensor<double>({1, 1.5, 2, 2.5, 3}, {1, 1, 1, 5})},
      {"adaptive_gradcheck", adap({3, 2}), {R({2, 2, 5, 7})}, Tensor()},
  });
}
EMBER_OP_SUITE(Pool, pool_cases);

// conv2d of random float64 x [xs], w [ws] and a bias against the loop reference, forward and all
// three gradients, on 1 and 2 threads.
void expect_matches_loop_reference(const std::string& label, const Shape& xs, const Shape& ws, ConvArgs p) {
  manual_seed(9);
  Tensor x = randn(xs, kFloat64), w = randn(ws, kFloat64), b = randn({ws[0]}, kFloat64);
  NaiveConv ref(x, w, b, p);
  Tensor expected = ref.forward();
  Tensor g = randn(expected.shape(), kFloat64);
  auto [dx_ref, dw_ref] = ref.backward(g);
  const int threads = get_num_threads();
  for (int t : {1, 2}) {
    set_num_threads(t);
    SCOPED_TRACE(label + ", " + std::to_string(t) + " threads");
    Tensor xr = x.clone().requires_grad_(), wr = w.clone().requires_grad_(), br = b.clone().requires_grad_();
    Tensor out = conv2d(xr, wr, br, p.stride, p.padding, p.dilation, p.groups);
    EXPECT_TRUE(tensors_close(out, expected, 1e-12));
    out.backward(g);
    EXPECT_TRUE(tensors_close(xr.grad(), dx_ref, 1e-12));
    EXPECT_TRUE(tensors_close(wr.grad(), dw_ref, 1e-12));
    EXPECT_TRUE(tensors_close(br.grad(), g.sum({0, 2, 3}), 1e-12));
  }
  set_num_threads(threads);
}

TEST(Conv2d, BackwardMatchesLoopReferenceAcrossThreads) {
  // Big enough to split the batch across threads (per-thread column buffers and dW partials).
  expect_matches_loop_reference("grouped", {8, 6, 11, 10}, {8, 3, 3, 2}, {{2, 1}, {1, 2}, {1, 2}, 2});
}

// im2col and col2im have loops for horizontal strides 1 and 2 and a generic one (ops/cpu/conv.cpp):
// each with padding, dilation, groups and a pointwise kernel.
TEST(Conv2d, EveryHorizontalStrideMatchesLoopReference) {
  expect_matches_loop_reference("stride 1", {5, 4, 6, 7}, {6, 4, 3, 2}, {{1, 1}, {1, 2}, {2, 1}});
  expect_matches_loop_reference("stride 2", {5, 4, 6, 7}, {6, 4, 3, 3}, {{2, 2}, {1, 1}});
  expect_matches_loop_reference("stride 3", {5, 4, 7, 8}, {6, 4, 3, 4}, {{1, 3}, {1, 2}, {1, 2}});
  expect_matches_loop_reference("stride 2, groups 2", {5, 4, 5, 4}, {6, 2, 2, 3},
                                {{1, 2}, {0, 1}, {1, 1}, 2});
  expect_matches_loop_reference("pointwise, stride 2", {5, 4, 5, 5}, {5, 4, 1, 1}, {{2, 2}});
}

// Winograd F(2x2, 3x3) (ops/cpu/conv_winograd.h) against the loop reference: forward and both
// gradients, every padding it takes, odd and even output sizes (partial tiles), several image
// blocks (the last one short), on 1 and 2 threads.
TEST(Conv2d, WinogradMatchesLoopReference) {
  const detail::Conv2dAlgorithmScope winograd(detail::Conv2dAlgorithm::winograd);
  struct Case {
    Shape x;
    int64_t out_channels;
    std::array<int64_t, 2> padding;
  };
  const Case cases[] = {
      {{3, 8, 7, 6}, 9, {0, 0}},  {{3, 8, 7, 6}, 8, {1, 1}}, {{2, 9, 5, 4}, 8, {2, 1}},
      {{2, 8, 3, 3}, 10, {0, 2}}, {{2, 8, 5, 4}, 9, {3, 4}},  // padding beyond the kernel's reach
      {{5, 8, 30, 31}, 8, {1, 1}}};                           // 240 tiles per image: 2 images per block
  const int threads = get_num_threads();
  manual_seed(11);
  for (const Case& c : cases) {
    const ConvArgs p{{1, 1}, c.padding};
    Tensor x = randn(c.x, kFloat64), w = randn({c.out_channels, c.x[1], 3, 3}, kFloat64);
    Tensor b = randn({c.out_channels}, kFloat64);
    NaiveConv ref(x, w, b, p);
    Tensor expected = ref.forward();
    Tensor g = randn(expected.shape(), kFloat64);
    auto [dx_ref, dw_ref] = ref.backward(g);
    for (int t : {1, 2}) {
      set_num_threads(t);
      Tensor xr = x.clone().requires_grad_(), wr = w.clone().requires_grad_();
      Tensor out = conv2d(xr, wr, b, p.stride, p.padding);
      const std::string where = fmt::format("x {} padding {} on {} threads", shape_str(c.x), c.padding[0], t);
      EXPECT_TRUE(tensors_close(out, expected, 1e-12)) << where;
      out.backward(g);
      EXPECT_TRUE(tensors_close(xr.grad(), dx_ref, 1e-12)) << where;
      EXPECT_TRUE(tensors_close(wr.grad(), dw_ref, 1e-12)) << where;
    }
  }
  set_num_threads(threads);
}

// gradcheck through Winograd's three kernels (an odd output width: a partial tile; padding 2 in
// height and 0 in width).
TEST(Conv2d, WinogradGradcheck) {
  const detail::Conv2dAlgorithmScope winograd(detail::Conv2dAlgorithm::winograd);
  EXPECT_TRUE(passes_gradcheck(conv_fn({{1, 1}, {1, 1}}),
                               {R({2, 8, 4, 5}, -1, 1, 47), R({8, 8, 3, 3}, -1, 1, 48), R({8}, -1, 1, 49)}));
  EXPECT_TRUE(
      passes_gradcheck(conv_fn({{1, 1}, {2, 0}}), {R({1, 8, 3, 6}, -1, 1, 50), R({9, 8, 3, 3}, -1, 1, 51)}));
}

// By default Winograd runs where it pays (WinogradShape::pays: 512 tiles in the batch at least)
// and im2col elsewhere; the results show which ran, bit for bit.
TEST(Conv2d, WinogradByDefaultOnlyWhereItPays) {
  using detail::Conv2dAlgorithm;
  manual_seed(13);
  auto run = [](const Tensor& x, const Tensor& w, Conv2dAlgorithm algorithm) {
    const detail::Conv2dAlgorithmScope scope(algorithm);
    return conv2d(x, w, {}, {1, 1}, {1, 1});
  };
  Tensor w = randn({8, 8, 3, 3});
  Tensor big = randn({8, 8, 16, 16}), small = randn({7, 8, 16, 16});  // 512 and 448 tiles
  EXPECT_TRUE(equal(run(big, w, Conv2dAlgorithm::automatic), run(big, w, Conv2dAlgorithm::winograd)));
  EXPECT_FALSE(equal(run(big, w, Conv2dAlgorithm::automatic), run(big, w, Conv2dAlgorithm::im2col)));
  EXPECT_TRUE(equal(run(small, w, Conv2dAlgorithm::automatic), run(small, w, Conv2dAlgorithm::im2col)));
  EXPECT_FALSE(equal(run(small, w, Conv2dAlgorithm::automatic), run(small, w, Conv2dAlgorithm::winograd)));
}

// The switch really changes the path: in float32 Winograd rounds differently from im2col + GEMM
// (so the results differ in their last bits), and both are within float32 error of float64.
TEST(Conv2d, WinogradIsTakenAndAgreesWithIm2col) {
  manual_seed(12);
  Tensor x = randn({2, 16, 10, 10}), w = randn({12, 16, 3, 3}), b = randn({12});
  Tensor g = randn({2, 12, 10, 10});
  auto run = [&](detail::Conv2dAlgorithm algorithm) {
    const detail::Conv2dAlgorithmScope scope(algorithm);
    Tensor xr = x.clone().requires_grad_(), wr = w.clone().requires_grad_();
    Tensor out = conv2d(xr, wr, b, {1, 1}, {1, 1});
    out.backward(g);
    return std::array<Tensor, 3>{out, xr.grad(), wr.grad()};
  };
  const auto fast = run(detail::Conv2dAlgorithm::winograd), im2col = run(detail::Conv2dAlgorithm::im2col);
  NaiveConv ref(x, w, b, {{1, 1}, {1, 1}});
  auto [dx_ref, dw_ref] = ref.backward(g.to(kFloat64));
  const Tensor expected[3] = {ref.forward(), dx_ref, dw_ref};
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(equal(fast[i], im2col[i])) << "output " << i << ": the same bits, so the same path";
    EXPECT_TRUE(tensors_close(fast[i].to(kFloat64), expected[i], 1e-4)) << "output " << i;
    EXPECT_TRUE(tensors_close(im2col[i].to(kFloat64), expected[i], 1e-4)) << "output " << i;
  }
}

// The weight gradient sums per-thread partials; they are added in a fixed order, so with a given
// number of threads every run gives the same bits (threads finish in any order, and float32
// addition is not associative: adding each partial as its thread finished changed the result in
// about half the runs on 3 threads). Both algorithms, on 3 and 4 threads (more than this
// machine's cores, so finishing orders vary).
TEST(Conv2d, WeightGradientIsReproducibleOnManyThreads) {
  using detail::Conv2dAlgorithm;
  manual_seed(14);
  Tensor x = randn({400, 8, 6, 6}), w = randn({8, 8, 3, 3}), g = randn({400, 8, 6, 6});
  const int threads = get_num_threads();
  for (Conv2dAlgorithm algorithm : {Conv2dAlgorithm::winograd, Conv2dAlgorithm::im2col})
    for (int t : {3, 4}) {
      const detail::Conv2dAlgorithmScope scope(algorithm);
      set_num_threads(t);
      auto weight_gradient = [&] {
        Tensor wr = w.clone().requires_grad_();
        conv2d(x, wr, {}, {1, 1}, {1, 1}).backward(g);
        return wr.grad();
      };
      const Tensor first = weight_gradient();
      for (int run = 0; run < 20; ++run)
        ASSERT_TRUE(equal(weight_gradient(), first))
            << "run " << run << " on " << t << " threads, algorithm " << static_cast<int>(algorithm);
    }
  set_num_threads(threads);
}

TEST(Conv2d, Float32MatchesFloat64) {
  manual_seed(10);
  Tensor x = randn({4, 8, 9, 9}), w = randn({16, 8, 3, 3}), b = randn({16});
  Tensor out = conv2d(x, w, b, {1, 1}, {1, 1});
  EXPECT_TRUE(tensors_close(out.to(kFloat64), NaiveConv(x, w, b, {{1, 1}, {1, 1}}).forward(), 1e-4));
}

TEST(Conv2d, NonContiguousInputs) {
  Tensor x = R({1, 2, 4, 5}), w = R({3, 2, 2, 2});
  Tensor xt = x.detach().transpose(2, 3).contiguous().transpose(2, 3);  // same values, other layout
  ASSERT_FALSE(xt.is_contiguous());
  EXPECT_TRUE(tensors_close(conv2d(xt, w), NaiveConv(x, w, {}, {}).forward(), 1e-12));
}

TEST(Conv2d, EmptyBatch) {
  Tensor x = zeros({0, 2, 5, 5}, kFloat64).requires_grad_(), w = R({3, 2, 3, 3}), b = R({3});
  Tensor out = conv2d(x, w, b);
  EXPECT_EQ(out.shape(), (Shape{0, 3, 3, 3}));
  out.sum().backward();
  EXPECT_TRUE(tensors_close(w.grad(), zeros({3, 2, 3, 3}, kFloat64), 0));
  EXPECT_TRUE(tensors_close(b.grad(), zeros({3}, kFloat64), 0));
}

TEST(Conv2d, Errors) {
  Tensor x = ones({1, 4, 5, 5}), w = ones({8, 2, 3, 3});
  EMBER_EXPECT_THROW_MSG(conv2d(ones({4, 5}), w),
                         "conv2d: expected input [N,C,H,W] (or unbatched [C,H,W]), got shape [4,5]");
  EMBER_EXPECT_THROW_MSG(
      conv2d(x, ones({8, 4, 3})),
      "conv2d: expected weight [out_channels, in_channels/groups, kH, kW], got shape [8,4,3]");
  EMBER_EXPECT_THROW_MSG(
      conv2d(x, w), "conv2d: input [1,4,5,5] has 4 channels, but weight [8,2,3,3] with groups=1 expects 2");
  EMBER_EXPECT_THROW_MSG(conv2d(x, ones({6, 1, 3, 3}), {}, {1, 1}, {0, 0}, {1, 1}, 4),
                         "conv2d: out_channels (6) must be divisible by groups (4)");
  EMBER_EXPECT_THROW_MSG(conv2d(x, w, {}, {1, 1}, {0, 0}, {1, 1}, 0),
                         "conv2d: groups must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(conv2d(x, w, {}, {0, 1}, {0, 0}, {1, 1}, 2),
                         "conv2d: stride must be positive, got [0,1]");
  EMBER_EXPECT_THROW_MSG(conv2d(x, w, {}, {1, 1}, {-1, 0}, {1, 1}, 2),
                         "conv2d: padding must be non-negative, got [-1,0]");
  EMBER_EXPECT_THROW_MSG(conv2d(x, w, {}, {1, 1}, {0, 0}, {0, 1}, 2),
                         "conv2d: dilation must be positive, got [0,1]");
  EMBER_EXPECT_THROW_MSG(conv2d(x, w, {}, {1, 1}, {0, 0}, {3, 3}, 2),
                         "conv2d: input [1,4,5,5] padded by [0,0] is smaller than the kernel [3,3] dilated "
                         "by [3,3] (size 7 in dim 2)");
  EMBER_EXPECT_THROW_MSG(conv2d(x, w, ones({4}), {1, 1}, {0, 0}, {1, 1}, 2),
                         "conv2d: bias must have shape [8] (out_channels), got [4]");
  EMBER_EXPECT_THROW_MSG(conv2d(x, ones({8, 2, 3, 3}, kFloat64), {}, {1, 1}, {0, 0}, {1, 1}, 2),
                         "conv2d: dtype mismatch: input float32, weight float64");
  EMBER_EXPECT_THROW_MSG(
      conv2d(ones({1, 4, 5, 5}, kInt64), ones({8, 2, 3, 3}, kInt64), {}, {1, 1}, {0, 0}, {1, 1}, 2),
      "conv2d: expected floating-point tensors, got int64");
  EMBER_EXPECT_THROW_MSG(conv2d(Tensor(), w), "conv2d: input is an undefined tensor");
}

TEST(Pool, MaxPoolGradientGoesToTheArgmax) {
  Tensor x = T({1, 2, 3, 4, 9, 5, 6, 7, 8}, {1, 1, 3, 3});
  max_pool2d(x, {2, 2}, {1, 1}).sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), tensor<double>({0, 0, 0, 0, 4, 0, 0, 0, 0}, {1, 1, 3, 3}), 0));
}

TEST(Pool, MaxPoolPropagatesNaNAndWorksOnIntegers) {
  Tensor x = tensor<float>({1, NAN, 3, 4}, {1, 1, 2, 2});
  EXPECT_TRUE(std::isnan(max_pool2d(x, {2, 2}).item<float>()));
  Tensor xi = tensor<int64_t>({3, -7, 12, 5}, {1, 1, 2, 2});
  Tensor yi = max_pool2d(xi, {1, 2});
  EXPECT_EQ(yi.dtype(), kInt64);
  EXPECT_EQ(yi.to_vector<int64_t>(), (std::vector<int64_t>{3, 12}));
}

TEST(Pool, MaxPool2x2TiesGoToTheFirstAndNaNToTheLast) {
  // Ties keep the first pixel in row-major order; NaN beats everything, and a later NaN beats an
  // earlier one (PyTorch's rule). Plane 2 is int64, which has no NaN.
  Tensor x = tensor<float>({5, 5, 5, 5, 1, 2, 2, 1, 1, NAN, 3, NAN}, {1, 3, 2, 2}).requires_grad_();
  Tensor y = max_pool2d(x, {2, 2});
  std::vector<float> v = y.to_vector<float>();
  EXPECT_EQ(v[0], 5);
  EXPECT_EQ(v[1], 2);
  EXPECT_TRUE(std::isnan(v[2]));
  y.sum().backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}));
  Tensor xi = tensor<int64_t>({3, -7, 12, 5, -1, -2, -3, -4}, {2, 2, 2});
  EXPECT_EQ(max_pool2d(xi, {2, 2}).to_vector<int64_t>(), (std::vector<int64_t>{12, -1}));
}

TEST(Pool, MaxPool2x2MatchesStridedMaximumOnOddSizes) {
  // Big enough to run planes in parallel; odd H and W leave a row and a column out of every window.
  manual_seed(12);
  Tensor x = randn({4, 16, 23, 17}).requires_grad_();
  Tensor y = max_pool2d(x, {2, 2});
  ASSERT_EQ(y.shape(), (Shape{4, 16, 11, 8}));
  auto tap = [&](int64_t r, int64_t c) { return x.detach().slice(2, r, 22, 2).slice(3, c, 16, 2); };
  EXPECT_TRUE(tensors_close(y, maximum(maximum(tap(0, 0), tap(0, 1)), maximum(tap(1, 0), tap(1, 1))), 0));
  // The gradient of sum(y) is 1 at each window's argmax (where x equals the window's max), 0 elsewhere.
  y.sum().backward();
  Tensor winners = zeros_like(x.detach());
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 2; ++c)
      winners.slice(2, r, 22, 2).slice(3, c, 16, 2).copy_(eq(tap(r, c), y.detach()).to(kFloat32));
  EXPECT_TRUE(tensors_close(x.grad(), winners, 0));
}

TEST(Pool, AvgPoolGradientIncludesPaddingInTheCount) {
  Tensor x = T({1, 2, 3, 4}, {1, 1, 2, 2});
  // kernel 2, stride 2, padding 1 on 2x2: each input pixel is alone in a window that divides by 4
  avg_pool2d(x, {2, 2}, {2, 2}, {1, 1}).sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), full({1, 1, 2, 2}, 0.25, kFloat64), 0));
}

TEST(Pool, LargerInputsRunInParallel) {
  manual_seed(11);
  Tensor x = randn({8, 16, 32, 32}, kFloat64);
  Tensor y = avg_pool2d(x, {2, 2});
  // avg pool over 2x2 blocks equals the mean of the four strided sub-grids
  Tensor expected = (x.slice(2, 0, 32, 2).slice(3, 0, 32, 2) + x.slice(2, 1, 32, 2).slice(3, 0, 32, 2) +
                     x.slice(2, 0, 32, 2).slice(3, 1, 32, 2) + x.slice(2, 1, 32, 2).slice(3, 1, 32, 2)) /
                    4.0;
  EXPECT_TRUE(tensors_close(y, expected, 1e-12));
  EXPECT_TRUE(tensors_close(adaptive_avg_pool2d(x, {16, 16}), expected, 1e-12));
  Tensor m = max_pool2d(x, {2, 2});
  Tensor expected_max =
      maximum(maximum(x.slice(2, 0, 32, 2).slice(3, 0, 32, 2), x.slice(2, 1, 32, 2).slice(3, 0, 32, 2)),
              maximum(x.slice(2, 0, 32, 2).slice(3, 1, 32, 2), x.slice(2, 1, 32, 2).slice(3, 1, 32, 2)));
  EXPECT_TRUE(tensors_close(m, expected_max, 0));
}

TEST(Pool, Errors) {
  Tensor x = ones({1, 1, 4, 4});
  EMBER_EXPECT_THROW_MSG(max_pool2d(ones({4, 4}), {2, 2}),
                         "max_pool2d: expected input [N,C,H,W] or [C,H,W], got shape [4,4]");
  EMBER_EXPECT_THROW_MSG(max_pool2d(x, {0, 2}), "max_pool2d: kernel size must be positive, got [0,2]");
  EMBER_EXPECT_THROW_MSG(max_pool2d(x, {2, 2}, {-1, 1}),
                         "max_pool2d: stride must be positive (or 0 for the kernel size), got [-1,1]");
  EMBER_EXPECT_THROW_MSG(
      max_pool2d(x, {2, 2}, {0, 0}, {2, 0}),
      "max_pool2d: padding [2,0] must be non-negative and at most half the kernel size [2,2]");
  EMBER_EXPECT_THROW_MSG(avg_pool2d(x, {5, 2}),
                         "avg_pool2d: input [1,1,4,4] padded by [0,0] is smaller than the kernel [5,2]");
  EMBER_EXPECT_THROW_MSG(avg_pool2d(ones({1, 1, 4, 4}, kInt64), {2, 2}),
                         "avg_pool2d: expected a floating-point tensor, got int64");
  EMBER_EXPECT_THROW_MSG(max_pool2d(ones({1, 1, 4, 4}, kBool), {2, 2}),
                         "max_pool2d: expected a numeric tensor, got bool");
  EMBER_EXPECT_THROW_MSG(adaptive_avg_pool2d(x, {0, 2}),
                         "adaptive_avg_pool2d: output size must be positive, got [0,2]");
  EMBER_EXPECT_THROW_MSG(adaptive_avg_pool2d(ones({1, 1, 0, 4}), {1, 1}),
                         "adaptive_avg_pool2d: input [1,1,0,4] has an empty spatial dim");
}

}  // namespace
}  // namespace ember::testing
