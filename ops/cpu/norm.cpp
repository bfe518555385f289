// CPU kernels for batch norm, layer norm and group norm (contracts in ops/kernels/norm.h).
//
// Batch norm views x [N, C, S] as N * C "planes" of S contiguous values. Every pass works plane
// by plane in parallel and leaves one partial sum per plane; channels then add up their N partial
// sums in a fixed order. That keeps all cores busy even with few channels (C = 1 for grayscale
// images) and gives the same bits whatever the thread count.
#include "ops/kernels/norm.h"

#include <cmath>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu/vector_math.h"

namespace ember::cpu {
namespace {

// Enough planes (or rows) per task that a task does ~32k element-steps of work.
int64_t grain_for(int64_t inner) { return std::max<int64_t>(1, kDefaultGrain / std::max<int64_t>(inner, 1)); }

// Kernels get const handles to the tensors they write; the dtype was checked by the dispatch.
template <class T>
T* data(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}
template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? data<T>(t) : nullptr;
}

// ---- batch norm ----

// sums[c] = sum over n of plane_fn(n, c) (each plane's value is computed in parallel).
template <class PlaneFn>
std::vector<double> per_channel_sum(int64_t N, int64_t C, int64_t S, const PlaneFn& plane_fn) {
  std::vector<double> plane(static_cast<size_t>(N * C));
  parallel_for(0, N * C, grain_for(S), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) plane[p] = plane_fn(p / C, p % C);
  });
  std::vector<double> sums(static_cast<size_t>(C), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) sums[c] += plane[n * C + c];
  return sums;
}

// Sums over a contiguous run (a batch-norm plane, a layer-norm row), with eight partial sums in double
// (sum_of, ops/cpu/vector_math.h) so that the loops vectorise in every clone, and the order of additions is
// the same whatever the vector width.
template <class T>
EMBER_VECTOR_CLONES double run_sum(const T* v, int64_t n) {
  return sum_of<double>(n, [&](int64_t i) { return v[i]; });
}
template <class T>
EMBER_VECTOR_CLONES double run_squared_deviations(const T* v, int64_t n, double m) {
  return sum_of<double>(n, [&](int64_t i) {
    const double d = v[i] - m;
    return d * d;
  });
}
template <class T>
EMBER_VECTOR_CLONES double run_dot_deviations(const T* g, const T* v, int64_t n, double m) {
  return sum_of<double>(n, [&](int64_t i) { return g[i] * (v[i] - m); });
}
// Layer norm's backward sums over a row: sum(g w) and sum(g w (x - mean)) (w = 1 without weight).
template <class T>
EMBER_VECTOR_CLONES std::pair<double, double> run_weighted_sums(const T* g, const T* w, const T* v, int64_t n,
                                                                double m) {
  if (!w) return {run_sum(g, n), run_dot_deviations(g, v, n, m)};
  return {sum_of<double>(n, [&](int64_t i) { return static_cast<double>(g[i]) * w[i]; }),
          sum_of<double>(n, [&](int64_t i) { return static_cast<double>(g[i]) * w[i] * (v[i] - m); })};
}

template <class T>
void batch_norm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
  const T* px = data<T>(x);
  const double count = static_cast<double>(N * S);
  // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels badly.
  std::vector<double> mu =
      per_channel_sum(N, C, S, [&](int64_t n, int64_t c) { return run_sum(px + (n * C + c) * S, S); });
  for (double& m : mu) m /= count;
  std::vector<double> sq = per_channel_sum(
      N, C, S, [&](int64_t n, int64_t c) { return run_squared_deviations(px + (n * C + c) * S, S, mu[c]); });
  T* pm = data<T>(mean);
  T* pv = data<T>(var);
  for (int64_t c = 0; c < C; ++c) {
    pm[c] = static_cast<T>(mu[c]);
    pv[c] = static_cast<T>(sq[c] / count);
  }
}

template <class T>
void batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                      const Tensor& bias, const Tensor& out) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
  const T *pm = data<T>(mean), *pi = data<T>(invstd);
  const T *pw = ptr_or_null<T>(weight), *pb = ptr_or_null<T>(bias);
  // Fold everything into y = x * scale + shift per channel.
  std::vector<T> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    double s = static_cast<double>(pi[c]) * (pw ? pw[c] : 1.0);
    scale[c] = static_cast<T>(s);
    shift[c] = static_cast<T>((pb ? pb[c] : 0.0) - static_cast<double>(pm[c]) * s);
  }
  const T* px = data<T>(x);
  T* py = data<T>(out);
  parallel_for(0, N * C, grain_for(S), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const T s = scale[p % C], h = shift[p % C];
      const T* v = px + p * S;
      T* o = py + p * S;
      for (int64_t i = 0; i < S; ++i) o[i] = v[i] * s + h;
    }
  });
}

template <class T>
void batch_norm_backward(const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                         const Tensor& weight, bool batch_stats, const Tensor& grad_input,
                         const Tensor& grad_weight, const Tensor& grad_bias) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
  const T *px = data<T>(x), *pg = data<T>(grad_out);
  const T *pm = data<T>(mean), *pi = data<T>(invstd), *pw = ptr_or_null<T>(weight);
  const bool need_sums =
      grad_weight.defined() || grad_bias.defined() || (grad_input.defined() && batch_stats);
  std::vector<double> sum_dy(C, 0.0), sum_dy_xc(C, 0.0);  // sum(dy), sum(dy * (x - mean))
  if (need_sums) {
    sum_dy = per_channel_sum(N, C, S, [&](int64_t n, int64_t c) { return run_sum(pg + (n * C + c) * S, S); });
    sum_dy_xc = per_channel_sum(N, C, S, [&](int64_t n, int64_t c) {
      const int64_t p = (n * C + c) * S;
      return run_dot_deviations(pg + p, px + p, S, static_cast<double>(pm[c]));
    });
  }
  if (grad_bias.defined()) {
    T* p = data<T>(grad_bias);
    for (int64_t c = 0; c < C; ++c) p[c] = static_cast<T>(sum_dy[c]);
  }
  if (grad_weight.defined()) {
    T* p = data<T>(grad_weight);
    for (int64_t c = 0; c < C; ++c) p[c] = static_cast<T>(sum_dy_xc[c] * pi[c]);
  }
  if (!grad_input.defined()) return;
  // dx = k * dy - k * a - (x - mean) * k * r, per channel:
  //   k = weight * invstd, a = sum(dy) / M, r = invstd^2 * sum(dy * (x - mean)) / M
  const double M = static_cast<double>(N * S);
  std::vector<T> k(C), ka(C), kr(C), m(C);
  for (int64_t c = 0; c < C; ++c) {
    double kc = (pw ? pw[c] : 1.0) * static_cast<double>(pi[c]);
    double ic = pi[c];
    k[c] = static_cast<T>(kc);
    ka[c] = static_cast<T>(batch_stats ? kc * sum_dy[c] / M : 0.0);
    kr[c] = static_cast<T>(batch_stats ? kc * ic * ic * sum_dy_xc[c] / M : 0.0);
    m[c] = pm[c];
  }
  T* pdx = data<T>(grad_input);
  parallel_for(0, N * C, grain_for(S), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const int64_t c = p % C;
      const T kc = k[c], kac = ka[c], krc = kr[c], mc = m[c];
      const T *g = pg + p * S, *v = px + p * S;
      T* o = pdx + p * S;
      for (int64_t i = 0; i < S; ++i) o[i] = kc * g[i] - kac - (v[i] - mc) * krc;
    }
  });
}

// ---- layer norm ----

template <class T>
void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const int64_t M = x.size(0), N = x.size(1);
  const T *px = data<T>(x), *pw = ptr_or_null<T>(weight), *pb = ptr_or_null<T>(bias);
  T *py = data<T>(out), *pm = data<T>(mean), *pr = data<T>(rstd);
  parallel_for(0, M, grain_for(N), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* v = px + r * N;
      const double mu = run_sum(v, N) / static_cast<double>(N);
      const double var = run_squared_deviations(v, N, mu) / static_cast<double>(N);
      const double rs = 1.0 / std::sqrt(var + eps);
      pm[r] = static_cast<T>(mu);
      pr[r] = static_cast<T>(rs);
      const T tm = static_cast<T>(mu), trs = static_cast<T>(rs);
      T* o = py + r * N;
      if (pw && pb) {
        for (int64_t i = 0; i < N; ++i) o[i] = (v[i] - tm) * trs * pw[i] + pb[i];
      } else {
        for (int64_t i = 0; i < N; ++i) o[i] = (v[i] - tm) * trs * (pw ? pw[i] : T(1)) + (pb ? pb[i] : T(0));
      }
    }
  });
}

template <class T>
void layer_norm_backward(const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, const Tensor& grad_input, const Tensor& grad_weight,
                         const Tensor& grad_bias) {
  const int64_t M = x.size(0), N = x.size(1);
  const T *px = data<T>(x), *pg = data<T>(grad_out), *pw = ptr_or_null<T>(weight);
  const T *pm = data<T>(mean), *pr = data<T>(rstd);
  if (grad_input.defined()) {
    T* pdx = data<T>(grad_input);
    parallel_for(0, M, grain_for(N), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T *g = pg + r * N, *v = px + r * N;
        const double mu = pm[r], rs = pr[r];
        // sums of g = dy * w and of g * xhat = g * (x - mean) * rstd
        const auto [sum_g, sum_g_dev] = run_weighted_sums(g, pw, v, N, mu);
        const double sum_gx = sum_g_dev * rs;
        const T a = static_cast<T>(sum_g / static_cast<double>(N));
        const T c = static_cast<T>(sum_gx / static_cast<double>(N));
        const T tm = static_cast<T>(mu), trs = static_cast<T>(rs);
        T* o = pdx + r * N;
        for (int64_t i = 0; i < N; ++i) {
          T xhat = (v[i] - tm) * trs;
          o[i] = trs * (g[i] * (pw ? pw[i] : T(1)) - a - xhat * c);
        }
      }
    });
  }
  if (!grad_weight.defined() && !grad_bias.defined()) return;
  // Column sums over rows: a fixed number of row blocks each sums into its own partial row, then
  // the partials are added in block order (deterministic, independent of the thread count).
  const int64_t blocks = std::min<int64_t>(M, 64), rows_per = (M + blocks - 1) / blocks;
  std::vector<double> part_w(static_cast<size_t>(blocks * N), 0.0),
      part_b(static_cast<size_t>(blocks * N), 0.0);
  parallel_for(0, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      double *w = &part_w[blk * N], *bb = &part_b[blk * N];
      for (int64_t r = blk * rows_per; r < std::min(M, (blk + 1) * rows_per); ++r) {
        const T *g = pg + r * N, *v = px + r * N;
        const double mu = pm[r], rs = pr[r];
        for (int64_t i = 0; i < N; ++i) {
          w[i] += static_cast<double>(g[i]) * (v[i] - mu) * rs;
          bb[i] += g[i];
        }
      }
    }
  });
  T* gw = grad_weight.defined() ? data<T>(grad_weight) : nullptr;
  T* gb = grad_bias.defined() ? data<T>(grad_bias) : nullptr;
  for (int64_t i = 0; i < N; ++i) {
    double sw = 0, sb = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      sw += part_w[blk * N + i];
      sb += part_b[blk * N + i];
    }
    if (gw) gw[i] = static_cast<T>(sw);
    if (gb) gb[i] = static_cast<T>(sb);
  }
}

// ---- group norm ----
// x [N, C, S]: row r = n * G + g (sample n's group g) is the contiguous run of M = C / G * S values
// from r * M, and its channel j is the plane of S values from r * M + j * S.

template <class T>
void group_norm_forward(const Tensor& x, int64_t G, const Tensor& weight, const Tensor& bias, double eps,
                        const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), Cg = C / G, M = Cg * S;
  const T *px = data<T>(x), *pw = ptr_or_null<T>(weight), *pb = ptr_or_null<T>(bias);
  T *py = data<T>(out), *pm = data<T>(mean), *pr = data<T>(rstd);
  parallel_for(0, N * G, grain_for(M), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* v = px + r * M;
      const double mu = run_sum(v, M) / static_cast<double>(M);
      const double rs = 1.0 / std::sqrt(run_squared_deviations(v, M, mu) / static_cast<double>(M) + eps);
      pm[r] = static_cast<T>(mu);
      pr[r] = static_cast<T>(rs);
      // The per-channel affine folded into the normalisation: y = x * scale + shift per channel.
      for (int64_t j = 0; j < Cg; ++j) {
        const int64_t c = r % G * Cg + j;
        const double sc = rs * (pw ? static_cast<double>(pw[c]) : 1.0);
        const T scale = static_cast<T>(sc), shift = static_cast<T>((pb ? pb[c] : 0.0) - mu * sc);
        const T* vc = v + j * S;
        T* o = py + r * M + j * S;
        for (int64_t i = 0; i < S; ++i) o[i] = vc[i] * scale + shift;
      }
    }
  });
}

template <class T>
void group_norm_backward(const Tensor& grad_out, const Tensor& x, int64_t G, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, const Tensor& grad_input,
                         const Tensor& grad_weight, const Tensor& grad_bias) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), Cg = C / G, M = Cg * S;
  const T *px = data<T>(x), *pg = data<T>(grad_out), *pw = ptr_or_null<T>(weight);
  const T *pm = data<T>(mean), *pr = data<T>(rstd);
  // Per plane (n, c): sum(dy) and sum(dy * (x - mean)), with the mean of c's group. Plane
  // p = n * C + c lies in row p / Cg = n * G + c / Cg, whose mean and rstd are pm[p / Cg], pr[p / Cg].
  std::vector<double> sum_dy(static_cast<size_t>(N * C)), sum_dy_xc(static_cast<size_t>(N * C));
  parallel_for(0, N * C, grain_for(S), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      sum_dy[p] = run_sum(pg + p * S, S);
      sum_dy_xc[p] = run_dot_deviations(pg + p * S, px + p * S, S, static_cast<double>(pm[p / Cg]));
    }
  });
  if (grad_weight.defined() || grad_bias.defined()) {
    T* gw = grad_weight.defined() ? data<T>(grad_weight) : nullptr;
    T* gb = grad_bias.defined() ? data<T>(grad_bias) : nullptr;
    for (int64_t c = 0; c < C; ++c) {  // samples added in order: the same bits for any thread count
      double sw = 0, sb = 0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t p = n * C + c;
        sw += sum_dy_xc[p] * static_cast<double>(pr[p / Cg]);
        sb += sum_dy[p];
      }
      if (gw) gw[c] = static_cast<T>(sw);
      if (gb) gb[c] = static_cast<T>(sb);
    }
  }
  if (!grad_input.defined()) return;
  // Per row, with B = sum(g) and A = sum(g (x - mean)) over its M values (g = dy * w):
  //   dx = k dy - ka - (x - mean) kr,  k = rstd w[c], ka = rstd B / M, kr = rstd^3 A / M
  T* pdx = data<T>(grad_input);
  parallel_for(0, N * G, grain_for(M), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      double sum_g = 0, sum_g_xc = 0;
      for (int64_t j = 0; j < Cg; ++j) {
        const int64_t c = r % G * Cg + j, p = r * Cg + j;
        const double w = pw ? static_cast<double>(pw[c]) : 1.0;
        sum_g += w * sum_dy[p];
        sum_g_xc += w * sum_dy_xc[p];
      }
      const double rs = pr[r];
      const T ka = static_cast<T>(rs * sum_g / static_cast<double>(M));
      const T kr = static_cast<T>(rs * rs * rs * sum_g_xc / static_cast<double>(M));
      const T mu = pm[r];
      for (int64_t j = 0; j < Cg; ++j) {
        const T k = static_cast<T>(rs * (pw ? static_cast<double>(pw[r % G * Cg + j]) : 1.0));
        const T *g = pg + r * M + j * S, *v = px + r * M + j * S;
        T* o = pdx + r * M + j * S;
        for (int64_t i = 0; i < S; ++i) o[i] = k * g[i] - ka - (v[i] - mu) * kr;
      }
    }
  });
}

// ---- dtype dispatch ----

void bn_stats_cpu(const Tensor& x, const Tensor& mean, const Tensor& var) {
  dispatch_floating(x.dtype(), "batch_norm", [&]<class T>() { batch_norm_stats<T>(x, mean, var); });
}
void bn_apply_cpu(const Tensor& x, const Tensor& mean, const Tensor& invstd, const Tensor& w, const Tensor& b,
                  const Tensor& out) {
  dispatch_floating(x.dtype(), "batch_norm",
                    [&]<class T>() { batch_norm_apply<T>(x, mean, invstd, w, b, out); });
}
void bn_backward_cpu(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& invstd,
                     const Tensor& w, bool batch_stats, const Tensor& gi, const Tensor& gw,
                     const Tensor& gb) {
  dispatch_floating(x.dtype(), "batch_norm_backward", [&]<class T>() {
    batch_norm_backward<T>(g, x, mean, invstd, w, batch_stats, gi, gw, gb);
  });
}
void ln_forward_cpu(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& out,
                    const Tensor& mean, const Tensor& rstd) {
  dispatch_floating(x.dtype(), "layer_norm",
                    [&]<class T>() { layer_norm_forward<T>(x, w, b, eps, out, mean, rstd); });
}
void ln_backward_cpu(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                     const Tensor& w, const Tensor& gi, const Tensor& gw, const Tensor& gb) {
  dispatch_floating(x.dtype(), "layer_norm_backward",
                    [&]<class T>() { layer_norm_backward<T>(g, x, mean, rstd, w, gi, gw, gb); });
}

void gn_forward_cpu(const Tensor& x, int64_t groups, const Tensor& w, const Tensor& b, double eps,
                    const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  dispatch_floating(x.dtype(), "group_norm",
                    [&]<class T>() { group_norm_forward<T>(x, groups, w, b, eps, out, mean, rstd); });
}
void gn_backward_cpu(const Tensor& g, const Tensor& x, int64_t groups, const Tensor& mean, const Tensor& rstd,
                     const Tensor& w, const Tensor& gi, const Tensor& gw, const Tensor& gb) {
  dispatch_floating(x.dtype(), "group_norm_backward",
                    [&]<class T>() { group_norm_backward<T>(g, x, groups, mean, rstd, w, gi, gw, gb); });
}

}  // namespace
EMBER_REGISTER_KERNEL(batch_norm_stats_stub, cpu, &bn_stats_cpu);
EMBER_REGISTER_KERNEL(batch_norm_apply_stub, cpu, &bn_apply_cpu);
EMBER_REGISTER_KERNEL(batch_norm_backward_stub, cpu, &bn_backward_cpu);
EMBER_REGISTER_KERNEL(layer_norm_forward_stub, cpu, &ln_forward_cpu);
EMBER_REGISTER_KERNEL(layer_norm_backward_stub, cpu, &ln_backward_cpu);
EMBER_REGISTER_KERNEL(group_norm_forward_stub, cpu, &gn_forward_cpu);
EMBER_REGISTER_KERNEL(group_norm_backward_stub, cpu, &gn_backward_cpu);
}  // namespace ember::cpu
