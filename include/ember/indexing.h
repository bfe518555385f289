#pragma once
// LibTorch's tensor indexing, with the names of torch::indexing:
//
//   using namespace ember::indexing;
//   x.index({Slice(), 0})                 // x[:, 0]        (a view)
//   x.index({"...", None, Slice(1, None, 2)})  // x[..., None, 1::2]
//   x.index({mask})                       // x[mask]        (bool tensor: a copy)
//   x.index({rows, cols})                 // x[rows, cols]  (int64 tensors: a copy)
//   x.index_put_({Slice(), 0}, 1.0)       // x[:, 0] = 1
//   x.index_put_({mask}, values)          // x[mask] = values
//
// Integers, slices, None and "..." give views, as in PyTorch. Index tensors (int64 or int32, negative
// values counting from the end; or a bool mask, which stands for its nonzero() positions) follow
// NumPy's advanced indexing: they broadcast together, and their dims replace the indexed ones in
// place when those are adjacent, else they come first. Everything is differentiable, and
// index_put_ writes through a view, so autograd records it (docs/internals.md, "Views").
#include <cstdint>
#include <optional>

#include "ember/tensor.h"

namespace ember::indexing {

inline constexpr std::nullopt_t None = std::nullopt;

struct EllipsisIndexType {
  explicit EllipsisIndexType() = default;
};
inline constexpr EllipsisIndexType Ellipsis{};

// Python's start:stop:step. Missing bounds mean the whole dim; negative ones count from the end;
// out-of-range ones are clamped, as in Python. The step must be positive.
struct Slice {
  Slice(std::optional<int64_t> start = None, std::optional<int64_t> stop = None,
        std::optional<int64_t> step = None)
      : start(start), stop(stop), step(step) {}
  std::optional<int64_t> start, stop, step;
};

class TensorIndex {
 public:
  enum class Kind { none, ellipsis, boolean, integer, slice, tensor };

  TensorIndex(std::nullopt_t) : kind_(Kind::none) {}                  // NOLINT: implicit, as in LibTorch
  TensorIndex(EllipsisIndexType) : kind_(Kind::ellipsis) {}           // NOLINT
  TensorIndex(const char* text);                                      // NOLINT: "..." only
  TensorIndex(bool value) : kind_(Kind::boolean), integer_(value) {}  // NOLINT: x[True], x[False]
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  TensorIndex(I i) : kind_(Kind::integer), integer_(static_cast<int64_t>(i)) {}    // NOLINT
  TensorIndex(Slice slice) : kind_(Kind::slice), slice_(slice) {}                  // NOLINT
  TensorIndex(Tensor tensor) : kind_(Kind::tensor), tensor_(std::move(tensor)) {}  // NOLINT

  Kind kind() const { return kind_; }
  int64_t integer() const { return integer_; }
  bool boolean() const { return integer_ != 0; }
  const Slice& slice() const { return slice_; }
  const Tensor& tensor() const { return tensor_; }

 private:
  Kind kind_;
  int64_t integer_ = 0;
  Slice slice_;
  Tensor tensor_;
};

}  // namespace ember::indexing
