// Activation layers and Dropout: each forwards to its op.
#include "ember/nn/activation.h"

#include "ember/ops.h"

namespace ember::nn {

namespace {
const Tensor& checked(const char* layer, const Tensor& input) {
  if (!input.defined()) fail("{}: input is an undefined tensor", layer);
  return input;
}
}  // namespace

Tensor ReLU::forward(const Tensor& input) { return relu(checked("ReLU", input)); }
Tensor SiLU::forward(const Tensor& input) { return silu(checked("SiLU", input)); }
Tensor Sigmoid::forward(const Tensor& input) { return sigmoid(checked("Sigmoid", input)); }
Tensor Tanh::forward(const Tensor& input) { return tanh(checked("Tanh", input)); }

GELU::GELU(std::string approx) : approximate(std::move(approx)) {
  if (approximate != "none" && approximate != "tanh")
    fail("GELU: approximate must be \"none\" or \"tanh\", got \"{}\"", approximate);
}
Tensor GELU::forward(const Tensor& input) { return gelu(checked("GELU", input), approximate == "tanh"); }
std::string GELU::extra_repr() const { return "approximate='" + approximate + "'"; }

Dropout::Dropout(double prob) : p(prob) {
  if (!(p >= 0 && p <= 1)) fail("Dropout: probability must be in [0, 1], got {}", p);
}
Tensor Dropout::forward(const Tensor& input) { return dropout(checked("Dropout", input), p, is_training()); }
std::string Dropout::extra_repr() const { return fmt::format("p={}", p); }

}  // namespace ember::nn
