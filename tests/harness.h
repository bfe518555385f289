#pragma once
// The op test harness. An op case is one table row: a function of some input tensors, the
// inputs (float64; those that require grad are gradient-checked), and the expected forward
// values worked out by hand. EMBER_OP_SUITE turns a table into parameterised tests that, for
// every row, check the forward values on the CPU, run gradcheck, and (when a GPU is present)
// run the same row on CUDA and compare with the CPU.
#include <ember/ember.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace ember::testing {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;  // unique, [A-Za-z0-9_]
  OpFn fn;
  std::vector<Tensor> inputs;  // on the CPU
  Tensor expected;             // hand-computed result (undefined: skip the value check)
  double tol = 1e-6;           // absolute + relative tolerance for the value check
  bool gradcheck = true;       // false for non-differentiable ops
  GradcheckOptions grad_options = {};
  bool gradgradcheck = false;  // also check second derivatives (ops with a double backward)
};

// Fails for a row with an input that has a grad_fn (rows live until exit; see harness.cpp).
::testing::AssertionResult inputs_are_leaves(const OpCase& c);

// Turns on gradgradcheck for every row of a table (of ops that all have a double backward).
std::vector<OpCase> with_gradgradcheck(std::vector<OpCase> cases);

// A float64 CPU tensor from values; requires grad unless told otherwise.
Tensor T(const std::vector<double>& values, const Shape& shape, bool requires_grad = true);
// Deterministic pseudo-random float64 values in [lo, hi) (independent of ember's RNG).
Tensor R(const Shape& shape, double lo = -1.0, double hi = 1.0, uint64_t seed = 1, bool requires_grad = true);
// Integer (int64) index tensor.
Tensor I(const std::vector<int64_t>& values, const Shape& shape);

// max |actual - expected| / max |expected| over all elements, in float64 on the CPU (the absolute
// gap when `expected` is all zero); infinity where either holds a NaN, so a NaN never passes.
double relative_gap(const Tensor& actual, const Tensor& expected);

// gtest assertions with readable messages.
::testing::AssertionResult tensors_close(const Tensor& actual, const Tensor& expected, double tol);
::testing::AssertionResult passes_gradcheck(const OpFn& fn, const std::vector<Tensor>& inputs,
                                            GradcheckOptions options = {});
::testing::AssertionResult passes_gradgradcheck(const OpFn& fn, const std::vector<Tensor>& inputs,
                                                GradcheckOptions options = {});
// The gradients of sum(fn(inputs) * w), w fixed, computed with create_graph (the recorded backward
// formulas, which a second derivative differentiates) equal the plain backward's to 1e-9 relative:
// gradgradcheck checks the recorded formulas' derivative, this that they are the same gradient.
::testing::AssertionResult recorded_gradients_match(const OpFn& fn, const std::vector<Tensor>& inputs);
// Expects `body` to throw ember::Error whose message contains `needle`.
::testing::AssertionResult throws_error(const std::function<void()>& body, const std::string& needle);

// `t` moved to the device of `like` (undefined stays undefined). Row functions use it for the
// tensors they capture (targets, class weights): the CUDA parity run moves only the inputs.
inline Tensor on_device_of(const Tensor& t, const Tensor& like) {
  return t.defined() ? t.to(like.device()) : t;
}

// Moves every input to `device` (keeping requires_grad on leaves).
std::vector<Tensor> inputs_on(const std::vector<Tensor>& inputs, Device device,
                              std::optional<DType> dtype = {});

// gtest prints a row by its name
inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

// ---- CUDA tests ----
// Runs `fn` on CPU copies and on CUDA copies of `inputs` (floating inputs cast to `dtype` when
// given) and expects the same results within `tol`: the outputs and, when the output requires
// grad, the gradients of sum(out * w) for every input that requires grad, with w fixed and random
// in [-1, 1) (a constant w would hide backward errors of any op whose outputs sum to a constant,
// like softmax). Call it after EMBER_SKIP_WITHOUT_GPU().
void expect_cuda_parity(const OpFn& fn, const std::vector<Tensor>& inputs, double tol,
                        std::optional<DType> dtype = {});

void run_forward_check(const OpCase& c);
void run_gradcheck(const OpCase& c);    // and gradgradcheck where the row asks for it
void run_cuda_parity(const OpCase& c);  // skips without a GPU; gradchecks (and gradgradchecks) on CUDA too

}  // namespace ember::testing

// First statement of a test that needs a GPU: without one the test skips, with one message.
#define EMBER_SKIP_WITHOUT_GPU() \
  if (!::ember::cuda::is_available()) GTEST_SKIP() << "no CUDA device available (the CUDA tests need a GPU)"

#define EMBER_EXPECT_THROW_MSG(stmt, needle) \
  EXPECT_TRUE(::ember::testing::throws_error([&] { stmt; }, needle))

// Declares a parameterised suite over the rows returned by `cases_fn()`.
#define EMBER_OP_SUITE(Suite, cases_fn)                                        \
  class Suite : public ::testing::TestWithParam<::ember::testing::OpCase> {};  \
  TEST_P(Suite, Forward) { ::ember::testing::run_forward_check(GetParam()); }  \
  TEST_P(Suite, Gradcheck) { ::ember::testing::run_gradcheck(GetParam()); }    \
  TEST_P(Suite, CudaParity) { ::ember::testing::run_cuda_parity(GetParam()); } \
  INSTANTIATE_TEST_SUITE_P(                                                    \
      Ops, Suite, ::testing::ValuesIn(cases_fn()),                             \
      [](const ::testing::TestParamInfo<::ember::testing::OpCase>& info) { return info.param.name; })
