#pragma once
// Matrix-multiply kernels (one per backend: CBLAS on the CPU, cuBLAS on CUDA).
//
// gemm_stub(out, a, b, alpha, beta) computes, for every batch index i,
//     out[i] = alpha * (a[i] @ b[i]) + beta * out[i]
// Contract (ops/matmul.cpp guarantees it):
//   * a is [B, M, K], b is [B, K, N], out is [B, M, N]; same dtype, same device; M, N, K >= 1.
//   * every matrix of a and b has a BLAS layout (blas_layout below returns a value): row-major,
//     or column-major = a transposed view, which BLAS reads with its transpose flag, no copy;
//   * out's matrices are row-major (stride(2) == 1, stride(1) >= N) and never overlap;
//   * batch strides are arbitrary; a or b may have batch stride 0 (one matrix broadcast);
//   * beta == 0 means out's old contents are ignored (they may be uninitialised).
// Integer dtypes are supported too (a plain loop on the CPU; products wrap like the C types).
#include <cstdint>
#include <optional>

#include "core/dispatch.h"
#include "ember/tensor.h"

namespace ember {

using GemmFn = void (*)(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta);
EMBER_DECLARE_STUB(gemm_stub, GemmFn);

// How a [rows, cols] matrix with element strides (row_stride, col_stride) is handed to a
// row-major BLAS: either as is (transposed = false, element (i, j) at i * ld + j) or as the
// transpose of a row-major [cols, rows] matrix (transposed = true, element (i, j) at j * ld + i).
// A stride of a size-1 dim never matters, so it is ignored. nullopt: neither holds (a strided
// slice, or an expanded view with stride 0) and the matrix must be copied first.
struct BlasLayout {
  bool transposed = false;
  int64_t ld = 1;  // leading dimension, >= max(1, the contiguous extent), as BLAS requires
};
inline std::optional<BlasLayout> blas_layout(int64_t rows, int64_t cols, int64_t row_stride,
                                             int64_t col_stride) {
  auto fits = [](int64_t inner, int64_t inner_stride, int64_t outer,
                 int64_t outer_stride) -> std::optional<int64_t> {
    if (inner > 1 && inner_stride != 1) return std::nullopt;
    int64_t min_ld = inner > 1 ? inner : 1;
    if (outer <= 1) return min_ld;
    if (outer_stride < min_ld) return std::nullopt;
    return outer_stride;
  };
  if (auto ld = fits(cols, col_stride, rows, row_stride)) return BlasLayout{false, *ld};
  if (auto ld = fits(rows, row_stride, cols, col_stride)) return BlasLayout{true, *ld};
  return std::nullopt;
}
// The layout of the last two dims of t (t.dim() >= 2).
inline std::optional<BlasLayout> blas_layout(const Tensor& t) {
  int64_t n = t.dim();
  return blas_layout(t.size(n - 2), t.size(n - 1), t.stride(n - 2), t.stride(n - 1));
}

}  // namespace ember
