// CUDA kernels of AnyLoss and Tri-BCE (contracts: losses/kernels/anyloss.h, tri_bce.h; the CPU
// versions are losses/cpu/anyloss.cpp and tri_bce.cpp). Both losses need a few sums over the
// batch plus "the first offending label" for their error messages:
//   1. one thread per element writes its terms (in double) into a [K, n] table, and its own
//      index, or INT64_MAX, into [J, n] tables of "bad" positions;
//   2. the reduction kernel (reduce_stub) sums the terms into `out` and takes the smallest bad
//      index of each table;
//   3. one thread looks the offending value up.
// The backward passes are elementwise.
#include <array>

#include "cuda/loops.cuh"
#include "cuda/math.cuh"
#include "losses/kernels/anyloss.h"
#include "losses/kernels/tri_bce.h"
#include "ops/kernels/reduce.h"

namespace ember::cuda {
namespace {

constexpr int64_t kNoIndex = INT64_MAX;

// ---- AnyLoss ----

// The amplifying sigmoid q = sigmoid(t) and its slope sigmoid(t) sigmoid(-t), both from
// e = exp(-|t|) <= 1 (no overflow, no cancellation), as on the CPU.
template <class T>
__device__ __forceinline__ T amplify(T t) {
  const T e = dmath::exp(-dmath::fabs(t));
  return t >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}
template <class T>
__device__ __forceinline__ T amplify_slope(T t) {
  const T e = dmath::exp(-dmath::fabs(t));
  return e / ((T(1) + e) * (T(1) + e));
}

template <class T>
__global__ void anyloss_terms_kernel(double* terms, int64_t* bad, const T* p, const T* y, T big_l,
                                     int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T q = amplify(big_l * (p[i] - T(0.5)));
    const bool p_bad = p[i] < T(0) || p[i] > T(1);  // NaN passes (it yields a NaN loss)
    const bool y_bad = !(y[i] >= T(0) && y[i] <= T(1));
    terms[i] = y[i];
    terms[n + i] = q;
    terms[2 * n + i] = y[i] * q;
    terms[3 * n + i] = p_bad ? 1 : 0;
    terms[4 * n + i] = y_bad ? 1 : 0;
    bad[i] = p_bad ? i : kNoIndex;
    bad[n + i] = y_bad ? i : kNoIndex;
  }
}

// out[5] = the first bad p, else the first bad y, else 0 (the CPU's choice).
template <class T>
__global__ void anyloss_example_kernel(double* out5, const int64_t* first_bad, const T* p, const T* y) {
  out5[0] = first_bad[0] != kNoIndex
                ? static_cast<double>(p[first_bad[0]])
                : (first_bad[1] != kNoIndex ? static_cast<double>(y[first_bad[1]]) : 0.0);
}

void check_same(const char* op, const std::vector<const Tensor*>& ts) {
  for (const Tensor* t : ts)
    if (t->defined() && (t->shape() != ts[0]->shape() || t->dtype() != ts[0]->dtype() ||
                         !t->is_contiguous() || t->device() != ts[0]->device()))
      fail("{} (cuda): expected contiguous tensors of one shape and dtype, got {} {} and {} {}", op,
           ts[0]->dtype(), shape_str(ts[0]->shape()), t->dtype(), shape_str(t->shape()));
}

void check_out(const char* op, const Tensor& out, int64_t size, const Tensor& like) {
  if (out.numel() != size || out.dtype() != DType::float64 || !out.is_contiguous() ||
      out.device() != like.device())
    fail("{} (cuda): `out` must be a contiguous float64 [{}] on {}", op, size, like.device());
}

// Sums rows [0, k) of the [k, n] table into out[0..k) and returns the [j] smallest bad indices.
Tensor sum_terms(const Tensor& terms, const Tensor& bad, const Tensor& out, int64_t k) {
  const Device d = terms.device();
  Tensor sums = make_view(out, {k, 1}, {1, 1}, out.storage_offset());
  reduce_stub(d, ReduceOp::sum, sums, terms, std::vector<bool>{false, true});
  Tensor first_bad = empty_tensor({bad.size(0), 1}, DType::int64, d);
  reduce_stub(d, ReduceOp::min, first_bad, bad, std::vector<bool>{false, true});
  return first_bad;
}

void anyloss_sums_cuda(const Tensor& p, const Tensor& y, double amplifier, const Tensor& out) {
  check_same("anyloss", {&p, &y});
  check_out("anyloss", out, 6, p);
  KernelContext ctx(p, "anyloss");
  const int64_t n = p.numel();
  if (n == 0) {
    EMBER_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, 6 * sizeof(double), ctx.stream));
    return;
  }
  dispatch_floating(p.dtype(), "anyloss", [&]<class T>() {
    Tensor terms = empty_tensor({5, n}, DType::float64, p.device());
    Tensor bad = empty_tensor({2, n}, DType::int64, p.device());
    anyloss_terms_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<double*>(terms.raw_data()), static_cast<int64_t*>(bad.raw_data()),
        static_cast<const T*>(p.raw_data()), static_cast<const T*>(y.raw_data()), static_cast<T>(amplifier),
        n);
    EMBER_CUDA_CHECK_LAUNCH("anyloss_terms_kernel");
    Tensor first_bad = sum_terms(terms, bad, out, 5);
    anyloss_example_kernel<T><<<1, 1, 0, ctx.stream>>>(
        static_cast<double*>(out.raw_data()) + 5, static_cast<const int64_t*>(first_bad.raw_data()),
        static_cast<const T*>(p.raw_data()), static_cast<const T*>(y.raw_data()));
    EMBER_CUDA_CHECK_LAUNCH("anyloss_example_kernel");
  });
}

template <class T>
void anyloss_backward_typed(const KernelContext& ctx, const Tensor& p, const Tensor& y, double amplifier,
                            double c_pos, double c_neg, const Tensor& grad) {
  const T big_l = static_cast<T>(amplifier), cp = static_cast<T>(c_pos), cn = static_cast<T>(c_neg);
  gpu_map<T, T, T>(ctx,
                   [=] __device__(T pv, T yv) {
                     return (cn + (cp - cn) * yv) * big_l * amplify_slope(big_l * (pv - T(0.5)));
                   },
                   grad, {&p, &y});
}

void anyloss_backward_cuda(const Tensor& p, const Tensor& y, double amplifier, double c_pos, double c_neg,
                           const Tensor& grad) {
  check_same("anyloss backward", {&p, &y, &grad});
  KernelContext ctx(p, "anyloss backward");
  dispatch_floating(p.dtype(), "anyloss",
                    [&]<class T>() { anyloss_backward_typed<T>(ctx, p, y, amplifier, c_pos, c_neg, grad); });
}

// ---- Tri-BCE ----

// max(z, 0) - z y + log1p(exp(-|z|)): the logit form that never overflows.
template <class T>
__device__ __forceinline__ T bce_logit(T z, T y) {
  return (z < T(0) ? T(0) : z) - z * y + dmath::log1p(dmath::exp(-dmath::fabs(z)));
}

template <class T>
__global__ void tri_bce_terms_kernel(double* terms, int64_t* bad, const T* z, const T* za, const T* zb,
                                     const T* y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const bool y_bad = !(y[i] >= T(0) && y[i] <= T(1));
    terms[i] = bce_logit(z[i], y[i]);
    terms[n + i] = bce_logit(za[i], y[i]);
    terms[2 * n + i] = bce_logit(zb[i], y[i]);
    terms[3 * n + i] = y_bad ? 1 : 0;
    bad[i] = y_bad ? i : kNoIndex;
  }
}

template <class T>
__global__ void tri_bce_example_kernel(double* out4, const int64_t* first_bad, const T* y) {
  out4[0] = first_bad[0] != kNoIndex ? static_cast<double>(y[first_bad[0]]) : 0.0;
}

void tri_bce_sums_cuda(const Tensor& fused, const Tensor& a, const Tensor& b, const Tensor& target,
                       const Tensor& out) {
  check_same("tri_bce", {&fused, &a, &b, &target});
  check_out("tri_bce", out, 5, fused);
  KernelContext ctx(fused, "tri_bce");
  const int64_t n = fused.numel();
  if (n == 0) {
    EMBER_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, 5 * sizeof(double), ctx.stream));
    return;
  }
  dispatch_floating(fused.dtype(), "tri_bce", [&]<class T>() {
    Tensor terms = empty_tensor({4, n}, DType::float64, fused.device());
    Tensor bad = empty_tensor({1, n}, DType::int64, fused.device());
    tri_bce_terms_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<double*>(terms.raw_data()), static_cast<int64_t*>(bad.raw_data()),
        static_cast<const T*>(fused.raw_data()), static_cast<const T*>(a.raw_data()),
        static_cast<const T*>(b.raw_data()), static_cast<const T*>(target.raw_data()), n);
    EMBER_CUDA_CHECK_LAUNCH("tri_bce_terms_kernel");
    Tensor first_bad = sum_terms(terms, bad, out, 4);
    tri_bce_example_kernel<T><<<1, 1, 0, ctx.stream>>>(static_cast<double*>(out.raw_data()) + 4,
                                                       static_cast<const int64_t*>(first_bad.raw_data()),
                                                       static_cast<const T*>(target.raw_data()));
    EMBER_CUDA_CHECK_LAUNCH("tri_bce_example_kernel");
  });
}

template <class T>
void tri_bce_backward_typed(const KernelContext& ctx, const Tensor& z, const Tensor& y, double coef,
                            const Tensor& grad) {
  const T c = static_cast<T>(coef);
  gpu_map<T, T, T>(ctx, [c] __device__(T zv, T yv) { return c * (dmath::sigmoid(zv) - yv); }, grad, {&z, &y});
}

void tri_bce_backward_cuda(const Tensor& fused, const Tensor& a, const Tensor& b, const Tensor& target,
                           std::array<double, 3> coef, const Tensor& grad_fused, const Tensor& grad_a,
                           const Tensor& grad_b) {
  check_same("tri_bce backward", {&fused, &a, &b, &target, &grad_fused, &grad_a, &grad_b});
  KernelContext ctx(fused, "tri_bce backward");
  const Tensor* logits[3] = {&fused, &a, &b};
  const Tensor* grads[3] = {&grad_fused, &grad_a, &grad_b};
  dispatch_floating(fused.dtype(), "tri_bce", [&]<class T>() {
    for (int k = 0; k < 3; ++k)
      if (grads[k]->defined()) tri_bce_backward_typed<T>(ctx, *logits[k], target, coef[k], *grads[k]);
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(anyloss_sums_stub, cuda, &anyloss_sums_cuda);
EMBER_REGISTER_KERNEL(anyloss_backward_stub, cuda, &anyloss_backward_cuda);
EMBER_REGISTER_KERNEL(tri_bce_sums_stub, cuda, &tri_bce_sums_cuda);
EMBER_REGISTER_KERNEL(tri_bce_backward_stub, cuda, &tri_bce_backward_cuda);

}  // namespace ember::cuda
