#include "harness.h"

#include <cmath>
#include <random>

namespace ember::testing {

Tensor T(const std::vector<double>& values, const Shape& shape, bool requires_grad) {
  Tensor t = tensor<double>(values, shape);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

Tensor R(const Shape& shape, double lo, double hi, uint64_t seed, bool requires_grad) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return T(v, shape, requires_grad);
}

Tensor I(const std::vector<int64_t>& values, const Shape& shape) { return tensor<int64_t>(values, shape); }

::testing::AssertionResult tensors_close(const Tensor& actual, const Tensor& expected, double tol) {
  if (!actual.defined()) return ::testing::AssertionFailure() << "actual tensor is undefined";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape()) << " vs expected "
                                         << shape_str(expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    bool both_nan = std::isnan(a[i]) && std::isnan(e[i]);
    bool same_inf = std::isinf(a[i]) && a[i] == e[i];
    if (both_nan || same_inf) continue;
    if (!(std::abs(a[i] - e[i]) <= tol * (1.0 + std::abs(e[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs expected " << e[i]
                                           << " (tol " << tol << ")\nactual: " << actual
                                           << "\nexpected: " << expected;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult passes_gradcheck(const OpFn& fn, const std::vector<Tensor>& inputs, GradcheckOptions o) {
  GradcheckResult r = gradcheck(fn, inputs, o);
  if (r.ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "gradcheck failed: " << r.worst << " (max abs error " << r.max_abs_error
                                       << ")";
}

::testing::AssertionResult throws_error(const std::function<void()>& body, const std::string& needle) {
  try {
    body();
  } catch (const Error& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "ember::Error message \"" << e.what() << "\" lacks \"" << needle << "\"";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-ember exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw (expected an error containing \"" << needle << "\")";
}

std::vector<Tensor> inputs_on(const std::vector<Tensor>& inputs, Device device, std::optional<DType> dtype) {
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    if (!t.defined()) {
      out.push_back(t);
      continue;
    }
    DType dt = dtype && t.is_floating_point() ? *dtype : t.dtype();
    Tensor m = t.detach().to(device, dt);
    if (m.is_same(t)) m = t.detach().clone();
    if (t.requires_grad()) m.requires_grad_(true);
    out.push_back(m);
  }
  return out;
}

void run_forward_check(const OpCase& c) {
  if (!c.expected.defined()) GTEST_SKIP() << "no hand-computed values for this row";
  Tensor out = c.fn(inputs_on(c.inputs, Device::cpu()));
  EXPECT_TRUE(tensors_close(out, c.expected, c.tol));
  // float32 gives the same answer to float32 precision
  bool has_float = false;
  for (const Tensor& t : c.inputs) has_float |= t.defined() && t.is_floating_point();
  if (has_float) {
    Tensor out32 = c.fn(inputs_on(c.inputs, Device::cpu(), DType::float32));
    EXPECT_TRUE(tensors_close(out32.to(DType::float64), c.expected, std::max(c.tol, 2e-5)));
  }
}

void run_gradcheck(const OpCase& c) {
  if (!c.gradcheck) GTEST_SKIP() << "not differentiable";
  EXPECT_TRUE(passes_gradcheck(c.fn, inputs_on(c.inputs, Device::cpu()), c.grad_options));
}

void run_cuda_parity(const OpCase& c) {
  if (!cuda::is_available()) GTEST_SKIP() << "no CUDA device available";
  std::vector<Tensor> cpu_in = inputs_on(c.inputs, Device::cpu());
  std::vector<Tensor> gpu_in = inputs_on(c.inputs, Device::cuda());
  Tensor cpu_out = c.fn(cpu_in), gpu_out = c.fn(gpu_in);
  EXPECT_EQ(gpu_out.device(), Device::cuda());
  EXPECT_TRUE(tensors_close(gpu_out.cpu(), cpu_out, std::max(c.tol, 1e-9)));
  if (c.gradcheck) {
    EXPECT_TRUE(passes_gradcheck(c.fn, gpu_in, c.grad_options));
    // backward parity: the gradients of sum(out * w) for a fixed w
    Tensor w = tensor<double>(std::vector<double>(cpu_out.numel(), 0.5), cpu_out.shape());
    (cpu_out * w).sum().backward();
    (gpu_out * w.cuda()).sum().backward();
    for (size_t i = 0; i < cpu_in.size(); ++i)
      if (cpu_in[i].defined() && cpu_in[i].requires_grad() && cpu_in[i].grad().defined())
        EXPECT_TRUE(tensors_close(gpu_in[i].grad().cpu(), cpu_in[i].grad(), 1e-9)) << "input " << i;
  }
}

}  // namespace ember::testing
