// Row-major GEMM on cuBLAS; see cuda/blas.h for the column-major translation.
#include "cuda/blas.h"

#include <climits>
#include <type_traits>

#include "cuda/runtime.h"
#include "ember/cuda.h"

namespace ember::cuda {
namespace {

int cublas_int(int64_t v, const char* what) {
  if (v > INT_MAX || v < 0) fail("matmul (cuda): {} = {} is outside cuBLAS's range [0, 2^31 - 1]", what, v);
  return static_cast<int>(v);
}

}  // namespace

template <class T>
void gemm_rowmajor(int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                   GemmScalar<T> alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
                   int64_t stride_b, GemmScalar<T> beta, T* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, bfloat16>,
                "cuBLAS GEMM is for float, double and bfloat16");
  if (m == 0 || n == 0 || batch == 0) return;
  DeviceGuard guard(device);
  cublasHandle_t h = cublas_handle(device);
  const int im = cublas_int(m, "rows"), in = cublas_int(n, "columns"), ik = cublas_int(k, "inner dimension");
  // cuBLAS insists on ld >= the stored rows even where that dim has size 1.
  const int ilda = cublas_int(std::max<int64_t>(lda, std::max<int64_t>(1, trans_a ? m : k)), "lda");
  const int ildb = cublas_int(std::max<int64_t>(ldb, std::max<int64_t>(1, trans_b ? k : n)), "ldb");
  const int ildc = cublas_int(std::max<int64_t>(ldc, std::max<int64_t>(1, n)), "ldc");
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  if constexpr (!std::is_same_v<T, double>) {
    // float32: TF32 tensor cores (inputs rounded to 10 mantissa bits) only when the user allowed
    // them. The choice travels with each call as its compute type, rather than as the handle's
    // math mode: the handle is shared, and a mode set on it would be state that another caller
    // could change between our setting it and our GEMM. bfloat16: bf16 tensor cores, whose
    // products are exact in float32, accumulated in float32.
    constexpr cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
    const cublasComputeType_t compute =
        std::is_same_v<T, float> && allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    if (batch == 1) {
      EMBER_CUBLAS_CHECK(cublasGemmEx(h, op_b, op_a, in, im, ik, &alpha, b, type, ildb, a, type, ilda, &beta,
                                      c, type, ildc, compute, CUBLAS_GEMM_DEFAULT));
    } else {
      EMBER_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          h, op_b, op_a, in, im, ik, &alpha, b, type, ildb, stride_b, a, type, ilda, stride_a, &beta, c, type,
          ildc, stride_c, cublas_int(batch, "batch"), compute, CUBLAS_GEMM_DEFAULT));
    }
  } else {  // (TF32 never applies to double)
    if (batch == 1) {
      EMBER_CUBLAS_CHECK(cublasDgemm(h, op_b, op_a, in, im, ik, &alpha, b, ildb, a, ilda, &beta, c, ildc));
    } else {
      EMBER_CUBLAS_CHECK(cublasDgemmStridedBatched(h, op_b, op_a, in, im, ik, &alpha, b, ildb, stride_b, a,
                                                   ilda, stride_a, &beta, c, ildc, stride_c,
                                                   cublas_int(batch, "batch")));
    }
  }
}

template void gemm_rowmajor<float>(int, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                                   int64_t, const float*, int64_t, int64_t, float, float*, int64_t, int64_t,
                                   int64_t);
template void gemm_rowmajor<double>(int, bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                    int64_t, int64_t, const double*, int64_t, int64_t, double, double*,
                                    int64_t, int64_t, int64_t);
template void gemm_rowmajor<bfloat16>(int, bool, bool, int64_t, int64_t, int64_t, float, const bfloat16*,
                                      int64_t, int64_t, const bfloat16*, int64_t, int64_t, float, bfloat16*,
                                      int64_t, int64_t, int64_t);

}  // namespace ember::cuda
