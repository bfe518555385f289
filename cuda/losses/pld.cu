// CUDA kernels of PLD (contract: losses/kernels/pld.h; the CPU reference is losses/cpu/pld.cpp,
// the math docs/losses/pld.md).
//
// Forward: one thread block per row (a grid-stride loop over rows, so any number of rows works).
//   1. Ranking. The row's classes other than the true one are sorted by decreasing teacher logit,
//      ties by smaller class index, with a bitonic sort over P = next power of two >= C slots.
//      Bitonic sorting is not stable by itself, so the comparison is a *total* order on
//      (teacher logit descending, class index ascending): the result is then exactly the stable
//      order the CPU's ranker produces (-0 and +0 compare equal, so they tie as on the CPU). The
//      true class and the padding slots sort behind everything; order[0] is the true class and
//      order[1..C-1] are the first C-1 sorted slots. The slots live in shared memory when they
//      fit, otherwise in a global scratch buffer (one stripe per block): same code, one pointer.
//   2. Teacher weights alpha_k = softmax(t / tau)[order_k]: block max, block sum (in double).
//   3. Suffix log-sum-exps. Fast path (all ranked student logits finite and their spread small
//      enough that every exp(u - max u) is a normal number, the CPU's criterion): each thread owns
//      a contiguous chunk of steps, sums its e_k = exp(u_k - M) in double, a block-wide scan of
//      the chunk totals from the right gives each chunk the suffix sum behind it, and each thread
//      walks its chunk backwards producing sigma_k, kappa_k and the step loss. Rows that fail the
//      criterion (huge spreads, infinities, NaN) take the CPU's rescaling loop on one thread: it
//      is sequential but exact, and such rows are rare.
// Gradient (only when the caller asks for it, i.e. a backward will run): the forward kernel then
// also keeps each row's ranking, alpha, sigma_k = exp(u_k - Lambda_k) and kappa_k =
// exp(Lambda_{k+1} - Lambda_k) in scratch tensors, and a second kernel, one block per row,
// evaluates the linear recurrence c_k = kappa_{k-1} c_{k-1} + alpha_k in parallel. Each thread
// composes the affine maps c -> kappa c + alpha of its chunk into one map (A, B); thread 0 chains
// the chunk maps to find each chunk's incoming c; each thread then replays its chunk and writes
// g_k = sigma_k c_k - alpha_k to class order_k of grad_student. No exp/log. (The autograd node
// scales it by the incoming gradient.)
// Invalid targets and NaN teacher rows are reported through two atomicMin slots, read back once.
#include <cstdint>

#include "cuda/loops.cuh"
#include "cuda/math.cuh"
#include "losses/kernels/pld.h"

namespace ember::losses::cuda_kernels {
namespace {

using ember::cuda::KernelContext;
namespace dmath = ember::cuda::dmath;

constexpr int kMaxThreads = 256;
constexpr size_t kSharedSortBytes = 40 * 1024;  // leaves room for the static reduction slots
constexpr unsigned int kMaxGrid = 65535;
constexpr size_t kMaxScratchBytes = size_t(256) << 20;  // global sort slots for very wide rows

// Largest spread max u - min u for which every exp(u - max u) is a normal number (as on the CPU).
template <class T>
constexpr double kFastSpread = sizeof(T) == 4 ? 80.0 : 700.0;

template <class A, class Op>
__device__ A block_reduce(A v, Op op, A* slots) {
  const int tid = threadIdx.x;
  slots[tid] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (tid < half) slots[tid] = op(slots[tid], slots[tid + half]);
    __syncthreads();
  }
  const A r = slots[0];
  __syncthreads();
  return r;
}
struct SumOp {
  __device__ double operator()(double a, double b) const { return a + b; }
};
struct MaxOp {  // NaN-free inputs only (teacher rows with NaN are rejected before)
  __device__ double operator()(double a, double b) const { return a < b ? b : a; }
};
struct MinOp {
  __device__ double operator()(double a, double b) const { return b < a ? b : a; }
};
struct OrOp {
  __device__ int operator()(int a, int b) const { return a | b; }
};

// The sort's total order: does slot (ka, ia) come before slot (kb, ib)? Slots holding the true
// class or padding (index >= C) are "excluded" and go last, in index order.
template <class T>
__device__ __forceinline__ bool ranks_before(T ka, int32_t ia, T kb, int32_t ib, int32_t label, int32_t C) {
  const bool xa = ia == label || ia >= C, xb = ib == label || ib >= C;
  if (xa != xb) return xb;
  if (xa || ka == kb) return ia < ib;
  return ka > kb;
}

// The class placed at step k.
__device__ __forceinline__ int32_t class_at(int64_t k, int32_t label, const int32_t* sorted) {
  return k == 0 ? label : sorted[k - 1];
}

template <class T>
struct PLDForwardArgs {
  T* loss;
  int32_t* order;  // these four are null when no gradient is asked for
  T* alpha;
  T* sigma;
  T* kappa;
  const T* student;
  const T* teacher;
  const int64_t* target;
  int64_t rows, C, inner, P;
  T inv_tau;
  unsigned long long* flags;  // [0]: first bad target row, [1]: first NaN teacher row
  T* scratch_keys;            // global sort slots, [gridDim.x, P], when shared memory is too small
  int32_t* scratch_idx;
};

template <class T>
__global__ void pld_forward_kernel(PLDForwardArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ double dslots[kMaxThreads];
  __shared__ int islots[kMaxThreads];
  __shared__ double chunk_suffix[kMaxThreads];
  T* keys = a.scratch_keys ? a.scratch_keys + blockIdx.x * a.P : reinterpret_cast<T*>(smem);
  int32_t* idx =
      a.scratch_idx ? a.scratch_idx + blockIdx.x * a.P : reinterpret_cast<int32_t*>(smem + a.P * sizeof(T));
  const int tid = threadIdx.x, nt = blockDim.x;
  const int64_t C = a.C, inner = a.inner;
  const int32_t C32 = static_cast<int32_t>(C);

  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {  // block-uniform loop
    const int64_t y = a.target[r];
    if (y < 0 || y >= C) {  // the whole block sees the same y
      if (tid == 0) atomicMin(&a.flags[0], static_cast<unsigned long long>(r));
      continue;
    }
    const int32_t label = static_cast<int32_t>(y);
    const int64_t base = (r / inner) * C * inner + r % inner;
    const T* tr = a.teacher + base;
    const T* sr = a.student + base;

    // 1. ranking: NaN check and the teacher's max and min (for the weights), then the sort
    int nan = 0;
    double tmax = -HUGE_VAL;
    for (int64_t c = tid; c < C; c += nt) {
      const T v = tr[c * inner];
      nan |= v != v;
      tmax = tmax < v ? static_cast<double>(v) : tmax;
    }
    if (block_reduce(nan, OrOp{}, islots)) {
      if (tid == 0) atomicMin(&a.flags[1], static_cast<unsigned long long>(r));
      continue;
    }
    const T tm = static_cast<T>(block_reduce(tmax, MaxOp{}, dslots));
    for (int64_t p = tid; p < a.P; p += nt) {
      keys[p] = p < C ? tr[p * inner] : T(0);
      idx[p] = static_cast<int32_t>(p);
    }
    __syncthreads();
    for (int64_t k = 2; k <= a.P; k <<= 1) {
      for (int64_t j = k >> 1; j > 0; j >>= 1) {
        for (int64_t i = tid; i < a.P; i += nt) {
          const int64_t ixj = i ^ j;
          if (ixj <= i) continue;
          const bool ascending = (i & k) == 0;
          if (ranks_before(keys[ixj], idx[ixj], keys[i], idx[i], label, C32) == ascending) {
            const T kt = keys[i];
            keys[i] = keys[ixj];
            keys[ixj] = kt;
            const int32_t it = idx[i];
            idx[i] = idx[ixj];
            idx[ixj] = it;
          }
        }
        __syncthreads();
      }
    }

    // 2. teacher weights: w_c = exp((t_c - max t) / tau), alpha_k = w[order_k] / sum w
    double z = 0;
    for (int64_t c = tid; c < C; c += nt) z += dmath::exp(static_cast<T>((tr[c * inner] - tm) * a.inv_tau));
    const T inv_z = static_cast<T>(1.0 / block_reduce(z, SumOp{}, dslots));
    auto alpha_at = [&](int64_t k) {
      return dmath::exp(static_cast<T>((tr[class_at(k, label, idx) * inner] - tm) * a.inv_tau)) * inv_z;
    };
    auto u_at = [&](int64_t k) { return sr[class_at(k, label, idx) * inner]; };
    if (a.order)
      for (int64_t k = tid; k < C; k += nt) {
        a.order[r * C + k] = class_at(k, label, idx);
        a.alpha[r * C + k] = alpha_at(k);
      }

    // 3. suffix log-sum-exps: decide the path from the student row's max, min and finiteness
    double umax = -HUGE_VAL, umin = HUGE_VAL;
    int bad = 0;
    for (int64_t c = tid; c < C; c += nt) {
      const double v = sr[c * inner];
      bad |= !dmath::isfinite(v);
      umax = umax < v ? v : umax;
      umin = v < umin ? v : umin;
    }
    bad = block_reduce(bad, OrOp{}, islots);
    umax = block_reduce(umax, MaxOp{}, dslots);
    umin = block_reduce(umin, MinOp{}, dslots);
    T* sigma = a.sigma ? a.sigma + r * C : nullptr;
    T* kappa = a.kappa ? a.kappa + r * C : nullptr;

    if (!bad && umax - umin <= kFastSpread<T>) {
      const T M = static_cast<T>(umax);
      // this thread's chunk of steps [k0, k1)
      const int64_t per = (C + nt - 1) / nt, k0 = min(C, tid * per), k1 = min(C, k0 + per);
      double total = 0;
      for (int64_t k = k0; k < k1; ++k) total += dmath::exp(static_cast<T>(u_at(k) - M));
      chunk_suffix[tid] = total;
      __syncthreads();
      if (tid == 0) {  // suffix sums of the chunk totals: chunk_suffix[i] = sum of chunks after i
        double acc = 0;
        for (int i = nt - 1; i >= 0; --i) {
          const double t = chunk_suffix[i];
          chunk_suffix[i] = acc;
          acc += t;
        }
      }
      __syncthreads();
      double next = chunk_suffix[tid], loss = 0;  // S_{k+1}, starting past the chunk's end
      for (int64_t k = k1 - 1; k >= k0; --k) {
        const T u = u_at(k), e = dmath::exp(static_cast<T>(u - M));
        const double S_k = next + e;
        T s, kp, step;
        if (k == C - 1) {  // the last choice is forced: l_{C-1} = 0 exactly
          s = 1;
          kp = 0;
          step = 0;
        } else {
          const T S = static_cast<T>(S_k), inv = T(1) / S;
          s = e * inv;
          kp = static_cast<T>(next) * inv;
          step = dmath::log(S) + (M - u);  // S lies in [e_k, C]: a positive normal number
        }
        if (sigma) {
          sigma[k] = s;
          kappa[k] = kp;
        }
        loss += static_cast<double>(alpha_at(k)) * step;
        next = S_k;
      }
      loss = block_reduce(loss, SumOp{}, dslots);
      if (tid == 0) a.loss[r] = static_cast<T>(loss);
    } else if (tid == 0) {
      // the CPU's scan_rescaled: suffix sum as m + log S with a running max m
      T m = u_at(C - 1);
      double S = 1, loss = 0;
      if (sigma) {
        sigma[C - 1] = 1;
        kappa[C - 1] = 0;
      }
      for (int64_t k = C - 2; k >= 0; --k) {
        const T u = u_at(k);
        double S_new, step, e;
        if (u <= m) {  // u == m also covers -inf == -inf: equal worths, not exp(NaN)
          e = u == m ? 1.0 : ::exp(static_cast<double>(u) - m);
          S_new = S + e;
          step = ::log(S_new) + (u == m ? 0.0 : static_cast<double>(m) - u);
        } else {  // a new maximum (or NaN, which then propagates): rescale S to it
          S *= ::exp(static_cast<double>(m) - u);
          e = 1.0;
          S_new = S + 1.0;
          step = ::log(S_new);
          m = u;
        }
        if (sigma) {
          sigma[k] = static_cast<T>(e / S_new);
          kappa[k] = static_cast<T>(S / S_new);
        }
        S = S_new;
        const T al = alpha_at(k);
        if (al != 0) loss += al * step;  // 0 * inf must not poison the row
      }
      a.loss[r] = static_cast<T>(loss);
    }
    __syncthreads();  // the sort slots are rewritten by the next row
  }
}

template <class T>
__global__ void pld_gradient_kernel(T* grad, const int32_t* order_all, const T* alpha_all, const T* sigma_all,
                                    const T* kappa_all, int64_t rows, int64_t C, int64_t inner) {
  __shared__ double map_a[kMaxThreads], map_b[kMaxThreads];
  const int tid = threadIdx.x, nt = blockDim.x;
  const int64_t per = (C + nt - 1) / nt, k0 = min(C, tid * per), k1 = min(C, k0 + per);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int32_t* order = order_all + r * C;
    const T* alpha = alpha_all + r * C;
    const T* sigma = sigma_all + r * C;
    const T* kappa = kappa_all + r * C;
    T* out = grad + (r / inner) * C * inner + r % inner;
    // this chunk's map c_{k0-1} -> c_{k1-1}, composed step by step (kappa_{-1} = 0: c_0 = alpha_0)
    double A = 1, B = 0;
    for (int64_t k = k0; k < k1; ++k) {
      const double kp = k == 0 ? 0.0 : static_cast<double>(kappa[k - 1]);
      A *= kp;
      B = kp * B + alpha[k];
    }
    map_a[tid] = A;
    map_b[tid] = B;
    __syncthreads();
    if (tid == 0) {  // map_b[i] becomes c entering chunk i (c_{k0-1}), chaining from c_{-1} = 0
      double c = 0;
      for (int i = 0; i < nt; ++i) {
        const double c_out = map_a[i] * c + map_b[i];
        map_b[i] = c;
        c = c_out;
      }
    }
    __syncthreads();
    double c = map_b[tid];
    for (int64_t k = k0; k < k1; ++k) {
      c = (k == 0 ? 0.0 : static_cast<double>(kappa[k - 1])) * c + alpha[k];
      out[order[k] * inner] = sigma[k] * static_cast<T>(c) - alpha[k];
    }
    __syncthreads();  // map slots are rewritten by the next row
  }
}

// Threads per block: enough to give each thread a handful of classes, a power of two in [32, 256].
int threads_for(int64_t C) {
  int t = 32;
  while (t < kMaxThreads && t * 4 < C) t *= 2;
  return t;
}

int64_t next_pow2(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

PLDCheck pld_forward_cuda(const Tensor& loss, const Tensor& grad_student, const Tensor& student,
                          const Tensor& teacher, const Tensor& target, double temperature) {
  const int64_t outer = student.size(0), C = student.size(1), inner = student.size(2);
  const int64_t rows = outer * inner;
  PLDCheck check;
  if (rows == 0) return check;
  KernelContext ctx(student, "pld");
  const Device device = student.device();
  Tensor flags = empty_tensor({2}, DType::int64, device);
  EMBER_CUDA_CHECK(cudaMemsetAsync(flags.raw_data(), 0xff, 2 * sizeof(int64_t), ctx.stream));  // "none"
  constexpr unsigned long long kNone = ~0ULL;
  unsigned long long host[2];
  dispatch_floating(student.dtype(), "pld", [&]<class T>() {
    const int64_t P = next_pow2(C);
    unsigned int grid = static_cast<unsigned int>(rows < kMaxGrid ? rows : kMaxGrid);
    const size_t slot_bytes = static_cast<size_t>(P) * (sizeof(T) + sizeof(int32_t));
    const bool in_shared = slot_bytes <= kSharedSortBytes;
    Tensor scratch_keys, scratch_idx;
    if (!in_shared) {  // one stripe of slots per block, at most kMaxScratchBytes in all
      const size_t fit = kMaxScratchBytes / slot_bytes;
      if (fit < grid) grid = static_cast<unsigned int>(fit < 1 ? 1 : fit);
      scratch_keys = empty_tensor({static_cast<int64_t>(grid), P}, student.dtype(), device);
      scratch_idx = empty_tensor({static_cast<int64_t>(grid), P}, DType::int32, device);
    }
    // per-step state for the gradient kernel, in ranked order
    const bool keep = grad_student.defined();
    Tensor order, alpha, sigma, kappa;
    if (keep) {
      order = empty_tensor({rows, C}, DType::int32, device);
      alpha = empty_tensor({rows, C}, student.dtype(), device);
      sigma = empty_tensor({rows, C}, student.dtype(), device);
      kappa = empty_tensor({rows, C}, student.dtype(), device);
    }
    PLDForwardArgs<T> a{static_cast<T*>(loss.raw_data()),
                        keep ? static_cast<int32_t*>(order.raw_data()) : nullptr,
                        keep ? static_cast<T*>(alpha.raw_data()) : nullptr,
                        keep ? static_cast<T*>(sigma.raw_data()) : nullptr,
                        keep ? static_cast<T*>(kappa.raw_data()) : nullptr,
                        static_cast<const T*>(student.raw_data()),
                        static_cast<const T*>(teacher.raw_data()),
                        static_cast<const int64_t*>(target.raw_data()),
                        rows,
                        C,
                        inner,
                        P,
                        static_cast<T>(1.0 / temperature),
                        static_cast<unsigned long long*>(flags.raw_data()),
                        in_shared ? nullptr : static_cast<T*>(scratch_keys.raw_data()),
                        in_shared ? nullptr : static_cast<int32_t*>(scratch_idx.raw_data())};
    pld_forward_kernel<T><<<grid, threads_for(C), in_shared ? slot_bytes : 0, ctx.stream>>>(a);
    EMBER_CUDA_CHECK_LAUNCH("pld_forward_kernel");
    EMBER_CUDA_CHECK(
        cudaMemcpyAsync(host, flags.raw_data(), sizeof(host), cudaMemcpyDeviceToHost, ctx.stream));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    // The forward skips a row with a bad target or a NaN teacher row and leaves its ranked state
    // unwritten (recycled memory): the gradient kernel, which scatters through `order`, must not
    // run then (the caller throws on either flag anyway).
    if (keep && host[0] == kNone && host[1] == kNone) {
      const unsigned int rows_grid = static_cast<unsigned int>(rows < kMaxGrid ? rows : kMaxGrid);
      pld_gradient_kernel<T><<<rows_grid, threads_for(C), 0, ctx.stream>>>(
          static_cast<T*>(grad_student.raw_data()), static_cast<const int32_t*>(order.raw_data()),
          static_cast<const T*>(alpha.raw_data()), static_cast<const T*>(sigma.raw_data()),
          static_cast<const T*>(kappa.raw_data()), rows, C, inner);
      EMBER_CUDA_CHECK_LAUNCH("pld_gradient_kernel");
    }
  });
  // as on the CPU, a bad target is reported alone (the CPU checks targets before anything else)
  if (host[0] != kNone) {
    check.bad_target = static_cast<int64_t>(host[0]);
    return check;
  }
  if (host[1] != kNone) check.nan_teacher_row = static_cast<int64_t>(host[1]);
  return check;
}

}  // namespace

EMBER_REGISTER_KERNEL(pld_forward_stub, cuda, &pld_forward_cuda);

}  // namespace ember::losses::cuda_kernels
