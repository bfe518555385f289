// CPU max/min with indices along one dim (see ops/kernels/arg_reduce.h and ops/cpu/lanes.h).
#include "ops/kernels/arg_reduce.h"

#include <cmath>
#include <type_traits>

#include "ops/cpu/lanes.h"

namespace ember::cpu {
namespace {

// Whether v should replace the best so far. Strict comparison keeps the first of equal values;
// a NaN is never replaced and replaces any number.
template <bool kMax, class T>
inline bool better(T v, T best) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(best)) return false;
    if (std::isnan(v)) return true;
  }
  if constexpr (kMax) {
    return v > best;
  } else {
    return v < best;
  }
}

template <bool kMax, class T>
void arg_reduce_typed(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t dim) {
  const LaneGeometry g = lane_geometry(in.shape(), dim);
  const T* x = static_cast<const T*>(in.raw_data());
  T* val = static_cast<T*>(values.raw_data());
  int64_t* idx = static_cast<int64_t*>(indices.raw_data());

  for_each_lane_block(g, [&](int64_t o, int64_t j0, int64_t j1) {
    const T* lanes = x + o * g.n * g.inner + j0;
    const int64_t out0 = o * g.inner + j0, w = j1 - j0;
    if (g.inner == 1) {  // one contiguous lane
      T best = lanes[0];
      int64_t at = 0;
      for (int64_t k = 1; k < g.n; ++k)
        if (better<kMax>(lanes[k], best)) best = lanes[k], at = k;
      val[out0] = best;
      idx[out0] = at;
      return;
    }
    // a block of w side-by-side lanes: row k of the block is lanes + k * inner
    T best[kLaneBlock];
    int64_t at[kLaneBlock];
    for (int64_t j = 0; j < w; ++j) best[j] = lanes[j], at[j] = 0;
    for (int64_t k = 1; k < g.n; ++k) {
      const T* row = lanes + k * g.inner;
      for (int64_t j = 0; j < w; ++j)
        if (better<kMax>(row[j], best[j])) best[j] = row[j], at[j] = k;
    }
    for (int64_t j = 0; j < w; ++j) val[out0 + j] = best[j], idx[out0 + j] = at[j];
  });
}

void arg_reduce_cpu(ArgReduceOp op, const Tensor& values, const Tensor& indices, const Tensor& in,
                    int64_t dim) {
  dispatch_all(in.dtype(), "arg_reduce", [&]<class T>() {
    if (op == ArgReduceOp::max)
      arg_reduce_typed<true, T>(values, indices, in, dim);
    else
      arg_reduce_typed<false, T>(values, indices, in, dim);
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(arg_reduce_stub, cpu, &arg_reduce_cpu);
}  // namespace ember::cpu
