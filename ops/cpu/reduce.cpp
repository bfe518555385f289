// CPU reductions. Two loop shapes cover the common cases efficiently:
//  * "inner": for each output element, walk the reduced elements (contiguous when the reduced
//    dims are the innermost ones, e.g. a row sum);
//  * "columns": when the last dim is kept and contiguous (e.g. summing [N, C] over N), add whole
//    rows into a vector of accumulators, which vectorises and reads memory once in order.
#include <cmath>
#include <limits>

#include "ops/cpu/loops.h"
#include "ops/kernels/reduce.h"

namespace ember::cpu {
namespace {

template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <class Acc, class T>
struct Reducer {
  ReduceOp op;
  Acc init() const {
    switch (op) {
      case ReduceOp::sum: return Acc(0);
      case ReduceOp::prod: return Acc(1);
      case ReduceOp::max: return std::is_floating_point_v<Acc> ? Acc(-INFINITY) : std::numeric_limits<Acc>::lowest();
      case ReduceOp::min: return std::is_floating_point_v<Acc> ? Acc(INFINITY) : std::numeric_limits<Acc>::max();
      case ReduceOp::any: return Acc(0);
      case ReduceOp::all: return Acc(1);
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

// Offset (in elements) of linear index `i` in a shape/strides pair.
inline int64_t offset_of(int64_t i, const Shape& sizes, const Shape& strides) {
  int64_t off = 0;
  for (size_t d = sizes.size(); d-- > 0;) {
    off += (i % sizes[d]) * strides[d];
    i /= sizes[d];
  }
  return off;
}

template <class T, class Acc, class Combine>
void reduce_typed(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<bool>& reduce, Combine combine) {
  Reducer<Acc, T> r{op};
  Geometry g = split_dims(in, reduce);
  const T* x = static_cast<const T*>(in.raw_data());
  int64_t n_out = out.numel();
  int64_t n_red = shape_numel(g.red_sizes);
  auto store = [&](int64_t o, Acc v) {
    char* base = static_cast<char*>(out.raw_data());
    switch (out.dtype()) {
      case DType::float32: reinterpret_cast<float*>(base)[o] = static_cast<float>(v); break;
      case DType::float64: reinterpret_cast<double*>(base)[o] = static_cast<double>(v); break;
      case DType::int64: reinterpret_cast<int64_t*>(base)[o] = static_cast<int64_t>(v); break;
      case DType::int32: reinterpret_cast<int32_t*>(base)[o] = static_cast<int32_t>(v); break;
      case DType::uint8: reinterpret_cast<uint8_t*>(base)[o] = static_cast<uint8_t>(v); break;
      case DType::boolean: reinterpret_cast<bool*>(base)[o] = v != Acc(0); break;
    }
  };

  bool columns = !g.kept_strides.empty() && g.kept_strides.back() == 1 && n_red > 1 && g.kept_sizes.back() >= 8;
  if (columns) {
    int64_t width = g.kept_sizes.back();
    Shape outer_sizes(g.kept_sizes.begin(), g.kept_sizes.end() - 1);
    Shape outer_strides(g.kept_strides.begin(), g.kept_strides.end() - 1);
    int64_t n_outer = shape_numel(outer_sizes);
    constexpr int64_t kBlock = 256;
    int64_t blocks = (width + kBlock - 1) / kBlock;
    parallel_for(0, n_outer * blocks, std::max<int64_t>(1, 16384 / std::max<int64_t>(n_red, 1)), [&](int64_t b, int64_t e) {
      Acc acc[kBlock];
      for (int64_t job = b; job < e; ++job) {
        int64_t outer = job / blocks, j0 = (job % blocks) * kBlock, w = std::min(kBlock, width - j0);
        const T* base = x + offset_of(outer, outer_sizes, outer_strides) + j0;
        for (int64_t j = 0; j < w; ++j) acc[j] = r.init();
        for (int64_t k = 0; k < n_red; ++k) {
          const T* row = base + offset_of(k, g.red_sizes, g.red_strides);
          for (int64_t j = 0; j < w; ++j) acc[j] = combine(acc[j], static_cast<Acc>(row[j]));
        }
        for (int64_t j = 0; j < w; ++j) store(outer * width + j0 + j, acc[j]);
      }
    });
    return;
  }

  bool inner_contiguous = g.red_sizes.size() == 1 && g.red_strides[0] == 1;
  parallel_for(0, n_out, std::max<int64_t>(1, 32768 / std::max<int64_t>(n_red, 1)), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const T* base = x + offset_of(o, g.kept_sizes, g.kept_strides);
      Acc acc = r.init();
      if (inner_contiguous) {
        for (int64_t k = 0; k < n_red; ++k) acc = combine(acc, static_cast<Acc>(base[k]));
      } else {
        for (int64_t k = 0; k < n_red; ++k) acc = combine(acc, static_cast<Acc>(base[offset_of(k, g.red_sizes, g.red_strides)]));
      }
      store(o, acc);
    }
  });
}

void reduce_cpu(ReduceOp op, const Tensor& out, const Tensor& in, const std::vector<bool>& reduce) {
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
      case ReduceOp::sum: return reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return a + b; });
      case ReduceOp::prod: return reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return a * b; });
      case ReduceOp::any:
        return reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return Acc(a != Acc(0) || b != Acc(0)); });
      case ReduceOp::all:
        return reduce_typed<T, Acc>(op, out, in, reduce, [](Acc a, Acc b) { return Acc(a != Acc(0) && b != Acc(0)); });
      default: break;
    }
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(reduce_stub, cpu, &reduce_cpu);
}  // namespace ember::cpu
