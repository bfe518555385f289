// FCN and its pieces (the reference code's DCNv3.py): the multi-head embedding, the Self-Mask
// cross layer, the ECN/LCN towers and the two models. Everything is composed from existing ops,
// so autograd provides the backward.
#include "ember/nn/fcn.h"

#include <cmath>

#include "ember/nn/container.h"
#include "ember/nn/init.h"
#include "ember/ops.h"

namespace ember::nn {

namespace {

// Empty containers named like the reference code's, so str() reads like the reference model.
class FeatureEmbedding : public Module {};
class FeatureEmbeddingDict : public Module {};

// The options both models share; `who` names the model in the message.
void check_model_options(const char* who, const std::vector<int64_t>& vocab_sizes,
                         const std::vector<std::string>& field_names, int64_t embedding_dim,
                         int64_t num_heads) {
  if (vocab_sizes.empty()) fail("{}: vocab_sizes must name at least one field", who);
  for (size_t f = 0; f < vocab_sizes.size(); ++f)
    if (vocab_sizes[f] < 1)
      fail("{}: vocab_sizes[{}] = {} must be at least 1 (row 0 is padding)", who, f, vocab_sizes[f]);
  if (!field_names.empty() && field_names.size() != vocab_sizes.size())
    fail("{}: {} field_names for {} vocab_sizes", who, field_names.size(), vocab_sizes.size());
  // The layout splits every d-chunk in halves and the cross layer projects D to D / 2.
  if (embedding_dim < 2 || embedding_dim % 2 != 0)
    fail("{}: embedding_dim must be even and positive (each field's vector is split in halves), got {}", who,
         embedding_dim);
  if (num_heads < 1) fail("{}: num_heads must be positive, got {}", who, num_heads);
}

void check_tower(const char* who, const char* layers_name, int64_t layers, const char* dropout_name,
                 double dropout) {
  if (layers < 0) fail("{}: {} must be non-negative, got {}", who, layers_name, layers);
  if (!(dropout >= 0 && dropout < 1)) fail("{}: {} must be in [0, 1), got {}", who, dropout_name, dropout);
}

void check_fields(const char* who, const Tensor& fields, int64_t num_fields) {
  if (!fields.defined()) fail("{}: fields is an undefined tensor", who);
  if (fields.dtype() != DType::int64 || fields.dim() != 2 || fields.size(1) != num_fields)
    fail("{}: fields must be an int64 tensor [B, F] with F = {} fields, got {} of shape {}", who, num_fields,
         fields.dtype(), shape_str(fields.shape()));
}

}  // namespace

// ---- MultiHeadFeatureEmbedding ----

MultiHeadFeatureEmbedding::MultiHeadFeatureEmbedding(std::vector<int64_t> vocab_sizes, int64_t d, int64_t h,
                                                     std::vector<std::string> names)
    : num_fields(static_cast<int64_t>(vocab_sizes.size())), embedding_dim(d), num_heads(h) {
  check_model_options("MultiHeadFeatureEmbedding", vocab_sizes, names, d, h);
  // embedding_layer (FeatureEmbedding) -> embedding_layer (FeatureEmbeddingDict) ->
  // embedding_layers (ModuleDict) -> <field>: the reference code's nesting.
  auto dict = register_module("embedding_layer", std::make_shared<FeatureEmbedding>())
                  ->register_module("embedding_layer", std::make_shared<FeatureEmbeddingDict>())
                  ->register_module("embedding_layers", std::make_shared<ModuleDict>());
  for (int64_t f = 0; f < num_fields; ++f) {
    std::string name = names.empty() ? std::to_string(f) : names[f];
    tables.push_back(dict->insert(name, std::make_shared<Embedding>(vocab_sizes[f], d * h, 0)));
  }
  reset_parameters();
}

void MultiHeadFeatureEmbedding::reset_parameters() {
  for (auto& table : tables) {
    init::normal_(table->weight, 0.0, 1e-4);
    init::zeros_(table->weight.detach().select(0, 0));
  }
}

Tensor MultiHeadFeatureEmbedding::forward(const Tensor& fields) {
  check_fields("MultiHeadFeatureEmbedding", fields, num_fields);
  std::vector<Tensor> rows;
  for (int64_t f = 0; f < num_fields; ++f) rows.push_back(tables[f]->forward(fields.select(1, f)));
  const int64_t batch = fields.size(0), half = embedding_dim / 2;
  // [B, F, H * d] -> [B, F, H, 2, d/2] -> [B, H, 2, F, d/2]: per head, the first halves of all
  // fields, then the second halves (tensor_split + flatten + cat in the reference code).
  return stack(rows, 1)
      .reshape({batch, num_fields, num_heads, 2, half})
      .permute({0, 2, 3, 1, 4})
      .reshape({batch, num_heads, num_fields * embedding_dim});
}

std::string MultiHeadFeatureEmbedding::extra_repr() const {
  return fmt::format("num_fields={}, embedding_dim={}, num_heads={}", num_fields, embedding_dim, num_heads);
}

// ---- CrossLayer ----

CrossLayer::CrossLayer(int64_t d, int64_t h, const CrossNetworkOptions& options)
    : input_dim(d), num_heads(h) {
  if (d < 2 || d % 2 != 0) fail("CrossLayer: input_dim must be even and positive, got {}", d);
  if (h < 1) fail("CrossLayer: num_heads must be positive, got {}", h);
  if (!(options.dropout >= 0 && options.dropout < 1))
    fail("CrossLayer: dropout must be in [0, 1), got {}", options.dropout);
  w = register_module("w", std::make_shared<Linear>(d, d / 2, false));
  b = register_parameter("b", empty({d}));
  if (options.batch_norm) batch_norm = register_module("batch_norm", std::make_shared<BatchNorm1d>(h));
  if (options.layer_norm) layer_norm = register_module("layer_norm", std::make_shared<LayerNorm>(d / 2));
  if (options.dropout > 0) dropout = register_module("dropout", std::make_shared<Dropout>(options.dropout));
  reset_parameters();
}

void CrossLayer::reset_parameters() {
  init::xavier_normal_(w->weight);
  init::uniform_(b, 0.0, 1.0);
  if (batch_norm) batch_norm->reset_parameters();
  if (layer_norm) layer_norm->reset_parameters();
}

Tensor CrossLayer::cross_vector(const Tensor& x) {
  Tensor c = w->forward(x);
  if (batch_norm) c = batch_norm->forward(c);
  // The mask comes from c before the bias; ReLU(LN(c)) zeroes about half of it.
  Tensor mask = relu(layer_norm ? layer_norm->forward(c) : c);
  return cat({c, c * mask}, -1);
}

Tensor CrossLayer::forward(const Tensor& x, const Tensor& anchor) {
  if (!x.defined() || x.dim() != 3 || x.size(1) != num_heads || x.size(2) != input_dim)
    fail("CrossLayer: x must be [B, H, D] with H = {}, D = {}, got shape {}", num_heads, input_dim,
         x.defined() ? shape_str(x.shape()) : "undefined");
  if (!anchor.defined() || anchor.shape() != x.shape())
    fail("CrossLayer: anchor must have x's shape {}, got {}", shape_str(x.shape()),
         anchor.defined() ? shape_str(anchor.shape()) : "undefined");
  Tensor out = anchor * (cross_vector(x) + b) + x;
  return dropout ? dropout->forward(out) : out;
}

std::string CrossLayer::extra_repr() const {
  return fmt::format("input_dim={}, num_heads={}", input_dim, num_heads);
}

// ---- CrossNetwork ----

CrossNetwork::CrossNetwork(bool exp, int64_t num_layers, int64_t d, int64_t h,
                           const CrossNetworkOptions& options)
    : exponential(exp), input_dim(d), num_heads(h) {
  // name() is not virtual yet inside the base constructor.
  const char* who = exp ? "ExponentialCrossNetwork" : "LinearCrossNetwork";
  if (num_layers < 0) fail("{}: num_layers must be non-negative, got {}", who, num_layers);
  // The reference code keeps one list per kind of piece (w.0, b.0, layer_norm.0, ...); the same
  // modules and tensors are registered here, so the state dict has its names.
  auto norms = register_module("layer_norm", std::make_shared<ModuleList>());
  auto bns = register_module("batch_norm", std::make_shared<ModuleList>());
  auto drops = register_module("dropout", std::make_shared<ModuleList>());
  auto ws = register_module("w", std::make_shared<ModuleList>());
  auto bs = register_module("b", std::make_shared<ParameterList>());
  for (int64_t i = 0; i < num_layers; ++i) {
    auto layer = std::make_shared<CrossLayer>(d, h, options);
    if (layer->layer_norm) norms->push_back(layer->layer_norm);
    if (layer->batch_norm) bns->push_back(layer->batch_norm);
    if (layer->dropout) drops->push_back(layer->dropout);
    ws->push_back(layer->w);
    bs->append(layer->b);
    layers.push_back(layer);
  }
  head = register_module(exp ? "dfc" : "sfc", std::make_shared<Linear>(d, 1));
  init::xavier_normal_(head->weight);
  init::zeros_(head->bias);
}

Tensor CrossNetwork::cross(const Tensor& x) {
  Tensor out = x;
  for (auto& layer : layers) out = layer->forward(out, exponential ? out : x);
  return out;
}

Tensor CrossNetwork::forward(const Tensor& x) {
  if (!x.defined() || x.dim() != 3 || x.size(1) != num_heads || x.size(2) != input_dim)
    fail("{}: x must be [B, H, D] with H = {}, D = {}, got shape {}", name(), num_heads, input_dim,
         x.defined() ? shape_str(x.shape()) : "undefined");
  // [B, H, 1] -> [B]: one logit per head, averaged over the heads.
  return head->forward(cross(x)).squeeze(-1).mean({1});
}

std::string CrossNetwork::extra_repr() const {
  return fmt::format("num_layers={}, input_dim={}, num_heads={}", layers.size(), input_dim, num_heads);
}

// ---- FCN ----

FCN::FCN(FCNOptions o) : options(std::move(o)) {
  check_model_options("FCN", options.vocab_sizes, options.field_names, options.embedding_dim,
                      options.num_heads);
  check_tower("FCN", "ecn_layers", options.ecn_layers, "ecn_dropout", options.ecn_dropout);
  check_tower("FCN", "lcn_layers", options.lcn_layers, "lcn_dropout", options.lcn_dropout);
  embedding_layer = register_module("embedding_layer", std::make_shared<MultiHeadFeatureEmbedding>(
                                                           options.vocab_sizes, options.embedding_dim,
                                                           options.num_heads, options.field_names));
  const int64_t d = embedding_layer->num_fields * options.embedding_dim;
  CrossNetworkOptions ecn_opts{options.layer_norm, options.batch_norm, options.ecn_dropout};
  CrossNetworkOptions lcn_opts{options.layer_norm, options.batch_norm, options.lcn_dropout};
  ecn = register_module(
      "ECN", std::make_shared<ExponentialCrossNetwork>(options.ecn_layers, d, options.num_heads, ecn_opts));
  lcn = register_module(
      "LCN", std::make_shared<LinearCrossNetwork>(options.lcn_layers, d, options.num_heads, lcn_opts));
}

FCNOutput FCN::forward_all(const Tensor& fields) {
  check_fields("FCN", fields, embedding_layer->num_fields);
  Tensor x = embedding_layer->forward(fields);
  Tensor z_d = ecn->forward(x), z_s = lcn->forward(x);
  // The code averages logits (the paper's text averages probabilities).
  return {(z_d + z_s) * 0.5, z_d, z_s};
}

std::string FCN::extra_repr() const {
  return fmt::format(
      "num_fields={}, embedding_dim={}, num_heads={}, ecn_layers={}, lcn_layers={}, ecn_dropout={}, "
      "lcn_dropout={}, batch_norm={}, layer_norm={}",
      options.vocab_sizes.size(), options.embedding_dim, options.num_heads, options.ecn_layers,
      options.lcn_layers, options.ecn_dropout, options.lcn_dropout, options.batch_norm, options.layer_norm);
}

// ---- ECN ----

ECN::ECN(ECNOptions o) : options(std::move(o)) {
  check_model_options("ECN", options.vocab_sizes, options.field_names, options.embedding_dim,
                      options.num_heads);
  check_tower("ECN", "num_layers", options.num_layers, "dropout", options.dropout);
  embedding_layer = register_module("embedding_layer", std::make_shared<MultiHeadFeatureEmbedding>(
                                                           options.vocab_sizes, options.embedding_dim,
                                                           options.num_heads, options.field_names));
  const int64_t d = embedding_layer->num_fields * options.embedding_dim;
  ecn = register_module("ECN",
                        std::make_shared<ExponentialCrossNetwork>(
                            options.num_layers, d, options.num_heads,
                            CrossNetworkOptions{options.layer_norm, options.batch_norm, options.dropout}));
}

Tensor ECN::forward(const Tensor& fields) {
  check_fields("ECN", fields, embedding_layer->num_fields);
  return ecn->forward(embedding_layer->forward(fields));
}

std::string ECN::extra_repr() const {
  return fmt::format(
      "num_fields={}, embedding_dim={}, num_heads={}, num_layers={}, dropout={}, batch_norm={}, "
      "layer_norm={}",
      options.vocab_sizes.size(), options.embedding_dim, options.num_heads, options.num_layers,
      options.dropout, options.batch_norm, options.layer_norm);
}

}  // namespace ember::nn
