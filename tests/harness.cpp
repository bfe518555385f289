#include "harness.h"

#include <algorithm>
#include <cmath>
#include <limits>
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

double relative_gap(const Tensor& actual, const Tensor& expected) {
  const std::vector<double> a = actual.to(kFloat64).cpu().to_vector<double>(),
                            b = expected.to(kFloat64).cpu().to_vector<double>();
  EXPECT_EQ(a.size(), b.size());
  double gap = 0, scale = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    gap = std::max(gap, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return scale > 0 ? gap / scale : gap;
}

::testing::AssertionResult tensors_close(const Tensor& actual, const Tensor& expected, double tol) {
  if (!actual.defined()) return ::testing::AssertionFailure() << "actual tensor is undefined";
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure()
           << "shape " << shape_str(actual.shape()) << " vs expected " << shape_str(expected.shape());
  std::vector<double> a = actual.to_vector<double>(), e = expected.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    bool both_nan = std::isnan(a[i]) && std::isnan(e[i]);
    bool same_inf = std::isinf(a[i]) && a[i] == e[i];
    if (both_nan || same_inf) continue;
    if (!(std::abs(a[i] - e[i]) <= tol * (1.0 + std::abs(e[i]))))
      return ::testing::AssertionFailure()
             << "element " << i << ": " << a[i] << " vs expected " << e[i] << " (tol " << tol
             << ")\nactual: " << actual << "\nexpected: " << expected;
  }
  return ::testing::AssertionSuccess();
}

namespace {
::testing::AssertionResult check_result(const char* what, const GradcheckResult& r) {
  if (r.ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << " failed: " << r.worst << " (max abs error " << r.max_abs_error << ")";
}
}  // namespace

::testing::AssertionResult passes_gradcheck(const OpFn& fn, const std::vector<Tensor>& inputs,
                                            GradcheckOptions o) {
  return check_result("gradcheck", gradcheck(fn, inputs, o));
}
::testing::AssertionResult passes_gradgradcheck(const OpFn& fn, const std::vector<Tensor>& inputs,
                                                GradcheckOptions o) {
  return check_result("gradgradcheck", gradgradcheck(fn, inputs, o));
}

::testing::AssertionResult recorded_gradients_match(const OpFn& fn, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> checked;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) checked.push_back(t);
  if (checked.empty()) return ::testing::AssertionSuccess();
  Tensor out = fn(inputs);
  // a fixed, uneven weighting of the outputs (as gradgradcheck's v)
  std::vector<double> w(static_cast<size_t>(out.numel()));
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::cos(0.7 + 1.9 * static_cast<double>(i));
  const Tensor v = tensor<double>(w, out.shape()).to(out.device(), out.dtype());
  const std::vector<Tensor> plain = autograd::grad({out}, checked, {v}, true, false, true);
  const std::vector<Tensor> recorded = autograd::grad({out}, checked, {v}, true, true, true);
  for (size_t k = 0; k < checked.size(); ++k) {
    if (plain[k].defined() != recorded[k].defined())
      return ::testing::AssertionFailure() << "input " << k << ": the gradient is defined only "
                                           << (plain[k].defined() ? "without" : "with") << " create_graph";
    if (!plain[k].defined()) continue;
    const double gap = relative_gap(recorded[k], plain[k]);
    if (!(gap <= 1e-9))
      return ::testing::AssertionFailure()
             << "input " << k << ": the gradient with create_graph differs from the "
             << "plain one by " << gap << " (relative)\nwith: " << recorded[k] << "\nwithout: " << plain[k];
  }
  return ::testing::AssertionSuccess();
}

std::vector<OpCase> with_gradgradcheck(std::vector<OpCase> cases) {
  for (OpCase& c : cases) c.gradgradcheck = c.gradcheck;
  return cases;
}

::testing::AssertionResult throws_error(const std::function<void()>& body, const std::string& needle) {
  try {
    body();
  } catch (const Error& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "ember::Error message \"" << e.what() << "\" lacks \"" << needle << "\"";
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

// A row's inputs must be leaves: gtest keeps the rows in static storage until exit, and an input
// with a grad_fn would keep its graph alive past the thread-local state that frees graphs (a heap
// corruption at exit, far from the row that caused it). Write such an input as a leaf instead.
::testing::AssertionResult inputs_are_leaves(const OpCase& c) {
  for (size_t i = 0; i < c.inputs.size(); ++i)
    if (c.inputs[i].defined() && !c.inputs[i].is_leaf())
      return ::testing::AssertionFailure()
             << "row " << c.name << ": input " << i << " has a grad_fn; table inputs must be leaves";
  return ::testing::AssertionSuccess();
}

void run_forward_check(const OpCase& c) {
  ASSERT_TRUE(inputs_are_leaves(c));
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
  ASSERT_TRUE(inputs_are_leaves(c));
  if (!c.gradcheck) GTEST_SKIP() << "not differentiable";
  EXPECT_TRUE(passes_gradcheck(c.fn, inputs_on(c.inputs, Device::cpu()), c.grad_options));
  if (c.gradgradcheck) {
    EXPECT_TRUE(recorded_gradients_match(c.fn, inputs_on(c.inputs, Device::cpu())));
    EXPECT_TRUE(passes_gradgradcheck(c.fn, inputs_on(c.inputs, Device::cpu()), c.grad_options));
  }
}

void expect_cuda_parity(const OpFn& fn, const std::vector<Tensor>& inputs, double tol,
                        std::optional<DType> dtype) {
  std::vector<Tensor> cpu_in = inputs_on(inputs, Device::cpu(), dtype);
  std::vector<Tensor> gpu_in = inputs_on(inputs, Device::cuda(), dtype);
  Tensor c = fn(cpu_in), g = fn(gpu_in);
  ASSERT_EQ(g.device(), Device::cuda());
  ASSERT_EQ(g.dtype(), c.dtype());
  if (dtype && g.is_floating_point()) ASSERT_EQ(g.dtype(), *dtype);
  EXPECT_TRUE(tensors_close(g.cpu(), c, tol)) << "forward";
  if (!c.requires_grad()) return;
  Tensor w = R(c.shape(), -1, 1, 99, false).to(c.dtype());
  (c * w).sum().backward();
  (g * w.to(g.device())).sum().backward();
  for (size_t i = 0; i < cpu_in.size(); ++i)
    if (cpu_in[i].defined() && cpu_in[i].requires_grad() && cpu_in[i].grad().defined()) {
      ASSERT_TRUE(gpu_in[i].grad().defined()) << "input " << i;
      EXPECT_TRUE(tensors_close(gpu_in[i].grad().cpu(), cpu_in[i].grad(), tol)) << "gradient of input " << i;
    }
}

void run_cuda_parity(const OpCase& c) {
  EMBER_SKIP_WITHOUT_GPU();
  // Rows that are not gradient-checked compare forward values only.
  std::vector<Tensor> inputs = c.inputs;
  if (!c.gradcheck)
    for (Tensor& t : inputs)
      if (t.defined()) t = t.detach();
  expect_cuda_parity(c.fn, inputs, std::max(c.tol, 1e-9));
  if (c.gradcheck) EXPECT_TRUE(passes_gradcheck(c.fn, inputs_on(c.inputs, Device::cuda()), c.grad_options));
  if (c.gradgradcheck) {
    EXPECT_TRUE(recorded_gradients_match(c.fn, inputs_on(c.inputs, Device::cuda())));
    EXPECT_TRUE(passes_gradgradcheck(c.fn, inputs_on(c.inputs, Device::cuda()), c.grad_options));
  }
}

}  // namespace ember::testing
