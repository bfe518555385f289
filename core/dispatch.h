#pragma once
// The seam between ops and backends. Each kernel is a DispatchStub: a pair of function
// pointers, one per device type. An op calls `stub(device, args...)`; a backend fills its slot
// when the library loads:
//
//   EMBER_DECLARE_STUB(unary_stub, UnaryFn);          // in the op group's kernel header
//   EMBER_DEFINE_STUB(unary_stub, UnaryFn);           // in the op's .cpp
//   EMBER_REGISTER_KERNEL(unary_stub, cpu, &unary_cpu);  // in ops/cpu/*.cpp or cuda/*.cu
//
// A device whose backend was not built (or has no kernel for this op) gets a clear Error.
#include <string_view>
#include <utility>

#include "ember/device.h"
#include "ember/error.h"

namespace ember {

template <class Fn>
struct DispatchStub {
  constexpr explicit DispatchStub(const char* n) : name(n) {}
  const char* name;
  Fn cpu = nullptr;
  Fn cuda = nullptr;
  // Set when two kernels claim the same slot (a build mistake: which one wins would depend on
  // static initialisation order). Reported on use, because throwing during library load aborts.
  bool registered_twice = false;

  Fn get(Device device) const {
    if (registered_twice) fail("{}: two kernels were registered for the same device", name);
    Fn fn = device.is_cpu() ? cpu : cuda;
    if (fn == nullptr) {
      if (device.is_cuda())
        fail("{}: no CUDA kernel (this build of ember has no CUDA backend, or the op is CPU-only)", name);
      fail("{}: no kernel registered for {}", name, device.str());
    }
    return fn;
  }
  template <class... Args>
  decltype(auto) operator()(Device device, Args&&... args) const {
    return get(device)(std::forward<Args>(args)...);
  }
};

template <class Fn>
struct KernelRegistration {
  KernelRegistration(DispatchStub<Fn>& stub, Device::Type type, Fn fn) {
    Fn& slot = type == Device::Type::cpu ? stub.cpu : stub.cuda;
    if (slot != nullptr && slot != fn) stub.registered_twice = true;
    slot = fn;
  }
};

}  // namespace ember

#define EMBER_DECLARE_STUB(stub, fn_type) extern ::ember::DispatchStub<fn_type> stub
#define EMBER_DEFINE_STUB(stub, fn_type) \
  constinit ::ember::DispatchStub<fn_type> stub { #stub }
#define EMBER_CONCAT_INNER(a, b) a##b
#define EMBER_CONCAT(a, b) EMBER_CONCAT_INNER(a, b)
#define EMBER_REGISTER_KERNEL(stub, device, fn)                                                          \
  static ::ember::KernelRegistration<decltype(stub.cpu)> EMBER_CONCAT(stub##_##device##_reg_, __LINE__)( \
      stub, ::ember::Device::Type::device, fn)
