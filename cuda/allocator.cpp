// The CUDA caching allocator; the design is described in cuda/allocator.h.
#include "cuda/allocator.h"

#include <bit>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/storage.h"
#include "cuda/runtime.h"
#include "ember/cuda.h"

namespace ember::cuda {
namespace {

constexpr size_t kMinBlock = 512;                 // every block is a multiple of this
constexpr size_t kSmallLimit = size_t{1} << 20;   // up to 1 MiB: 512-byte steps
constexpr size_t kLargeLimit = size_t{64} << 20;  // from 64 MiB: 2 MiB steps (as PyTorch's allocator)
constexpr size_t kLargeStep = size_t{2} << 20;
// Requests above this cannot be satisfied by any device (and would overflow the rounding).
constexpr size_t kMaxRequest = size_t{1} << 62;

size_t round_up(size_t n, size_t step) { return (n + step - 1) / step * step; }

// "1.50 GiB" for messages.
std::string format_bytes(size_t n) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} bytes", n) : fmt::format("{:.2f} {}", v, units[u]);
}

struct Block {
  int device;
  cudaStream_t stream;
  size_t size;  // rounded
};

struct DeviceStats {
  int64_t current = 0, peak = 0, allocations = 0, cached = 0;
};

class CudaCachingAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    int device = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    return allocate_on(Device::cuda(device), nbytes);
  }

  void* allocate_on(Device device, size_t nbytes) override {
    check_device(device, "cuda allocator");
    if (nbytes == 0) return nullptr;  // empty tensors own no memory
    const int d = device.index();
    cudaStream_t s = stream(d);
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceStats& st = stats_for(d);
    if (nbytes > kMaxRequest) out_of_memory(d, nbytes, st.cached);
    const size_t size = allocator_round_size(nbytes);
    void* ptr = nullptr;
    auto it = free_.find(key_of(d, s, size));
    if (it != free_.end() && !it->second.empty()) {
      // Reuse the most recently freed block of this class (likely still in L2).
      ptr = it->second.back();
      it->second.pop_back();
      st.cached -= static_cast<int64_t>(size);
    } else {
      ptr = malloc_with_retry(d, size, nbytes);
    }
    live_.emplace(ptr, Block{d, s, size});
    st.current += static_cast<int64_t>(size);
    st.peak = std::max(st.peak, st.current);
    st.allocations += 1;
    return ptr;
  }

  void deallocate(void* ptr, size_t) override {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(ptr);
    if (it == live_.end()) return;  // not ours; a destructor must not throw, so ignore it
    const Block b = it->second;
    live_.erase(it);
    free_[key_of(b.device, b.stream, b.size)].push_back(ptr);
    DeviceStats& st = stats_for(b.device);
    st.current -= static_cast<int64_t>(b.size);
    st.cached += static_cast<int64_t>(b.size);
  }

  MemoryStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    const DeviceStats& st = stats_for(device);
    return MemoryStats{st.current, st.peak, st.allocations, st.cached};
  }

  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceStats& st = stats_for(device);
    st.peak = st.current;
  }

  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int d = 0; d < static_cast<int>(stats_.size()); ++d) release_device(d);
  }

 private:
  // Free lists are keyed by (device, stream, rounded size); the stream as an integer, since
  // pointers to unrelated objects have no specified order.
  using Key = std::tuple<int, uintptr_t, size_t>;
  static Key key_of(int device, cudaStream_t s, size_t size) {
    return Key{device, reinterpret_cast<uintptr_t>(s), size};
  }

  DeviceStats& stats_for(int device) {
    if (static_cast<size_t>(device) >= stats_.size()) stats_.resize(static_cast<size_t>(device) + 1);
    return stats_[static_cast<size_t>(device)];
  }

  // cudaMalloc; on out-of-memory, give the cache back to the driver and try once more.
  void* malloc_with_retry(int device, size_t size, size_t requested) {
    DeviceGuard guard(device);
    void* ptr = nullptr;
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it
      const int64_t cached = stats_for(device).cached;
      release_device(device);
      err = cudaMalloc(&ptr, size);
      if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        out_of_memory(device, requested, cached);
      }
    }
    EMBER_CUDA_CHECK(err);
    return ptr;
  }

  [[noreturn]] void out_of_memory(int device, size_t requested, int64_t cached) {
    size_t free_bytes = 0, total_bytes = 0;
    {
      DeviceGuard guard(device);
      if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) cudaGetLastError();
    }
    fail(
        "CUDA out of memory on cuda:{}: tried to allocate {} ({} bytes); the caching allocator had {} cached "
        "(released to the driver before retrying), {} in use by tensors; the device has {} free of {}",
        device, format_bytes(requested), requested, format_bytes(static_cast<size_t>(cached)),
        format_bytes(static_cast<size_t>(stats_for(device).current)), format_bytes(free_bytes),
        format_bytes(total_bytes));
  }

  // Called with the mutex held. cudaFree waits for the device, so blocks still read by queued
  // kernels are safe to free; we wait for our stream first anyway, to make that explicit.
  void release_device(int device) {
    bool any = false;
    for (auto& [key, ptrs] : free_) any |= std::get<0>(key) == device && !ptrs.empty();
    if (!any) return;
    DeviceGuard guard(device);
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
    for (auto it = free_.begin(); it != free_.end();) {
      if (std::get<0>(it->first) != device) {
        ++it;
        continue;
      }
      for (void* p : it->second) {
        EMBER_CUDA_CHECK(cudaFree(p));
        stats_for(device).cached -= static_cast<int64_t>(std::get<2>(it->first));
      }
      it = free_.erase(it);
    }
  }

  std::mutex mutex_;
  std::unordered_map<void*, Block> live_;
  std::map<Key, std::vector<void*>> free_;
  std::vector<DeviceStats> stats_;
};

CudaCachingAllocator& instance() {
  static auto* a = new CudaCachingAllocator();  // never destroyed: storages may outlive statics
  return *a;
}

// Registered when the library loads. This touches no CUDA API, so loading ember on a machine
// without a GPU is fine; the first CUDA allocation reports that CUDA is unavailable.
const bool g_registered = [] {
  register_allocator(Device::Type::cuda, &instance());
  return true;
}();

}  // namespace

size_t allocator_round_size(size_t nbytes) {
  if (nbytes <= kSmallLimit) return round_up(std::max(nbytes, size_t{1}), kMinBlock);
  // Large blocks: a 1/8-of-a-power-of-two step would waste up to 12% of, say, a 1 GiB gradient
  // (and break "peak memory = the buffers asked for" claims); 2 MiB steps waste at most 3%.
  if (nbytes > kLargeLimit) return round_up(nbytes, kLargeStep);
  // Eight classes per power of two: the step is 1/8 of the largest power of two <= nbytes.
  return round_up(nbytes, std::bit_floor(nbytes) / 8);
}

MemoryStats allocator_stats(int device) { return instance().stats(device); }
void allocator_reset_peak(int device) { instance().reset_peak(device); }
void allocator_release_cache() { instance().release_all(); }

}  // namespace ember::cuda
