// The dispatch seam (core/dispatch.h): a stub routes to the kernel registered for the device, and
// reports a missing or doubly registered kernel as an Error naming the stub.
#include "core/dispatch.h"
#include "harness.h"

using namespace ember;

namespace {

using DoubleFn = int (*)(int);
int twice(int x) { return 2 * x; }
int thrice(int x) { return 3 * x; }

TEST(Dispatch, CallsTheKernelRegisteredForTheDevice) {
  DispatchStub<DoubleFn> stub{"test_stub"};
  KernelRegistration<DoubleFn> reg(stub, Device::Type::cpu, &twice);
  EXPECT_EQ(stub(Device::cpu(), 21), 42);
  EXPECT_FALSE(stub.registered_twice);
}

TEST(Dispatch, MissingKernelIsAnError) {
  DispatchStub<DoubleFn> stub{"test_stub"};
  EMBER_EXPECT_THROW_MSG(stub(Device::cpu(), 1), "test_stub: no kernel registered for cpu");
  EMBER_EXPECT_THROW_MSG(stub(Device::cuda(), 1), "test_stub: no CUDA kernel");
}

TEST(Dispatch, RegisteringTheSameSlotTwiceIsReportedOnUse) {
  DispatchStub<DoubleFn> stub{"test_stub"};
  KernelRegistration<DoubleFn> a(stub, Device::Type::cpu, &twice);
  KernelRegistration<DoubleFn> same_again(stub, Device::Type::cpu, &twice);  // harmless
  EXPECT_EQ(stub(Device::cpu(), 1), 2);
  KernelRegistration<DoubleFn> b(stub, Device::Type::cpu, &thrice);
  EMBER_EXPECT_THROW_MSG(stub(Device::cpu(), 1),
                         "test_stub: two kernels were registered for the same device");
}

}  // namespace
