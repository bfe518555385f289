// The autograd engine: graph recording helpers, the leaf accumulator, and backward().
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "core/grad_node.h"
#include "core/tensor_impl.h"
#include "ember/ops.h"

namespace ember {

namespace {
thread_local bool t_grad_enabled = true;
}
bool GradMode::is_enabled() { return t_grad_enabled; }
void GradMode::set_enabled(bool enabled) { t_grad_enabled = enabled; }

namespace autograd {

Node::~Node() {
  // Destroying a node drops its edges, which may destroy the next node, and so on: recursion as
  // deep as the graph. Instead, park the edges and let the outermost destructor drain them.
  thread_local std::vector<std::shared_ptr<Node>> parked;
  thread_local bool draining = false;
  for (Edge& e : next_edges_)
    if (e.fn) parked.push_back(std::move(e.fn));
  if (draining) return;
  draining = true;
  while (!parked.empty()) {
    std::shared_ptr<Node> n = std::move(parked.back());
    parked.pop_back();
    n.reset();
  }
  draining = false;
}

namespace {

// ---- tensor hooks ----
// Where hooks live: a non-leaf's on its grad_fn, keyed by output_nr (Node::output_hooks), because
// the node is what backward visits, and it lives as long as a gradient can still flow through it
// (so a hook fires even after the tensor handle is gone, as in PyTorch). A leaf's stay in its
// AutogradMeta, where AccumulateGrad reads them: the leaf holds that node only weakly.

// Runs one tensor's hooks on its gradient, in registration order, each on the previous one's
// result. Unlike LibTorch, which hands a C++ hook an undefined tensor (and then fails an assert)
// when an output of a multi-output node got no gradient, ember calls hooks on defined ones only.
Tensor run_hooks(const HookList& hooks, Tensor grad) {
  if (!grad.defined()) return grad;
  const size_t n = hooks.hooks.size();  // a hook registered by a hook runs from the next backward
  for (size_t i = 0; i < n; ++i) {
    if (!hooks.hooks[i]) continue;   // removed
    GradHook hook = hooks.hooks[i];  // a copy: the hook may register another one, growing the list
    Tensor result = hook(grad);
    if (!result.defined()) continue;  // keeps the gradient
    if (result.shape() != grad.shape())
      fail("backward: hook {} returned a gradient of shape {} for a gradient of shape {}", i,
           shape_str(result.shape()), shape_str(grad.shape()));
    if (result.dtype() != grad.dtype() || result.device() != grad.device())
      fail("backward: hook {} changed the gradient's dtype or device from {} on {} to {} on {}", i,
           grad.dtype(), grad.device(), result.dtype(), result.device());
    grad = std::move(result);
  }
  return grad;
}

// Runs the hook lists of `node`'s output tensors, each on its own output's gradient.
void run_output_hooks(const Node& node, std::vector<Tensor>& grads) {
  const Node::OutputHooks& lists = *node.output_hooks();
  for (size_t i = 0, n = lists.size(); i < n; ++i) {  // by index: a hook may add another list
    auto [output_nr, hooks] = lists[i];
    grads[output_nr] = run_hooks(*hooks, std::move(grads[output_nr]));
  }
}

// Whether nothing but `g` can see its memory, which then can become a leaf's .grad() as it is.
// Gradients are often expanded views of something else; those must be copied.
bool sole_owner(const Tensor& g) {
  const TensorImpl* impl = g.impl();
  return g.use_count() == 1 && impl->contiguous && impl->offset == 0 && !impl->view_base &&
         impl->storage.use_count() == 1;
}

// A gradient as the first .grad() of a leaf, outside create_graph: `g` itself when nobody else
// sees its memory, else a copy. A node's fresh buffer returned as a reshaped view of itself (CCE's
// dE, say) counts as unseen when that view is the only holder of its base: it is re-wrapped as a
// plain tensor over the same memory instead of copied (at the Gemma 2 CCE size a 36 MiB copy).
Tensor kept_or_copied(Tensor&& g) {
  if (!g.requires_grad() && sole_owner(g)) return std::move(g);
  const TensorImpl* impl = g.impl();
  const bool whole_base_view = impl->view_base && g.use_count() == 1 && impl->contiguous &&
                               impl->offset == 0 && impl->view_base.use_count() == 1 &&
                               impl->storage.use_count() == 2 && impl->view_base->numel == impl->numel &&
                               !g.requires_grad();
  if (!whole_base_view) return g.clone();
  return make_tensor(impl->storage, 0, impl->shape, impl->strides, impl->dtype);
}

// The sink of every path that ends in a leaf: adds the incoming gradient to leaf.grad().
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor& g = grads[0];
    if (!g.defined()) return {};
    AutogradMeta& meta = leaf_->meta();
    if (std::shared_ptr<HookList> hooks = meta.hooks) g = run_hooks(*hooks, std::move(g));
    if (g.shape() != leaf_->shape)
      fail("backward: gradient of shape {} does not match leaf of shape {}", shape_str(g.shape()),
           shape_str(leaf_->shape));
    if (g.dtype() != leaf_->dtype && is_floating(leaf_->dtype))
      g = g.to(leaf_->dtype);                       // as in_dtype_of_input
    const bool recording = GradMode::is_enabled();  // create_graph: .grad() keeps its history
    if (!meta.grad.defined()) {
      meta.grad = recording ? (sole_owner(g) ? g : g.clone()) : kept_or_copied(std::move(g));
    } else if (recording) {
      meta.grad = meta.grad + g;  // out of place, so that the sum is recorded
    } else {
      meta.grad.add_(g);
    }
    return {};
  }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

}  // namespace

Edge gradient_edge(const Tensor& t) {
  if (!t.defined()) return {};
  refresh_view_history(t);
  if (!t.impl()->autograd) return {};
  AutogradMeta& meta = *t.impl()->autograd;
  if (meta.grad_fn) return Edge{meta.grad_fn, meta.output_nr};
  if (!meta.requires_grad) return {};
  auto acc = meta.accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    meta.accumulator = acc;
  }
  return Edge{acc, 0};
}

void set_history(Tensor& output, const std::shared_ptr<Node>& node, uint32_t output_nr) {
  AutogradMeta& meta = output.impl()->meta();
  meta.requires_grad = true;
  meta.grad_fn = node;
  meta.output_nr = output_nr;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {

// The node the engine is running on this thread, so that SavedTensor::output can name it.
thread_local const std::shared_ptr<Node>* t_running_node = nullptr;

class RunningNode {
 public:
  explicit RunningNode(const std::shared_ptr<Node>& node) : previous_(t_running_node) {
    t_running_node = &node;
  }
  ~RunningNode() { t_running_node = previous_; }

 private:
  const std::shared_ptr<Node>* previous_;
};

// A gradient has its input's dtype, as in PyTorch: an op that promoted float32 and float64 inputs
// to a float64 result sends the float32 input a float32 gradient (which its optimizer expects).
Tensor in_dtype_of_input(const Tensor& grad, DType input_dtype) {
  return grad.dtype() == input_dtype || !is_floating(input_dtype) ? grad : grad.to(input_dtype);
}
class NotDifferentiable final : public Node {
 public:
  explicit NotDifferentiable(std::string op) : op_(std::move(op)) {}
  std::string name() const override { return op_ + " (no double backward)"; }
  std::vector<Tensor> apply(std::vector<Tensor>&&) override {
    fail(
        "{}: double backward is not implemented: a gradient computed through {} with create_graph = "
        "true was differentiated again",
        op_, op_);
  }

 private:
  std::string op_;
};

// The gradients `grads` of `node`, whose formula is not differentiable, computed while a backward
// pass is recorded: each becomes an output of a NotDifferentiable node, which throws if a later
// backward reaches it instead of silently treating it as a constant. Its edges are what the
// gradients depend on (the node's inputs and incoming gradients), so that a backward towards any of
// those finds it.
void mark_not_differentiable(const Node& node, std::vector<Tensor>& grads,
                             const std::vector<Tensor>& grad_outputs) {
  std::shared_ptr<Node> marker;
  for (Tensor& g : grads) {
    if (!g.defined() || !is_floating(g.dtype())) continue;
    if (!marker) {
      std::vector<Edge> depends_on = node.next_edges();
      for (const Tensor& go : grad_outputs)
        if (go.defined() && go.requires_grad()) depends_on.push_back(gradient_edge(go));
      marker = std::make_shared<NotDifferentiable>(node.name());
      marker->set_next_edges(std::move(depends_on));
    }
    g = g.detach();  // a new handle: the formula may have returned a tensor someone else holds
    set_history(g, marker);
  }
}

}  // namespace

std::vector<Tensor> LambdaNode::apply(std::vector<Tensor>&& grad_outputs) {
  if (!fn_)
    fail(
        "{}: trying to backward through the graph a second time (its saved tensors were freed); "
        "pass retain_graph = true to the first backward",
        name_);
  // No gradient reached any output (a consumer returned none, e.g. a custom function's backward):
  // then none flows on either, as in PyTorch's generated nodes, instead of handing the formula
  // undefined tensors to compute with.
  bool any_defined = false;
  for (const Tensor& g : grad_outputs) any_defined = any_defined || g.defined();
  if (!any_defined) return std::vector<Tensor>(needs_.size());
  const bool recording = GradMode::is_enabled();  // a backward pass with create_graph
  std::vector<Tensor> grads = [&] {
    AutoGradMode mode(recording && twice_ == DoubleBackward::supported);
    return fn_(BackwardArgs{grad_outputs, needs_});
  }();
  if (grads.size() != needs_.size())
    fail("{}: backward returned {} gradients for {} inputs", name_, grads.size(), needs_.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!needs_[i]) {
      grads[i] = Tensor();
    } else if (grads[i].defined()) {
      if (grads[i].shape() != input_shapes_[i])
        fail("{}: backward produced a gradient of shape {} for input {} of shape {}", name_,
             shape_str(grads[i].shape()), i, shape_str(input_shapes_[i]));
      grads[i] = in_dtype_of_input(grads[i], input_dtypes_[i]);
    }
  }
  if (recording && twice_ == DoubleBackward::unsupported) mark_not_differentiable(*this, grads, grad_outputs);
  return grads;
}

void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor*>& outputs,
            GradFn fn, DoubleBackward twice) {
  std::vector<bool> needs(inputs.size());
  std::vector<Edge> edges(inputs.size());
  std::vector<Shape> shapes(inputs.size());
  std::vector<DType> dtypes(inputs.size(), DType::float32);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    edges[i] = gradient_edge(inputs[i]);
    needs[i] = edges[i].valid();
    shapes[i] = inputs[i].shape();
    dtypes[i] = inputs[i].dtype();
  }
  auto node = std::make_shared<LambdaNode>(name, std::move(fn), twice, std::move(needs), std::move(shapes),
                                           std::move(dtypes));
  node->set_next_edges(std::move(edges));
  node->set_num_outputs(static_cast<uint32_t>(outputs.size()));
  for (size_t i = 0; i < outputs.size(); ++i) set_history(*outputs[i], node, static_cast<uint32_t>(i));
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  Shape dims;
  for (int64_t d = 0; d < grad.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
  Tensor r = dims.empty() ? grad : grad.sum(dims, /*keepdim=*/true);
  return r.view(shape);
}

// ---- saved tensors ----
SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  tensor_ = t.detach();
  version_ = t.impl()->storage->version.load();
  if (t.requires_grad()) edge_ = gradient_edge(t);
}

SavedTensor SavedTensor::output(const Tensor& t, uint32_t output_nr) {
  SavedTensor s(t);
  s.is_output_ = true;
  s.output_nr_ = output_nr;
  return s;
}

Tensor SavedTensor::unpack(std::string_view op) const {
  if (!tensor_.defined()) return tensor_;
  uint64_t now = tensor_.impl()->storage->version.load();
  if (now != version_)
    fail(
        "{}: a tensor of shape {} saved for backward was modified by an in-place operation "
        "(version {} at save, {} now)",
        op, shape_str(tensor_.shape()), version_, now);
  if (!GradMode::is_enabled()) return tensor_;
  // create_graph: a fresh handle on the same data whose gradient flows where the original's did
  // (an output's into the node now running, whose own output it is).
  Edge edge = is_output_ && t_running_node ? Edge{*t_running_node, output_nr_} : edge_;
  if (!edge.valid()) return tensor_;
  Tensor t = tensor_.detach();
  set_history(t, edge.fn, edge.input_nr);
  return t;
}

// ---- custom functions ----
void AutogradContext::save_for_backward(const std::vector<Tensor>& tensors) {
  saved_.clear();
  saved_sources_.clear();
  for (const Tensor& t : tensors) {
    saved_.emplace_back(t);
    saved_sources_.push_back(t.defined() ? t.impl() : nullptr);
  }
}
std::vector<Tensor> AutogradContext::get_saved_variables() const {
  std::vector<Tensor> out;
  for (const SavedTensor& s : saved_) out.push_back(s.unpack(name_));
  return out;
}
bool AutogradContext::needs_input_grad(size_t i) const {
  return i < needs_input_grad_.size() && needs_input_grad_[i];
}

namespace detail {
namespace {
class CustomNode final : public Node {
 public:
  CustomNode(std::shared_ptr<AutogradContext> ctx, BackwardFn fn, std::vector<bool> arg_is_tensor,
             std::vector<Shape> shapes, std::vector<DType> dtypes)
      : ctx_(std::move(ctx)),
        fn_(std::move(fn)),
        arg_is_tensor_(std::move(arg_is_tensor)),
        shapes_(std::move(shapes)),
        dtypes_(std::move(dtypes)) {}
  std::string name() const override { return ctx_ ? ctx_->name_ : "CustomFunction"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override {
    if (!fn_) fail("{}: trying to backward through the graph a second time", name());
    // An output nothing flowed into reaches backward as zeros, as in LibTorch (materialize_grads).
    if (ctx_->materialize_grads_)
      for (size_t i = 0; i < grad_outputs.size() && i < outputs_.size(); ++i)
        if (!grad_outputs[i].defined() && outputs_[i].defined) {
          NoGradGuard no_grad;
          grad_outputs[i] = zeros(outputs_[i].shape, outputs_[i].options);
        }
    // (with create_graph it runs recorded, as in PyTorch)
    std::vector<Tensor> grads = fn_(ctx_.get(), std::move(grad_outputs));
    if (grads.size() != arg_is_tensor_.size())
      fail("{}: backward returned {} gradients but forward took {} arguments", name(), grads.size(),
           arg_is_tensor_.size());
    std::vector<Tensor> per_input;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!arg_is_tensor_[i]) continue;
      size_t k = per_input.size();
      if (grads[i].defined() && grads[i].shape() != shapes_[k])
        fail("{}: backward returned a gradient of shape {} for argument {} of shape {}", name(),
             shape_str(grads[i].shape()), i, shape_str(shapes_[k]));
      per_input.push_back(ctx_->needs_input_grad(i) && grads[i].defined()
                              ? in_dtype_of_input(grads[i], dtypes_[k])
                              : Tensor());
    }
    return per_input;
  }
  void release_saved() override {
    fn_ = nullptr;
    ctx_->saved_.clear();
  }
  AutogradContext& context() { return *ctx_; }
  struct OutputInfo {
    bool defined = false;
    Shape shape;
    TensorOptions options;
  };
  std::vector<OutputInfo> outputs_;

 private:
  std::shared_ptr<AutogradContext> ctx_;
  BackwardFn fn_;
  std::vector<bool> arg_is_tensor_;
  std::vector<Shape> shapes_;
  std::vector<DType> dtypes_;
};
}  // namespace

std::shared_ptr<Node> make_custom_node(std::shared_ptr<AutogradContext> ctx, BackwardFn backward,
                                       const std::vector<Tensor>& inputs,
                                       const std::vector<bool>& arg_is_tensor) {
  std::vector<Edge> edges;
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  for (const Tensor& t : inputs) {
    edges.push_back(t.defined() ? gradient_edge(t) : Edge{});
    shapes.push_back(t.defined() ? t.shape() : Shape{});
    dtypes.push_back(t.defined() ? t.dtype() : DType::float32);
  }
  auto node = std::make_shared<CustomNode>(std::move(ctx), std::move(backward), arg_is_tensor,
                                           std::move(shapes), std::move(dtypes));
  node->set_next_edges(std::move(edges));
  return node;
}

void set_custom_outputs(const std::shared_ptr<Node>& node, std::vector<Tensor>& outputs,
                        const std::vector<Tensor>& inputs) {
  auto& custom = static_cast<CustomNode&>(*node);
  node->set_num_outputs(static_cast<uint32_t>(outputs.size()));
  custom.outputs_.assign(outputs.size(), {});
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    if (!out.defined()) continue;
    // Giving an input itself a grad_fn would turn the caller's tensor (a leaf, say) into this
    // node's output, its history then leading through a node that frees itself after one backward.
    for (const Tensor& in : inputs)
      if (in.defined() && out.is_same(in)) {
        out = make_view(in, in.shape(), in.strides(), in.storage_offset());
        break;
      }
    custom.outputs_[i] = {true, out.shape(), out.options()};
    if (!out.is_floating_point()) continue;  // no gradient
    // A tensor forward saved that is this output unpacks (with create_graph) as this node's output.
    AutogradContext& ctx = custom.context();
    for (size_t k = 0; k < ctx.saved_.size(); ++k)
      if (ctx.saved_sources_[k] == out.impl()) {
        ctx.saved_[k].is_output_ = true;
        ctx.saved_[k].output_nr_ = static_cast<uint32_t>(i);
      }
    set_history(out, node, static_cast<uint32_t>(i));
  }
}
}  // namespace detail

// ---- the engine ----
namespace {

// One run of the engine from some roots. With targets (autograd::grad), it records the gradient
// arriving at each target edge, runs only the nodes on a path to a target, and never runs a leaf's
// AccumulateGrad, so no .grad() changes. Without, it runs everything reachable (backward).
thread_local bool t_returning_gradients = false;

void run_graph(const char* op, const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
               bool retain_graph, bool create_graph, const std::vector<Edge>& targets,
               std::vector<Tensor>* captured) {
  // Backward formulas are recorded only to differentiate their results again (create_graph).
  AutoGradMode mode(create_graph);
  struct ModeScope {  // for checkpoint's nodes, which can only accumulate (see engine_returns_gradients)
    bool previous = t_returning_gradients;
    explicit ModeScope(bool returning) { t_returning_gradients = returning; }
    ~ModeScope() { t_returning_gradients = previous; }
  } returning(captured != nullptr);
  struct Pending {
    std::vector<Tensor> grads;
    int dependencies = 0;
  };
  std::unordered_map<Node*, Pending> pending;
  std::vector<std::shared_ptr<Node>> roots;

  auto accumulate = [](std::vector<Tensor>& slot_list, uint32_t slot, const Tensor& g) {
    Tensor& slot_ref = slot_list[slot];
    slot_ref = slot_ref.defined() ? slot_ref + g : g;
  };

  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    if (!out.defined()) fail("{}: output {} is an undefined tensor", op, i);
    if (!out.requires_grad())
      fail("{}: tensor of shape {} does not require grad and has no grad_fn", op, shape_str(out.shape()));
    Tensor g = i < grad_outputs.size() ? grad_outputs[i] : Tensor();
    if (!g.defined()) {
      if (out.numel() != 1)
        fail(
            "{}: grad can be implicitly created only for scalar outputs; got shape {} (pass a gradient of "
            "that shape)",
            op, shape_str(out.shape()));
      g = ones_like(out);
    } else if (g.shape() != out.shape()) {
      fail("{}: gradient of shape {} does not match output of shape {}", op, shape_str(g.shape()),
           shape_str(out.shape()));
    }
    Edge e = gradient_edge(out);
    Pending& p = pending[e.fn.get()];
    p.grads.resize(e.fn->num_outputs());
    accumulate(p.grads, e.input_nr, create_graph ? g : g.detach());
    roots.push_back(e.fn);
  }

  // Count, for every reachable node, how many edges point at it (iterative DFS), and remember
  // who points at whom when only the paths to some targets matter.
  const bool all = captured == nullptr;
  std::unordered_map<Node*, std::vector<Node*>> consumers;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (auto& r : roots)
    if (seen.insert(r.get()).second) stack.push_back(r.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      pending[e.fn.get()].dependencies++;
      if (!all) consumers[e.fn.get()].push_back(n);
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }
  // With targets: the nodes on a path to one (the targets and everything upstream of them).
  // Every consumer of such a node is on the path too, so skipping the others blocks nothing.
  std::unordered_set<Node*> needed;
  for (const Edge& t : targets)
    if (seen.count(t.fn.get()) && needed.insert(t.fn.get()).second) stack.push_back(t.fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (Node* c : consumers[n])
      if (needed.insert(c).second) stack.push_back(c);
  }
  auto runs = [&](const Node& node) {
    if (all) return true;
    for (const Edge& e : node.next_edges())
      if (e.valid() && needed.count(e.fn.get())) return true;
    return false;
  };

  // Run nodes whose every consumer has already sent its gradient.
  std::deque<std::shared_ptr<Node>> ready;
  std::unordered_set<Node*> queued;
  for (auto& r : roots)
    if (pending[r.get()].dependencies == 0 && queued.insert(r.get()).second) ready.push_back(r);
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.front();
    ready.pop_front();
    std::vector<Tensor> grads = std::move(pending[node.get()].grads);
    grads.resize(node->num_outputs());
    pending.erase(node.get());
    if (!all && !needed.count(node.get())) continue;
    // Captured before the tensor's hooks run, as in LibTorch 1.13 (the hooks still shape what
    // flows on upstream).
    for (size_t t = 0; t < targets.size(); ++t)
      if (targets[t].fn == node) (*captured)[t] = grads[targets[t].input_nr];
    if (node->output_hooks()) run_output_hooks(*node, grads);
    if (!runs(*node)) continue;
    std::vector<Tensor> input_grads = [&] {
      RunningNode running(node);
      return node->apply(std::move(grads));
    }();
    if (!retain_graph) node->release_saved();
    const auto& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      Pending& p = pending[e.fn.get()];
      if (i < input_grads.size() && input_grads[i].defined()) {
        p.grads.resize(e.fn->num_outputs());
        accumulate(p.grads, e.input_nr, input_grads[i]);
      }
      if (--p.dependencies == 0) ready.push_back(e.fn);
    }
  }
}

}  // namespace

bool engine_returns_gradients() { return t_returning_gradients; }

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
              std::optional<bool> retain_graph, bool create_graph) {
  run_graph("backward", outputs, grad_outputs, retain_graph.value_or(create_graph), create_graph, {},
            nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph,
                         bool create_graph, bool allow_unused) {
  std::vector<Edge> targets;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) fail("grad: input {} is an undefined tensor", i);
    if (!t.requires_grad()) fail("grad: input {} of shape {} does not require grad", i, shape_str(t.shape()));
    targets.push_back(gradient_edge(t));
  }
  std::vector<Tensor> captured(inputs.size());
  run_graph("grad", outputs, grad_outputs, retain_graph.value_or(create_graph), create_graph, targets,
            &captured);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!captured[i].defined() && !allow_unused)
      fail(
          "grad: input {} of shape {} was not used to compute the outputs (pass allow_unused = true to get "
          "an "
          "undefined gradient for it)",
          i, shape_str(inputs[i].shape()));
  return captured;
}

}  // namespace autograd

}  // namespace ember
