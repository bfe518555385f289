// The experiment of the Cut Cross-Entropy paper (docs/losses/cce.md) in miniature, in one command:
// train a small word-level causal transformer language model twice, from the same initial weights
// on the same batches, once with the materialised loss (logits = h C^T, [N, V], then
// losses::cross_entropy) and once with losses::cut_cross_entropy(h, C, targets), which never forms
// the logits; then compare the loss curves, the validation perplexities, the time per step and
// the peak memory of the loss.
//
//   ./lm_cce                                  # the Debian package `fortunes`, 300 steps, ~4 minutes
//   ./lm_cce --epochs 2 --steps 0             # two whole epochs (1060 steps)
//   ./lm_cce --no-filter                      # CCE without its gradient filter
//   ./lm_cce --text book.txt --vocab 32768    # any plain text
//   ./lm_cce --text README.md --steps 5 --dim 32 --layers 1 --heads 2 --context 16 --batch-size 4 \
//            --vocab 512 --threads 1          # a smoke run (the ctest)
//
// Text: the fortune files of /usr/share/games/fortunes (not their *.dat / *.u8 companions nor
// subfolders), or the files / folders given with --text. Quotations are separated by lines holding
// "%" and become documents that end with an "<eos>" token; a file without "%" lines is one
// document. Words are lower-cased runs of letters, digits, apostrophes and non-ASCII bytes; every
// other printable ASCII character is a token of its own. The vocabulary is <unk>, <eos> and the
// training words seen at least --min-count times, at most --vocab in all. Every 20th document
// (with --val-fraction 0.05) is held out for validation; with fewer than 40 documents, the last 5%
// of the token stream instead.
//
// The model: token embedding [V, D] plus learned positions [T, D], --layers pre-norm causal
// TransformerBlocks (MLP 4D, no dropout), a final LayerNorm giving h [B, T, D], and the classifier
// C = the token embedding (tied, as in GPT-2 and Gemma 2: the CCE API takes C directly, so the tied
// matrix is passed as is). AdamW with a linear warm-up and cosine decay, gradients clipped to norm
// --clip. The two runs go in lock step (a step of one, then the same step of the other), so they
// share the machine's load and their step times can be compared.
//
// What is measured in every step of each run (the step is cut at h, so the head can be measured
// alone: h is detached into a leaf, the loss's forward and backward run on it, then the body's
// backward starts from that leaf's gradient dh; the gradients are those of one backward through the
// whole graph, the tied C adding its embedding part to its classifier part):
//   loss ms         the loss's forward + backward (the logits GEMM included for the baseline)
//   loss peak MiB   the CPU allocator's high-water mark during that loss forward + backward, above
//                   what was allocated before it: for the baseline the N x V logits and the N x V
//                   buffers of cross_entropy's forward and backward, dh and dC; for CCE its
//                   scratch (tiles, O(N + V) vectors), dh and dC. dh + dC (the gradients the head
//                   must return) is the lower bound, printed beside it
//   step peak MiB   the same for the model's whole forward + backward (activations included), the
//                   optimizer step excluded
//   ms per step     forward + backward + gradient clipping + AdamW step (median over the steps)
// Left in --out-dir: metrics.jsonl, a line per run every --log-every steps and one per epoch.
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/losses/cce.h>
#include <ember/memory.h>
#include <ember/nn.h>
#include <ember/optim.h>
#include <ember/train.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "example_util.h"

namespace nn = ember::nn;
namespace train = ember::train;
namespace losses = ember::losses;
namespace fs = std::filesystem;
using ember::Tensor;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;
const char* const kFortunes = "/usr/share/games/fortunes";

// A problem with the input (missing file, too little text): reported on stderr, exit status 1.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using examples::seconds_since;

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- text ----

// The files behind the --text arguments: a file as is, a folder's regular files in name order
// (not its subfolders, nor fortune's *.dat index and *.u8 UTF-8 copies).
std::vector<fs::path> text_files(const std::vector<std::string>& args) {
  std::vector<fs::path> files;
  for (const std::string& arg : args) {
    const fs::path p(arg);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> in_dir;
      for (const auto& entry : fs::directory_iterator(p)) {
        const std::string ext = entry.path().extension().string();
        if (entry.is_regular_file() && ext != ".dat" && ext != ".u8") in_dir.push_back(entry.path());
      }
      std::sort(in_dir.begin(), in_dir.end());
      if (in_dir.empty()) throw InputError(fmt::format("{}: a folder without text files", arg));
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      throw InputError(fmt::format("{}: no such file or folder", arg));
    }
  }
  return files;
}

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '\'' || c >= 0x80; }

// Appends the tokens of one line: lower-cased words, and single punctuation characters.
void tokenize_line(const std::string& line, std::vector<std::string>& out) {
  size_t i = 0;
  while (i < line.size()) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (is_word_byte(c)) {
      size_t j = i;
      std::string word;
      while (j < line.size() && is_word_byte(static_cast<unsigned char>(line[j]))) {
        const auto b = static_cast<unsigned char>(line[j++]);
        word += static_cast<char>(b < 0x80 ? std::tolower(b) : b);
      }
      out.push_back(std::move(word));
      i = j;
    } else {
      if (std::ispunct(c)) out.emplace_back(1, static_cast<char>(c));
      ++i;  // whitespace and control characters only separate
    }
  }
}

// The documents of a file: the texts between lines holding only "%" (fortune's format), each
// ending with "<eos>". Empty ones are dropped.
void read_documents(const fs::path& path, std::vector<std::vector<std::string>>& docs) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot read", path.string()));
  std::vector<std::string> doc;
  const auto close = [&] {
    if (!doc.empty()) {
      doc.emplace_back("<eos>");
      docs.push_back(std::move(doc));
    }
    doc.clear();
  };
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (line == "%")
      close();
    else
      tokenize_line(line, doc);
  }
  close();
}

struct Corpus {
  std::vector<std::string> words;   // id -> word; 0 is <unk>, 1 is <eos>
  std::vector<int64_t> train, val;  // token ids
  int64_t files = 0, documents = 0, val_documents = 0, distinct_train_words = 0;
  int64_t train_unk = 0, val_unk = 0;
};

Corpus load_corpus(const std::vector<std::string>& args, int64_t max_vocab, int64_t min_count,
                   double val_fraction) {
  const std::vector<fs::path> files = text_files(args);
  std::vector<std::vector<std::string>> docs;
  for (const fs::path& f : files) read_documents(f, docs);
  if (docs.empty()) throw InputError("the text holds no words (empty files?)");

  Corpus c;
  c.files = static_cast<int64_t>(files.size());
  c.documents = static_cast<int64_t>(docs.size());
  // The split: every k-th document (an even sample of all files), or, for a handful of documents,
  // the tail of the token stream.
  const auto k = static_cast<int64_t>(std::llround(1.0 / val_fraction));
  std::vector<const std::string*> train_words, val_words;
  if (c.documents >= 2 * k) {
    for (int64_t d = 0; d < c.documents; ++d) {
      const bool val = d % k == k - 1;
      c.val_documents += val;
      for (const std::string& w : docs[d]) (val ? val_words : train_words).push_back(&w);
    }
  } else {
    for (const auto& doc : docs)
      for (const std::string& w : doc) train_words.push_back(&w);
    const auto n_val =
        static_cast<size_t>(std::llround(val_fraction * static_cast<double>(train_words.size())));
    val_words.assign(train_words.end() - static_cast<std::ptrdiff_t>(n_val), train_words.end());
    train_words.resize(train_words.size() - n_val);
  }

  // The vocabulary, from the training words only: by count, then alphabetically.
  std::unordered_map<std::string, int64_t> counts;
  for (const std::string* w : train_words) ++counts[*w];
  c.distinct_train_words = static_cast<int64_t>(counts.size());
  std::vector<std::pair<std::string, int64_t>> by_count;
  for (const auto& [w, n] : counts)
    if (n >= min_count && w != "<eos>") by_count.emplace_back(w, n);
  std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (static_cast<int64_t>(by_count.size()) > max_vocab - 2) by_count.resize(max_vocab - 2);
  c.words = {"<unk>", "<eos>"};
  std::unordered_map<std::string, int64_t> ids = {{"<unk>", 0}, {"<eos>", 1}};
  for (const auto& [w, n] : by_count) {
    ids.emplace(w, static_cast<int64_t>(c.words.size()));
    c.words.push_back(w);
  }
  const auto encode = [&](const std::vector<const std::string*>& words, std::vector<int64_t>& out,
                          int64_t& unk) {
    out.reserve(words.size());
    for (const std::string* w : words) {
      const auto it = ids.find(*w);
      out.push_back(it == ids.end() ? 0 : it->second);
      unk += it == ids.end();
    }
  };
  encode(train_words, c.train, c.train_unk);
  encode(val_words, c.val, c.val_unk);
  return c;
}

// Cuts a token stream into windows of context + 1 tokens, one every `context` tokens (so every
// token but the first is a target exactly once): inputs window[0, T), targets window[1, T].
int64_t window_count(const std::vector<int64_t>& stream, int64_t context) {
  return stream.size() < 2 ? 0 : static_cast<int64_t>(stream.size() - 1) / context;
}

// The inputs and targets [B, T] of the windows `first .. first + count` of `order`.
std::pair<Tensor, Tensor> make_batch(const std::vector<int64_t>& stream, const std::vector<int64_t>& order,
                                     int64_t first, int64_t count, int64_t context) {
  std::vector<int64_t> x, y;
  x.reserve(count * context);
  y.reserve(count * context);
  for (int64_t b = first; b < first + count; ++b) {
    const int64_t start = order[b] * context;
    for (int64_t t = 0; t < context; ++t) {
      x.push_back(stream[start + t]);
      y.push_back(stream[start + t + 1]);
    }
  }
  return {ember::tensor<int64_t>(x, {count, context}), ember::tensor<int64_t>(y, {count, context})};
}

// ---- model ----

// A GPT-style language model up to the classifier: h = LayerNorm(blocks(embed(x) + pos)).
class TinyLM : public nn::Module {
 public:
  TinyLM(int64_t vocab, int64_t dim, int64_t heads, int64_t layers, int64_t context) {
    tok = register_module("tok", std::make_shared<nn::Embedding>(vocab, dim));
    pos = register_parameter("pos", ember::zeros({context, dim}));
    blocks = register_module("blocks", std::make_shared<nn::Sequential>());
    for (int64_t i = 0; i < layers; ++i)
      blocks->push_back(std::make_shared<nn::TransformerBlock>(dim, heads, 4 * dim, 0.0, /*causal=*/true));
    ln_f = register_module("ln_f", std::make_shared<nn::LayerNorm>(dim));
    // GPT-2's N(0, 0.02): with the tied classifier, the initial logits are small (loss ~ log V).
    nn::init::normal_(tok->weight, 0.0, 0.02);
    nn::init::normal_(pos, 0.0, 0.02);
  }
  // [B, T] token ids -> [B, T, D]
  Tensor hidden(const Tensor& ids) {
    const Tensor x = tok->forward(ids) + pos.narrow(0, 0, ids.size(1));
    return ln_f->forward(blocks->forward(x));
  }
  Tensor forward(const Tensor& ids) override { return hidden(ids); }
  // The classifier [V, D]: the token embedding (tied).
  const Tensor& classifier() const { return tok->weight; }

  std::shared_ptr<nn::Embedding> tok;
  Tensor pos;
  std::shared_ptr<nn::Sequential> blocks;
  std::shared_ptr<nn::LayerNorm> ln_f;
};

using examples::count_parameters;

// ---- the two losses ----

using HeadLoss = std::function<Tensor(const Tensor& h, const Tensor& classifier, const Tensor& targets)>;

// The baseline: the [B*T, V] logits, then cross-entropy (mean over the positions).
Tensor materialised_loss(const Tensor& h, const Tensor& classifier, const Tensor& targets) {
  const Tensor logits = ember::matmul(h.reshape({-1, h.size(-1)}), classifier.t());
  return losses::cross_entropy(logits, targets.reshape({-1}));
}

// CCE: the same mean, from h [B, T, D] and C [V, D]; no logits tensor. `filter`: the gradient
// filter (on by default, as in the paper).
HeadLoss cce_loss(bool filter) {
  return [filter](const Tensor& h, const Tensor& classifier, const Tensor& targets) {
    return losses::cut_cross_entropy(h, classifier, targets, {.filter_gradients = filter});
  };
}

// ---- training ----

struct Recipe {
  double lr = 2e-3, weight_decay = 0.1, clip = 1.0;
  int64_t batch_size = 16, context = 64, warmup = 0, total_steps = 0;
};

struct Run {
  std::string name, loss_name;
  HeadLoss loss;
  std::shared_ptr<TinyLM> model;
  std::unique_ptr<ember::optim::AdamW> optimizer;
  std::unique_ptr<ember::optim::LinearWarmupCosineLR> schedule;
  // per step
  std::vector<double> train_loss, step_seconds, loss_seconds;
  int64_t loss_peak = 0, step_peak = 0;  // bytes, the largest over the steps
  std::vector<double> val_loss;          // per epoch
  Tensor h_head;                         // the latest step's detached h (for the same-input check)
};

Run make_run(const std::string& name, const std::string& loss_name, HeadLoss loss, int64_t vocab, int64_t dim,
             int64_t heads, int64_t layers, const Recipe& recipe, uint64_t seed) {
  Run r;
  r.name = name;
  r.loss_name = loss_name;
  r.loss = std::move(loss);
  ember::manual_seed(seed);  // the same seed before construction: the same initial weights
  r.model = std::make_shared<TinyLM>(vocab, dim, heads, layers, recipe.context);
  ember::optim::AdamWOptions o;
  o.lr = recipe.lr;
  o.weight_decay = recipe.weight_decay;
  r.optimizer = std::make_unique<ember::optim::AdamW>(r.model->parameters(), o);
  r.schedule =
      std::make_unique<ember::optim::LinearWarmupCosineLR>(*r.optimizer, recipe.warmup, recipe.total_steps);
  return r;
}

// One training step. Returns the loss.
double train_step(Run& r, const Tensor& x, const Tensor& y, const Recipe& recipe) {
  using ember::cpu::memory_stats;
  using ember::cpu::reset_peak_memory_stats;
  const auto start = std::chrono::steady_clock::now();
  r.model->train();
  r.optimizer->zero_grad();
  const int64_t base = memory_stats().current_bytes;
  reset_peak_memory_stats();
  // The body's forward, up to h, then the loss's forward + backward on a leaf copy of h ...
  const Tensor h = r.model->hidden(x);
  const int64_t peak_forward = memory_stats().peak_bytes;
  r.h_head = h.detach().requires_grad_();
  const int64_t before_loss = memory_stats().current_bytes;
  reset_peak_memory_stats();
  const auto loss_start = std::chrono::steady_clock::now();
  Tensor loss = r.loss(r.h_head, r.model->classifier(), y);
  loss.backward();
  r.loss_seconds.push_back(seconds_since(loss_start));
  const int64_t peak_loss = memory_stats().peak_bytes;
  r.loss_peak = std::max(r.loss_peak, peak_loss - before_loss);
  // ... and the body's backward from dh (C's gradient adds the embedding's part to the head's).
  reset_peak_memory_stats();
  h.backward(r.h_head.grad());
  const int64_t peak_backward = memory_stats().peak_bytes;
  r.step_peak = std::max(r.step_peak, std::max({peak_forward, peak_loss, peak_backward}) - base);
  if (recipe.clip > 0) ember::optim::clip_grad_norm_(r.model->parameters(), recipe.clip);
  r.optimizer->step();
  r.schedule->step();
  r.step_seconds.push_back(seconds_since(start));
  const double value = loss.item<double>();
  r.train_loss.push_back(value);
  return value;
}

// The mean next-token loss over the validation windows, in eval mode without a graph. Both runs are
// scored by the same function (CCE's forward, which is exact: no filtering happens in a forward),
// so a difference between them is a difference of their weights.
double evaluate(TinyLM& model, const std::vector<int64_t>& stream, int64_t context, int64_t batch_size) {
  ember::NoGradGuard no_grad;
  model.eval();
  const int64_t windows = window_count(stream, context);
  std::vector<int64_t> order(windows);
  for (int64_t i = 0; i < windows; ++i) order[i] = i;
  double sum = 0;
  int64_t count = 0;
  for (int64_t first = 0; first < windows; first += batch_size) {
    const int64_t n = std::min(batch_size, windows - first);
    const auto [x, y] = make_batch(stream, order, first, n, context);
    sum += losses::cut_cross_entropy(model.hidden(x), model.classifier(), y,
                                     {.reduction = losses::Reduction::sum})
               .item<double>();
    count += y.numel();
  }
  model.train();
  return sum / static_cast<double>(count);
}

// max |a - b| over two same-shaped parameter lists' gradients, and max |a| (for a relative figure).
std::pair<double, double> gradient_difference(const nn::Module& a, const nn::Module& b) {
  const std::vector<Tensor> pa = a.parameters(), pb = b.parameters();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    if (!pa[i].grad().defined() || !pb[i].grad().defined()) continue;
    diff = std::max(diff, (pa[i].grad() - pb[i].grad()).abs().max().item<double>());
    scale = std::max(scale, pa[i].grad().abs().max().item<double>());
  }
  return {diff, scale};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Train a small transformer language model twice, with the materialised cross-entropy and with Cut "
      "Cross-Entropy, and compare loss curves, time and the loss's memory."};
  std::vector<std::string> text = {kFortunes};
  std::string out_dir = "lm_cce_out";
  int64_t vocab = 16384, min_count = 2, dim = 128, heads = 4, layers = 2, epochs = 1, steps = 300;
  int64_t log_every = 10;
  double val_fraction = 0.05, warmup_fraction = 0.05;
  int threads = 1;
  uint64_t seed = 0;
  bool filter = true;
  Recipe recipe;
  app.add_option("--text", text,
                 "plain-text files or folders to train on (default: the fortune files of the Debian package "
                 "fortunes)")
      ->capture_default_str();
  app.add_option("--vocab", vocab, "the vocabulary's size at most (<unk> and <eos> included)")
      ->check(CLI::Range(int64_t{3}, int64_t{1} << 24))
      ->capture_default_str();
  app.add_option("--min-count", min_count, "keep training words seen at least this often")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--val-fraction", val_fraction, "the share of documents (or tokens) held out for validation")
      ->check(CLI::Range(0.001, 0.5))
      ->capture_default_str();
  app.add_option("--dim", dim, "model width D")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--heads", heads, "attention heads (must divide --dim)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--layers", layers, "transformer blocks")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--context", recipe.context, "tokens per sequence T")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--batch-size", recipe.batch_size, "sequences per step B (N = B x T positions)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training windows (cut short by --steps)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--steps", steps, "stop after this many steps per run (0: all of --epochs)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--lr", recipe.lr, "AdamW's peak learning rate (linear warm-up, then cosine to 0)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", warmup_fraction, "the warm-up's share of the steps")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--weight-decay", recipe.weight_decay, "AdamW's decoupled weight decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--clip", recipe.clip, "clip the gradients' joint norm to this (0: no clipping)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag(
      "!--no-filter", filter,
      "CCE without its gradient filter (exact gradients; tells the filter's share of the curves' drift "
      "from float rounding's)");
  app.add_option("--log-every", log_every, "steps between lines of output and of metrics.jsonl")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--out-dir", out_dir, "where metrics.jsonl goes")->capture_default_str();
  app.add_option("--threads", threads,
                 "CPU threads for the math (more pay only on an idle machine: on a busy one, OpenMP threads "
                 "waiting for each other make a step many times slower)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seed", seed, "seeds the initial weights and the batch order")->capture_default_str();
  if (std::optional<int> exit_code = examples::parse_command_line(app, argc, argv)) return *exit_code;
  if (dim % heads != 0) {
    std::cerr << fmt::format("error: --heads {} does not divide --dim {}\n", heads, dim);
    return 1;
  }

  try {
    const auto start = std::chrono::steady_clock::now();
    ember::set_num_threads(threads);
    if (text.size() == 1 && text[0] == kFortunes && !fs::exists(kFortunes))
      throw InputError(fmt::format(
          "{} not found: install the Debian package fortunes, or pass --text FILE...", kFortunes));
    const Corpus corpus = load_corpus(text, vocab, min_count, val_fraction);
    const double load_seconds = seconds_since(start);
    const auto V = static_cast<int64_t>(corpus.words.size());
    const int64_t T = recipe.context, B = recipe.batch_size;
    const auto pct = [](int64_t part, size_t whole) {
      return whole ? 100.0 * part / static_cast<double>(whole) : 0.0;
    };
    std::cout << fmt::format(
        "text: {} files, {} documents ({} held out); {} training tokens ({:.2f}% <unk>), "
        "{} validation tokens ({:.2f}% <unk>); read in {:.1f} s\n",
        corpus.files, corpus.documents,
        corpus.val_documents > 0 ? fmt::format("{}", corpus.val_documents)
                                 : fmt::format("the last {:g}% of tokens", 100 * val_fraction),
        corpus.train.size(), pct(corpus.train_unk, corpus.train.size()), corpus.val.size(),
        pct(corpus.val_unk, corpus.val.size()), load_seconds);
    std::cout << fmt::format(
        "vocabulary: {} (<unk>, <eos> and the {} most frequent of the {} distinct training words seen >= {} "
        "times)\n",
        V, V - 2, corpus.distinct_train_words, min_count);

    const int64_t train_windows = window_count(corpus.train, T), val_windows = window_count(corpus.val, T);
    if (train_windows < B)
      throw InputError(fmt::format(
          "too little text: {} training tokens make {} windows of {} + 1 tokens, fewer than one batch of {}",
          corpus.train.size(), train_windows, T, B));
    if (val_windows < 1)
      throw InputError(fmt::format("too little text: {} validation tokens, fewer than one window of {} + 1",
                                   corpus.val.size(), T));
    const int64_t batches_per_epoch = train_windows / B;  // the last partial batch is dropped
    recipe.total_steps = steps > 0 ? std::min(steps, epochs * batches_per_epoch) : epochs * batches_per_epoch;
    epochs = (recipe.total_steps + batches_per_epoch - 1) / batches_per_epoch;
    recipe.warmup =
        static_cast<int64_t>(std::llround(warmup_fraction * static_cast<double>(recipe.total_steps)));

    Run runs[2] = {make_run("materialised", "cross_entropy(h C^T)", materialised_loss, V, dim, heads, layers,
                            recipe, seed),
                   make_run("cce", filter ? "cut_cross_entropy(h, C)" : "cut_cross_entropy, no filter",
                            cce_loss(filter), V, dim, heads, layers, recipe, seed)};
    Run &mat = runs[0], &cce = runs[1];
    const int64_t N = B * T;
    const double lower_bound_mib = static_cast<double>((N + V) * dim * 4) / kMiB;  // dh + dC, float32
    std::cout << fmt::format(
        "model: embedding {} x {} (tied with the classifier C) + positions {} x {}, "
        "{} pre-norm causal blocks ({} heads, MLP {}), LayerNorm; {} parameters\n",
        V, dim, T, dim, layers, heads, 4 * dim, count_parameters(*mat.model));
    std::cout << fmt::format(
        "training: {} steps ({} epoch(s) of {} batches) of N = {} x {} = {} positions; "
        "logits [N, V] = {:.1f} MiB in float32; "
        "AdamW lr {} (warm-up {} steps, cosine), weight decay {}, clip {}; {} threads\n",
        recipe.total_steps, epochs, batches_per_epoch, B, T, N, static_cast<double>(N * V * 4) / kMiB,
        recipe.lr, recipe.warmup, recipe.weight_decay, recipe.clip, threads);

    fs::create_directories(out_dir);
    const std::string metrics_path = (fs::path(out_dir) / "metrics.jsonl").string();
    fs::remove(metrics_path);  // one file per run
    train::MetricsLogger metrics(metrics_path);

    std::vector<int64_t> order(train_windows);
    std::mt19937_64 shuffle_rng(seed);
    int64_t step = 0;
    double max_diff = 0, same_input_diff = 0, step1_diff = 0, grad_diff = 0, grad_scale = 0;
    int64_t max_diff_step = 1;
    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      for (int64_t i = 0; i < train_windows; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), shuffle_rng);
      const int64_t epoch_first_step = step;
      for (int64_t b = 0; b < batches_per_epoch && step < recipe.total_steps; ++b) {
        const auto [x, y] = make_batch(corpus.train, order, b * B, B, T);
        ++step;
        // The two runs in lock step, on the same batch.
        const double loss_mat = train_step(mat, x, y, recipe);
        const double loss_cce = train_step(cce, x, y, recipe);
        const double diff = std::abs(loss_cce - loss_mat);
        if (diff > max_diff) max_diff = diff, max_diff_step = step;
        if (step == 1) {  // identical weights and batch: the losses and gradients should agree
          step1_diff = diff;
          std::tie(grad_diff, grad_scale) = gradient_difference(*mat.model, *cce.model);
        }
        if (step % log_every != 0 && step != recipe.total_steps) continue;
        // The same-input check: per position, CCE's loss against the materialised one on the CCE
        // run's own h and (just updated) C.
        double same;
        {
          ember::NoGradGuard no_grad;
          const Tensor& C = cce.model->classifier();
          const Tensor per_position_cce =
              losses::cut_cross_entropy(cce.h_head, C, y, {.reduction = losses::Reduction::none})
                  .reshape({-1});
          const Tensor per_position_mat =
              losses::cross_entropy(ember::matmul(cce.h_head.reshape({-1, dim}), C.t()), y.reshape({-1}),
                                    {.reduction = losses::Reduction::none});
          same = (per_position_cce - per_position_mat).abs().max().item<double>();
        }
        same_input_diff = std::max(same_input_diff, same);
        for (Run* r : {&mat, &cce}) {
          const auto n = static_cast<std::ptrdiff_t>(std::min<int64_t>(log_every, step));
          const auto last = [&](const std::vector<double>& v) {
            return std::vector<double>(v.end() - n, v.end());
          };
          double mean_loss = 0;
          for (double l : last(r->train_loss)) mean_loss += l / static_cast<double>(n);
          train::MetricRow row = {{"run", r->name},
                                  {"step", step},
                                  {"epoch", epoch},
                                  {"train_loss", r->train_loss.back()},
                                  {"train_loss_mean", mean_loss},
                                  {"lr", r->schedule->get_last_lr()[0]},
                                  {"step_ms", 1e3 * median(last(r->step_seconds))},
                                  {"loss_ms", 1e3 * median(last(r->loss_seconds))},
                                  {"loss_peak_mib", static_cast<double>(r->loss_peak) / kMiB},
                                  {"step_peak_mib", static_cast<double>(r->step_peak) / kMiB}};
          if (r == &cce) {
            row.emplace_back("abs_diff_vs_materialised", diff);
            row.emplace_back("same_input_max_abs_diff_per_position", same);
          }
          metrics.log(row);
        }
        std::cout << fmt::format(
            "step {:>5}/{}  loss: materialised {:.4f}  cce {:.4f}  |diff| {:.1e}  "
            "(same input, per position {:.1e})  ms per step {:.0f} / {:.0f}  loss ms {:.0f} / {:.0f}\n",
            step, recipe.total_steps, loss_mat, loss_cce, diff, same, 1e3 * mat.step_seconds.back(),
            1e3 * cce.step_seconds.back(), 1e3 * mat.loss_seconds.back(), 1e3 * cce.loss_seconds.back());
      }
      // Validation after each epoch (a cut-short last one included).
      const int64_t epoch_steps = step - epoch_first_step;
      for (Run* r : {&mat, &cce}) {
        const auto val_start = std::chrono::steady_clock::now();
        const double val = evaluate(*r->model, corpus.val, T, B);
        const double val_seconds = seconds_since(val_start);
        r->val_loss.push_back(val);
        double train_mean = 0;
        for (int64_t s = epoch_first_step; s < step; ++s) train_mean += r->train_loss[s] / epoch_steps;
        std::cout << fmt::format(
            "{} epoch {}/{} ({} steps): train loss {:.4f}, validation loss {:.4f}, perplexity {:.1f} "
            "({:.1f} s)\n",
            r->name, epoch, epochs, epoch_steps, train_mean, val, std::exp(val), val_seconds);
        metrics.log({{"run", r->name},
                     {"epoch", epoch},
                     {"step", step},
                     {"epoch_train_loss", train_mean},
                     {"val_loss", val},
                     {"val_ppl", std::exp(val)}});
      }
    }

    // The summary.
    std::cout << fmt::format(
        "\n{} on {} tokens, V = {}, D = {}, N = {} positions per step, {} steps, float32, CPU, {} threads\n",
        text.size() == 1 && text[0] == kFortunes ? "fortunes" : "--text", corpus.train.size(), V, dim, N,
        step, threads);
    const int64_t tail = std::min<int64_t>(log_every, step);
    std::cout << fmt::format("{:<13} {:<28} {:>10} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10}\n", "run", "loss",
                             fmt::format("train({})", tail), "val loss", "val ppl", "ms/step", "loss ms",
                             "loss MiB", "step MiB");
    for (const Run* r : {&mat, &cce}) {
      double train_tail = 0;
      for (int64_t s = step - tail; s < step; ++s) train_tail += r->train_loss[s] / tail;
      std::cout << fmt::format(
          "{:<13} {:<28} {:>10.4f} {:>9.4f} {:>8.1f} {:>8.1f} {:>8.1f} {:>10.2f} {:>10.2f}\n", r->name,
          r->loss_name, train_tail, r->val_loss.back(), std::exp(r->val_loss.back()),
          1e3 * median(r->step_seconds), 1e3 * median(r->loss_seconds),
          static_cast<double>(r->loss_peak) / kMiB, static_cast<double>(r->step_peak) / kMiB);
    }
    std::cout << fmt::format(
        "(train({}): mean training loss of the last {} steps; ms: medians over the steps; "
        "loss MiB: peak of the loss's forward + backward above what was allocated before it, "
        "its lower bound dh + dC = {:.2f} MiB; step MiB: the same for the whole forward + backward)\n",
        tail, tail, lower_bound_mib);
    std::cout << fmt::format(
        "max |CCE - materialised| over steps: {:.3g} (step {}); at step 1 (same weights, same "
        "batch): {:.3g}; final validation loss difference: {:.3g}\n",
        max_diff, max_diff_step, step1_diff, std::abs(cce.val_loss.back() - mat.val_loss.back()));
    std::cout << fmt::format(
        "step 1 gradients (after clipping): max |CCE - materialised| = {:.3g} (max |gradient| {:.3g}); same "
        "input (the CCE run's h and C, every {} steps): max |CCE - materialised| per position = {:.3g}\n",
        grad_diff, grad_scale, log_every, same_input_diff);
    std::cout << fmt::format(
        "loss memory: {:.2f} MiB -> {:.2f} MiB (materialised / CCE = {:.1f}x; beyond dh + dC: "
        "{:.2f} -> {:.2f} MiB); time, CCE / materialised: loss {:.2f}x, step {:.2f}x\n",
        static_cast<double>(mat.loss_peak) / kMiB, static_cast<double>(cce.loss_peak) / kMiB,
        static_cast<double>(mat.loss_peak) / static_cast<double>(std::max<int64_t>(cce.loss_peak, 1)),
        static_cast<double>(mat.loss_peak) / kMiB - lower_bound_mib,
        static_cast<double>(cce.loss_peak) / kMiB - lower_bound_mib,
        median(cce.loss_seconds) / median(mat.loss_seconds),
        median(cce.step_seconds) / median(mat.step_seconds));
    std::cout
        << "paper (Table 1: Gemma 2 2B, N = 8192, V = 256000, bf16, A100 GPU): loss + gradient memory "
           "28000 MB -> 1164 MB (lower bound 1161 MB), and fine-tuning loss curves indistinguishable; this "
           "is a float32 CPU miniature.\n";
    std::cout << fmt::format("done in {}; metrics in {}\n", train::format_duration(seconds_since(start)),
                             metrics_path);
  } catch (const std::exception& e) {  // bad input (InputError), a library error, a file system one
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
