// CPU kernels of AnyLoss: one reduction pass (three sums) and one elementwise pass.
#include "losses/kernels/anyloss.h"

#include <cmath>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "losses/cpu/chunked_sum.h"

namespace ember::cpu {
namespace {

// The amplifying sigmoid q = sigmoid(t) and its slope sigmoid(t) sigmoid(-t), both from
// e = exp(-|t|) <= 1, so nothing overflows and the slope never suffers the cancellation of
// q - q^2 (in float32, sigmoid(36.5) rounds to 1 and q - q^2 would be exactly 0).
template <class T>
inline T amplify(T t) {
  T e = std::exp(-std::abs(t));
  return t >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
}
template <class T>
inline T amplify_slope(T t) {
  T e = std::exp(-std::abs(t));
  return e / ((T(1) + e) * (T(1) + e));
}

void anyloss_sums_cpu(const Tensor& p_t, const Tensor& y_t, double amplifier, const Tensor& out) {
  dispatch_floating(p_t.dtype(), "anyloss", [&]<class T>() {
    const T* p = p_t.data_ptr<T>();
    const T* y = y_t.data_ptr<T>();
    const T big_l = static_cast<T>(amplifier);
    const int64_t n = p_t.numel();
    auto sums = chunked_sums<5>(n, [&](int64_t begin, int64_t end, std::array<double, 5>& acc) {
      for (int64_t i = begin; i < end; ++i) {
        T q = amplify(big_l * (p[i] - T(0.5)));
        acc[0] += y[i];
        acc[1] += q;
        acc[2] += y[i] * q;
        acc[3] += (p[i] < T(0) || p[i] > T(1)) ? 1 : 0;
        acc[4] += (y[i] >= T(0) && y[i] <= T(1)) ? 0 : 1;
      }
    });
    double* o = static_cast<double*>(out.raw_data());
    for (int k = 0; k < 5; ++k) o[k] = sums[k];
    o[5] = 0;
    if (sums[3] + sums[4] > 0)  // error path only: find one offending value to report
      for (int64_t i = 0; i < n; ++i) {
        if (p[i] < T(0) || p[i] > T(1)) {
          o[5] = p[i];
          break;
        }
        if (sums[3] == 0 && !(y[i] >= T(0) && y[i] <= T(1))) {
          o[5] = y[i];
          break;
        }
      }
  });
}

void anyloss_backward_cpu(const Tensor& p_t, const Tensor& y_t, double amplifier, double c_pos, double c_neg,
                          const Tensor& grad) {
  dispatch_floating(p_t.dtype(), "anyloss", [&]<class T>() {
    const T* p = p_t.data_ptr<T>();
    const T* y = y_t.data_ptr<T>();
    T* g = static_cast<T*>(grad.raw_data());
    const T big_l = static_cast<T>(amplifier), cp = static_cast<T>(c_pos), cn = static_cast<T>(c_neg);
    parallel_for(0, p_t.numel(), kDefaultGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        g[i] = (cn + (cp - cn) * y[i]) * big_l * amplify_slope(big_l * (p[i] - T(0.5)));
    });
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(anyloss_sums_stub, cpu, &anyloss_sums_cpu);
EMBER_REGISTER_KERNEL(anyloss_backward_stub, cpu, &anyloss_backward_cpu);

}  // namespace ember::cpu
