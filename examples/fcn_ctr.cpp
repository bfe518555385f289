// The experiment of the FCN paper (Tri-BCE, docs/losses/tri_bce.md) in one command: train FCN with
// Tri-BCE, and beside it the paper's ablations, FCN with plain BCE on the fused logit ("w/o TB") and
// the ECN tower alone, on a click-through-rate data set; report every model's test logloss and AUC
// next to the paper's.
//
//   ./fcn_ctr                                        # the synthetic Criteo-shaped set, 200k rows
//   ./fcn_ctr --rows 5000 --epochs 1 --threads 1     # a smoke run (seconds)
//   ./fcn_ctr --dataset criteo --data-path train.txt --limit 2000000   # a look at real Criteo
//   ./fcn_ctr --dataset criteo --data-path train.txt                   # the paper's Criteo_x4 run
//
// Data (--dataset):
//   synthetic (default)  Generated here from --seed, because no CTR data set ships with Debian and the
//                        one-command run should need nothing downloaded: 39 categorical fields shaped
//                        like Criteo's (13 small "integer" fields, 26 with 3 to 10,000 values, value
//                        frequencies Zipf-distributed) and a label drawn from a planted logistic model
//                        with first-order terms, pairwise, 3-way and 4-way field crosses (low-rank, as
//                        factorisation machines write them) and unobserved logit noise, about 25%
//                        positives (make_synthetic below). It exercises the whole pipeline and lets the
//                        models be compared with each other and with the planted model itself; its
//                        numbers are NOT comparable to the paper's. Its default batch is 512, not the
//                        paper's 4096 (160k training rows would make 39 steps an epoch).
//   criteo               The raw Kaggle Criteo TSV (label, I1-I13, C1-C26, no header) from --data-path,
//                        preprocessed as FuxiCTR/BARS Criteo_x4: an empty I-field is 0, then
//                        v > 2 -> floor(ln(v)^2), else int(v), taken as a categorical string; C-fields
//                        are strings. The file is read line by line (--limit: the first N lines only);
//                        the whole file needs about 7 GB for the ids plus the distinct raw values'
//                        hash tables while the vocabularies are fit (some GB more). A malformed line
//                        stops the program with its line number (exit 1).
// Both then go through the same steps: a random 8:1:1 train/validation/test split from --seed, and
// per field a vocabulary fit on the training rows (FuxiCTR's Tokenizer): the values seen at least
// --min-count times, most frequent first (ties in byte order), get ids 1..K; 0 is padding and K+1 is
// the out-of-vocabulary id of rare, unseen and missing ("") values.
//
// Training is the reference code's (salmon1802/FCN on FuxiCTR 2.0.1): Adam (lr 1e-3), gradient norm
// clipped at 10, a fresh shuffle every epoch, the validation AUC after every epoch; an epoch that does
// not beat the best by 1e-6 multiplies the lr by 0.1 (down to 1e-6) and counts a miss, two misses in a
// row stop the run (or --epochs); the best epoch's weights are then restored and evaluated on the
// test set. The loss adds (lambda_emb / 2) * sum of squared embedding weights (--emb-reg). Every run
// starts from the same seed, so FCN with Tri-BCE and FCN with BCE start from the same weights and see
// the same batches. The model options default to the paper's best Criteo run (d 16, one head, ECN 3 +
// LCN 4 layers, dropout 0.1 / 0.2, no BatchNorm, lambda_emb 1e-5, batch 4096); the ECN-alone run has 4
// layers, the paper's 0.78M-parameter Criteo ECN. Left in --out-dir:
//   metrics.jsonl   one line per epoch of each run ("run": fcn, fcn-bce or ecn), then one "test" line
//                   per run with the best epoch's test metrics
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/losses/tri_bce.h>
#include <ember/nn.h>
#include <ember/nn/fcn.h>
#include <ember/optim.h>
#include <ember/train.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "example_util.h"

namespace nn = ember::nn;
namespace train = ember::train;
namespace fs = std::filesystem;

namespace {

// Criteo's layout, which the synthetic set copies: 13 integer fields, then 26 categorical ones.
constexpr int64_t kIntegerFields = 13, kCategoricalFields = 26, kFields = kIntegerFields + kCategoricalFields;

std::vector<std::string> criteo_field_names() {
  std::vector<std::string> names;
  for (int64_t i = 1; i <= kIntegerFields; ++i) names.push_back(fmt::format("I{}", i));
  for (int64_t i = 1; i <= kCategoricalFields; ++i) names.push_back(fmt::format("C{}", i));
  return names;
}

// ---- data ----

// A CTR data set after preprocessing: every row is kFields ids and a 0/1 label. The rows stay in one
// array and the splits are lists of row numbers, so nothing is copied per split (for full Criteo the
// ids alone are 45.8M x 39 x 4 bytes = 7 GB).
struct CtrData {
  std::string name;
  std::vector<std::string> field_names;
  int64_t rows = 0;
  std::vector<int32_t> ids;          // [rows * kFields], row-major
  std::vector<float> labels;         // [rows]
  std::vector<int64_t> vocab_sizes;  // per field: K + 2 (padding 0, ids 1..K, out-of-vocabulary K + 1)
  std::vector<int64_t> train, valid, test;
  std::vector<float> planted;  // synthetic only: the planted model's click probability per row
};

// The random 8:1:1 split of FuxiCTR's Criteo_x4 (36,672,493 / 4,584,062 / 4,584,062 of 45,840,617):
// floor(0.8 n) training rows, half the rest for validation, the other half for test.
void split_rows(CtrData& d, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(d.rows));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t n_train = d.rows * 8 / 10, n_valid = (d.rows - n_train) / 2;
  d.train.assign(order.begin(), order.begin() + n_train);
  d.valid.assign(order.begin() + n_train, order.begin() + n_train + n_valid);
  d.test.assign(order.begin() + n_train + n_valid, order.end());
}

// Replaces the raw ids in d.ids (per field 0 .. raw_sizes[f] - 1, in any order) by vocabulary ids fit
// on the training rows: the raw values counted at least min_count times there, sorted by count
// (descending) and then by `token_less`, get 1..K; everything else (rare values, values absent from
// the training rows, and raw id `missing[f]` when >= 0) gets K + 1.
void fit_vocabularies(CtrData& d, const std::vector<int32_t>& raw_sizes, int64_t min_count,
                      const std::function<bool(int64_t field, int32_t a, int32_t b)>& token_less,
                      const std::vector<int32_t>& missing) {
  d.vocab_sizes.assign(kFields, 0);
  for (int64_t f = 0; f < kFields; ++f) {
    std::vector<int64_t> counts(static_cast<size_t>(raw_sizes[f]), 0);
    for (int64_t r : d.train) ++counts[static_cast<size_t>(d.ids[r * kFields + f])];
    std::vector<int32_t> kept;
    for (int32_t v = 0; v < raw_sizes[f]; ++v)
      if (counts[v] >= min_count && v != missing[f]) kept.push_back(v);
    std::sort(kept.begin(), kept.end(), [&](int32_t a, int32_t b) {
      return counts[a] != counts[b] ? counts[a] > counts[b] : token_less(f, a, b);
    });
    const auto oov = static_cast<int32_t>(kept.size() + 1);
    std::vector<int32_t> remap(static_cast<size_t>(raw_sizes[f]), oov);
    for (size_t i = 0; i < kept.size(); ++i) remap[kept[i]] = static_cast<int32_t>(i + 1);
    for (int64_t r = 0; r < d.rows; ++r) {
      int32_t& id = d.ids[r * kFields + f];
      id = remap[static_cast<size_t>(id)];
    }
    d.vocab_sizes[f] = static_cast<int64_t>(kept.size()) + 2;
  }
}

// ---- Criteo ----

[[noreturn]] void bad_line(const std::string& path, int64_t line, const std::string& what) {
  ember::fail("{}:{}: {}", path, line, what);
}

// FuxiCTR's convert_to_bucket for Criteo's integer fields (after the missing value became 0).
int64_t criteo_bucket(double v) {
  return v > 2 ? static_cast<int64_t>(std::floor(std::log(v) * std::log(v))) : static_cast<int64_t>(v);
}

CtrData load_criteo(const std::string& path, int64_t limit, int64_t min_count, uint64_t seed) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ember::fail("cannot open the Criteo file {}", path);
  CtrData d;
  d.name = "Criteo";
  d.field_names = criteo_field_names();
  // Raw ids in order of first appearance, per field; the token strings live in the maps' nodes.
  std::vector<std::unordered_map<std::string, int32_t>> raw(kFields);
  std::vector<std::vector<const std::string*>> tokens(kFields);
  const auto raw_id = [&](int64_t f, std::string&& token) {
    auto [it, inserted] = raw[f].try_emplace(std::move(token), static_cast<int32_t>(raw[f].size()));
    if (inserted) {
      if (raw[f].size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
        ember::fail("{}: more than 2^31 distinct values in field {}", path, d.field_names[f]);
      tokens[f].push_back(&it->first);
    }
    return it->second;
  };

  // Room for the rows up front (Criteo's lines are about 240 bytes), so the id array does not double
  // past its final size while it grows.
  int64_t expected_rows = static_cast<int64_t>(fs::file_size(path) / 200) + 1;
  if (limit > 0) expected_rows = std::min(expected_rows, limit);
  d.ids.reserve(static_cast<size_t>(expected_rows * kFields));
  d.labels.reserve(static_cast<size_t>(expected_rows));
  std::string line;
  std::vector<std::string_view> cols;
  int64_t line_no = 0;
  while ((limit <= 0 || d.rows < limit) && std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    cols.clear();
    for (size_t start = 0;;) {
      const size_t tab = line.find('\t', start);
      cols.emplace_back(line.data() + start, (tab == std::string::npos ? line.size() : tab) - start);
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (static_cast<int64_t>(cols.size()) != 1 + kFields)
      bad_line(path, line_no,
               fmt::format("expected {} tab-separated fields (label, I1-I13, C1-C26), found {}", 1 + kFields,
                           cols.size()));
    if (cols[0] != "0" && cols[0] != "1")
      bad_line(path, line_no, fmt::format("the label must be 0 or 1, found '{}'", cols[0]));
    d.labels.push_back(cols[0] == "1" ? 1.0f : 0.0f);
    for (int64_t f = 0; f < kIntegerFields; ++f) {
      const std::string_view s = cols[1 + f];
      double v = 0;  // na_value 0
      if (!s.empty()) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size() || !(std::abs(v) < 1e18))
          bad_line(path, line_no,
                   fmt::format("integer field {} must be a number (|v| < 1e18) or empty, found '{}'",
                               d.field_names[f], s));
      }
      d.ids.push_back(raw_id(f, std::to_string(criteo_bucket(v))));
    }
    for (int64_t f = kIntegerFields; f < kFields; ++f) d.ids.push_back(raw_id(f, std::string(cols[1 + f])));
    ++d.rows;
  }
  if (in.bad()) ember::fail("{}: read error after line {}", path, line_no);
  if (d.rows < 10) ember::fail("{}: {} rows; the 8:1:1 split needs at least 10", path, d.rows);

  split_rows(d, seed);
  std::vector<int32_t> raw_sizes(kFields), missing(kFields, -1);
  for (int64_t f = 0; f < kFields; ++f) {
    raw_sizes[f] = static_cast<int32_t>(raw[f].size());
    if (const auto it = raw[f].find(""); it != raw[f].end()) missing[f] = it->second;  // na_value ""
  }
  fit_vocabularies(
      d, raw_sizes, min_count, [&](int64_t f, int32_t a, int32_t b) { return *tokens[f][a] < *tokens[f][b]; },
      missing);
  return d;
}

// ---- the synthetic set ----

// A Criteo-shaped data set with a known answer. Field f has V_f values (13 "integer" fields with 8 to
// 64, 26 categorical ones log-uniform in [3, 10000]) drawn from a Zipf law with exponent in
// [1.1, 1.5]. Every (field, value) has a first-order weight w (N(0, 1) times a per-field importance
// e^N(0,1), so a few fields dominate) and a latent vector u of width kRank = 2. The logit is the sum
// of four parts, each standardised over the rows and then weighted:
//   first order   sum over all fields f                    w[f, v_f]                       weight 0.8
//   pairs         sum over 20 random field pairs (f, g)    <u_f, u_g>                      weight 1.0
//   triples       sum over 8 random field triples          sum_k u_f,k u_g,k u_h,k         weight 0.7
//   4-way         sum over 4 random 4-tuples               sum_k u_f,k u_g,k u_h,k u_i,k   weight 0.5
// (every cross among the same 10 random fields), plus N(0, 0.5^2) noise no model can see and a bias
// that makes 25% of the labels 1; the label is a Bernoulli draw of sigmoid(logit). `planted` keeps
// sigmoid(logit without the noise): ranked by it the rows have the best AUC any model of the fields
// can reach (the true click probability given the fields is an increasing function of it), and its
// logloss is close to the best.
CtrData make_synthetic(int64_t rows, int64_t min_count, uint64_t seed) {
  constexpr int kRank = 2, kCrossingFields = 10;
  constexpr double kPositiveRate = 0.25, kNoise = 0.5;
  CtrData d;
  d.name = "synthetic";
  d.field_names = criteo_field_names();
  d.rows = rows;
  std::mt19937_64 rng(seed ^ 0x5EED5EEDull);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;

  // Cardinalities and Zipf exponents: small "integer" fields, then categorical ones log-uniform in
  // [3, 50000].
  std::vector<int32_t> cardinality(kFields);
  std::vector<std::vector<double>> cdf(kFields);
  for (int64_t f = 0; f < kFields; ++f) {
    cardinality[f] =
        f < kIntegerFields
            ? std::uniform_int_distribution<int32_t>(8, 64)(rng)
            : static_cast<int32_t>(std::exp(std::log(3.0) + uniform(rng) * (std::log(1e4) - std::log(3.0))));
    const double s = 1.1 + 0.4 * uniform(rng);
    cdf[f].resize(static_cast<size_t>(cardinality[f]));
    double total = 0;
    for (int32_t v = 0; v < cardinality[f]; ++v) cdf[f][v] = total += std::pow(v + 1.0, -s);
    for (double& c : cdf[f]) c /= total;
  }
  std::vector<std::vector<double>> first(kFields), latent(kFields);  // latent: [cardinality * kRank]
  for (int64_t f = 0; f < kFields; ++f) {
    const double importance = std::exp(normal(rng));  // a few fields dominate the first-order part
    for (int32_t v = 0; v < cardinality[f]; ++v) first[f].push_back(importance * normal(rng));
    for (int64_t k = 0; k < cardinality[f] * kRank; ++k) latent[f].push_back(normal(rng));
  }
  // The crosses: distinct random field tuples of each order.
  std::vector<int64_t> crossing(kFields);
  std::iota(crossing.begin(), crossing.end(), 0);
  std::shuffle(crossing.begin(), crossing.end(), rng);
  crossing.resize(kCrossingFields);
  const auto draw_tuples = [&](int count, int order) {
    std::vector<std::vector<int64_t>> tuples;
    while (static_cast<int>(tuples.size()) < count) {
      std::vector<int64_t> fields = crossing;
      std::shuffle(fields.begin(), fields.end(), rng);
      fields.resize(order);
      std::sort(fields.begin(), fields.end());
      if (std::find(tuples.begin(), tuples.end(), fields) == tuples.end()) tuples.push_back(fields);
    }
    return tuples;
  };
  const std::vector<std::vector<std::vector<int64_t>>> crosses = {draw_tuples(20, 2), draw_tuples(8, 3),
                                                                  draw_tuples(4, 4)};
  const std::vector<double> weights = {0.8, 1.0, 0.7, 0.5};  // first order, then each cross order

  d.ids.resize(static_cast<size_t>(rows * kFields));
  std::vector<std::vector<double>> parts(weights.size(), std::vector<double>(static_cast<size_t>(rows)));
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* v = &d.ids[r * kFields];
    for (int64_t f = 0; f < kFields; ++f)
      v[f] = static_cast<int32_t>(std::upper_bound(cdf[f].begin(), cdf[f].end() - 1, uniform(rng)) -
                                  cdf[f].begin());
    double lin = 0;
    for (int64_t f = 0; f < kFields; ++f) lin += first[f][v[f]];
    parts[0][r] = lin;
    for (size_t o = 0; o < crosses.size(); ++o) {
      double sum = 0;
      for (const auto& tuple : crosses[o])
        for (int k = 0; k < kRank; ++k) {
          double prod = 1;
          for (int64_t f : tuple) prod *= latent[f][v[f] * kRank + k];
          sum += prod;
        }
      parts[o + 1][r] = sum;
    }
  }
  std::vector<double> signal(static_cast<size_t>(rows), 0.0), noise(static_cast<size_t>(rows));
  for (size_t p = 0; p < parts.size(); ++p) {
    double mean = 0, sq = 0;
    for (double x : parts[p]) mean += x;
    mean /= rows;
    for (double x : parts[p]) sq += (x - mean) * (x - mean);
    const double sd = std::sqrt(sq / rows) + 1e-12;
    for (int64_t r = 0; r < rows; ++r) signal[r] += weights[p] * (parts[p][r] - mean) / sd;
  }
  for (double& e : noise) e = kNoise * normal(rng);
  const auto sigmoid = [](double z) { return 1 / (1 + std::exp(-z)); };
  // The bias by bisection: the mean click probability is 25%.
  double lo = -20, hi = 20;
  for (int it = 0; it < 60; ++it) {
    const double mid = (lo + hi) / 2;
    double mean = 0;
    for (int64_t r = 0; r < rows; ++r) mean += sigmoid(mid + signal[r] + noise[r]);
    (mean / rows < kPositiveRate ? lo : hi) = mid;
  }
  const double bias = (lo + hi) / 2;
  d.labels.resize(static_cast<size_t>(rows));
  d.planted.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    d.labels[r] = uniform(rng) < sigmoid(bias + signal[r] + noise[r]) ? 1.0f : 0.0f;
    d.planted[r] = static_cast<float>(sigmoid(bias + signal[r]));
  }

  split_rows(d, seed);
  fit_vocabularies(
      d, cardinality, min_count, [](int64_t, int32_t a, int32_t b) { return a < b; },
      std::vector<int32_t>(kFields, -1));
  return d;
}

// The rows `index[0 .. n)` as a batch: int64 fields [n, kFields] and float labels [n].
std::pair<ember::Tensor, ember::Tensor> make_batch(const CtrData& d, const int64_t* index, int64_t n) {
  ember::Tensor x = ember::empty({n, kFields}, ember::DType::int64);
  ember::Tensor y = ember::empty({n});
  int64_t* px = x.data_ptr<int64_t>();
  float* py = y.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* row = &d.ids[index[i] * kFields];
    std::copy(row, row + kFields, px + i * kFields);
    py[i] = d.labels[index[i]];
  }
  return {x, y};
}

ember::Tensor labels_of(const CtrData& d, const std::vector<int64_t>& rows) {
  std::vector<float> y;
  y.reserve(rows.size());
  for (int64_t r : rows) y.push_back(d.labels[r]);
  return ember::tensor<float>(y);
}

// ---- models ----

// The three runs: FCN with Tri-BCE (the paper's model), FCN with BCE on the fused logit only (the
// paper's "w/o TB" ablation) and the ECN tower alone with BCE (the paper's ECN).
struct RunSpec {
  std::string name, model, loss;
};
const std::vector<RunSpec>& run_specs() {
  static const std::vector<RunSpec> specs = {
      {"fcn", "FCN", "Tri-BCE"}, {"fcn-bce", "FCN", "BCE (w/o TB)"}, {"ecn", "ECN", "BCE"}};
  return specs;
}

struct ModelConfig {
  int64_t embedding_dim = 16, num_heads = 1, ecn_layers = 3, lcn_layers = 4, ecn_only_layers = 4;
  double ecn_dropout = 0.1, lcn_dropout = 0.2;
  bool batch_norm = false, detach_tri_bce = false;
};

// One model with what the loop needs from it: its training loss on a batch, its logits, its
// embedding tables (for the regulariser and the parameter count).
struct Model {
  std::shared_ptr<nn::Module> module;
  std::function<ember::Tensor(const ember::Tensor& fields, const ember::Tensor& labels)> loss;
  std::function<ember::Tensor(const ember::Tensor& fields)> logits;
  std::vector<ember::Tensor> tables;
};

Model make_model(const RunSpec& spec, const ModelConfig& c, const CtrData& d) {
  Model m;
  std::shared_ptr<nn::MultiHeadFeatureEmbedding> embedding;
  if (spec.model == "FCN") {
    nn::FCNOptions o;
    o.vocab_sizes = d.vocab_sizes;
    o.field_names = d.field_names;
    o.embedding_dim = c.embedding_dim;
    o.num_heads = c.num_heads;
    o.ecn_layers = c.ecn_layers;
    o.lcn_layers = c.lcn_layers;
    o.ecn_dropout = c.ecn_dropout;
    o.lcn_dropout = c.lcn_dropout;
    o.batch_norm = c.batch_norm;
    auto fcn = std::make_shared<nn::FCN>(o);
    embedding = fcn->embedding_layer;
    m.module = fcn;
    m.logits = [fcn](const ember::Tensor& x) { return fcn->forward(x); };
    if (spec.loss == "Tri-BCE") {
      const ember::losses::TriBCEOptions options{.detach_weights = c.detach_tri_bce};
      m.loss = [fcn, options](const ember::Tensor& x, const ember::Tensor& y) {
        const nn::FCNOutput out = fcn->forward_all(x);
        return ember::losses::tri_bce(out.logit, out.logit_ecn, out.logit_lcn, y, options);
      };
    } else {
      m.loss = [fcn](const ember::Tensor& x, const ember::Tensor& y) {
        return ember::losses::binary_cross_entropy_with_logits(fcn->forward(x), y);
      };
    }
  } else {
    nn::ECNOptions o;
    o.vocab_sizes = d.vocab_sizes;
    o.field_names = d.field_names;
    o.embedding_dim = c.embedding_dim;
    o.num_heads = c.num_heads;
    o.num_layers = c.ecn_only_layers;
    o.dropout = c.ecn_dropout;
    o.batch_norm = c.batch_norm;
    auto ecn = std::make_shared<nn::ECN>(o);
    embedding = ecn->embedding_layer;
    m.module = ecn;
    m.logits = [ecn](const ember::Tensor& x) { return ecn->forward(x); };
    m.loss = [ecn](const ember::Tensor& x, const ember::Tensor& y) {
      return ember::losses::binary_cross_entropy_with_logits(ecn->forward(x), y);
    };
  }
  for (const auto& table : embedding->tables) m.tables.push_back(table->weight);
  return m;
}

// 15944754 -> "15,944,754"
std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// ---- training ----

struct Recipe {
  double lr = 1e-3, min_lr = 1e-6, lr_factor = 0.1, clip_norm = 10, emb_reg = 1e-5, min_delta = 1e-6;
  int64_t batch_size = 4096, eval_batch_size = 8192;
  int epochs = 100, patience = 2;
  uint64_t seed = 2024;
};

using examples::seconds_since;

struct Scores {
  double logloss = 0, auc = 0;
};

// AUC is undefined when the labels hold one class only (a tiny data set): NaN then, not an error.
double auc_or_nan(const ember::Tensor& scores, const ember::Tensor& labels) {
  const double positives = labels.sum().item<double>();
  if (positives == 0 || positives == static_cast<double>(labels.numel()))
    return std::numeric_limits<double>::quiet_NaN();
  return train::roc_auc(scores, labels);
}

bool has_both_classes(const CtrData& d, const std::vector<int64_t>& rows) {
  double positives = 0;
  for (int64_t r : rows) positives += d.labels[r];
  return positives > 0 && positives < static_cast<double>(rows.size());
}

// The model's click probabilities on `rows`, in eval mode (no dropout) without recording, scored
// with sklearn's log_loss (eps 1e-7) and roc_auc_score as FuxiCTR reports them.
Scores evaluate(Model& m, const CtrData& d, const std::vector<int64_t>& rows, int64_t batch_size) {
  const bool was_training = m.module->is_training();
  m.module->eval();
  std::vector<ember::Tensor> probabilities;
  {
    ember::NoGradGuard no_grad;
    for (size_t i = 0; i < rows.size(); i += static_cast<size_t>(batch_size)) {
      const auto n = static_cast<int64_t>(std::min(rows.size() - i, static_cast<size_t>(batch_size)));
      const auto [x, y] = make_batch(d, rows.data() + i, n);
      probabilities.push_back(ember::sigmoid(m.logits(x)));
    }
  }
  m.module->train(was_training);
  const ember::Tensor p = ember::cat(probabilities), y = labels_of(d, rows);
  return {train::log_loss(p, y), auc_or_nan(p, y)};
}

struct RunResult {
  int best_epoch = 0, epochs = 0;
  double best_valid_auc = 0, seconds = 0, seconds_per_epoch = 0;
  Scores test;
  int64_t params_total = 0, params_embedding = 0;
};

// Trains one model with the recipe of the top of this file and evaluates its best epoch on test.
RunResult run_training(const RunSpec& spec, Model& m, const CtrData& d, const Recipe& recipe,
                       train::MetricsLogger& metrics) {
  const auto start = std::chrono::steady_clock::now();
  RunResult result;
  result.params_total = examples::count_elements(m.module->parameters());
  result.params_embedding = examples::count_elements(m.tables);
  const std::vector<ember::Tensor> params = m.module->parameters();
  ember::optim::Adam optimizer(params, ember::optim::AdamOptions{.lr = recipe.lr});
  std::mt19937_64 shuffle_rng(recipe.seed);  // the same batches in every run
  std::vector<int64_t> order = d.train;
  std::map<std::string, ember::Tensor> best_state;
  double best_auc = -std::numeric_limits<double>::infinity();
  int misses = 0;
  const int64_t num_batches =
      (static_cast<int64_t>(order.size()) + recipe.batch_size - 1) / recipe.batch_size;
  m.module->train();

  for (int epoch = 1; epoch <= recipe.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    const double lr = optimizer.lr(0);
    std::shuffle(order.begin(), order.end(), shuffle_rng);
    train::ProgressBar bar(num_batches, fmt::format("{} epoch {}", spec.name, epoch), {.unit = "rows"});
    for (size_t i = 0; i < order.size(); i += static_cast<size_t>(recipe.batch_size)) {
      const auto n = static_cast<int64_t>(std::min(order.size() - i, static_cast<size_t>(recipe.batch_size)));
      const auto [x, y] = make_batch(d, order.data() + i, n);
      ember::Tensor loss = m.loss(x, y);
      if (recipe.emb_reg > 0) {  // FuxiCTR's add_regularization: (lambda / 2) * ||E||_2^2 per table
        ember::Tensor reg = m.tables[0].square().sum();
        for (size_t t = 1; t < m.tables.size(); ++t) reg = reg + m.tables[t].square().sum();
        loss = loss + reg * (recipe.emb_reg / 2);
      }
      optimizer.zero_grad();
      loss.backward();
      ember::optim::clip_grad_norm_(params, recipe.clip_norm);
      optimizer.step();
      bar.update(n, loss.item<double>());
    }
    bar.finish();
    const double train_loss = bar.running_loss();
    const Scores valid = evaluate(m, d, d.valid, recipe.eval_batch_size);
    // The first epoch is always the best so far (even with an undefined AUC), so there are weights
    // to restore.
    const bool improved = best_state.empty() || valid.auc > best_auc + recipe.min_delta;
    if (improved) {
      best_auc = valid.auc;
      result.best_epoch = epoch;
      misses = 0;
      for (const auto& [name, t] : m.module->state_dict()) best_state[name] = t.clone();
    } else {
      ++misses;
      optimizer.set_lr(0, std::max(lr * recipe.lr_factor, recipe.min_lr));
    }
    const double epoch_seconds = seconds_since(epoch_start);
    result.epochs = epoch;
    std::cout << fmt::format(
        "{} epoch {}: train loss {:.5f}, valid logloss {:.5f}, valid AUC {:.5f} {}(lr {:g}, {:.1f} s)\n",
        spec.name, epoch, train_loss, valid.logloss, valid.auc,
        improved ? "best " : fmt::format("no gain, miss {}/{} ", misses, recipe.patience), lr, epoch_seconds);
    metrics.log({{"run", spec.name},
                 {"epoch", static_cast<int64_t>(epoch)},
                 {"train_loss", train_loss},
                 {"valid_logloss", valid.logloss},
                 {"valid_auc", valid.auc},
                 {"lr", lr},
                 {"seconds", epoch_seconds}});
    if (misses >= recipe.patience) break;
  }
  m.module->load_state_dict(best_state);
  result.best_valid_auc = best_auc;
  result.test = evaluate(m, d, d.test, recipe.eval_batch_size);
  result.seconds = seconds_since(start);
  result.seconds_per_epoch = result.seconds / result.epochs;
  std::cout << fmt::format("{}: best epoch {} (valid AUC {:.5f}); test logloss {:.5f}, test AUC {:.5f}\n",
                           spec.name, result.best_epoch, best_auc, result.test.logloss, result.test.auc);
  metrics.log({{"run", spec.name},
               {"split", std::string("test")},
               {"best_epoch", static_cast<int64_t>(result.best_epoch)},
               {"test_logloss", result.test.logloss},
               {"test_auc", result.test.auc},
               {"seconds", result.seconds}});
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "FCN's click-through-rate experiment: FCN with Tri-BCE against FCN with plain BCE and ECN alone."};
  std::string dataset = "synthetic", data_path, out_dir = "fcn_ctr_out";
  std::vector<std::string> runs = {"fcn", "fcn-bce", "ecn"};
  int64_t rows = 200000, limit = 0, min_count = 10;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Recipe recipe;
  recipe.batch_size = 0;  // the dataset's default, below
  ModelConfig config;
  app.add_option("--dataset", dataset,
                 "synthetic (generated here, Criteo-shaped; not comparable to the paper) or criteo (the raw "
                 "Kaggle TSV from --data-path)")
      ->check(CLI::IsMember({"synthetic", "criteo"}))
      ->capture_default_str();
  app.add_option("--data-path", data_path,
                 "the Criteo TSV (label, I1-I13, C1-C26, no header), for --dataset criteo");
  app.add_option("--limit", limit, "criteo: read only the first N lines (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--rows", rows, "synthetic: rows to generate")
      ->check(CLI::Range(10, 100000000))
      ->capture_default_str();
  app.add_option("--min-count", min_count, "values seen fewer times in the training rows share the OOV id")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--runs", runs, "which runs: fcn (Tri-BCE), fcn-bce (FCN w/o TB), ecn (ECN alone, BCE)")
      ->check(CLI::IsMember({"fcn", "fcn-bce", "ecn"}))
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--epochs", recipe.epochs,
                 "at most this many epochs per run (early stopping usually ends sooner)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--patience", recipe.patience,
                 "stop after this many epochs in a row without a better valid AUC")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--batch-size", recipe.batch_size,
                 "rows per training step (default: 4096 for criteo, the paper's; 512 for synthetic, whose "
                 "160k training rows would make only 39 steps an epoch at 4096)")
      ->check(CLI::PositiveNumber);
  app.add_option("--lr", recipe.lr, "Adam's initial learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--clip", recipe.clip_norm, "global gradient-norm clip")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--emb-reg", recipe.emb_reg,
                 "lambda_emb: (lambda / 2) * squared L2 norm of the embeddings in the loss")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--embedding-dim", config.embedding_dim, "d, even")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--num-heads", config.num_heads, "H")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--ecn-layers", config.ecn_layers, "FCN's ECN tower depth")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--lcn-layers", config.lcn_layers, "FCN's LCN tower depth")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--ecn-only-layers", config.ecn_only_layers,
                 "depth of the ECN-alone run (4: the paper's 0.78M-parameter Criteo ECN)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--ecn-dropout", config.ecn_dropout,
                 "dropout after every ECN layer (also the ECN-alone run)")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  app.add_option("--lcn-dropout", config.lcn_dropout, "dropout after every LCN layer")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  app.add_flag("--batch-norm", config.batch_norm,
               "BatchNorm in the cross layers (off in the Criteo best run)");
  app.add_flag("--detach-tri-bce", config.detach_tri_bce,
               "treat Tri-BCE's tower weights as constants (the reference code does not)");
  app.add_option("--out-dir", out_dir, "where metrics.jsonl goes")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for the math")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", recipe.seed,
                 "seeds the synthetic data, the split, the initialisation and the shuffles")
      ->capture_default_str();
  if (std::optional<int> exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;
  if (dataset == "criteo" && data_path.empty()) {
    std::cerr << "error: --dataset criteo needs --data-path (the Kaggle Criteo train.txt)\n";
    return 1;
  }
  if (dataset == "criteo" && !fs::is_regular_file(data_path)) {
    std::cerr << fmt::format("error: --data-path {}: no such file (or not a regular file)\n", data_path);
    return 1;
  }
  if (config.embedding_dim % 2 != 0) {
    std::cerr << "error: --embedding-dim must be even (each field's vector is split in halves)\n";
    return 1;
  }
  if (recipe.batch_size == 0) recipe.batch_size = dataset == "criteo" ? 4096 : 512;

  try {
    const auto start = std::chrono::steady_clock::now();
    ember::set_num_threads(threads);
    fs::create_directories(out_dir);
    if (dataset == "synthetic")
      std::cout
          << "SYNTHETIC data: a Criteo-shaped set generated here from --seed (a planted logistic model with "
             "field crosses), so that this run needs no download. Its numbers are NOT comparable to the "
             "paper's.\n";
    const CtrData d = dataset == "synthetic" ? make_synthetic(rows, min_count, recipe.seed)
                                             : load_criteo(data_path, limit, min_count, recipe.seed);
    int64_t features = 0;
    for (int64_t v : d.vocab_sizes) features += v;
    double positives = 0;
    for (float y : d.labels) positives += y;
    std::cout << fmt::format(
        "{}: {} rows ({:.1f}% clicks), {} train / {} valid / {} test; {} fields, {} features (min count {}; "
        "prepared in {:.1f} s)\n",
        d.name, d.rows, 100 * positives / d.rows, d.train.size(), d.valid.size(), d.test.size(), kFields,
        with_commas(features), min_count, seconds_since(start));
    if (dataset == "criteo") {
      std::string sizes;
      for (int64_t f = 0; f < kFields; ++f)
        sizes += fmt::format(" {}:{}", d.field_names[f], d.vocab_sizes[f]);
      std::cout << "table rows per field (padding, K values, OOV):" << sizes
                << "\n(FuxiCTR's Criteo_x4, on its own split of all 45,840,617 rows: 910,747 features)\n";
    }
    for (const auto& [split, members] : {std::pair{"validation", &d.valid}, std::pair{"test", &d.test}})
      if (!has_both_classes(d, *members))
        std::cout << fmt::format(
            "warning: the {} rows hold one class only, so their AUC is undefined (nan)\n", split);
    std::cout << fmt::format(
        "FCN d {} H {} ECN {} / LCN {} layers, dropout {} / {}, batch norm {}{}; ECN alone {} layers; Adam "
        "lr {:g}, clip {:g}, lambda_emb {:g}, batch {}{}, at most {} epochs, patience {}; seed {}; {} "
        "threads\n",
        config.embedding_dim, config.num_heads, config.ecn_layers, config.lcn_layers, config.ecn_dropout,
        config.lcn_dropout, config.batch_norm ? "on" : "off",
        config.detach_tri_bce ? ", Tri-BCE weights detached" : "", config.ecn_only_layers, recipe.lr,
        recipe.clip_norm, recipe.emb_reg, recipe.batch_size,
        recipe.batch_size != 4096 ? " (the paper's Criteo run: 4096)" : "", recipe.epochs, recipe.patience,
        recipe.seed, threads);

    const std::string metrics_path = (fs::path(out_dir) / "metrics.jsonl").string();
    fs::remove(metrics_path);  // one file per run
    train::MetricsLogger metrics(metrics_path);

    std::vector<std::pair<RunSpec, RunResult>> results;
    for (const RunSpec& spec : run_specs()) {
      if (std::find(runs.begin(), runs.end(), spec.name) == runs.end()) continue;
      ember::manual_seed(recipe.seed);  // the same initial weights (and dropout draws) for both FCN runs
      Model m = make_model(spec, config, d);
      results.emplace_back(spec, run_training(spec, m, d, recipe, metrics));
    }

    // The summary.
    std::cout << fmt::format("\n{} test set, each model at its best validation epoch\n", d.name);
    const auto row = [](const std::string& run, const std::string& model, const std::string& loss,
                        const std::string& non_embedding, const std::string& total, const std::string& epochs,
                        const std::string& logloss, const std::string& auc, const std::string& time) {
      std::cout << fmt::format("{:<8} {:<5} {:<12} {:>10} {:>11} {:>6} {:>8} {:>7} {:>13}\n", run, model,
                               loss, non_embedding, total, epochs, logloss, auc, time);
    };
    row("run", "model", "loss", "non-emb", "params", "best", "logloss", "AUC %", "time (/epoch)");
    for (const auto& [spec, r] : results)
      row(spec.name, spec.model, spec.loss, with_commas(r.params_total - r.params_embedding),
          with_commas(r.params_total), fmt::format("{}/{}", r.best_epoch, r.epochs),
          fmt::format("{:.5f}", r.test.logloss), fmt::format("{:.3f}", 100 * r.test.auc),
          fmt::format("{} ({:.0f} s)", train::format_duration(r.seconds), r.seconds_per_epoch));
    if (!d.planted.empty()) {
      std::vector<float> p;
      for (int64_t r : d.test) p.push_back(d.planted[r]);
      const ember::Tensor planted = ember::tensor<float>(p), y = labels_of(d, d.test);
      row("planted", "-", "(the truth)", "-", "-", "-", fmt::format("{:.5f}", train::log_loss(planted, y)),
          fmt::format("{:.3f}", 100 * auc_or_nan(planted, y)), "");
    }
    row("paper", "FCN", "Tri-BCE", "1,372,802", "15,944,754", "22", "0.4358", "81.62", "");
    row("paper", "ECN", "BCE", "784,369", "-", "-", "0.4364", "81.55", "");
    std::cout
        << "(paper: Criteo_x4, all 45.8M rows, Table 4 of arXiv 2407.13349 v7; \"best\" is the best epoch / "
           "epochs run. Only a full Criteo run with the default settings compares with the paper.)\n";
    const auto find = [&](const std::string& name) -> const RunResult* {
      for (const auto& [spec, r] : results)
        if (spec.name == name) return &r;
      return nullptr;
    };
    if (const RunResult* tb = find("fcn"), *bce = find("fcn-bce"); tb && bce)
      std::cout << fmt::format(
          "Tri-BCE - BCE (FCN): test AUC {:+.3f} points, test logloss {:+.5f} (one seed)\n",
          100 * (tb->test.auc - bce->test.auc), tb->test.logloss - bce->test.logloss);
    std::cout << fmt::format("done in {}; metrics in {}\n", train::format_duration(seconds_since(start)),
                             metrics_path);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
