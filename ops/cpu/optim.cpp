// CPU kernels for the fused optimizer updates (contract in ops/kernels/optim.h). Each element's
// update follows PyTorch's single-tensor implementation operation by operation, in the
// parameter's dtype, so float32 trajectories match PyTorch's to rounding.
#include "ops/kernels/optim.h"

#include <cmath>
#include <utility>

#include "ops/cpu/loops.h"

namespace ember::cpu {
namespace {

// Calls f(e0, e1, ...) with references to element i of every operand, for all i.
template <class T, size_t N, class F>
void zip_apply(const std::array<const Tensor*, N>& ops, const F& f) {
  StridedLoop<static_cast<int>(N)> loop(ops);
  loop.run([&](char* const* p, const int64_t* s, int64_t n) {
    bool dense = true;
    for (size_t k = 0; k < N; ++k) dense = dense && s[k] == static_cast<int64_t>(sizeof(T));
    [&]<size_t... K>(std::index_sequence<K...>) {
      if (dense) {
        for (int64_t i = 0; i < n; ++i) f(reinterpret_cast<T*>(p[K])[i]...);
      } else {
        for (int64_t i = 0; i < n; ++i) f(*reinterpret_cast<T*>(p[K] + i * s[K])...);
      }
    }
    (std::make_index_sequence<N>{});
  });
}

// Calls f.template operator()<b0, b1, ...>() with the runtime flags as compile-time constants. The
// update loops then have no branches inside (a flag tested per element is "control flow" that keeps
// the compiler from vectorising them), at the price of one instantiation per combination.
template <bool... Fixed, class F>
void with_flags(const F& f) {
  f.template operator()<Fixed...>();
}
template <bool... Fixed, class F, class... Rest>
void with_flags(const F& f, bool flag, Rest... rest) {
  if (flag)
    with_flags<Fixed..., true>(f, rest...);
  else
    with_flags<Fixed..., false>(f, rest...);
}

template <class T>
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr_d, double momentum_d,
              double dampening_d, double wd_d, bool nesterov, bool first_step) {
  const T lr = static_cast<T>(lr_d), momentum = static_cast<T>(momentum_d), wd = static_cast<T>(wd_d);
  const T keep = static_cast<T>(1.0 - dampening_d);
  if (!buf.defined()) {
    with_flags(
        [&]<bool kDecay>() {
          zip_apply<T, 2>({&param, &grad}, [=](T& p, T& g) {
            T d = g;
            if constexpr (kDecay) d = g + wd * p;
            p = p + (-lr) * d;
          });
        },
        wd != T(0));
    return;
  }
  with_flags(
      [&]<bool kDecay, bool kFirst, bool kNesterov>() {
        zip_apply<T, 3>({&param, &grad, &buf}, [=](T& p, T& g, T& b) {
          T d = g;
          if constexpr (kDecay) d = g + wd * p;
          if constexpr (kFirst)
            b = d;
          else
            b = b * momentum + keep * d;
          if constexpr (kNesterov)
            d = d + momentum * b;
          else
            d = b;
          p = p + (-lr) * d;
        });
      },
      wd != T(0), first_step, nesterov);
}

template <class T>
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& m1, const Tensor& m2,
               const Tensor& vmax, double lr_d, double beta1_d, double beta2_d, double eps_d, double wd_d,
               bool decoupled, double step_size_d, double bc2_sqrt_d) {
  const T beta2 = static_cast<T>(beta2_d), eps = static_cast<T>(eps_d), wd = static_cast<T>(wd_d);
  const T w1 = static_cast<T>(1.0 - beta1_d), w2 = static_cast<T>(1.0 - beta2_d);
  const T decay = static_cast<T>(1.0 - lr_d * wd_d), step_size = static_cast<T>(step_size_d);
  const T bc2_sqrt = static_cast<T>(bc2_sqrt_d);
  with_flags(
      [&]<bool kDecoupled, bool kDecay, bool kLerpFromA>() {
        auto update = [=](T& p, T g, T& m, T& v, T* vm) {
          if constexpr (kDecoupled) p = p * decay;
          if constexpr (kDecay) g = g + wd * p;
          // m = torch.lerp(m, g, w1): two forms, each exact at its end, chosen by w1 < 0.5
          if constexpr (kLerpFromA)
            m = m + w1 * (g - m);
          else
            m = g - (g - m) * (T(1) - w1);
          v = v * beta2 + w2 * g * g;  // mul_ then addcmul_: (w2 * g) * g
          T second = v;
          if (vm) {
            *vm = std::max(*vm, v);
            second = *vm;
          }
          T denom = std::sqrt(second) / bc2_sqrt + eps;
          p = p + (-step_size) * m / denom;  // addcdiv_: (value * m) / denom
        };
        if (vmax.defined()) {
          zip_apply<T, 5>({&param, &grad, &m1, &m2, &vmax},
                          [&](T& p, T& g, T& m, T& v, T& vm) { update(p, g, m, v, &vm); });
        } else {
          zip_apply<T, 4>({&param, &grad, &m1, &m2},
                          [&](T& p, T& g, T& m, T& v) { update(p, g, m, v, nullptr); });
        }
      },
      decoupled, !decoupled && wd != T(0), w1 < T(0.5));
}

void sgd_step_cpu(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr, double momentum,
                  double dampening, double wd, bool nesterov, bool first_step) {
  dispatch_floating(param.dtype(), "SGD.step", [&]<class T>() {
    sgd_step<T>(param, grad, buf, lr, momentum, dampening, wd, nesterov, first_step);
  });
}

void adam_step_cpu(const Tensor& param, const Tensor& grad, const Tensor& m1, const Tensor& m2,
                   const Tensor& vmax, double lr, double beta1, double beta2, double eps, double wd,
                   bool decoupled, double step_size, double bc2_sqrt) {
  dispatch_floating(param.dtype(), "Adam.step", [&]<class T>() {
    adam_step<T>(param, grad, m1, m2, vmax, lr, beta1, beta2, eps, wd, decoupled, step_size, bc2_sqrt);
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(sgd_step_stub, cpu, &sgd_step_cpu);
EMBER_REGISTER_KERNEL(adam_step_stub, cpu, &adam_step_cpu);
}  // namespace ember::cpu
