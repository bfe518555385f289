// Tensor basics: creation, metadata, views (no copies), conversion, printing, and errors.
#include <limits>
#include <sstream>

#include "harness.h"

namespace ember::testing {
namespace {

TEST(Creation, FactoriesHaveRightValuesAndTypes) {
  EXPECT_EQ(zeros({2, 3}).to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(ones({2}, kInt64).to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(full({3}, 2.5, kFloat64).to_vector<double>(), (std::vector<double>{2.5, 2.5, 2.5}));
  EXPECT_EQ(arange(5).dtype(), kInt64);
  EXPECT_EQ(arange(5).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(1, 2, 0.25).to_vector<float>(), (std::vector<float>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(linspace(0, 1, 5, kFloat64).to_vector<double>(), (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  EXPECT_EQ(eye(2, 3).to_vector<float>(), (std::vector<float>{1, 0, 0, 0, 1, 0}));
  Tensor t = tensor<int32_t>({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(t.dtype(), kInt32);
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
  EXPECT_EQ(t.numel(), 4);
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.size(-1), 2);
  EXPECT_EQ(t.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(tensor<bool>({true, false}).to_vector<bool>(), (std::vector<bool>{true, false}));
  EXPECT_EQ(scalar_tensor(3.0).dim(), 0);
  EXPECT_EQ(scalar_tensor(3.0).item<float>(), 3.0f);
  EXPECT_EQ(zeros_like(t).dtype(), kInt32);
  EXPECT_EQ(ones({2}, TensorOptions().requires_grad(true)).requires_grad(), true);
}

TEST(Creation, RandomIsSeededAndWellDistributed) {
  manual_seed(7);
  Tensor a = rand({1000});
  manual_seed(7);
  Tensor b = rand({1000});
  EXPECT_TRUE(equal(a, b));
  EXPECT_FALSE(equal(a, rand({1000})));
  std::vector<float> v = a.to_vector<float>();
  for (float x : v) ASSERT_TRUE(x >= 0.0f && x < 1.0f);
  Tensor n = randn({20000}, kFloat64);
  EXPECT_NEAR(n.mean().item<double>(), 0.0, 0.03);
  EXPECT_NEAR((n * n).mean().item<double>(), 1.0, 0.05);
  Tensor r = randint(3, 7, {2000});
  EXPECT_EQ(r.dtype(), kInt64);
  std::vector<int64_t> rv = r.to_vector<int64_t>();
  std::vector<int> counts(7, 0);
  for (int64_t x : rv) {
    ASSERT_TRUE(x >= 3 && x < 7);
    counts[x]++;
  }
  for (int k = 3; k < 7; ++k) EXPECT_GT(counts[k], 400);
  Tensor bern = bernoulli({10000}, 0.3);
  EXPECT_NEAR(bern.mean().item<float>(), 0.3, 0.02);
  GeneratorState s = get_rng_state();
  Tensor c = randn({5});
  set_rng_state(s);
  EXPECT_TRUE(equal(c, randn({5})));
}

TEST(Views, ShareStorageAndComputeStrides) {
  Tensor a = arange(0, 12, 1, kFloat32).view({3, 4});
  Tensor t = a.t();
  EXPECT_EQ(t.shape(), (Shape{4, 3}));
  EXPECT_EQ(t.strides(), (Shape{1, 4}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.raw_data(), a.raw_data());
  EXPECT_EQ(t.contiguous().to_vector<float>(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  Tensor row = a.select(0, 1);
  EXPECT_EQ(row.to_vector<float>(), (std::vector<float>{4, 5, 6, 7}));
  EXPECT_EQ(a.narrow(1, 1, 2).to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(a.slice(1, 0, 4, 2).to_vector<float>(), (std::vector<float>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(a.unsqueeze(0).shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(a.unsqueeze(-1).shape(), (Shape{3, 4, 1}));
  EXPECT_EQ(a.unsqueeze(1).squeeze().shape(), (Shape{3, 4}));
  EXPECT_EQ(a.view({-1}).shape(), (Shape{12}));
  EXPECT_EQ(a.view({2, -1, 3}).shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(a.permute({1, 0}).strides(), (Shape{1, 4}));
  EXPECT_EQ(a.flatten().shape(), (Shape{12}));
  EXPECT_EQ(a.unflatten(1, {2, 2}).shape(), (Shape{3, 2, 2}));
  Tensor e = tensor<float>({1, 2, 3}).expand({2, 3});
  EXPECT_EQ(e.strides(), (Shape{0, 1}));
  EXPECT_EQ(e.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  // a view of a non-contiguous tensor that is still expressible without a copy
  Tensor p = arange(0, 24, 1, kFloat32).view({2, 3, 4}).permute({1, 0, 2});  // [3,2,4], strides [4,12,1]
  Tensor pv = p.view({3, 2, 2, 2});  // splitting the contiguous last dim is always a view
  EXPECT_EQ(pv.raw_data(), p.raw_data());
  EXPECT_EQ(pv.strides(), (Shape{4, 12, 2, 1}));
  // reshape copies when it must
  Tensor r = t.reshape({12});
  EXPECT_EQ(r.to_vector<float>(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  // writing through a view changes the base
  a.select(1, 0).fill_(-1);
  EXPECT_EQ(a.to_vector<float>()[4], -1.0f);
}

TEST(Views, ZeroSizeTensorsAreContiguous) {
  // Like PyTorch: a tensor with no elements has nothing out of place, whatever its strides.
  EXPECT_TRUE(zeros({2, 0}).is_contiguous());
  EXPECT_TRUE(zeros({0, 3}).t().is_contiguous());
  Tensor e = zeros({3, 0, 2}).permute({2, 0, 1});
  EXPECT_TRUE(e.is_contiguous());
  EXPECT_EQ(e.contiguous().shape(), (Shape{2, 3, 0}));
  EXPECT_EQ(cat({zeros({2, 0}), zeros({2, 0})}, 1).shape(), (Shape{2, 0}));
}

TEST(Views, Errors) {
  Tensor a = zeros({3, 4});
  EMBER_EXPECT_THROW_MSG(a.t().view({12}), "view: shape [12] is not compatible");
  EMBER_EXPECT_THROW_MSG(a.view({5, -1}), "view: shape [5,-1] is invalid for input of size 12");
  EMBER_EXPECT_THROW_MSG(a.view({-1, -1}), "only one dimension can be inferred");
  EMBER_EXPECT_THROW_MSG(a.select(0, 3), "select: index 3 out of range for dim 0 of size 3");
  EMBER_EXPECT_THROW_MSG(a.narrow(1, 2, 3), "narrow: start 2 + length 3 out of range");
  // start + length would overflow (signed overflow, then a silent slice); PyTorch throws too
  EMBER_EXPECT_THROW_MSG(a.narrow(1, 1, std::numeric_limits<int64_t>::max()), "narrow: start 1 + length");
  EMBER_EXPECT_THROW_MSG(a.view({std::numeric_limits<int64_t>::max(), 2}), "is invalid for input of size 12");
  // a 0-d tensor has dims 0 and -1 only (PyTorch: "Dimension out of range")
  Tensor s = scalar_tensor(5.0);
  EXPECT_EQ(s.transpose(0, -1).item<float>(), 5.0f);
  EXPECT_EQ(s.squeeze(0).item<float>(), 5.0f);
  EMBER_EXPECT_THROW_MSG(s.transpose(0, 1), "transpose: dim 1 out of range for a 0-d tensor");
  EMBER_EXPECT_THROW_MSG(s.squeeze(5), "squeeze: dim 5 out of range for a 0-d tensor");
  EMBER_EXPECT_THROW_MSG(a.permute({0, 0}), "permute: dim 0 repeated");
  EMBER_EXPECT_THROW_MSG(a.permute({0}), "permute: got 1 dims");
  EMBER_EXPECT_THROW_MSG(a.transpose(0, 2), "transpose: dim 2 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(a.expand({2, 4}), "expand: cannot expand [3,4] to [2,4]");
  EMBER_EXPECT_THROW_MSG(a.size(2), "size: dim 2 out of range");
  EMBER_EXPECT_THROW_MSG(ones({3, 4}, kInt64).t().t().data_ptr<float>(),
                         "data_ptr: requested float32 but the tensor is int64");
  EMBER_EXPECT_THROW_MSG(a.item<float>(), "item: expected a tensor with one element, got shape [3,4]");
  EMBER_EXPECT_THROW_MSG(tensor<float>({1, 2, 3}, {2, 2}), "tensor: 3 values given for shape [2,2]");
  EMBER_EXPECT_THROW_MSG(zeros({-1, 2}), "negative dimension");
  EMBER_EXPECT_THROW_MSG(Tensor().shape(), "shape: called on an undefined tensor");
  EMBER_EXPECT_THROW_MSG(zeros({2}, kInt64).requires_grad_(),
                         "only floating-point tensors can require gradients");
}

// Sizes whose product overflows int64 used to wrap (2^80 -> 0 elements, then writes past the end).
TEST(Views, ElementCountsThatOverflowAreErrors) {
  const int64_t big = int64_t{1} << 40;
  EMBER_EXPECT_THROW_MSG(zeros({big, big}), "shape [1099511627776,1099511627776] has more elements");
  EMBER_EXPECT_THROW_MSG(zeros({int64_t{1} << 62, 4}), "more elements than a 64-bit count can hold");
  EMBER_EXPECT_THROW_MSG(zeros({int64_t{1} << 61}, kFloat64),
                         "needs more bytes than a 64-bit size can count");
  EMBER_EXPECT_THROW_MSG(ones({1, 1}).expand({big, big}), "expand: shape [1099511627776,1099511627776]");
  EMBER_EXPECT_THROW_MSG(ones({1, 3}).expand({-2, 3}), "expand: invalid size -2 for dim 0 in [-2,3]");
  // A zero dim makes no elements, but the other dims still set the strides, which must not overflow.
  EXPECT_EQ(zeros({0, int64_t{1} << 30, int64_t{1} << 30}).numel(), 0);
  EMBER_EXPECT_THROW_MSG(zeros({0, big, big}), "has more elements than a 64-bit count can hold");
  EMBER_EXPECT_THROW_MSG(zeros({big, big, 0}), "has more elements than a 64-bit count can hold");
}

TEST(Creation, Errors) {
  EMBER_EXPECT_THROW_MSG(arange(0, NAN), "arange: start, end and step must be finite");
  EMBER_EXPECT_THROW_MSG(arange(0, INFINITY), "arange: start, end and step must be finite");
  EMBER_EXPECT_THROW_MSG(arange(0, 1e300, 1), "arange: [0, 1e+300) in steps of 1 has too many elements");
  EMBER_EXPECT_THROW_MSG(arange(3, 1, 1), "arange: range [3, 1) is empty or reversed");
  EXPECT_EQ(arange(2, 2, 1).numel(), 0);
  EMBER_EXPECT_THROW_MSG(bernoulli(full({4}, 2.0)),
                         "bernoulli: probabilities must be in [0, 1], got values in [2, 2]");
  EMBER_EXPECT_THROW_MSG(bernoulli(tensor<float>({0.5f, -1.0f})), "got values in [-1, 0.5]");
  EMBER_EXPECT_THROW_MSG(bernoulli(tensor<float>({0.5f, NAN})), "bernoulli: probabilities must be in [0, 1]");
  EXPECT_EQ(bernoulli(tensor<float>({0.0f, 1.0f})).to_vector<float>(), (std::vector<float>{0.0f, 1.0f}));
}

TEST(Views, GradientsFlowBackToTheBase) {
  Tensor x = R({3, 4});
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor v = in[0].t().reshape({2, 6}).narrow(1, 1, 4).unsqueeze(0).expand({2, 2, 4});
    return v.select(2, 3) * 2.0 + v.slice(2, 0, 4, 2).sum({2}) +
           in[0].permute({1, 0}).flatten().view({2, 6}).sum({1}).unsqueeze(1);
  };
  EXPECT_TRUE(passes_gradcheck(fn, {x}));
}

TEST(Conversion, DtypeCastsAndClone) {
  Tensor f = tensor<float>({1.7f, -2.2f, 0.0f});
  EXPECT_EQ(f.to(kInt64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 0}));
  EXPECT_EQ(f.to(kBool).to_vector<bool>(), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(f.to(kFloat64).dtype(), kFloat64);
  Tensor c = f.clone();
  c.fill_(0);
  EXPECT_EQ(f.to_vector<float>()[0], 1.7f);  // clone is a deep copy
  Tensor x = R({3}, -1, 1, 3);
  EXPECT_TRUE(
      passes_gradcheck([](const std::vector<Tensor>& in) { return in[0].to(kFloat32).to(kFloat64) * 1.0; },
                       {x}, GradcheckOptions{1e-3, 1e-3, 1e-3}));
}

TEST(Printing, ShowsValuesShapeDtype) {
  Tensor t = tensor<float>({1, 2.5, -3, 4}, {2, 2});
  std::string s = fmt::format("{}", t);
  EXPECT_NE(s.find("[[ 1.0000,  2.5000],"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=[2,2], dtype=float32"), std::string::npos) << s;
  std::ostringstream os;
  os << tensor<int64_t>({1, 2, 3});
  EXPECT_EQ(os.str(), "tensor([1, 2, 3], shape=[3], dtype=int64)");
  std::string big = arange(0, 5000, 1, kFloat32).str();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 200u);
  Tensor g = ones({2}, TensorOptions().requires_grad(true)) * 2.0;
  EXPECT_NE(g.str().find("grad_fn=<mul>"), std::string::npos) << g.str();
}

TEST(Threads, SetAndGet) {
  int before = get_num_threads();
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  Tensor a = rand({1 << 16});
  Tensor s1 = (a * 2.0).sum();
  set_num_threads(before);
  EXPECT_NEAR(s1.item<float>(), (a * 2.0).sum().item<float>(), 1e-2);
  EMBER_EXPECT_THROW_MSG(set_num_threads(0), "set_num_threads: expected a positive count");
}

TEST(Memory, CpuStatsTrackPeak) {
  cpu::reset_peak_memory_stats();
  MemoryStats before = cpu::memory_stats();
  {
    Tensor big = empty({1 << 20});  // 4 MiB
    EXPECT_GE(cpu::memory_stats().current_bytes, before.current_bytes + (4 << 20));
  }
  MemoryStats after = cpu::memory_stats();
  EXPECT_EQ(after.current_bytes, before.current_bytes);
  EXPECT_GE(after.peak_bytes, before.current_bytes + (4 << 20));
}

TEST(Cuda, QueriesExistInEveryBuild) {
  EXPECT_EQ(cuda::is_available(), cuda::device_count() > 0);
  if (!cuda::is_available()) {
    EMBER_EXPECT_THROW_MSG(zeros({2}, TensorOptions().device(Device::cuda())), "CUDA");
    EMBER_EXPECT_THROW_MSG(ones({2}).to(Device::cuda()), "CUDA");
  }
  EXPECT_EQ(Device::cuda(1).index(), 1);
  EXPECT_TRUE(Device::cpu().is_cpu());
  EXPECT_EQ(fmt::format("{}", Device::cuda(0)), "cuda:0");
}

}  // namespace
}  // namespace ember::testing
