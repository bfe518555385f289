// FCN (ECN + LCN with Self-Mask, fcn_tribce.md): worked example T2, the embedding layout (T3),
// the spec's parameter counts, a cross-check against the reference PyTorch code, float64
// gradchecks, a short Tri-BCE training run and the argument errors.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "ember/losses/tri_bce.h"
#include "ember/nn/fcn.h"
#include "ember/optim.h"
#include "harness.h"
#include "nn_test_util.h"

namespace ember::testing {
namespace {

using nn::CrossLayer;
using nn::ExponentialCrossNetwork;
using nn::FCN;
using nn::FCNOptions;
using nn::LinearCrossNetwork;

int64_t count(const nn::Module& m, bool embedding) {
  int64_t n = 0;
  for (const auto& [name, p] : m.named_parameters())
    if ((name.rfind("embedding_layer.", 0) == 0) == embedding) n += p.numel();
  return n;
}

// ---- T2: D = 4, the same W for both layers, b = [0.1, 0.2, 0.3, 0.4], LN gamma 1, beta 0 ----

const std::vector<double> kW = {0.1, 0.2, 0, -0.1, 0, -0.3, 0.2, 0.1};
const std::vector<double> kB = {0.1, 0.2, 0.3, 0.4};

void set_t2(CrossLayer& layer) {
  set_values(layer.w->weight, kW);
  set_values(layer.b, kB);
}

void set_t2(nn::CrossNetwork& tower) {
  tower.to(kFloat64);
  for (auto& layer : tower.layers) set_t2(*layer);
  set_values(tower.head->weight, {0.5, -0.5, 0.25, 1});
  set_values(tower.head->bias, {0.1});
}

TEST(FCN, WorkedExampleT2Layer1) {
  CrossLayer layer(4);
  layer.to(kFloat64);
  set_t2(layer);
  Tensor x1 = T({1, 2, -1, 0.5}, {1, 1, 4}, false);
  Tensor h = layer.cross_vector(x1);
  Tensor c = h.narrow(-1, 0, 2);
  EXPECT_TRUE(tensors_close(c, tensor<double>({0.45, -0.75}, {1, 1, 2}), 1e-12));
  EXPECT_TRUE(tensors_close(layer.layer_norm->forward(c),
                            tensor<double>({0.99998611, -0.99998611}, {1, 1, 2}), 1e-8));
  EXPECT_TRUE(
      tensors_close(relu(layer.layer_norm->forward(c)), tensor<double>({0.99998611, 0}, {1, 1, 2}), 1e-8));
  EXPECT_TRUE(tensors_close(h, tensor<double>({0.45, -0.75, 0.44999375, 0}, {1, 1, 4}), 1e-8));
  Tensor x2 = tensor<double>({1.55, 0.9, -1.74999375, 0.7}, {1, 1, 4});
  EXPECT_TRUE(tensors_close(layer.forward(x1), x2, 1e-8));      // ECN: anchor = x_1 = x_l
  EXPECT_TRUE(tensors_close(layer.forward(x1, x1), x2, 1e-8));  // LCN: the same for layer 1
  // Layer 2's projection, from x_2.
  EXPECT_TRUE(tensors_close(layer.cross_vector(x2).narrow(-1, 0, 2),
                            tensor<double>({0.265, -0.549999}, {1, 1, 2}), 1e-6));
}

TEST(FCN, WorkedExampleT2Towers) {
  Tensor x1 = T({1, 2, -1, 0.5}, {1, 1, 4}, false);
  ExponentialCrossNetwork ecn(2, 4);
  LinearCrossNetwork lcn(2, 4);
  set_t2(ecn);
  set_t2(lcn);
  EXPECT_TRUE(tensors_close(ecn.cross(x1),
                            tensor<double>({2.115750, 0.585001, -2.738726, 0.980000}, {1, 1, 4}), 1e-6));
  EXPECT_TRUE(tensors_close(lcn.cross(x1),
                            tensor<double>({1.915000, 0.200002, -2.314986, 0.900000}, {1, 1, 4}), 1e-6));
  Tensor z_d = ecn.forward(x1), z_s = lcn.forward(x1);
  ASSERT_EQ(z_d.shape(), Shape({1}));
  EXPECT_NEAR(z_d.item<double>(), 1.160693, 1e-6);
  EXPECT_NEAR(z_s.item<double>(), 1.278752, 1e-6);
}

// ---- T3: the half-split layout ----

// Table f, row r, column k holds 100 (f + 1) + 10 r + k; row 0 (padding) stays zero.
void set_layout_values(nn::MultiHeadFeatureEmbedding& emb) {
  for (size_t f = 0; f < emb.tables.size(); ++f) {
    const Tensor& w = emb.tables[f]->weight;
    std::vector<double> v;
    for (int64_t r = 0; r < w.size(0); ++r)
      for (int64_t k = 0; k < w.size(1); ++k) v.push_back(r == 0 ? 0.0 : 100.0 * (f + 1) + 10.0 * r + k);
    set_values(w, v);
  }
}

TEST(FCN, EmbeddingLayoutOneHead) {
  nn::MultiHeadFeatureEmbedding emb({4, 3}, 4, 1);
  set_layout_values(emb);
  // e_1 = a = row 3 of table 0 (130..133), e_2 = b = row 1 of table 1 (210..213).
  Tensor x = emb.forward(I({3, 1, 0, 2}, {2, 2}));
  ASSERT_EQ(x.shape(), Shape({2, 1, 8}));
  EXPECT_TRUE(tensors_close(
      x.select(0, 0), tensor<double>({130, 131, 210, 211, 132, 133, 212, 213}, {1, 8}).to(kFloat32), 0));
  // Sample 2: field 1 is padding (zeros), field 2 is row 2 (220..223).
  EXPECT_TRUE(tensors_close(x.select(0, 1),
                            tensor<double>({0, 0, 220, 221, 0, 0, 222, 223}, {1, 8}).to(kFloat32), 0));
}

TEST(FCN, EmbeddingLayoutTwoHeads) {
  nn::MultiHeadFeatureEmbedding emb({4, 3}, 4, 2);
  ASSERT_EQ(emb.tables[0]->weight.size(1), 8);
  set_layout_values(emb);
  Tensor x = emb.forward(I({3, 1}, {1, 2}));
  ASSERT_EQ(x.shape(), Shape({1, 2, 8}));
  // Head 0 uses columns 0-3 of each row, head 1 columns 4-7, each in the T3 layout.
  EXPECT_TRUE(tensors_close(x,
                            tensor<double>({130, 131, 210, 211, 132, 133, 212, 213,  //
                                            134, 135, 214, 215, 136, 137, 216, 217},
                                           {1, 2, 8})
                                .to(kFloat32),
                            0));
}

TEST(FCN, PaddingRowIsZeroAndGetsNoGradient) {
  manual_seed(3);
  FCN model(FCNOptions{.vocab_sizes = {5, 4}, .embedding_dim = 4, .ecn_layers = 1, .lcn_layers = 1});
  const Tensor& w = model.embedding_layer->tables[0]->weight;
  EXPECT_TRUE(tensors_close(w.select(0, 0), zeros({4}), 0));
  auto out = model.forward_all(I({0, 1, 2, 0, 0, 3}, {3, 2}));
  losses::tri_bce(out.logit, out.logit_ecn, out.logit_lcn, tensor<float>({1, 0, 1})).backward();
  EXPECT_TRUE(tensors_close(w.grad().select(0, 0), zeros({4}), 0));
  EXPECT_GT(w.grad().select(0, 2).abs().sum().item<double>(), 0.0);
  for (const auto& [name, p] : model.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
}

// ---- initialisation (FuxiCTR's reset_parameters) ----

TEST(FCN, Initialisation) {
  manual_seed(11);
  FCN model(FCNOptions{.vocab_sizes = {2001, 2001, 2001}});  // d = 16: D = 48, M = 24
  Tensor e = model.embedding_layer->tables[1]->weight;
  EXPECT_TRUE(tensors_close(e.select(0, 0), zeros({16}), 0));
  EXPECT_NEAR(e.narrow(0, 1, 2000).std().item<double>(), 1e-4, 5e-6);
  for (auto* tower : std::vector<nn::CrossNetwork*>{model.ecn.get(), model.lcn.get()}) {
    Tensor w = tower->layers[0]->w->weight;  // xavier_normal: std sqrt(2 / (48 + 24))
    EXPECT_NEAR(w.std().item<double>(), std::sqrt(2.0 / 72), 0.012);
    Tensor b = tower->layers[0]->b;  // U[0, 1)
    EXPECT_GE(b.min().item<double>(), 0.0);
    EXPECT_LT(b.max().item<double>(), 1.0);
    EXPECT_NEAR(b.mean().item<double>(), 0.5, 0.15);
    EXPECT_TRUE(tensors_close(tower->layers[0]->layer_norm->weight, ones({24}), 0));
    EXPECT_TRUE(tensors_close(tower->head->bias, zeros({1}), 0));
    EXPECT_NEAR(tower->head->weight.std().item<double>(), std::sqrt(2.0 / 49), 0.07);
  }
}

// ---- parameter counts from the spec (logs of the reference code) ----

TEST(FCN, ParameterCountCriteoBest) {
  // The Criteo_x4 vocabularies of the reference logs (I1-I13, C1-C26), 910,747 rows in total.
  std::vector<int64_t> vocab = {44,   99,   122,   41,     220,    112,    80,     69,    92,     6,
                                27,   37,   72,    1446,   554,    157339, 117822, 306,   18,     11882,
                                630,  5,    39530, 5131,   156656, 3176,   28,     11043, 148913, 12,
                                4560, 2003, 5,     154564, 18,     17,     53031,  82,    40955};
  ASSERT_EQ(vocab.size(), 39u);
  int64_t rows = 0;
  for (int64_t v : vocab) rows += v;
  ASSERT_EQ(rows, 910747);
  FCN model(FCNOptions{.vocab_sizes = vocab});  // d 16, H 1, ECN 3 + LCN 4, LN, no BN
  EXPECT_EQ(count(model, false), 1372802);
  EXPECT_EQ(count(model, false) + count(model, true), 15944754);
}

TEST(FCN, ParameterCountOthers) {
  // Only the sum of the vocabularies enters the embedding count, so small tables suffice for the
  // non-embedding counts.
  nn::ECN ecn_only(nn::ECNOptions{.vocab_sizes = std::vector<int64_t>(39, 2), .num_layers = 4});
  EXPECT_EQ(count(ecn_only, false), 784369);  // the paper's 0.78M
  FCN avazu(FCNOptions{.vocab_sizes = std::vector<int64_t>(24, 3),
                       .num_heads = 4,
                       .ecn_layers = 4,
                       .lcn_layers = 5,
                       .batch_norm = true});
  EXPECT_EQ(count(avazu, false), 671306);
  EXPECT_EQ(count(avazu, true), 24 * 3 * 64);  // rows x d x H: 3,750,999 x 64 in the logs
  EXPECT_EQ(671306 + 3750999LL * 64, 240735242);
  FCN ml1m(FCNOptions{.vocab_sizes = {6041, 3, 8, 22, 3600, 58, 19}, .batch_norm = true});  // 9,751 rows
  EXPECT_EQ(count(ml1m, false), 45712);
  EXPECT_EQ(count(ml1m, false) + count(ml1m, true), 201728);
  // Per layer D M + D + 2 M (+ 2 H with BN), head D + 1: ECN 3 + LCN 4 at D = 112.
  EXPECT_EQ(7 * (112 * 56 + 112 + 2 * 56 + 2) + 2 * 113, 45712);
}

// ---- state-dict names and the reference PyTorch code ----

// A small FCN with BN and two heads. The k-th parameter in sorted-name order gets
// p[i] = 0.5 sin(1.3 k + 0.7 i + 0.1), as a PyTorch transcription of the reference code did with
// the same names (so equal outputs also mean equal names).
std::unique_ptr<FCN> reference_model() {
  auto model = std::make_unique<FCN>(FCNOptions{.vocab_sizes = {5, 4, 3},
                                                .field_names = {"C1", "C2", "I1"},
                                                .embedding_dim = 4,
                                                .num_heads = 2,
                                                .ecn_layers = 2,
                                                .lcn_layers = 3,
                                                .batch_norm = true});
  model->to(kFloat64);
  std::map<std::string, Tensor> sorted;
  for (const auto& [name, p] : model->named_parameters()) sorted.emplace(name, p);
  int k = 0;
  for (const auto& [name, p] : sorted) {
    std::vector<double> v(p.numel());
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5 * std::sin(1.3 * k + 0.7 * static_cast<double>(i) + 0.1);
    set_values(p, v);
    ++k;
  }
  return model;
}

TEST(FCN, StateDictNamesMatchReferenceCode) {
  auto model = reference_model();
  auto state = model->state_dict();
  EXPECT_EQ(model->named_parameters().size(), 37u);  // as torch's named_parameters()
  EXPECT_EQ(state.size(), 52u);                      // + 5 BN layers x 3 buffers
  for (const char* key :
       {"embedding_layer.embedding_layer.embedding_layer.embedding_layers.C1.weight",
        "embedding_layer.embedding_layer.embedding_layer.embedding_layers.I1.weight", "ECN.w.0.weight",
        "ECN.b.1", "ECN.layer_norm.0.bias", "ECN.batch_norm.1.num_batches_tracked", "ECN.dfc.weight",
        "ECN.dfc.bias", "LCN.w.2.weight", "LCN.b.2", "LCN.batch_norm.2.running_var", "LCN.sfc.bias"})
    EXPECT_EQ(state.count(key), 1u) << key;
  // The CrossLayer holds the very tensors the tower's lists register.
  EXPECT_EQ(model->lcn->layers[2]->b.data_ptr<double>(), state.at("LCN.b.2").data_ptr<double>());
  EXPECT_EQ(model->ecn->layers[1]->w->weight.data_ptr<double>(),
            state.at("ECN.w.1.weight").data_ptr<double>());
}

TEST(FCN, MatchesReferencePyTorchCode) {
  // Values printed by the reference DCNv3 forward (FuxiCTR model_zoo/DCNv3/src/DCNv3.py, torch 1.13,
  // float64; tests/fixtures/make_fcn_reference.py) for the same parameters and fields, first in train mode
  // (BN batch statistics), then in eval mode with the running statistics that one training forward left.
  auto model = reference_model();
  Tensor fields = I({1, 2, 0, 4, 3, 2, 2, 0, 1, 3, 1, 2}, {4, 3});
  Tensor y = tensor<double>({1, 0, 0, 1});
  nn::FCNOutput out = model->forward_all(fields);
  EXPECT_TRUE(tensors_close(
      out.logit, tensor<double>({0.328851834685, 0.269948792454, 0.117097739823, 0.0726430058614}), 1e-10));
  EXPECT_TRUE(tensors_close(
      out.logit_ecn, tensor<double>({0.491520538289, 0.627204732981, 0.413214139011, 0.44863935357}), 1e-10));
  EXPECT_TRUE(tensors_close(
      out.logit_lcn, tensor<double>({0.166183131081, -0.0873071480735, -0.179018659364, -0.303353341847}),
      1e-10));
  Tensor loss = losses::tri_bce(out.logit, out.logit_ecn, out.logit_lcn, y);
  EXPECT_NEAR(loss.item<double>(), 0.726464775882, 1e-10);
  loss.backward();
  auto grad = [&](const char* key) {
    for (const auto& [name, p] : model->named_parameters())
      if (name == key) return p.grad();
    return Tensor();
  };
  EXPECT_TRUE(tensors_close(
      grad("LCN.b.1"),
      tensor<double>({-0.000801385155189, -0.000855019385529, 0.00053761357711, 0.000442654033844,
                      -0.000628000046785, -0.000404759578621, 0.000170217098471, -0.000485012991134,
                      0.000395465037967, 0.000785802495355, -0.000220855959635, -0.000453570070442}),
      1e-10));
  EXPECT_TRUE(tensors_close(grad("ECN.layer_norm.0.weight"),
                            tensor<double>({-0.00128150461639, 0, 0.00704074149641, -0.000815468135457,
                                            -0.00424867126826, 0.00504906334388}),
                            1e-10));
  EXPECT_TRUE(tensors_close(grad("ECN.batch_norm.1.weight"),
                            tensor<double>({0.00908108231472, -0.0181063811862}), 1e-10));
  EXPECT_TRUE(tensors_close(
      grad("embedding_layer.embedding_layer.embedding_layer.embedding_layers.C2.weight").narrow(0, 0, 2),
      tensor<double>(
          {0, 0, 0, 0, 0, 0, 0, 0, 0.0266621006139, 0.0309309963921, -0.0185034390008, -0.0145295841511,
           0.0322733033127, 0.000540411233609, -0.0124777371375, 0.00150316246065},
          {2, 8}),
      1e-10));
  model->eval();
  out = model->forward_all(fields);
  EXPECT_TRUE(tensors_close(
      out.logit, tensor<double>({0.303579908427, 0.232001048806, 0.204146719071, 0.134519291496}), 1e-10));
  EXPECT_TRUE(tensors_close(out.logit_ecn,
                            tensor<double>({0.474560941001, 0.608861944007, 0.530197437497, 0.514098227088}),
                            1e-10));
  EXPECT_TRUE(tensors_close(
      out.logit_lcn, tensor<double>({0.132598875852, -0.144859846395, -0.121903999356, -0.245059644096}),
      1e-10));
}

// ---- gradchecks (float64) ----

// Every parameter of a tiny FCN (F = 2, d = 2, H = 2, ECN 2 + LCN 2): the members forward reads.
std::vector<Tensor*> all_parameters(FCN& m) {
  std::vector<Tensor*> out;
  for (auto& t : m.embedding_layer->tables) out.push_back(&t->weight);
  for (auto* tower : std::vector<nn::CrossNetwork*>{m.ecn.get(), m.lcn.get()}) {
    for (auto& l : tower->layers) {
      out.insert(out.end(), {&l->w->weight, &l->b});
      if (l->layer_norm) out.insert(out.end(), {&l->layer_norm->weight, &l->layer_norm->bias});
      if (l->batch_norm) out.insert(out.end(), {&l->batch_norm->weight, &l->batch_norm->bias});
    }
    out.insert(out.end(), {&tower->head->weight, &tower->head->bias});
  }
  return out;
}

// O(1) values everywhere (the N(0, 1e-4) embedding init would leave the cross terms at ~1e-8).
std::unique_ptr<FCN> tiny_fcn(bool batch_norm, bool layer_norm = true) {
  manual_seed(5);
  auto m = std::make_unique<FCN>(FCNOptions{.vocab_sizes = {4, 3},
                                            .embedding_dim = 2,
                                            .num_heads = 2,
                                            .ecn_layers = 2,
                                            .lcn_layers = 2,
                                            .batch_norm = batch_norm,
                                            .layer_norm = layer_norm});
  m->to(kFloat64);
  uint64_t seed = 100;
  for (Tensor* p : all_parameters(*m))
    set_values(*p, R(p->shape(), -0.8, 0.8, seed++, false).to_vector<double>());
  return m;
}

// Indices avoid the padding row: its forward value counts but it gets no gradient by design.
const Tensor kTinyFields = I({1, 2, 3, 1, 2, 2}, {3, 2});

::testing::AssertionResult check_fcn(FCN& m) {
  return module_gradcheck(m, all_parameters(m), kTinyFields, [&](const Tensor& fields) {
    nn::FCNOutput o = m.forward_all(fields);
    return cat({o.logit, o.logit_ecn, o.logit_lcn});
  });
}

TEST(FCN, GradcheckLayerNorm) {
  auto m = tiny_fcn(false);
  EXPECT_TRUE(check_fcn(*m));
}

TEST(FCN, GradcheckNoLayerNorm) {
  auto m = tiny_fcn(false, false);
  EXPECT_TRUE(check_fcn(*m));
}

TEST(FCN, GradcheckBatchNormTrainAndEval) {
  auto m = tiny_fcn(true);
  EXPECT_TRUE(check_fcn(*m));  // batch statistics over B and M per head
  m->eval();
  for (auto* tower : std::vector<nn::CrossNetwork*>{m->ecn.get(), m->lcn.get()})
    for (auto& l : tower->layers) {
      set_values(l->batch_norm->running_mean, {0.3, -0.2});
      set_values(l->batch_norm->running_var, {0.5, 2.0});
    }
  EXPECT_TRUE(check_fcn(*m));
}

TEST(FCN, GradcheckTriBCEThroughModel) {
  auto m = tiny_fcn(false);
  Tensor y = tensor<double>({1, 0, 1});
  EXPECT_TRUE(module_gradcheck(*m, all_parameters(*m), kTinyFields, [&](const Tensor& fields) {
    nn::FCNOutput o = m->forward_all(fields);
    return losses::tri_bce(o.logit, o.logit_ecn, o.logit_lcn, y);
  }));
}

TEST(FCN, GradcheckTowerInput) {
  // With respect to the tower input x_1 [B, H, D] and b, through both towers with BN (train).
  manual_seed(6);
  ExponentialCrossNetwork ecn(3, 6, 2, {.batch_norm = true});
  LinearCrossNetwork lcn(3, 6, 2, {.batch_norm = true});
  lcn.to(kFloat64);
  EXPECT_TRUE(module_gradcheck(ecn, {&ecn.layers[1]->b}, R({3, 2, 6}, -1, 1, 7),
                               [&](const Tensor& x) { return ecn.forward(x) + lcn.forward(x); }));
}

// ---- modes ----

TEST(FCN, DropoutOnlyInTraining) {
  manual_seed(8);
  FCN model(FCNOptions{.vocab_sizes = {6, 6}, .embedding_dim = 4, .ecn_dropout = 0.5, .lcn_dropout = 0.5});
  for (auto& t : model.embedding_layer->tables) nn::init::uniform_(t->weight, -1, 1);
  Tensor fields = I({1, 2, 3, 4, 5, 1}, {3, 2});
  EXPECT_EQ(model.ecn->layers[0]->dropout->p, 0.5);
  Tensor a = model.forward(fields), b = model.forward(fields);
  EXPECT_FALSE(equal(a, b));
  model.eval();
  EXPECT_TRUE(equal(model.forward(fields), model.forward(fields)));
  EXPECT_FALSE(model.ecn->layers[0]->dropout->is_training());
}

// ---- a short training run ----

// Area under the ROC curve (the ranking statistic; no ties in practice).
double auc(const std::vector<float>& score, const std::vector<float>& label) {
  std::vector<size_t> order(score.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double pos = 0, neg = 0, rank_sum = 0;
  for (size_t r = 0; r < order.size(); ++r) {
    if (label[order[r]] > 0.5) {
      pos += 1;
      rank_sum += static_cast<double>(r + 1);
    } else {
      neg += 1;
    }
  }
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

struct TrainResult {
  double initial_loss, final_loss, test_auc;
};

// Four fields of 20 values; the click depends only on the interaction of fields 0 and 1
// (u[f0] * v[f1] with fixed signs u, v), so neither field alone predicts it; fields 2, 3 are noise.
// Trains an FCN with Tri-BCE and Adam (lr 1e-3, batch 256) and evaluates on held-out samples.
TrainResult train_on_interaction(int64_t ecn_layers, int64_t lcn_layers, int epochs) {
  std::mt19937 gen(2024);
  std::uniform_int_distribution<int64_t> value(1, 20);
  // u and v are +1 for exactly half of the values, so each field alone is uninformative.
  auto click = [](int64_t a, int64_t b) { return ((a % 2) ? 1 : -1) * ((b % 4 < 2) ? 1 : -1) > 0; };
  auto make = [&](int64_t n, Tensor& fields, Tensor& labels) {
    std::vector<int64_t> f(n * 4);
    std::vector<float> y(n);
    for (int64_t i = 0; i < n; ++i) {
      for (int k = 0; k < 4; ++k) f[i * 4 + k] = value(gen);
      y[i] = click(f[i * 4], f[i * 4 + 1]) ? 1.f : 0.f;
    }
    fields = tensor<int64_t>(f, {n, 4});
    labels = tensor<float>(y, {n});
  };
  Tensor train_x, train_y, test_x, test_y;
  make(4096, train_x, train_y);
  make(1024, test_x, test_y);

  manual_seed(2024);
  FCN model(FCNOptions{.vocab_sizes = {21, 21, 21, 21},
                       .embedding_dim = 8,
                       .ecn_layers = ecn_layers,
                       .lcn_layers = lcn_layers});
  optim::Adam adam(model.parameters(), {.lr = 1e-3});
  auto evaluate = [&] {
    NoGradGuard no_grad;
    model.eval();
    nn::FCNOutput o = model.forward_all(test_x);
    model.train();
    return std::make_pair(losses::tri_bce(o.logit, o.logit_ecn, o.logit_lcn, test_y).item<double>(), o.logit);
  };
  TrainResult r{};
  r.initial_loss = evaluate().first;
  const int64_t batch = 256;
  for (int epoch = 0; epoch < epochs; ++epoch)
    for (int64_t s = 0; s < 4096; s += batch) {
      nn::FCNOutput o = model.forward_all(train_x.narrow(0, s, batch));
      Tensor loss = losses::tri_bce(o.logit, o.logit_ecn, o.logit_lcn, train_y.narrow(0, s, batch));
      adam.zero_grad();
      loss.backward();
      adam.step();
    }
  auto [loss, logits] = evaluate();
  r.final_loss = loss;
  r.test_auc = auc(logits.to_vector<float>(), test_y.to_vector<float>());
  ::testing::Test::RecordProperty("final_loss", std::to_string(r.final_loss));
  ::testing::Test::RecordProperty("auc", std::to_string(r.test_auc));
  return r;
}

TEST(FCN, LearnsAFieldInteractionWithTriBCE) {
  TrainResult r = train_on_interaction(2, 2, 50);
  EXPECT_NEAR(r.initial_loss, std::log(2.0), 0.02);  // tiny embeddings: every logit starts near 0
  EXPECT_LT(r.final_loss, 0.5 * r.initial_loss) << "auc " << r.test_auc;
  EXPECT_GT(r.test_auc, 0.95);
}

TEST(FCN, WithoutCrossLayersTheInteractionIsNotLearned) {
  // The control: with no cross layer each tower is logistic regression on the embeddings, which
  // cannot represent u[f0] * v[f1].
  TrainResult r = train_on_interaction(0, 0, 50);
  EXPECT_GT(r.final_loss, 0.65) << "auc " << r.test_auc;
  EXPECT_LT(r.test_auc, 0.65);
}

// ---- errors ----

TEST(FCN, Errors) {
  FCN model(FCNOptions{.vocab_sizes = {3, 4}, .embedding_dim = 2});
  const char* shape_msg = "FCN: fields must be an int64 tensor [B, F] with F = 2 fields";
  EMBER_EXPECT_THROW_MSG(model.forward(zeros({2, 2})), shape_msg);
  EMBER_EXPECT_THROW_MSG(model.forward(I({1, 2, 1, 2}, {2, 2}).to(DType::int32)), shape_msg);
  EMBER_EXPECT_THROW_MSG(model.forward(I({1, 2, 1}, {1, 3})), shape_msg);
  EMBER_EXPECT_THROW_MSG(model.forward(I({1, 2}, {2})), shape_msg);
  EMBER_EXPECT_THROW_MSG(model.forward(Tensor()), "FCN: fields is an undefined tensor");
  EMBER_EXPECT_THROW_MSG(model.forward(I({3, 1}, {1, 2})), "out of range");  // field 0 has rows 0..2
  EMBER_EXPECT_THROW_MSG(model.forward(I({-1, 1}, {1, 2})), "out of range");

  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3, 4}, .embedding_dim = 3}),
                         "FCN: embedding_dim must be even");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3, 4}, .embedding_dim = 0}),
                         "FCN: embedding_dim must be even");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{}), "FCN: vocab_sizes must name at least one field");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3, 0}}),
                         "FCN: vocab_sizes[1] = 0 must be at least 1");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3, 4}, .field_names = {"a"}}),
                         "FCN: 1 field_names for 2");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3}, .num_heads = 0}),
                         "FCN: num_heads must be positive");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3}, .ecn_layers = -1}),
                         "FCN: ecn_layers must be non-negative");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3}, .lcn_dropout = 1.0}),
                         "FCN: lcn_dropout must be in [0, 1)");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3, 4}, .field_names = {"a", "a"}}), "already taken");
  EMBER_EXPECT_THROW_MSG(FCN(FCNOptions{.vocab_sizes = {3}, .field_names = {"a.b"}}), "must not contain '.'");

  EMBER_EXPECT_THROW_MSG(nn::ECN(nn::ECNOptions{.vocab_sizes = {3}, .embedding_dim = 5}),
                         "ECN: embedding_dim must be even");
  nn::ECN ecn(nn::ECNOptions{.vocab_sizes = {3}, .embedding_dim = 2});
  EMBER_EXPECT_THROW_MSG(ecn.forward(zeros({1, 1})), "ECN: fields must be an int64 tensor");

  EMBER_EXPECT_THROW_MSG(CrossLayer(5), "CrossLayer: input_dim must be even");
  CrossLayer layer(4, 2);
  EMBER_EXPECT_THROW_MSG(layer.forward(zeros({2, 1, 4})),
                         "CrossLayer: x must be [B, H, D] with H = 2, D = 4");
  EMBER_EXPECT_THROW_MSG(layer.forward(zeros({2, 2, 4}), zeros({2, 2, 2})),
                         "CrossLayer: anchor must have x's shape");
  ExponentialCrossNetwork tower(1, 4);
  EMBER_EXPECT_THROW_MSG(tower.forward(zeros({2, 4})), "ExponentialCrossNetwork: x must be [B, H, D]");
}

TEST(FCN, ECNOnlyModel) {
  manual_seed(4);
  nn::ECN model(nn::ECNOptions{.vocab_sizes = {5, 5}, .embedding_dim = 4, .num_layers = 2});
  auto state = model.state_dict();
  EXPECT_EQ(state.count("ECN.dfc.weight"), 1u);
  EXPECT_EQ(state.count("ECN.w.1.weight"), 1u);
  Tensor z = model.forward(I({1, 2, 3, 4}, {2, 2}));
  EXPECT_EQ(z.shape(), Shape({2}));
  // The logit is the ECN tower on the embedding.
  EXPECT_TRUE(
      tensors_close(z, model.ecn->forward(model.embedding_layer->forward(I({1, 2, 3, 4}, {2, 2}))), 0));
}

}  // namespace
}  // namespace ember::testing
