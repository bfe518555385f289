#pragma once
// Row-major GEMM on cuBLAS (CUDA-only header), shared by matmul and conv2d.
//
// cuBLAS is column-major, ember is row-major. A row-major [M, N] matrix with leading dimension
// ld is, byte for byte, the column-major [N, M] matrix (its transpose) with the same ld, so
//     C = op(A) op(B)   (row-major)    <=>    C^T = op(B)^T op(A)^T   (column-major)
// and gemm_rowmajor asks cuBLAS for the product of B's buffer and A's buffer with m and n
// swapped. The transpose flags keep their meaning: trans_a says that A is stored as the
// row-major [K, M] matrix A^T (a transposed view), which cuBLAS then reads transposed; no copy.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "ember/dtype.h"

namespace ember::cuda {

// alpha and beta are float for bfloat16 GEMMs (which accumulate in float32), else T.
template <class T>
using GemmScalar = std::conditional_t<std::is_same_v<T, bfloat16>, float, T>;

// For every i < batch:
//   C_i [m, n] = alpha * op(A_i) [m, k] @ op(B_i) [k, n] + beta * C_i
// with A_i = a + i * stride_a (likewise b, c); lda/ldb/ldc are the row-major leading dimensions
// of the matrices as stored. Runs on `device`'s stream; float32 uses TF32 tensor cores only when
// ember::cuda::allow_tf32(). T is float, double or bfloat16; bfloat16 runs on the bf16 tensor cores
// with float32 accumulation, and alpha * AB + beta * C is rounded to bfloat16 once, as PyTorch's
// bf16 matmul (and ember's CPU one, a float32 GEMM of the widened operands) does.
template <class T>
void gemm_rowmajor(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                   GemmScalar<T> alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                   int64_t stride_b, GemmScalar<T> beta, T* c, int64_t ldc, int64_t stride_c,
                   int64_t batch = 1);

}  // namespace ember::cuda
