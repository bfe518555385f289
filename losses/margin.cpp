// The margin and embedding losses: short composites of elementwise ops, sums, gather and
// pairwise_distance, written as torch 1.13's ATen and torch.nn.functional write them (same
// formulas, same clamps, same shapes accepted), so autograd gives every floating argument its
// gradient to any order, on every backend.
#include "ember/losses/margin.h"

#include "ember/losses/reduction.h"
#include "losses/class_layout.h"
#include "losses/elementwise_checks.h"
#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember::losses {

namespace {

void check_input(const char* loss, const Tensor& x, const char* what) {
  check_defined(loss, x, what);
  if (!x.is_floating_point())
    fail("{}: {} must be floating point (float32 or float64), got {}", loss, what, x.dtype());
}

// Label targets (+1 / -1, or 0 / 1 per class) may be floating or integer, as in PyTorch; they are
// used in `input`'s dtype (a cast keeps a floating target's gradient).
Tensor label_target(const char* loss, const Tensor& input, const Tensor& target) {
  check_defined(loss, target, "target");
  check_same_device(loss, {input, target});
  if (target.dtype() == DType::boolean) fail("{}: target must hold numbers, got bool", loss);
  return target.dtype() == input.dtype() ? target : target.to(input.dtype());
}

// x1 and x2 floating, on the target's device; returns the label target in x1's dtype.
Tensor check_embedding_pair(const char* loss, const Tensor& x1, const Tensor& x2, const Tensor& target) {
  check_input(loss, x1, "x1");
  check_input(loss, x2, "x2");
  check_same_device(loss, {x1, x2});
  return label_target(loss, x1, target);
}

// Throws unless shapes a and b broadcast (NumPy's rules), naming both.
void check_broadcast(const char* loss, const char* a_name, const Shape& a, const char* b_name,
                     const Shape& b) {
  for (size_t k = 1; k <= std::min(a.size(), b.size()); ++k) {
    const int64_t m = a[a.size() - k], n = b[b.size() - k];
    if (m != n && m != 1 && n != 1)
      fail("{}: {} {} and {} {} do not broadcast to one shape", loss, a_name, shape_str(a), b_name,
           shape_str(b));
  }
}

// Three tensors of one rank whose shapes broadcast pairwise (then they broadcast together): the
// rule of margin_ranking_loss and triplet_margin_loss, whose PyTorch versions reject mixed ranks.
void check_three(const char* loss, const char* const names[3], const Tensor& a, const Tensor& b,
                 const Tensor& c) {
  check_same_device(loss, {a, b, c});
  if (a.dim() != b.dim() || a.dim() != c.dim())
    fail("{}: {} {}, {} {} and {} {} must have the same number of dims", loss, names[0], shape_str(a.shape()),
         names[1], shape_str(b.shape()), names[2], shape_str(c.shape()));
  check_broadcast(loss, names[0], a.shape(), names[1], b.shape());
  check_broadcast(loss, names[0], a.shape(), names[2], c.shape());
  check_broadcast(loss, names[1], b.shape(), names[2], c.shape());
}

}  // namespace

Tensor margin_ranking_loss(const Tensor& x1, const Tensor& x2, const Tensor& target,
                           const MarginRankingOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(x1, x2, target))
    return via_float32(
        [&](const Tensor& a, const Tensor& b, const Tensor& y) { return margin_ranking_loss(a, b, y, o); },
        x1, x2, target);
  const char* name = "margin_ranking_loss";
  Tensor y = check_embedding_pair(name, x1, x2, target);
  static const char* const names[3] = {"x1", "x2", "target"};
  check_three(name, names, x1, x2, y);
  // clamp_min, as PyTorch: the gradient passes where the hinge is exactly 0
  return reduce_loss(clamp_min(-y * (x1 - x2) + o.margin, 0.0), o.reduction);
}

Tensor hinge_embedding_loss(const Tensor& input, const Tensor& target, const HingeEmbeddingOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target))
    return via_float32([&](const Tensor& x, const Tensor& y) { return hinge_embedding_loss(x, y, o); }, input,
                       target);
  const char* name = "hinge_embedding_loss";
  check_input(name, input, "input");
  Tensor y = label_target(name, input, target);
  check_broadcast(name, "input", input.shape(), "target", y.shape());
  // PyTorch's two terms: max(0, margin - x) wherever y != 1 and x wherever y != -1, so a label
  // other than +-1 gets both. The target only selects: it receives no gradient.
  return reduce_loss(where(y != 1.0, clamp_min(o.margin - input, 0.0), 0.0) + where(y != -1.0, input, 0.0),
                     o.reduction);
}

Tensor soft_margin_loss(const Tensor& input, const Tensor& target, const SoftMarginOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target))
    return via_float32([&](const Tensor& x, const Tensor& y) { return soft_margin_loss(x, y, o); }, input,
                       target);
  const char* name = "soft_margin_loss";
  check_input(name, input, "input");
  Tensor y = label_target(name, input, target);
  check_broadcasts_to(name, "target", y, input);  // PyTorch writes the loss in the input's shape
  // log(1 + exp(-y x)) as softplus, which is finite where exp(-y x) overflows (PyTorch gives inf)
  return reduce_loss(softplus(-y * input), o.reduction);
}

Tensor multilabel_soft_margin_loss(const Tensor& input, const Tensor& target,
                                   const MultilabelSoftMarginOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, target, o.weight)) {
    MultilabelSoftMarginOptions o32 = o;
    o32.weight = bf16_upcast(o.weight);
    return via_float32(
        [&](const Tensor& x, const Tensor& y) { return multilabel_soft_margin_loss(x, y, o32); }, input,
        target);
  }
  const char* name = "multilabel_soft_margin_loss";
  check_input(name, input, "input");
  if (input.dim() == 0)
    fail("{}: input must be [N, C] or [C] (the classes along the last dim), got a 0-d tensor", name);
  Tensor y = label_target(name, input, target);
  check_broadcasts_to(name, "target", y, input);
  check_broadcasts_to(name, "weight", o.weight, input);
  Tensor loss = -(y * logsigmoid(input) + (1.0 - y) * logsigmoid(-input));
  if (o.weight.defined()) loss = loss * o.weight.to(input.dtype());
  // the mean over the classes (the last dim), one loss per example
  const int64_t classes = input.size(input.dim() - 1);
  return reduce_loss(sum(loss, {-1}) / static_cast<double>(classes), o.reduction);
}

Tensor multi_margin_loss(const Tensor& input, const Tensor& target, const MultiMarginOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(input, o.weight)) {
    MultiMarginOptions o32 = o;
    o32.weight = bf16_upcast(o.weight);
    return via_float32([&](const Tensor& x) { return multi_margin_loss(x, target, o32); }, input);
  }
  const char* name = "multi_margin_loss";
  check_input(name, input, "input");
  // PyTorch's shapes: [N, C], [C] or a 0-d score (one class), with C > 0
  const int64_t classes = input.dim() == 0 ? 1 : input.size(input.dim() - 1);
  if (input.dim() > 2 || classes == 0)
    fail("{}: input must be [N, C] or [C] with C > 0, got {}", name, shape_str(input.shape()));
  if (o.p != 1 && o.p != 2) fail("{}: p must be 1 or 2, got {}", name, o.p);
  const int64_t frames = input.dim() == 2 ? input.size(0) : 1;
  check_defined(name, target, "target");
  check_same_device(name, {input, target});
  if (target.dtype() != DType::int64)
    fail("{}: target must hold int64 class ids, got {}", name, target.dtype());
  // one class id per example: [N] (or 0-d when N = 1), [1] or 0-d for a single example
  if (target.dim() > 1 || target.numel() != frames)
    fail("{}: target {} does not match input {}: expected {} class id{} ([{}] or 0-d)", name,
         shape_str(target.shape()), shape_str(input.shape()), frames, frames == 1 ? "" : "s", frames);
  const Tensor weight = class_weight(name, o.weight, classes, input);
  const Tensor y = target.reshape({frames});
  if (frames > 0) {
    const Tensor bad = logical_or(y < 0.0, y >= static_cast<double>(classes));
    if (bad.any().item<bool>())
      fail_bad_target(name, target, nonzero(bad).select(0, 0).item<int64_t>(), classes, false, 0);
  }
  const Tensor x = input.reshape({frames, classes});
  // max(0, margin - x_y + x_i) for every class i; relu, because PyTorch's backward counts a term
  // only where it is > 0 (relu's slope at 0 is 0)
  Tensor h = relu(x - gather(x, 1, y.reshape({frames, 1})) + o.margin);
  if (o.p == 2) h = square(h);
  // the sum over i != y (the target's own term would be the margin), weighted by w_y, over C
  Tensor loss = sum(where(one_hot(y, classes).to(DType::boolean), 0.0, h), {1});
  if (weight.defined()) loss = loss * index_select(weight, 0, y);
  loss = loss / static_cast<double>(classes);
  // as PyTorch: one loss per target entry, so a 0-d target gives a 0-d loss
  return reduce_loss(target.dim() == 0 ? loss.reshape({}) : loss, o.reduction);
}

Tensor cosine_embedding_loss(const Tensor& x1, const Tensor& x2, const Tensor& target,
                             const CosineEmbeddingOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(x1, x2, target))
    return via_float32(
        [&](const Tensor& a, const Tensor& b, const Tensor& y) { return cosine_embedding_loss(a, b, y, o); },
        x1, x2, target);
  const char* name = "cosine_embedding_loss";
  // the target only selects a branch: it receives no gradient, as in PyTorch
  const Tensor y = check_embedding_pair(name, x1, x2, target).detach();
  if (y.dim() > 1)
    fail("{}: target must be 1-D (with x1, x2 [N, D]) or 0-d (with x1, x2 [D]), got {}", name,
         shape_str(y.shape()));
  // PyTorch pairs a 1-D target with 2-D inputs and a 0-d one with 1-D inputs
  const int64_t rank = y.dim() + 1;
  if (x1.dim() != rank || x2.dim() != rank)
    fail("{}: a {}-d target {} needs {}-D x1 and x2, got {} and {}", name, y.dim(), shape_str(y.shape()),
         rank, shape_str(x1.shape()), shape_str(x2.shape()));
  check_broadcast(name, "x1", x1.shape(), "x2", x2.shape());
  const int64_t d = rank - 1;
  const double kEps = 1e-12;  // PyTorch's EPSILON, added to each squared norm
  Tensor cos = sum(x1 * x2, {d}) / sqrt((sum(square(x1), {d}) + kEps) * (sum(square(x2), {d}) + kEps));
  check_broadcast(name, "target", y.shape(), "the pairs", cos.shape());
  // 1 - cos where y = 1, max(0, cos - margin) where y = -1, 0 for any other label
  return reduce_loss(where(y == 1.0, 1.0 - cos, 0.0) + where(y == -1.0, clamp_min(cos - o.margin, 0.0), 0.0),
                     o.reduction);
}

Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative,
                           const TripletMarginOptions& o) {
  // bfloat16: computed in float32; the loss and the gradients come back in bfloat16
  if (any_bfloat16(anchor, positive, negative))
    return via_float32(
        [&](const Tensor& a, const Tensor& p, const Tensor& n) { return triplet_margin_loss(a, p, n, o); },
        anchor, positive, negative);
  const char* name = "triplet_margin_loss";
  check_input(name, anchor, "anchor");
  check_input(name, positive, "positive");
  check_input(name, negative, "negative");
  static const char* const names[3] = {"anchor", "positive", "negative"};
  check_three(name, names, anchor, positive, negative);
  Tensor d_pos = pairwise_distance(anchor, positive, o.p, o.eps);
  Tensor d_neg = pairwise_distance(anchor, negative, o.p, o.eps);
  // the harder of the two negatives' distances (Balntas et al.); ties share the gradient
  if (o.swap) d_neg = minimum(d_neg, pairwise_distance(positive, negative, o.p, o.eps));
  return reduce_loss(clamp_min(d_pos - d_neg + o.margin, 0.0), o.reduction);
}

}  // namespace ember::losses
