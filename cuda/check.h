#pragma once
// Error checking for the CUDA backend (CUDA-only header: include it from cuda/ alone).
//
// Every CUDA runtime and cuBLAS call goes through one of these macros, which turn a failure into
// an ember::Error that names the call and carries the library's own message, e.g.
//   "CUDA error: cudaMalloc(&ptr, size) failed: out of memory (cudaErrorMemoryAllocation)"
// Kernel launches report nothing themselves; EMBER_CUDA_CHECK_LAUNCH reads the launch error
// right after a `<<<...>>>` so that a bad configuration is blamed on the right kernel. (Errors
// that happen while a kernel runs surface later, at the next synchronising call.)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ember/error.h"

namespace ember::cuda::detail {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);

inline void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, call, file, line);
}
inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}

}  // namespace ember::cuda::detail

#define EMBER_CUDA_CHECK(call) ::ember::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
#define EMBER_CUBLAS_CHECK(call) ::ember::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: `kernel<<<grid, block, 0, stream>>>(...); EMBER_CUDA_CHECK_LAUNCH("kernel");`
#define EMBER_CUDA_CHECK_LAUNCH(kernel_name) \
  ::ember::cuda::detail::check_cuda(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)
