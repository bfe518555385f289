// CUDA conv2d: im2col + cuBLAS, forward and both backward passes (contract: ops/kernels/conv.h).
//
// im2col unrolls a chunk of B images into one matrix `col` of shape [C*kh*kw, B*Ho*Wo]: row
// (c, a, b) holds, for every image n of the chunk and output position (i, j), the input pixel
// that kernel tap (a, b) of channel c sees there (0 in the padding). Putting the images side by
// side makes each pass a few large GEMMs per group g (row blocks of C/G*kh*kw and of O/G):
//     forward:          Y[g]   [O/G, B*Ho*Wo]   = W[g] @ col[g]
//     backward input:   dcol[g]                 = W[g]^T @ G[g]      then col2im into dx
//     backward weight:  dW[g]  [O/G, C/G*kh*kw] += G[g] @ col[g]^T  (summed over all chunks)
// where Y and G are outputs / output gradients in the same [O, B*Ho*Wo] layout; small kernels
// move them to and from the [B, O, Ho, Wo] tensor layout (adding the bias on the way).
// col2im (the adjoint of im2col) is written as a gather: each input pixel sums the column entries
// that read it, in (a, b) order; no atomics, the same order of additions as the CPU.
// The chunk size B bounds the scratch memory (kScratchBytes).
#include <algorithm>

#include "cuda/blas.h"
#include "cuda/loops.cuh"
#include "ops/kernels/conv.h"

namespace ember::cuda {
namespace {

constexpr int64_t kScratchBytes = int64_t{256} << 20;

struct ConvShape {
  int64_t n, c, h, w, o, kh, kw, oh, ow, groups;
  int64_t sh, sw, ph, pw, dh, dw;
  __host__ __device__ int64_t cols() const { return oh * ow; }      // output pixels of one image
  __host__ __device__ int64_t rows() const { return c * kh * kw; }  // rows of the col matrix
  int64_t cg() const { return c / groups; }
  int64_t og() const { return o / groups; }
  int64_t rows_g() const { return cg() * kh * kw; }  // rows of one group's block of col
};

ConvShape conv_shape(const Tensor& x, const Tensor& w, const Tensor& out, const Conv2dParams& p) {
  return ConvShape{x.size(0),    x.size(1),    x.size(2),     x.size(3),    w.size(0),   w.size(2),
                   w.size(3),    out.size(2),  out.size(3),   p.groups,     p.stride[0], p.stride[1],
                   p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]};
}

// Host-side check of the contract, so that a caller's mistake is an Error and never a bad read.
void check_conv(const char* op, const Tensor& x, const Tensor& w, const Tensor& out, const Conv2dParams& p) {
  const bool ok =
      x.dim() == 4 && w.dim() == 4 && out.dim() == 4 && x.is_contiguous() && w.is_contiguous() &&
      out.is_contiguous() && p.groups >= 1 && x.size(1) % p.groups == 0 && w.size(0) % p.groups == 0 &&
      w.size(1) * p.groups == x.size(1) && out.size(0) == x.size(0) && out.size(1) == w.size(0) &&
      p.stride[0] >= 1 && p.stride[1] >= 1 && p.dilation[0] >= 1 && p.dilation[1] >= 1 &&
      out.size(2) == conv2d_output_size(x.size(2), w.size(2), p.stride[0], p.padding[0], p.dilation[0]) &&
      out.size(3) == conv2d_output_size(x.size(3), w.size(3), p.stride[1], p.padding[1], p.dilation[1]) &&
      x.dtype() == w.dtype() && out.dtype() == x.dtype() && x.device() == w.device() &&
      out.device() == x.device();
  if (!ok)
    fail("{} (cuda): inconsistent arguments: x {} {}, weight {} {}, output {} {}, groups {}", op, x.dtype(),
         shape_str(x.shape()), w.dtype(), shape_str(w.shape()), out.dtype(), shape_str(out.shape()),
         p.groups);
}

// Images per chunk: as many as fit the scratch budget (at least one).
int64_t chunk_images(const ConvShape& s, size_t elem) {
  const int64_t per_image = std::max(s.rows(), s.o) * s.cols() * static_cast<int64_t>(elem);
  return std::clamp<int64_t>(kScratchBytes / std::max<int64_t>(per_image, 1), 1, s.n);
}

// col[r, q] for r = (c, a, b), q = (n, i, j) of images [n0, n0 + B).
template <class T>
__global__ void im2col_kernel(T* col, const T* x, ConvShape s, int64_t n0, int64_t B) {
  const int64_t width = B * s.cols(), total = s.rows() * width;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t q = idx % width, r = idx / width;
    const int64_t n = q / s.cols(), i = (q % s.cols()) / s.ow, j = q % s.ow;
    const int64_t b = r % s.kw, a = (r / s.kw) % s.kh, c = r / (s.kw * s.kh);
    const int64_t ih = i * s.sh - s.ph + a * s.dh, iw = j * s.sw - s.pw + b * s.dw;
    const bool inside = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w;
    col[idx] = inside ? x[(((n0 + n) * s.c + c) * s.h + ih) * s.w + iw] : T(0);
  }
}

// dx[n0 + n, c, ih, iw] = sum of the dcol entries that im2col read from that pixel.
template <class T>
__global__ void col2im_kernel(T* dx, const T* dcol, ConvShape s, int64_t n0, int64_t B) {
  const int64_t width = B * s.cols(), total = B * s.c * s.h * s.w;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = idx % s.w, ih = (idx / s.w) % s.h, c = (idx / (s.w * s.h)) % s.c,
                  n = idx / (s.w * s.h * s.c);
    T sum = T(0);
    for (int64_t a = 0; a < s.kh; ++a) {
      const int64_t ti = ih + s.ph - a * s.dh;  // = i * sh for the output row i that reads ih with tap a
      if (ti < 0 || ti % s.sh != 0 || ti / s.sh >= s.oh) continue;
      const int64_t i = ti / s.sh;
      for (int64_t b = 0; b < s.kw; ++b) {
        const int64_t tj = iw + s.pw - b * s.dw;
        if (tj < 0 || tj % s.sw != 0 || tj / s.sw >= s.ow) continue;
        const int64_t j = tj / s.sw;
        sum += dcol[((c * s.kh + a) * s.kw + b) * width + n * s.cols() + i * s.ow + j];
      }
    }
    dx[n0 * s.c * s.h * s.w + idx] = sum;
  }
}

// out[n0 + n, o, p] = y[o, n * cols + p] (+ bias[o]).
template <class T>
__global__ void columns_to_images_kernel(T* out, const T* y, const T* bias, ConvShape s, int64_t n0,
                                         int64_t B) {
  const int64_t cols = s.cols(), total = B * s.o * cols;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = idx % cols, o = (idx / cols) % s.o, n = idx / (cols * s.o);
    const T v = y[o * B * cols + n * cols + p];
    out[n0 * s.o * cols + idx] = bias != nullptr ? static_cast<T>(bias[o] + v) : v;
  }
}

// g[o, n * cols + p] = grad_out[n0 + n, o, p].
template <class T>
__global__ void images_to_columns_kernel(T* g, const T* grad_out, ConvShape s, int64_t n0, int64_t B) {
  const int64_t cols = s.cols(), total = B * s.o * cols;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = idx % cols, o = (idx / cols) % s.o, n = idx / (cols * s.o);
    g[o * B * cols + n * cols + p] = grad_out[n0 * s.o * cols + idx];
  }
}

template <class T>
void im2col(const KernelContext& ctx, T* col, const T* x, const ConvShape& s, int64_t n0, int64_t B) {
  im2col_kernel<T>
      <<<blocks_for(s.rows() * B * s.cols(), kThreads), kThreads, 0, ctx.stream>>>(col, x, s, n0, B);
  EMBER_CUDA_CHECK_LAUNCH("im2col_kernel");
}

template <class T>
void images_to_columns(const KernelContext& ctx, T* g, const T* grad_out, const ConvShape& s, int64_t n0,
                       int64_t B) {
  images_to_columns_kernel<T>
      <<<blocks_for(B * s.o * s.cols(), kThreads), kThreads, 0, ctx.stream>>>(g, grad_out, s, n0, B);
  EMBER_CUDA_CHECK_LAUNCH("images_to_columns_kernel");
}

template <class T>
void forward(const KernelContext& ctx, const Tensor& out, const Tensor& x, const Tensor& w,
             const Tensor& bias, const ConvShape& s) {
  const int64_t chunk = chunk_images(s, sizeof(T));
  Tensor col_t = empty_tensor({s.rows() * chunk * s.cols()}, x.dtype(), x.device());
  Tensor y_t = empty_tensor({s.o * chunk * s.cols()}, x.dtype(), x.device());
  T* col = static_cast<T*>(col_t.raw_data());
  T* y = static_cast<T*>(y_t.raw_data());
  const T* wp = static_cast<const T*>(w.raw_data());
  for (int64_t n0 = 0; n0 < s.n; n0 += chunk) {
    const int64_t B = std::min(chunk, s.n - n0), width = B * s.cols();
    im2col(ctx, col, static_cast<const T*>(x.raw_data()), s, n0, B);
    for (int64_t g = 0; g < s.groups; ++g)
      gemm_rowmajor<T>(ctx.device, false, false, s.og(), width, s.rows_g(), T(1),
                       wp + g * s.og() * s.rows_g(), s.rows_g(), 0, col + g * s.rows_g() * width, width, 0,
                       T(0), y + g * s.og() * width, width, 0);
    columns_to_images_kernel<T><<<blocks_for(B * s.o * s.cols(), kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(out.raw_data()), y, bias.defined() ? static_cast<const T*>(bias.raw_data()) : nullptr,
        s, n0, B);
    EMBER_CUDA_CHECK_LAUNCH("columns_to_images_kernel");
  }
}

template <class T>
void backward_input(const KernelContext& ctx, const Tensor& grad_x, const Tensor& grad_out, const Tensor& w,
                    const ConvShape& s) {
  const int64_t chunk = chunk_images(s, sizeof(T));
  Tensor dcol_t = empty_tensor({s.rows() * chunk * s.cols()}, w.dtype(), w.device());
  Tensor g_t = empty_tensor({s.o * chunk * s.cols()}, w.dtype(), w.device());
  T* dcol = static_cast<T*>(dcol_t.raw_data());
  T* gcol = static_cast<T*>(g_t.raw_data());
  const T* wp = static_cast<const T*>(w.raw_data());
  for (int64_t n0 = 0; n0 < s.n; n0 += chunk) {
    const int64_t B = std::min(chunk, s.n - n0), width = B * s.cols();
    images_to_columns(ctx, gcol, static_cast<const T*>(grad_out.raw_data()), s, n0, B);
    for (int64_t g = 0; g < s.groups; ++g)  // W[g] is [O/G, rows_g]; read it transposed
      gemm_rowmajor<T>(ctx.device, true, false, s.rows_g(), width, s.og(), T(1), wp + g * s.og() * s.rows_g(),
                       s.rows_g(), 0, gcol + g * s.og() * width, width, 0, T(0),
                       dcol + g * s.rows_g() * width, width, 0);
    col2im_kernel<T><<<blocks_for(B * s.c * s.h * s.w, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<T*>(grad_x.raw_data()), dcol, s, n0, B);
    EMBER_CUDA_CHECK_LAUNCH("col2im_kernel");
  }
}

template <class T>
void backward_weight(const KernelContext& ctx, const Tensor& grad_w, const Tensor& grad_out, const Tensor& x,
                     const ConvShape& s) {
  const int64_t chunk = chunk_images(s, sizeof(T));
  Tensor col_t = empty_tensor({s.rows() * chunk * s.cols()}, x.dtype(), x.device());
  Tensor g_t = empty_tensor({s.o * chunk * s.cols()}, x.dtype(), x.device());
  T* col = static_cast<T*>(col_t.raw_data());
  T* gcol = static_cast<T*>(g_t.raw_data());
  T* dw = static_cast<T*>(grad_w.raw_data());
  for (int64_t n0 = 0; n0 < s.n; n0 += chunk) {
    const int64_t B = std::min(chunk, s.n - n0), width = B * s.cols();
    im2col(ctx, col, static_cast<const T*>(x.raw_data()), s, n0, B);
    images_to_columns(ctx, gcol, static_cast<const T*>(grad_out.raw_data()), s, n0, B);
    const T beta = n0 == 0 ? T(0) : T(1);   // the first chunk overwrites grad_w, later ones add
    for (int64_t g = 0; g < s.groups; ++g)  // col[g] is [rows_g, width]; read it transposed
      gemm_rowmajor<T>(ctx.device, false, true, s.og(), s.rows_g(), width, T(1), gcol + g * s.og() * width,
                       width, 0, col + g * s.rows_g() * width, width, 0, beta, dw + g * s.og() * s.rows_g(),
                       s.rows_g(), 0);
  }
}

void forward_cuda(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                  const Conv2dParams& p) {
  check_conv("conv2d", x, w, out, p);
  if (bias.defined() && (bias.numel() != w.size(0) || bias.dtype() != x.dtype() || !bias.is_contiguous()))
    fail("conv2d (cuda): bias must be a contiguous [{}] tensor of {}, got {} {}", w.size(0), x.dtype(),
         bias.dtype(), shape_str(bias.shape()));
  if (out.numel() == 0) return;
  KernelContext ctx(out, "conv2d");
  const ConvShape s = conv_shape(x, w, out, p);
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() { forward<T>(ctx, out, x, w, bias, s); });
}

void backward_input_cuda(const Tensor& grad_x, const Tensor& grad_out, const Tensor& w,
                         const Conv2dParams& p) {
  check_conv("conv2d backward", grad_x, w, grad_out, p);
  if (grad_x.numel() == 0) return;
  KernelContext ctx(grad_x, "conv2d backward");
  const ConvShape s = conv_shape(grad_x, w, grad_out, p);
  dispatch_floating(w.dtype(), "conv2d", [&]<class T>() { backward_input<T>(ctx, grad_x, grad_out, w, s); });
}

void backward_weight_cuda(const Tensor& grad_w, const Tensor& grad_out, const Tensor& x,
                          const Conv2dParams& p) {
  check_conv("conv2d backward", x, grad_w, grad_out, p);
  if (grad_w.numel() == 0) return;
  KernelContext ctx(grad_w, "conv2d backward");
  const ConvShape s = conv_shape(x, grad_w, grad_out, p);
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() { backward_weight<T>(ctx, grad_w, grad_out, x, s); });
}

}  // namespace

EMBER_REGISTER_KERNEL(conv2d_forward_stub, cuda, &forward_cuda);
EMBER_REGISTER_KERNEL(conv2d_backward_input_stub, cuda, &backward_input_cuda);
EMBER_REGISTER_KERNEL(conv2d_backward_weight_stub, cuda, &backward_weight_cuda);

}  // namespace ember::cuda
