// The CUDA runtime layer: device discovery, one stream and one cuBLAS handle per device, error
// translation, and the public ember::cuda:: queries (ember/cuda.h).
#include "cuda/runtime.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/allocator.h"
#include "ember/cuda.h"

namespace ember::cuda {

// ---- error translation ----
namespace detail {

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  // Clear the (non-sticky) error so that the next, unrelated call does not report it again.
  cudaGetLastError();
  fail("CUDA error: {} failed: {} ({}) [{}:{}]", call, cudaGetErrorString(err), cudaGetErrorName(err), file,
       line);
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  fail("cuBLAS error: {} failed: {} ({}) [{}:{}]", call, cublasGetStatusString(status),
       cublasGetStatusName(status), file, line);
}

}  // namespace detail

// ---- device discovery ----
namespace {

struct Discovery {
  int count = 0;
  std::string why_unavailable;  // the driver's answer when count == 0
};

// Asked once: cudaGetDeviceCount is the first call that touches the driver. Without a GPU or a
// driver it returns an error code (never aborts), which we keep for the error messages.
const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery r;
    cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      r.count = 0;
      r.why_unavailable = fmt::format("{} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
    } else if (r.count == 0) {
      r.why_unavailable = "no CUDA device found";
    }
    return r;
  }();
  return d;
}

// Per-device objects, created on first use and deliberately never destroyed: destroying streams
// and handles from static destructors races with the CUDA runtime's own shutdown.
struct DeviceState {
  std::once_flag once;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  int sm_count = 0;
  std::atomic<bool> ready{false};  // set once the objects above exist
};

std::vector<DeviceState>& device_states() {
  static auto* states = new std::vector<DeviceState>(static_cast<size_t>(discovery().count));
  return *states;
}

DeviceState& state(int device) {
  check_device(Device::cuda(device), "cuda");
  DeviceState& s = device_states()[static_cast<size_t>(device)];
  std::call_once(s.once, [&] {
    DeviceGuard guard(device);
    // Non-blocking: our stream never waits for the legacy default stream (which we never use).
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&s.sm_count, cudaDevAttrMultiProcessorCount, device));
    EMBER_CUBLAS_CHECK(cublasCreate(&s.blas));
    EMBER_CUBLAS_CHECK(cublasSetStream(s.blas, s.stream));
    s.ready.store(true);
  });
  return s;
}

std::atomic<bool> g_allow_tf32{false};

}  // namespace

void check_device(Device device, std::string_view op) {
  if (!device.is_cuda()) fail("{}: expected a CUDA tensor, got one on {}", op, device.str());
  const Discovery& d = discovery();
  if (d.count == 0)
    fail("{}: CUDA is not available on this machine ({}), so {} cannot be used", op, d.why_unavailable,
         device.str());
  if (device.index() < 0 || device.index() >= d.count)
    fail("{}: {} does not exist ({} CUDA device{})", op, device.str(), d.count, d.count == 1 ? "" : "s");
}

cudaStream_t stream(int device) { return state(device).stream; }
cublasHandle_t cublas_handle(int device) { return state(device).blas; }
int sm_count(int device) { return state(device).sm_count; }

DeviceGuard::DeviceGuard(int index) : index_(index) {
  EMBER_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != index_) EMBER_CUDA_CHECK(cudaSetDevice(index_));
}

DeviceGuard::~DeviceGuard() {
  // A destructor must not throw; restoring the previous device cannot meaningfully fail here.
  if (previous_ != index_ && previous_ >= 0) cudaSetDevice(previous_);
}

namespace {
int checked_index(const Tensor& t, std::string_view op) {
  check_device(t.device(), op);
  return t.device().index();
}
}  // namespace

KernelContext::KernelContext(const Tensor& t, std::string_view op)
    : device(checked_index(t, op)), guard(device), stream(cuda::stream(device)) {}

// ---- the public queries (ember/cuda.h) ----
bool is_built() { return true; }
int device_count() { return discovery().count; }
bool is_available() { return discovery().count > 0; }

// Waits for the streams of the devices that have been used (others have no work queued).
void synchronize() {
  if (!is_available()) return;
  for (int d = 0; d < device_count(); ++d) {
    DeviceState& s = device_states()[static_cast<size_t>(d)];
    if (!s.ready.load()) continue;
    DeviceGuard guard(d);
    EMBER_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  }
}

// Without a GPU there is nothing to report (as in a build without the backend); with one, a bad
// index is an error.
MemoryStats memory_stats(int device) {
  if (!is_available()) return {};
  check_device(Device::cuda(device), "memory_stats");
  return allocator_stats(device);
}

void reset_peak_memory_stats(int device) {
  if (!is_available()) return;
  check_device(Device::cuda(device), "reset_peak_memory_stats");
  allocator_reset_peak(device);
}

void empty_cache() {
  if (is_available()) allocator_release_cache();
}

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

}  // namespace ember::cuda
