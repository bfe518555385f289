#pragma once
// The CUDA backend's per-device state (CUDA-only header: include it from cuda/ alone).
//
// Execution model: each device has exactly one stream, created on first use, and every kernel,
// copy and cuBLAS call for that device is queued on it. Work is therefore asynchronous with
// respect to the host but strictly ordered on the device, which is what makes the caching
// allocator simple: memory freed by the host can be handed to the next op at once, because that
// op's kernels run after every kernel that used the memory before. Reading data back to the
// host (item, to_vector, to(cpu)) waits for the stream.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string_view>

#include "cuda/check.h"
#include "ember/device.h"
#include "ember/tensor.h"

namespace ember::cuda {

// Throws ember::Error unless `device` is a CUDA device that exists ("op: CUDA is not available
// ..." on a machine without a GPU or driver, "op: cuda:3 does not exist (1 CUDA device)").
void check_device(Device device, std::string_view op);

// The device's stream and cuBLAS handle (bound to that stream). Created on first use.
cudaStream_t stream(int device);
cublasHandle_t cublas_handle(int device);
// Number of streaming multiprocessors, for sizing grids.
int sm_count(int device);

// Makes `index` the current device for the lifetime of the guard and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int index_ = -1;
};

// What every kernel entry point needs: checks that `t` lives on a CUDA device, makes that device
// current and hands out its stream.
struct KernelContext {
  explicit KernelContext(const Tensor& t, std::string_view op);
  int device;
  DeviceGuard guard;
  cudaStream_t stream;
};

// Grid sizing for a 1-D launch of `threads`-thread blocks covering `n` work items; capped so it
// always fits in gridDim.x (kernels use grid-stride loops, so a capped grid still covers all).
inline unsigned int blocks_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  constexpr int64_t kMaxBlocks = 1 << 30;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

}  // namespace ember::cuda
