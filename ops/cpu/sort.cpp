// CPU sort / topk: each line along `dim` is copied into a buffer of (value, position) pairs,
// ordered there, and the first k pairs are written out. Lines are independent, so threads take
// whole lines. Breaking ties by position turns the fast unstable std::sort / std::nth_element
// into a stable order, in both directions.
#include "ops/kernels/sort.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "ops/cpu/loops.h"

namespace ember::cpu {
namespace {

template <class T>
struct Entry {
  T value;
  int64_t index;
};

// a < b, where NaN is larger than every number and all NaNs are equal (a strict weak order).
template <class T>
inline bool less_nan_last(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return a < b || (!std::isnan(a) && std::isnan(b));
  } else {
    return a < b;
  }
}

template <class T>
void sort_typed(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
                bool descending) {
  const int64_t n = x.size(dim), step = x.stride(dim);
  // A line is (outer, inner): outer walks the dims before `dim`, inner the dims after it.
  Shape outer_sizes(x.shape().begin(), x.shape().begin() + dim);
  Shape outer_strides(x.strides().begin(), x.strides().begin() + dim);
  Shape inner_sizes(x.shape().begin() + dim + 1, x.shape().end());
  Shape inner_strides(x.strides().begin() + dim + 1, x.strides().end());
  const int64_t inner = shape_numel(inner_sizes), lines = shape_numel(outer_sizes) * inner;
  // The common case (sorting the last dim of a contiguous tensor) needs no offset arithmetic.
  const bool rows_contiguous = inner == 1 && x.is_contiguous();

  const T* in = static_cast<const T*>(x.raw_data());
  T* out_values = static_cast<T*>(values.raw_data());
  int64_t* out_indices = static_cast<int64_t*>(indices.raw_data());

  auto before = [descending](const Entry<T>& a, const Entry<T>& b) {
    if (descending ? less_nan_last(b.value, a.value) : less_nan_last(a.value, b.value)) return true;
    if (descending ? less_nan_last(a.value, b.value) : less_nan_last(b.value, a.value)) return false;
    return a.index < b.index;  // equal values: original order
  };

  // About n log n work per line: give each thread enough lines to be worth starting.
  const int64_t cost = n * std::max<int64_t>(1, static_cast<int64_t>(std::log2(static_cast<double>(n) + 1)));
  const int64_t grain = std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(cost, 1));
  parallel_for(0, lines, grain, [&](int64_t b, int64_t e) {
    std::vector<Entry<T>> buf(n);
    for (int64_t line = b; line < e; ++line) {
      int64_t o = line / inner, i = line % inner;
      const T* src = rows_contiguous ? in + line * n
                                     : in + offset_of(o, outer_sizes, outer_strides) +
                                           offset_of(i, inner_sizes, inner_strides);
      if (step == 1) {
        for (int64_t j = 0; j < n; ++j) buf[j] = {src[j], j};
      } else {
        for (int64_t j = 0; j < n; ++j) buf[j] = {src[j * step], j};
      }
      if (k < n) std::nth_element(buf.begin(), buf.begin() + k, buf.end(), before);  // the k first, unordered
      std::sort(buf.begin(), buf.begin() + k, before);
      T* v = out_values + o * k * inner + i;
      int64_t* ix = out_indices + o * k * inner + i;
      for (int64_t j = 0; j < k; ++j) {
        v[j * inner] = buf[j].value;
        ix[j * inner] = buf[j].index;
      }
    }
  });
}

void sort_cpu(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
              bool descending) {
  dispatch_all(x.dtype(), "sort", [&]<class T>() { sort_typed<T>(values, indices, x, dim, k, descending); });
}

}  // namespace
EMBER_REGISTER_KERNEL(sort_stub, cpu, &sort_cpu);
}  // namespace ember::cpu
