// CPU kernel of combine_rows (contract in ops/kernels/combine_rows.h): one task per output row
// (o, r), whose sum runs over the inner dim contiguously, so it vectorises when inner > 1.
#include "ops/kernels/combine_rows.h"

#include "core/parallel.h"

namespace ember::cpu {
namespace {

template <class T>
void combine_rows(const Tensor& x, const Tensor& offsets, const Tensor& cols, const Tensor& weights,
                  const Tensor& y) {
  const int64_t outer = x.size(0), in = x.size(1), inner = x.size(2), out = y.size(1);
  parallel_for(0, outer * out, std::max<int64_t>(1, kDefaultGrain / (2 * inner + 1)),
               [&](int64_t b, int64_t e) {
                 // The pointers are the task's locals: through the closure's references they would be
                 // reloaded after every store.
                 const T* px = static_cast<const T*>(x.raw_data());
                 const int64_t* off = static_cast<const int64_t*>(offsets.raw_data());
                 const int64_t* col = static_cast<const int64_t*>(cols.raw_data());
                 const T* w = static_cast<const T*>(weights.raw_data());
                 T* py = static_cast<T*>(y.raw_data());
                 const int64_t n_in = in, n_out = out, n_inner = inner;
                 // Rows b .. e - 1 in order: (o, r) walks r first, without a division per row.
                 int64_t o = b / n_out, r = b % n_out;
                 for (int64_t row = b; row < e; ++row) {
                   const T* xo = px + o * n_in * n_inner;
                   T* dst = py + row * n_inner;
                   const int64_t first = off[r], last = off[r + 1];
                   if (n_inner == 1) {  // resampling the innermost dim: one value per row
                     T sum = first < last ? w[first] * xo[col[first]] : T(0);
                     for (int64_t t = first + 1; t < last; ++t) sum += w[t] * xo[col[t]];
                     *dst = sum;
                   } else if (first == last) {
                     for (int64_t k = 0; k < n_inner; ++k) dst[k] = T(0);
                   } else {
                     const T w0 = w[first];
                     const T* src0 = xo + col[first] * n_inner;
                     for (int64_t k = 0; k < n_inner; ++k) dst[k] = w0 * src0[k];
                     for (int64_t t = first + 1; t < last; ++t) {
                       const T wt = w[t];
                       const T* src = xo + col[t] * n_inner;
                       for (int64_t k = 0; k < n_inner; ++k) dst[k] += wt * src[k];
                     }
                   }
                   if (++r == n_out) {
                     r = 0;
                     ++o;
                   }
                 }
               });
}

void combine_rows_cpu(const Tensor& x, const Tensor& offsets, const Tensor& cols, const Tensor& weights,
                      const Tensor& y) {
  dispatch_floating(x.dtype(), "combine_rows",
                    [&]<class T>() { combine_rows<T>(x, offsets, cols, weights, y); });
}

}  // namespace
EMBER_REGISTER_KERNEL(combine_rows_stub, cpu, &combine_rows_cpu);
}  // namespace ember::cpu
