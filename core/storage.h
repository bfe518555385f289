#pragma once
// Storage: one reference-counted block of device memory. Tensors are views into it.
// The version counter lives here so that every view of the same memory sees in-place writes.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ember/device.h"

namespace ember {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  // Allocation on a given device; one-device allocators (the CPU's) ignore the index.
  virtual void* allocate_on(Device device, size_t nbytes) { return allocate(nbytes); }
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
};

Allocator* cpu_allocator();
// The CUDA backend registers its caching allocator here at load time.
void register_allocator(Device::Type type, Allocator* allocator);
Allocator* allocator_for(Device device);

struct Storage {
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  Allocator* allocator = nullptr;
  std::atomic<uint64_t> version{0};
  // Bumped when an in-place op that autograd records gives the tensor on this memory a new
  // grad_fn. A view remembers the value from when it was taken; once they differ the view's own
  // grad_fn is stale, and autograd moves the view onto its base's new history before using it
  // (refresh_view_history, core/tensor_impl.h).
  std::atomic<uint64_t> history_version{0};
};

}  // namespace ember
