#pragma once
// A cache of freed CPU blocks of 64 KiB and more, reused by the next allocation of the same size.
//
// Why: a training step allocates and frees the same activations and gradients every iteration.
// glibc serves blocks from 128 KiB up with mmap (or trims them off the top of its heap when they are
// freed), so every step the kernel maps fresh pages again and zero-fills each one on its first
// touch: 134 page faults per step of the 784-256-256-10 MLP of bench_train, 12% of its CPU time.
// Keeping the blocks avoids that, the way PyTorch's caching allocator does on the GPU.
//
// Sizes match exactly (a training loop repeats its shapes); blocks under kMinBytes are left to
// malloc, whose free lists already recycle small blocks cheaply; at most kMaxCachedBytes are held
// and a block that does not fit is freed as before. A reused block holds old values, which is fine:
// a new tensor's memory is uninitialised anyway.
//
// Under AddressSanitizer a cached block is poisoned while it waits (and unpoisoned when reused),
// so a read or write through a dangling pointer into it is reported as it would be after free().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define EMBER_POISON_CACHED(p, bytes) ASAN_POISON_MEMORY_REGION(p, bytes)
#define EMBER_UNPOISON_CACHED(p, bytes) ASAN_UNPOISON_MEMORY_REGION(p, bytes)
#else
#define EMBER_POISON_CACHED(p, bytes) ((void)(p), (void)(bytes))
#define EMBER_UNPOISON_CACHED(p, bytes) ((void)(p), (void)(bytes))
#endif

namespace ember {

class CpuBlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10;
  static constexpr size_t kMaxCachedBytes = size_t{512} << 20;

  // A cached block of exactly `bytes`, or nullptr.
  void* take(size_t bytes) {
    if (bytes < kMinBytes) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end()) return nullptr;
    void* p = it->second;
    free_.erase(it);
    cached_ -= bytes;
    EMBER_UNPOISON_CACHED(p, bytes);
    return p;
  }
  // Keeps the block for reuse; false when it is too small or the cache is full (the caller frees it).
  bool put(void* p, size_t bytes) {
    if (bytes < kMinBytes) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ + bytes > kMaxCachedBytes) return false;
    EMBER_POISON_CACHED(p, bytes);
    free_.emplace(bytes, p);
    cached_ += bytes;
    return true;
  }
  // Frees every cached block (when an allocation fails, before trying again).
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, p] : free_) {
      EMBER_UNPOISON_CACHED(p, bytes);
      std::free(p);
    }
    free_.clear();
    cached_ = 0;
  }
  int64_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(cached_);
  }

 private:
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;  // size -> block
  size_t cached_ = 0;
};

}  // namespace ember
