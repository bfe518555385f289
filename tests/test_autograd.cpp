// The autograd engine: accumulation, graph lifetime, version counters, custom functions, errors.
#include "harness.h"

namespace ember::testing {
namespace {

TEST(Autograd, AccumulatesIntoLeaves) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor y = (x * x).sum();  // dy/dx = 2x
  y.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4, 6}));
  (x * 3.0).sum().backward();  // accumulates
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(y.is_leaf());
  EXPECT_EQ(y.grad_fn()->name(), "sum");
}

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = T({2}, {1});
  Tensor a = x * 3.0;
  Tensor b = exp(a) + a * a;  // a used twice
  b.backward(ones({1}, kFloat64));
  double expected = 3.0 * std::exp(6.0) + 2 * 6.0 * 3.0;
  EXPECT_NEAR(x.grad().item<double>(), expected, 1e-9);
}

TEST(Autograd, BroadcastGradientsAreSummedToInputShape) {
  Tensor a = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = T({1, 1, 1}, {3});
  Tensor c = T({2}, {});
  ((a + b) * c).sum().backward();
  EXPECT_EQ(b.grad().shape(), (Shape{3}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{4, 4, 4}));
  EXPECT_EQ(c.grad().shape(), Shape{});
  EXPECT_DOUBLE_EQ(c.grad().item<double>(), 21 + 6);
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 2.0;
  EMBER_EXPECT_THROW_MSG(y.backward(),
                         "grad can be implicitly created only for scalar outputs; got shape [2]");
  EMBER_EXPECT_THROW_MSG(y.backward(ones({3}, kFloat64)),
                         "gradient of shape [3] does not match output of shape [2]");
  y.backward(tensor<double>({1, 10}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 20}));
}

TEST(Autograd, BackwardOfTensorWithoutGradFails) {
  Tensor x = ones({2});
  EMBER_EXPECT_THROW_MSG(x.sum().backward(), "does not require grad and has no grad_fn");
}

TEST(Autograd, SecondBackwardThroughFreedGraphFails) {
  Tensor x = T({1, 2}, {2});
  Tensor y = (x * x).sum();
  y.backward();
  EMBER_EXPECT_THROW_MSG(y.backward(), "backward through the graph a second time");
  Tensor z = (x * x).sum();
  z.backward({}, /*retain_graph=*/true);
  z.backward();  // allowed once more
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2 + 4, 4 + 8}));
}

TEST(Autograd, InPlaceChangeOfSavedTensorIsDetected) {
  Tensor x = T({1, 2}, {2});
  Tensor a = x * 1.0;
  Tensor y = (a * a).sum();  // saves a
  {
    NoGradGuard g;
    a.add_(1.0);
  }
  EMBER_EXPECT_THROW_MSG(
      y.backward(), "mul: a tensor of shape [2] saved for backward was modified by an in-place operation");
}

TEST(Autograd, InPlaceOnLeafRequiringGradFails) {
  Tensor x = T({1, 2}, {2});
  EMBER_EXPECT_THROW_MSG(x.add_(1.0), "add_: a leaf tensor that requires grad cannot be modified in place");
  {
    NoGradGuard g;
    x.add_(1.0);  // fine without recording: the optimizer's path
  }
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{2, 3}));
}

TEST(Autograd, InPlaceOnNonLeafRebasesHistory) {
  Tensor x = T({1, 2}, {2});
  Tensor y = x * 2.0;
  y.add_(x);    // y = 3x
  y.mul_(2.0);  // y = 6x
  y.sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6, 6}));
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor t = in[0] * 1.0;
    t.mul_(in[1]);
    t.sub_(in[1], 0.5);
    return t;
  };
  EXPECT_TRUE(passes_gradcheck(fn, {R({3}), R({3}, -1, 1, 2)}));
}

TEST(Autograd, NoGradGuardAndDetach) {
  Tensor x = T({1}, {1});
  {
    NoGradGuard g;
    EXPECT_FALSE(GradMode::is_enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_TRUE(GradMode::is_enabled());
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.raw_data(), x.raw_data());
  Tensor z = (x * d).sum();
  z.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1}));
}

TEST(Autograd, LongChainDoesNotOverflowTheStack) {
  Tensor x = T({1.0}, {1});
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.0;
  y.sum().backward();
  EXPECT_EQ(x.grad().item<double>(), 1.0);
  // and destroying a 100k-long graph without running backward is fine too
  Tensor w = x;
  for (int i = 0; i < 100000; ++i) w = w + 0.0;
  w = Tensor();
}

struct ScaledSquare : autograd::Function<ScaledSquare> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x, double scale) {
    ctx->save_for_backward({x});
    ctx->saved_data["scale"] = scale;
    return x * x * scale;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {g[0] * x * (2.0 * ctx->saved_data["scale"]), Tensor()};
  }
};

struct WrongShape : autograd::Function<WrongShape> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) {
    return {g[0].sum()};
  }
};

TEST(Autograd, CustomFunction) {
  Tensor x = T({1, -2}, {2});
  Tensor y = ScaledSquare::apply(x, 3.0);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{3, 12}));
  EXPECT_FALSE(y.is_leaf());
  EXPECT_TRUE(passes_gradcheck([](const std::vector<Tensor>& in) { return ScaledSquare::apply(in[0], 0.5); },
                               {R({4})}));
  Tensor z = WrongShape::apply(x);
  EMBER_EXPECT_THROW_MSG(z.sum().backward(),
                         "backward returned a gradient of shape [] for argument 0 of shape [2]");
  // without inputs that require grad, nothing is recorded
  Tensor c = ScaledSquare::apply(ones({2}), 1.0);
  EXPECT_FALSE(c.requires_grad());
}

// Returns its gradient as a [2, 3] view of a fresh [6] buffer, which it also keeps when asked.
struct ReshapedGradient : autograd::Function<ReshapedGradient> {
  static inline Tensor kept;
  static inline const float* buffer = nullptr;
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x, bool keep) {
    ctx->saved_data["keep"] = keep ? 1.0 : 0.0;
    return x.reshape({6}) * 2.0;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor fresh = g[0] * 2.0;
    buffer = fresh.data_ptr<float>();
    if (ctx->saved_data["keep"] != 0.0) kept = fresh;
    return {fresh.view({2, 3}), Tensor()};
  }
};

// A leaf's first gradient is taken over without a copy when nothing else can see its memory, also
// when it arrives as a reshaped view of a node's fresh buffer (CCE's dE: a 36 MiB copy at the
// Gemma 2 size); a view of a buffer someone still holds is copied.
TEST(Autograd, LeafTakesOverAFreshGradientBufferEvenThroughAView) {
  Tensor x = zeros({2, 3}).requires_grad_();
  ReshapedGradient::apply(x, false).sum().backward();
  EXPECT_EQ(x.grad().data_ptr<float>(), ReshapedGradient::buffer);
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>(6, 2.0));
  EXPECT_TRUE(x.grad().is_contiguous());

  Tensor y = zeros({2, 3}).requires_grad_();
  ReshapedGradient::apply(y, true).sum().backward();
  EXPECT_NE(y.grad().data_ptr<float>(), ReshapedGradient::buffer);
  ReshapedGradient::kept.fill_(7.0);  // the holder's writes do not reach y.grad()
  EXPECT_EQ(y.grad().to_vector<double>(), std::vector<double>(6, 2.0));
  ReshapedGradient::kept = Tensor();
}

TEST(Harness, RowsWithNonLeafInputsAreRejected) {
  Tensor x = R({3});
  OpCase row{.name = "sliced",
             .fn = [](const std::vector<Tensor>& in) { return in[0] * 2.0; },
             .inputs = {x.narrow(0, 1, 2)}};
  EXPECT_FALSE(inputs_are_leaves(row));
  row.inputs = {x, I({1}, {1})};
  EXPECT_TRUE(inputs_are_leaves(row));
}

// d/dx claims 3x^2 but forward computes x^3 / 2: gradcheck must notice.
struct WrongScaleFn : autograd::Function<WrongScaleFn> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x * x * 0.5;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {g[0] * x * x * 3.0};
  }
};
Tensor WrongScale(const Tensor& x) { return WrongScaleFn::apply(x); }

TEST(Gradcheck, DetectsAWrongGradient) {
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return WrongScale(in[0]); }, {R({3})});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.worst.find("input 0 element"), std::string::npos) << r.worst;
  EMBER_EXPECT_THROW_MSG(
      gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {ones({2}).requires_grad_()}),
      "gradcheck: input 0 is float32");
}

}  // namespace
}  // namespace ember::testing

namespace ember::testing {
namespace {
TEST(Autograd, InPlaceKeepsOldValueForOtherInputsGradient) {
  Tensor t = ones({2}, kFloat64) * 3.0;  // does not require grad
  Tensor b = T({1, 2}, {2});
  t.mul_(b);  // grad of b needs the old t (3)
  t.sum().backward();
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{3, 3}));
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{3, 6}));
}
// An op that promotes float32 and float64 to a float64 result still sends each input a gradient of
// its own dtype (as PyTorch's engine does), so an optimizer can apply it.
TEST(Autograd, GradientsHaveTheirInputsDtype) {
  Tensor w = tensor<float>({1.0f, 2.0f, 3.0f}).requires_grad_();
  Tensor v = tensor<double>({0.5, 0.25, 2.0}).requires_grad_();
  Tensor y = (w * v).sum();
  EXPECT_EQ(y.dtype(), kFloat64);
  y.backward();
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  EXPECT_EQ(v.grad().dtype(), kFloat64);
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{0.5f, 0.25f, 2.0f}));
  EXPECT_EQ(v.grad().to_vector<double>(), (std::vector<double>{1, 2, 3}));
  optim::SGD sgd({w}, {0.1});
  sgd.step();  // used to throw: gradient float64 for a float32 parameter
  EXPECT_FLOAT_EQ(w.to_vector<float>()[0], 0.95f);
  // through a broadcast scalar, and a second accumulation
  (w + scalar_tensor(1.0, kFloat64)).sum().backward();
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{1.5f, 1.25f, 3.0f}));
}

}  // namespace
}  // namespace ember::testing

// ---- PyTorch parity of graph edge cases (values from PyTorch 1.13) ----
namespace ember::testing {
namespace {

struct DropsGradient : autograd::Function<DropsGradient> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x * 2.0; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor>) { return {Tensor()}; }
};

// A node that receives no gradient at all passes none on (PyTorch: x.grad is None); it used to
// run mul's formula on an undefined tensor and throw.
TEST(Autograd, NodeReachedByNoGradientPassesNoneOn) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor a = x * 1.5;
  DropsGradient::apply(a).sum().backward();
  EXPECT_FALSE(x.grad().defined());
}

struct Identity : autograd::Function<Identity> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) { return {g[0]}; }
};
struct SecondArg : autograd::Function<SecondArg> {
  static Tensor forward(autograd::AutogradContext*, const Tensor&, const Tensor& b) { return b; }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) {
    return {g[0], Tensor()};
  }
};

// forward returning an input as it is must not turn that input into the node's output: x stays a
// leaf and can be used again (it used to get the node as grad_fn, so the next backward went
// through the freed node and threw), and a constant input does not start requiring grad.
TEST(Autograd, CustomFunctionReturningItsInputLeavesTheInputAlone) {
  Tensor x = T({1, 2}, {2});
  Tensor y = Identity::apply(x);
  EXPECT_FALSE(y.is_same(x));
  EXPECT_TRUE(x.is_leaf());
  (y * y).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4}));
  (x * x).sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 8}));
  Tensor c = tensor<double>({5, 6});
  Tensor z = SecondArg::apply(x, c);
  EXPECT_FALSE(c.requires_grad());
  EXPECT_TRUE(c.is_leaf());
  EXPECT_TRUE(z.requires_grad());
  EXPECT_EQ(z.to_vector<double>(), (std::vector<double>{5, 6}));
}

struct Argsort : autograd::Function<Argsort> {
  static Tensor forward(autograd::AutogradContext*, const Tensor& x) { return x.argsort(); }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor>) { return {Tensor()}; }
};

TEST(Autograd, CustomFunctionIntegerOutputDoesNotRequireGrad) {
  Tensor i = Argsort::apply(T({3, 1, 2}, {3}));
  EXPECT_FALSE(i.requires_grad());
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 0}));
}

struct TwoOutputs : autograd::Function<TwoOutputs> {
  static std::vector<Tensor> forward(autograd::AutogradContext* ctx, const Tensor& x, double materialize) {
    ctx->set_materialize_grads(materialize != 0);
    return {x * 2.0, x * 3.0};
  }
  static std::vector<Tensor> backward(autograd::AutogradContext*, std::vector<Tensor> g) {
    if (!g[0].defined()) return {g[1] * 3.0 + 100.0, Tensor()};  // marks "saw undefined"
    return {g[0] * 2.0 + g[1] * 3.0, Tensor()};
  }
};

// As in LibTorch, an output that got no gradient reaches backward as zeros (PyTorch: g0 = [0, 0],
// x.grad = [3, 3]); set_materialize_grads(false) hands it over undefined.
TEST(Autograd, CustomFunctionUnusedOutputGetsZeros) {
  Tensor x = T({1, 2}, {2});
  TwoOutputs::apply(x, 1.0)[1].sum().backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 3}));
  Tensor w = T({1, 2}, {2});
  TwoOutputs::apply(w, 0.0)[1].sum().backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{103, 103}));
}

}  // namespace
}  // namespace ember::testing
