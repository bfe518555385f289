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

// torch.lerp's formula (two forms, each exact at its end): a + w (b - a).
template <class T>
T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

template <class T>
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr_d, double momentum_d,
              double dampening_d, double wd_d, bool nesterov, bool first_step) {
  const T lr = static_cast<T>(lr_d), momentum = static_cast<T>(momentum_d), wd = static_cast<T>(wd_d);
  const T keep = static_cast<T>(1.0 - dampening_d);
  if (!buf.defined()) {
    zip_apply<T, 2>({&param, &grad}, [=](T& p, T& g) {
      T d = wd != T(0) ? g + wd * p : g;
      p = p + (-lr) * d;
    });
    return;
  }
  zip_apply<T, 3>({&param, &grad, &buf}, [=](T& p, T& g, T& b) {
    T d = wd != T(0) ? g + wd * p : g;
    b = first_step ? d : b * momentum + keep * d;
    d = nesterov ? d + momentum * b : b;
    p = p + (-lr) * d;
  });
}

template <class T>
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& m1, const Tensor& m2,
               const Tensor& vmax, double lr_d, double beta1_d, double beta2_d, double eps_d, double wd_d,
               bool decoupled, double step_size_d, double bc2_sqrt_d) {
  const T beta2 = static_cast<T>(beta2_d), eps = static_cast<T>(eps_d), wd = static_cast<T>(wd_d);
  const T w1 = static_cast<T>(1.0 - beta1_d), w2 = static_cast<T>(1.0 - beta2_d);
  const T decay = static_cast<T>(1.0 - lr_d * wd_d), step_size = static_cast<T>(step_size_d);
  const T bc2_sqrt = static_cast<T>(bc2_sqrt_d);
  auto update = [=](T& p, T g, T& m, T& v, T* vm) {
    if (decoupled) {
      p = p * decay;
    } else if (wd != T(0)) {
      g = g + wd * p;
    }
    m = lerp(m, g, w1);
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
    zip_apply<T, 4>({&param, &grad, &m1, &m2}, [&](T& p, T& g, T& m, T& v) { update(p, g, m, v, nullptr); });
  }
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
