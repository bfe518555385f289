#include "core/storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/cpu_block_cache.h"
#include "ember/error.h"
#include "ember/memory.h"

namespace ember {
namespace {

// 64-byte aligned host memory with byte counters for memory_stats(); freed blocks of 64 KiB and more
// are kept for reuse.
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    const size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = rounded == 0 ? nullptr : cache_.take(rounded);
    if (rounded != 0 && p == nullptr) p = std::aligned_alloc(64, rounded);
    if (rounded != 0 && p == nullptr) {  // out of memory: give back the cached blocks and try again
      cache_.release();
      p = std::aligned_alloc(64, rounded);
    }
    if (rounded != 0 && p == nullptr) fail("cpu allocator: out of memory allocating {} bytes", nbytes);
    int64_t now = current_.fetch_add(static_cast<int64_t>(nbytes)) + static_cast<int64_t>(nbytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    allocations_.fetch_add(1);
    return p;
  }
  void deallocate(void* p, size_t nbytes) override {
    if (p != nullptr && !cache_.put(p, (nbytes + 63) / 64 * 64)) std::free(p);
    current_.fetch_sub(static_cast<int64_t>(nbytes));
  }
  MemoryStats stats() const {
    return MemoryStats{current_.load(), peak_.load(), allocations_.load(), cache_.cached_bytes()};
  }
  void reset_peak() { peak_.store(current_.load()); }

 private:
  std::atomic<int64_t> current_{0}, peak_{0}, allocations_{0};
  CpuBlockCache cache_;  // freed blocks kept for reuse (core/cpu_block_cache.h says why)
};

CpuAllocator& cpu_alloc_instance() {
  static CpuAllocator* instance = new CpuAllocator();  // never destroyed: storages may outlive statics
  return *instance;
}

Allocator* g_cuda_allocator = nullptr;

}  // namespace

Allocator* cpu_allocator() { return &cpu_alloc_instance(); }

void register_allocator(Device::Type type, Allocator* allocator) {
  if (type == Device::Type::cuda) g_cuda_allocator = allocator;
}

Allocator* allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  if (g_cuda_allocator == nullptr)
    fail("{}: this build of ember has no CUDA backend (rebuild with -DEMBER_CUDA=ON)", device.str());
  return g_cuda_allocator;
}

Storage::Storage(size_t n, Device d) : nbytes(n), device(d), allocator(allocator_for(d)) {
  data = allocator->allocate_on(d, n);
}

Storage::~Storage() {
  if (allocator != nullptr) allocator->deallocate(data, nbytes);
}

namespace cpu {
MemoryStats memory_stats() { return cpu_alloc_instance().stats(); }
void reset_peak_memory_stats() { cpu_alloc_instance().reset_peak(); }
}  // namespace cpu

}  // namespace ember
