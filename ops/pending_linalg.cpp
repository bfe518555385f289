// TEMPORARY: declared ops not yet implemented; each throws. Delete as the real ops land.
#include "ops/internal.h"
namespace ember {
#define EMBER_PENDING(name) fail("{}: not implemented yet", name)
Tensor matmul(const Tensor&, const Tensor&) { EMBER_PENDING("matmul"); }
Tensor linear(const Tensor&, const Tensor&, const Tensor&) { EMBER_PENDING("linear"); }
Tensor conv2d(const Tensor&, const Tensor&, const Tensor&, std::array<int64_t, 2>, std::array<int64_t, 2>,
              std::array<int64_t, 2>, int64_t) { EMBER_PENDING("conv2d"); }
Tensor max_pool2d(const Tensor&, std::array<int64_t, 2>, std::array<int64_t, 2>, std::array<int64_t, 2>) { EMBER_PENDING("max_pool2d"); }
Tensor avg_pool2d(const Tensor&, std::array<int64_t, 2>, std::array<int64_t, 2>, std::array<int64_t, 2>) { EMBER_PENDING("avg_pool2d"); }
Tensor adaptive_avg_pool2d(const Tensor&, std::array<int64_t, 2>) { EMBER_PENDING("adaptive_avg_pool2d"); }
Tensor dropout(const Tensor&, double, bool) { EMBER_PENDING("dropout"); }
}  // namespace ember
