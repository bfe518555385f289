// Linear, Flatten and Embedding.
#include "ember/nn/linear.h"

#include <cmath>

#include "ember/nn/init.h"
#include "ember/ops.h"

namespace ember::nn {

Linear::Linear(int64_t in, int64_t out, bool has_bias) : in_features(in), out_features(out) {
  if (in < 0 || out < 0) fail("Linear: feature counts must be non-negative, got in = {}, out = {}", in, out);
  weight = register_parameter("weight", empty({out, in}));
  if (has_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void Linear::reset_parameters() {
  // kaiming_uniform_ with a = sqrt(5) is U(-1/sqrt(in), 1/sqrt(in)); the bias uses the same bound.
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    double bound = in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& input) {
  if (!input.defined()) fail("Linear: input is an undefined tensor");
  if (input.dim() == 0 || input.size(-1) != in_features)
    fail("Linear: input of shape {} should have in_features = {} in its last dim", shape_str(input.shape()),
         in_features);
  return linear(input, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", in_features, out_features, bias.defined());
}

Flatten::Flatten(int64_t start, int64_t end) : start_dim(start), end_dim(end) {}

Tensor Flatten::forward(const Tensor& input) {
  if (!input.defined()) fail("Flatten: input is an undefined tensor");
  return input.flatten(start_dim, end_dim);
}

std::string Flatten::extra_repr() const {
  return fmt::format("start_dim={}, end_dim={}", start_dim, end_dim);
}

Unflatten::Unflatten(int64_t d, Shape s) : dim(d), sizes(std::move(s)) {
  if (sizes.empty()) fail("Unflatten: sizes must not be empty");
  int64_t inferred = 0;
  for (int64_t size : sizes) {
    if (size == -1) ++inferred;
    if (size < -1 || (size == -1 && inferred > 1))
      fail("Unflatten: sizes {} must be non-negative, with at most one -1 (inferred)", shape_str(sizes));
  }
}

Tensor Unflatten::forward(const Tensor& input) {
  if (!input.defined()) fail("Unflatten: input is an undefined tensor");
  const int64_t d = dim < 0 ? dim + input.dim() : dim;
  if (d < 0 || d >= input.dim())
    fail("Unflatten: dim {} is out of range for input {}", dim, shape_str(input.shape()));
  int64_t known = 1;
  bool inferred = false;
  for (int64_t size : sizes) size == -1 ? void(inferred = true) : void(known *= size);
  if (inferred ? (known == 0 || input.size(d) % known != 0) : known != input.size(d))
    fail("Unflatten: sizes {} do not multiply to dim {} of input {} (size {})", shape_str(sizes), d,
         shape_str(input.shape()), input.size(d));
  Shape shape(input.shape().begin(), input.shape().begin() + d);
  for (int64_t size : sizes) shape.push_back(size == -1 ? input.size(d) / known : size);
  shape.insert(shape.end(), input.shape().begin() + d + 1, input.shape().end());
  return input.reshape(shape);
}

std::string Unflatten::extra_repr() const {
  return fmt::format("dim={}, unflattened_size={}", dim, shape_str(sizes));
}

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad)
    : num_embeddings(num), embedding_dim(dim) {
  if (num < 0 || dim < 0)
    fail("Embedding: sizes must be non-negative, got num_embeddings = {}, embedding_dim = {}", num, dim);
  if (pad) {
    if (*pad >= num || *pad < -num)
      fail("Embedding: padding_idx {} is out of range for {} embeddings", *pad, num);
    padding_idx = *pad < 0 ? *pad + num : *pad;
  }
  weight = register_parameter("weight", empty({num, dim}));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (padding_idx) init::zeros_(weight.detach().select(0, *padding_idx));
}

Tensor Embedding::forward(const Tensor& indices) {
  if (!indices.defined()) fail("Embedding: indices is an undefined tensor");
  if (indices.dtype() != DType::int64 && indices.dtype() != DType::int32)
    fail("Embedding: indices must be int64 or int32, got {} of shape {}", indices.dtype(),
         shape_str(indices.shape()));
  return embedding(weight, indices, padding_idx.value_or(-1));
}

std::string Embedding::extra_repr() const {
  std::string s = fmt::format("{}, {}", num_embeddings, embedding_dim);
  if (padding_idx) s += fmt::format(", padding_idx={}", *padding_idx);
  return s;
}

}  // namespace ember::nn
