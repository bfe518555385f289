// CUDA sort / argsort / topk (contract: ops/kernels/sort.h) on CUB's radix sort, from the CUDA
// toolkit. Steps:
//  1. copy every line along `dim` into one [lines, n] buffer of keys, paired with the positions
//     0..n-1. Keys are canonicalised so that the bitwise order of the radix sort is the CPU's
//     comparison order: every NaN becomes the same positive NaN (which sorts above +inf, and
//     all NaNs then tie), and -0.0 becomes +0.0 (they compare equal on the CPU);
//  2. sort the (key, position) pairs of each line: cub::DeviceSegmentedRadixSort (one segment
//     per line; DeviceRadixSort when there is only one line). Radix sort is stable in both
//     directions, so equal keys keep their original order: ties come out lowest index first,
//     exactly like the CPU's stable order;
//  3. write the first k of each line: the position, and the value read back from x at that
//     position (so -0.0 and NaN payloads come out as they went in).
#include <climits>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <type_traits>

#include "cuda/lanes.cuh"
#include "ops/kernels/copy.h"
#include "ops/kernels/sort.h"

namespace ember::cuda {
namespace {

// Radix sort keys: bool is sorted as uint8.
template <class T>
using key_t = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;

template <class T>
__device__ __forceinline__ key_t<T> canonical_key(T v) {
  if constexpr (std::is_same_v<T, float>) {
    if (v != v) return __int_as_float(0x7fc00000);  // the positive quiet NaN
    if (v == 0.0f) return 0.0f;                     // -0.0 -> +0.0
  } else if constexpr (std::is_same_v<T, double>) {
    if (v != v) return __longlong_as_double(0x7ff8000000000000LL);
    if (v == 0.0) return 0.0;
  }
  return static_cast<key_t<T>>(v);
}

template <class T>
__global__ void make_keys_kernel(key_t<T>* keys, int64_t* positions, const T* x, Lanes g) {
  const int64_t total = g.count() * g.n;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t line = i / g.n, k = i % g.n;
    keys[i] = canonical_key(x[g.base(line) + k * g.inner]);
    positions[i] = k;
  }
}

__global__ void segment_offsets_kernel(int* offsets, int64_t lines, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i <= lines;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    offsets[i] = static_cast<int>(i * n);
}

template <class T>
__global__ void write_topk_kernel(T* values, int64_t* indices, const int64_t* sorted_positions, const T* x,
                                  Lanes g, int64_t k) {
  const int64_t total = g.count() * k;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t line = i / k, kk = i % k;
    const int64_t pos = sorted_positions[line * g.n + kk];
    const int64_t o = line / g.inner, j = line % g.inner;
    const int64_t at = (o * k + kk) * g.inner + j;  // out has x's shape with k along dim
    indices[at] = pos;
    values[at] = x[g.base(line) + pos * g.inner];
  }
}

// Scratch memory from the caching allocator, released (stream-ordered) when it goes out of scope.
Tensor scratch(int64_t bytes, Device device) { return empty_tensor({bytes}, DType::uint8, device); }

template <class T>
void sort_typed(const KernelContext& ctx, const Tensor& values, const Tensor& indices, const Tensor& x,
                int64_t dim, int64_t k, bool descending) {
  using K = key_t<T>;
  const Lanes g = lanes_of(x.shape(), dim);
  const int64_t lines = g.count(), total = lines * g.n;
  if (total > INT_MAX) fail("sort (cuda): {} elements exceed CUB's segmented sort limit of 2^31 - 1", total);
  const Device device = x.device();
  Tensor keys_in = scratch(total * sizeof(K), device), keys_out = scratch(total * sizeof(K), device);
  Tensor pos_in = empty_tensor({total}, DType::int64, device),
         pos_out = empty_tensor({total}, DType::int64, device);
  K* kin = static_cast<K*>(keys_in.raw_data());
  K* kout = static_cast<K*>(keys_out.raw_data());
  int64_t* pin = static_cast<int64_t*>(pos_in.raw_data());
  int64_t* pout = static_cast<int64_t*>(pos_out.raw_data());

  make_keys_kernel<T><<<blocks_for(total, kThreads), kThreads, 0, ctx.stream>>>(
      kin, pin, static_cast<const T*>(x.raw_data()), g);
  EMBER_CUDA_CHECK_LAUNCH("make_keys_kernel");

  const int items = static_cast<int>(total);
  // CUB's two-call protocol: ask for the scratch size, then sort with that scratch.
  auto sort = [&](void* temp, size_t& temp_bytes, const int* offsets) -> cudaError_t {
    if (lines == 1)
      return descending ? cub::DeviceRadixSort::SortPairsDescending(temp, temp_bytes, kin, kout, pin, pout,
                                                                    items, 0, sizeof(K) * 8, ctx.stream)
                        : cub::DeviceRadixSort::SortPairs(temp, temp_bytes, kin, kout, pin, pout, items, 0,
                                                          sizeof(K) * 8, ctx.stream);
    const int segments = static_cast<int>(lines);
    return descending ? cub::DeviceSegmentedRadixSort::SortPairsDescending(
                            temp, temp_bytes, kin, kout, pin, pout, items, segments, offsets, offsets + 1, 0,
                            sizeof(K) * 8, ctx.stream)
                      : cub::DeviceSegmentedRadixSort::SortPairs(temp, temp_bytes, kin, kout, pin, pout,
                                                                 items, segments, offsets, offsets + 1, 0,
                                                                 sizeof(K) * 8, ctx.stream);
  };
  Tensor offsets_t;
  const int* offsets = nullptr;
  if (lines > 1) {
    offsets_t = empty_tensor({lines + 1}, DType::int32, device);
    segment_offsets_kernel<<<blocks_for(lines + 1, kThreads), kThreads, 0, ctx.stream>>>(
        static_cast<int*>(offsets_t.raw_data()), lines, g.n);
    EMBER_CUDA_CHECK_LAUNCH("segment_offsets_kernel");
    offsets = static_cast<const int*>(offsets_t.raw_data());
  }
  size_t temp_bytes = 0;
  EMBER_CUDA_CHECK(sort(nullptr, temp_bytes, offsets));
  Tensor temp = scratch(static_cast<int64_t>(std::max<size_t>(temp_bytes, 1)), device);
  EMBER_CUDA_CHECK(sort(temp.raw_data(), temp_bytes, offsets));

  write_topk_kernel<T><<<blocks_for(lines * k, kThreads), kThreads, 0, ctx.stream>>>(
      static_cast<T*>(values.raw_data()), static_cast<int64_t*>(indices.raw_data()), pout,
      static_cast<const T*>(x.raw_data()), g, k);
  EMBER_CUDA_CHECK_LAUNCH("write_topk_kernel");
}

void sort_cuda(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim, int64_t k,
               bool descending) {
  // Host-side check of the contract.
  if (!(dim >= 0 && dim < std::max<int64_t>(x.dim(), 1)))
    fail("sort (cuda): dim {} out of range for shape {}", dim, shape_str(x.shape()));
  const int64_t n = x.dim() == 0 ? 1 : x.size(dim);
  if (k < 0 || k > n) fail("sort (cuda): k = {} out of range for a dim of size {}", k, n);
  Shape want = x.shape();
  if (!want.empty()) want[dim] = k;
  if (values.shape() != want || indices.shape() != want || !values.is_contiguous() ||
      !indices.is_contiguous() || indices.dtype() != DType::int64 || values.dtype() != x.dtype())
    fail("sort (cuda): outputs must be contiguous {} {} and int64 {}, got {} {} and {} {}", x.dtype(),
         shape_str(want), shape_str(want), values.dtype(), shape_str(values.shape()), indices.dtype(),
         shape_str(indices.shape()));
  if (values.numel() == 0) return;
  KernelContext ctx(x, "sort");
  // The kernels read x as a contiguous block.
  Tensor xc = x;
  if (!x.is_contiguous()) {
    xc = empty_tensor(x.shape(), x.dtype(), x.device());
    copy_stub(x.device(), xc, x);
  }
  dispatch_all(x.dtype(), "sort",
               [&]<class T>() { sort_typed<T>(ctx, values, indices, xc, dim, k, descending); });
}

}  // namespace

EMBER_REGISTER_KERNEL(sort_stub, cuda, &sort_cuda);

}  // namespace ember::cuda
