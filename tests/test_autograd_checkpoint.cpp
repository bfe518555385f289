// autograd::checkpoint: the same loss and gradients as the plain graph (with dropout too, its masks
// drawn again from the first run's random state), less memory kept between forward and backward,
// a float64 gradcheck through it, and the limits it shares with PyTorch's reentrant checkpoint.
#include <ember/memory.h>
#include <ember/nn.h>

#include <cstdio>

#include "harness.h"

namespace ember::testing {
namespace {

using Inputs = std::vector<Tensor>;

// A block of the kind one checkpoints: two linear layers with a GELU and dropout between them.
struct Block {
  std::shared_ptr<nn::Linear> fc1 = std::make_shared<nn::Linear>(6, 16),
                              fc2 = std::make_shared<nn::Linear>(16, 6);
  Tensor operator()(const Tensor& x) const {
    return fc2->forward(dropout(gelu(fc1->forward(x)), 0.3, true)) + x;
  }
  std::vector<Tensor> parameters() const { return {fc1->weight, fc1->bias, fc2->weight, fc2->bias}; }
  void zero_grad() const {
    fc1->zero_grad();
    fc2->zero_grad();
  }
};

TEST(Checkpoint, SameLossAndGradientsAsThePlainGraphWithDropout) {
  manual_seed(7);
  Block a, b;
  const Tensor x0 = randn({5, 6});
  auto run = [&](bool checkpointed) {
    a.zero_grad();
    b.zero_grad();
    Tensor x = x0.clone().requires_grad_();
    manual_seed(11);
    Tensor h = checkpointed ? autograd::checkpoint([&](const Inputs& in) { return a(in[0]); }, {x}) : a(x);
    Tensor loss = square(b(h)).sum();  // the block after it draws from the generator too
    loss.backward();
    std::vector<Tensor> results{loss.detach(), x.grad()};
    for (const Tensor& p : a.parameters()) results.push_back(p.grad());
    for (const Tensor& p : b.parameters()) results.push_back(p.grad());
    results.push_back(rand({4}));  // the generator continues where the plain run's does
    return results;
  };
  const std::vector<Tensor> plain = run(false), checkpointed = run(true);
  ASSERT_EQ(plain.size(), checkpointed.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_TRUE(checkpointed[i].defined()) << i;
    EXPECT_TRUE(equal(checkpointed[i], plain[i])) << "result " << i;
  }
}

// Without the saved random state the recomputed dropout masks differ, and so do the gradients:
// preserve_rng_state is what makes the two agree above.
TEST(Checkpoint, WithoutTheRandomStateTheMasksDiffer) {
  manual_seed(3);
  Block a;
  const Tensor x0 = randn({64, 6});
  auto input_grad = [&](bool preserve) {
    Tensor x = x0.clone().requires_grad_();
    manual_seed(5);
    autograd::checkpoint([&](const Inputs& in) { return a(in[0]); }, {x}, preserve).sum().backward();
    return x.grad();
  };
  manual_seed(5);
  Tensor x = x0.clone().requires_grad_();
  a(x).sum().backward();
  EXPECT_TRUE(equal(input_grad(true), x.grad()));
  EXPECT_FALSE(equal(input_grad(false), x.grad()));
}

TEST(Checkpoint, KeepsOnlyTheInputsBetweenForwardAndBackward) {
  Tensor w = (randn({256, 256}) * 0.05).requires_grad_();
  Tensor x = randn({512, 256}).requires_grad_();
  auto chain = [&](const Inputs& in) {  // ten 512 KiB intermediates, each kept by tanh's backward
    Tensor h = in[0];
    for (int i = 0; i < 10; ++i) h = tanh(matmul(h, w));
    return h;
  };
  auto kept_bytes = [&](bool checkpointed) {
    const int64_t before = cpu::memory_stats().current_bytes;
    Tensor y = checkpointed ? autograd::checkpoint(chain, {x}) : chain({x});
    const int64_t kept = cpu::memory_stats().current_bytes - before;
    y.sum().backward();
    return kept;
  };
  const int64_t plain = kept_bytes(false), checkpointed = kept_bytes(true);
  std::printf("kept between forward and backward: %lld bytes plain, %lld checkpointed\n",
              static_cast<long long>(plain), static_cast<long long>(checkpointed));
  const int64_t activation = 512 * 256 * 4;
  EXPECT_GE(plain, 10 * activation);
  EXPECT_LE(checkpointed, 2 * activation);  // the output (and nothing of the chain)
  // and the gradients are the same
  Tensor gx = x.grad().clone(), gw = w.grad().clone();
  x.set_grad(Tensor());
  w.set_grad(Tensor());
  chain({x}).sum().backward();
  EXPECT_TRUE(tensors_close(gx, x.grad() * 2.0, 1e-6));  // kept_bytes ran backward twice
  EXPECT_TRUE(tensors_close(gw, w.grad() * 2.0, 1e-6));
}

TEST(Checkpoint, GradcheckThroughTheRecomputation) {
  const Tensor w = R({3, 3}, -1, 1, 4);
  auto fn = [&](const Inputs& in) {
    return autograd::checkpoint([&](const Inputs& v) { return sin(matmul(v[0], w)) * v[1]; }, {in[0], in[1]});
  };
  EXPECT_TRUE(passes_gradcheck(fn, {R({2, 3}, -1, 1, 1), R({2, 3}, -1, 1, 2)}));
  // the captured parameter w accumulates its gradient when backward runs
  Tensor w2 = w.detach().clone().requires_grad_();
  Tensor a = R({2, 3}, -1, 1, 5), b = R({2, 3}, -1, 1, 6, false);
  autograd::checkpoint([&](const Inputs& v) { return sin(matmul(v[0], w2)) * v[1]; }, {a, b})
      .sum()
      .backward();
  Tensor w3 = w.detach().clone().requires_grad_();
  (sin(matmul(a.detach(), w3)) * b).sum().backward();
  EXPECT_TRUE(tensors_close(w2.grad(), w3.grad(), 1e-12));
  EXPECT_FALSE(b.grad().defined());  // an input that needs no gradient gets none
}

TEST(Checkpoint, LimitsAndErrors) {
  const Tensor x = R({2, 3}, -1, 1, 1);
  auto square_it = [](const Inputs& in) { return in[0] * in[0]; };
  EMBER_EXPECT_THROW_MSG(autograd::grad({autograd::checkpoint(square_it, {x}).sum()}, {x}),
                         "checkpoint: a checkpointed graph supports backward() only");
  EMBER_EXPECT_THROW_MSG(autograd::checkpoint(square_it, {x}).sum().backward({}, std::nullopt, true),
                         "checkpoint: a checkpointed graph supports backward() only");
  // retain_graph: backward twice recomputes twice and accumulates twice
  Tensor x1 = R({2, 3}, -1, 1, 1);
  Tensor y = autograd::checkpoint(square_it, {x1}).sum();
  y.backward({}, true);
  y.backward();
  EXPECT_TRUE(tensors_close(x1.grad(), x1.detach() * 4.0, 1e-12));
  EMBER_EXPECT_THROW_MSG(y.backward(), "trying to backward through the graph a second time");
  Tensor direct = autograd::checkpoint(square_it, {x1});
  direct.backward(ones_like(direct));
  EMBER_EXPECT_THROW_MSG(direct.backward(ones_like(direct)),
                         "checkpoint: trying to backward through the graph a second time");
  // an in-place change of an input between forward and backward is caught
  Tensor x2 = R({2, 3}, -1, 1, 1);
  Tensor leaf = x2 * 1.0;
  Tensor z = autograd::checkpoint(square_it, {leaf}).sum();
  {
    NoGradGuard no_grad;
    leaf.add_(1.0);
  }
  EMBER_EXPECT_THROW_MSG(z.backward(), "checkpoint");
  // no input that requires grad: the output requires none (PyTorch warns the same)
  EXPECT_FALSE(autograd::checkpoint(square_it, {x.detach()}).requires_grad());
  // an input returned as it is stays the caller's leaf
  Tensor x3 = R({2, 3}, -1, 1, 1);
  Tensor same = autograd::checkpoint([](const Inputs& in) { return in[0]; }, {x3});
  EXPECT_TRUE(x3.is_leaf());
  same.sum().backward();
  EXPECT_TRUE(tensors_close(x3.grad(), ones({2, 3}, kFloat64), 0));
  EMBER_EXPECT_THROW_MSG(autograd::checkpoint(nullptr, {x}), "checkpoint: the function is empty");
}

}  // namespace
}  // namespace ember::testing
