// TEMPORARY: declared ops not yet implemented; each throws. Delete as the real ops land.
#include "ops/internal.h"
namespace ember {
#define EMBER_PENDING(name) fail("{}: not implemented yet", name)
Tensor gather(const Tensor&, int64_t, const Tensor&) { EMBER_PENDING("gather"); }
Tensor scatter(const Tensor&, int64_t, const Tensor&, const Tensor&) { EMBER_PENDING("scatter"); }
Tensor scatter_add(const Tensor&, int64_t, const Tensor&, const Tensor&) { EMBER_PENDING("scatter_add"); }
Tensor index_select(const Tensor&, int64_t, const Tensor&) { EMBER_PENDING("index_select"); }
Tensor embedding(const Tensor&, const Tensor&, int64_t) { EMBER_PENDING("embedding"); }
Tensor one_hot(const Tensor&, int64_t) { EMBER_PENDING("one_hot"); }
Tensor cat(const std::vector<Tensor>&, int64_t) { EMBER_PENDING("cat"); }
Tensor stack(const std::vector<Tensor>&, int64_t) { EMBER_PENDING("stack"); }
std::vector<Tensor> split(const Tensor&, int64_t, int64_t) { EMBER_PENDING("split"); }
std::vector<Tensor> chunk(const Tensor&, int64_t, int64_t) { EMBER_PENDING("chunk"); }
std::pair<Tensor, Tensor> sort(const Tensor&, int64_t, bool) { EMBER_PENDING("sort"); }
Tensor argsort(const Tensor&, int64_t, bool) { EMBER_PENDING("argsort"); }
std::pair<Tensor, Tensor> topk(const Tensor&, int64_t, int64_t, bool) { EMBER_PENDING("topk"); }
}  // namespace ember
