// RNN, LSTM, GRU and their cells: outputs and final states against PyTorch 1.13 (same weights, set
// from a formula on both sides), the cells against one step of the layers, gradchecks through
// inputs, states and weights, a double backward, CUDA parity, and the errors.
#include <ember/nn.h>

#include <cmath>

#include "nn_test_util.h"

namespace ember::testing {
namespace {

// amp * sin(freq * k + phase) over the flat index k: the values the PyTorch script used too
// (torch.tensor([amp * math.sin(freq * k + phase) for k in range(n)]).reshape(shape)).
Tensor wave(const Shape& shape, double amp, double freq, double phase) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<double> v(static_cast<size_t>(n));
  for (size_t k = 0; k < v.size(); ++k) v[k] = amp * std::sin(freq * static_cast<double>(k) + phase);
  return tensor<double>(v, shape);
}

// Parameter i (in named_parameters order, checked against PyTorch's) = wave(0.4, 0.37, 1.3 i).
void fill(nn::Module& m, const std::vector<std::string>& torch_names) {
  m.to(DType::float64);
  std::vector<std::string> names;
  int i = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    names.push_back(name);
    set_values(p, wave(p.shape(), 0.4, 0.37, 1.3 * i++).to_vector<double>());
  }
  EXPECT_EQ(names, torch_names);
}

TEST(LSTM, TwoLayerBidirectionalMatchesPyTorch) {
  nn::LSTM lstm(3, 2, {.num_layers = 2, .bidirectional = true});
  fill(lstm, {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
              "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1",
              "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
              "bias_ih_l1_reverse", "bias_hh_l1_reverse"});
  EXPECT_EQ(lstm.str(), "LSTM(3, 2, num_layers=2, bidirectional=true)");
  Tensor x = wave({3, 2, 3}, 1.0, 0.45, 0.2);
  nn::LSTMOutput out = lstm.forward(x, {wave({4, 2, 2}, 0.3, 0.9, 0.0), wave({4, 2, 2}, 0.2, 0.6, 0.5)});
  EXPECT_TRUE(tensors_close(
      out.output,
      tensor<double>(
          {0.124519795056864, 0.045685406924156, 0.365238778809006, 0.340509049792773, 0.165985502159053,
           0.103803250315927, 0.371157092622457, 0.34105494356039,  0.21046970497048,  0.084956068612679,
           0.306211100633416, 0.307682940418056, 0.223671542703851, 0.109052393253527, 0.313597489128087,
           0.329603771710406, 0.249345524089588, 0.103050399629329, 0.204978138921713, 0.217760772230392,
           0.246864930742225, 0.12500736388469,  0.23753969836022,  0.216252032735827},
          {3, 2, 4}),
      1e-12));
  EXPECT_TRUE(tensors_close(
      out.state.h,
      tensor<double>({-0.083847465884936, -0.078564998002596, -0.255316055515671, -0.316354345166241,
                      -0.131586626728033, -0.262896497664618, -0.055574254619689, -0.259188531133454,
                      0.249345524089588, 0.103050399629329, 0.246864930742225, 0.12500736388469,
                      0.365238778809006, 0.340509049792773, 0.371157092622457, 0.34105494356039},
                     {4, 2, 2}),
      1e-12));
  EXPECT_TRUE(tensors_close(
      out.state.c,
      tensor<double>({-0.227911512404758, -0.221935699119921, -0.494463861813007, -0.530403803884824,
                      -0.415947049646086, -0.618992651450117, -0.210154953202511, -0.57919218261767,
                      0.637436767885758, 0.28039340202521, 0.771632578660591, 0.391237396562557,
                      0.629231815891994, 0.846700504356544, 0.636369560839256, 0.861288107469705},
                     {4, 2, 2}),
      1e-12));
}

TEST(GRU, BatchFirstMatchesPyTorch) {
  nn::GRU gru(3, 2, {.batch_first = true});
  fill(gru, {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"});
  EXPECT_EQ(gru.str(), "GRU(3, 2, batch_first=true)");
  nn::RNNOutput out = gru.forward(wave({2, 3, 3}, 1.0, 0.45, 0.2), Tensor());
  EXPECT_TRUE(tensors_close(
      out.output,
      tensor<double>({-0.451650541793772, -0.41733181457627, -0.653938576674385, -0.558925528481469,
                      -0.277912170911946, -0.444399168542409, 0.407966559996416, -0.024635257413594,
                      -0.052957241760269, -0.213662200662978, -0.473918005473089, -0.529538352815813},
                     {2, 3, 2}),
      1e-12));
  EXPECT_TRUE(tensors_close(
      out.h_n,
      tensor<double>({-0.277912170911946, -0.444399168542409, -0.473918005473089, -0.529538352815813},
                     {1, 2, 2}),
      1e-12));
}

TEST(RNN, TanhUnbatchedWithoutBiasMatchesPyTorch) {
  nn::RNN rnn(3, 2, {.num_layers = 2, .bias = false});
  fill(rnn, {"weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"});
  EXPECT_EQ(rnn.str(), "RNN(3, 2, num_layers=2, bias=false)");
  nn::RNNOutput out = rnn.forward(wave({4, 3}, 1.0, 0.45, 0.2), wave({2, 2}, 0.3, 0.9, 0.0));
  EXPECT_TRUE(tensors_close(
      out.output,
      tensor<double>({-0.00258417039744, -0.318076526602036, 0.290332359398071, -0.108614118545025,
                      0.048176554567024, -0.146782760396931, -0.04248146794994, 0.199551944026188},
                     {4, 2}),
      1e-12));
  EXPECT_TRUE(tensors_close(
      out.h_n,
      tensor<double>({-0.164810489622655, -0.707609385880763, -0.04248146794994, 0.199551944026188}, {2, 2}),
      1e-12));
}

TEST(RNN, ReluMatchesPyTorch) {
  nn::RNN rnn(3, 2, {.nonlinearity = nn::RNNNonlinearity::relu});
  fill(rnn, {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"});
  EXPECT_EQ(rnn.str(), "RNN(3, 2, nonlinearity=relu)");
  Tensor out = rnn.forward(wave({4, 2, 3}, 1.0, 0.45, 0.2) + 0.5);
  EXPECT_TRUE(tensors_close(
      out,
      tensor<double>(
          {0.466184791042825, 0.932313846983459, 0.441815958133064, 1.243028784241552, 0.494090286533213,
           0.460868202958511, 0.414393734424172, 0.0, 0.536746165145205, 0.341306162848032, 0.697699456902212,
           1.389323316601326, 0.631481168914395, 1.217872696070559, 0.62638621697453, 0.221578289974336},
          {4, 2, 2}),
      1e-12));
}

// A cell's step is the one-layer module's first step, with the same weights.
TEST(RecurrentCells, MatchOneStepOfTheLayers) {
  Tensor x = wave({1, 2, 3}, 1.0, 0.45, 0.2), h0 = wave({1, 2, 2}, 0.3, 0.9, 0.0),
         c0 = wave({1, 2, 2}, 0.2, 0.6, 0.5);
  const std::vector<std::string> names{"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  const std::vector<std::string> layer_names{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};

  nn::LSTMCell lstm_cell(3, 2);
  nn::LSTM lstm(3, 2);
  fill(lstm_cell, names);
  fill(lstm, layer_names);
  nn::LSTMState s = lstm_cell.forward(x[0], {h0[0], c0[0]});
  nn::LSTMOutput full = lstm.forward(x, {h0, c0});
  EXPECT_TRUE(tensors_close(s.h, full.state.h[0], 1e-15));
  EXPECT_TRUE(tensors_close(s.c, full.state.c[0], 1e-15));
  // unbatched: [features] in, [H] out; no state means zeros
  nn::LSTMState one = lstm_cell.forward(x[0][1], {});
  EXPECT_EQ(one.h.shape(), (Shape{2}));
  EXPECT_TRUE(tensors_close(one.h, lstm_cell.forward(x[0])[1], 1e-15));

  nn::GRUCell gru_cell(3, 2);
  nn::GRU gru(3, 2);
  fill(gru_cell, names);
  fill(gru, layer_names);
  EXPECT_TRUE(tensors_close(gru_cell.forward(x[0], h0[0]), gru.forward(x, h0).h_n[0], 1e-15));

  nn::RNNCell rnn_cell(3, 2, /*bias=*/true, nn::RNNNonlinearity::relu);
  nn::RNN rnn(3, 2, {.nonlinearity = nn::RNNNonlinearity::relu});
  fill(rnn_cell, names);
  fill(rnn, layer_names);
  EXPECT_TRUE(tensors_close(rnn_cell.forward(x[0], h0[0]), rnn.forward(x, h0).h_n[0], 1e-15));
  EXPECT_EQ(rnn_cell.str(), "RNNCell(3, 2, nonlinearity=relu)");
  EXPECT_EQ(nn::GRUCell(4, 5, false).str(), "GRUCell(4, 5, bias=false)");
}

TEST(RecurrentLayers, InitBoundAndShapes) {
  nn::GRU gru(5, 4, {.num_layers = 3, .batch_first = true, .bidirectional = true});
  EXPECT_EQ(gru.parameters().size(), 24u);
  EXPECT_EQ(gru.weights.size(), 6u);
  EXPECT_EQ(gru.weights[2].w_ih.shape(), (Shape{12, 8}));  // layer 1 reads both directions
  for (const auto& [name, p] : gru.named_parameters())
    EXPECT_LE(p.abs().max().item<double>(), 0.5) << name;  // U(-1/sqrt(4), 1/sqrt(4))
  Tensor out = gru.forward(randn({7, 6, 5}));
  EXPECT_EQ(out.shape(), (Shape{7, 6, 8}));
  nn::RNNOutput both = gru.forward(randn({7, 6, 5}), zeros({6, 7, 4}));
  EXPECT_EQ(both.h_n.shape(), (Shape{6, 7, 4}));  // [L * D, B, H], never batch-first
}

TEST(RecurrentLayers, StateDictLoadsIntoTheWeightsForwardUses) {
  manual_seed(11);
  nn::LSTM a(3, 4, {.num_layers = 2, .bidirectional = true}),
      b(3, 4, {.num_layers = 2, .bidirectional = true});
  Tensor x = randn({5, 2, 3});
  EXPECT_FALSE(tensors_close(a.forward(x), b.forward(x), 1e-3));
  b.load_state_dict(a.state_dict());
  EXPECT_TRUE(tensors_close(a.forward(x), b.forward(x), 0));
  b.to(DType::float64);  // converted in place: weights[] still names the parameters
  EXPECT_EQ(b.weights[3].w_hh.dtype(), DType::float64);
  EXPECT_TRUE(tensors_close(b.forward(x.to(DType::float64)), a.forward(x), 1e-5));
}

TEST(RecurrentLayers, BidirectionalHalvesReadTheSequenceBothWays) {
  // The reverse direction's output at step t sees steps t..T-1 only: changing the first step moves
  // every forward-direction output but only the reverse direction's output at step 0.
  manual_seed(3);
  nn::LSTM lstm(2, 3, {.bidirectional = true});
  Tensor x = randn({4, 1, 2});
  Tensor y0 = lstm.forward(x);
  Tensor x1 = x.clone();
  x1.select(0, 0).fill_(5.0);
  Tensor y1 = lstm.forward(x1);
  Tensor moved = (y1 - y0).abs().sum({1}) > 1e-7;  // [T, 6]
  for (int64_t t = 0; t < 4; ++t) {
    EXPECT_TRUE(moved.select(0, t).narrow(0, 0, 3).all().item<bool>()) << t;
    EXPECT_EQ(moved.select(0, t).narrow(0, 3, 3).any().item<bool>(), t == 0) << t;
  }
}

TEST(RecurrentLayers, GradcheckThroughInputsStatesAndWeights) {
  auto lstm = std::make_shared<nn::LSTM>(2, 2, nn::RNNOptions{.num_layers = 2, .bidirectional = true});
  auto& w = lstm->weights;
  Tensor h0 = R({4, 2, 2}, -0.5, 0.5, 51), c0 = R({4, 2, 2}, -0.5, 0.5, 52);
  EXPECT_TRUE(module_gradcheck(*lstm, {&w[0].w_ih, &w[1].w_hh, &w[2].b_ih, &w[3].b_hh, &w[3].w_ih},
                               R({3, 2, 2}, -1, 1, 53), [&](const Tensor& x) {
                                 nn::LSTMOutput o = lstm->forward(x, {h0, c0});
                                 return cat({o.output.flatten(), o.state.h.flatten(), o.state.c.flatten()});
                               }));
  EXPECT_TRUE(passes_gradcheck(
      [&](const std::vector<Tensor>& in) {
        nn::LSTMOutput o = lstm->forward(in[0], {in[1], in[2]});
        return cat({o.output.flatten(), o.state.c.flatten()});
      },
      {R({3, 2, 2}, -1, 1, 54), h0, c0}));

  auto gru = std::make_shared<nn::GRU>(3, 2, nn::RNNOptions{.batch_first = true});
  EXPECT_TRUE(module_gradcheck(*gru, {&gru->weights[0].w_ih, &gru->weights[0].w_hh, &gru->weights[0].b_hh},
                               R({2, 3, 3}, -1, 1, 55), [&](const Tensor& x) { return gru->forward(x); }));
  auto cell = std::make_shared<nn::GRUCell>(3, 2);
  EXPECT_TRUE(
      module_gradcheck(*cell, {&cell->weight_ih, &cell->bias_hh}, R({2, 3}, -1, 1, 56), [&](const Tensor& x) {
        return cell->forward(x, R({2, 2}, -1, 1, 57, false));
      }));
}

TEST(RecurrentLayers, SecondDerivatives) {
  auto rnn = std::make_shared<nn::RNN>(2, 2);
  auto lstm = std::make_shared<nn::LSTM>(2, 2);
  rnn->to(DType::float64);
  lstm->to(DType::float64);
  EXPECT_TRUE(passes_gradgradcheck([&](const std::vector<Tensor>& in) { return rnn->forward(in[0]); },
                                   {R({3, 1, 2}, -1, 1, 58)}));
  EXPECT_TRUE(passes_gradgradcheck([&](const std::vector<Tensor>& in) { return lstm->forward(in[0]); },
                                   {R({3, 1, 2}, -1, 1, 59)}));
}

TEST(RecurrentLayers, DropoutBetweenLayersOnlyInTraining) {
  manual_seed(4);
  nn::GRU gru(3, 4, {.num_layers = 2, .dropout = 0.5});
  Tensor x = randn({5, 2, 3});
  gru.eval();
  EXPECT_TRUE(tensors_close(gru.forward(x), gru.forward(x), 0));
  gru.train();
  EXPECT_FALSE(tensors_close(gru.forward(x), gru.forward(x), 1e-6));  // different masks
  nn::GRU last_only(3, 4, {.dropout = 0.5});  // one layer: nothing between layers to drop
  EXPECT_TRUE(tensors_close(last_only.forward(x), last_only.forward(x), 0));
}

TEST(RecurrentLayers, CudaParity) {
  EMBER_SKIP_WITHOUT_GPU();
  // The weights under test travel as inputs (the parity run moves only inputs to the GPU); the
  // others come from one seed, so the CPU and CUDA runs build the same module.
  auto lstm_fn = [](const std::vector<Tensor>& in) {
    manual_seed(7);
    nn::LSTM l(3, 2);
    l.to(in[0].dtype());
    l.to(in[0].device());
    auto& w = l.weights[0];
    w.w_ih = in[1];
    w.w_hh = in[2];
    w.b_ih = in[3];
    w.b_hh = in[4];
    return l.forward(in[0]);
  };
  expect_cuda_parity(lstm_fn,
                     {R({4, 2, 3}), R({8, 3}, -0.5, 0.5, 2), R({8, 2}, -0.5, 0.5, 3), R({8}, -0.5, 0.5, 4),
                      R({8}, -0.5, 0.5, 5)},
                     1e-10);
  auto gru_fn = [](const std::vector<Tensor>& in) {
    manual_seed(7);
    nn::GRU g(3, 2, {.bidirectional = true});
    g.to(in[0].device());
    g.to(in[0].dtype());
    g.weights[1].w_hh = in[1];
    return g.forward(in[0]);
  };
  expect_cuda_parity(gru_fn, {R({4, 2, 3}), R({6, 2}, -0.5, 0.5, 6)}, 1e-10);
}

TEST(RecurrentLayers, Errors) {
  nn::LSTM lstm(3, 2, {.num_layers = 2});
  EMBER_EXPECT_THROW_MSG(lstm.forward(zeros({4, 2, 5})),
                         "LSTM: expected input [T, B, 3] or unbatched [T, 3], got shape [4,2,5]");
  EMBER_EXPECT_THROW_MSG(nn::GRU(3, 2, {.batch_first = true}).forward(zeros({4})),
                         "GRU: expected input [B, T, 3] or unbatched [T, 3], got shape [4]");
  EMBER_EXPECT_THROW_MSG(lstm.forward(zeros({4, 2, 3}), {zeros({1, 2, 2}), {}}),
                         "LSTM: h0 has shape [1,2,2], expected [2,2,2] for input of shape [4,2,3]");
  EMBER_EXPECT_THROW_MSG(lstm.forward(zeros({4, 3}), {{}, zeros({2, 1, 2})}),
                         "LSTM: c0 has shape [2,1,2], expected [2,2]");
  EMBER_EXPECT_THROW_MSG(lstm.forward(zeros({0, 2, 3})), "LSTM: input of shape [0,2,3] has no time steps");
  EMBER_EXPECT_THROW_MSG(nn::RNN(3, 0), "RNN: input_size must be >= 0 and hidden_size > 0, got 3 and 0");
  EMBER_EXPECT_THROW_MSG(nn::LSTM(3, 2, {.num_layers = 0}), "LSTM: num_layers must be at least 1, got 0");
  EMBER_EXPECT_THROW_MSG(nn::GRU(3, 2, {.dropout = 1.5}), "GRU: dropout must be in [0, 1], got 1.5");
  EMBER_EXPECT_THROW_MSG(nn::LSTM(3, 2, {.nonlinearity = nn::RNNNonlinearity::relu}),
                         "LSTM: nonlinearity applies to RNN only");
  nn::LSTMCell cell(3, 2);
  EMBER_EXPECT_THROW_MSG(cell.forward(zeros({2, 4})),
                         "LSTMCell: expected input [B, 3] or [3], got shape [2,4]");
  EMBER_EXPECT_THROW_MSG(cell.forward(zeros({2, 3}), {zeros({2, 2}), zeros({3, 2})}),
                         "LSTMCell: c has shape [3,2], expected [2,2] for input of shape [2,3]");
  EMBER_EXPECT_THROW_MSG(nn::GRUCell(3, 2).forward(zeros({3}), zeros({1, 2})),
                         "GRUCell: h has shape [1,2], expected [2] for input of shape [3]");
  EMBER_EXPECT_THROW_MSG(nn::RNNCell(3, -1), "RNNCell: input_size must be >= 0 and hidden_size > 0");
  EMBER_EXPECT_THROW_MSG(
      nn::LSTM(3, 2).forward(zeros({4, 2, 3}, DType::float64)),
      "LSTM: input is float64 on cpu but the weights are float32 on cpu; convert one with .to(...)");
  EMBER_EXPECT_THROW_MSG(nn::GRUCell(3, 2).forward(zeros({3}, DType::float64)),
                         "GRUCell: input is float64 on cpu but the weights are float32 on cpu");
}

}  // namespace
}  // namespace ember::testing
