// In-place ops under autograd, on tensors and on views.
//
// An in-place op is recorded as its out-of-place twin applied to a snapshot of the old value; the
// tensor then takes over the result's history (apply_inplace).
//
// A view shares its base's memory, so writing into it changes the base too. As in PyTorch, the
// base then gets a new grad_fn, "copy_slices": its backward sends the gradient of the view's
// region to the in-place op's result and the rest to the base's old value. The view itself
// becomes "this region of the new base", an "as_strided" node (inplace_on_view).
//
// Other views of the same memory learn of the change lazily. A recorded in-place op bumps the
// storage's history_version; a view whose own value lags behind is moved onto its base's current
// history the next time autograd reads its history (refresh_view_history, core/tensor_impl.h).
#include "ops/internal.h"

namespace ember {

using autograd::BackwardArgs;
using Grads = std::vector<Tensor>;

namespace {

// Where a tensor's elements lie in its storage. Captured by value: a backward must not keep the
// tensors themselves alive (the base owns the node that would own it).
struct Geometry {
  Shape shape, strides;
  int64_t offset = 0;
};
Geometry geometry_of(const Tensor& t) { return {t.shape(), t.strides(), t.storage_offset()}; }

// A fresh buffer laid out like the base's storage: `base` is the base's elements in it and
// `region` the view's. A view's elements are some of its base's, so the buffer covers both.
struct Scratch {
  Tensor base, region;
};
Scratch scratch_for(const Geometry& base, const Geometry& view, const TensorOptions& options, bool zeroed) {
  int64_t span = 1;
  for (size_t d = 0; d < base.shape.size(); ++d) span += (base.shape[d] - 1) * base.strides[d];
  Tensor buffer = zeroed ? zeros({span}, options) : empty({span}, options);
  return {make_view(buffer, base.shape, base.strides, 0),
          make_view(buffer, view.shape, view.strides, view.offset - base.offset)};
}

bool has_elements(const Geometry& g) { return shape_numel(g.shape) > 0; }

// The two maps between a base and a view's region of it (a view without repeated elements):
// region_of(t), the view's elements of t (shaped like the base), and base_from_region(r), zeros
// shaped like the base with r in the view's elements. They are linear and adjoint, so each is
// recorded (create_graph) with the other as its gradient: copy_slices and as_strided, built from
// them, then differentiate to any order.
Tensor base_from_region(const Tensor& region, const Geometry& view, const Geometry& base);

Tensor region_of(const Tensor& t, const Geometry& view, const Geometry& base) {
  Scratch s = scratch_for(base, view, t.options(), /*zeroed=*/false);
  copy_into(s.base, t);
  Tensor out = empty(view.shape, t.options());
  copy_into(out, s.region);
  record_linear("view_region", t, out,
                [view, base](const Tensor& u) { return base_from_region(u, view, base); });
  return out;
}

Tensor base_from_region(const Tensor& region, const Geometry& view, const Geometry& base) {
  Scratch s = scratch_for(base, view, region.options(), /*zeroed=*/true);
  copy_into(s.region, region);
  Tensor out = s.base.detach();  // (not a view of the scratch buffer: nothing else holds that)
  record_linear("view_region_backward", region, out,
                [view, base](const Tensor& u) { return region_of(u, view, base); });
  return out;
}

// The base's gradient from its view's: zero outside the region. An expanded view reads one element
// several times, so there the gradient is the sum over the copies.
Tensor view_grad_to_base(const Tensor& grad, Geometry view, const Geometry& base) {
  if (!has_elements(base)) return zeros(base.shape, grad.options());
  Shape expanded;
  for (size_t d = 0; d < view.shape.size(); ++d)
    if (view.strides[d] == 0 && view.shape[d] > 1) {
      expanded.push_back(static_cast<int64_t>(d));
      view.shape[d] = 1;
    }
  return base_from_region(expanded.empty() ? grad : grad.sum(expanded, /*keepdim=*/true), view, base);
}

// Gives `to` the history of `from`: its grad_fn and output slot, and whether it requires grad.
void take_history(const Tensor& to, const Tensor& from) {
  AutogradMeta& m = to.impl()->meta();
  m.requires_grad = from.requires_grad();
  m.grad_fn = from.grad_fn();
  m.output_nr = from.impl()->autograd ? from.impl()->autograd->output_nr : 0;
}

// The old value, carrying the tensor's history, for the out-of-place op to read.
Tensor snapshot_with_history(const Tensor& self) {
  Tensor before = self.detach().clone();
  if (self.requires_grad()) take_history(before, self);
  return before;
}

void write_result(Tensor& self, const Tensor& result, const char* name) {
  if (result.shape() != self.shape())
    fail("{}: result of shape {} cannot be written into a tensor of shape {}", name,
         shape_str(result.shape()), shape_str(self.shape()));
  copy_into(self, result.detach());
  self.impl()->bump_version();
}

// As in LibTorch, retain_grad follows a tensor onto its new history (the retain hook on the old
// grad_fn skips itself once grad_fn has changed); its other hooks stay behind.
void keep_retaining_grad(const Tensor& t) {
  const AutogradMeta* meta = t.impl()->autograd.get();
  if (meta && meta->retains_grad && meta->grad_fn) t.retain_grad();
}

void bump_history(const Tensor& t) { t.impl()->storage->history_version.fetch_add(1); }

Tensor& inplace_on_view(Tensor& self, const char* name,
                        const std::function<Tensor(const Tensor& before)>& out_of_place) {
  Tensor base(self.impl()->view_base);
  // As in PyTorch: the base would have to take a grad_fn, and a leaf must stay a leaf.
  if (base.is_leaf() && self.requires_grad())
    fail(
        "{}: a view of a leaf tensor that requires grad cannot be modified in place (use NoGradGuard, or "
        "write into a clone())",
        name);
  // As in PyTorch: whether such a write should be recorded is ambiguous, so it is refused.
  if (base.requires_grad() && !self.requires_grad())
    fail(
        "{}: a view taken under NoGradGuard is being modified in place with grad mode on; take the view "
        "with grad mode on, or do the in-place op under NoGradGuard too",
        name);
  Tensor result = out_of_place(snapshot_with_history(self));
  write_result(self, result, name);
  if (!base.requires_grad() && !result.requires_grad()) return self;
  autograd::record(
      "copy_slices", {base, result}, base,
      [base_at = geometry_of(base), view_at = geometry_of(self)](const BackwardArgs& a) {
        if (!has_elements(base_at)) return Grads{zeros(base_at.shape, a.grad().options()), Tensor()};
        if (GradMode::is_enabled()) {  // create_graph: the same, in recorded maps
          Tensor to_result = region_of(a.grad(), view_at, base_at);
          return Grads{a.grad() - base_from_region(to_result, view_at, base_at), to_result};
        }
        Scratch s = scratch_for(base_at, view_at, a.grad().options(), /*zeroed=*/false);
        s.base.copy_(a.grad());
        Tensor to_result = a.needs(1) ? s.region.clone() : Tensor();
        if (!a.needs(0)) return Grads{Tensor(), to_result};
        s.region.zero_();  // overwritten by the op: no gradient to the old value there
        return Grads{s.base, to_result};
      },
      autograd::DoubleBackward::supported);
  keep_retaining_grad(base);
  bump_history(self);
  rebase_view_history(self);
  return self;
}
}  // namespace

void rebase_view_history(const Tensor& view) {
  TensorImpl& impl = *view.impl();
  impl.history_version = impl.storage->history_version.load();  // first: what follows reads it
  if (impl.view_base->storage != impl.storage) {                // the base moved to other memory (Module::to)
    impl.view_base.reset();
    return;
  }
  Tensor base(impl.view_base);
  if (base.requires_grad()) {
    Tensor out = view;
    autograd::record(
        "as_strided", {base}, out,
        [base_at = geometry_of(base), view_at = geometry_of(view)](const BackwardArgs& a) {
          return Grads{view_grad_to_base(a.grad(), view_at, base_at)};
        },
        autograd::DoubleBackward::supported);
    keep_retaining_grad(view);
  } else if (impl.autograd && impl.autograd->grad_fn) {
    // The base no longer requires grad (an in-place fill, say), so its region does not either.
    impl.autograd->grad_fn = nullptr;
    impl.autograd->requires_grad = false;
  }
}

Tensor& apply_inplace(Tensor& self, const char* name, const std::function<void()>& kernel,
                      const std::function<Tensor(const Tensor& before)>& out_of_place, bool needs_grad) {
  check_defined(name, self, "self");
  check_no_internal_overlap(name, self);
  // A base whose data has since moved to other memory (Module::to) no longer aliases the view.
  if (self.impl()->view_base && self.impl()->view_base->storage != self.impl()->storage)
    self.impl()->view_base.reset();
  // Writing into a view changes its base: autograd must see that even when the view itself does
  // not require grad (it was taken under NoGradGuard).
  const TensorImpl* base = self.impl()->view_base.get();
  needs_grad =
      needs_grad || (base && GradMode::is_enabled() && base->autograd && base->autograd->requires_grad);
  if (!needs_grad) {
    kernel();
    self.impl()->bump_version();
    return self;
  }
  if (self.is_leaf() && self.requires_grad())
    fail("{}: a leaf tensor that requires grad cannot be modified in place (use NoGradGuard, or detach())",
         name);
  if (base) return inplace_on_view(self, name, out_of_place);
  Tensor result = out_of_place(snapshot_with_history(self));
  write_result(self, result, name);
  // self gets a new history below; views of it taken before now will be moved onto it.
  if (self.requires_grad() || result.requires_grad()) bump_history(self);
  take_history(self, result);
  keep_retaining_grad(self);
  return self;
}

}  // namespace ember
