// CPU reductions. Two loop shapes cover the common cases efficiently:
//  * "inner": for each output element, walk the reduced elements as runs along the innermost
//    reduced dim (one contiguous run when the reduced dims are the innermost ones, e.g. a row
//    sum; runs of H*W for the per-channel sums of an [N, C, H, W] tensor);
//  * "columns": when the last dim is kept and contiguous (e.g. summing [N, C] over N), add whole
//    rows into a vector of accumulators, which vectorises and reads memory once in order.
// Either loop runs in parallel over the outputs, or over parts of the reduced range when the
// outputs are too few (see the end of reduce_typed).
#include "ops/kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/loops.h"

namespace ember::cpu {
namespace {

template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <class Acc, class T>
struct Reducer {
  ReduceOp op;
  Acc init() const {
    switch (op) {
      case ReduceOp::sum:
        return Acc(0);
      case ReduceOp::prod:
        return Acc(1);
      case ReduceOp::max:
        return std::is_floating_point_v<Acc> ? Acc(-INFINITY) : std::numeric_limits<Acc>::lowest();
      case ReduceOp::min:
        return std::is_floating_point_v<Acc> ? Acc(INFINITY) : std::numeric_limits<Acc>::max();
      case ReduceOp::any:
        return Acc(0);
      case ReduceOp::all:
        return Acc(1);
    }
    return Acc(0);
  }
  // NaN propagates through max/min, as in PyTorch.
  static Acc max_of(Acc a, Acc b) {
    if constexpr (std::is_floating_point_v<Acc>)
      if (std::isnan(a) || std::isnan(b)) return NAN;
    return a > b ? a : b;
  }
  static Acc min_of(Acc a, Acc b) {
    if constexpr (std::is_floating_point_v<Acc>)
      if (std::isnan(a) || std::isnan(b)) return NAN;
    return a < b ? a : b;
  }
};

struct Geometry {
  Shape kept_sizes, kept_strides, red_sizes, red_strides;  // outermost first
};

Geometry split_dims(const Tensor& in, const std::vector<bool>& reduce) {
  Geometry g;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (in.size(d) == 1) continue;
    if (reduce[d]) {
      g.red_sizes.push_back(in.size(d));
      g.red_strides.push_back(in.stride(d));
    } else {
      g.kept_sizes.push_back(in.size(d));
      g.kept_strides.push_back(in.stride(d));
    }
  }
  // merge neighbouring reduced dims that are contiguous with each other
  Shape s, st;
  for (size_t i = 0; i < g.red_sizes.size(); ++i) {
    if (!s.empty() && st.back() == g.red_strides[i] * g.red_sizes[i]) {
      s.back() *= g.red_sizes[i];
      st.back() = g.red_strides[i];
    } else {
      s.push_back(g.red_sizes[i]);
      st.push_back(g.red_strides[i]);
    }
  }
  g.red_sizes = s;
  g.red_strides = st;
  return g;
}

template <class T, class Acc, class Combine>
void reduce_typed(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<bool>& reduce,
                  Combine combine) {
  Reducer<Acc, T> r{op};
  Geometry g = split_dims(in, reduce);
  const T* x = static_cast<const T*>(in.raw_data());
  int64_t n_out = out.numel();
  int64_t n_red = shape_numel(g.red_sizes);
  auto store = [&](int64_t o, Acc v) {
    char* base = static_cast<char*>(out.raw_data());
    switch (out.dtype()) {
      case DType::float32:
        reinterpret_cast<float*>(base)[o] = static_cast<float>(v);
        break;
      case DType::float64:
        reinterpret_cast<double*>(base)[o] = static_cast<double>(v);
        break;
      case DType::int64:
        reinterpret_cast<int64_t*>(base)[o] = static_cast<int64_t>(v);
        break;
      case DType::int32:
        reinterpret_cast<int32_t*>(base)[o] = static_cast<int32_t>(v);
        break;
      case DType::uint8:
        reinterpret_cast<uint8_t*>(base)[o] = static_cast<uint8_t>(v);
        break;
      case DType::boolean:
        reinterpret_cast<bool*>(base)[o] = v != Acc(0);
        break;
      case DType::bfloat16:  // rejected by reduce_cpu before any work (ops reduce bfloat16 in float32)
        break;
    }
  };

  // The reduced elements of one output, in order, are runs along the innermost reduced dim:
  // reduced index k is element k % run of run k / run.
  const int64_t run = g.red_sizes.empty() ? 1 : g.red_sizes.back();
  const int64_t run_stride = g.red_sizes.empty() ? 0 : g.red_strides.back();
  const Shape run_sizes(g.red_sizes.begin(), g.red_sizes.end() - (g.red_sizes.empty() ? 0 : 1));
  const Shape run_strides(g.red_strides.begin(), g.red_strides.end() - (g.red_strides.empty() ? 0 : 1));
  // Folds reduced elements [k0, k1) of the lane starting at `base` into acc, a run at a time.
  auto fold_lane = [&](const T* base, int64_t k0, int64_t k1, Acc acc) {
    for (int64_t k = k0; k < k1;) {
      const int64_t pos = k % run, len = std::min(run - pos, k1 - k);
      const T* p = base + offset_of(k / run, run_sizes, run_strides) + pos * run_stride;
      if (run_stride == 1) {
        // Eight independent accumulators instead of one: a single running sum waits on the
        // previous add at every element, eight keep the adder busy (and vectorise).
        int64_t i = 0;
        if (len >= 32) {
          Acc part[8];
          for (Acc& a : part) a = r.init();
          for (; i + 8 <= len; i += 8)
            for (int q = 0; q < 8; ++q) part[q] = combine(part[q], static_cast<Acc>(p[i + q]));
          for (Acc a : part) acc = combine(acc, a);
        }
        for (; i < len; ++i) acc = combine(acc, static_cast<Acc>(p[i]));
      } else {
        for (int64_t i = 0; i < len; ++i) acc = combine(acc, static_cast<Acc>(p[i * run_stride]));
      }
      k += len;
    }
    return acc;
  };

  const bool columns =
      !g.kept_strides.empty() && g.kept_strides.back() == 1 && n_red > 1 && g.kept_sizes.back() >= 8;
  const int64_t width = columns ? g.kept_sizes.back() : 1;
  const Shape outer_sizes(g.kept_sizes.begin(), g.kept_sizes.end() - (columns ? 1 : 0));
  const Shape outer_strides(g.kept_strides.begin(), g.kept_strides.end() - (columns ? 1 : 0));
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (width + kBlock - 1) / kBlock;

  // Reduces elements [k0, k1) of every output's reduced range and hands each result to emit(o, acc).
  auto reduce_range = [&](int64_t k0, int64_t k1, const auto& emit) {
    if (columns) {
      const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(k1 - k0, 1));
      parallel_for(0, shape_numel(outer_sizes) * blocks, grain, [&](int64_t b, int64_t e) {
        Acc acc[kBlock];
        for (int64_t job = b; job < e; ++job) {
          int64_t outer = job / blocks, j0 = (job % blocks) * kBlock, w = std::min(kBlock, width - j0);
          const T* base = x + offset_of(outer, outer_sizes, outer_strides) + j0;
          for (int64_t j = 0; j < w; ++j) acc[j] = r.init();
          for (int64_t k = k0; k < k1; ++k) {
            const T* row = base + offset_of(k, g.red_sizes, g.red_strides);
            for (int64_t j = 0; j < w; ++j) acc[j] = combine(acc[j], static_cast<Acc>(row[j]));
          }
          for (int64_t j = 0; j < w; ++j) emit(outer * width + j0 + j, acc[j]);
        }
      });
      return;
    }
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(k1 - k0, 1));
    parallel_for(0, n_out, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o)
        emit(o, fold_lane(x + offset_of(o, g.kept_sizes, g.kept_strides), k0, k1, r.init()));
    });
  };

  // Parallelism normally comes from the outputs. When there are too few of them to keep the
  // threads busy (a full sum, or summing [1e6, 8] over its rows), the reduced range is cut
  // into parts instead: each thread reduces its part for every output, and the partial results
  // are combined at the end (so float sums associate differently than in a single pass).
  const int64_t tasks = columns ? shape_numel(outer_sizes) * blocks : n_out;
  const int64_t threads = get_num_threads();
  int64_t parts = 1;
  if (tasks < threads && !omp_in_parallel()) parts = std::clamp<int64_t>(n_red / kDefaultGrain, 1, threads);
  if (parts == 1) {
    reduce_range(0, n_red, store);
    return;
  }
  std::vector<Acc> partial(parts * n_out);
  parallel_for(0, parts, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p)
      reduce_range(p * n_red / parts, (p + 1) * n_red / parts,
                   [&](int64_t o, Acc v) { partial[p * n_out + o] = v; });
  });
  for (int64_t o = 0; o < n_out; ++o) {
    Acc acc = partial[o];
    for (int64_t p = 1; p < parts; ++p) acc = combine(acc, partial[p * n_out + o]);
    store(o, acc);
  }
}

void reduce_cpu(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<bool>& reduce) {
  if (out.dtype() == DType::bfloat16) fail_bfloat16("reduce");
  dispatch_all(in.dtype(), "reduce", [&]<class T>() {
    if (op == ReduceOp::max || op == ReduceOp::min) {
      using Acc = std::conditional_t<std::is_same_v<T, bool>, int64_t, T>;
      if (op == ReduceOp::max)
        reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return Reducer<Acc, T>::max_of(a, b); });
      else
        reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return Reducer<Acc, T>::min_of(a, b); });
      return;
    }
    using Acc = acc_t<T>;
    switch (op) {
      case ReduceOp::sum:
        return reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return a + b; });
      case ReduceOp::prod:
        return reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return a * b; });
      case ReduceOp::any:
        return reduce_typed<T, Acc>(op, out, in, reduce,
                                    [](Acc a, Acc b) { return Acc(a != Acc(0) || b != Acc(0)); });
      case ReduceOp::all:
        return reduce_typed<T, Acc>(op, out, in, reduce,
                                    [](Acc a, Acc b) { return Acc(a != Acc(0) && b != Acc(0)); });
      default:
        break;
    }
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(reduce_stub, cpu, &reduce_cpu);
}  // namespace ember::cpu
