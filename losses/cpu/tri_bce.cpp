// CPU kernels of Tri-BCE: one reduction pass for the three BCE sums, one elementwise pass for
// the three gradients. Inputs are contiguous (the op makes them so).
#include "losses/kernels/tri_bce.h"

#include <cmath>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "losses/cpu/chunked_sum.h"

namespace ember::cpu {
namespace {

// Binary cross-entropy of one logit, in the form that never overflows: for z >> 0 the log1p
// term vanishes and the loss is z*(1-y); for z << 0 it is -z*y.
template <class T>
inline T bce_logit(T z, T y) {
  return std::max(z, T(0)) - z * y + std::log1p(std::exp(-std::abs(z)));
}

template <class T>
inline T sigmoid(T z) {  // never evaluates exp of a large positive number
  if (z >= 0) return T(1) / (T(1) + std::exp(-z));
  T e = std::exp(z);
  return e / (T(1) + e);
}

void tri_bce_sums_cpu(const Tensor& fused, const Tensor& a, const Tensor& b, const Tensor& target,
                      const Tensor& out) {
  dispatch_floating(fused.dtype(), "tri_bce", [&]<class T>() {
    const T* z = fused.data_ptr<T>();
    const T* za = a.data_ptr<T>();
    const T* zb = b.data_ptr<T>();
    const T* y = target.data_ptr<T>();
    // acc[4] keeps the first bad label seen in the chunk, acc[3] the count.
    auto sums = chunked_sums<5>(fused.numel(), [&](int64_t begin, int64_t end, std::array<double, 5>& acc) {
      for (int64_t i = begin; i < end; ++i) {
        acc[0] += bce_logit(z[i], y[i]);
        acc[1] += bce_logit(za[i], y[i]);
        acc[2] += bce_logit(zb[i], y[i]);
        if (!(y[i] >= T(0) && y[i] <= T(1))) {
          if (acc[3] == 0) acc[4] = y[i];
          acc[3] += 1;
        }
      }
    });
    double* o = static_cast<double*>(out.raw_data());
    for (int k = 0; k < 4; ++k) o[k] = sums[k];
    // chunked_sums adds the per-chunk examples together; recover one real example instead.
    o[4] = 0;
    if (sums[3] > 0)
      for (int64_t i = 0; i < fused.numel(); ++i)
        if (!(y[i] >= T(0) && y[i] <= T(1))) {
          o[4] = y[i];
          break;
        }
  });
}

void tri_bce_backward_cpu(const Tensor& fused, const Tensor& a, const Tensor& b, const Tensor& target,
                          std::array<double, 3> coef, const Tensor& grad_fused, const Tensor& grad_a,
                          const Tensor& grad_b) {
  dispatch_floating(fused.dtype(), "tri_bce", [&]<class T>() {
    const T* y = target.data_ptr<T>();
    const Tensor* logits[3] = {&fused, &a, &b};
    const Tensor* grads[3] = {&grad_fused, &grad_a, &grad_b};
    for (int k = 0; k < 3; ++k) {
      if (!grads[k]->defined()) continue;
      const T* z = logits[k]->data_ptr<T>();
      T* g = static_cast<T*>(grads[k]->raw_data());
      const T c = static_cast<T>(coef[k]);
      parallel_for(0, fused.numel(), kDefaultGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) g[i] = c * (sigmoid(z[i]) - y[i]);
      });
    }
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(tri_bce_sums_stub, cpu, &tri_bce_sums_cpu);
EMBER_REGISTER_KERNEL(tri_bce_backward_stub, cpu, &tri_bce_backward_cpu);

}  // namespace ember::cpu
