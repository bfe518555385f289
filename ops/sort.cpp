// sort, argsort and topk: one kernel (ops/kernels/sort.h) that orders each line along a dim
// stably and keeps its first k entries. The values are differentiable: each came from one input
// element, so the backward scatters the gradient back to the positions in `indices`.
#include "ops/kernels/sort.h"

#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/kernels/index.h"

namespace ember {

EMBER_DEFINE_STUB(sort_stub, SortFn);

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// The first k entries of every line of x along dim, ordered; records the backward of the values.
// k < 0 means the whole line.
std::pair<Tensor, Tensor> sorted_lines(const char* op, const Tensor& x_in, int64_t dim, int64_t k,
                                       bool descending) {
  if (is_bfloat16(x_in))  // exact: sorting float32 copies of bfloat16 values permutes them
    return via_float32([&](const Tensor& f) { return sorted_lines(op, f, dim, k, descending); }, x_in);
  check_defined(op, x_in);
  dim = wrap_dim(dim, x_in.dim(), op);
  // A 0-d tensor is sorted as its one-element 1-d view.
  Tensor x = x_in.dim() == 0 ? x_in.reshape({1}) : x_in;
  const int64_t n = x.size(dim);
  if (k < 0) {
    k = n;
  } else if (k > n) {
    fail("{}: k {} is out of range for dim {} of size {} (expected 0 <= k <= {})", op, k, dim, n, n);
  }

  Shape shape = x.shape();
  shape[dim] = k;
  Tensor values = empty_tensor(shape, x.dtype(), x.device());
  Tensor indices = empty_tensor(shape, DType::int64, x.device());
  if (values.numel() > 0) sort_stub(x.device(), values, indices, x, dim, k, descending);

  if (autograd::any_requires_grad({x})) {
    Shape x_shape = x.shape();
    autograd::record(
        op, {x}, values,
        [=, si = SavedTensor(indices)](const BackwardArgs& a) {
          Tensor idx = si.unpack(op);
          Tensor gx = zeros(x_shape, a.grad().options());
          if (GradMode::is_enabled())
            return Grads{scatter(gx, dim, idx, a.grad())};  // create_graph: recorded
          // Positions along a line are distinct, so assigning is the same as adding here.
          if (idx.numel() > 0) scatter_stub(gx.device(), ScatterMode::assign, gx, dim, idx, a.grad());
          return Grads{gx};
        },
        autograd::DoubleBackward::supported);
  }
  if (x_in.dim() == 0 && k == 1) return {values.reshape({}), indices.reshape({})};
  return {values, indices};
}

}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  return sorted_lines("sort", x, dim, -1, descending);
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  NoGradGuard no_grad;  // only the indices are returned: nothing to differentiate
  return sorted_lines("argsort", x, dim, -1, descending).second;
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  check_defined("topk", x);
  if (k < 0) fail("topk: k must be non-negative, got {}", k);
  return sorted_lines("topk", x, dim, k, largest);
}

}  // namespace ember
