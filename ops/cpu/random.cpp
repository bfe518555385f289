// CPU random kernel: element i draws from Philox block (offset + i), independent of threading.
#include <cmath>

#include "core/philox.h"
#include "ops/cpu/loops.h"
#include "ops/kernels/random.h"

namespace ember::cpu {
namespace {

template <class T>
void random_fill(RandomDist dist, T* out, int64_t n, double a, double b, uint64_t seed, uint64_t offset) {
  parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      Philox4 r = philox4x32(offset + static_cast<uint64_t>(i), seed);
      double u0 = uint_to_unit_double(r.v[0]);
      switch (dist) {
        case RandomDist::uniform:
          out[i] = std::is_same_v<T, float> ? static_cast<T>(a + (b - a) * uint_to_unit_float(r.v[0]))
                                            : static_cast<T>(a + (b - a) * u0);
          break;
        case RandomDist::normal: {
          // Box-Muller; 1 - u keeps the log argument in (0, 1]
          double u1 = 1.0 - u0, u2 = uint_to_unit_double(r.v[1]);
          out[i] = static_cast<T>(a + b * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
          break;
        }
        case RandomDist::bernoulli: out[i] = static_cast<T>(u0 < a ? 1 : 0); break;
      }
    }
  });
}

void random_cpu(RandomDist dist, const Tensor& out, double a, double b, uint64_t seed, uint64_t offset) {
  dispatch_floating(out.dtype(), "random", [&]<class T>() {
    random_fill<T>(dist, static_cast<T*>(out.raw_data()), out.numel(), a, b, seed, offset);
  });
}

}  // namespace
EMBER_REGISTER_KERNEL(random_stub, cpu, &random_cpu);
}  // namespace ember::cpu
