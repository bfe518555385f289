// Activation layers, Identity and the dropout layers: each forwards to its op.
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

Tensor ReLU6::forward(const Tensor& input) { return relu6(checked("ReLU6", input)); }
Tensor SELU::forward(const Tensor& input) { return selu(checked("SELU", input)); }
Tensor Hardsigmoid::forward(const Tensor& input) { return hardsigmoid(checked("Hardsigmoid", input)); }
Tensor Hardswish::forward(const Tensor& input) { return hardswish(checked("Hardswish", input)); }
Tensor Softsign::forward(const Tensor& input) { return softsign(checked("Softsign", input)); }

CELU::CELU(double a) : alpha(a) {
  if (alpha == 0.0) fail("CELU: alpha must not be 0");
}
Tensor CELU::forward(const Tensor& input) { return celu(checked("CELU", input), alpha); }
std::string CELU::extra_repr() const { return fmt::format("alpha={}", alpha); }

GLU::GLU(int64_t d) : dim(d) {}
Tensor GLU::forward(const Tensor& input) { return glu(checked("GLU", input), dim); }
std::string GLU::extra_repr() const { return fmt::format("dim={}", dim); }

PReLU::PReLU(int64_t n, double init) : num_parameters(n) {
  if (n < 1) fail("PReLU: num_parameters must be positive, got {}", n);
  weight = register_parameter("weight", full({n}, init));
}
Tensor PReLU::forward(const Tensor& input) { return prelu(checked("PReLU", input), weight); }
std::string PReLU::extra_repr() const { return fmt::format("num_parameters={}", num_parameters); }

FeatureDropout::FeatureDropout(double prob, int64_t dims) : p(prob), spatial_dims(dims) {
  if (dims < 1 || dims > 3) fail("FeatureDropout: spatial_dims must be 1, 2 or 3, got {}", dims);
  if (!(p >= 0 && p <= 1)) fail("Dropout{}d: probability must be in [0, 1], got {}", dims, p);
}
Tensor FeatureDropout::forward(const Tensor& input) {
  checked(name().c_str(), input);
  const int64_t batched = spatial_dims + 2;
  if (input.dim() != batched && input.dim() != batched - 1)
    fail("Dropout{}d: expected input of {} dims [N, C, ...] or {} dims [C, ...], got shape {}", spatial_dims,
         batched, batched - 1, shape_str(input.shape()));
  if (input.dim() == batched) return feature_dropout(input, p, is_training());
  return feature_dropout(input.unsqueeze(0), p, is_training()).squeeze(0);
}
std::string FeatureDropout::extra_repr() const { return fmt::format("p={}", p); }

}  // namespace ember::nn
