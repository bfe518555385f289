// nn::Module: registration, dotted names, state dicts, train/eval, in-place conversion, zero_grad,
// printing, and the training-step example compiled as written.
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/optim.h>

#include "harness.h"

namespace ember::testing {
namespace {

// The example from the issue, verbatim.
// A model with nesting, a Sequential, a buffer and a tied parameter.
struct Tower : nn::Module {
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> head;
  Tensor scale, steps;
  Tower() {
    features = register_module(
        "features",
        std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::ReLU>(),
                                         std::make_shared<nn::Linear>(4, 4, false)));
    head = register_module("head", std::make_shared<nn::Linear>(4, 2));
    scale = register_parameter("scale", ones({2}));
    steps = register_buffer("steps", zeros({}, DType::int64));
  }
  Tensor forward(const Tensor& x) override { return head->forward(features->forward(x)) * scale; }
};

std::vector<std::string> names(const nn::NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}

TEST(Module, NamedParametersUseDottedPyTorchNames) {
  Tower t;
  EXPECT_EQ(names(t.named_parameters()),
            (std::vector<std::string>{"scale", "features.0.weight", "features.0.bias", "features.2.weight",
                                      "head.weight", "head.bias"}));
  EXPECT_EQ(names(t.named_parameters(/*recurse=*/false)), std::vector<std::string>{"scale"});
  EXPECT_EQ(names(t.named_buffers()), std::vector<std::string>{"steps"});
  EXPECT_EQ(t.parameters().size(), 6u);
  EXPECT_TRUE(t.parameters()[1].is_same(t.features->at<nn::Linear>(0)->weight));
  std::vector<Shape> shapes;
  for (const Tensor& p : t.parameters()) shapes.push_back(p.shape());
  EXPECT_EQ(shapes, (std::vector<Shape>{{2}, {4, 3}, {4}, {4, 4}, {2, 4}, {2}}));
  for (const Tensor& p : t.parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_TRUE(p.is_leaf());
  }
  EXPECT_FALSE(t.named_buffers()[0].second.requires_grad());
  EXPECT_EQ(t.children().size(), 2u);
}

TEST(Module, SharedParameterIsListedOnce) {
  nn::Module holder;
  auto a = holder.register_module("a", std::make_shared<nn::Linear>(2, 2));
  auto tied = holder.register_module("tied", std::make_shared<nn::Module>());
  tied->register_parameter("weight", a->weight);  // tied weights, as language models tie embeddings
  EXPECT_EQ(names(holder.named_parameters()), (std::vector<std::string>{"a.weight", "a.bias"}));
  EXPECT_EQ(names(tied->named_parameters()), std::vector<std::string>{"weight"});
  // The state dict lists it under each name, as PyTorch's does (torch 1.13: a.weight, a.bias,
  // tied.weight), so that PyTorch loads ember's strictly and the other way round.
  std::map<std::string, Tensor> state = holder.state_dict();
  std::vector<std::string> keys;
  for (const auto& [k, v] : state) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"a.bias", "a.weight", "tied.weight"}));
  EXPECT_TRUE(state["tied.weight"].is_same(state["a.weight"]) ||
              state["tied.weight"].data_ptr<float>() == a->weight.data_ptr<float>());
  std::map<std::string, Tensor> loaded = {
      {"a.weight", ones({2, 2})}, {"a.bias", zeros({2})}, {"tied.weight", ones({2, 2})}};
  holder.load_state_dict(loaded);  // strict: every name is expected
  EXPECT_EQ(a->weight.to_vector<float>(), (std::vector<float>{1, 1, 1, 1}));
  loaded.erase("tied.weight");
  EMBER_EXPECT_THROW_MSG(holder.load_state_dict(loaded), "missing keys [tied.weight]");
}

TEST(Module, RegistrationErrors) {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  EMBER_EXPECT_THROW_MSG(m.register_parameter("w", zeros({2})), "already taken");
  EMBER_EXPECT_THROW_MSG(m.register_buffer("w", zeros({2})), "already taken");
  EMBER_EXPECT_THROW_MSG(m.register_parameter("a.b", zeros({2})), "must not contain '.'");
  EMBER_EXPECT_THROW_MSG(m.register_parameter("", zeros({2})), "must not be empty");
  EMBER_EXPECT_THROW_MSG(m.register_parameter("u", Tensor()), "undefined");
  EMBER_EXPECT_THROW_MSG(m.register_parameter("i", zeros({2}, DType::int64)), "floating");
  Tensor leaf = ones({2}, TensorOptions().requires_grad(true));
  EMBER_EXPECT_THROW_MSG(m.register_parameter("nl", leaf * 2.0), "leaf");
  EMBER_EXPECT_THROW_MSG(m.register_module("c", std::shared_ptr<nn::Linear>()), "null");
  EMBER_EXPECT_THROW_MSG(m.forward(zeros({1})), "Module: this module has no single-tensor forward");
}

TEST(Module, StateDictRoundTrip) {
  manual_seed(1);
  Tower a, b;
  {
    NoGradGuard g;
    a.steps.fill_(7);
  }
  EXPECT_FALSE(allclose(a.head->weight, b.head->weight));
  auto sd = a.state_dict();
  EXPECT_EQ(sd.size(), 7u);  // six parameters and one buffer
  EXPECT_TRUE(sd.count("features.2.weight"));
  EXPECT_FALSE(sd.at("head.weight").requires_grad());  // detached, sharing memory
  b.load_state_dict(sd);
  for (const auto& [n, t] : a.state_dict()) EXPECT_TRUE(equal(t, b.state_dict().at(n))) << n;
  EXPECT_EQ(b.steps.item<int64_t>(), 7);
  // Loading copies: the two models stay independent, and b's tensors stay leaves.
  EXPECT_FALSE(b.head->weight.is_same(a.head->weight));
  EXPECT_TRUE(b.head->weight.is_leaf() && b.head->weight.requires_grad());
  Tensor x = R({2, 3}, -1, 1, 3, false).to(DType::float32);
  EXPECT_TRUE(allclose(a.forward(x), b.forward(x)));
}

TEST(Module, LoadStateDictChecks) {
  Tower t;
  auto sd = t.state_dict();
  auto missing = sd;
  missing.erase("head.bias");
  EMBER_EXPECT_THROW_MSG(t.load_state_dict(missing), "missing keys [head.bias]; unexpected keys []");
  auto extra = sd;
  extra["head.extra"] = zeros({1});
  EMBER_EXPECT_THROW_MSG(t.load_state_dict(extra), "unexpected keys [head.extra]");
  // Non-strict ignores both, and still loads what matches.
  missing["scale"] = full({2}, 3.0);
  t.load_state_dict(missing, /*strict=*/false);
  EXPECT_TRUE(allclose(t.scale, full({2}, 3.0)));
  auto wrong = sd;
  wrong["head.weight"] = zeros({4, 2});
  EMBER_EXPECT_THROW_MSG(t.load_state_dict(wrong),
                         "'head.weight' has shape [4,2] in the state dict but [2,4]");
  // A failed load changes nothing.
  auto partial = t.state_dict();
  for (auto& [n, v] : partial) partial[n] = zeros_like(v);
  partial["head.weight"] = zeros({3, 3});
  Tensor before = t.scale.clone();
  EMBER_EXPECT_THROW_MSG(t.load_state_dict(partial), "head.weight");
  EXPECT_TRUE(equal(t.scale, before));
}

TEST(Module, TrainEvalIsRecursive) {
  Tower t;
  EXPECT_TRUE(t.is_training());
  t.eval();
  EXPECT_FALSE(t.is_training());
  EXPECT_FALSE(t.features->is_training());
  EXPECT_FALSE(t.features->at<nn::ReLU>(1)->is_training());
  t.train();
  EXPECT_TRUE(t.features->at<nn::Linear>(2)->is_training());
}

TEST(Module, ToDTypeConvertsInPlaceAndKeepsLeaves) {
  Tower t;
  Tensor w = t.head->weight;  // a handle held elsewhere (as an optimizer holds it)
  std::vector<double> values = w.to_vector<double>();
  t.to(DType::float64);
  EXPECT_EQ(w.dtype(), DType::float64);  // the same tensor changed
  EXPECT_EQ(t.head->weight.dtype(), DType::float64);
  EXPECT_EQ(w.to_vector<double>(), values);
  EXPECT_TRUE(w.is_leaf() && w.requires_grad());
  EXPECT_EQ(t.steps.dtype(), DType::int64);  // integer buffers keep their dtype
  // Gradients flow into the converted parameters.
  t.forward(ones({1, 3}, DType::float64)).sum().backward();
  EXPECT_EQ(w.grad().dtype(), DType::float64);
  EXPECT_TRUE(w.grad().defined());
  EMBER_EXPECT_THROW_MSG(t.to(DType::int32), "floating dtypes only");
  t.to(Device::cpu());  // a no-op on the CPU
  EXPECT_TRUE(w.grad().defined());
}

TEST(Module, ZeroGradDropsGradients) {
  Tower t;
  t.forward(ones({2, 3})).sum().backward();
  for (const Tensor& p : t.parameters()) EXPECT_TRUE(p.grad().defined());
  t.zero_grad();
  for (const Tensor& p : t.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, PrintsLikePyTorch) {
  Tower t;
  EXPECT_EQ(t.str(),
            "Tower(\n"
            "  (features): Sequential(\n"
            "    (0): Linear(in_features=3, out_features=4, bias=true)\n"
            "    (1): ReLU()\n"
            "    (2): Linear(in_features=4, out_features=4, bias=false)\n"
            "  )\n"
            "  (head): Linear(in_features=4, out_features=2, bias=true)\n"
            ")");
  EXPECT_EQ(nn::Conv2d(1, 8, {3, 5}, 2, 1).str(), "Conv2d(1, 8, kernel_size=(3, 5), stride=2, padding=1)");
}

TEST(Module, SequentialAndModuleList) {
  auto seq = std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Tanh>()});
  EXPECT_EQ(seq->size(), 2u);
  Tensor x = T({0.5, -1.0, 2.0, 0.0}, {2, 1, 2}, false);
  EXPECT_TRUE(tensors_close(seq->forward(x), tanh(x).view({2, 2}), 1e-12));
  EMBER_EXPECT_THROW_MSG(seq->at<nn::Linear>(0), "module 0 is a Flatten");
  EMBER_EXPECT_THROW_MSG((*seq)[2], "index 2 out of range for 2 modules");
  // An empty Sequential is the identity, as in PyTorch.
  EXPECT_TRUE(nn::Sequential().forward(x).is_same(x));

  nn::ModuleList list;
  list.push_back(std::make_shared<nn::Linear>(2, 3));
  list.push_back(std::make_shared<nn::Linear>(3, 1));
  EXPECT_EQ(names(list.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"}));
  int count = 0;
  for (const auto& m : list) count += m->name() == "Linear";
  EXPECT_EQ(count, 2);
  EMBER_EXPECT_THROW_MSG(list.forward(x), "ModuleList: this module has no single-tensor forward");
}

TEST(Module, ModuleDictAndParameterContainers) {
  struct Heads : nn::Module {
    std::shared_ptr<nn::ModuleDict> heads = register_module("heads", std::make_shared<nn::ModuleDict>());
    std::shared_ptr<nn::ParameterList> scales =
        register_module("scales", std::make_shared<nn::ParameterList>());
    std::shared_ptr<nn::ParameterDict> biases =
        register_module("biases", std::make_shared<nn::ParameterDict>());
  } model;
  model.heads->insert("cls", std::make_shared<nn::Linear>(4, 3));
  auto box = model.heads->insert("box", std::make_shared<nn::Linear>(4, 2, false));
  model.scales->append(ones({3}));
  model.scales->append(full({2}, 2.0));
  Tensor b = model.biases->insert("cls", zeros({3}));
  // PyTorch's names: the dict's keys and the list's indices
  EXPECT_EQ(names(model.named_parameters()),
            (std::vector<std::string>{"heads.cls.weight", "heads.cls.bias", "heads.box.weight", "scales.0",
                                      "scales.1", "biases.cls"}));
  EXPECT_EQ(model.heads->keys(), (std::vector<std::string>{"cls", "box"}));
  EXPECT_TRUE(model.heads->contains("box"));
  EXPECT_FALSE(model.heads->contains("seg"));
  EXPECT_EQ(model.heads->at<nn::Linear>("box"), box);
  EXPECT_EQ(model.heads->size(), 2u);
  std::vector<std::string> seen;
  for (const auto& [key, m] : *model.heads) seen.push_back(key + ":" + m->name());
  EXPECT_EQ(seen, (std::vector<std::string>{"cls:Linear", "box:Linear"}));
  // registered parameters are leaves that require grad, and the containers hand out the same tensors
  EXPECT_TRUE((*model.scales)[1].requires_grad());
  EXPECT_TRUE((*model.biases)["cls"].is_same(b));
  EXPECT_EQ(model.scales->size(), 2u);
  EXPECT_EQ(model.biases->keys(), (std::vector<std::string>{"cls"}));
  // a state dict round trip by those names
  std::map<std::string, Tensor> state = model.state_dict();
  state["scales.1"] = full({2}, 5.0);
  model.load_state_dict(state);
  EXPECT_TRUE(equal((*model.scales)[1], full({2}, 5.0)));

  EMBER_EXPECT_THROW_MSG((*model.heads)["seg"], "ModuleDict: no entry 'seg' (keys: [cls, box])");
  EMBER_EXPECT_THROW_MSG(model.heads->at<nn::ReLU>("cls"),
                         "ModuleDict: module 'cls' is a Linear, not the requested type");
  EMBER_EXPECT_THROW_MSG(model.heads->insert("cls", std::make_shared<nn::ReLU>()),
                         "the name is already taken");
  EMBER_EXPECT_THROW_MSG(model.heads->insert("a.b", std::make_shared<nn::ReLU>()), "must not contain '.'");
  EMBER_EXPECT_THROW_MSG((*model.scales)[2], "ParameterList: index 2 out of range for 2 parameters");
  EMBER_EXPECT_THROW_MSG((*model.biases)["box"], "ParameterDict: no entry 'box' (keys: [cls])");
  EMBER_EXPECT_THROW_MSG(model.biases->insert("cls", zeros({1})), "the name is already taken");
  EXPECT_EQ(model.heads->size(), 2u);  // a failed insert adds nothing
  EXPECT_EQ(nn::ModuleDict({{"relu", std::make_shared<nn::ReLU>()}}).keys(),
            (std::vector<std::string>{"relu"}));
  EXPECT_EQ(nn::ParameterList({zeros({1}), zeros({2})}).size(), 2u);
}

}  // namespace
}  // namespace ember::testing
