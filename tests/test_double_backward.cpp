// Double backward: create_graph records the backward pass, so gradients can be differentiated
// again. Expected values are PyTorch 1.13's for the same programs (float64).
#include <cmath>

#include "core/grad_node.h"
#include "harness.h"

namespace ember::testing {
namespace {

void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  ASSERT_TRUE(t.defined());
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << "element " << i;
}

TEST(DoubleBackward, HessianVectorProduct) {
  Tensor x = T({0.5, -1.0, 2.0}, {3});
  Tensor W = T({0.3, -0.2, 0.1, 0.4, 0.5, -0.6}, {2, 3});
  Tensor f = square(tanh(matmul(W, x))).sum();
  Tensor g = autograd::grad({f}, {x}, {}, {}, /*create_graph=*/true)[0];
  EXPECT_TRUE(g.requires_grad());
  expect_values(g, {0.09422474912133424, -0.3136181573346763, 0.2713054877179799});
  Tensor v = T({1.0, -2.0, 0.5}, {3}, false);
  std::vector<Tensor> h = autograd::grad({(g * v).sum()}, {x, W});
  expect_values(h[0], {0.27347282273233414, 0.18124386636090156, -0.2565945573507032});
  expect_values(h[1], {0.8899089995888733, -1.7798179991777465, 0.9337284712647029, -0.09002884847290166,
                       0.1800576969458033, 0.7848486966148112});
}

// WGAN-GP's gradient penalty: the norm of d critic / d input, pushed towards 1, trains the weights.
TEST(DoubleBackward, GradientPenaltyThroughAnMLP) {
  Tensor W1 = T({0.2, -0.4, 0.1, 0.3, 0.3, -0.5, -0.6, 0.1, 0.2, 0.05, -0.2, 0.4}, {4, 3});
  Tensor b1 = T({0.1, -0.1, 0.0, 0.2}, {4});
  Tensor W2 = T({0.7, -0.3, 0.5, 0.2}, {1, 4});
  Tensor b2 = T({0.05}, {1});
  Tensor X = T({1.0, 0.5, -0.5, 0.2, -1.0, 0.3}, {2, 3});
  Tensor out = linear(silu(linear(X, W1, b1)), W2, b2);
  Tensor gx = autograd::grad({out.sum()}, {X}, {}, {}, /*create_graph=*/true)[0];
  Tensor penalty = square(sqrt(square(gx).sum({1})) - 1.0).mean();
  penalty.backward();
  EXPECT_NEAR(penalty.item<double>(), 0.4673268963115127, 1e-12);
  expect_values(W1.grad(),
                {-0.01085829862124893, 0.5012850668805358, -0.3785797695814284, -0.09418749293221365,
                 -0.1320624630805426, 0.1519900049958907, 0.0005590073089416295, 0.1678130853133897,
                 -0.12796071046656712, -0.010732478548793212, 0.1367351470332961, -0.10021652573722767});
  expect_values(b1.grad(),
                {-0.1488573117813562, -0.10378381310252485, -0.04075460599571992, -0.051271869508591784});
  expect_values(W2.grad(),
                {-0.30121703920355025, 0.42664828580783476, -0.05312924893056738, -0.33577857918825427});
  EXPECT_FALSE(b2.grad().defined());  // d out / d X does not depend on the last bias
  // the penalty depends on X too (autograd::grad itself accumulated nothing into it)
  expect_values(X.grad(), {-0.019042741272210072, 0.01879784104229731, 0.0025496749560543677,
                           -0.01997469489281626, 0.015788853041634084, 0.005796831414491733});
}

// backward(create_graph) leaves .grad() with a history; as in PyTorch, differentiating it
// accumulates into the same .grad().
TEST(DoubleBackward, BackwardWithCreateGraphKeepsTheGradientsHistory) {
  Tensor y = T({1.0, 2.0}, {2});
  pow(y, 3.0).sum().backward({}, {}, /*create_graph=*/true);
  Tensor first = y.grad();
  expect_values(first, {3, 12});
  ASSERT_TRUE(first.grad_fn() != nullptr);
  y.set_grad(Tensor());  // (PyTorch: y.grad = None; else the second pass adds to 3y^2)
  first.sum().backward();
  expect_values(y.grad(), {6, 12});
  // Twice through the same leaf: 3y^2 + 3y^2 keeps both histories.
  Tensor z = T({0.5}, {1});
  (z * z * z).sum().backward({}, {}, true);
  (z * z * z).sum().backward({}, {}, true);
  Tensor twice = z.grad();
  z.set_grad(Tensor());
  twice.sum().backward();
  expect_values(z.grad(), {6.0});  // d/dz 6 z^2 at 0.5
}

// The formulas that use an op's own output (exp, tanh, sigmoid, softmax, div) get that output
// with its history, so their second derivatives are complete.
TEST(DoubleBackward, SecondDerivativesThroughSavedOutputs) {
  Tensor x = T({-0.7, 0.2, 1.3}, {3});
  auto second = [&](const std::function<Tensor(const Tensor&)>& f) {
    Tensor g = autograd::grad({f(x).sum()}, {x}, {}, {}, true)[0];
    return autograd::grad({g.sum()}, {x})[0];
  };
  std::vector<double> xs = x.to_vector<double>(), e, t, s, r;
  for (double v : xs) {
    e.push_back(std::exp(v));
    double th = std::tanh(v);
    t.push_back(-2 * th * (1 - th * th));
    double sg = 1 / (1 + std::exp(-v));
    s.push_back(sg * (1 - sg) * (1 - 2 * sg));
    r.push_back(2 / (v * v * v));
  }
  expect_values(second([](const Tensor& v) { return exp(v); }), e);
  expect_values(second([](const Tensor& v) { return tanh(v); }), t);
  expect_values(second([](const Tensor& v) { return sigmoid(v); }), s);
  expect_values(second([](const Tensor& v) { return 1.0 / v; }), r, 1e-10);
  // d/dv relu(v) v = relu'(v) v + relu(v), whose derivative is 2 relu'(v): relu' is a constant mask
  expect_values(second([](const Tensor& v) { return relu(v) * v; }), {0, 2, 2});

  Tensor z = T({0.1, 0.7, -0.3, 1.0, -1.0, 0.5}, {2, 3});
  Tensor w = T({0.3, -0.1, 0.8, 0.2, 0.9, -0.4}, {2, 3}, false);
  Tensor loss = (log_softmax(z, 1) * w).sum() + square(softmax(z, 1)).sum();
  Tensor gz = autograd::grad({loss}, {z}, {}, {}, true)[0];
  expect_values(autograd::grad({square(gz).sum()}, {z})[0],
                {0.07609079502023157, 0.11505517537445029, -0.19114597039468184, 0.12819861541995775,
                 -0.2051450617592522, 0.07694644633929446});
}

// x^3 recorded with a backward formula that is not differentiable (the default of
// autograd::record): every library op now has a double backward, but a new op starts without one.
Tensor cube_without_double_backward(const Tensor& x) {
  Tensor y = [&] {
    NoGradGuard raw;
    return x * x * x;
  }();
  autograd::record("cube", {x}, y, [xs = autograd::SavedTensor(x)](const autograd::BackwardArgs& a) {
    Tensor v = xs.unpack("cube");
    return std::vector<Tensor>{a.grad() * v * v * 3.0};
  });
  return y;
}

// A gradient that passed through an op without a double backward still has the right values, but
// differentiating it again throws (instead of treating it as a constant).
TEST(DoubleBackward, OpsWithoutOneSayWhichWhenDifferentiatedAgain) {
  Tensor x = T({0.5, 2.0, -1.5}, {3});
  Tensor plain = autograd::grad({cube_without_double_backward(x).sum()}, {x})[0];
  Tensor g = autograd::grad({cube_without_double_backward(x).sum()}, {x}, {}, {}, true)[0];
  expect_values(g, {0.75, 12.0, 6.75}, 0);  // the first derivative is right
  ASSERT_TRUE(g.requires_grad());
  EMBER_EXPECT_THROW_MSG(autograd::grad({g.sum()}, {x}), "cube: double backward is not implemented");

  // Without create_graph nothing changes: the gradient has no history at all.
  EXPECT_FALSE(plain.requires_grad());
}

// H v through the paper losses' fused kernels (their recorded backward under create_graph), against
// PyTorch 1.13 on the same losses written in its ops (PLD with its ranking and logcumsumexp, OPL via
// F.normalize, Tri-BCE with torch.where weights, CCE as a softcapped cross_entropy).
std::vector<Tensor> hessian_vector_product(const Tensor& f, const std::vector<Tensor>& x,
                                           const std::vector<Tensor>& v) {
  std::vector<Tensor> g = autograd::grad({f}, x, {}, {}, /*create_graph=*/true);
  Tensor gv = (g[0] * v[0]).sum();
  for (size_t k = 1; k < g.size(); ++k) gv = gv + (g[k] * v[k]).sum();
  return autograd::grad({gv}, x);
}

TEST(DoubleBackward, PaperLossesMatchPyTorch) {
  {
    Tensor s = T({3.0, 1.0, -2.0, 0.5, 0.0, 0.2, -1.0, 0.7, 1.5, -0.3}, {2, 5});
    Tensor t = T({1.0, 2.5, -1.0, 0.0, 2.0, 0.0, 1.0, -2.0, 3.0, 0.5}, {2, 5}, false);
    Tensor f = losses::pld(s, t, tensor<int64_t>({4, 0}), {2.0});
    EXPECT_NEAR(f.item<double>(), 1.4275333508555137, 1e-12);
    expect_values(
        hessian_vector_product(f, {s}, {T({1, -2, 0.5, 3, -1, 0.3, 0.1, -0.7, 2, 1}, {2, 5}, false)})[0],
        {0.0488680815552, -0.0987165366343, -0.0100869101939, 0.0696415132882, -0.00970614801523,
         -0.00540133060537, -0.011047265041, -0.197784451029, 0.165329237076, 0.0489038095988},
        1e-11);
  }
  {
    Tensor x = T({0.5, 2.0, -1.5, 0.3, 1.0, 0.2, -1.0, 0.4, 0.8, 0.9, -0.6, 0.1}, {4, 3});
    Tensor v = T({1.0, 0.5, -1.0, 2.0, -1.0, 0.3, 0.1, 0.2, 0.3, -0.5, 1.5, 0.7}, {4, 3}, false);
    Tensor labels = tensor<int64_t>({0, 1, 0, 1});
    Tensor f = losses::opl(x, labels, {2.0, true});
    EXPECT_NEAR(f.item<double>(), 2.2243972980557576, 1e-12);
    expect_values(
        hessian_vector_product(f, {x}, {v})[0],
        {0.223475427572, -0.1731082251, -0.182274218259, -0.64774820759, 2.12889538605, -0.140540065804,
         -0.0112489358168, -0.384224373249, 0.140548463938, -0.253942378508, -1.82452243568, -0.609090348031},
        1e-11);
    expect_values(
        hessian_vector_product(losses::opl(x, labels, {2.0, false}), {x}, {v})[0],
        {0.226854093448, -0.0159151614957, 0.248793573676, -0.64774820759, 2.12889538605, -0.140540065804,
         0.623111369408, 0.19250487435, 0.534015100542, 0.136964073624, -0.0915413345254, 0.156847306731},
        1e-11);
  }
  {
    Tensor z = T({0.3, -1.2, 2.0, 0.1}, {4}), za = T({-0.8, 0.4, 1.1, 1.5}, {4}),
           zb = T({0.5, -1.5, 2.2, -0.3}, {4});
    Tensor u = T({1.0, -2.0, 0.5, 3.0}, {4}, false);
    Tensor f = losses::tri_bce(z, za, zb, T({1, 0, 1, 0}, {4}, false));
    EXPECT_NEAR(f.item<double>(), 1.029072498392563, 1e-12);
    std::vector<Tensor> h = hessian_vector_product(f, {z, za, zb}, {u, u, u});
    expect_values(h[0], {0.0106029562195, -0.00475258113327, 0.00304276075893, -0.0178604538442}, 1e-12);
    expect_values(h[1], {0.0753617407799, -0.184402575637, 0.0338389447121, 0.193551370203}, 1e-12);
    expect_values(h[2], {0, 0, 0, 0}, 1e-15);  // tower b is inactive: no term of its own
  }
  {
    Tensor E = T({0.5, -0.2, 1.0, 0.3, -0.7, 0.9}, {3, 2});
    Tensor C = T({0.2, 1.0, -0.5, 0.4, 0.8, -0.3, 0.1, 0.1}, {4, 2}), b = T({0.1, -0.2, 0.0, 0.3}, {4});
    losses::CCEOptions o;
    o.bias = b;
    o.softcap = 1.5;
    Tensor f = losses::cut_cross_entropy(E, C, tensor<int64_t>({2, -100, 0}), o);
    EXPECT_NEAR(f.item<double>(), 1.0116097490898905, 1e-12);
    std::vector<Tensor> h = hessian_vector_product(
        f, {E, C, b},
        {T({1.0, -1.0, 0.5, 2.0, 0.3, 0.3}, {3, 2}, false),
         T({0.1, 0.2, -1.0, 0.5, 0.7, 0.0, 0.2, -0.4}, {4, 2}, false), T({1.0, 0.5, -0.5, 2.0}, {4}, false)});
    expect_values(h[0], {-0.0783794278879, -0.155114923331, 0, 0, -0.095876980158, 0.192226191546}, 1e-11);
    expect_values(h[1],
                  {-0.146651582552, 0.0340090972091, 0.069431800725, -0.0408994632095, -0.182198102738,
                   0.220484354919, 0.229689217185, -0.136518508375},
                  1e-11);
    expect_values(h[2], {0.147772638975, -0.180505167338, 0.041271349128, 0.0752773418422}, 1e-11);
  }
}

// prod, cumprod and logcumsumexp differentiate again, at zeros too: there the first-order formulas
// drop terms that are zero in value but not in their derivative. H w for f = sum(op(x)),
// w = [1, 2, 3, 4]; expected values are PyTorch's.
TEST(DoubleBackward, ProductsAndScansAtZeros) {
  Tensor w = T({1, 2, 3, 4}, {4}, false);
  auto hessian_times_w = [&](const Tensor& x, const std::function<Tensor(const Tensor&)>& f) {
    Tensor g = autograd::grad({f(x).sum()}, {x}, {}, {}, true)[0];
    return autograd::grad({(g * w).sum()}, {x})[0];
  };
  Tensor with_zero = T({0.5, -1.0, 2.0, 0.0}, {4});
  Tensor two_zeros = T({0.0, 1.5, 0.0, 2.0}, {4});
  Tensor no_zero = T({0.5, -1.0, 2.0, 0.25}, {4});
  auto prod0 = [](const Tensor& v) { return prod(v, 0); };
  auto cumprod0 = [](const Tensor& v) { return cumprod(v, 0); };
  auto logcumsumexp0 = [](const Tensor& v) { return logcumsumexp(v, 0); };
  expect_values(hessian_times_w(with_zero, prod0), {-8.0, 4.0, -2.0, -1.5});
  expect_values(hessian_times_w(two_zeros, prod0), {9.0, 0.0, 3.0, 0.0});
  expect_values(hessian_times_w(no_zero, prod0), {-7.75, 4.875, -2.0, -1.5});
  expect_values(hessian_times_w(with_zero, cumprod0), {-5.0, 8.5, -2.0, -1.5});
  expect_values(hessian_times_w(two_zeros, cumprod0), {15.5, 1.0, 4.5, 0.0});
  expect_values(hessian_times_w(no_zero, cumprod0), {-4.75, 9.375, -2.0, -1.5});
  expect_values(hessian_times_w(with_zero, logcumsumexp0),
                {-0.707722866453933, 0.09897757395322077, 0.4880281036592935, 0.12071718884141924});
}

// relu's and leaky_relu's gradients are ops with the activation as an input (derivative zero
// there), as PyTorch's threshold_backward: differentiating them again gives zeros, where a
// gradient with no history would make the second call throw.
TEST(DoubleBackward, PiecewiseLinearActivationsHaveZeroSecondDerivative) {
  Tensor x = T({0.5, -1.0, 2.0}, {3});
  for (auto f : std::vector<std::function<Tensor(const Tensor&)>>{
           [](const Tensor& v) { return relu(v); }, [](const Tensor& v) { return leaky_relu(v, 0.1); }}) {
    Tensor g = autograd::grad({f(x).sum()}, {x}, {}, {}, true)[0];
    ASSERT_TRUE(g.requires_grad());
    expect_values(autograd::grad({(g * 3.0).sum()}, {x})[0], {0, 0, 0});
  }
  // The Hessian of a one-layer ReLU network in its weights: zeros, through relu's saved output.
  Tensor W = T({0.3, -0.2, 0.1, 0.4, 0.5, -0.6}, {2, 3});
  Tensor input = T({1.0, 2.0, -1.0}, {3}, false);
  Tensor gW = autograd::grad({relu(matmul(W, input)).sum()}, {W}, {}, {}, true)[0];
  expect_values(gW, {0, 0, 0, 1, 2, -1});  // W input = [-0.2, 2]
  expect_values(autograd::grad({(gW * gW).sum()}, {W})[0], {0, 0, 0, 0, 0, 0});
}

// As in PyTorch, a custom Function's backward runs recorded under create_graph, with what forward
// saved (inputs and its own outputs) carrying their history.
TEST(DoubleBackward, CustomFunctions) {
  struct Cube : autograd::Function<Cube> {
    static Tensor forward(autograd::AutogradContext* ctx, const Tensor& v) {
      ctx->save_for_backward({v});
      return v * v * v;
    }
    static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> grads) {
      Tensor v = ctx->get_saved_variables()[0];
      return {grads[0] * 3.0 * v * v};
    }
  };
  struct Exp : autograd::Function<Exp> {  // saves its output
    static Tensor forward(autograd::AutogradContext* ctx, const Tensor& v) {
      Tensor y = exp(v);
      ctx->save_for_backward({y});
      return y;
    }
    static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> grads) {
      return {grads[0] * ctx->get_saved_variables()[0]};
    }
  };
  Tensor x = T({0.5, 2.0, -1.5}, {3});
  Tensor c = autograd::grad({Cube::apply(x).sum()}, {x}, {}, {}, true)[0];
  expect_values(c, {0.75, 12.0, 6.75});
  expect_values(autograd::grad({c.sum()}, {x})[0], {3.0, 12.0, -9.0});  // 6x
  Tensor e = autograd::grad({Exp::apply(x).sum()}, {x}, {}, {}, true)[0];
  expect_values(autograd::grad({e.sum()}, {x})[0], {std::exp(0.5), std::exp(2.0), std::exp(-1.5)});
  EXPECT_TRUE(passes_gradgradcheck(
      [](const std::vector<Tensor>& in) { return Exp::apply(Cube::apply(in[0])); }, {R({4}, -1, 1, 21)}));
}

TEST(DoubleBackward, GradgradcheckErrors) {
  auto square_sum = [](const std::vector<Tensor>& in) { return square(in[0]).sum(); };
  EMBER_EXPECT_THROW_MSG(gradgradcheck(square_sum, {R({3}, -1, 1, 51).to(DType::float32).requires_grad_()}),
                         "gradcheck: input 0 is float32; finite differences need float64 inputs");
  EMBER_EXPECT_THROW_MSG(gradgradcheck(square_sum, {R({3}, -1, 1, 51, false)}),
                         "gradgradcheck: no input requires grad");
}

// create_graph keeps the graph by default (retain_graph follows it), as in PyTorch.
TEST(DoubleBackward, RetainGraphDefaultsToCreateGraph) {
  Tensor x = T({1.5}, {1});
  Tensor y = (x * x * x).sum();
  autograd::grad({y}, {x}, {}, {}, true);
  expect_values(autograd::grad({y}, {x})[0], {6.75});  // still there
  EMBER_EXPECT_THROW_MSG(autograd::grad({y}, {x}), "a second time");
}

// Third derivative: create_graph all the way down.
TEST(DoubleBackward, ThirdDerivative) {
  Tensor x = T({0.3, -0.8}, {2});
  Tensor g1 = autograd::grad({sin(x).sum()}, {x}, {}, {}, true)[0];
  Tensor g2 = autograd::grad({g1.sum()}, {x}, {}, {}, true)[0];
  Tensor g3 = autograd::grad({g2.sum()}, {x})[0];
  expect_values(g3, {-std::cos(0.3), -std::cos(-0.8)});
}

// Slices, selects and diagonals scatter their gradient into zeros: that scatter is recorded too.
TEST(DoubleBackward, PartialViews) {
  auto fn = [](const std::vector<Tensor>& in) {
    const Tensor& a = in[0];
    return square(a.slice(1, 0, 3, 2)).sum() * a.select(0, 1).sum() + exp(a.diagonal()).sum();
  };
  EXPECT_TRUE(passes_gradgradcheck(fn, {R({3, 4}, -1, 1, 7)}));
}

// pow with a tensor exponent away from p = 0, and maximum/minimum away from ties (the op table
// has both at those points, where finite differences of the gradient mean nothing).
TEST(DoubleBackward, PowMaximumMinimum) {
  auto fn = [](const std::vector<Tensor>& in) {
    return pow(in[0], in[1]) + maximum(in[0], in[1]) * minimum(in[0], in[1] * 2.0);
  };
  EXPECT_TRUE(passes_gradgradcheck(fn, {R({2, 3}, 0.5, 2.0, 11), R({2, 3}, 0.2, 1.5, 12)}));
}

// An MLP with a cross-entropy-free objective, gradient-penalty style, gradgradchecked end to end.
TEST(DoubleBackward, GradgradcheckThroughLayers) {
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor h = gelu(linear(in[0], in[1], in[2]), /*tanh_approx=*/true);
    return losses::mse_loss(matmul(h, in[3]).sum({1}), in[4]) + softplus(h).mean();
  };
  EXPECT_TRUE(passes_gradgradcheck(fn, {R({2, 3}, -1, 1, 1), R({4, 3}, -1, 1, 2), R({4}, -1, 1, 3),
                                        R({4, 2}, -1, 1, 4), R({2}, -1, 1, 5, false)}));
}

// MAML's inner step: a small CNN's weights after one SGD step on a cross-entropy loss, taken with
// create_graph, then the loss at the adapted weights, differentiated back to the original ones.
TEST(DoubleBackward, GradgradcheckThroughAMamlStepOnACnn) {
  auto loss_at = [](const Tensor& x, const Tensor& w, const Tensor& v, const Tensor& labels) {
    Tensor h = relu(conv2d(x, w, {}, {1, 1}, {1, 1}));
    h = max_pool2d(h, {2, 2}).flatten(1);
    return losses::cross_entropy(matmul(h, v), labels);
  };
  Tensor x = R({2, 1, 4, 4}, -1, 1, 41, false);
  Tensor labels = I({1, 0}, {2});
  auto fn = [&](const std::vector<Tensor>& in) {
    AutoGradMode recording(true);  // (gradcheck evaluates fn under NoGradGuard for its differences)
    std::vector<Tensor> g = autograd::grad({loss_at(x, in[0], in[1], labels)}, {in[0], in[1]}, {}, {}, true);
    return loss_at(x * 0.5, in[0] - g[0] * 0.3, in[1] - g[1] * 0.3, labels);
  };
  EXPECT_TRUE(passes_gradcheck(fn, {R({2, 1, 3, 3}, -1, 1, 42), R({8, 3}, -1, 1, 43)}));
}

}  // namespace
}  // namespace ember::testing
