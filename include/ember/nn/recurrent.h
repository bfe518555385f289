#pragma once
// Recurrent layers as in torch.nn: RNN (tanh or ReLU), LSTM and GRU over whole sequences (stacked
// layers, bidirectional, dropout between layers, batch_first), and their one-step cells. With
// H = hidden_size and PyTorch's gate order in the rows of the weights:
//   RNN:   h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)                           W_ih [H, in]
//   LSTM:  [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh                       W_ih [4H, in]
//          c' = sigmoid(f) c + sigmoid(i) tanh(g),  h' = sigmoid(o) tanh(c')
//   GRU:   [r, z] = sigmoid(x W_i{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z})   W_ih [3H, in]
//          n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)),  h' = (1 - z) n + z h
// Every weight and bias starts ~ U(-1/sqrt(H), 1/sqrt(H)), and parameters have PyTorch's names
// (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._reverse), so state dicts load by name.
// The layers are composites of linear and elementwise ops (one GEMM for a layer's input projections
// over all time steps, then one small GEMM per step), so they run on every backend and differentiate
// to any order. Not supported: packed sequences (pad and mask instead), LSTM's proj_size.
#include <string>
#include <tuple>
#include <vector>

#include "ember/nn/module.h"

namespace ember::nn {

enum class RNNNonlinearity { tanh, relu };

// An LSTM's recurrent state. Undefined tensors stand for zeros.
struct LSTMState {
  Tensor h, c;
};

// ---- one time step ----

// input [B, input_size] or unbatched [input_size]; state [B, H] or [H] (undefined: zeros).
// Parameters weight_ih, weight_hh, bias_ih, bias_hh (no biases when bias = false).
class RNNCellBase : public Module {
 public:
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;  // biases undefined unless built with bias

 protected:
  RNNCellBase(const char* kind, int64_t input_size, int64_t hidden_size, bool bias, int64_t gates);
  // Checks input against input_size and state against [B, H]; returns the batch (-1 unbatched).
  int64_t check_step(const Tensor& input, const Tensor& state, const char* state_name) const;
  const char* kind_;
};

class RNNCell : public RNNCellBase {
 public:
  RNNCell(int64_t input_size, int64_t hidden_size, bool bias = true,
          RNNNonlinearity nonlinearity = RNNNonlinearity::tanh);
  Tensor forward(const Tensor& input) override;  // h = 0
  Tensor forward(const Tensor& input, const Tensor& h);
  std::string extra_repr() const override;

  RNNNonlinearity nonlinearity;
};

class LSTMCell : public RNNCellBase {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  Tensor forward(const Tensor& input) override;  // h' from a zero state
  LSTMState forward(const Tensor& input, const LSTMState& state);
};

class GRUCell : public RNNCellBase {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  Tensor forward(const Tensor& input) override;  // h = 0
  Tensor forward(const Tensor& input, const Tensor& h);
};

// ---- whole sequences ----

struct RNNOptions {
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;  // input and output [B, T, features] instead of [T, B, features]
  double dropout = 0.0;      // on every layer's output but the last, in training mode
  bool bidirectional = false;
  RNNNonlinearity nonlinearity = RNNNonlinearity::tanh;  // RNN only
};

// Output of RNN and GRU: every step's top-layer h, [T, B, D * H] (D = 2 when bidirectional, the
// backward direction's half second), and the last h of every layer and direction, [L * D, B, H]
// (layer-major: layer l's direction d at l * D + d; never batch-first). Unbatched inputs [T, in]
// give [T, D * H] and [L * D, H].
struct RNNOutput {
  Tensor output, h_n;
};
struct LSTMOutput {
  Tensor output;
  LSTMState state;  // h_n and c_n
};

class RNNBase : public Module {
 public:
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  RNNOptions options;
  // The parameters of layer l's direction d at weights[l * D + d] (D = 2 when bidirectional): the
  // same tensors as the named parameters weight_ih_l<l>[_reverse], ...; biases undefined without bias.
  struct LayerWeights {
    Tensor w_ih, w_hh, b_ih, b_hh;
  };
  std::vector<LayerWeights> weights;

 protected:
  enum class Cell { rnn, lstm, gru };
  RNNBase(Cell cell, int64_t input_size, int64_t hidden_size, RNNOptions options);
  // Runs every layer and direction; h0 and c0 ([L * D, B, H], or undefined for zeros) as given.
  // Returns output, h_n and (LSTM) c_n.
  std::tuple<Tensor, Tensor, Tensor> run(const Tensor& input, const Tensor& h0, const Tensor& c0);

 private:
  Cell cell_;
  const char* kind() const;
};

class RNN : public RNNBase {
 public:
  RNN(int64_t input_size, int64_t hidden_size, RNNOptions options = {});
  Tensor forward(const Tensor& input) override;  // the output; h0 = 0
  RNNOutput forward(const Tensor& input, const Tensor& h0);
};

class LSTM : public RNNBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, RNNOptions options = {});
  Tensor forward(const Tensor& input) override;  // the output; zero initial state
  LSTMOutput forward(const Tensor& input, const LSTMState& state);
};

class GRU : public RNNBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, RNNOptions options = {});
  Tensor forward(const Tensor& input) override;  // the output; h0 = 0
  RNNOutput forward(const Tensor& input, const Tensor& h0);
};

}  // namespace ember::nn
