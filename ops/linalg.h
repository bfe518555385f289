#pragma once
// Building blocks shared by matmul, linear, conv and pooling (no autograd here).
#include "core/tensor_impl.h"

namespace ember {

// out = a @ b + beta * out, broadcasting the batch dims. a is [..., M, K], b is [..., K, N] (both
// at least 2-D, same dtype and device); out is contiguous with shape [batch..., M, N]. Passes
// transposed views to the gemm kernel as they are; copies an operand only when its matrices
// have no BLAS layout. beta == 0 ignores out's old contents. `op` names the caller in errors.
void gemm_into(const Tensor& out, const Tensor& a, const Tensor& b, double beta, std::string_view op);

// The view of t with its last two dims swapped, without recording it on the graph.
Tensor transpose_last_raw(const Tensor& t);

// t reshaped to a matrix [product of the leading dims, last dim] (a view when possible). Unlike
// reshape({-1, n}) this also works when n == 0.
Tensor flatten_rows(const Tensor& t);

// t itself when contiguous, else a contiguous copy; no autograd (for handing data to kernels).
Tensor contiguous_raw(const Tensor& t);

}  // namespace ember
