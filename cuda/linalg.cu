// CUDA matrix multiply: cuBLAS for float32/float64/bfloat16 (through gemm_rowmajor, cuda/blas.h, which
// explains the row-major/column-major translation), a plain kernel for integer dtypes. A
// transposed view (BlasLayout::transposed) is passed with cuBLAS's transpose flag: no copy, as
// on the CPU; a batch stride of 0 (one matrix broadcast over the batch) is passed as is.
#include "cuda/blas.h"
#include "cuda/loops.cuh"
#include "ops/kernels/linalg.h"

namespace ember::cuda {
namespace {

template <class T>
void gemm_cublas(const KernelContext& ctx, const Tensor& out, const Tensor& a, const Tensor& b, double alpha,
                 double beta) {
  const std::optional<BlasLayout> la = blas_layout(a), lb = blas_layout(b);
  EMBER_CHECK(la && lb, "gemm kernel (cuda): an operand has no BLAS layout (the op must copy it first)");
  gemm_rowmajor<T>(ctx.device, la->transposed, lb->transposed, out.size(1), out.size(2), a.size(2),
                   static_cast<GemmScalar<T>>(alpha), static_cast<const T*>(a.raw_data()), la->ld,
                   a.stride(0), static_cast<const T*>(b.raw_data()), lb->ld, b.stride(0),
                   static_cast<GemmScalar<T>>(beta), static_cast<T*>(out.raw_data()), out.stride(1),
                   out.stride(0), out.size(0));
}

// The strides of one [B, R, C] operand, for the integer kernel.
struct Strides3 {
  int64_t batch, row, col;
};
Strides3 strides3(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// Integer matmul, one thread per output element. Accumulates in uint64_t, whose wrap-around is
// defined; the low bits converted back to T are what wrapping T arithmetic gives (as on the CPU).
template <class T>
__global__ void gemm_integer_kernel(T* c, const T* a, const T* b, int64_t batch, int64_t m, int64_t n,
                                    int64_t k, Strides3 sa, Strides3 sb, Strides3 sc, bool accumulate) {
  const int64_t total = batch * m * n;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t j = idx % n, row = (idx / n) % m, i = idx / (n * m);
    const T* arow = a + i * sa.batch + row * sa.row;
    const T* bcol = b + i * sb.batch + j * sb.col;
    uint64_t acc = 0;
    for (int64_t kk = 0; kk < k; ++kk)
      acc += static_cast<uint64_t>(arow[kk * sa.col]) * static_cast<uint64_t>(bcol[kk * sb.row]);
    T* cp = c + i * sc.batch + row * sc.row + j * sc.col;
    *cp = static_cast<T>(accumulate ? acc + static_cast<uint64_t>(*cp) : acc);
  }
}

template <class T>
void gemm_integer(const KernelContext& ctx, const Tensor& out, const Tensor& a, const Tensor& b, double alpha,
                  double beta) {
  EMBER_CHECK(alpha == 1.0 && (beta == 0.0 || beta == 1.0),
              "gemm kernel (cuda): integer matmul supports alpha = 1 and beta in {{0, 1}}, got {} and {}",
              alpha, beta);
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  gemm_integer_kernel<T><<<blocks_for(batch * m * n, kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<T*>(out.raw_data()), static_cast<const T*>(a.raw_data()),
      static_cast<const T*>(b.raw_data()), batch, m, n, k, strides3(a), strides3(b), strides3(out),
      beta == 1.0);
  EMBER_CUDA_CHECK_LAUNCH("gemm_integer_kernel");
}

void gemm_cuda(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta) {
  // Host-side check of the kernel contract (ops/kernels/linalg.h).
  if (a.dim() != 3 || b.dim() != 3 || out.dim() != 3 || a.size(0) != out.size(0) ||
      b.size(0) != out.size(0) || a.size(1) != out.size(1) || b.size(2) != out.size(2) ||
      a.size(2) != b.size(1))
    fail("gemm kernel (cuda): expected [B,M,K] @ [B,K,N] -> [B,M,N], got {} @ {} -> {}", shape_str(a.shape()),
         shape_str(b.shape()), shape_str(out.shape()));
  if (a.dtype() != out.dtype() || b.dtype() != out.dtype())
    fail("gemm kernel (cuda): dtypes differ: {} @ {} -> {}", a.dtype(), b.dtype(), out.dtype());
  if (out.size(2) > 1 && out.stride(2) != 1) fail("gemm kernel (cuda): output matrices must be row-major");
  if (out.numel() == 0) return;
  KernelContext ctx(out, "matmul");
  switch (out.dtype()) {
    case DType::float32:
      return gemm_cublas<float>(ctx, out, a, b, alpha, beta);
    case DType::float64:
      return gemm_cublas<double>(ctx, out, a, b, alpha, beta);
    case DType::int64:
      return gemm_integer<int64_t>(ctx, out, a, b, alpha, beta);
    case DType::int32:
      return gemm_integer<int32_t>(ctx, out, a, b, alpha, beta);
    case DType::uint8:
      return gemm_integer<uint8_t>(ctx, out, a, b, alpha, beta);
    case DType::boolean:
      break;
    case DType::bfloat16:
      return gemm_cublas<bfloat16>(ctx, out, a, b, alpha, beta);
  }
  fail("matmul: not defined for {} tensors", out.dtype());
}

}  // namespace

EMBER_REGISTER_KERNEL(gemm_stub, cuda, &gemm_cuda);

}  // namespace ember::cuda
