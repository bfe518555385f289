// Cut Cross-Entropy: validation, the list of scored rows, the autograd node and the reductions.
// The two kernels (losses/kernels/cce.h) do all the O(N V D) work; this file is device-independent.
//
// Layout. The embeddings are flattened to E [R, D] (R = B*T, or N for [N, D] input, which counts
// as a single sequence). With shift k, row b*T + t is scored against target (b, t + k); pairs
// whose target is ignore_index, and the last k rows of each sequence, are not scored. The scored
// rows go into an ascending index list, so the kernels never touch the others. The node's outputs
// are per-row vectors nll[R] and lse[R] (0 for unscored rows); the public results are views
// and reductions of them, and autograd hands the kernel one upstream gradient per row.
#include "ember/losses/cce.h"

#include <climits>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "ember/autograd.h"
#include "losses/cce_testing.h"
#include "losses/kernels/cce.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(cce_forward_stub, CCEForwardFn);
EMBER_DEFINE_STUB(cce_backward_stub, CCEBackwardFn);

namespace losses {
namespace detail {
bool& cce_sort_vocabulary() {
  static bool sort = true;
  return sort;
}

bool& cce_signal_mask() {
  static bool use = true;
  return use;
}

CCECudaCore cce_cuda_core_named(const char* value) {
  const std::string_view name = value ? value : "";
  if (name.empty() || name == "mma") return CCECudaCore::mma;
  if (name == "wmma") return CCECudaCore::wmma;
  EMBER_CHECK(name == "mma_wide",
              "cut_cross_entropy: EMBER_CCE_CORE is \"{}\"; expected \"wmma\", \"mma\" or \"mma_wide\"",
              name);
  return CCECudaCore::mma_wide;
}

int64_t& cce_cuda_shared_memory_limit() {
  static int64_t bytes = 0;
  return bytes;
}

CCECudaCore& cce_cuda_core() {
  static CCECudaCore core = cce_cuda_core_named(std::getenv("EMBER_CCE_CORE"));
  return core;
}
}  // namespace detail

namespace {

using autograd::BackwardArgs;
using autograd::SavedTensor;

constexpr const char* kName = "cut_cross_entropy";

struct Problem {
  Tensor E, C, bias;     // raw (detached) contiguous: E [R, D], C [V, D], bias [V] or undefined
  Tensor rows, targets;  // int64 [n] on the inputs' device: the scored rows and their class ids
  int64_t B = 1, T = 0, D = 0, V = 0, n = 0;
  double filter_eps = 0;  // 0 = no filtering
};

void validate(const Tensor& E, const Tensor& C, const Tensor& target, const CCEOptions& o) {
  check_defined(kName, E, "embeddings");
  check_defined(kName, C, "classifier");
  check_defined(kName, target, "target");
  check_same_device(kName, {E, C, target, o.bias});
  if (!E.is_floating_point())
    fail("{}: embeddings must be float32, float64 or bfloat16, got {}", kName, E.dtype());
  if (E.dim() != 2 && E.dim() != 3)
    fail("{}: embeddings must be [N, D] or [B, T, D], got shape {}", kName, shape_str(E.shape()));
  if (C.dim() != 2) fail("{}: classifier must be [V, D], got shape {}", kName, shape_str(C.shape()));
  if (C.dtype() != E.dtype()) fail("{}: classifier is {} but embeddings are {}", kName, C.dtype(), E.dtype());
  const int64_t D = E.size(-1);
  if (C.size(1) != D)
    fail("{}: embeddings {} and classifier {} have different widths ({} vs {})", kName, shape_str(E.shape()),
         shape_str(C.shape()), D, C.size(1));
  if (D == 0) fail("{}: embeddings {} have width 0", kName, shape_str(E.shape()));
  if (C.size(0) == 0)
    fail("{}: classifier {} has no rows (an empty vocabulary)", kName, shape_str(C.shape()));
  if (D > INT_MAX) fail("{}: width D = {} exceeds the BLAS limit of 2^31 - 1", kName, D);
  if (target.dtype() != DType::int64)
    fail("{}: target must be int64 class ids, got {}", kName, target.dtype());
  Shape want(E.shape().begin(), E.shape().end() - 1);
  if (target.shape() != want)
    fail("{}: target has shape {} but embeddings {} need {}", kName, shape_str(target.shape()),
         shape_str(E.shape()), shape_str(want));
  if (o.bias.defined()) {
    if (o.bias.shape() != Shape{C.size(0)})
      fail("{}: bias has shape {} but the classifier has V = {} rows (expected [{}])", kName,
           shape_str(o.bias.shape()), C.size(0), C.size(0));
    if (o.bias.dtype() != E.dtype())
      fail("{}: bias is {} but embeddings are {}", kName, o.bias.dtype(), E.dtype());
  }
  if (!(o.softcap >= 0) || std::isinf(o.softcap))
    fail("{}: softcap must be a finite value >= 0 (0 = no cap), got {}", kName, o.softcap);
  const int64_t T = E.dim() == 3 ? E.size(1) : E.size(0);
  if (o.shift < 0 || o.shift > T)
    fail("{}: shift must lie in [0, T] = [0, {}] (T = sequence length), got {}", kName, T, o.shift);
  if (!(o.filter_eps >= 0) || std::isinf(o.filter_eps))
    fail("{}: filter_eps must be a finite value >= 0 (0 = the dtype's default), got {}", kName, o.filter_eps);
  if (!(o.reduction == Reduction::none || o.reduction == Reduction::mean || o.reduction == Reduction::sum))
    fail("{}: unknown reduction {}", kName, static_cast<int>(o.reduction));
}

// cce.md: eps = finfo(dtype).eps / 32, the size below which an addend cannot change a sum of
// order-1 terms: 2^-12 for bfloat16 (the gradients' dtype), 2^-28 for float32, 2^-57 for float64.
double default_filter_eps(DType dtype) {
  if (dtype == DType::bfloat16) return std::ldexp(1.0, -12);
  return dtype == DType::float32 ? std::ldexp(1.0, -28) : std::ldexp(1.0, -57);
}

// The dtype of the loss, the LSE and every per-row vector: float32 for bfloat16 inputs (as in the
// reference: logits accumulate in fp32), the input dtype otherwise.
DType cce_accumulation_dtype(DType input) { return input == DType::bfloat16 ? DType::float32 : input; }

Problem prepare(const Tensor& embeddings, const Tensor& classifier, const Tensor& target,
                const CCEOptions& o) {
  validate(embeddings, classifier, target, o);
  Problem p;
  p.D = embeddings.size(-1);
  p.V = classifier.size(0);
  p.B = embeddings.dim() == 3 ? embeddings.size(0) : 1;
  p.T = embeddings.dim() == 3 ? embeddings.size(1) : embeddings.size(0);
  p.E = embeddings.detach().contiguous().view({p.B * p.T, p.D});
  p.C = classifier.detach().contiguous();
  if (o.bias.defined()) p.bias = o.bias.detach().contiguous();
  if (o.filter_gradients)
    p.filter_eps = o.filter_eps > 0 ? o.filter_eps : default_filter_eps(embeddings.dtype());

  // The scored rows: row b*T + t pairs with target (b, t + shift).
  const std::vector<int64_t> x = target.to(Device::cpu()).contiguous().to_vector<int64_t>();
  std::vector<int64_t> rows, targets;
  rows.reserve(x.size());
  targets.reserve(x.size());
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t t = 0; t + o.shift < p.T; ++t) {
      const int64_t pos = b * p.T + t + o.shift, label = x[pos];
      if (label == o.ignore_index) continue;
      if (label < 0 || label >= p.V)
        fail("{}: target {} at position {} is outside [0, {}) and is not ignore_index ({})", kName, label,
             target.dim() == 2 ? fmt::format("[{},{}]", b, t + o.shift) : fmt::format("{}", pos), p.V,
             o.ignore_index);
      rows.push_back(b * p.T + t);
      targets.push_back(label);
    }
  p.n = static_cast<int64_t>(rows.size());
  const Device device = embeddings.device();
  p.rows = tensor<int64_t>(rows, {p.n}).to(device);
  p.targets = tensor<int64_t>(targets, {p.n}).to(device);
  return p;
}

// The backward in differentiable ops, for a backward pass that is itself recorded (create_graph).
// It materialises the scored rows' logits [n, V] (the kernels exist to avoid that; a second
// derivative is worth the memory), computes in the accumulation dtype and filters nothing:
//   dz'_r = (g_r + h_r) softmax(z'_r) - g_r onehot(x_r),  dz = dz' (1 - tanh^2(z / cap)) with a cap,
//   dE[rows] = dz C,  dC = dz^T E[rows],  db = sum_r dz_r.
// g and h: the upstream gradients of the per-row nll and lse [R] (undefined: none).
std::vector<Tensor> cce_gradients_recorded(const Tensor& embeddings, const Tensor& classifier,
                                           const Tensor& bias, const Tensor& rows, const Tensor& targets,
                                           double softcap, const Tensor& g, const Tensor& h) {
  const DType acc = cce_accumulation_dtype(embeddings.dtype());
  const int64_t D = embeddings.size(-1), R = embeddings.numel() / D, V = classifier.size(0);
  const Tensor E = embeddings.reshape({R, D}).to(acc), C = classifier.to(acc);
  const Tensor E_rows = index_select(E, 0, rows);
  Tensor z = matmul(E_rows, C.t());
  if (bias.defined()) z = z + bias.to(acc);
  Tensor capped = softcap > 0 ? softcap * tanh(z / softcap) : z;
  // the scored rows' upstream gradients (zero where none came)
  const Tensor none = zeros({rows.size(0)}, TensorOptions(acc).device(E.device()));
  const Tensor g_rows = g.defined() ? index_select(g.to(acc), 0, rows) : none;
  const Tensor h_rows = h.defined() ? index_select(h.to(acc), 0, rows) : none;
  Tensor dz =
      (g_rows + h_rows).unsqueeze(1) * softmax(capped, 1) - g_rows.unsqueeze(1) * one_hot(targets, V).to(acc);
  if (softcap > 0) dz = dz * (1.0 - square(capped / softcap));
  const Tensor index = rows.view({rows.size(0), 1}).expand({rows.size(0), D});
  return {scatter_add(zeros({R, D}, TensorOptions(acc).device(E.device())), 0, index, matmul(dz, C))
              .view(embeddings.shape()),
          matmul(dz.t(), E_rows), bias.defined() ? dz.sum({0}) : Tensor()};
}

// Per-row vector [B*T] -> the layout of Reduction::none: [N - shift] or [B, T - shift].
Tensor unscored_tail_dropped(const Tensor& per_row, const Problem& p, int64_t shift, int64_t embeddings_dim) {
  if (embeddings_dim == 2) return per_row.narrow(0, 0, p.T - shift);
  return per_row.view({p.B, p.T}).narrow(1, 0, p.T - shift);
}

CCEResult run(const Tensor& embeddings, const Tensor& classifier, const Tensor& target, const CCEOptions& o) {
  Problem p = prepare(embeddings, classifier, target, o);
  const Device device = embeddings.device();
  const DType dtype = cce_accumulation_dtype(embeddings.dtype());
  const int64_t R = p.B * p.T;
  const std::vector<Tensor> inputs = {embeddings, classifier, o.bias};
  const bool needs_grad = autograd::any_requires_grad(inputs);

  Tensor nll = zeros({R}, TensorOptions(dtype).device(device));
  Tensor lse = zeros({R}, TensorOptions(dtype).device(device));
  // The vocabulary-sorting statistic is only worth computing when a filtered backward follows.
  // So is the signal mask, with which the backward passes over the tiles the filter would drop
  // without recomputing them: 1 bit per 128 rows and class (2 MiB for Gemma 2's N = 8192, V = 256k).
  Tensor logit_avg, signal_mask;
  const bool filtered_backward = needs_grad && p.filter_eps > 0;
  if (filtered_backward && detail::cce_sort_vocabulary()) logit_avg = empty_tensor({p.V}, dtype, device);
  if (filtered_backward && detail::cce_signal_mask() && p.n > 0)
    signal_mask =
        zeros({signal_mask_groups(p.n), signal_mask_words(p.V)}, TensorOptions(DType::int32).device(device));
  cce_forward_stub(device, p.E, p.C, p.bias, p.rows, p.targets, o.softcap, lse, nll, logit_avg, p.filter_eps,
                   signal_mask);

  if (needs_grad) {
    // The node keeps the raw inputs (version-checked), the row list and LSE: O(N + V) beyond
    // what the caller already holds.
    autograd::record(
        kName, inputs, {&nll, &lse},
        [e_shape = embeddings.shape(), rows = p.rows, targets = p.targets, V = p.V, D = p.D,
         eps = p.filter_eps, softcap = o.softcap, se = SavedTensor(p.E), sc = SavedTensor(p.C),
         sb = p.bias.defined() ? SavedTensor(p.bias) : SavedTensor(), sl = SavedTensor(lse.detach()),
         logit_avg, signal_mask, deterministic = o.deterministic, accumulate_fp32 = o.accumulate_fp32,
         originals = std::array{SavedTensor(embeddings), SavedTensor(classifier), SavedTensor(o.bias)}](
            const BackwardArgs& a) {
          if (GradMode::is_enabled()) {  // create_graph; the inputs unpack with their history
            std::array<Tensor, 3> in;
            for (size_t k = 0; k < 3; ++k) in[k] = originals[k].unpack(kName);
            return cce_gradients_recorded(in[0], in[1], in[2], rows, targets, softcap, a.grad(0), a.grad(1));
          }
          std::vector<Tensor> grads(3);
          Tensor E = se.unpack(kName), C = sc.unpack(kName),
                 bias = sb.defined() ? sb.unpack(kName) : Tensor();
          const DType acc = cce_accumulation_dtype(E.dtype());
          auto per_row = [&](size_t i) {
            return a.grad(i).defined() ? cast_raw(a.grad(i), acc).contiguous() : Tensor();
          };
          Tensor g = per_row(0), h = per_row(1);
          if (!g.defined() && !h.defined()) return grads;
          if (!g.defined()) g = zeros({E.size(0)}, TensorOptions(acc).device(E.device()));
          Tensor order = logit_avg.defined() ? argsort(logit_avg) : Tensor();  // ascending average logit
          // In the input dtype; the kernel writes every entry.
          if (a.needs(0)) grads[0] = empty_tensor({E.size(0), D}, E.dtype(), E.device());
          if (a.needs(1)) grads[1] = empty_tensor({V, D}, E.dtype(), E.device());
          if (a.needs(2)) grads[2] = empty_tensor({V}, E.dtype(), E.device());
          cce_backward_stub(E.device(), E, C, bias, rows, targets, softcap, sl.unpack(kName), g, h, eps,
                            order, signal_mask, deterministic, accumulate_fp32, grads[0], grads[1], grads[2]);
          if (grads[0].defined()) grads[0] = grads[0].view(e_shape);
          return grads;
        },
        autograd::DoubleBackward::supported);
  }

  CCEResult result;
  result.lse = unscored_tail_dropped(lse, p, o.shift, embeddings.dim());
  switch (o.reduction) {
    case Reduction::none:
      result.loss = unscored_tail_dropped(nll, p, o.shift, embeddings.dim());
      break;
    case Reduction::sum:
      result.loss = nll.sum();
      break;
    // Unscored rows hold 0, so the sum over all rows is the sum over the n scored ones. With
    // n = 0 this is 0/0 = NaN, as in PyTorch's cross_entropy when every target is ignored.
    case Reduction::mean:
      result.loss = nll.sum() / static_cast<double>(p.n);
      break;
  }
  return result;
}

}  // namespace

Tensor cut_cross_entropy(const Tensor& embeddings, const Tensor& classifier, const Tensor& target,
                         const CCEOptions& options) {
  return run(embeddings, classifier, target, options).loss;
}

CCEResult cut_cross_entropy_with_lse(const Tensor& embeddings, const Tensor& classifier, const Tensor& target,
                                     const CCEOptions& options) {
  return run(embeddings, classifier, target, options);
}

}  // namespace losses
}  // namespace ember
