#pragma once
// Internal split of the CUDA elementwise kernels across translation units (CUDA-only header).
// Each file instantiates one group of ops, which keeps every nvcc invocation short; the entry
// points registered with the dispatch stubs live in cuda/elementwise_unary.cu and
// cuda/elementwise_binary.cu.
#include "ember/tensor.h"
#include "ops/kernels/elementwise.h"

namespace ember::cuda {
// Ops defined on float32/float64 only (exp ... frac, reciprocal, pow_scalar, rpow_scalar, rdiv_scalar).
void unary_float_cuda(UnaryOp op, const Tensor& out, const Tensor& x, double a, double b);
// Comparisons and logic: bool output, any input dtype.
void binary_compare_cuda(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
}  // namespace ember::cuda
