// CPU conv2d: im2col + GEMM.
//
// im2col unrolls one image into a matrix `col` of shape [C*kh*kw, Ho*Wo]: row (c, a, b) holds,
// for every output position (i, j), the input pixel that kernel tap (a, b) of channel c sees
// there (0 in the padding). The convolution of that image is then one GEMM per group:
//     out_n[g] [O/G, Ho*Wo] = w[g] [O/G, C/G*kh*kw] @ col[g] [C/G*kh*kw, Ho*Wo]
// and the backward passes are the two other products of the same three matrices:
//     dcol[g] = w[g]^T @ dout_n[g]   then col2im (the adjoint of im2col: scatter-add) into dx_n
//     dw[g]  += dout_n[g] @ col[g]^T  summed over the batch
// Images are processed in parallel, each thread with its own column buffer (and, for dw, its own
// partial sum); BLAS runs single-threaded inside that parallel region. A 1x1 kernel with stride 1
// and no padding needs no im2col at all: col is the image itself. 3x3 stride-1 convolutions with
// enough channels go to Winograd F(2x2, 3x3) instead (conv_winograd.h): 2.25x fewer multiplications.
#include "ops/kernels/conv.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/conv_testing.h"
#include "ops/cpu/blas.h"
#include "ops/cpu/conv_winograd.h"

namespace ember {
detail::Conv2dAlgorithm& detail::conv2d_algorithm() {
  static Conv2dAlgorithm algorithm = Conv2dAlgorithm::automatic;
  return algorithm;
}
}  // namespace ember

namespace ember::cpu {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct ConvShape {
  int64_t n, c, h, w, o, kh, kw, oh, ow, groups;
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t cg() const { return c / groups; }
  int64_t og() const { return o / groups; }
  int64_t cols() const { return oh * ow; }           // columns of the col matrix (output pixels)
  int64_t rows_g() const { return cg() * kh * kw; }  // rows of one group's block of col
  int64_t rows() const { return c * kh * kw; }
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  // Multiply-adds of one image, to size the parallel grain.
  int64_t work_per_image() const { return o * cols() * rows_g(); }
  // Winograd needs a 3x3 stride-1 kernel, and by default a shape where it pays off.
  bool winograd() const {
    using detail::Conv2dAlgorithm;
    const Conv2dAlgorithm algorithm = detail::conv2d_algorithm();
    return algorithm != Conv2dAlgorithm::im2col && kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 &&
           dw == 1 && groups == 1 && (algorithm == Conv2dAlgorithm::winograd || winograd_shape().pays());
  }
  WinogradShape winograd_shape() const { return {n, c, h, w, o, ph, pw}; }
};

ConvShape conv_shape(const Tensor& x, const Tensor& w, const Tensor& out, const Conv2dParams& p) {
  return ConvShape{x.size(0),    x.size(1),    x.size(2),     x.size(3),    w.size(0),   w.size(2),
                   w.size(3),    out.size(2),  out.size(3),   p.groups,     p.stride[0], p.stride[1],
                   p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]};
}

// For kernel column b: the output columns j whose input column j*sw - pw + b*dw lies inside
// [0, W) form the range [lo, hi).
struct ColRange {
  int64_t lo, hi, offset;  // offset = b*dw - pw, so the input column is j*sw + offset
};
ColRange valid_cols(const ConvShape& s, int64_t b) {
  int64_t offset = b * s.dw - s.pw;
  int64_t lo = std::max<int64_t>(0, -floor_div(offset, s.sw));  // ceil(-offset / sw)
  int64_t hi = std::min<int64_t>(s.ow, floor_div(s.w - 1 - offset, s.sw) + 1);
  return {lo, std::max(lo, hi), offset};
}
// The ranges of every kernel column: the same for every channel and kernel row, so computed once
// per image rather than once per row of col (two divisions each, 6% of a stride-2 layer's time).
std::vector<ColRange> col_ranges(const ConvShape& s) {
  std::vector<ColRange> ranges(static_cast<size_t>(s.kw));
  for (int64_t b = 0; b < s.kw; ++b) ranges[static_cast<size_t>(b)] = valid_cols(s, b);
  return ranges;
}

// Calls row_op(c, col_row, ih, range) for every (channel c, kernel tap (a, b), output row i): the
// loop nest im2col and col2im share. col_row holds the ow columns of output row i in col's row
// (c, a, b), ih = i*sh - ph + a*dh is the input row they read (it may lie in the padding), and
// range is kernel column b's valid output columns.
template <class T, class RowOp>
void for_each_col_row(const ConvShape& s, T* col, const RowOp& row_op) {
  const std::vector<ColRange> ranges = col_ranges(s);
  for (int64_t c = 0; c < s.c; ++c)
    for (int64_t a = 0; a < s.kh; ++a)
      for (int64_t b = 0; b < s.kw; ++b) {
        T* row = col + ((c * s.kh + a) * s.kw + b) * s.cols();
        for (int64_t i = 0; i < s.oh; ++i)
          row_op(c, row + i * s.ow, i * s.sh - s.ph + a * s.dh, ranges[static_cast<size_t>(b)]);
      }
}

// im2col and col2im for a horizontal stride known at compile time (1 and 2, the usual ones, let
// the compiler vectorise the strided reads and writes; 0 means "read it from the shape"). Stride
// 2 through the generic loop spent more time here than in its GEMMs.
template <int64_t kStride, class T>
void im2col_strided(const ConvShape& s, const T* x, T* col) {
  const int64_t sw = kStride > 0 ? kStride : s.sw, ow = s.ow, h = s.h, w = s.w;
  for_each_col_row(s, col, [&](int64_t c, T* dst, int64_t ih, const ColRange& r) {
    if (ih < 0 || ih >= h) {
      std::fill(dst, dst + ow, T(0));
      return;
    }
    const T* src = x + (c * h + ih) * w + r.offset;  // column j reads src[j*sw]
    std::fill(dst, dst + r.lo, T(0));
    for (int64_t j = r.lo; j < r.hi; ++j) dst[j] = src[j * sw];
    std::fill(dst + r.hi, dst + ow, T(0));
  });
}

// The adjoint: every column entry is added back onto the pixel it was read from. dx must be zeroed
// first; entries that came from the padding are dropped.
template <int64_t kStride, class T>
void col2im_strided(const ConvShape& s, const T* col, T* dx) {
  const int64_t sw = kStride > 0 ? kStride : s.sw, h = s.h, w = s.w;
  for_each_col_row(s, col, [&](int64_t c, const T* src, int64_t ih, const ColRange& r) {
    if (ih < 0 || ih >= h) return;
    T* dst = dx + (c * h + ih) * w + r.offset;  // column j lands on dst[j*sw]
    for (int64_t j = r.lo; j < r.hi; ++j) dst[j * sw] += src[j];
  });
}

// im2col unrolls one image into col (see the top of the file); col2im is its adjoint.
template <class T>
void im2col(const ConvShape& s, const T* x, T* col) {
  if (s.sw == 1) return im2col_strided<1>(s, x, col);
  if (s.sw == 2) return im2col_strided<2>(s, x, col);
  im2col_strided<0>(s, x, col);
}
template <class T>
void col2im(const ConvShape& s, const T* col, T* dx) {
  if (s.sw == 1) return col2im_strided<1>(s, col, dx);
  if (s.sw == 2) return col2im_strided<2>(s, col, dx);
  col2im_strided<0>(s, col, dx);
}

// Runs body(n, col_buffer) for every image n, in parallel over images; each worker has its own
// buffer for one image's col matrix. Workers take the next image from a shared counter rather than a
// fixed half of the batch each: on a machine shared with other work one thread is often slowed down,
// and with fixed halves the other would then wait for it. Each image's output depends on that image
// alone, so the results do not depend on which worker ran it.
template <class T, class Body>
void for_each_image(const ConvShape& s, bool needs_col, const Body& body) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(1, s.work_per_image()));
  const int64_t workers = std::min<int64_t>(get_num_threads(), (s.n + grain - 1) / grain);
  std::atomic<int64_t> next{0};
  parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<T> col(needs_col ? s.rows() * s.cols() : 0);
    for (int64_t n = next++; n < s.n; n = next++) body(n, col.data());
  });
}

template <class T>
void forward(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const ConvShape s = conv_shape(x, w, out, p);
  const int m = blas_int(s.og(), "conv2d", "out_channels"), n = blas_int(s.cols(), "conv2d", "output pixels");
  const int k = blas_int(s.rows_g(), "conv2d", "in_channels*kh*kw");
  const T* xp = static_cast<const T*>(x.raw_data());
  const T* wp = static_cast<const T*>(w.raw_data());
  const T* bp = bias.defined() ? static_cast<const T*>(bias.raw_data()) : nullptr;
  T* op = static_cast<T*>(out.raw_data());
  if (s.winograd()) return winograd_forward<T>(s.winograd_shape(), xp, wp, bp, op);
  for_each_image<T>(s, !s.pointwise(), [&](int64_t img, T* col_buffer) {
    const T* xn = xp + img * s.c * s.h * s.w;
    T* on = op + img * s.o * s.cols();
    const T* col = xn;  // pointwise: the image is its own col matrix
    if (!s.pointwise()) {
      im2col(s, xn, col_buffer);
      col = col_buffer;
    }
    // Start from the bias so the GEMM can accumulate onto it (beta = 1).
    for (int64_t o = 0; o < s.o; ++o)
      std::fill(on + o * s.cols(), on + (o + 1) * s.cols(), bp ? bp[o] : T(0));
    for (int64_t g = 0; g < s.groups; ++g)
      blas_gemm<T>(false, false, m, n, k, T(1), wp + g * s.og() * s.rows_g(), k,
                   col + g * s.rows_g() * s.cols(), n, T(1), on + g * s.og() * s.cols(), n);
  });
}

template <class T>
void backward_input(const Tensor& grad_x, const Tensor& grad_out, const Tensor& w, const Conv2dParams& p) {
  const ConvShape s = conv_shape(grad_x, w, grad_out, p);
  const int m = blas_int(s.rows_g(), "conv2d", "in_channels*kh*kw"),
            n = blas_int(s.cols(), "conv2d", "output pixels");
  const int k = blas_int(s.og(), "conv2d", "out_channels");
  const T* gp = static_cast<const T*>(grad_out.raw_data());
  const T* wp = static_cast<const T*>(w.raw_data());
  T* dxp = static_cast<T*>(grad_x.raw_data());
  if (s.winograd()) return winograd_backward_input<T>(s.winograd_shape(), gp, wp, dxp);
  for_each_image<T>(s, !s.pointwise(), [&](int64_t img, T* col) {
    const T* gn = gp + img * s.o * s.cols();
    T* dxn = dxp + img * s.c * s.h * s.w;
    T* dcol = s.pointwise() ? dxn : col;  // pointwise: the column gradient is the image gradient
    for (int64_t g = 0; g < s.groups; ++g)
      blas_gemm<T>(true, false, m, n, k, T(1), wp + g * s.og() * s.rows_g(), m, gn + g * s.og() * s.cols(), n,
                   T(0), dcol + g * s.rows_g() * s.cols(), n);
    if (!s.pointwise()) {
      std::fill(dxn, dxn + s.c * s.h * s.w, T(0));
      col2im(s, dcol, dxn);
    }
  });
}

template <class T>
void backward_weight(const Tensor& grad_w, const Tensor& grad_out, const Tensor& x, const Conv2dParams& p) {
  const ConvShape s = conv_shape(x, grad_w, grad_out, p);
  const int m = blas_int(s.og(), "conv2d", "out_channels"),
            n = blas_int(s.rows_g(), "conv2d", "in_channels*kh*kw");
  const int k = blas_int(s.cols(), "conv2d", "output pixels");
  const T* gp = static_cast<const T*>(grad_out.raw_data());
  const T* xp = static_cast<const T*>(x.raw_data());
  T* dwp = static_cast<T*>(grad_w.raw_data());
  if (s.winograd()) return winograd_backward_weight<T>(s.winograd_shape(), gp, xp, dwp);
  const int64_t dw_numel = s.o * s.rows_g();
  std::fill(dwp, dwp + dw_numel, T(0));
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(1, s.work_per_image()));
  // Each worker sums its images' contributions into a private buffer; the buffers are added to
  // grad_w in a fixed order.
  auto sum_images = [&](int64_t begin, int64_t end, T* partial) {
    std::vector<T> col(s.pointwise() ? 0 : s.rows() * s.cols());
    for (int64_t img = begin; img < end; ++img) {
      const T* xn = xp + img * s.c * s.h * s.w;
      const T* cn = xn;
      if (!s.pointwise()) {
        im2col(s, xn, col.data());
        cn = col.data();
      }
      const T* gn = gp + img * s.o * s.cols();
      for (int64_t g = 0; g < s.groups; ++g)
        blas_gemm<T>(false, true, m, n, k, T(1), gn + g * s.og() * s.cols(), k,
                     cn + g * s.rows_g() * s.cols(), k, T(1), partial + g * s.og() * s.rows_g(), n);
    }
  };
  parallel_for_sum(int64_t{0}, s.n, grain, dwp, static_cast<size_t>(dw_numel), sum_images);
}

void forward_cpu(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                 const Conv2dParams& p) {
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() { forward<T>(out, x, w, bias, p); });
}
void backward_input_cpu(const Tensor& grad_x, const Tensor& grad_out, const Tensor& w,
                        const Conv2dParams& p) {
  dispatch_floating(w.dtype(), "conv2d", [&]<class T>() { backward_input<T>(grad_x, grad_out, w, p); });
}
void backward_weight_cpu(const Tensor& grad_w, const Tensor& grad_out, const Tensor& x,
                         const Conv2dParams& p) {
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() { backward_weight<T>(grad_w, grad_out, x, p); });
}

}  // namespace
EMBER_REGISTER_KERNEL(conv2d_forward_stub, cpu, &forward_cpu);
EMBER_REGISTER_KERNEL(conv2d_backward_input_stub, cpu, &backward_input_cpu);
EMBER_REGISTER_KERNEL(conv2d_backward_weight_stub, cpu, &backward_weight_cpu);
}  // namespace ember::cpu
