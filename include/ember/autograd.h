#pragma once
// Define-by-run autograd. Every differentiable op creates a Node that knows how to turn the
// gradient of its outputs into gradients of its inputs; Tensor::backward walks that graph
// (iteratively, in dependency order) and accumulates into the leaves' .grad().
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/tensor.h"

namespace ember {

// Thread-local switch: while disabled, ops record nothing (like torch.no_grad()).
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

// Sets grad mode for a scope and restores it after (LibTorch's AutoGradMode): AutoGradMode on(true)
// records again inside a NoGradGuard.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : previous_(GradMode::is_enabled()) { GradMode::set_enabled(enabled); }
  ~AutoGradMode() { GradMode::set_enabled(previous_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool previous_;
};

class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

namespace autograd {

class Node;

// Where a gradient flows next: input `input_nr` of node `fn`.
struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

// ---- tensor hooks (Tensor::register_hook, retain_grad) ----
// A tensor's hooks. Shared by the tensor's AutogradMeta (which registers and removes) and, for a
// non-leaf, its grad_fn (which runs them); it holds neither strongly, so it makes no reference
// cycle (a hook that captures its own tensor does, as in PyTorch).
using GradHook = std::function<Tensor(const Tensor&)>;
struct HookList {
  std::vector<GradHook> hooks;  // in registration order; a removed one leaves an empty slot, so
                                // that a handle is simply a position (as in LibTorch)
  std::weak_ptr<Node> node;     // a non-leaf's: the grad_fn that runs this list
};

class Node {
 public:
  virtual ~Node();  // frees long chains iteratively, so a 100k-op graph cannot overflow the stack
  virtual std::string name() const = 0;
  // grad_outputs[i] is the gradient of output i (undefined if nothing flowed into it).
  // Returns one gradient per next edge (undefined where none).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) = 0;
  // Frees what was saved for backward; called after apply unless retain_graph.
  virtual void release_saved() {}

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  uint32_t num_outputs() const { return num_outputs_; }
  void set_next_edges(std::vector<Edge> edges) { next_edges_ = std::move(edges); }
  void set_num_outputs(uint32_t n) { num_outputs_ = n; }

  // The hook lists of this node's output tensors (register_hook on a non-leaf), as (output_nr,
  // list): the engine runs each on grad_outputs[output_nr] before apply(). Null until the first,
  // so a node without hooks costs the engine one pointer test.
  using OutputHooks = std::vector<std::pair<uint32_t, std::shared_ptr<HookList>>>;
  const OutputHooks* output_hooks() const { return output_hooks_.get(); }
  void add_output_hooks(uint32_t output_nr, std::shared_ptr<HookList> hooks) {
    if (!output_hooks_) output_hooks_ = std::make_unique<OutputHooks>();
    output_hooks_->emplace_back(output_nr, std::move(hooks));
  }

 private:
  std::vector<Edge> next_edges_;
  uint32_t num_outputs_ = 1;
  std::unique_ptr<OutputHooks> output_hooks_;
};

// The edge a gradient for `t` should flow into: its grad_fn, or its leaf accumulator.
Edge gradient_edge(const Tensor& t);
// Makes `output` (output number `output_nr` of `node`) a non-leaf that requires grad.
void set_history(Tensor& output, const std::shared_ptr<Node>& node, uint32_t output_nr = 0);
// Whether an op on these inputs must record itself.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Runs backward from several roots at once. retain_graph defaults to create_graph.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              std::optional<bool> retain_graph = {}, bool create_graph = false);

// torch::autograd::grad: the gradients of `outputs` (seeded with grad_outputs, or 1 for scalars)
// with respect to `inputs`, leaves or not, returned instead of accumulated: no .grad() changes,
// and only the part of the graph between them runs. An input the outputs do not depend on is an
// error unless allow_unused (it then gets an undefined tensor). retain_graph defaults to
// create_graph. As in LibTorch 1.13, an input's own hooks do not change the gradient returned for
// it (they still change what flows on upstream).
//
// create_graph = true records the backward pass itself, so the returned gradients are functions of
// the inputs that can be differentiated again: Hessian-vector products, gradient penalties.
// Double backward is implemented for every op: elementwise math, views, reductions and scans,
// matmul/linear, conv2d, pooling, norms, softmax, indexing, the standard losses and the paper losses
// (docs/internals.md lists them). A gradient that came through an op recorded without one carries
// a node that throws "<op>: double backward is not implemented" if it is differentiated again.
// Custom Functions' backward runs recorded, as in PyTorch.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, std::optional<bool> retain_graph = {},
                         bool create_graph = false, bool allow_unused = false);

// Activation checkpointing, as torch.utils.checkpoint.checkpoint (use_reentrant=True): trades
// compute for memory. fn(inputs) runs without recording, so none of its intermediate tensors is
// kept; the output remembers only the inputs. Its backward runs fn again, recording, from the
// inputs (with the random-number state of the first run when preserve_rng_state, so dropout draws
// the same masks; the generator is put back afterwards) and backpropagates through that
// recomputation: the inputs get their gradients through the output, and the parameters fn uses
// (captured, not passed) accumulate theirs into .grad() there and then. So, as in PyTorch, a
// checkpointed graph supports backward() but not autograd::grad or create_graph, which throw; and
// fn must compute the same thing both times (no in-place change of what it reads in between).
Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                  bool preserve_rng_state = true);

namespace detail {
void set_custom_outputs(const std::shared_ptr<Node>& node, std::vector<Tensor>& outputs,
                        const std::vector<Tensor>& inputs);
}

// A tensor kept for backward. Remembers the storage version at save time so that an in-place
// change before backward is reported instead of silently giving a wrong gradient.
//
// unpack() gives the data without history, except while a backward pass is recorded
// (create_graph): then it gives a tensor whose gradient flows where the original's did, so that
// the derivative formula is differentiable in it. An op's own output has no history yet when it
// is saved (record() gives it one afterwards): save it with SavedTensor::output, which resolves to
// the node being run.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  static SavedTensor output(const Tensor& t, uint32_t output_nr = 0);
  Tensor unpack(std::string_view op) const;
  bool defined() const { return tensor_.defined(); }

 private:
  // (a custom function's forward saves its outputs before they have a node: marked afterwards)
  friend void detail::set_custom_outputs(const std::shared_ptr<Node>&, std::vector<Tensor>&,
                                         const std::vector<Tensor>&);

  Tensor tensor_;  // detached: saving never creates a reference cycle through grad_fn
  uint64_t version_ = 0;
  Edge edge_;  // where the original's gradient went (an input's history is upstream: no cycle)
  bool is_output_ = false;
  uint32_t output_nr_ = 0;
};

// ---- user-defined differentiable functions (mirrors torch::autograd::Function) ----
//
//   struct Square : ember::autograd::Function<Square> {
//     static Tensor forward(AutogradContext* ctx, const Tensor& x) {
//       ctx->save_for_backward({x});
//       return x * x;
//     }
//     static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> grad_out) {
//       return {grad_out[0] * 2 * ctx->get_saved_variables()[0]};
//     }
//   };
//   Tensor y = Square::apply(x);
//
// forward runs with grad recording off. backward returns one entry per forward argument after
// ctx (undefined for non-tensor arguments or inputs that need no gradient). As in PyTorch, backward
// runs recorded in a backward pass with create_graph, with the saved tensors (inputs and outputs)
// carrying their history: written in ember ops, it is differentiable again. As in LibTorch, an
// output that received no gradient reaches backward as zeros of its shape (set_materialize_grads
// (false) passes it undefined instead), only floating outputs require grad, and an input that
// forward returns as it is comes back as a new view of it, so the input itself stays what it was
// (a leaf stays a leaf).
class AutogradContext {
 public:
  void save_for_backward(const std::vector<Tensor>& tensors);
  std::vector<Tensor> get_saved_variables() const;
  bool needs_input_grad(size_t arg_index) const;
  void set_materialize_grads(bool on) { materialize_grads_ = on; }
  std::map<std::string, double> saved_data;

  // internals, used by Function<>::apply
  std::string name_;
  std::vector<bool> needs_input_grad_;
  std::vector<SavedTensor> saved_;
  std::vector<const void*> saved_sources_;  // the TensorImpl of each saved tensor (identity only)
  bool materialize_grads_ = true;
};

namespace detail {
using BackwardFn = std::function<std::vector<Tensor>(AutogradContext*, std::vector<Tensor>)>;
// Builds the node for a custom function: arg_is_tensor[i] tells which forward arguments are
// tensors; inputs are those tensors in order.
std::shared_ptr<Node> make_custom_node(std::shared_ptr<AutogradContext> ctx, BackwardFn backward,
                                       const std::vector<Tensor>& inputs,
                                       const std::vector<bool>& arg_is_tensor);
// Makes the outputs of a custom function outputs of `node`: an output that is one of `inputs`
// itself is replaced by a view of it, floating outputs get the node as grad_fn, and the node
// remembers every output's shape and options for zero-filling gradients that never arrive.
void set_custom_outputs(const std::shared_ptr<Node>& node, std::vector<Tensor>& outputs,
                        const std::vector<Tensor>& inputs);
template <class A>
void collect_arg(std::vector<Tensor>& tensors, std::vector<bool>& is_tensor, const A& a) {
  if constexpr (std::is_same_v<std::decay_t<A>, Tensor>) {
    tensors.push_back(a);
    is_tensor.push_back(true);
  } else {
    is_tensor.push_back(false);
  }
}
}  // namespace detail

template <class Derived>
struct Function {
  template <class... Args>
  static auto apply(Args&&... args) {
    std::vector<Tensor> inputs;
    std::vector<bool> arg_is_tensor;
    (detail::collect_arg(inputs, arg_is_tensor, args), ...);
    auto ctx = std::make_shared<AutogradContext>();
    ctx->name_ = typeid(Derived).name();
    bool record = any_requires_grad(inputs);
    ctx->needs_input_grad_.resize(arg_is_tensor.size(), false);
    for (size_t i = 0, t = 0; i < arg_is_tensor.size(); ++i)
      if (arg_is_tensor[i]) ctx->needs_input_grad_[i] = record && inputs[t++].requires_grad();
    auto outputs = [&] {
      NoGradGuard no_grad;
      return Derived::forward(ctx.get(), std::forward<Args>(args)...);
    }();
    if (record) {
      auto node = detail::make_custom_node(ctx, &Derived::backward, inputs, arg_is_tensor);
      if constexpr (std::is_same_v<decltype(outputs), Tensor>) {
        std::vector<Tensor> list{outputs};
        detail::set_custom_outputs(node, list, inputs);
        outputs = list[0];
      } else {
        detail::set_custom_outputs(node, outputs, inputs);
      }
    }
    return outputs;
  }
};

}  // namespace autograd

// ---- gradient checking ----
struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-5;  // pass when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
};
struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  double max_rel_error = 0;
  std::string worst;  // "input 1 element 3 (output element 0): analytic 0.5 vs numeric 0.49"
};
// Compares the analytic Jacobian (backward) with central finite differences, in float64.
// Every floating input that requires grad is checked; others are held fixed.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options = {});
// torch.autograd.gradgradcheck: checks second derivatives. With v a fixed random tensor shaped like
// fn's output, the gradient of sum(fn(x) * v) with respect to the inputs (computed with
// create_graph) is itself gradient-checked, as a function of the inputs and v.
GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                              const std::vector<Tensor>& inputs, GradcheckOptions options = {});

}  // namespace ember
