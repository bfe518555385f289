// Tensor gradient hooks and retain_grad. Every expected value is what LibTorch 1.13 gives for
// the same graph (a C++ program built against Debian's libtorch-dev 1.13, float64; its output is
// quoted in the comments as "libtorch:"). Where ember differs on purpose, the test says so.
#include <vector>

#include "harness.h"

namespace ember::testing {
namespace {

using V = std::vector<double>;
V values(const Tensor& t) { return t.to_vector<double>(); }

TEST(AutogradHooks, LeafHookRunsBeforeAccumulation) {
  Tensor x = T({1, 2, 3}, {3});
  std::vector<Tensor> seen;
  x.register_hook([&](const Tensor& g) {
    seen.push_back(g.clone());
    return g * 2.0;
  });
  (x * x).sum().backward();
  // libtorch: leaf seen0: [2, 4, 6]; leaf x.grad: [4, 8, 12]
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(values(seen[0]), (V{2, 4, 6}));
  EXPECT_EQ(values(x.grad()), (V{4, 8, 12}));
  (x * 3.0).sum().backward();  // the hook runs again, before accumulating
  // libtorch: leaf seen1: [3, 3, 3]; leaf x.grad 2nd: [10, 14, 18]
  EXPECT_EQ(values(seen[1]), (V{3, 3, 3}));
  EXPECT_EQ(values(x.grad()), (V{10, 14, 18}));
}

TEST(AutogradHooks, NonLeafHookReplacesGradientDownstream) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor y = x * x;
  y.register_hook([](const Tensor& g) { return g * T({1, 10, 100}, {3}, false); });
  (y * 3.0).sum().backward();
  // libtorch: nonleaf x.grad: [6, 120, 1800]; nonleaf y.grad defined 0
  EXPECT_EQ(values(x.grad()), (V{6, 120, 1800}));
  EXPECT_FALSE(y.grad().defined());
}

TEST(AutogradHooks, VoidHookObservesTheSummedGradient) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 3.0;  // used twice below: the hook sees the sum of both contributions, once
  std::vector<Tensor> seen;
  y.register_hook([&](const Tensor& g) { seen.push_back(g.clone()); });
  ((y * y).sum() + (y * 2.0).sum()).backward();
  // libtorch: void seen: [8, 14]; void x.grad: [24, 42]
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(values(seen[0]), (V{8, 14}));
  EXPECT_EQ(values(x.grad()), (V{24, 42}));
}

TEST(AutogradHooks, SeveralHooksRunInRegistrationOrder) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 1.0;
  std::vector<Tensor> seen;
  y.register_hook([](const Tensor& g) { return g + 1.0; });
  y.register_hook([&](const Tensor& g) {
    seen.push_back(g.clone());
    return g * 2.0;
  });
  y.register_hook([&](const Tensor& g) { seen.push_back(g.clone()); });
  (y * T({3, 4}, {2}, false)).sum().backward();
  // libtorch: order seen0: [4, 5]; order seen1: [8, 10]; order x.grad: [8, 10]
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(values(seen[0]), (V{4, 5}));
  EXPECT_EQ(values(seen[1]), (V{8, 10}));
  EXPECT_EQ(values(x.grad()), (V{8, 10}));
}

TEST(AutogradHooks, RemoveHook) {
  Tensor x = T({1, 2}, {2});
  unsigned h0 = x.register_hook([](const Tensor& g) { return g * 2.0; });
  unsigned h1 = x.register_hook([](const Tensor& g) { return g * 3.0; });
  // libtorch: handles 0 1
  EXPECT_EQ(h0, 0u);
  EXPECT_EQ(h1, 1u);
  x.remove_hook(h0);
  x.sum().backward();
  // libtorch: remove x.grad: [3, 3]
  EXPECT_EQ(values(x.grad()), (V{3, 3}));
  x.remove_hook(h0);  // libtorch: remove twice: no throw
  // libtorch: remove unknown threw: Invalid index, no hook at position 7
  EMBER_EXPECT_THROW_MSG(x.remove_hook(7), "remove_hook: invalid handle, no hook at position 7");
  // libtorch: remove on hookless threw: Invalid index, no hook at position 0
  EMBER_EXPECT_THROW_MSG(T({1}, {1}).remove_hook(0), "no hook at position 0");
  EMBER_EXPECT_THROW_MSG(T({1}, {1}, false).remove_hook(0), "no hook at position 0");
}

TEST(AutogradHooks, RetainGradOnANonLeafUsedTwice) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 3.0;
  EXPECT_FALSE(y.retains_grad());
  y.retain_grad();
  y.retain_grad();  // a second call changes nothing
  EXPECT_TRUE(y.retains_grad());
  ((y * y).sum() + (y * 2.0).sum()).backward();
  // libtorch: retain y.grad: [8, 14]; retain x.grad: [24, 42]; retains 1
  EXPECT_EQ(values(y.grad()), (V{8, 14}));
  EXPECT_EQ(values(x.grad()), (V{24, 42}));
}

// retain_grad() is a hook at its place in the order: it keeps the gradient as the hooks
// registered before it left it (LibTorch 1.13's C++ API; Python 1.13 keeps Python hooks in a
// separate list, so there the order differs).
TEST(AutogradHooks, RetainGradKeepsTheGradientOfTheHooksBeforeIt) {
  struct Case {
    const char* order;  // R: retain_grad(), A: g * 10, B: g + 1
    V y_grad, x_grad;
  };
  // libtorch: retain order RA y.grad: [2, 4, 6, 8], x.grad: [20, 40, 60, 80];
  //           AR: [20, 40, 60, 80], [20, 40, 60, 80]; ARB: [20, 40, 60, 80], [21, 41, 61, 81];
  //           RAB: [2, 4, 6, 8], [21, 41, 61, 81]; ABR: [21, 41, 61, 81], [21, 41, 61, 81]
  const std::vector<Case> cases = {{"RA", {2, 4, 6, 8}, {20, 40, 60, 80}},
                                   {"AR", {20, 40, 60, 80}, {20, 40, 60, 80}},
                                   {"ARB", {20, 40, 60, 80}, {21, 41, 61, 81}},
                                   {"RAB", {2, 4, 6, 8}, {21, 41, 61, 81}},
                                   {"ABR", {21, 41, 61, 81}, {21, 41, 61, 81}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.order);
    Tensor x = T({1, 2, 3, 4}, {4});
    Tensor y = x * 1.0;
    for (const char* o = c.order; *o; ++o) {
      if (*o == 'R') y.retain_grad();
      if (*o == 'A') y.register_hook([](const Tensor& g) { return g * 10.0; });
      if (*o == 'B') y.register_hook([](const Tensor& g) { return g + 1.0; });
    }
    (y * y).sum().backward();
    EXPECT_EQ(values(y.grad()), c.y_grad);
    EXPECT_EQ(values(x.grad()), c.x_grad);
  }
  // retain_grad takes a position, as in LibTorch (libtorch: handles around retain_grad 0 2)
  Tensor y = T({1, 2, 3}, {3}) * 2.0;
  EXPECT_EQ(y.register_hook([](const Tensor& g) { return g; }), 0u);
  y.retain_grad();
  EXPECT_EQ(y.register_hook([](const Tensor& g) { return g; }), 2u);
}

TEST(AutogradHooks, MultiOutputNodeHookAffectsOnlyItsSlot) {
  {
    Tensor x = T({1, 2, 3, 4}, {4});
    std::vector<Tensor> parts = split(x, 2);
    ASSERT_EQ(parts[0].grad_fn(), parts[1].grad_fn());  // one node, two outputs
    parts[0].register_hook([](const Tensor& g) { return g * 3.0; });
    parts[1].register_hook([](const Tensor& g) { return g + 1.0; });
    ((parts[0] * parts[0]).sum() + (parts[1] * 5.0).sum()).backward();
    // libtorch: split x.grad: [6, 12, 6, 6]
    EXPECT_EQ(values(x.grad()), (V{6, 12, 6, 6}));
  }
  {
    Tensor x = T({1, 2, 3, 4, 5, 6}, {6});
    std::vector<Tensor> c = chunk(x, 3);
    c[1].retain_grad();
    c[1].register_hook([](const Tensor& g) { return g * -1.0; });
    (c[0].sum() + (c[1] * c[1]).sum() + (c[2] * 10.0).sum()).backward();
    // libtorch: chunk x.grad: [1, 1, -6, -8, 10, 10]; chunk q.grad: [6, 8]; chunk p.grad defined 0
    EXPECT_EQ(values(x.grad()), (V{1, 1, -6, -8, 10, 10}));
    EXPECT_EQ(values(c[1].grad()), (V{6, 8}));
    EXPECT_FALSE(c[0].grad().defined());
    EXPECT_FALSE(c[2].grad().defined());
  }
  {
    Tensor x = T({1, 5, 7, 2}, {2, 2});
    auto [v, i] = x.max(1);
    v.register_hook([](const Tensor& g) { return g * T({2, 3}, {2}, false); });
    v.sum().backward();
    // libtorch: max x.grad: [0, 2, 3, 0]
    EXPECT_EQ(values(x.grad()), (V{0, 2, 3, 0}));
    // libtorch: max indices hook threw: cannot register a hook on a variable that doesn't require gradient
    EMBER_EXPECT_THROW_MSG(i.register_hook([](const Tensor& g) { return g; }),
                           "cannot register a hook on a tensor that doesn't require gradient");
  }
}

// A deliberate difference: LibTorch 1.13 calls a C++ hook on an output that received no
// gradient with an undefined tensor, which its register_hook wrapper then rejects with an
// internal assert (and Python hooks get None); ember calls hooks on defined gradients only.
TEST(AutogradHooks, HookOnAnOutputWithoutGradientIsNotCalled) {
  Tensor x = T({1, 2, 3, 4}, {4});
  std::vector<Tensor> parts = split(x, 2);
  int calls = 0;
  parts[1].register_hook([&](const Tensor&) { ++calls; });
  parts[1].retain_grad();
  parts[0].register_hook([](const Tensor& g) { return g * 3.0; });
  (parts[0] * parts[0]).sum().backward();
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(parts[1].grad().defined());
  // libtorch: split unused x.grad: [6, 12, 0, 0]
  EXPECT_EQ(values(x.grad()), (V{6, 12, 0, 0}));
}

TEST(AutogradHooks, HooksAndRetainGradAcrossTwoBackwards) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * x;
  y.retain_grad();
  int calls = 0;
  y.register_hook([&](const Tensor& g) {
    ++calls;
    return g * 2.0;
  });
  Tensor z = (y * y).sum() + y.sum();
  z.backward({}, /*retain_graph=*/true);
  // libtorch: twice1 y.grad: [3, 9]; twice1 x.grad: [12, 72]; n 1
  EXPECT_EQ(values(y.grad()), (V{3, 9}));
  EXPECT_EQ(values(x.grad()), (V{12, 72}));
  EXPECT_EQ(calls, 1);
  Tensor first = y.grad();
  z.backward();
  // libtorch: twice2 y.grad: [6, 18]; twice2 x.grad: [24, 144]; n 2
  EXPECT_EQ(values(y.grad()), (V{6, 18}));
  EXPECT_EQ(values(x.grad()), (V{24, 144}));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(values(first), (V{3, 9}));  // accumulated out of place, as in LibTorch
}

TEST(AutogradHooks, HooksOnTheRoot) {
  Tensor x = T({1, 2}, {2});
  Tensor y = (x * x).sum();
  y.register_hook([](const Tensor& g) { return g * 5.0; });
  y.retain_grad();
  y.backward();
  // libtorch: root y.grad: [5]; root x.grad: [10, 20]
  EXPECT_EQ(y.grad().item<double>(), 5);
  EXPECT_EQ(values(x.grad()), (V{10, 20}));
  Tensor w = T({1, 2}, {2});
  w.register_hook([](const Tensor& g) { return g * 5.0; });
  w.backward(T({1, 1}, {2}, false));
  // libtorch: leaf root w.grad: [5, 5]
  EXPECT_EQ(values(w.grad()), (V{5, 5}));
}

// An in-place op gives the tensor a new grad_fn: hooks registered before stay with the old one
// (they see the gradient of the value before the op); hooks registered after go to the new one.
TEST(AutogradHooks, HooksAroundAnInPlaceOp) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 2.0;
  std::vector<Tensor> seen;
  y.register_hook([&](const Tensor& g) {
    seen.push_back(g.clone());
    return g * 10.0;
  });
  y.mul_(3.0);
  y.register_hook([&](const Tensor& g) {
    seen.push_back(g.clone());
    return g + 100.0;
  });
  y.sum().backward();
  // libtorch: inplace seen: [1, 1]; inplace seen: [303, 303]; inplace x.grad: [6060, 6060]
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(values(seen[0]), (V{1, 1}));
  EXPECT_EQ(values(seen[1]), (V{303, 303}));
  EXPECT_EQ(values(x.grad()), (V{6060, 6060}));
}

// retain_grad follows the tensor onto the new grad_fn of an in-place op, as in LibTorch; the
// retained gradient is that of the value after the op, never of the old one.
TEST(AutogradHooks, RetainGradAroundAnInPlaceOp) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 2.0;
  y.retain_grad();
  y.mul_(3.0);
  EXPECT_TRUE(y.retains_grad());
  y.sum().backward();
  // libtorch: retain inplace y.grad: [1, 1]; retain inplace x.grad: [6, 6]
  EXPECT_EQ(values(y.grad()), (V{1, 1}));
  EXPECT_EQ(values(x.grad()), (V{6, 6}));

  // A hook registered before retain_grad and the op stays with the old value; the retained gradient
  // does not pass through it.
  Tensor a = T({1, 2}, {2});
  Tensor b = a * 2.0;
  b.register_hook([](const Tensor& g) { return g * 10.0; });
  b.retain_grad();
  b.mul_(3.0);
  b.retain_grad();  // a second call changes nothing
  b.sum().backward();
  EXPECT_EQ(values(b.grad()), (V{1, 1}));
  EXPECT_EQ(values(a.grad()), (V{60, 60}));
}

TEST(AutogradHooks, HookOutlivesTheTensorHandle) {
  Tensor x = T({1, 2}, {2});
  Tensor z;
  {
    Tensor y = x * 2.0;
    y.register_hook([](const Tensor& g) { return g * 7.0; });
    z = y.sum();
  }
  z.backward();
  // libtorch: survives x.grad: [14, 14]
  EXPECT_EQ(values(x.grad()), (V{14, 14}));
}

TEST(AutogradHooks, HooksRunWithGradModeOff) {
  Tensor x = T({1}, {1});
  Tensor y = x * 2.0;
  std::vector<bool> modes;
  x.register_hook([&](const Tensor& g) { modes.push_back(GradMode::is_enabled()); });
  y.register_hook([&](const Tensor& g) {
    modes.push_back(GradMode::is_enabled());
    return g * x;  // x requires grad, but nothing is recorded
  });
  y.sum().backward();
  // libtorch: grad mode in hook 0
  EXPECT_EQ(modes, (std::vector<bool>{false, false}));
  EXPECT_EQ(values(x.grad()), (V{2}));
  EXPECT_TRUE(GradMode::is_enabled());
}

TEST(AutogradHooks, NoReferenceCycles) {
  std::weak_ptr<TensorImpl> y_impl, x_impl;
  std::weak_ptr<autograd::Node> node;
  {
    Tensor x = T({1, 2}, {2});
    Tensor y = x * 2.0;
    y.register_hook([](const Tensor& g) { return g * 2.0; });
    y.retain_grad();
    x.register_hook([](const Tensor& g) { return g; });
    y.sum().backward();
    EXPECT_EQ(values(y.grad()), (V{2, 2}));
    y_impl = y.impl_ptr();
    x_impl = x.impl_ptr();
    node = y.grad_fn();
  }
  EXPECT_TRUE(y_impl.expired());
  EXPECT_TRUE(x_impl.expired());
  EXPECT_TRUE(node.expired());
}

TEST(AutogradHooks, HookShapeAndDtypeErrors) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 2.0;
  y.register_hook([](const Tensor& g) { return g; });
  y.register_hook([](const Tensor& g) { return g.sum(); });
  // libtorch: shape threw: hook '0' has changed the size of value
  EMBER_EXPECT_THROW_MSG(y.sum().backward(),
                         "hook 1 returned a gradient of shape [] for a gradient of shape [2]");
  Tensor w = T({1, 2}, {2});
  w.register_hook([](const Tensor& g) { return g.to(DType::float32); });
  // libtorch: dtype threw: hook '0' has changed the type of value (was CPUDoubleType got CPUFloatType)
  EMBER_EXPECT_THROW_MSG((w * 2.0).sum().backward(), "hook 0 changed the gradient's dtype or device");
}

TEST(AutogradHooks, ErrorPathsAndLeaves) {
  // libtorch: hook on constant threw: cannot register a hook on a variable that doesn't require gradient
  EMBER_EXPECT_THROW_MSG(T({1}, {1}, false).register_hook([](const Tensor& g) { return g; }),
                         "register_hook: cannot register a hook on a tensor that doesn't require gradient");
  // libtorch: retain on constant threw: can't retain_grad on Tensor that has requires_grad=False
  EMBER_EXPECT_THROW_MSG(T({1}, {1}, false).retain_grad(),
                         "can't retain_grad on a tensor that doesn't require gradient");
  // libtorch: leaf retains 0
  Tensor l = T({1}, {1});
  l.retain_grad();
  EXPECT_FALSE(l.retains_grad());
  EXPECT_TRUE(l.is_leaf());
  EXPECT_FALSE(Tensor().retains_grad());
}

// A leaf that receives no gradient (a custom function returned none for it) does not run its hooks.
struct OnlySecondGets : autograd::Function<OnlySecondGets> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& a, const Tensor& b) { return a * b; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) {
    return {Tensor(), g[0]};
  }
};

TEST(AutogradHooks, LeafWithoutGradientRunsNoHook) {
  Tensor a = T({1, 2}, {2}), b = T({3, 4}, {2});
  int calls = 0;
  a.register_hook([&](const Tensor&) { ++calls; });
  OnlySecondGets::apply(a, b).sum().backward();
  // libtorch: leaf undefined calls 0 a.grad defined 0; leaf undefined b.grad: [1, 1]
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(a.grad().defined());
  EXPECT_EQ(values(b.grad()), (V{1, 1}));
}

}  // namespace
}  // namespace ember::testing
