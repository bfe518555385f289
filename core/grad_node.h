#pragma once
// How built-in ops put themselves on the autograd graph.
//
//   Tensor y = ...forward...;
//   if (autograd::any_requires_grad({x})) {
//     autograd::record("exp", {x}, y, [ys = autograd::SavedTensor(y)](const autograd::BackwardArgs& a) {
//       return std::vector<Tensor>{a.grad() * ys.unpack("exp")};
//     });
//   }
//
// The lambda gets the gradient(s) of the outputs and returns one gradient per input (undefined
// for inputs whose needs(i) is false). It runs with grad recording off, except in a backward
// pass with create_graph: then a formula recorded with DoubleBackward::supported runs with
// recording on (so it must be written in differentiable ops, and must save its op's outputs with
// SavedTensor::output), and any other formula runs with it off, its gradients marked so that
// differentiating them throws.
#include <functional>
#include <string>
#include <vector>

#include "ember/autograd.h"

namespace ember::autograd {

struct BackwardArgs {
  const std::vector<Tensor>& grad_outputs;
  const std::vector<bool>& needs_input_grad;
  const Tensor& grad(size_t i = 0) const { return grad_outputs[i]; }
  bool needs(size_t i) const { return needs_input_grad[i]; }
};
using GradFn = std::function<std::vector<Tensor>(const BackwardArgs&)>;

// Whether a backward formula is itself differentiable: written only in recorded ops, each of them
// supporting double backward, and checked by gradgradcheck.
enum class DoubleBackward { unsupported, supported };

class LambdaNode final : public Node {
 public:
  LambdaNode(const char* name, GradFn fn, DoubleBackward twice, std::vector<bool> needs,
             std::vector<Shape> input_shapes, std::vector<DType> input_dtypes)
      : name_(name),
        fn_(std::move(fn)),
        twice_(twice),
        needs_(std::move(needs)),
        input_shapes_(std::move(input_shapes)),
        input_dtypes_(std::move(input_dtypes)) {}
  std::string name() const override { return name_; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override;
  void release_saved() override { fn_ = nullptr; }

 private:
  const char* name_;
  GradFn fn_;
  DoubleBackward twice_;
  std::vector<bool> needs_;
  std::vector<Shape> input_shapes_;
  std::vector<DType> input_dtypes_;
};

// Records outputs (all differentiable) of op `name` computed from `inputs`.
void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor*>& outputs,
            GradFn fn, DoubleBackward twice = DoubleBackward::unsupported);
inline void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output, GradFn fn,
                   DoubleBackward twice = DoubleBackward::unsupported) {
  record(name, inputs, std::vector<Tensor*>{&output}, std::move(fn), twice);
}

// Whether the engine run on this thread returns gradients (autograd::grad) rather than
// accumulating them into .grad() (backward).
bool engine_returns_gradients();

// Sums a broadcast gradient back down to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace ember::autograd
