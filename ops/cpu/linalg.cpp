// CPU matrix multiply: CBLAS (OpenBLAS) for float32/float64, a plain loop for integer dtypes.
#include "ops/kernels/linalg.h"

#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "ops/cpu/blas.h"

namespace ember::cpu {
namespace {

// Multiply-adds per matrix below which a batch is split across threads rather than inside BLAS.
// OpenBLAS runs a product this small on a single thread anyway, so the batch is the only
// parallelism left. (Inside ember's parallel region OpenBLAS stays single-threaded.)
constexpr int64_t kSmallGemmWork = int64_t{1} << 18;

// One BLAS call per batch entry, straight on the operands' memory: a transposed view is passed
// with BLAS's transpose flag instead of being copied.
template <class T>
void gemm_blas(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta) {
  std::optional<BlasLayout> la = blas_layout(a), lb = blas_layout(b);
  EMBER_CHECK(la && lb, "gemm kernel: an operand has no BLAS layout (the op must copy it first)");
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  const int bm = blas_int(m, "matmul", "rows"), bn = blas_int(n, "matmul", "columns");
  const int bk = blas_int(k, "matmul", "inner dimension");
  const int lda = blas_int(la->ld, "matmul", "lda"), ldb = blas_int(lb->ld, "matmul", "ldb");
  const int ldc = blas_int(out.stride(1), "matmul", "ldc");
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* pc = static_cast<T*>(out.raw_data());
  const int64_t sa = a.stride(0), sb = b.stride(0), sc = out.stride(0);
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      blas_gemm<T>(la->transposed, lb->transposed, bm, bn, bk, T(alpha), pa + i * sa, lda, pb + i * sb, ldb,
                   T(beta), pc + i * sc, ldc);
  };
  const int64_t work = m * n * k;
  if (batch > 1 && work < kSmallGemmWork) {
    parallel_for(0, batch, std::max<int64_t>(1, kSmallGemmWork / work), run);
  } else {
    run(0, batch);  // big matrices: BLAS uses every thread on each
  }
}

// Integers: accumulate in uint64_t, whose wrap-around is defined; converting back to T keeps the
// low bits, which is exactly what wrapping T arithmetic would give (and never signed overflow UB).
template <class T>
void gemm_integer(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta) {
  EMBER_CHECK(alpha == 1.0 && (beta == 0.0 || beta == 1.0),
              "gemm kernel: integer matmul supports alpha = 1 and beta in {{0, 1}}, got {} and {}", alpha,
              beta);
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* pc = static_cast<T*>(out.raw_data());
  const int64_t as0 = a.stride(0), as1 = a.stride(1), as2 = a.stride(2);
  const int64_t bs0 = b.stride(0), bs1 = b.stride(1), bs2 = b.stride(2);
  const int64_t cs0 = out.stride(0), cs1 = out.stride(1);
  // One task = one output row; each walks b row by row (k outer, n inner) for locality.
  parallel_for(0, batch * m, std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(1, n * k)),
               [&](int64_t begin, int64_t end) {
                 std::vector<uint64_t> acc(n);
                 for (int64_t r = begin; r < end; ++r) {
                   const int64_t i = r / m, row = r % m;
                   const T* arow = pa + i * as0 + row * as1;
                   const T* bmat = pb + i * bs0;
                   std::fill(acc.begin(), acc.end(), 0);
                   for (int64_t kk = 0; kk < k; ++kk) {
                     const uint64_t av = static_cast<uint64_t>(arow[kk * as2]);
                     const T* brow = bmat + kk * bs1;
                     for (int64_t j = 0; j < n; ++j) acc[j] += av * static_cast<uint64_t>(brow[j * bs2]);
                   }
                   T* crow = pc + i * cs0 + row * cs1;
                   for (int64_t j = 0; j < n; ++j)
                     crow[j] = static_cast<T>(beta == 0.0 ? acc[j] : acc[j] + static_cast<uint64_t>(crow[j]));
                 }
               });
}

void gemm_cpu(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta) {
  switch (out.dtype()) {
    case DType::float32:
      return gemm_blas<float>(out, a, b, alpha, beta);
    case DType::float64:
      return gemm_blas<double>(out, a, b, alpha, beta);
    case DType::int64:
      return gemm_integer<int64_t>(out, a, b, alpha, beta);
    case DType::int32:
      return gemm_integer<int32_t>(out, a, b, alpha, beta);
    case DType::uint8:
      return gemm_integer<uint8_t>(out, a, b, alpha, beta);
    case DType::boolean:
      break;
    case DType::bfloat16:
      fail_bfloat16("matmul");
  }
  fail("matmul: not defined for {} tensors", out.dtype());
}

}  // namespace
EMBER_REGISTER_KERNEL(gemm_stub, cpu, &gemm_cpu);
}  // namespace ember::cpu
