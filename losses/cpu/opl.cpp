// CPU kernels of OPL (contract in losses/kernels/opl.h): the batch Gram formulation, with the
// two O(B^2 D) products (G = F^ F^T forward, 2 W F^ backward) done by OpenBLAS and everything
// else O(B^2 + B D).
#include "losses/kernels/opl.h"

#include <cmath>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/tensor_impl.h"
#include "losses/cpu/data.h"
#include "ops/cpu/blas.h"

namespace ember::losses::cpu {
namespace {

// Upper triangle of c = a a^T (a is [n, k] row-major) by syrk, then mirrored to the lower one, so
// G is exactly symmetric (a gemm could round G_ij and G_ji differently, and sign(G) must agree).
template <class T>
void gram_of(const T* a, T* c, int64_t n, int64_t k) {
  const int N = ember::cpu::blas_int(n, "opl", "batch size"),
            K = ember::cpu::blas_int(k, "opl", "feature size");
  if constexpr (std::is_same_v<T, float>)
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, N, K, 1.0f, a, K, 0.0f, c, N);
  else
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, N, K, 1.0, a, K, 0.0, c, N);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) c[i * n + j] = c[j * n + i];
}

// out = alpha * a b with a [n, n] and b [n, k], row-major.
template <class T>
void matmul_into(T alpha, const T* a, const T* b, T* out, int64_t n, int64_t k) {
  const int N = static_cast<int>(n), K = static_cast<int>(k);  // checked by gram_of in the forward
  ember::cpu::blas_gemm<T>(false, false, N, K, N, alpha, a, N, b, K, T(0), out, K);
}

template <class T>
T sign_of(T v) {
  return static_cast<T>((v > 0) - (v < 0));  // sign(0) = 0, as PyTorch's abs backward
}

// Ordered-pair counts: every unordered pair (i < j) is two ordered ones.
struct PairCounts {
  double positive = 0, negative = 0;
};
PairCounts count_pairs(const int64_t* y, int64_t b) {
  PairCounts n;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = i + 1; j < b; ++j) (y[i] == y[j] ? n.positive : n.negative) += 2;
  return n;
}

template <class T>
void opl_forward(const Tensor& loss_t, const Tensor& normalized_t, const Tensor& norms_t,
                 const Tensor& gram_t, const Tensor& features_t, const Tensor& labels_t, double gamma,
                 bool absolute_inter) {
  const int64_t B = features_t.size(0), D = features_t.size(1);
  const T* f = in_data<T>(features_t);
  const int64_t* y = in_data<int64_t>(labels_t);
  T* fhat = out_data<T>(normalized_t);
  T* norms = out_data<T>(norms_t);
  T* G = out_data<T>(gram_t);
  parallel_for(0, B, std::max<int64_t>(1, kDefaultGrain / D), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double sq = 0;
      for (int64_t k = 0; k < D; ++k) sq += static_cast<double>(f[i * D + k]) * f[i * D + k];
      const double norm = std::sqrt(sq);
      norms[i] = static_cast<T>(norm);
      const T inv = static_cast<T>(1.0 / std::max(norm, kOPLNormFloor));
      for (int64_t k = 0; k < D; ++k) fhat[i * D + k] = f[i * D + k] * inv;
    }
  });
  gram_of(fhat, G, B, D);
  // Sums over unordered pairs; halving both a sum and its count leaves the mean unchanged.
  double pos = 0, neg = 0;
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = i + 1; j < B; ++j) {
      const double g = G[i * B + j];
      if (y[i] == y[j])
        pos += 2 * g;
      else
        neg += 2 * (absolute_inter ? std::abs(g) : g);
    }
  const PairCounts n = count_pairs(y, B);
  const double s = n.positive > 0 ? pos / n.positive : 0.0;
  const double d = n.negative > 0 ? neg / n.negative : 0.0;
  *out_data<T>(loss_t) = static_cast<T>(1.0 - s + gamma * d);
}

template <class T>
void opl_backward(const Tensor& grad_t, const Tensor& grad_loss_t, const Tensor& normalized_t,
                  const Tensor& norms_t, const Tensor& gram_t, const Tensor& labels_t, double gamma,
                  bool absolute_inter) {
  const int64_t B = normalized_t.size(0), D = normalized_t.size(1);
  const T* fhat = in_data<T>(normalized_t);
  const T* norms = in_data<T>(norms_t);
  const T* G = in_data<T>(gram_t);
  const int64_t* y = in_data<int64_t>(labels_t);
  T* grad = out_data<T>(grad_t);
  const PairCounts n = count_pairs(y, B);
  const T w_pos = n.positive > 0 ? static_cast<T>(-1.0 / n.positive) : T(0);
  const T w_neg = n.negative > 0 ? static_cast<T>(gamma / n.negative) : T(0);
  std::vector<T> W(B * B);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < B; ++j) {
      T w = 0;
      if (i != j) w = y[i] == y[j] ? w_pos : w_neg * (absolute_inter ? sign_of(G[i * B + j]) : T(1));
      W[i * B + j] = w;
    }
  // dL/dF^ = (W + W^T) F^ = 2 W F^ (W is symmetric), scaled by the upstream gradient
  const T upstream = *in_data<T>(grad_loss_t);
  matmul_into(static_cast<T>(2) * upstream, W.data(), fhat, grad, B, D);
  parallel_for(0, B, std::max<int64_t>(1, kDefaultGrain / D), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      T* g = grad + i * D;
      const T* u = fhat + i * D;
      if (!(norms[i] > kOPLNormFloor)) {  // clamped: f^ = f / 1e-12 is linear in f
        for (int64_t k = 0; k < D; ++k) g[k] = static_cast<T>(g[k] / kOPLNormFloor);
        continue;
      }
      // remove the radial component: the loss does not change with the scale of f_i
      double radial = 0;
      for (int64_t k = 0; k < D; ++k) radial += static_cast<double>(u[k]) * g[k];
      const T r = static_cast<T>(radial), inv = static_cast<T>(1.0 / norms[i]);
      for (int64_t k = 0; k < D; ++k) g[k] = (g[k] - u[k] * r) * inv;
    }
  });
}

void opl_forward_cpu(const Tensor& loss, const Tensor& normalized, const Tensor& norms, const Tensor& gram,
                     const Tensor& features, const Tensor& labels, double gamma, bool absolute_inter) {
  dispatch_floating(features.dtype(), "opl", [&]<class T>() {
    opl_forward<T>(loss, normalized, norms, gram, features, labels, gamma, absolute_inter);
  });
}
void opl_backward_cpu(const Tensor& grad, const Tensor& grad_loss, const Tensor& normalized,
                      const Tensor& norms, const Tensor& gram, const Tensor& labels, double gamma,
                      bool absolute_inter) {
  dispatch_floating(grad.dtype(), "opl", [&]<class T>() {
    opl_backward<T>(grad, grad_loss, normalized, norms, gram, labels, gamma, absolute_inter);
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(opl_forward_stub, cpu, &opl_forward_cpu);
EMBER_REGISTER_KERNEL(opl_backward_stub, cpu, &opl_backward_cpu);

}  // namespace ember::losses::cpu
