// CPU scans along one dim (see ops/kernels/scan.h). A scan is sequential along its lane, so the
// parallelism is across lanes; for inner > 1 a job carries a block of side-by-side lanes and
// advances them together one row at a time (ops/cpu/lanes.h), so each row read is contiguous.
#include "ops/kernels/scan.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/cpu/lanes.h"

namespace ember::cpu {
namespace {

// log(exp(a) + exp(b)) without overflow: factor out the larger term. The infinite cases are
// answered directly, because hi - lo would be inf - inf = NaN for two infinities of one sign.
inline double log_add_exp(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::quiet_NaN();
  double hi = std::max(a, b), lo = std::min(a, b);
  if (lo == -INFINITY || hi == INFINITY) return hi;
  return hi + std::log1p(std::exp(lo - hi));
}

template <class T, class Out, class Acc, class Combine>
void scan_typed(const Tensor& out, const Tensor& in, int64_t dim, bool reverse, bool exclusive, Acc identity,
                Combine combine) {
  const LaneGeometry g = lane_geometry(in.shape(), dim);
  const T* x = static_cast<const T*>(in.raw_data());
  Out* y = static_cast<Out*>(out.raw_data());
  for_each_lane_block(g, [&](int64_t o, int64_t j0, int64_t j1) {
    const int64_t base = o * g.n * g.inner + j0, w = j1 - j0;
    Acc acc[kLaneBlock];
    for (int64_t j = 0; j < w; ++j) acc[j] = identity;
    for (int64_t step = 0; step < g.n; ++step) {
      const int64_t k = reverse ? g.n - 1 - step : step;
      const T* xr = x + base + k * g.inner;
      Out* yr = y + base + k * g.inner;
      if (exclusive) {
        for (int64_t j = 0; j < w; ++j) {
          yr[j] = static_cast<Out>(acc[j]);
          acc[j] = combine(acc[j], static_cast<Acc>(xr[j]));
        }
      } else {
        for (int64_t j = 0; j < w; ++j) {
          acc[j] = combine(acc[j], static_cast<Acc>(xr[j]));
          yr[j] = static_cast<Out>(acc[j]);
        }
      }
    }
  });
}

void scan_cpu(ScanOp op, const Tensor& out, const Tensor& in, int64_t dim, bool reverse, bool exclusive) {
  dispatch_all(in.dtype(), "scan", [&]<class T>() {
    constexpr bool kFloat = std::is_floating_point_v<T>;
    using Out = std::conditional_t<kFloat, T, int64_t>;
    using Acc = std::conditional_t<kFloat, double, int64_t>;
    switch (op) {
      case ScanOp::sum:
        return scan_typed<T, Out, Acc>(out, in, dim, reverse, exclusive, Acc(0),
                                       [](Acc a, Acc b) { return a + b; });
      case ScanOp::prod:
        return scan_typed<T, Out, Acc>(out, in, dim, reverse, exclusive, Acc(1),
                                       [](Acc a, Acc b) { return a * b; });
      case ScanOp::logsumexp:
        if constexpr (kFloat) {
          return scan_typed<T, Out, double>(out, in, dim, reverse, exclusive, -INFINITY, log_add_exp);
        } else {
          fail("logcumsumexp: expected a floating dtype, got {}", in.dtype());
        }
    }
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(scan_stub, cpu, &scan_cpu);
}  // namespace ember::cpu
