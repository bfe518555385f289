// CUDA random kernel. Element i of the output draws from Philox block (offset + i) with the key
// `seed` (core/philox.h), exactly as the CPU kernel in ops/cpu/random.cpp does, so a seeded
// program gets the same numbers on either device, whatever the launch shape:
//  * uniform and bernoulli are bit-for-bit identical to the CPU: the arithmetic is the CPU's,
//    in double, with explicitly rounded multiply and add (__dmul_rn/__dadd_rn) so that the
//    compiler cannot fuse them into an FMA, which would round differently;
//  * normal (Box-Muller) uses the device's log, sqrt and cos, which may differ from the host C
//    library in the last bit; values agree to about 1e-15 relative, not bit for bit.
#include <cmath>

#include "core/philox.h"
#include "cuda/loops.cuh"
#include "ops/kernels/random.h"

namespace ember::cuda {
namespace {

template <class T>
__global__ void random_kernel(RandomDist dist, T* out, int64_t n, double a, double b, uint64_t seed,
                              uint64_t offset) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const Philox4 r = philox4x32(offset + static_cast<uint64_t>(i), seed);
    const double u0 = uint_to_unit_double(r.v[0]);
    switch (dist) {
      case RandomDist::uniform: {
        // a + (b - a) * u, with u of 24 bits for float32 and 32 bits for float64 (as on the CPU)
        const double u = std::is_same_v<T, float> ? static_cast<double>(uint_to_unit_float(r.v[0])) : u0;
        out[i] = static_cast<T>(__dadd_rn(a, __dmul_rn(b - a, u)));
        break;
      }
      case RandomDist::normal: {
        const double u1 = 1.0 - u0, u2 = uint_to_unit_double(r.v[1]);  // 1 - u keeps log's argument in (0, 1]
        out[i] = static_cast<T>(a + b * ::sqrt(-2.0 * ::log(u1)) * ::cos(2.0 * M_PI * u2));
        break;
      }
      case RandomDist::bernoulli:
        out[i] = static_cast<T>(u0 < a ? 1 : 0);
        break;
    }
  }
}

void random_cuda(RandomDist dist, const Tensor& out, double a, double b, uint64_t seed, uint64_t offset) {
  if (!out.is_contiguous()) fail("random (cuda): the output must be contiguous");
  if (out.numel() == 0) return;
  KernelContext ctx(out, "random");
  dispatch_floating(out.dtype(), "random", [&]<class T>() {
    random_kernel<T><<<blocks_for(out.numel(), kThreads), kThreads, 0, ctx.stream>>>(
        dist, static_cast<T*>(out.raw_data()), out.numel(), a, b, seed, offset);
    EMBER_CUDA_CHECK_LAUNCH("random_kernel");
  });
}

}  // namespace

EMBER_REGISTER_KERNEL(random_stub, cuda, &random_cuda);

}  // namespace ember::cuda
