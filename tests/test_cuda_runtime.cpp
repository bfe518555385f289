// The CUDA runtime: device queries, host <-> device copies, the caching allocator, errors, and
// the random stream. Tests that need a GPU skip (with one message) where none is present; the
// behaviour *without* a GPU is tested there instead. Per-op CPU/CUDA parity lives in the op
// suites (the harness's CudaParity tests); the tests here add large inputs that take the
// kernels' other code paths (vectorised loads, 2-pass reductions).
#include <cmath>
#include <cstdio>
#include <cstring>

#include "harness.h"

namespace ember::testing {
namespace {

constexpr const char* kNoGpu = "no CUDA device available (the CUDA tests need a GPU)";
#define REQUIRE_GPU() \
  if (!cuda::is_available()) GTEST_SKIP() << kNoGpu

// ---- everywhere ----

TEST(CudaRuntime, QueriesAreConsistent) {
  EXPECT_GE(cuda::device_count(), 0);
  EXPECT_EQ(cuda::is_available(), cuda::device_count() > 0);
  if (!cuda::is_built()) EXPECT_FALSE(cuda::is_available());
}

TEST(CudaRuntime, Tf32IsOffByDefaultAndSwitchable) {
  EXPECT_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32(true);
  EXPECT_EQ(cuda::allow_tf32(), cuda::is_built());  // without the backend there is nothing to switch
  cuda::set_allow_tf32(false);
  EXPECT_FALSE(cuda::allow_tf32());
}

TEST(CudaRuntime, WithoutGpuCudaTensorsAreAnError) {
  if (cuda::is_available()) GTEST_SKIP() << "a GPU is present; this test covers machines without one";
  EMBER_EXPECT_THROW_MSG(zeros({2, 3}, Device::cuda()), "CUDA");
  EMBER_EXPECT_THROW_MSG(ones({4}).to(Device::cuda()), "CUDA");
  EMBER_EXPECT_THROW_MSG(ones({4}).cuda(), "cuda:0");
  // the queries stay harmless
  EXPECT_NO_THROW(cuda::synchronize());
  EXPECT_NO_THROW(cuda::empty_cache());
  MemoryStats s = cuda::memory_stats();
  EXPECT_EQ(s.current_bytes, 0);
  EXPECT_EQ(s.peak_bytes, 0);
  EXPECT_EQ(s.cached_bytes, 0);
}

// ---- with a GPU ----

TEST(CudaRuntime, RoundTripEveryDtype) {
  REQUIRE_GPU();
  std::vector<double> v = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  for (DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8, kBool}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor host = tensor<double>(v, {3, 4}).to(dt);
    Tensor dev = host.to(Device::cuda());
    EXPECT_EQ(dev.device(), Device::cuda(0));
    EXPECT_EQ(dev.dtype(), dt);
    EXPECT_TRUE(tensors_close(dev.cpu(), host, 0));
    // a non-contiguous source on either side
    EXPECT_TRUE(tensors_close(host.t().cuda().cpu(), host.t().contiguous(), 0));
    EXPECT_TRUE(tensors_close(dev.t().cpu(), host.t().contiguous(), 0));
    EXPECT_TRUE(tensors_close(dev.slice(1, 1, 4, 2).cpu(), host.slice(1, 1, 4, 2).contiguous(), 0));
    // a cast on the device
    EXPECT_TRUE(tensors_close(dev.to(kFloat64).cpu(), host.to(kFloat64), 0));
  }
}

TEST(CudaRuntime, ReadingBackWaitsForQueuedWork) {
  REQUIRE_GPU();
  // Many queued kernels, then item(): the value must include all of them.
  Tensor x = zeros({1 << 20}, Device::cuda());
  for (int i = 0; i < 50; ++i) x.add_(1.0);
  EXPECT_EQ(x.sum().item<float>(), 50.0f * (1 << 20));
  EXPECT_EQ(x.to_vector<float>()[12345], 50.0f);
  EXPECT_NO_THROW(cuda::synchronize());
}

TEST(CudaRuntime, AllocatorReusesFreedBlocks) {
  REQUIRE_GPU();
  cuda::empty_cache();
  MemoryStats before = cuda::memory_stats();
  void* first = nullptr;
  {
    Tensor a = empty({1000}, Device::cuda());  // 4000 bytes, rounded up to 4096
    first = a.raw_data();
    MemoryStats during = cuda::memory_stats();
    EXPECT_EQ(during.current_bytes, before.current_bytes + 4096);
    EXPECT_EQ(during.allocations, before.allocations + 1);
  }
  MemoryStats freed = cuda::memory_stats();
  EXPECT_EQ(freed.current_bytes, before.current_bytes);
  EXPECT_EQ(freed.cached_bytes, before.cached_bytes + 4096);
  Tensor b = empty({1000}, Device::cuda());
  EXPECT_EQ(b.raw_data(), first);  // the same block came back
  EXPECT_EQ(cuda::memory_stats().cached_bytes, before.cached_bytes);
  Tensor c = empty({1000}, Device::cuda());
  EXPECT_NE(c.raw_data(), first);  // in use: a new block
}

TEST(CudaRuntime, PeakStatsAndEmptyCache) {
  REQUIRE_GPU();
  cuda::reset_peak_memory_stats();
  const int64_t base = cuda::memory_stats().current_bytes;
  {
    Tensor a = empty({1 << 18}, Device::cuda());  // 1 MiB
    Tensor b = empty({3 << 18}, Device::cuda());  // 3 MiB
    EXPECT_EQ(cuda::memory_stats().current_bytes, base + (4 << 20));
  }
  MemoryStats s = cuda::memory_stats();
  EXPECT_EQ(s.current_bytes, base);
  EXPECT_EQ(s.peak_bytes, base + (4 << 20));
  EXPECT_GE(s.cached_bytes, 4 << 20);
  cuda::reset_peak_memory_stats();
  EXPECT_EQ(cuda::memory_stats().peak_bytes, base);
  cuda::empty_cache();
  EXPECT_EQ(cuda::memory_stats().cached_bytes, 0);
}

TEST(CudaRuntime, OutOfMemoryIsAnError) {
  REQUIRE_GPU();
  // 2^48 float32 elements = 1 PiB: no GPU has that.
  EMBER_EXPECT_THROW_MSG(empty({int64_t{1} << 48}, Device::cuda()), "CUDA out of memory");
  EMBER_EXPECT_THROW_MSG(empty({int64_t{1} << 48}, Device::cuda()), "tried to allocate 1.00 PiB");
  EMBER_EXPECT_THROW_MSG(empty({int64_t{1} << 48}, Device::cuda()), "cached");
  // and the device is still usable afterwards
  EXPECT_EQ(ones({10}, Device::cuda()).sum().item<float>(), 10.0f);
}

TEST(CudaRuntime, BadDeviceIndexIsAnError) {
  REQUIRE_GPU();
  EMBER_EXPECT_THROW_MSG(zeros({2}, Device::cuda(cuda::device_count())), "does not exist");
}

TEST(CudaRuntime, MixingDevicesIsAnError) {
  REQUIRE_GPU();
  Tensor a = ones({3}), b = ones({3}, Device::cuda());
  EMBER_EXPECT_THROW_MSG(a + b, "same device");
  EMBER_EXPECT_THROW_MSG(b * a, "same device");
}

TEST(CudaRuntime, PhiloxStreamIsTheCpuStream) {
  REQUIRE_GPU();
  for (DType dt : {kFloat32, kFloat64}) {
    SCOPED_TRACE(dtype_name(dt));
    auto draw = [&](Device d, auto make) {
      manual_seed(1234);
      rand({7}, TensorOptions(dt).device(d));  // move the offset off zero first
      return make(TensorOptions(dt).device(d)).cpu().template to_vector<double>();
    };
    auto uniform = [](TensorOptions o) { return rand({1003}, o); };
    auto coin = [](TensorOptions o) { return bernoulli({1003}, 0.3, o); };
    auto normal = [](TensorOptions o) { return randn({1003}, o); };
    EXPECT_EQ(draw(Device::cpu(), uniform), draw(Device::cuda(), uniform));  // bit for bit
    EXPECT_EQ(draw(Device::cpu(), coin), draw(Device::cuda(), coin));
    std::vector<double> nc = draw(Device::cpu(), normal), ng = draw(Device::cuda(), normal);
    ASSERT_EQ(nc.size(), ng.size());
    double tol = dt == kFloat32 ? 1e-6 : 1e-12;
    for (size_t i = 0; i < nc.size(); ++i) ASSERT_NEAR(ng[i], nc[i], tol * (1 + std::abs(nc[i]))) << i;
  }
}

// Large enough for the vectorised path, the 2-pass reductions and 64-bit-free index math.
// TF32 rounds GEMM inputs to 10 mantissa bits: products lose about 3 decimal digits. It must apply
// exactly while allowed (each float32 GEMM carries the choice as its compute type, the shared
// cuBLAS handle holds no mode that could outlive the switch).
TEST(CudaRuntime, Tf32ChangesFloat32GemmsOnlyWhileAllowed) {
  REQUIRE_GPU();
  const Tensor a = R({256, 256}, -1, 1, 3, false), b = R({256, 256}, -1, 1, 4, false);
  const Tensor exact = matmul(a, b);  // float64 on the CPU
  const Tensor a32 = a.to(Device::cuda(), kFloat32), b32 = b.to(Device::cuda(), kFloat32);
  auto gap = [&](const Tensor& product) { return relative_gap(product.to(Device::cpu(), kFloat64), exact); };
  cuda::set_allow_tf32(true);
  const double with_tf32 = gap(matmul(a32, b32));
  const double batched_tf32 = gap(matmul(a32.unsqueeze(0).expand({2, 256, 256}), b32)[1]);
  cuda::set_allow_tf32(false);
  const double without = gap(matmul(a32, b32));
  const double batched =
      gap(matmul(a32.unsqueeze(0).expand({2, 256, 256}), b32.unsqueeze(0).expand({2, 256, 256}))[1]);
  EXPECT_LT(without, 1e-5);  // float32 accumulation of float32 products
  EXPECT_LT(batched, 1e-5);
  EXPECT_LT(with_tf32, 1e-2);
  std::printf("float32 GEMM relative gap to float64: %.2e without TF32, %.2e (batched %.2e) with\n", without,
              with_tf32, batched_tf32);
}

TEST(CudaRuntime, LargeElementwiseMatchesCpu) {
  REQUIRE_GPU();
  Tensor a = R({513, 1031}, -2, 2, 1, false).to(kFloat32), b = R({1031}, -2, 2, 2, false).to(kFloat32);
  Tensor ga = a.cuda(), gb = b.cuda();
  EXPECT_TRUE(tensors_close((ga + gb).cpu(), a + b, 0));              // broadcast (strided path)
  EXPECT_TRUE(tensors_close((ga * ga).cpu(), a * a, 0));              // contiguous (vector path)
  EXPECT_TRUE(tensors_close(ga.t().exp().cpu(), a.t().exp(), 1e-6));  // transposed input
  Tensor odd = ga.flatten().narrow(0, 1, 1000);                       // misaligned start
  EXPECT_TRUE(tensors_close((odd * 2.0).cpu(), a.flatten().narrow(0, 1, 1000) * 2.0, 0));
  EXPECT_TRUE(tensors_close(where(ga > 0, ga, gb.expand({513, 1031})).cpu(),
                            where(a > 0, a, b.expand({513, 1031})), 0));
  EXPECT_TRUE(tensors_close((ga > gb).cpu(), a > b, 0));
  Tensor ia = (a * 100).to(kInt32);
  EXPECT_TRUE(tensors_close((ia.cuda() * 3 - 7).cpu(), ia * 3 - 7, 0));
}

TEST(CudaRuntime, LargeReductionsMatchCpu) {
  REQUIRE_GPU();
  Tensor x = R({300, 257, 9}, -1, 1, 3, false);  // float64
  Tensor g = x.cuda();
  for (const Shape& dims : std::vector<Shape>{{}, {0}, {1}, {2}, {0, 2}, {1, 2}, {0, 1}}) {
    SCOPED_TRACE(shape_str(dims));
    EXPECT_TRUE(tensors_close(g.sum(dims).cpu(), x.sum(dims), 1e-12));
    EXPECT_TRUE(tensors_close(g.amax(dims).cpu(), x.amax(dims), 0));
    EXPECT_TRUE(tensors_close(g.amin(dims).cpu(), x.amin(dims), 0));
  }
  Tensor f = R({1 << 20}, 0, 1, 4, false).to(kFloat32);
  EXPECT_TRUE(tensors_close(f.cuda().sum().cpu(), f.sum(), 1e-6));
  EXPECT_TRUE(tensors_close(f.cuda().t().sum().cpu(), f.sum(), 1e-6));
  Tensor i = (x * 1000).to(kInt64);
  EXPECT_TRUE(tensors_close(i.cuda().sum({0}).cpu(), i.sum({0}), 0));
  EXPECT_TRUE(tensors_close((g > 0.999).any().cpu(), (x > 0.999).any(), 0));
  EXPECT_TRUE(tensors_close((g > -0.999).all().cpu(), (x > -0.999).all(), 0));
  // NaN propagates through max on both devices
  Tensor n = x.clone();
  n.narrow(0, 17, 1).narrow(1, 3, 1).fill_(NAN);
  EXPECT_TRUE(tensors_close(n.cuda().amax({0}).cpu(), n.amax({0}), 0));
}

}  // namespace
}  // namespace ember::testing
