#pragma once
// The CPU's one strided loop. Every elementwise kernel is "for each index of `out`, read the
// inputs at that index and write the output". StridedLoop turns N operands of one shape (with
// arbitrary strides, including the zero strides of broadcasting) into a short list of 1-D runs:
//   1. dims are reordered innermost-first and size-1 dims dropped;
//   2. neighbouring dims that are contiguous for *every* operand are merged, so a fully
//      contiguous tensor becomes one run of numel elements;
//   3. the linear index range is split across threads; each thread walks its part as runs of the
//      innermost dim and hands each run to `inner(ptrs, byte_strides, n)`.
// Kernels check the byte strides of a run: all equal to the element size means a plain,
// vectorisable C loop (the fast path).
#include <array>
#include <cstdint>

#include "core/parallel.h"
#include "core/tensor_impl.h"

namespace ember::cpu {

inline constexpr int kMaxDims = 16;

template <int N>
class StridedLoop {
 public:
  explicit StridedLoop(const std::array<const Tensor*, N>& ops) {
    const Shape& shape = ops[0]->shape();
    EMBER_CHECK(static_cast<int>(shape.size()) <= kMaxDims, "cpu kernel: at most {} dims supported, got {}",
                kMaxDims, shape.size());
    numel_ = shape_numel(shape);
    for (int k = 0; k < N; ++k) base_[k] = static_cast<char*>(ops[k]->raw_data());
    ndim_ = 0;
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {  // innermost first
      if (shape[d] == 1) continue;
      sizes_[ndim_] = shape[d];
      for (int k = 0; k < N; ++k)
        strides_[k][ndim_] = ops[k]->strides()[d] * static_cast<int64_t>(element_size(ops[k]->dtype()));
      ++ndim_;
    }
    if (ndim_ == 0) {  // a single element
      sizes_[0] = 1;
      for (int k = 0; k < N; ++k) strides_[k][0] = static_cast<int64_t>(element_size(ops[k]->dtype()));
      ndim_ = 1;
    }
    coalesce();
  }

  int64_t numel() const { return numel_; }

  // inner(char* const* ptrs, const int64_t* byte_strides, int64_t n)
  template <class Inner>
  void run(const Inner& inner, int64_t grain = kDefaultGrain) const {
    parallel_for(0, numel_, grain, [&](int64_t b, int64_t e) { run_range(b, e, inner); });
  }

 private:
  void coalesce() {
    int out = 0;
    for (int d = 1; d < ndim_; ++d) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (strides_[k][d] != strides_[k][out] * sizes_[out]) mergeable = false;
      if (mergeable) {
        sizes_[out] *= sizes_[d];
      } else {
        ++out;
        sizes_[out] = sizes_[d];
        for (int k = 0; k < N; ++k) strides_[k][out] = strides_[k][d];
      }
    }
    ndim_ = out + 1;
  }

  template <class Inner>
  void run_range(int64_t begin, int64_t end, const Inner& inner) const {
    int64_t idx[kMaxDims];
    char* ptrs[N];
    int64_t rem = begin;
    for (int k = 0; k < N; ++k) ptrs[k] = base_[k];
    for (int d = 0; d < ndim_; ++d) {
      idx[d] = rem % sizes_[d];
      rem /= sizes_[d];
      for (int k = 0; k < N; ++k) ptrs[k] += idx[d] * strides_[k][d];
    }
    int64_t inner_strides[N];
    for (int k = 0; k < N; ++k) inner_strides[k] = strides_[k][0];
    while (begin < end) {
      int64_t n = std::min(sizes_[0] - idx[0], end - begin);
      inner(ptrs, inner_strides, n);
      begin += n;
      if (begin >= end) break;
      // advance to the start of the next run, carrying into outer dims
      for (int k = 0; k < N; ++k) ptrs[k] -= idx[0] * strides_[k][0];
      idx[0] = 0;
      for (int d = 1; d < ndim_; ++d) {
        ++idx[d];
        for (int k = 0; k < N; ++k) ptrs[k] += strides_[k][d];
        if (idx[d] < sizes_[d]) break;
        for (int k = 0; k < N; ++k) ptrs[k] -= idx[d] * strides_[k][d];
        idx[d] = 0;
      }
    }
  }

  int ndim_ = 0;
  int64_t numel_ = 0;
  int64_t sizes_[kMaxDims];
  int64_t strides_[N][kMaxDims];
  char* base_[N];
};

// out[i] = f(a[i])
template <class TOut, class TA, class F>
void map1(const Tensor& out, const Tensor& a, F f) {
  StridedLoop<2> loop({&out, &a});
  loop.run([&](char* const* p, const int64_t* s, int64_t n) {
    auto* o = reinterpret_cast<TOut*>(p[0]);
    auto* x = reinterpret_cast<const TA*>(p[1]);
    if (s[0] == sizeof(TOut) && s[1] == sizeof(TA)) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<TOut*>(p[0] + i * s[0]) = f(*reinterpret_cast<const TA*>(p[1] + i * s[1]));
    }
  });
}

// out[i] = f(a[i], b[i])
template <class TOut, class TA, class TB, class F>
void map2(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  StridedLoop<3> loop({&out, &a, &b});
  loop.run([&](char* const* p, const int64_t* s, int64_t n) {
    auto* o = reinterpret_cast<TOut*>(p[0]);
    auto* x = reinterpret_cast<const TA*>(p[1]);
    auto* y = reinterpret_cast<const TB*>(p[2]);
    if (s[0] == sizeof(TOut) && s[1] == sizeof(TA) && s[2] == sizeof(TB)) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (s[0] == sizeof(TOut) && s[1] == sizeof(TA) && s[2] == 0) {  // broadcast scalar b
      const TB yv = *y;
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else if (s[0] == sizeof(TOut) && s[1] == 0 && s[2] == sizeof(TB)) {  // broadcast scalar a
      const TA xv = *x;
      for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<TOut*>(p[0] + i * s[0]) =
            f(*reinterpret_cast<const TA*>(p[1] + i * s[1]), *reinterpret_cast<const TB*>(p[2] + i * s[2]));
    }
  });
}

// Like map1 and map2, but `run(o, x, [y,] n)` receives whole unit-stride runs of n elements, so a
// kernel compiled for wider vectors (EMBER_VECTOR_CLONES, ops/cpu/vector_math.h) takes them at
// once; an operand that is not unit-stride arrives one element at a time.
template <class TOut, class TA, class Run>
void map1_runs(const Tensor& out, const Tensor& a, Run run) {
  StridedLoop<2> loop({&out, &a});
  loop.run([&](char* const* p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(TOut) && s[1] == sizeof(TA))
      return run(reinterpret_cast<TOut*>(p[0]), reinterpret_cast<const TA*>(p[1]), n);
    for (int64_t i = 0; i < n; ++i)
      run(reinterpret_cast<TOut*>(p[0] + i * s[0]), reinterpret_cast<const TA*>(p[1] + i * s[1]), int64_t{1});
  });
}

template <class TOut, class TA, class TB, class Run>
void map2_runs(const Tensor& out, const Tensor& a, const Tensor& b, Run run) {
  StridedLoop<3> loop({&out, &a, &b});
  loop.run([&](char* const* p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(TOut) && s[1] == sizeof(TA) && s[2] == sizeof(TB))
      return run(reinterpret_cast<TOut*>(p[0]), reinterpret_cast<const TA*>(p[1]),
                 reinterpret_cast<const TB*>(p[2]), n);
    for (int64_t i = 0; i < n; ++i)
      run(reinterpret_cast<TOut*>(p[0] + i * s[0]), reinterpret_cast<const TA*>(p[1] + i * s[1]),
          reinterpret_cast<const TB*>(p[2] + i * s[2]), int64_t{1});
  });
}

// out[i] = f(a[i], b[i], c[i]). Like map2, plain loops for the common layouts: every operand
// unit-stride, or b or c a broadcast scalar (`where(mask, x, 0.0)`, as tril and masked ops build).
template <class TOut, class TA, class TB, class TC, class F>
void map3(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  StridedLoop<4> loop({&out, &a, &b, &c});
  loop.run([&](char* const* p, const int64_t* s, int64_t n) {
    auto* o = reinterpret_cast<TOut*>(p[0]);
    auto* x = reinterpret_cast<const TA*>(p[1]);
    auto* y = reinterpret_cast<const TB*>(p[2]);
    auto* z = reinterpret_cast<const TC*>(p[3]);
    const bool unit_ab = s[0] == sizeof(TOut) && s[1] == sizeof(TA) && s[2] == sizeof(TB);
    const bool unit_ac = s[0] == sizeof(TOut) && s[1] == sizeof(TA) && s[3] == sizeof(TC);
    if (unit_ab && s[3] == sizeof(TC)) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i], z[i]);
    } else if (unit_ab && s[3] == 0) {
      const TC zv = *z;
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i], zv);
    } else if (unit_ac && s[2] == 0) {
      const TB yv = *y;
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv, z[i]);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<TOut*>(p[0] + i * s[0]) =
            f(*reinterpret_cast<const TA*>(p[1] + i * s[1]), *reinterpret_cast<const TB*>(p[2] + i * s[2]),
              *reinterpret_cast<const TC*>(p[3] + i * s[3]));
    }
  });
}

// Offset (in elements) of linear index `i`, counted row-major over `sizes`, in a tensor with
// `strides`: for the kernels that walk an operand outside StridedLoop (reductions, sorts).
inline int64_t offset_of(int64_t i, const Shape& sizes, const Shape& strides) {
  int64_t off = 0;
  for (size_t d = sizes.size(); d-- > 0;) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

}  // namespace ember::cpu
