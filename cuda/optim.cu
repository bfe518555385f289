// CUDA fused optimizer updates (contract: ops/kernels/optim.h): one kernel pass per parameter
// reads the gradient and the state and writes the new state and parameter in place, each
// element by one thread (gpu_zip, cuda/loops.cuh). The per-element arithmetic is the CPU's
// (ops/cpu/optim.cpp), which follows PyTorch's single-tensor implementation operation by
// operation, in the parameter's dtype. (The GPU may fuse a multiply and an add into one FMA, so
// results can differ from the CPU's in the last bit.)
#include "cuda/loops.cuh"
#include "cuda/math.cuh"
#include "ops/kernels/optim.h"

namespace ember::cuda {
namespace {

// torch.lerp's formula (two forms, each exact at its end): a + w (b - a).
template <class T>
__device__ __forceinline__ T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

void check_same(const char* op, const std::vector<const Tensor*>& ts) {
  const Tensor& p = *ts[0];
  for (const Tensor* t : ts)
    if (t->defined() && (t->shape() != p.shape() || t->dtype() != p.dtype() || t->device() != p.device()))
      fail("{} (cuda): state {} {} does not match the parameter {} {}", op, t->dtype(), shape_str(t->shape()),
           p.dtype(), shape_str(p.shape()));
}

template <class T>
void sgd_step(const KernelContext& ctx, const Tensor& param, const Tensor& grad, const Tensor& buf,
              double lr_d, double momentum_d, double dampening_d, double wd_d, bool nesterov,
              bool first_step) {
  const T lr = static_cast<T>(lr_d), momentum = static_cast<T>(momentum_d), wd = static_cast<T>(wd_d);
  const T keep = static_cast<T>(1.0 - dampening_d);
  if (!buf.defined()) {
    gpu_zip<T, 2>(ctx,
                  [=] __device__(T & p, T & g) {
                    T d = wd != T(0) ? g + wd * p : g;
                    p = p + (-lr) * d;
                  },
                  {&param, &grad});
    return;
  }
  gpu_zip<T, 3>(ctx,
                [=] __device__(T & p, T & g, T & b) {
                  T d = wd != T(0) ? g + wd * p : g;
                  b = first_step ? d : b * momentum + keep * d;
                  d = nesterov ? d + momentum * b : b;
                  p = p + (-lr) * d;
                },
                {&param, &grad, &buf});
}

// The Adam / AdamW update of one element; vm is the AMSGrad running max (nullptr without it).
template <class T>
struct AdamUpdate {
  T beta2, eps, wd, w1, w2, decay, step_size, bc2_sqrt;
  bool decoupled;
  __device__ __forceinline__ void operator()(T& p, T g, T& m, T& v, T* vm) const {
    if (decoupled) {
      p = p * decay;
    } else if (wd != T(0)) {
      g = g + wd * p;
    }
    m = lerp(m, g, w1);
    v = v * beta2 + w2 * g * g;  // mul_ then addcmul_: (w2 * g) * g
    T second = v;
    if (vm != nullptr) {
      *vm = *vm < v ? v : *vm;  // std::max(*vm, v)
      second = *vm;
    }
    const T denom = dmath::sqrt(second) / bc2_sqrt + eps;
    p = p + (-step_size) * m / denom;  // addcdiv_: (value * m) / denom
  }
};

template <class T>
void adam_step(const KernelContext& ctx, const Tensor& param, const Tensor& grad, const Tensor& m1,
               const Tensor& m2, const Tensor& vmax, double lr_d, double beta1_d, double beta2_d,
               double eps_d, double wd_d, bool decoupled, double step_size_d, double bc2_sqrt_d) {
  const AdamUpdate<T> u{
      static_cast<T>(beta2_d),       static_cast<T>(eps_d),         static_cast<T>(wd_d),
      static_cast<T>(1.0 - beta1_d), static_cast<T>(1.0 - beta2_d), static_cast<T>(1.0 - lr_d * wd_d),
      static_cast<T>(step_size_d),   static_cast<T>(bc2_sqrt_d),    decoupled};
  if (vmax.defined()) {
    gpu_zip<T, 5>(ctx, [u] __device__(T & p, T & g, T & m, T & v, T & vm) { u(p, g, m, v, &vm); },
                  {&param, &grad, &m1, &m2, &vmax});
  } else {
    gpu_zip<T, 4>(ctx, [u] __device__(T & p, T & g, T & m, T & v) { u(p, g, m, v, nullptr); },
                  {&param, &grad, &m1, &m2});
  }
}

void sgd_step_cuda(const Tensor& param, const Tensor& grad, const Tensor& buf, double lr, double momentum,
                   double dampening, double wd, bool nesterov, bool first_step) {
  check_same("SGD.step", {&param, &grad, &buf});
  KernelContext ctx(param, "SGD.step");
  dispatch_floating(param.dtype(), "SGD.step", [&]<class T>() {
    sgd_step<T>(ctx, param, grad, buf, lr, momentum, dampening, wd, nesterov, first_step);
  });
}

void adam_step_cuda(const Tensor& param, const Tensor& grad, const Tensor& m1, const Tensor& m2,
                    const Tensor& vmax, double lr, double beta1, double beta2, double eps, double wd,
                    bool decoupled, double step_size, double bc2_sqrt) {
  check_same("Adam.step", {&param, &grad, &m1, &m2, &vmax});
  KernelContext ctx(param, "Adam.step");
  dispatch_floating(param.dtype(), "Adam.step", [&]<class T>() {
    adam_step<T>(ctx, param, grad, m1, m2, vmax, lr, beta1, beta2, eps, wd, decoupled, step_size, bc2_sqrt);
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(sgd_step_stub, cuda, &sgd_step_cuda);
EMBER_REGISTER_KERNEL(adam_step_stub, cuda, &adam_step_cuda);

}  // namespace ember::cuda
