#pragma once
// Activation layers (all parameter-free but PReLU), Identity and the dropout layers.
#include <string>

#include "ember/nn/module.h"

namespace ember::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

// approximate: "none" (exact, with erf) or "tanh".
class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  std::string approximate;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

// Returns its input (a placeholder, e.g. for a layer an ablation removes).
class Identity : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double negative_slope;
};

class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double alpha;
};

// softplus(beta x) / beta, and x itself where beta x > threshold.
class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double beta, threshold;
};

class Mish : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class Hardtanh : public Module {
 public:
  explicit Hardtanh(double min_val = -1.0, double max_val = 1.0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double min_val, max_val;
};

// softmax / log_softmax along dim.
class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t dim;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t dim;
};

class ReLU6 : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class SELU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class CELU : public Module {
 public:
  explicit CELU(double alpha = 1.0);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double alpha;
};

class Hardsigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class Hardswish : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

class Softsign : public Module {
 public:
  Tensor forward(const Tensor& input) override;
};

// Halves the input along dim and gates one half with the other: a * sigmoid(b).
class GLU : public Module {
 public:
  explicit GLU(int64_t dim = -1);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t dim;
};

// max(0, x) + a * min(0, x) with a learned slope a: one shared (num_parameters = 1) or one per
// channel (dim 1 of the input), each initialised to `init`.
class PReLU : public Module {
 public:
  explicit PReLU(int64_t num_parameters = 1, double init = 0.25);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  int64_t num_parameters;
  Tensor weight;  // [num_parameters]
};

// In training mode zeroes each element with probability p and scales the rest by 1 / (1 - p);
// in eval mode it is the identity.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double p;
};

// Channel dropout (feature_dropout): in training mode zeroes whole channels of [N, C, L] (Dropout1d),
// [N, C, H, W] (Dropout2d) or [N, C, D, H, W] (Dropout3d), or of their unbatched forms, with
// probability p, and scales the rest by 1 / (1 - p); in eval mode it is the identity.
class FeatureDropout : public Module {
 public:
  FeatureDropout(double p, int64_t spatial_dims);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;

  double p;
  int64_t spatial_dims;  // 1, 2 or 3: the input has 1 + spatial_dims (unbatched) or 2 + spatial_dims dims
};
class Dropout1d : public FeatureDropout {
 public:
  explicit Dropout1d(double p = 0.5) : FeatureDropout(p, 1) {}
};
class Dropout2d : public FeatureDropout {
 public:
  explicit Dropout2d(double p = 0.5) : FeatureDropout(p, 2) {}
};
class Dropout3d : public FeatureDropout {
 public:
  explicit Dropout3d(double p = 0.5) : FeatureDropout(p, 3) {}
};

}  // namespace ember::nn
