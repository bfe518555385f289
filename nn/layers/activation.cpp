// Activation layers, Identity and Dropout: each forwards to its op.
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

Tensor Identity::forward(const Tensor& input) { return checked("Identity", input); }
Tensor Mish::forward(const Tensor& input) { return mish(checked("Mish", input)); }

LeakyReLU::LeakyReLU(double slope) : negative_slope(slope) {}
Tensor LeakyReLU::forward(const Tensor& input) {
  return leaky_relu(checked("LeakyReLU", input), negative_slope);
}
std::string LeakyReLU::extra_repr() const { return fmt::format("negative_slope={}", negative_slope); }

ELU::ELU(double a) : alpha(a) {}
Tensor ELU::forward(const Tensor& input) { return elu(checked("ELU", input), alpha); }
std::string ELU::extra_repr() const { return fmt::format("alpha={}", alpha); }

Softplus::Softplus(double b, double t) : beta(b), threshold(t) {
  if (!(beta > 0)) fail("Softplus: beta must be positive, got {}", beta);
}
Tensor Softplus::forward(const Tensor& input) {
  return softplus(checked("Softplus", input), beta, threshold);
}
std::string Softplus::extra_repr() const { return fmt::format("beta={}, threshold={}", beta, threshold); }

Hardtanh::Hardtanh(double lo, double hi) : min_val(lo), max_val(hi) {
  if (!(lo <= hi)) fail("Hardtanh: min_val {} must not exceed max_val {}", lo, hi);
}
Tensor Hardtanh::forward(const Tensor& input) {
  return hardtanh(checked("Hardtanh", input), min_val, max_val);
}
std::string Hardtanh::extra_repr() const { return fmt::format("min_val={}, max_val={}", min_val, max_val); }

Softmax::Softmax(int64_t d) : dim(d) {}
Tensor Softmax::forward(const Tensor& input) { return softmax(checked("Softmax", input), dim); }
std::string Softmax::extra_repr() const { return fmt::format("dim={}", dim); }

LogSoftmax::LogSoftmax(int64_t d) : dim(d) {}
Tensor LogSoftmax::forward(const Tensor& input) { return log_softmax(checked("LogSoftmax", input), dim); }
std::string LogSoftmax::extra_repr() const { return fmt::format("dim={}", dim); }

Dropout::Dropout(double prob) : p(prob) {
  if (!(p >= 0 && p <= 1)) fail("Dropout: probability must be in [0, 1], got {}", p);
}
Tensor Dropout::forward(const Tensor& input) { return dropout(checked("Dropout", input), p, is_training()); }
std::string Dropout::extra_repr() const { return fmt::format("p={}", p); }

}  // namespace ember::nn
