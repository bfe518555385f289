// CUDA kernels for the comparison and logical binary ops (bool result, inputs of any one dtype).
#include "cuda/elementwise.h"
#include "cuda/loops.cuh"

namespace ember::cuda {
namespace {

template <class T>
void binary_compare(const KernelContext& ctx, BinaryOp op, const Tensor& out, const Tensor& a,
                    const Tensor& b) {
  auto map = [&](auto f) { gpu_map<bool, T, T>(ctx, f, out, {&a, &b}); };
  switch (op) {
    case BinaryOp::eq:
      return map([] __device__(T x, T y) { return x == y; });
    case BinaryOp::ne:
      return map([] __device__(T x, T y) { return x != y; });
    case BinaryOp::lt:
      return map([] __device__(T x, T y) { return x < y; });
    case BinaryOp::le:
      return map([] __device__(T x, T y) { return x <= y; });
    case BinaryOp::gt:
      return map([] __device__(T x, T y) { return x > y; });
    case BinaryOp::ge:
      return map([] __device__(T x, T y) { return x >= y; });
    case BinaryOp::logical_and:
      return map([] __device__(T x, T y) { return x != T(0) && y != T(0); });
    case BinaryOp::logical_or:
      return map([] __device__(T x, T y) { return x != T(0) || y != T(0); });
    case BinaryOp::logical_xor:
      return map([] __device__(T x, T y) { return (x != T(0)) != (y != T(0)); });
    default:
      fail("binary kernel (cuda): op {} does not return bool", static_cast<int>(op));
  }
}

}  // namespace

void binary_compare_cuda(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(out.dtype() == DType::boolean, "binary (cuda): comparisons write bool, got an output of {}",
              out.dtype());
  KernelContext ctx(out, "binary");
  dispatch_all(a.dtype(), "binary", [&]<class T>() { binary_compare<T>(ctx, op, out, a, b); });
}

}  // namespace ember::cuda
