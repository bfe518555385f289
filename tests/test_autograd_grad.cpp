// autograd::grad (torch::autograd::grad). Expected values are PyTorch 1.13's for the same programs.
#include <cmath>

#include "harness.h"

namespace ember::testing {
namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

void expect_near(const Tensor& t, const std::vector<double>& expected) {
  std::vector<double> got = values(t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-12) << "element " << i;
}

TEST(AutogradGrad, LeafAndNonLeafInputsWithoutTouchingGrad) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor w = T({0.5, -1, 2}, {3});
  Tensor h = (x * w).tanh();
  Tensor y = (h * h).sum() * 3.0;
  std::vector<Tensor> g = autograd::grad({y}, {x, h}, {}, /*retain_graph=*/true);
  expect_near(g[0], {1.090292972075381, 0.40865606228133894, 0.0002949149448012746});
  expect_near(g[1], {2.7727029435600583, -5.784165480454901, 5.9999262699047735});
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
  y.backward();  // the graph was retained; backward still accumulates as usual
  expect_near(x.grad(), values(g[0]));
}

TEST(AutogradGrad, SeedsAndSeveralOutputs) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor w = T({0.5, -1, 2}, {3});
  Tensor z = x.exp() * w;
  expect_near(autograd::grad({z}, {w}, {tensor<double>({1, 2, 3})})[0],
              {2.718281828459045, 14.7781121978613, 60.256610769563004});
  expect_near(autograd::grad({(x * 2.0).sum(), (x * x).sum()}, {x})[0], {4, 6, 8});
  Tensor y = x * 3.0;
  expect_near(autograd::grad({y}, {y}, {tensor<double>({1, 2, 3})})[0], {1, 2, 3});  // an output itself
}

// As in LibTorch 1.13: an input's own hooks do not change the gradient returned for it, but they
// do change what flows on to the inputs upstream of it.
TEST(AutogradGrad, HooksOnInputs) {
  Tensor x = T({1, 2}, {2});
  x.register_hook([](const Tensor& g) { return g * 10.0; });
  expect_near(autograd::grad({(x * x).sum()}, {x})[0], {2, 4});
  Tensor leaf = T({1, 2}, {2});
  Tensor h = leaf * 1.0;
  h.register_hook([](const Tensor& g) { return g * 10.0; });
  std::vector<Tensor> g = autograd::grad({(h * h).sum()}, {h, leaf});
  expect_near(g[0], {2, 4});
  expect_near(g[1], {20, 40});
}

// Only the part of the graph between the outputs and the inputs runs: a node upstream of the
// inputs is never called (its backward would throw here).
TEST(AutogradGrad, RunsOnlyWhatTheInputsNeed) {
  struct Poisoned : autograd::Function<Poisoned> {
    static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x * 1.0; }
    static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor>) {
      throw std::runtime_error("upstream node ran");
    }
  };
  Tensor x = T({1, 2}, {2});
  Tensor h = Poisoned::apply(x) * 2.0;
  Tensor unused_branch = Poisoned::apply(x).sum();
  expect_near(autograd::grad({(h * h).sum() + unused_branch}, {h})[0], {4, 8});
}

TEST(AutogradGrad, Errors) {
  Tensor x = T({1, 2}, {2});
  Tensor other = T({3}, {1});
  Tensor y = (x * x).sum();
  EMBER_EXPECT_THROW_MSG(autograd::grad({y}, {other}, {}, true),
                         "grad: input 0 of shape [1] was not used to compute the outputs (pass allow_unused");
  std::vector<Tensor> g = autograd::grad({y}, {other, x}, {}, true, false, /*allow_unused=*/true);
  EXPECT_FALSE(g[0].defined());
  expect_near(g[1], {2, 4});
  EMBER_EXPECT_THROW_MSG(autograd::grad({y}, {x.detach()}),
                         "grad: input 0 of shape [2] does not require grad");
  EMBER_EXPECT_THROW_MSG(autograd::grad({x * 2.0}, {x}),
                         "grad: grad can be implicitly created only for scalar");
  autograd::grad({y}, {x});  // retain_graph defaults to false: the graph is freed
  EMBER_EXPECT_THROW_MSG(autograd::grad({y}, {x}), "trying to backward through the graph a second time");
}

}  // namespace
}  // namespace ember::testing
