// RNN, LSTM, GRU and their cells: one step function shared by all of them, written in ops
// (linear, chunk, sigmoid, tanh, ...), so autograd records each step and every backend runs it.
// A layer first projects all its inputs at once (x W_ih^T + b_ih for every time step: one large
// GEMM instead of T small ones); only h W_hh^T depends on the previous step.
#include "ember/nn/recurrent.h"

#include <cmath>

#include "ember/nn/init.h"
#include "ember/ops.h"

namespace ember::nn {

namespace {

enum class Step { rnn_tanh, rnn_relu, lstm, gru };

// One step from the input projection xg = x W_ih^T + b_ih ([B, gates * H]) and the state (h, and c
// for an LSTM). PyTorch's formulas, gate by gate (see recurrent.h).
LSTMState step(Step kind, const Tensor& xg, const LSTMState& s, const Tensor& w_hh, const Tensor& b_hh) {
  const Tensor hg = linear(s.h, w_hh, b_hh);
  switch (kind) {
    case Step::rnn_tanh:
      return {tanh(xg + hg), {}};
    case Step::rnn_relu:
      return {relu(xg + hg), {}};
    case Step::lstm: {
      const std::vector<Tensor> g = chunk(xg + hg, 4, 1);  // i, f, g, o
      Tensor c = sigmoid(g[1]) * s.c + sigmoid(g[0]) * tanh(g[2]);
      Tensor h = sigmoid(g[3]) * tanh(c);
      return {h, c};
    }
    case Step::gru: {
      // the candidate n sees h's projection through the reset gate, so the two sums stay apart
      const std::vector<Tensor> x3 = chunk(xg, 3, 1), h3 = chunk(hg, 3, 1);  // r, z, n
      const Tensor r = sigmoid(x3[0] + h3[0]), z = sigmoid(x3[1] + h3[1]);
      const Tensor n = tanh(x3[2] + r * h3[2]);
      return {n + z * (s.h - n), {}};  // (1 - z) n + z h
    }
  }
  return {};
}

const char* nonlinearity_name(RNNNonlinearity n) { return n == RNNNonlinearity::tanh ? "tanh" : "relu"; }

// Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch's RNN modules.
void init_uniform(const std::vector<Tensor>& params, int64_t hidden_size) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  for (const Tensor& p : params)
    if (p.defined()) init::uniform_(p, -bound, bound);
}

void check_matches_weights(const char* kind, const Tensor& input, const Tensor& weight) {
  if (input.dtype() != weight.dtype() || input.device() != weight.device())
    fail("{}: input is {} on {} but the weights are {} on {}; convert one with .to(...)", kind, input.dtype(),
         input.device(), weight.dtype(), weight.device());
}

void check_sizes(const char* kind, int64_t input_size, int64_t hidden_size) {
  if (input_size < 0 || hidden_size <= 0)
    fail("{}: input_size must be >= 0 and hidden_size > 0, got {} and {}", kind, input_size, hidden_size);
}

}  // namespace

// ---- cells ----

RNNCellBase::RNNCellBase(const char* kind, int64_t in, int64_t hidden, bool bias, int64_t gates)
    : input_size(in), hidden_size(hidden), kind_(kind) {
  check_sizes(kind, in, hidden);
  weight_ih = register_parameter("weight_ih", empty({gates * hidden, in}));
  weight_hh = register_parameter("weight_hh", empty({gates * hidden, hidden}));
  if (bias) {
    bias_ih = register_parameter("bias_ih", empty({gates * hidden}));
    bias_hh = register_parameter("bias_hh", empty({gates * hidden}));
  }
  reset_parameters();
}

void RNNCellBase::reset_parameters() { init_uniform({weight_ih, weight_hh, bias_ih, bias_hh}, hidden_size); }

std::string RNNCellBase::extra_repr() const {
  return fmt::format("{}, {}{}", input_size, hidden_size, bias_ih.defined() ? "" : ", bias=false");
}

int64_t RNNCellBase::check_step(const Tensor& input, const Tensor& state, const char* state_name) const {
  if (!input.defined()) fail("{}: input is an undefined tensor", kind_);
  check_matches_weights(kind_, input, weight_ih);
  if ((input.dim() != 1 && input.dim() != 2) || input.size(-1) != input_size)
    fail("{}: expected input [B, {}] or [{}], got shape {}", kind_, input_size, input_size,
         shape_str(input.shape()));
  const int64_t batch = input.dim() == 2 ? input.size(0) : -1;
  const Shape expected = batch < 0 ? Shape{hidden_size} : Shape{batch, hidden_size};
  if (state.defined() && state.shape() != expected)
    fail("{}: {} has shape {}, expected {} for input of shape {}", kind_, state_name,
         shape_str(state.shape()), shape_str(expected), shape_str(input.shape()));
  return batch;
}

namespace {

// A cell's step on [B, ...] tensors whatever the caller's batching: unbatched [features] inputs
// and states gain a batch dim of 1 going in and lose it coming out.
LSTMState cell_step(Step kind, const RNNCellBase& cell, bool unbatched, const Tensor& input, LSTMState s) {
  auto batched = [&](const Tensor& t) { return unbatched && t.defined() ? t.unsqueeze(0) : t; };
  const Tensor x = batched(input);
  const auto state = [&](const Tensor& t) {
    return t.defined() ? batched(t) : zeros({x.size(0), cell.hidden_size}, x.options());
  };
  s = {state(s.h), kind == Step::lstm ? state(s.c) : Tensor()};
  LSTMState out = step(kind, linear(x, cell.weight_ih, cell.bias_ih), s, cell.weight_hh, cell.bias_hh);
  if (unbatched) out = {out.h.squeeze(0), out.c.defined() ? out.c.squeeze(0) : out.c};
  return out;
}

}  // namespace

RNNCell::RNNCell(int64_t in, int64_t hidden, bool bias, RNNNonlinearity n)
    : RNNCellBase("RNNCell", in, hidden, bias, 1), nonlinearity(n) {}

Tensor RNNCell::forward(const Tensor& input) { return forward(input, Tensor()); }

Tensor RNNCell::forward(const Tensor& input, const Tensor& h) {
  const bool unbatched = check_step(input, h, "h") < 0;
  const Step kind = nonlinearity == RNNNonlinearity::tanh ? Step::rnn_tanh : Step::rnn_relu;
  return cell_step(kind, *this, unbatched, input, {h, {}}).h;
}

std::string RNNCell::extra_repr() const {
  std::string s = RNNCellBase::extra_repr();
  if (nonlinearity != RNNNonlinearity::tanh)
    s += fmt::format(", nonlinearity={}", nonlinearity_name(nonlinearity));
  return s;
}

LSTMCell::LSTMCell(int64_t in, int64_t hidden, bool bias) : RNNCellBase("LSTMCell", in, hidden, bias, 4) {}

Tensor LSTMCell::forward(const Tensor& input) { return forward(input, LSTMState{}).h; }

LSTMState LSTMCell::forward(const Tensor& input, const LSTMState& state) {
  const bool unbatched = check_step(input, state.h, "h") < 0;
  check_step(input, state.c, "c");
  return cell_step(Step::lstm, *this, unbatched, input, state);
}

GRUCell::GRUCell(int64_t in, int64_t hidden, bool bias) : RNNCellBase("GRUCell", in, hidden, bias, 3) {}

Tensor GRUCell::forward(const Tensor& input) { return forward(input, Tensor()); }

Tensor GRUCell::forward(const Tensor& input, const Tensor& h) {
  const bool unbatched = check_step(input, h, "h") < 0;
  return cell_step(Step::gru, *this, unbatched, input, {h, {}}).h;
}

// ---- sequences ----

RNNBase::RNNBase(Cell cell, int64_t in, int64_t hidden, RNNOptions o)
    : input_size(in), hidden_size(hidden), options(o), cell_(cell) {
  const char* k = kind();
  check_sizes(k, in, hidden);
  if (o.num_layers < 1) fail("{}: num_layers must be at least 1, got {}", k, o.num_layers);
  if (!(o.dropout >= 0 && o.dropout <= 1)) fail("{}: dropout must be in [0, 1], got {}", k, o.dropout);
  if (cell != Cell::rnn && o.nonlinearity != RNNNonlinearity::tanh)
    fail("{}: nonlinearity applies to RNN only", k);
  const int64_t gates = cell == Cell::lstm ? 4 : cell == Cell::gru ? 3 : 1;
  const int64_t directions = o.bidirectional ? 2 : 1;
  for (int64_t l = 0; l < o.num_layers; ++l) {
    const int64_t layer_in = l == 0 ? in : directions * hidden;
    for (int64_t d = 0; d < directions; ++d) {
      const std::string suffix = fmt::format("_l{}{}", l, d == 1 ? "_reverse" : "");
      LayerWeights w;
      w.w_ih = register_parameter("weight_ih" + suffix, empty({gates * hidden, layer_in}));
      w.w_hh = register_parameter("weight_hh" + suffix, empty({gates * hidden, hidden}));
      if (o.bias) {
        w.b_ih = register_parameter("bias_ih" + suffix, empty({gates * hidden}));
        w.b_hh = register_parameter("bias_hh" + suffix, empty({gates * hidden}));
      }
      weights.push_back(w);
    }
  }
  reset_parameters();
}

const char* RNNBase::kind() const {
  return cell_ == Cell::lstm ? "LSTM" : cell_ == Cell::gru ? "GRU" : "RNN";
}

void RNNBase::reset_parameters() {
  for (const LayerWeights& w : weights) init_uniform({w.w_ih, w.w_hh, w.b_ih, w.b_hh}, hidden_size);
}

std::string RNNBase::extra_repr() const {
  const RNNOptions& o = options;
  std::string s = fmt::format("{}, {}", input_size, hidden_size);
  if (o.num_layers != 1) s += fmt::format(", num_layers={}", o.num_layers);
  if (o.nonlinearity != RNNNonlinearity::tanh)
    s += fmt::format(", nonlinearity={}", nonlinearity_name(o.nonlinearity));
  if (!o.bias) s += ", bias=false";
  if (o.batch_first) s += ", batch_first=true";
  if (o.dropout != 0) s += fmt::format(", dropout={}", o.dropout);
  if (o.bidirectional) s += ", bidirectional=true";
  return s;
}

std::tuple<Tensor, Tensor, Tensor> RNNBase::run(const Tensor& input, const Tensor& h0, const Tensor& c0) {
  const char* op = kind();
  if (!input.defined()) fail("{}: input is an undefined tensor", op);
  if ((input.dim() != 2 && input.dim() != 3) || input.size(-1) != input_size)
    fail("{}: expected input {} or unbatched [T, {}], got shape {}", op,
         options.batch_first ? fmt::format("[B, T, {}]", input_size) : fmt::format("[T, B, {}]", input_size),
         input_size, shape_str(input.shape()));
  check_matches_weights(op, input, weights[0].w_ih);
  const bool unbatched = input.dim() == 2;
  // [T, B, features] from here on
  const Tensor x = unbatched ? input.unsqueeze(1) : options.batch_first ? input.transpose(0, 1) : input;
  const int64_t T = x.size(0), B = x.size(1), D = options.bidirectional ? 2 : 1, L = options.num_layers;
  if (T == 0) fail("{}: input of shape {} has no time steps", op, shape_str(input.shape()));
  const Shape state_shape = unbatched ? Shape{L * D, hidden_size} : Shape{L * D, B, hidden_size};
  auto initial = [&](const Tensor& s, const char* name) {
    if (!s.defined()) return zeros({L * D, B, hidden_size}, x.options());
    if (s.shape() != state_shape)
      fail("{}: {} has shape {}, expected {} for input of shape {}", op, name, shape_str(s.shape()),
           shape_str(state_shape), shape_str(input.shape()));
    return unbatched ? s.unsqueeze(1) : s;
  };
  // each layer and direction's initial state, as views (unbind: one backward node for all)
  const std::vector<Tensor> h_init = unbind(initial(h0, "h0"), 0);
  const std::vector<Tensor> c_init =
      cell_ == Cell::lstm ? unbind(initial(c0, "c0"), 0) : std::vector<Tensor>();
  const Step kind = cell_ == Cell::lstm                             ? Step::lstm
                    : cell_ == Cell::gru                            ? Step::gru
                    : options.nonlinearity == RNNNonlinearity::tanh ? Step::rnn_tanh
                                                                    : Step::rnn_relu;

  std::vector<Tensor> h_n, c_n;
  Tensor layer_in = x;
  for (int64_t l = 0; l < L; ++l) {
    std::vector<Tensor> directions;
    for (int64_t d = 0; d < D; ++d) {
      const size_t at = static_cast<size_t>(l * D + d);
      const LayerWeights& w = weights[at];
      // every step's input projection at once, then one view per step (unbind: one backward node)
      const std::vector<Tensor> xg = unbind(linear(layer_in, w.w_ih, w.b_ih), 0);
      LSTMState s{h_init[at], c_init.empty() ? Tensor() : c_init[at]};
      std::vector<Tensor> outputs(static_cast<size_t>(T));
      for (int64_t k = 0; k < T; ++k) {
        const int64_t t = d == 0 ? k : T - 1 - k;  // the reverse direction reads the sequence backwards
        s = step(kind, xg[static_cast<size_t>(t)], s, w.w_hh, w.b_hh);
        outputs[static_cast<size_t>(t)] = s.h;
      }
      directions.push_back(stack(outputs, 0));
      h_n.push_back(s.h);
      c_n.push_back(s.c);
    }
    layer_in = D == 1 ? directions[0] : cat(directions, 2);
    if (options.dropout > 0 && l + 1 < L) layer_in = dropout(layer_in, options.dropout, is_training());
  }
  Tensor output = unbatched ? layer_in.squeeze(1) : options.batch_first ? layer_in.transpose(0, 1) : layer_in;
  auto final_state = [&](const std::vector<Tensor>& states) {
    Tensor s = stack(states, 0);  // [L * D, B, H]
    return unbatched ? s.squeeze(1) : s;
  };
  return {output, final_state(h_n), cell_ == Cell::lstm ? final_state(c_n) : Tensor()};
}

RNN::RNN(int64_t in, int64_t hidden, RNNOptions o) : RNNBase(Cell::rnn, in, hidden, o) {}

Tensor RNN::forward(const Tensor& input) { return forward(input, Tensor()).output; }

RNNOutput RNN::forward(const Tensor& input, const Tensor& h0) {
  auto [output, h_n, unused] = run(input, h0, Tensor());
  return {output, h_n};
}

LSTM::LSTM(int64_t in, int64_t hidden, RNNOptions o) : RNNBase(Cell::lstm, in, hidden, o) {}

Tensor LSTM::forward(const Tensor& input) { return forward(input, LSTMState{}).output; }

LSTMOutput LSTM::forward(const Tensor& input, const LSTMState& state) {
  auto [output, h_n, c_n] = run(input, state.h, state.c);
  return {output, {h_n, c_n}};
}

GRU::GRU(int64_t in, int64_t hidden, RNNOptions o) : RNNBase(Cell::gru, in, hidden, o) {}

Tensor GRU::forward(const Tensor& input) { return forward(input, Tensor()).output; }

RNNOutput GRU::forward(const Tensor& input, const Tensor& h0) {
  auto [output, h_n, unused] = run(input, h0, Tensor());
  return {output, h_n};
}

}  // namespace ember::nn
