// TEMPORARY: declared ops not yet implemented; each throws. Delete as the real ops land.
#include "ops/internal.h"
namespace ember {
#define EMBER_PENDING(name) fail("{}: not implemented yet", name)
std::pair<Tensor, Tensor> max(const Tensor&, int64_t, bool) { EMBER_PENDING("max"); }
std::pair<Tensor, Tensor> min(const Tensor&, int64_t, bool) { EMBER_PENDING("min"); }
Tensor argmax(const Tensor&, int64_t, bool) { EMBER_PENDING("argmax"); }
Tensor argmin(const Tensor&, int64_t, bool) { EMBER_PENDING("argmin"); }
Tensor logsumexp(const Tensor&, const Shape&, bool) { EMBER_PENDING("logsumexp"); }
Tensor var(const Tensor&, const Shape&, int64_t, bool) { EMBER_PENDING("var"); }
Tensor std(const Tensor&, const Shape&, int64_t, bool) { EMBER_PENDING("std"); }
Tensor norm(const Tensor&, double) { EMBER_PENDING("norm"); }
Tensor norm(const Tensor&, double, const Shape&, bool) { EMBER_PENDING("norm"); }
Tensor cumsum(const Tensor&, int64_t) { EMBER_PENDING("cumsum"); }
Tensor logcumsumexp(const Tensor&, int64_t) { EMBER_PENDING("logcumsumexp"); }
Tensor softmax(const Tensor&, int64_t) { EMBER_PENDING("softmax"); }
Tensor log_softmax(const Tensor&, int64_t) { EMBER_PENDING("log_softmax"); }
}  // namespace ember
