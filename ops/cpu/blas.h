#pragma once
// Typed wrappers over CBLAS (OpenBLAS, OpenMP build) for the CPU kernels. Matrices are
// row-major; BLAS sizes are 32-bit ints, so larger values are an ember::Error, never a wrap.
#include <cblas.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "ember/error.h"

namespace ember::cpu {

inline int blas_int(int64_t v, const char* op, const char* what) {
  if (v > INT_MAX) fail("{}: {} = {} exceeds the BLAS limit of 2^31 - 1", op, what, v);
  return static_cast<int>(v);
}

// c = alpha * op(a) @ op(b) + beta * c, where op(x) is x or x^T; c is [m, n].
template <class T>
void blas_gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
               int ldb, T beta, T* c, int ldc) {
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    static_assert(std::is_same_v<T, double>, "BLAS kernels exist for float and double only");
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

}  // namespace ember::cpu
