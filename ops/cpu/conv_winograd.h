#pragma once
// Winograd F(2x2, 3x3) convolution on the CPU: the 3x3, stride-1 case of conv2d with 2.25x fewer
// multiplications than im2col + GEMM (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016).
//
// The output is cut into 2x2 tiles; output tile (ty, tx) depends on the 4x4 input patch d at rows
// 2 ty - ph .. + 3, columns 2 tx - pw .. + 3 (0 outside the image). With the fixed matrices
//
//   B^T = | 1  0 -1  0 |     G = | 1    0    0  |     A^T = | 1  1  1  0 |
//         | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
//         | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |         | 0    0    1  |
//
// the tile of output channel k is  Y = A^T [ sum_c U[k,c] (.) V[c] ] A,  where U[k,c] = G w[k,c] G^T
// (the filter, 4x4), V[c] = B^T d[c] B (the patch, 4x4) and (.) multiplies elementwise. For each of
// the 16 positions e of the 4x4 grid the sum over c is one matrix product over all tiles t:
//     M[e] [K x P] = U[e] [K x C] @ V[e] [C x P]
// which is where the time goes (OpenBLAS); the transforms are additions only.
//
// The gradients reuse the same pieces:
//  * input:  the forward's adjoint, each step transposed and in reverse order: Z = A dy A^T per
//            output tile, dV[e] [C x P] = U[e]^T @ Z[e], then B dV B^T added back onto the
//            overlapping patches it came from (dropping what falls on the padding);
//  * weight: Y is linear in U, so dU[e] [K x C] = sum over tiles of Z[e] [K x P] @ V[e]^T, with
//            Z = A dy A^T (dy's 2x2 tile, 0 outside the output); then dw = G^T dU G.
#include <cstdint>

namespace ember::cpu {

// A 3x3, stride-1, dilation-1, one-group convolution: x [n, c, h, w], w [k, c, 3, 3], out
// [n, k, oh, ow] with oh = h + 2 ph - 2 >= 1, ow = w + 2 pw - 2 >= 1 (any padding).
struct WinogradShape {
  int64_t n, c, h, w, k, ph, pw;
  int64_t oh() const { return h + 2 * ph - 2; }
  int64_t ow() const { return w + 2 * pw - 2; }
  int64_t tiles() const { return n * ((oh() + 1) / 2) * ((ow() + 1) / 2); }
  // Whether Winograd beats im2col + GEMM here (measured on one core, forward + backward; see
  // docs/performance.md). With under 8 channels on either side its 16 products are too thin; with
  // few tiles in the batch the filter transforms (work K C per call, like a product over a few
  // dozen tiles) are not paid back: batch 8 of 8x8 images, 256 channels, ran 0.8x as fast.
  bool pays() const { return c >= 8 && k >= 8 && tiles() >= 512; }
};

// out = conv2d(x, w) + bias (bias may be null). Overwrites out.
template <class T>
void winograd_forward(const WinogradShape& s, const T* x, const T* w, const T* bias, T* out);
// dx = d(sum(out * dy)) / dx. Overwrites dx.
template <class T>
void winograd_backward_input(const WinogradShape& s, const T* dy, const T* w, T* dx);
// dw = d(sum(out * dy)) / dw. Overwrites dw.
template <class T>
void winograd_backward_weight(const WinogradShape& s, const T* dy, const T* x, T* dw);

}  // namespace ember::cpu
