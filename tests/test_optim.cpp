// Optimizers, schedulers and gradient clipping. Trajectories and schedules are compared with
// values recorded from PyTorch by tests/fixtures/make_optim_fixtures.py (optim_fixtures.json);
// single steps are also checked against the update rule worked out by hand.
#include <ember/optim.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "nn_test_util.h"

namespace ember::testing {
namespace {

using json = nlohmann::json;
using namespace ember::optim;

const json& fixtures() {
  static const json data = read_json_fixture("optim_fixtures.json");
  return data;
}

Tensor from_json(const json& j, DType dtype) {
  std::vector<double> v;
  Shape shape{static_cast<int64_t>(j.size())};
  if (j[0].is_array()) {
    shape.push_back(static_cast<int64_t>(j[0].size()));
    for (const json& row : j)
      for (double x : row) v.push_back(x);
  } else {
    for (double x : j) v.push_back(x);
  }
  return tensor<double>(v, shape).to(dtype);
}

// The fixture's loss: sum(W1 * p1) + sum(W2 * p1^2) + 0.5 * sum(p2^2) + sum(sum(p1, 0) * p2).
Tensor fixture_loss(const Tensor& p1, const Tensor& p2) {
  const json& init = fixtures()["init"];
  Tensor w1 = from_json(init["W1"], p1.dtype()), w2 = from_json(init["W2"], p1.dtype());
  return (w1 * p1).sum() + (w2 * p1 * p1).sum() + 0.5 * (p2 * p2).sum() + (p1.sum({0}) * p2).sum();
}

// The options a fixture case names (PyTorch's keyword arguments); the rest keep their defaults.
template <class Options>
Options options_from(const json& o) {
  Options opt;
  auto set = [&](const char* key, auto& field) {
    if (o.contains(key)) field = o[key];
  };
  set("lr", opt.lr);
  set("weight_decay", opt.weight_decay);
  if constexpr (requires { opt.momentum; }) set("momentum", opt.momentum);
  if constexpr (requires { opt.dampening; }) set("dampening", opt.dampening);
  if constexpr (requires { opt.nesterov; }) set("nesterov", opt.nesterov);
  if constexpr (requires { opt.alpha; }) set("alpha", opt.alpha);
  if constexpr (requires { opt.centered; }) set("centered", opt.centered);
  if constexpr (requires { opt.lr_decay; }) set("lr_decay", opt.lr_decay);
  if constexpr (requires { opt.initial_accumulator_value; })
    set("initial_accumulator_value", opt.initial_accumulator_value);
  if constexpr (requires { opt.eps; }) set("eps", opt.eps);
  if constexpr (requires { opt.rho; }) set("rho", opt.rho);
  if constexpr (requires { opt.betas; })
    if (o.contains("betas")) opt.betas = {o["betas"][0], o["betas"][1]};
  if constexpr (requires { opt.amsgrad; }) set("amsgrad", opt.amsgrad);
  if constexpr (requires { opt.momentum_decay; }) set("momentum_decay", opt.momentum_decay);
  return opt;
}

template <class Opt, class Options>
std::unique_ptr<Optimizer> make_from(const std::vector<Tensor>& params, const json& options) {
  return std::make_unique<Opt>(params, options_from<Options>(options));
}

// Runs the fixture's optimisation with `make(p1, p2)` and compares every step with PyTorch.
template <class MakeOpt>
void expect_trajectory(const std::string& name, DType dtype, double tol, MakeOpt make) {
  SCOPED_TRACE(name + " in " + std::string(dtype_name(dtype)));
  const json& init = fixtures()["init"];
  Tensor p1 = from_json(init["P1"], dtype).requires_grad_(),
         p2 = from_json(init["P2"], dtype).requires_grad_();
  auto opt = make(p1, p2);
  const json& steps = fixtures()["optimizers"][name]["steps"];
  // RAdam runs past step 5, where its rectification switches on (rho_t > 5).
  ASSERT_EQ(steps.size(), name.starts_with("radam") ? 10u : 5u);
  for (size_t s = 0; s < steps.size(); ++s) {
    opt->zero_grad();
    fixture_loss(p1, p2).backward();
    opt->step();
    EXPECT_TRUE(tensors_close(p1.view({-1}), from_json(steps[s]["p1"], DType::float64), tol))
        << "step " << s + 1;
    EXPECT_TRUE(tensors_close(p2, from_json(steps[s]["p2"], DType::float64), tol)) << "step " << s + 1;
  }
}

TEST(Optim, TrajectoriesMatchPyTorch) {
  int cases = 0;
  for (const auto& [name, c] : fixtures()["optimizers"].items()) {
    if (c.contains("groups")) continue;
    ++cases;
    for (auto [dtype, tol] : {std::pair{DType::float64, 1e-12}, std::pair{DType::float32, 2e-5}}) {
      expect_trajectory(name, dtype, tol,
                        [&](const Tensor& p1, const Tensor& p2) -> std::unique_ptr<Optimizer> {
                          const json& o = c["options"];
                          const std::vector<Tensor> ps{p1, p2};
                          if (name.starts_with("sgd")) return make_from<SGD, SGDOptions>(ps, o);
                          if (name.starts_with("rmsprop")) return make_from<RMSprop, RMSpropOptions>(ps, o);
                          if (name.starts_with("adagrad")) return make_from<Adagrad, AdagradOptions>(ps, o);
                          if (name.starts_with("adadelta"))
                            return make_from<Adadelta, AdadeltaOptions>(ps, o);
                          if (name.starts_with("adamax")) return make_from<Adamax, AdamaxOptions>(ps, o);
                          if (name.starts_with("nadam")) return make_from<NAdam, NAdamOptions>(ps, o);
                          if (name.starts_with("radam")) return make_from<RAdam, RAdamOptions>(ps, o);
                          if (name.starts_with("adamw")) return make_from<AdamW, AdamWOptions>(ps, o);
                          return make_from<Adam, AdamOptions>(ps, o);
                        });
    }
  }
  // 4 SGD, 3 Adam, 2 AdamW, 3 RMSprop, 2 Adagrad, 2 each of Adadelta, Adamax, NAdam and RAdam
  EXPECT_EQ(cases, 22);
}

TEST(Optim, ParamGroupsHaveTheirOwnOptions) {
  expect_trajectory("sgd_groups", DType::float64, 1e-12, [](const Tensor& p1, const Tensor& p2) {
    return std::make_unique<SGD>(
        std::vector<ParamGroup<SGDOptions>>{{{p1}, SGDOptions{0.1}}, {{p2}, SGDOptions{0.01, 0.9}}});
  });
  expect_trajectory("adam_groups", DType::float64, 1e-12, [](const Tensor& p1, const Tensor& p2) {
    AdamOptions second;
    second.lr = 0.02;
    second.weight_decay = 0.5;
    auto adam = std::make_unique<Adam>(std::vector<Tensor>{p1}, AdamOptions{0.1});
    adam->add_param_group({{p2}, second});
    EXPECT_EQ(adam->num_param_groups(), 2u);
    EXPECT_DOUBLE_EQ(adam->lr(1), 0.02);
    return adam;
  });
}

// Two groups (p1, p2) built from the fixture's per-group options.
template <class Opt, class Options>
void expect_groups_trajectory(const std::string& name) {
  const json& groups = fixtures()["optimizers"][name]["groups"];
  expect_trajectory(name, DType::float64, 1e-12, [&](const Tensor& p1, const Tensor& p2) {
    auto opt = std::make_unique<Opt>(std::vector<ParamGroup<Options>>{
        {{p1}, options_from<Options>(groups[0])}, {{p2}, options_from<Options>(groups[1])}});
    EXPECT_EQ(opt->num_param_groups(), 2u);
    EXPECT_DOUBLE_EQ(opt->lr(1), groups[1]["lr"].get<double>());
    return opt;
  });
}

TEST(Optim, AdadeltaAdamaxNAdamRAdamParamGroupsMatchPyTorch) {
  expect_groups_trajectory<Adadelta, AdadeltaOptions>("adadelta_groups");
  expect_groups_trajectory<Adamax, AdamaxOptions>("adamax_groups");
  expect_groups_trajectory<NAdam, NAdamOptions>("nadam_groups");
  expect_groups_trajectory<RAdam, RAdamOptions>("radam_groups");
}

// ---- single steps worked out by hand ----

TEST(Optim, SgdStepsByHand) {
  // loss = p^2 -> g = 2p. p0 = 1.
  Tensor p = tensor<double>({1.0}).requires_grad_();
  SGD sgd({p}, SGDOptions{0.1, 0.9, 0.0, 0.5});  // lr, momentum, dampening, weight_decay
  auto step = [&] {
    sgd.zero_grad();
    (p * p).sum().backward();
    sgd.step();
    return p.item<double>();
  };
  // step 1: d = 2 + 0.5 * 1 = 2.5; buf = 2.5; p = 1 - 0.25 = 0.75
  EXPECT_DOUBLE_EQ(step(), 0.75);
  // step 2: d = 1.5 + 0.375 = 1.875; buf = 0.9 * 2.5 + 1.875 = 4.125; p = 0.75 - 0.4125
  EXPECT_NEAR(step(), 0.3375, 1e-15);
  EXPECT_TRUE(
      tensors_close(sgd.state_dict().tensors.at("state.0.momentum_buffer"), tensor<double>({4.125}), 1e-15));
}

TEST(Optim, AdamFirstStepIsSignLike) {
  // After one step the bias-corrected moments are g and g^2: p -= lr * g / (|g| + eps).
  Tensor p = tensor<double>({1.0, -2.0, 0.5}).requires_grad_();
  Adam adam({p}, AdamOptions{0.1, {0.9, 0.999}, 1e-3});
  (p * tensor<double>({3.0, 1.0, -0.5})).sum().backward();  // g = {3, 1, -0.5}
  adam.step();
  EXPECT_TRUE(tensors_close(
      p, tensor<double>({1 - 0.1 * 3 / 3.001, -2 - 0.1 * 1 / 1.001, 0.5 + 0.1 * 0.5 / 0.501}), 1e-14));
  // AdamW first decays the parameter: p * (1 - lr * wd), then the same step.
  Tensor q = tensor<double>({2.0}).requires_grad_();
  AdamW adamw({q}, AdamWOptions{0.1, {0.9, 0.999}, 0.0, 0.5});
  (q * 4.0).sum().backward();
  adamw.step();
  EXPECT_NEAR(q.item<double>(), 2.0 * 0.95 - 0.1, 1e-15);
}

TEST(Optim, SkipsParametersWithoutGradients) {
  Tensor a = tensor<double>({1.0}).requires_grad_(), b = tensor<double>({5.0}).requires_grad_();
  Adam adam({a, b});
  (a * 2.0).sum().backward();
  adam.step();
  EXPECT_EQ(b.item<double>(), 5.0);
  EXPECT_LT(a.item<double>(), 1.0);
  StateDict sd = adam.state_dict();
  EXPECT_TRUE(sd.tensors.count("state.0.exp_avg"));
  EXPECT_FALSE(sd.tensors.count("state.1.exp_avg"));  // b never stepped: no state
  adam.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

// Module::to converts parameters in place after the optimizer made their state (float32 here):
// the next step moves the state along (the fused kernels read every operand with the parameter's
// dtype; a float32 buffer read as float64 was garbage and out of bounds). Expected: PyTorch 1.13
// with the state cast the same way, model.double(); opt.load_state_dict(opt.state_dict()).
TEST(Optim, StateFollowsModuleTo) {
  auto run = [](Optimizer& opt, nn::Linear& m) {
    m.weight.set_grad(tensor<float>({0.5f, -1.0f, 2.0f}, Shape{1, 3}));
    opt.step();
    opt.zero_grad();
    m.to(DType::float64);
    m.weight.set_grad(tensor<double>({0.25, 0.5, -1.0}, Shape{1, 3}));
    opt.step();
  };
  {
    nn::Linear m(3, 1, false);
    set_values(m.weight, {1, -2, 3});
    Adam adam(m.parameters(), AdamOptions{0.1});
    run(adam, m);
    EXPECT_TRUE(tensors_close(
        m.weight, tensor<double>({0.8067820751179764, -1.8733662721419926, 2.8733663911828105}, Shape{1, 3}),
        1e-12));
    EXPECT_EQ(adam.state_dict().tensors.at("state.0.exp_avg_sq").dtype(), DType::float64);
    EXPECT_EQ(adam.state_dict().tensors.at("state.0.step").dtype(), DType::int64);
  }
  {
    nn::Linear m(3, 1, false);
    set_values(m.weight, {1, -2, 3});
    SGD sgd(m.parameters(), SGDOptions{0.1, 0.9});
    run(sgd, m);
    EXPECT_TRUE(tensors_close(
        m.weight, tensor<double>({0.8799999880790711, -1.859999976158142, 2.719999952316284}, Shape{1, 3}),
        1e-12));
    EXPECT_EQ(sgd.state_dict().tensors.at("state.0.momentum_buffer").dtype(), DType::float64);
  }
}

// ---- state dicts ----

// `steps` optimizer steps on the fixture's loss.
void run(const Tensor& p1, const Tensor& p2, Optimizer& opt, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    fixture_loss(p1, p2).backward();
    opt.step();
  }
}

TEST(Optim, StateDictKeysAndResume) {
  const json& init = fixtures()["init"];
  Tensor a1 = from_json(init["P1"], DType::float64).requires_grad_(),
         a2 = from_json(init["P2"], DType::float64).requires_grad_();
  AdamOptions o{0.1, {0.8, 0.99}, 1e-8, 0.01, true};
  Adam first({a1, a2}, o);
  run(a1, a2, first, 2);
  StateDict sd = first.state_dict();
  EXPECT_EQ(sd.metadata.at("optimizer"), "Adam");
  EXPECT_EQ(sd.metadata.at("param_groups"), "1");
  EXPECT_EQ(sd.metadata.at("param_groups.0.params"), "0,1");
  EXPECT_EQ(sd.metadata.at("param_groups.0.lr"), "0.1");
  EXPECT_EQ(sd.metadata.at("param_groups.0.betas"), "0.8,0.99");
  EXPECT_EQ(sd.metadata.at("param_groups.0.amsgrad"), "true");
  EXPECT_EQ(sd.tensors.at("state.1.step").item<int64_t>(), 2);
  EXPECT_EQ(sd.tensors.at("state.0.max_exp_avg_sq").shape(), (Shape{2, 3}));
  EXPECT_EQ(sd.tensors.size(), 8u);

  // A fresh optimizer (default options) on copies of the parameters, loaded from the state,
  // continues exactly like the original.
  Tensor b1 = a1.detach().clone().requires_grad_(), b2 = a2.detach().clone().requires_grad_();
  Adam second({b1, b2});
  second.load_state_dict(sd);
  EXPECT_DOUBLE_EQ(second.options(0).betas.first, 0.8);
  EXPECT_TRUE(second.options(0).amsgrad);
  run(a1, a2, first, 3);
  run(b1, b2, second, 3);
  EXPECT_TRUE(equal(a1, b1));
  EXPECT_TRUE(equal(a2, b2));
  // The loaded state is a copy: it does not alias the original optimizer's buffers.
  EXPECT_NE(sd.tensors.at("state.0.exp_avg").raw_data(),
            second.state_dict().tensors.at("state.0.exp_avg").raw_data());
}

// Two steps with make(params), the state dict (holding `state_names` for each parameter) loaded
// into a second optimizer from make on copies of the parameters: both continue alike.
template <class Make>
void expect_state_resumes(Make make, const std::vector<std::string>& state_names, int steps_before = 2,
                          int steps_after = 3) {
  const json& init = fixtures()["init"];
  Tensor a1 = from_json(init["P1"], DType::float64).requires_grad_(),
         a2 = from_json(init["P2"], DType::float64).requires_grad_();
  auto first = make(std::vector<Tensor>{a1, a2});
  run(a1, a2, *first, steps_before);
  StateDict sd = first->state_dict();
  SCOPED_TRACE(first->name());
  for (const std::string& n : state_names) EXPECT_TRUE(sd.tensors.count("state.1." + n)) << n;
  EXPECT_EQ(sd.tensors.size(), 2 * state_names.size());
  EXPECT_EQ(sd.tensors.at("state.0.step").item<int64_t>(), steps_before);
  Tensor b1 = a1.detach().clone().requires_grad_(), b2 = a2.detach().clone().requires_grad_();
  auto second = make(std::vector<Tensor>{b1, b2});
  second->load_state_dict(sd);
  run(a1, a2, *first, steps_after);
  run(b1, b2, *second, steps_after);
  EXPECT_TRUE(equal(a1, b1));
  EXPECT_TRUE(equal(a2, b2));
}

// bfloat16 parameters step in float32 and round once: with lr 0.5, a first step of `Opt` that
// moves each parameter by lr * sign(g) (Adagrad's, Adamax's).
template <class Opt, class Options>
void expect_bfloat16_sign_step(const Options& options) {
  Tensor h = tensor<float>({1.0f, -2.0f}, {2}).to(DType::bfloat16).requires_grad_();
  Opt opt({h}, options);
  h.set_grad(tensor<float>({0.5f, -0.25f}, {2}).to(DType::bfloat16));
  opt.step();
  SCOPED_TRACE(opt.name());
  EXPECT_EQ(h.dtype(), DType::bfloat16);
  EXPECT_TRUE(tensors_close(h, tensor<double>({0.5, -1.5}, {2}), 1e-2));
}

TEST(Optim, RMSpropAndAdagradStateResumesAndNamesItsBuffers) {
  expect_state_resumes(
      [](std::vector<Tensor> ps) {
        return std::make_unique<RMSprop>(ps, RMSpropOptions{0.01, 0.9, 1e-6, 0.1, 0.5, true});
      },
      {"step", "square_avg", "momentum_buffer", "grad_avg"});
  expect_state_resumes(
      [](std::vector<Tensor> ps) {
        return std::make_unique<Adagrad>(ps, AdagradOptions{0.1, 0.05, 0.0, 0.5});
      },
      {"step", "sum"});
  RMSprop rms({zeros({1}).requires_grad_()}, {.lr = 0.3, .momentum = 0.7});
  StateDict sd = rms.state_dict();
  EXPECT_EQ(sd.metadata.at("param_groups.0.momentum"), "0.7");
  EXPECT_EQ(sd.metadata.at("param_groups.0.centered"), "false");
  expect_bfloat16_sign_step<Adagrad, AdagradOptions>({.lr = 0.5});
}

TEST(Optim, AdadeltaAdamaxNAdamRAdamStateResumesAndNamesItsBuffers) {
  expect_state_resumes(
      [](std::vector<Tensor> ps) {
        return std::make_unique<Adadelta>(ps, AdadeltaOptions{0.5, 0.8, 1e-4, 0.1});
      },
      {"step", "square_avg", "acc_delta"});
  expect_state_resumes(
      [](std::vector<Tensor> ps) {
        return std::make_unique<Adamax>(ps, AdamaxOptions{0.05, {0.8, 0.99}, 1e-6, 0.2});
      },
      {"step", "exp_avg", "exp_inf"});
  expect_state_resumes(
      [](std::vector<Tensor> ps) {
        return std::make_unique<NAdam>(ps, NAdamOptions{0.05, {0.8, 0.99}, 1e-6, 0.1, 0.1});
      },
      {"step", "exp_avg", "exp_avg_sq", "mu_product"});
  // RAdam saved at step 4 (unrectified) and resumed past its switch at step 6.
  expect_state_resumes(
      [](std::vector<Tensor> ps) {
        return std::make_unique<RAdam>(ps, RAdamOptions{0.05, {0.8, 0.95}, 1e-6, 0.1});
      },
      {"step", "exp_avg", "exp_avg_sq"}, 4, 6);

  // Options as text, restored on load.
  Tensor p = tensor<float>({1.0f, -1.0f}, {2}).requires_grad_();
  NAdam nadam({p}, {.lr = 0.3, .betas = {0.8, 0.99}, .momentum_decay = 0.01});
  p.set_grad(tensor<float>({0.5f, 2.0f}, {2}));
  nadam.step();
  StateDict sd = nadam.state_dict();
  EXPECT_EQ(sd.metadata.at("optimizer"), "NAdam");
  EXPECT_EQ(sd.metadata.at("param_groups.0.betas"), "0.8,0.99");
  EXPECT_EQ(sd.metadata.at("param_groups.0.momentum_decay"), "0.01");
  EXPECT_EQ(sd.metadata.at("param_groups.0.eps"), "1e-08");
  // mu_product is a float64 scalar on the CPU whatever the parameter: mu_1 after one step.
  const Tensor& mu_product = sd.tensors.at("state.0.mu_product");
  EXPECT_EQ(mu_product.dtype(), DType::float64);
  EXPECT_EQ(mu_product.shape(), Shape{});
  EXPECT_DOUBLE_EQ(mu_product.item<double>(), 0.8 * (1 - 0.5 * std::pow(0.96, 0.01)));
  EXPECT_EQ(sd.tensors.at("state.0.exp_avg").dtype(), DType::float32);
  Tensor q = zeros({2}).requires_grad_();
  NAdam fresh({q});
  StateDict narrow = sd;  // a float32 mu_product (PyTorch's default dtype) is widened
  narrow.tensors["state.0.mu_product"] = full({}, 0.5).to(DType::float32);
  fresh.load_state_dict(narrow);
  EXPECT_DOUBLE_EQ(fresh.options(0).betas.first, 0.8);
  EXPECT_DOUBLE_EQ(fresh.options(0).momentum_decay, 0.01);
  EXPECT_EQ(fresh.state_dict().tensors.at("state.0.mu_product").dtype(), DType::float64);
  EXPECT_EQ(fresh.state_dict().tensors.at("state.0.mu_product").item<double>(), 0.5);
  StateDict wide = sd;
  wide.tensors["state.0.mu_product"] = zeros({2});
  EMBER_EXPECT_THROW_MSG(fresh.load_state_dict(wide),
                         "NAdam.load_state_dict: 'state.0.mu_product' should hold one number, has shape [2]");
  StateDict one_beta = sd;
  one_beta.metadata["param_groups.0.betas"] = "0.9";
  EMBER_EXPECT_THROW_MSG(fresh.load_state_dict(one_beta), "option 'betas' is missing or not 'beta1,beta2'");
  StateDict bad_beta = sd;
  bad_beta.metadata["param_groups.0.betas"] = "0.9,1.5";
  EMBER_EXPECT_THROW_MSG(fresh.load_state_dict(bad_beta), "NAdam: invalid beta2 1.5");
  EXPECT_EQ(fresh.state_dict().tensors.at("state.0.mu_product").item<double>(), 0.5);  // unchanged
  Adadelta adadelta({q}, {.rho = 0.7});
  StateDict ad = adadelta.state_dict();
  EXPECT_EQ(ad.metadata.at("param_groups.0.rho"), "0.7");
  EXPECT_EQ(ad.metadata.at("param_groups.0.lr"), "1");
  ad.metadata["param_groups.0.rho"] = "2";
  EMBER_EXPECT_THROW_MSG(adadelta.load_state_dict(ad), "Adadelta: invalid rho 2 (must be in [0, 1])");
  ad.metadata.erase("param_groups.0.rho");
  EMBER_EXPECT_THROW_MSG(adadelta.load_state_dict(ad), "option 'rho' is missing");
  EXPECT_DOUBLE_EQ(adadelta.options(0).rho, 0.7);

  expect_bfloat16_sign_step<Adamax, AdamaxOptions>({.lr = 0.5});
}

// First steps worked out by hand (loss = sum(c * p), so g = c).
TEST(Optim, AdadeltaAdamaxNAdamRAdamStepsByHand) {
  auto stepped = [](Optimizer& opt, Tensor& p, const std::vector<double>& g) {
    p.set_grad(tensor<double>(g, {static_cast<int64_t>(g.size())}));
    opt.step();
    return p;
  };
  {  // Adadelta: s = (1 - rho) g^2; delta = sqrt(eps) / sqrt(s + eps) * g; u = (1 - rho) delta^2
    Tensor p = tensor<double>({1.0, -1.0}).requires_grad_();
    Adadelta opt({p}, {.lr = 2.0, .rho = 0.9, .eps = 1e-2});
    const double d1 = std::sqrt(1e-2) / std::sqrt(0.1 * 9 + 1e-2) * 3,
                 d2 = std::sqrt(1e-2) / std::sqrt(0.1 + 1e-2) * -1;
    EXPECT_TRUE(
        tensors_close(stepped(opt, p, {3.0, -1.0}), tensor<double>({1 - 2 * d1, -1 - 2 * d2}), 1e-15));
    EXPECT_TRUE(tensors_close(opt.state_dict().tensors.at("state.0.acc_delta"),
                              tensor<double>({0.1 * d1 * d1, 0.1 * d2 * d2}), 1e-15));
  }
  {  // Adamax: step 1 is lr * g / (|g| + eps); a smaller gradient next keeps the decayed max.
    Tensor p = tensor<double>({1.0}).requires_grad_();
    Adamax opt({p}, {.lr = 0.1, .betas = {0.5, 0.9}, .eps = 0.0});
    EXPECT_NEAR(stepped(opt, p, {4.0}).item<double>(), 0.9, 1e-15);
    // m = 0.5 * 2 + 0.5 * 1 = 1.5; u = max(0.9 * 4, 1) = 3.6; p -= 0.1 / 0.75 * 1.5 / 3.6
    EXPECT_NEAR(stepped(opt, p, {1.0}).item<double>(), 0.9 - 0.1 / 0.75 * 1.5 / 3.6, 1e-15);
  }
  {  // RAdam: rho_1 = 1 <= 5, so step 1 is p -= lr * (g + weight_decay * p), unrectified
    Tensor p = tensor<double>({1.0, 2.0}).requires_grad_();
    RAdam opt({p}, {.lr = 0.1, .weight_decay = 0.5});
    EXPECT_TRUE(
        tensors_close(stepped(opt, p, {3.0, -1.0}), tensor<double>({1 - 0.1 * 3.5, 2 - 0.1 * 0.0}), 1e-15));
  }
  {  // NAdam step 1 with eps 0: d = |g|, P = mu_1, P_next = mu_1 * mu_1 * mu_2 (PyTorch 1.13's product)
    Tensor p = tensor<double>({1.0, -1.0}).requires_grad_();
    NAdam opt({p}, {.lr = 0.1, .betas = {0.9, 0.999}, .eps = 0.0, .momentum_decay = 0.5});
    const double mu1 = 0.9 * (1 - 0.5 * std::pow(0.96, 0.5)), mu2 = 0.9 * (1 - 0.5 * std::pow(0.96, 1.0));
    const double size = 0.1 * (1 + mu2 * 0.1 / (1 - mu1 * mu1 * mu2));  // (1 - mu1) / (1 - P) = 1
    EXPECT_TRUE(tensors_close(stepped(opt, p, {2.0, -0.5}), tensor<double>({1 - size, -1 + size}), 1e-15));
  }
}

// OneCycleLR cycles beta1 of the optimizers with betas; Adadelta has no momentum to cycle.
TEST(Optim, OneCycleLRCyclesBeta1OfAdamaxNAdamRAdam) {
  Tensor p = zeros({1}).requires_grad_();
  Adamax adamax({p});
  NAdam nadam({p});
  RAdam radam({p});
  for (Optimizer* opt : std::initializer_list<Optimizer*>{&adamax, &nadam, &radam}) {
    SCOPED_TRACE(opt->name());
    OneCycleLR sched(*opt, 1.0, 10);  // momentum from max_momentum 0.95 down to base_momentum 0.85
    EXPECT_DOUBLE_EQ(opt->momentum(0), 0.95);
    for (int i = 0; i < 2; ++i) sched.step();
    EXPECT_DOUBLE_EQ(opt->momentum(0), 0.85);  // the warm-up ends at step 0.3 * 10 - 1 = 2
  }
  EXPECT_DOUBLE_EQ(adamax.options(0).betas.first, 0.85);
  EXPECT_DOUBLE_EQ(radam.options(0).betas.second, 0.999);
  Adadelta adadelta({p});
  EMBER_EXPECT_THROW_MSG(OneCycleLR(adadelta, 1.0, 10), "Adadelta has no momentum to set");
  OneCycleLR lr_only(adadelta, 1.0, 10, 0.3, AnnealStrategy::cos, /*cycle_momentum=*/false);
  EXPECT_NEAR(adadelta.lr(0), 1.0 / 25, 1e-15);
  EXPECT_EQ(adadelta.momentum(0), 0.0);
}

TEST(Optim, LoadStateDictChecks) {
  Tensor p = zeros({2}).requires_grad_();
  SGD sgd({p}, SGDOptions{0.1, 0.9});
  p.set_grad(ones({2}));
  sgd.step();
  StateDict sd = sgd.state_dict();
  Adam adam({p});
  EMBER_EXPECT_THROW_MSG(adam.load_state_dict(sd), "Adam.load_state_dict: the state is for a SGD optimizer");
  SGD two({ParamGroup<SGDOptions>{{p}, {}}, ParamGroup<SGDOptions>{{zeros({1}).requires_grad_()}, {}}});
  EMBER_EXPECT_THROW_MSG(two.load_state_dict(sd), "the state has 1 parameter groups, this optimizer has 2");
  StateDict bad_shape = sd;
  bad_shape.tensors["state.0.momentum_buffer"] = zeros({3});
  EMBER_EXPECT_THROW_MSG(sgd.load_state_dict(bad_shape),
                         "'state.0.momentum_buffer' has shape [3] but parameter 0 has shape [2]");
  StateDict bad_key = sd;
  bad_key.tensors["state.x.momentum_buffer"] = zeros({2});
  EMBER_EXPECT_THROW_MSG(sgd.load_state_dict(bad_key), "unexpected tensor key 'state.x.momentum_buffer'");
  StateDict bad_id = sd;
  bad_id.tensors["state.4.momentum_buffer"] = zeros({2});
  EMBER_EXPECT_THROW_MSG(sgd.load_state_dict(bad_id), "refers to parameter 4, but there are 1");
  StateDict bad_option = sd;
  bad_option.metadata["param_groups.0.lr"] = "fast";
  EMBER_EXPECT_THROW_MSG(sgd.load_state_dict(bad_option), "option 'lr' = 'fast' is not a number");
  StateDict short_key = sd;  // (shorter than "state.": used to be parsed before the prefix check)
  short_key.tensors["st"] = zeros({2});
  EMBER_EXPECT_THROW_MSG(sgd.load_state_dict(short_key), "unexpected tensor key 'st'");
  Adam stepped({p});
  stepped.step();
  for (double step : {1e30, -1.0, 2.5, std::nan("")}) {
    StateDict bad_step = stepped.state_dict();
    bad_step.tensors["state.0.step"] = full({}, step);
    EMBER_EXPECT_THROW_MSG(stepped.load_state_dict(bad_step), "which is not a step count");
  }
  EXPECT_DOUBLE_EQ(sgd.options(0).lr, 0.1);  // the failed loads changed nothing
  // float32 state is cast to a float64 parameter's dtype.
  Tensor q = zeros({2}, DType::float64).requires_grad_();
  SGD sgd64({q}, SGDOptions{0.1, 0.9});
  sgd64.load_state_dict(sd);
  EXPECT_EQ(sgd64.state_dict().tensors.at("state.0.momentum_buffer").dtype(), DType::float64);
}

TEST(Optim, OptionAndParameterErrors) {
  Tensor p = zeros({2}).requires_grad_();
  EMBER_EXPECT_THROW_MSG(SGD({p}, SGDOptions{-0.1}), "SGD: invalid learning rate -0.1");
  EMBER_EXPECT_THROW_MSG(SGD({p}, SGDOptions{0.1, 0.0, 0.0, 0.0, true}),
                         "Nesterov momentum requires a momentum > 0");
  EMBER_EXPECT_THROW_MSG(Adam({p}, AdamOptions{0.1, {1.0, 0.999}}), "Adam: invalid beta1 1");
  EMBER_EXPECT_THROW_MSG(AdamW({p}, AdamWOptions{0.1, {0.9, 0.999}, -1.0}), "AdamW: invalid eps -1");
  EMBER_EXPECT_THROW_MSG(RMSprop({p}, {.alpha = -0.5}), "RMSprop: invalid alpha -0.5");
  EMBER_EXPECT_THROW_MSG(RMSprop({p}, {.momentum = -1}), "RMSprop: invalid momentum -1");
  EMBER_EXPECT_THROW_MSG(Adagrad({p}, {.lr_decay = -1}), "Adagrad: invalid lr_decay -1");
  EMBER_EXPECT_THROW_MSG(Adagrad({p}, {.initial_accumulator_value = -1}),
                         "Adagrad: invalid initial_accumulator_value -1");
  EMBER_EXPECT_THROW_MSG(Adagrad({p}).set_momentum(0, 0.9), "Adagrad has no momentum to set");
  EMBER_EXPECT_THROW_MSG(Adadelta({p}, {.lr = -1}), "Adadelta: invalid learning rate -1 (must be >= 0)");
  EMBER_EXPECT_THROW_MSG(Adadelta({p}, {.rho = 1.5}), "Adadelta: invalid rho 1.5 (must be in [0, 1])");
  EMBER_EXPECT_THROW_MSG(Adadelta({p}, {.rho = std::nan("")}), "Adadelta: invalid rho nan");
  EMBER_EXPECT_THROW_MSG(Adadelta({p}).set_momentum(0, 0.9), "Adadelta has no momentum to set");
  EMBER_EXPECT_THROW_MSG(Adamax({p}, {.betas = {0.9, 1.0}}), "Adamax: invalid beta2 1 (must be in [0, 1))");
  EMBER_EXPECT_THROW_MSG(Adamax({p}, {.betas = {-0.1, 0.9}}), "Adamax: invalid beta1 -0.1");
  EMBER_EXPECT_THROW_MSG(NAdam({p}, {.momentum_decay = -0.1}), "NAdam: invalid momentum_decay -0.1");
  EMBER_EXPECT_THROW_MSG(NAdam(std::vector<ParamGroup<NAdamOptions>>{}), "NAdam: no parameter groups given");
  EMBER_EXPECT_THROW_MSG(RAdam({p}, {.eps = -1}), "RAdam: invalid eps -1");
  EMBER_EXPECT_THROW_MSG(RAdam({p}, {.weight_decay = -2}), "RAdam: invalid weight_decay -2");
  EMBER_EXPECT_THROW_MSG(RAdam({p, p}),
                         "RAdam: parameter 1 of the new group (shape [2]) appears more than once");
  {
    Adamax adamax({p});
    EMBER_EXPECT_THROW_MSG(adamax.options(1), "Adamax: parameter group 1 does not exist (1 groups)");
    EMBER_EXPECT_THROW_MSG(adamax.add_param_group({{zeros({1}).requires_grad_()}, {.lr = -0.5}}),
                           "Adamax: invalid learning rate -0.5");
    EXPECT_EQ(adamax.num_param_groups(), 1u);
  }
  EMBER_EXPECT_THROW_MSG(SGD({p, p}), "appears more than once");
  EMBER_EXPECT_THROW_MSG(SGD(std::vector<Tensor>{}), "needs at least one parameter");
  EMBER_EXPECT_THROW_MSG(SGD({p * 2.0}), "not a leaf tensor");
  EMBER_EXPECT_THROW_MSG(SGD({zeros({2}, DType::int64)}), "only floating tensors can be optimized");
  SGD sgd({p});
  EMBER_EXPECT_THROW_MSG(sgd.add_param_group({{p}, {}}), "appears more than once");
  p.set_grad(zeros({2}, DType::float64));
  EMBER_EXPECT_THROW_MSG(sgd.step(),
                         "gradient ([2] float64 on cpu) does not match its parameter ([2] float32 on cpu)");
}

// ---- ReduceLROnPlateau ----

TEST(Plateau, MatchesPyTorch) {
  int cases = 0;
  for (const auto& [name, c] : fixtures()["plateau"].items()) {
    SCOPED_TRACE(name);
    ++cases;
    const json& o = c["options"];
    ReduceLROnPlateauOptions options;
    if (o.contains("mode")) options.mode = o["mode"] == "max" ? PlateauMode::max : PlateauMode::min;
    if (o.contains("patience")) options.patience = o["patience"];
    if (o.contains("threshold")) options.threshold = o["threshold"];
    if (o.contains("threshold_mode"))
      options.threshold_mode = o["threshold_mode"] == "abs" ? ThresholdMode::abs : ThresholdMode::rel;
    if (o.contains("cooldown")) options.cooldown = o["cooldown"];
    if (o.contains("factor")) options.factor = o["factor"];
    if (o.contains("min_lr")) options.min_lr = o["min_lr"].get<std::vector<double>>();
    Tensor p = zeros({1}).requires_grad_(), q = zeros({1}).requires_grad_();
    SGD sgd({ParamGroup<SGDOptions>{{p}, {0.5}}, ParamGroup<SGDOptions>{{q}, {0.04}}});
    ReduceLROnPlateau plateau(sgd, options);
    for (size_t i = 0; i < c["metrics"].size(); ++i) {
      plateau.step(c["metrics"][i].get<double>());
      EXPECT_EQ(plateau.get_last_lr(), (std::vector<double>{c["lr"][i][0], c["lr"][i][1]})) << "step " << i;
      EXPECT_EQ(sgd.lr(1), c["lr"][i][1].get<double>()) << "step " << i;
    }
  }
  EXPECT_EQ(cases, 3);
}

TEST(Plateau, CountsBadEpochsAndResumes) {
  Tensor p = zeros({1}).requires_grad_();
  SGD sgd({p}, SGDOptions{1.0});
  ReduceLROnPlateau plateau(sgd, {.patience = 1, .cooldown = 1});
  EXPECT_EQ(plateau.best(), std::numeric_limits<double>::infinity());
  plateau.step(2.0);  // better than inf
  plateau.step(2.0);  // not better by the relative threshold: 1 bad epoch
  EXPECT_EQ(plateau.num_bad_epochs(), 1);
  EXPECT_DOUBLE_EQ(sgd.lr(0), 1.0);
  StateDict sd = plateau.state_dict();
  EXPECT_EQ(sd.metadata.at("best"), "2");
  plateau.step(std::nan(""));  // a NaN metric is a bad epoch: the second, beyond patience 1
  EXPECT_DOUBLE_EQ(sgd.lr(0), 0.1);
  EXPECT_EQ(plateau.cooldown_counter(), 1);
  // a fresh scheduler loaded from the state two steps in takes the same third step
  SGD other({zeros({1}).requires_grad_()}, SGDOptions{1.0});
  ReduceLROnPlateau resumed(other, {.patience = 1, .cooldown = 1});
  resumed.load_state_dict(sd);
  EXPECT_EQ(resumed.last_epoch(), 2);
  resumed.step(3.0);
  EXPECT_DOUBLE_EQ(other.lr(0), 0.1);
  EXPECT_EQ(resumed.state_dict().metadata, plateau.state_dict().metadata);
  StateDict bad = sd;
  bad.metadata["num_bad_epochs"] = "-1";
  EMBER_EXPECT_THROW_MSG(resumed.load_state_dict(bad), "num_bad_epochs '-1' is not a count");
  bad = sd;
  bad.metadata["scheduler"] = "StepLR";
  EMBER_EXPECT_THROW_MSG(resumed.load_state_dict(bad), "the state is for a StepLR scheduler");
}

TEST(Plateau, Errors) {
  Tensor p = zeros({1}).requires_grad_();
  SGD sgd({p});
  EMBER_EXPECT_THROW_MSG(ReduceLROnPlateau(sgd, {.factor = 1.0}),
                         "ReduceLROnPlateau: factor must be in [0, 1), got 1");
  EMBER_EXPECT_THROW_MSG(ReduceLROnPlateau(sgd, {.patience = -1}), "patience must be >= 0");
  EMBER_EXPECT_THROW_MSG(ReduceLROnPlateau(sgd, {.cooldown = -2}), "cooldown must be >= 0");
  EMBER_EXPECT_THROW_MSG(ReduceLROnPlateau(sgd, {.min_lr = {0.1, 0.2}}),
                         "min_lr has 2 values; give one, or one per parameter group (1)");
  EMBER_EXPECT_THROW_MSG(ReduceLROnPlateau(sgd, {.min_lr = {-0.1}}), "min_lr must be >= 0");
  ReduceLROnPlateau plateau(sgd);
  sgd.add_param_group({{zeros({1}).requires_grad_()}, {}});
  EMBER_EXPECT_THROW_MSG(plateau.step(1.0), "made for 1 parameter groups, the optimizer now has 2");
}

// ---- schedulers ----

struct Recorded {
  std::vector<double> lr, lr1, momentum;  // lr1: the second parameter group's, if any
};

template <class Make>
Recorded run_schedule(Optimizer& opt, int steps, Make make) {
  auto sched = make(opt);
  Recorded r;
  for (int i = 0;; ++i) {
    r.lr.push_back(opt.lr(0));
    if (opt.num_param_groups() > 1) r.lr1.push_back(opt.lr(1));
    r.momentum.push_back(opt.momentum(0));
    if (i == steps) break;
    opt.step();
    sched->step();
  }
  EXPECT_EQ(sched->last_epoch(), steps);
  std::vector<double> lrs;
  for (size_t g = 0; g < opt.num_param_groups(); ++g) lrs.push_back(opt.lr(g));
  EXPECT_EQ(sched->get_last_lr(), lrs);
  return r;
}

// Compares a schedule with the fixture's: SGD (lr 0.5, momentum 0.9) or Adam (lr 0.5), and a second
// SGD group with lr 0.04 when the fixture has "lr1".
template <class Make>
void expect_schedule(const std::string& name, Make make, bool adam = false) {
  SCOPED_TRACE(name);
  const json& f = fixtures()["schedulers"][name];
  ASSERT_TRUE(f.contains("lr")) << "no fixture";
  Tensor p = zeros({1}).requires_grad_(), q = zeros({1}).requires_grad_();
  std::unique_ptr<Optimizer> opt;
  if (adam) {
    opt = std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions{0.5});
  } else if (f.contains("lr1")) {
    opt = std::make_unique<SGD>(
        std::vector<ParamGroup<SGDOptions>>{{{p}, SGDOptions{0.5, 0.9}}, {{q}, SGDOptions{0.04, 0.9}}});
  } else {
    opt = std::make_unique<SGD>(std::vector<Tensor>{p}, SGDOptions{0.5, 0.9});
  }
  const int steps = static_cast<int>(f["lr"].size()) - 1;
  Recorded r = run_schedule(*opt, steps, make);
  for (int i = 0; i <= steps; ++i) {
    EXPECT_NEAR(r.lr[i], f["lr"][i].get<double>(), 1e-12) << "lr after step " << i;
    if (f.contains("lr1")) EXPECT_NEAR(r.lr1[i], f["lr1"][i].get<double>(), 1e-12) << "group 1 lr " << i;
    if (f.contains("momentum"))
      EXPECT_NEAR(r.momentum[i], f["momentum"][i].get<double>(), 1e-12) << "momentum " << i;
  }
}

TEST(Scheduler, SchedulesMatchPyTorch) {
  expect_schedule("step_lr", [](Optimizer& o) { return std::make_unique<StepLR>(o, 3, 0.5); });
  expect_schedule("multistep_lr", [](Optimizer& o) {
    return std::make_unique<MultiStepLR>(o, std::vector<int64_t>{9, 2, 5, 5}, 0.1);
  });
  expect_schedule("exponential_lr", [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.8); });
  expect_schedule("linear_lr", [](Optimizer& o) { return std::make_unique<LinearLR>(o, 0.2, 0.9, 4); });
  expect_schedule("cosine_lr", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 8, 0.01); });
  expect_schedule("warmup_cosine",
                  [](Optimizer& o) { return std::make_unique<LinearWarmupCosineLR>(o, 3, 10, 0.02, 0.25); });
  expect_schedule("sequential_lr", [](Optimizer& o) {
    std::vector<std::unique_ptr<LRScheduler>> parts;
    parts.push_back(std::make_unique<LinearLR>(o, 0.25, 1.0, 3));
    parts.push_back(std::make_unique<ExponentialLR>(o, 0.8));
    parts.push_back(std::make_unique<MultiStepLR>(o, std::vector<int64_t>{2, 3}, 0.5));
    return std::make_unique<SequentialLR>(o, std::move(parts), std::vector<int64_t>{3, 6});
  });
  expect_schedule("onecycle_cos", [](Optimizer& o) { return std::make_unique<OneCycleLR>(o, 1.0, 10); });
  expect_schedule(
      "onecycle_linear_adam",
      [](Optimizer& o) {
        return std::make_unique<OneCycleLR>(o, 0.2, 9, 0.4, AnnealStrategy::linear, true, 0.8, 0.9, 10.0,
                                            100.0);
      },
      /*adam=*/true);
  expect_schedule("onecycle_three_phase", [](Optimizer& o) {
    return std::make_unique<OneCycleLR>(o, 0.4, 12, 0.25, AnnealStrategy::cos, false, 0.85, 0.95, 25.0, 1e4,
                                        true);
  });
}

TEST(Scheduler, MoreSchedulesMatchPyTorch) {
  using Lambda = LambdaLR::Lambda;
  expect_schedule("lambda_lr", [](Optimizer& o) {
    return std::make_unique<LambdaLR>(o, [](int64_t e) { return std::pow(0.9, e) + 0.1 * (e % 3); });
  });
  expect_schedule("lambda_lr_groups", [](Optimizer& o) {
    return std::make_unique<LambdaLR>(o, std::vector<Lambda>{[](int64_t e) { return 1.0 / (e + 1); },
                                                             [](int64_t e) { return std::pow(0.95, e); }});
  });
  expect_schedule("multiplicative_lr", [](Optimizer& o) {
    return std::make_unique<MultiplicativeLR>(o, [](int64_t e) { return e % 2 ? 0.9 : 1.05; });
  });
  expect_schedule("multiplicative_lr_groups", [](Optimizer& o) {
    return std::make_unique<MultiplicativeLR>(
        o, std::vector<Lambda>{[](int64_t) { return 0.8; }, [](int64_t e) { return 1 + 0.1 * e; }});
  });
  expect_schedule("constant_lr", [](Optimizer& o) { return std::make_unique<ConstantLR>(o, 0.5, 4); });
  expect_schedule("constant_lr_default", [](Optimizer& o) { return std::make_unique<ConstantLR>(o); });
  expect_schedule("polynomial_lr_default", [](Optimizer& o) { return std::make_unique<PolynomialLR>(o); });
  expect_schedule("polynomial_lr_power",
                  [](Optimizer& o) { return std::make_unique<PolynomialLR>(o, 7, 2.5); });
  expect_schedule("warm_restarts",
                  [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 4); });
  expect_schedule("warm_restarts_mult2",
                  [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 3, 2, 0.05); });
  expect_schedule("warm_restarts_mult3",
                  [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 2, 3); });
  expect_schedule("cyclic_triangular",
                  [](Optimizer& o) { return std::make_unique<CyclicLR>(o, 0.1, 1.0, 3); });
  expect_schedule("cyclic_triangular2_down", [](Optimizer& o) {
    return std::make_unique<CyclicLR>(o, 0.05, 0.5, 2, 4, CyclicMode::triangular2, 1.0, true, 0.7, 0.95);
  });
  expect_schedule("cyclic_exp_range", [](Optimizer& o) {
    return std::make_unique<CyclicLR>(o, 0.01, 0.2, 3, std::nullopt, CyclicMode::exp_range, 0.9);
  });
  expect_schedule("cyclic_no_momentum", [](Optimizer& o) {
    return std::make_unique<CyclicLR>(o, 0.2, 0.6, 4, 1, CyclicMode::triangular, 1.0,
                                      /*cycle_momentum=*/false);
  });
  expect_schedule("sequential_new_parts", [](Optimizer& o) {
    std::vector<std::unique_ptr<LRScheduler>> parts;
    parts.push_back(std::make_unique<ConstantLR>(o, 0.25, 2));
    parts.push_back(std::make_unique<LambdaLR>(o, [](int64_t e) { return (e + 1) / 3.0; }));
    parts.push_back(std::make_unique<CosineAnnealingWarmRestarts>(o, 2, 2, 0.01));
    parts.push_back(std::make_unique<CyclicLR>(o, 0.1, 0.6, 2, 3));
    return std::make_unique<SequentialLR>(o, std::move(parts), std::vector<int64_t>{3, 6, 13});
  });
  expect_schedule("sequential_multiplicative", [](Optimizer& o) {
    std::vector<std::unique_ptr<LRScheduler>> parts;
    parts.push_back(std::make_unique<MultiplicativeLR>(o, [](int64_t) { return 0.9; }));
    parts.push_back(std::make_unique<MultiplicativeLR>(o, [](int64_t) { return 1.1; }));
    parts.push_back(std::make_unique<PolynomialLR>(o, 4, 2.0));
    parts.push_back(std::make_unique<MultiplicativeLR>(o, [](int64_t) { return 0.5; }));
    return std::make_unique<SequentialLR>(o, std::move(parts), std::vector<int64_t>{3, 5, 9});
  });
}

TEST(Scheduler, ClosedFormsByHand) {
  Tensor p = zeros({1}).requires_grad_();
  SGD sgd({p}, SGDOptions{1.0});
  // Warmup from 0: 0, 1/4, 2/4, 3/4, then cosine over 4 steps down to 0 and staying there.
  LinearWarmupCosineLR s(sgd, 4, 8);
  std::vector<double> expect{
      0, 0.25, 0.5, 0.75, 1.0, (1 + std::cos(M_PI / 4)) / 2, 0.5, (1 + std::cos(3 * M_PI / 4)) / 2, 0, 0};
  for (size_t i = 0; i < expect.size(); ++i) {
    EXPECT_NEAR(sgd.lr(0), expect[i], 1e-15) << "epoch " << i;
    s.step();
  }
}

TEST(Scheduler, StateDictResumes) {
  Tensor p = zeros({1}).requires_grad_();
  SGD a({p}, SGDOptions{0.3});
  CosineAnnealingLR sa(a, 10, 0.01);
  for (int i = 0; i < 4; ++i) sa.step();
  StateDict sd = sa.state_dict();
  EXPECT_EQ(sd.metadata.at("scheduler"), "CosineAnnealingLR");
  EXPECT_EQ(sd.metadata.at("last_epoch"), "4");
  EXPECT_EQ(sd.metadata.at("base_lrs"), "0.3");

  Tensor q = zeros({1}).requires_grad_();
  SGD b({q}, SGDOptions{123.0});
  CosineAnnealingLR sb(b, 10, 0.01);
  sb.load_state_dict(sd);
  EXPECT_EQ(sb.last_epoch(), 4);
  EXPECT_EQ(b.lr(0), a.lr(0));
  for (int i = 0; i < 3; ++i) {
    sa.step();
    sb.step();
    EXPECT_EQ(b.lr(0), a.lr(0));
  }
  StepLR other(b, 2);
  EMBER_EXPECT_THROW_MSG(other.load_state_dict(sd),
                         "StepLR.load_state_dict: the state is for a CosineAnnealingLR scheduler");
}

// Runs `before` steps, saves, loads the state into a fresh scheduler on an optimizer with another
// lr, and checks that both take the same `after` steps (lr and momentum, exactly).
template <class Make>
void expect_resumes(const std::string& what, Make make, int before, int after) {
  SCOPED_TRACE(what);
  Tensor p = zeros({1}).requires_grad_(), q = zeros({1}).requires_grad_();
  SGD a({p}, SGDOptions{0.3, 0.9}), b({q}, SGDOptions{123.0, 0.9});
  auto sa = make(a);
  for (int i = 0; i < before; ++i) sa->step();
  StateDict sd = sa->state_dict();
  EXPECT_EQ(sd.metadata.at("scheduler"), sa->name());
  auto sb = make(b);
  sb->load_state_dict(sd);
  EXPECT_EQ(sb->last_epoch(), before);
  EXPECT_EQ(sb->base_lrs(), sa->base_lrs());
  for (int i = 0; i <= after; ++i) {
    EXPECT_EQ(b.lr(0), a.lr(0)) << "step " << before + i;
    EXPECT_EQ(b.momentum(0), a.momentum(0)) << "step " << before + i;
    sa->step();
    sb->step();
  }
}

TEST(Scheduler, MoreStateDictsResume) {
  // The functions are not in the state: the loading scheduler uses its own.
  expect_resumes(
      "LambdaLR",
      [](Optimizer& o) { return std::make_unique<LambdaLR>(o, [](int64_t e) { return 1.0 / (1 + e); }); }, 3,
      4);
  expect_resumes(
      "MultiplicativeLR",
      [](Optimizer& o) {
        return std::make_unique<MultiplicativeLR>(o, [](int64_t e) { return e % 2 ? 0.9 : 1.2; });
      },
      5, 4);
  expect_resumes(
      "ConstantLR", [](Optimizer& o) { return std::make_unique<ConstantLR>(o, 0.2, 4); }, 2, 4);
  expect_resumes(
      "PolynomialLR", [](Optimizer& o) { return std::make_unique<PolynomialLR>(o, 6, 1.5); }, 3, 5);
  expect_resumes(
      "CosineAnnealingWarmRestarts",
      [](Optimizer& o) { return std::make_unique<CosineAnnealingWarmRestarts>(o, 2, 3, 0.01); }, 6, 10);
  // The momentum is set from the loaded epoch (it is not max_momentum there).
  expect_resumes(
      "CyclicLR",
      [](Optimizer& o) { return std::make_unique<CyclicLR>(o, 0.1, 0.5, 3, 2, CyclicMode::triangular2); }, 7,
      8);
  // A MultiplicativeLR part continues from the loaded base rates, not the fresh optimizer's.
  expect_resumes(
      "SequentialLR",
      [](Optimizer& o) {
        std::vector<std::unique_ptr<LRScheduler>> parts;
        parts.push_back(std::make_unique<ConstantLR>(o, 0.5, 2));
        parts.push_back(std::make_unique<MultiplicativeLR>(o, [](int64_t) { return 0.8; }));
        return std::make_unique<SequentialLR>(o, std::move(parts), std::vector<int64_t>{3});
      },
      4, 4);
}

TEST(Scheduler, MoreClosedFormsByHand) {
  Tensor p = zeros({1}).requires_grad_();
  SGD sgd({p}, SGDOptions{1.0, 0.9});
  // CyclicLR's defaults: 2000 steps up, as many down, momentum from 0.9 down to 0.8.
  CyclicLR cyclic(sgd, 0.1, 1.1);
  EXPECT_EQ(sgd.lr(0), 0.1);
  EXPECT_EQ(sgd.momentum(0), 0.9);
  StateDict sd = cyclic.state_dict();
  sd.metadata["last_epoch"] = "999";
  cyclic.load_state_dict(sd);
  cyclic.step();  // halfway up
  EXPECT_NEAR(sgd.lr(0), 0.6, 1e-15);
  EXPECT_NEAR(sgd.momentum(0), 0.85, 1e-15);
  EXPECT_NEAR(cyclic.momentum_at(2000), 0.8, 1e-15);
  EXPECT_NEAR(cyclic.momentum_at(3000), 0.85, 1e-15);
  // Adam's beta1 cycles as its momentum.
  Adam adam({p}, AdamOptions{0.5});
  CyclicLR on_adam(adam, 0.1, 0.2, 2, 2, CyclicMode::triangular, 1.0, true, 0.5, 0.7);
  on_adam.step();
  EXPECT_NEAR(adam.momentum(0), 0.6, 1e-15);
  EXPECT_NEAR(adam.lr(0), 0.15, 1e-15);

  // Warm restarts far out, where the next cycle (T_mult^3 = 1e27 epochs) does not fit an int64:
  // cycles of 1, 1e9 and 1e18 epochs end at 1000000001000000001.
  Tensor q = zeros({1}).requires_grad_();
  SGD other({q}, SGDOptions{1.0});
  CosineAnnealingWarmRestarts sgdr(other, 1, 1000000000);
  StateDict far = sgdr.state_dict();
  far.metadata["last_epoch"] = "1000000001000000000";
  sgdr.load_state_dict(far);
  sgdr.step();  // T_cur = 0 of the 1e27-epoch cycle
  EXPECT_EQ(other.lr(0), 1.0);
  sgdr.step();
  EXPECT_NEAR(other.lr(0), (1 + std::cos(M_PI * 1e-27)) / 2, 1e-15);
  far.metadata["last_epoch"] = "999999999";  // then the last epoch of the 1e9 cycle and a restart
  sgdr.load_state_dict(far);
  sgdr.step();
  EXPECT_NEAR(other.lr(0), 0.0, 1e-15);
  sgdr.step();
  EXPECT_EQ(other.lr(0), 1.0);
}

TEST(Scheduler, Errors) {
  Tensor p = zeros({1}).requires_grad_();
  SGD sgd({p}, SGDOptions{0.1});
  EMBER_EXPECT_THROW_MSG(StepLR(sgd, 0), "step_size must be positive");
  EMBER_EXPECT_THROW_MSG(CosineAnnealingLR(sgd, 0), "T_max must be positive");
  EMBER_EXPECT_THROW_MSG(LinearLR(sgd, 0.0), "LinearLR: start_factor must be in (0, 1], got 0");
  EMBER_EXPECT_THROW_MSG(LinearLR(sgd, 0.5, 1.5), "LinearLR: end_factor must be in [0, 1], got 1.5");
  EMBER_EXPECT_THROW_MSG(LinearLR(sgd, 0.5, 1.0, 0), "LinearLR: total_iters must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(LinearWarmupCosineLR(sgd, 5, 5), "need 0 <= warmup_steps < total_steps");
  auto parts = [&](Optimizer& o) {
    std::vector<std::unique_ptr<LRScheduler>> p;
    p.push_back(std::make_unique<StepLR>(sgd, 2));
    p.push_back(std::make_unique<StepLR>(o, 2));
    return p;
  };
  EMBER_EXPECT_THROW_MSG(SequentialLR(sgd, parts(sgd), {}),
                         "SequentialLR: 2 schedulers need 1 milestones, got 0");
  EMBER_EXPECT_THROW_MSG(SequentialLR(sgd, parts(sgd), {0}),
                         "SequentialLR: milestones must be positive and increasing, got 0 after 0");
  SGD other({p}, SGDOptions{0.1});
  EMBER_EXPECT_THROW_MSG(SequentialLR(sgd, parts(other), {2}),
                         "SequentialLR: scheduler 1 (StepLR) drives another optimizer");
  EMBER_EXPECT_THROW_MSG(OneCycleLR(sgd, 1.0, 10, 0.1), "leaves a phase with no steps");
  OneCycleLR one(sgd, 1.0, 3);
  for (int i = 0; i < 3; ++i) one.step();
  EMBER_EXPECT_THROW_MSG(one.step(), "OneCycleLR: tried to step 4 times, but total_steps is 3");
  EXPECT_EQ(one.last_epoch(), 3);  // the failed step changed nothing
  // Loading a state the schedule cannot be in changes nothing either (it used to set the lr first).
  Tensor q = zeros({1}).requires_grad_();
  SGD fresh({q}, SGDOptions{0.1});
  OneCycleLR again(fresh, 1.0, 3);
  const double lr = fresh.lr(0);
  StateDict past_end = one.state_dict();
  past_end.metadata["last_epoch"] = "1000";
  past_end.metadata["last_lrs"] = "0.5";
  EMBER_EXPECT_THROW_MSG(again.load_state_dict(past_end), "OneCycleLR");
  EXPECT_EQ(fresh.lr(0), lr);
  EXPECT_EQ(again.last_epoch(), 0);
  for (const char* epoch : {"1e300", "inf", "nan", "-1", "9223372036854775807"}) {
    StateDict bad = one.state_dict();
    bad.metadata["last_epoch"] = epoch;
    EMBER_EXPECT_THROW_MSG(again.load_state_dict(bad), "is not a count");
  }
}

TEST(Scheduler, MoreErrors) {
  Tensor p = zeros({1}).requires_grad_();
  SGD sgd({p}, SGDOptions{0.1, 0.9});
  using Lambda = LambdaLR::Lambda;
  auto half = [](int64_t) { return 0.5; };
  EMBER_EXPECT_THROW_MSG(LambdaLR(sgd, std::vector<Lambda>{half, half}),
                         "LambdaLR: expected 1 lr_lambdas (one per parameter group), got 2");
  EMBER_EXPECT_THROW_MSG(LambdaLR(sgd, Lambda{}), "LambdaLR: lr_lambda 0 is empty");
  EMBER_EXPECT_THROW_MSG(MultiplicativeLR(sgd, std::vector<Lambda>{}),
                         "MultiplicativeLR: expected 1 lr_lambdas (one per parameter group), got 0");
  EMBER_EXPECT_THROW_MSG(MultiplicativeLR(sgd, Lambda{}), "MultiplicativeLR: lr_lambda 0 is empty");
  EMBER_EXPECT_THROW_MSG(ConstantLR(sgd, 1.5), "ConstantLR: factor must be in [0, 1], got 1.5");
  EMBER_EXPECT_THROW_MSG(ConstantLR(sgd, 0.5, 0), "ConstantLR: total_iters must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(PolynomialLR(sgd, 0), "PolynomialLR: total_iters must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(PolynomialLR(sgd, 5, -1.0), "PolynomialLR: power must be >= 0, got -1");
  EMBER_EXPECT_THROW_MSG(CosineAnnealingWarmRestarts(sgd, 0),
                         "CosineAnnealingWarmRestarts: T_0 must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(CosineAnnealingWarmRestarts(sgd, 2, 0),
                         "CosineAnnealingWarmRestarts: T_mult must be >= 1, got 0");
  EMBER_EXPECT_THROW_MSG(CyclicLR(sgd, 0.1, 1.0, 0), "CyclicLR: step_size_up must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(CyclicLR(sgd, 0.1, 1.0, 2, -1), "CyclicLR: step_size_down must be >= 0, got -1");
  EMBER_EXPECT_THROW_MSG(CyclicLR(sgd, -0.1, 1.0), "CyclicLR: base_lr (-0.1) and max_lr (1) must be >= 0");
  EXPECT_EQ(sgd.lr(0), 0.1);

  // Cycling momentum needs an optimizer that has one; the failed constructor leaves the rates alone.
  Adagrad adagrad({p}, AdagradOptions{0.3});
  EMBER_EXPECT_THROW_MSG(CyclicLR(adagrad, 0.1, 1.0, 2), "Adagrad has no momentum to set");
  EXPECT_EQ(adagrad.lr(0), 0.3);
  CyclicLR lr_only(adagrad, 0.1, 1.0, 2, std::nullopt, CyclicMode::triangular, 1.0, /*cycle_momentum=*/false);
  lr_only.step();
  EXPECT_NEAR(adagrad.lr(0), 0.55, 1e-15);

  // A function that throws stops the step before anything changes.
  LambdaLR failing(sgd, [](int64_t e) {
    if (e == 2) fail("no factor for epoch {}", e);
    return 1.0;
  });
  failing.step();
  EMBER_EXPECT_THROW_MSG(failing.step(), "no factor for epoch 2");
  EXPECT_EQ(failing.last_epoch(), 1);
  EXPECT_EQ(sgd.lr(0), 0.1);
}

// ---- gradient clipping ----

TEST(ClipGrad, NormAndValue) {
  Tensor a = zeros({2}).requires_grad_(), b = zeros({1}).requires_grad_(), none = zeros({1}).requires_grad_();
  auto set = [&] {
    a.set_grad(tensor<float>({3, -4}));
    b.set_grad(tensor<float>({12}));
  };
  set();
  // joint L2 norm sqrt(9 + 16 + 144) = 13; scaled by 6.5 / (13 + 1e-6)
  EXPECT_NEAR(clip_grad_norm_({a, b, none}, 6.5), 13.0, 1e-6);
  const double c = 6.5 / (13.0 + 1e-6);
  EXPECT_TRUE(tensors_close(a.grad(), tensor<double>({3 * c, -4 * c}), 1e-6));
  EXPECT_TRUE(tensors_close(b.grad(), tensor<double>({12 * c}), 1e-6));
  set();
  EXPECT_NEAR(clip_grad_norm_({a, b}, 100.0), 13.0, 1e-6);  // below the limit: unchanged
  EXPECT_TRUE(tensors_close(b.grad(), tensor<double>({12}), 0));
  set();
  EXPECT_NEAR(clip_grad_norm_({a, b}, 6.0, INFINITY), 12.0, 1e-6);
  EXPECT_TRUE(tensors_close(b.grad(), tensor<double>({6}), 1e-6));
  set();
  EXPECT_NEAR(clip_grad_norm_({a, b}, 100.0, 1.0), 19.0, 1e-6);
  EXPECT_EQ(clip_grad_norm_({none}, 1.0), 0.0);
  a.set_grad(tensor<float>({NAN, 1}));
  EMBER_EXPECT_THROW_MSG(clip_grad_norm_({a}, 1.0, 2.0, true), "is non-finite");
  EMBER_EXPECT_THROW_MSG(clip_grad_norm_({a}, 1.0, 0.5), "norm_type must be >= 1");

  set();
  clip_grad_value_({a, b, none}, 3.5);
  EXPECT_TRUE(tensors_close(a.grad(), tensor<double>({3, -3.5}), 0));
  EXPECT_TRUE(tensors_close(b.grad(), tensor<double>({3.5}), 0));
  EMBER_EXPECT_THROW_MSG(clip_grad_value_({a}, -1.0), "clip_value must be non-negative");
}

// A NaN in any gradient makes the norm NaN; without error_if_nonfinite every gradient is then
// scaled by NaN, as torch.nn.utils.clip_grad_norm_ does (its clamp(max = 1) keeps the NaN). An
// infinite norm scales by 0 (inf * 0 = NaN for the infinite element itself).
TEST(ClipGrad, NonFiniteNormScalesByNaN) {
  Tensor a = zeros({2}).requires_grad_(), b = zeros({1}).requires_grad_();
  a.set_grad(tensor<float>({NAN, 1}));
  b.set_grad(tensor<float>({12}));
  EXPECT_TRUE(std::isnan(clip_grad_norm_({a, b}, 0.5)));
  for (const Tensor& g : {a.grad(), b.grad()})
    for (float v : g.to_vector<float>()) EXPECT_TRUE(std::isnan(v)) << v;

  a.set_grad(tensor<float>({INFINITY, 1}));
  b.set_grad(tensor<float>({12}));
  EXPECT_EQ(clip_grad_norm_({a, b}, 0.5), INFINITY);
  std::vector<float> ga = a.grad().to_vector<float>();
  EXPECT_TRUE(std::isnan(ga[0]));
  EXPECT_EQ(ga[1], 0.0f);
  EXPECT_EQ(b.grad().to_vector<float>()[0], 0.0f);
}

}  // namespace
}  // namespace ember::testing
