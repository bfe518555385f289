#pragma once
// Helpers shared by the nn tests.
#include <ember/nn.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"

namespace ember::testing {

// Overwrites a parameter's values (keeping its dtype, device and identity).
inline void set_values(const Tensor& t, const std::vector<double>& values) {
  NoGradGuard no_grad;
  Tensor(t).copy_(tensor<double>(values, t.shape()));
}

// Gradchecks `forward` through a module with respect to `input` (when defined and requiring grad)
// and to the listed parameters: the module is converted to float64, and gradcheck's perturbed
// copies are swapped into the parameter members for each evaluation, then the originals restored.
inline ::testing::AssertionResult module_gradcheck(nn::Module& module, const std::vector<Tensor*>& params,
                                                   const Tensor& input,
                                                   const std::function<Tensor(const Tensor&)>& forward,
                                                   GradcheckOptions options = {}) {
  module.to(DType::float64);
  std::vector<Tensor> originals, inputs{input};
  for (Tensor* p : params) {
    originals.push_back(*p);
    inputs.push_back(*p);
  }
  auto fn = [&](const std::vector<Tensor>& in) {
    for (size_t i = 0; i < params.size(); ++i) *params[i] = in[i + 1];
    return forward(in[0]);
  };
  ::testing::AssertionResult result = passes_gradcheck(fn, inputs, options);
  // Guard against a vacuous pass: every listed parameter must actually influence the output.
  if (result) {
    std::vector<Tensor> leaves{input};
    for (Tensor* p : params) leaves.push_back(p->detach().clone().requires_grad_());
    fn(leaves).square().sum().backward();
    for (size_t i = 0; i < params.size() && result; ++i) {
      Tensor g = leaves[i + 1].grad();
      if (!g.defined() || equal(g, zeros_like(g)))
        result = ::testing::AssertionFailure() << "parameter " << i << " gets no gradient from the output";
    }
  }
  for (size_t i = 0; i < params.size(); ++i) *params[i] = originals[i];
  return result;
}

// tests/fixtures, found next to this source file.
// EMBER_TEST_FIXTURES is an absolute path set by tests/CMakeLists.txt (__FILE__ can be relative
// under ccache's CCACHE_BASEDIR, which the build scripts set).
inline std::string fixture(const std::string& name) {
  return (std::filesystem::path(EMBER_TEST_FIXTURES) / name).string();
}

// A JSON fixture (reference values written by a PyTorch script in tests/fixtures), parsed; a
// missing file fails the calling test and parses as an error.
inline nlohmann::json read_json_fixture(const std::string& name) {
  std::ifstream in(fixture(name));
  EXPECT_TRUE(in.good()) << "missing " << fixture(name);
  return nlohmann::json::parse(in);
}

}  // namespace ember::testing
