// The API blocks of the issues are contracts: programs outside ember compile against these exact
// names. This file spells them out (mostly at compile time) so a rename breaks the build here.
#include <ember/ember.h>

#include <cmath>

#include "harness.h"

namespace ember::testing {
namespace {

// issue 4: "How a user writes a model and a training step (this must compile as written)"
struct Net : ember::nn::Module {
  std::shared_ptr<ember::nn::Linear> fc1, fc2;
  Net() {
    fc1 = register_module("fc1", std::make_shared<ember::nn::Linear>(784, 256));
    fc2 = register_module("fc2", std::make_shared<ember::nn::Linear>(256, 10));
  }
  ember::Tensor forward(const ember::Tensor& x) { return fc2->forward(ember::relu(fc1->forward(x))); }
};

TEST(ApiContract, TrainingStepFromTheNnIssue) {
  ember::manual_seed(0);
  ember::Tensor x = ember::randn({8, 784});
  ember::Tensor y = ember::randint(0, 10, {8});
  auto net = std::make_shared<Net>();
  ember::optim::SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  ember::optim::SGD opt(net->parameters(), o);
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    ember::Tensor loss = ember::losses::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_NEAR(first, std::log(10.0), 0.3);  // small random init: close to uniform over 10 classes
  EXPECT_LT(last, 0.1 * first);             // the 8 examples are memorised
  auto named = net->named_parameters();
  ASSERT_EQ(named.size(), 4u);
  EXPECT_EQ(named[0].first, "fc1.weight");
  ember::optim::AdamOptions adam;
  adam.betas = std::pair<double, double>(0.9, 0.999);
  adam.amsgrad = false;
  (void)adam;
}

TEST(ApiContract, CoreNames) {
  static_assert(std::is_same_v<decltype(ember::kFloat32), const ember::DType>);
  static_assert(std::is_same_v<ember::Shape, std::vector<int64_t>>);
  ember::TensorOptions opts =
      ember::TensorOptions().dtype(ember::kFloat64).device(ember::Device::cpu()).requires_grad(true);
  ember::Tensor t = ember::zeros({2, 3}, opts);
  EXPECT_TRUE(t.requires_grad());
  ember::Tensor c = ember::linspace(0, 1, 3);
  ember::Tensor z = ember::zeros_like(c);
  ember::Tensor r = ember::randn_like(c);
  ember::Tensor b = ember::bernoulli(ember::full({4}, 0.5));
  std::pair<ember::Tensor, ember::Tensor> s = ember::sort(c, -1, true);
  std::pair<ember::Tensor, ember::Tensor> k = ember::topk(c, 2);
  std::pair<ember::Tensor, ember::Tensor> m = c.max(0, false);
  ember::Tensor conv =
      ember::conv2d(ember::ones({1, 1, 3, 3}), ember::ones({1, 1, 2, 2}), {}, {1, 1}, {0, 0}, {1, 1}, 1);
  ember::Tensor pool = ember::max_pool2d(conv, {2, 2});
  ember::Tensor ap = ember::adaptive_avg_pool2d(conv, {1, 1});
  EXPECT_EQ(pool.shape(), (ember::Shape{1, 1, 1, 1}));
  EXPECT_EQ(ap.item<float>(), 4.0f);
  ember::GradcheckResult g =
      ember::gradcheck([](const std::vector<ember::Tensor>& in) { return in[0].exp(); },
                       {ember::ones({2}, ember::kFloat64).requires_grad_()});
  EXPECT_TRUE(g.ok);
  ember::NoGradGuard guard;
  EXPECT_FALSE(ember::GradMode::is_enabled());
  (void)z, (void)r, (void)b, (void)s, (void)k, (void)m;
}

TEST(ApiContract, LossNames) {
  using namespace ember::losses;
  CrossEntropyOptions ce;
  ce.ignore_index = -100;
  ce.label_smoothing = 0.0;
  ce.reduction = Reduction::mean;
  KDOptions kd;
  EXPECT_EQ(kd.temperature, 4.0);
  PLDOptions pld_o;
  EXPECT_EQ(pld_o.temperature, 1.0);
  OPLOptions opl_o;
  EXPECT_EQ(opl_o.gamma, 0.5);
  EXPECT_FALSE(opl_o.absolute_inter);
  TriBCEOptions tri;
  EXPECT_FALSE(tri.detach_weights);
  AnyLossOptions any;
  EXPECT_EQ(any.metric, Metric::f_beta);
  EXPECT_EQ(any.amplifier, 73.0);
  any.custom = [](const SoftConfusion& c) { return c.tp / (c.tp + c.fn); };
  CCEOptions cce;
  EXPECT_EQ(cce.ignore_index, -100);
  EXPECT_TRUE(cce.filter_gradients);
  EXPECT_EQ(cce.filter_eps, 0.0);
  EXPECT_FALSE(cce.accumulate_fp32);
  ember::Tensor logits = ember::randn({4, 5}), target = ember::randint(0, 5, {4});
  EXPECT_TRUE(cut_cross_entropy(ember::randn({4, 3}), ember::randn({5, 3}), target, cce).defined());
  EXPECT_TRUE(generalized_cross_entropy(logits, target, 0.7).defined());
  EXPECT_TRUE(mae_loss(logits, target).defined());
  EXPECT_TRUE(sum_exponential_loss(logits, target).defined());
  EXPECT_TRUE(kd_loss(logits, ember::randn({4, 5}), kd).defined());
  for (Metric metric : {Metric::accuracy, Metric::f_beta, Metric::g_mean, Metric::balanced_accuracy,
                        Metric::precision, Metric::recall, Metric::specificity, Metric::mcc})
    (void)metric;
}

}  // namespace
}  // namespace ember::testing
