// autograd::checkpoint: a node that keeps a function and its inputs instead of the function's
// intermediate tensors, and recomputes them during backward. The recomputation is a graph of its
// own, run by a nested backward() from inside this node's apply (the engine is reentrant: every
// run keeps its state on the stack).
#include "core/grad_node.h"
#include "core/tensor_impl.h"
#include "ember/random.h"

namespace ember::autograd {

namespace {

class CheckpointNode final : public Node {
 public:
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  CheckpointNode(Fn fn, const std::vector<Tensor>& inputs, std::optional<GeneratorState> rng)
      : fn_(std::move(fn)), rng_(rng) {
    for (const Tensor& t : inputs) {
      saved_.push_back(t.defined() ? SavedTensor(t) : SavedTensor());
      needs_.push_back(t.defined() && t.requires_grad());
    }
  }
  std::string name() const override { return "checkpoint"; }
  void release_saved() override {
    fn_ = nullptr;
    saved_.clear();
  }

  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override {
    if (GradMode::is_enabled() || engine_returns_gradients())
      fail(
          "checkpoint: a checkpointed graph supports backward() only, not autograd::grad or create_graph "
          "(its recomputation accumulates into the parameters' .grad(), as PyTorch's reentrant checkpoint)");
    if (!fn_)
      fail(
          "checkpoint: trying to backward through the graph a second time (its saved inputs were freed); "
          "pass "
          "retain_graph = true to the first backward");
    // Fresh leaves for the inputs that need a gradient: the recomputation's graph ends at them.
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < saved_.size(); ++i) {
      Tensor t = saved_[i].defined() ? saved_[i].unpack("checkpoint") : Tensor();
      inputs.push_back(needs_[i] ? t.detach().requires_grad_(true) : t);
    }
    Tensor output;
    {
      const GeneratorState now = get_rng_state();
      if (rng_) set_rng_state(*rng_);
      AutoGradMode recording(true);
      output = fn_(inputs);
      if (rng_) set_rng_state(now);
    }
    const Tensor& g = grad_outputs[0];
    if (g.defined() && output.defined() && output.requires_grad()) backward({output}, {g});
    std::vector<Tensor> grads;
    for (size_t i = 0; i < inputs.size(); ++i) grads.push_back(needs_[i] ? inputs[i].grad() : Tensor());
    return grads;
  }

 private:
  Fn fn_;
  std::optional<GeneratorState> rng_;
  std::vector<SavedTensor> saved_;
  std::vector<bool> needs_;
};

}  // namespace

Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                  const std::vector<Tensor>& inputs, bool preserve_rng_state) {
  if (!fn) fail("checkpoint: the function is empty");
  const std::optional<GeneratorState> rng =
      preserve_rng_state ? std::optional<GeneratorState>(get_rng_state()) : std::nullopt;
  Tensor output;
  {
    NoGradGuard no_grad;
    output = fn(inputs);
  }
  if (!output.defined()) fail("checkpoint: the function returned an undefined tensor");
  // Without a grad-requiring input nothing reaches fn's parameters from this output either: as in
  // PyTorch (which warns), the output then has no gradient.
  if (!GradMode::is_enabled() || !any_requires_grad(inputs) || !output.is_floating_point()) return output;
  // An input returned as it is comes back as a new view, so the caller's tensor keeps its history.
  for (const Tensor& in : inputs)
    if (in.defined() && output.is_same(in))
      output = make_view(in, in.shape(), in.strides(), in.storage_offset());
  auto node = std::make_shared<CheckpointNode>(fn, inputs, rng);
  std::vector<Edge> edges;
  for (const Tensor& t : inputs)
    edges.push_back(t.defined() && t.requires_grad() ? gradient_edge(t) : Edge{});
  node->set_next_edges(std::move(edges));
  set_history(output, node);
  return output;
}

}  // namespace ember::autograd
