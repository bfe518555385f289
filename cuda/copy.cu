// CUDA kernels that set or move data: fill, copy (with a dtype cast and any source strides,
// including the zero strides of a broadcast source) and transfers between host and device.
#include <cuda_bf16.h>

#include <type_traits>

#include "cuda/loops.cuh"
#include "ops/kernels/copy.h"
#include "ops/kernels/integer_cast.h"

namespace ember::cuda {
namespace {

template <class T>
void fill_typed(const KernelContext& ctx, const Tensor& out, double value) {
  const T v = static_cast<T>(value);
  gpu_map<T>(ctx, [v] __device__() { return v; }, out, {});
}

void fill_cuda(const Tensor& out, double value) {
  KernelContext ctx(out, "fill");
  if (out.dtype() == DType::bfloat16) {  // rounded once on the host, stored as raw bits
    const uint16_t bits = bfloat16(static_cast<float>(value)).bits;
    gpu_map<uint16_t>(ctx, [bits] __device__() { return bits; }, out, {});
    return;
  }
  dispatch_all(out.dtype(), "fill", [&]<class T>() { fill_typed<T>(ctx, out, value); });
}

// The same conversion as the CPU's: to bool means "is nonzero", otherwise a C++ cast.
template <class TD, class TS>
__device__ __forceinline__ TD convert(TS v) {
  if constexpr (std::is_same_v<TD, bool>) {
    return v != TS(0);
  } else if constexpr (std::is_integral_v<TD> && std::is_floating_point_v<TS>) {
    return integer_from<TD>(v);  // as the CPU (ops/kernels/integer_cast.h)
  } else {
    return static_cast<TD>(v);
  }
}

// bfloat16 travels as its uint16_t bits (ember::bfloat16 and __nv_bfloat16 share that layout).
// Conversions go through float32 like the CPU's; NaN is made quiet the way the CPU does it
// (the hardware conversion returns one canonical NaN instead), so the two backends agree bit for bit.
__device__ __forceinline__ uint16_t float_to_bf16_bits(float f) {
  if (isnan(f)) return static_cast<uint16_t>((__float_as_uint(f) >> 16) | 0x40u);
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}
__device__ __forceinline__ float bf16_bits_to_float(uint16_t b) {
  return __bfloat162float(__ushort_as_bfloat16(b));
}

template <class TD, class TS>
void copy_typed(const KernelContext& ctx, const Tensor& dst, const Tensor& src) {
  if constexpr (std::is_same_v<TD, TS>) {
    if (dst.is_contiguous() && src.is_contiguous()) {  // a plain block copy on the stream
      EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.numel() * sizeof(TD),
                                       cudaMemcpyDeviceToDevice, ctx.stream));
      return;
    }
  }
  gpu_map<TD, TS>(ctx, [] __device__(TS v) { return convert<TD>(v); }, dst, {&src});
}

// (Named functions, not code inside the dispatch lambdas: nvcc allows no __device__ lambda
// inside a generic lambda.)
template <class TS>
void copy_to_bf16(const KernelContext& ctx, const Tensor& dst, const Tensor& src) {
  gpu_map<uint16_t, TS>(ctx, [] __device__(TS v) { return float_to_bf16_bits(static_cast<float>(v)); }, dst,
                        {&src});
}
template <class TD>
void copy_from_bf16(const KernelContext& ctx, const Tensor& dst, const Tensor& src) {
  gpu_map<TD, uint16_t>(ctx, [] __device__(uint16_t v) { return convert<TD>(bf16_bits_to_float(v)); }, dst,
                        {&src});
}

void copy_cuda(const Tensor& dst, const Tensor& src) {
  if (dst.shape() != src.shape())
    fail("copy (cuda): source shape {} differs from destination shape {} (expand it first)",
         shape_str(src.shape()), shape_str(dst.shape()));
  if (dst.device() != src.device())
    fail("copy (cuda): source on {} and destination on {}; use a device transfer", src.device(),
         dst.device());
  if (dst.numel() == 0) return;
  KernelContext ctx(dst, "copy");
  if (dst.dtype() == DType::bfloat16 && src.dtype() == DType::bfloat16) {
    copy_typed<uint16_t, uint16_t>(ctx, dst, src);
  } else if (dst.dtype() == DType::bfloat16) {
    dispatch_all(src.dtype(), "copy", [&]<class TS>() { copy_to_bf16<TS>(ctx, dst, src); });
  } else if (src.dtype() == DType::bfloat16) {
    dispatch_all(dst.dtype(), "copy", [&]<class TD>() { copy_from_bf16<TD>(ctx, dst, src); });
  } else {
    dispatch_all(dst.dtype(), "copy", [&]<class TD>() {
      dispatch_all(src.dtype(), "copy", [&]<class TS>() { copy_typed<TD, TS>(ctx, dst, src); });
    });
  }
}

// Between the host and a device, or between two devices. Both tensors are contiguous with the
// same dtype and size (ops/copy.cpp arranges that). The copy is queued on the device's stream:
//  * host -> device: cudaMemcpyAsync from pageable memory returns once the host buffer has been
//    staged, so the caller may free or reuse it right away; later kernels queue behind the copy.
//  * device -> host: we wait for the stream, so the data is there when the call returns (this is
//    the synchronisation point behind item(), to_vector() and to(cpu)).
void device_transfer_cuda(const Tensor& dst, const Tensor& src) {
  if (dst.numel() != src.numel() || dst.dtype() != src.dtype() || !dst.is_contiguous() ||
      !src.is_contiguous())
    fail("device transfer: expects contiguous tensors of one dtype and size, got {} {} ({}) and {} {} ({})",
         dst.dtype(), shape_str(dst.shape()), dst.device(), src.dtype(), shape_str(src.shape()),
         src.device());
  const size_t bytes = static_cast<size_t>(dst.numel()) * element_size(dst.dtype());
  if (bytes == 0) return;
  const Device from = src.device(), to = dst.device();
  if (from.is_cpu() && to.is_cuda()) {
    KernelContext ctx(dst, "to");
    EMBER_CUDA_CHECK(
        cudaMemcpyAsync(dst.raw_data(), src.raw_data(), bytes, cudaMemcpyHostToDevice, ctx.stream));
  } else if (from.is_cuda() && to.is_cpu()) {
    KernelContext ctx(src, "to");
    EMBER_CUDA_CHECK(
        cudaMemcpyAsync(dst.raw_data(), src.raw_data(), bytes, cudaMemcpyDeviceToHost, ctx.stream));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  } else if (from.is_cuda() && to.is_cuda()) {
    // Two devices, two streams: wait for the source's pending writes, copy on the destination's
    // stream, and wait for that too, so that neither side can reuse the memory too early.
    KernelContext src_ctx(src, "to");
    EMBER_CUDA_CHECK(cudaStreamSynchronize(src_ctx.stream));
    KernelContext dst_ctx(dst, "to");
    EMBER_CUDA_CHECK(
        cudaMemcpyPeerAsync(dst.raw_data(), to.index(), src.raw_data(), from.index(), bytes, dst_ctx.stream));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(dst_ctx.stream));
  } else {
    fail("device transfer: nothing to transfer between {} and {}", from, to);
  }
}

}  // namespace

EMBER_REGISTER_KERNEL(fill_stub, cuda, &fill_cuda);
EMBER_REGISTER_KERNEL(copy_stub, cuda, &copy_cuda);
EMBER_REGISTER_KERNEL(device_transfer_stub, cuda, &device_transfer_cuda);

}  // namespace ember::cuda
