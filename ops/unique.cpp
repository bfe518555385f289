// unique: the distinct values of a tensor, sorted, with where each element went and how often each
// value occurs -- torch.unique(x, sorted=True, return_inverse=True, return_counts=True). Composed
// from a stable sort, a comparison of neighbours, a running count, masked_select and scatters, so
// CUDA runs it without a kernel of its own; like masked_select it reads the number of distinct
// values back to the host, to size the result.
#include "ops/internal.h"

namespace ember {

Unique unique(const Tensor& x_in) {
  check_defined("unique", x_in);
  // Not differentiable (PyTorch's is not either): the values are a selection, but which elements
  // merge is a discrete choice.
  const Tensor x = x_in.detach();
  const TensorOptions int64 = TensorOptions(DType::int64).device(x.device());
  const int64_t n = x.numel();
  if (n == 0) return {empty_tensor({0}, x.dtype(), x.device()), zeros(x.shape(), int64), zeros({0}, int64)};
  // bool has no sort kernel; 0/1 bytes sort the same way.
  const Tensor flat = x.dtype() == DType::boolean ? x.reshape({-1}).to(DType::uint8) : x.reshape({-1});
  const auto [sorted, order] = sort(flat);
  // A sorted element starts a new value when it differs from its left neighbour (so NaNs, unequal
  // to everything, come out one value each, as in PyTorch).
  const Tensor starts = cat({ones({1}, TensorOptions(DType::boolean).device(x.device())),
                             ne(sorted.narrow(0, 1, n - 1), sorted.narrow(0, 0, n - 1))});
  const Tensor value_of_sorted =
      cumsum(starts.to(DType::int64), 0) - 1;  // the value's slot, per sorted element
  Tensor values = masked_select(sorted, starts);
  if (x.dtype() == DType::boolean) values = values.to(DType::boolean);
  const Tensor inverse = scatter(zeros({n}, int64), 0, order, value_of_sorted).reshape(x.shape());
  const Tensor counts = scatter_add(zeros({values.numel()}, int64), 0, value_of_sorted, ones({n}, int64));
  return {values, inverse, counts};
}

}  // namespace ember
