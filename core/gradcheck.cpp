// Finite-difference gradient checking: compares the Jacobian that backward computes with
// central differences (f(x + eps) - f(x - eps)) / 2 eps, element by element, in float64.
#include <algorithm>
#include <cmath>

#include "core/tensor_impl.h"
#include "ember/autograd.h"
#include "ember/ops.h"

namespace ember {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs_in, GradcheckOptions opt) {
  std::vector<Tensor> inputs;
  std::vector<size_t> checked;
  for (size_t i = 0; i < inputs_in.size(); ++i) {
    const Tensor& t = inputs_in[i];
    if (!t.defined() || !t.requires_grad()) {
      inputs.push_back(t);
      continue;
    }
    if (t.dtype() != DType::float64)
      fail("gradcheck: input {} is {}; finite differences need float64 inputs", i, t.dtype());
    Tensor leaf = t.detach().clone();
    leaf.requires_grad_(true);
    inputs.push_back(leaf);
    checked.push_back(i);
  }
  if (checked.empty()) fail("gradcheck: no input requires grad");

  Tensor out = fn(inputs);
  if (!out.is_floating_point()) fail("gradcheck: the function must return a floating tensor");
  if (!out.requires_grad()) fail("gradcheck: the output does not depend on any input that requires grad");
  const int64_t m = out.numel();

  // analytic[k][j][e]: d out_j / d input_k[e]
  std::vector<std::vector<std::vector<double>>> analytic(checked.size());
  for (size_t k = 0; k < checked.size(); ++k)
    analytic[k].assign(m, std::vector<double>(inputs[checked[k]].numel(), 0.0));
  for (int64_t j = 0; j < m; ++j) {
    for (size_t k : checked) inputs[k].set_grad(Tensor());
    std::vector<double> onehot(m, 0.0);
    onehot[j] = 1.0;
    Tensor g = tensor<double>(onehot, out.shape(), TensorOptions(out.dtype()).device(out.device()));
    out.backward(g, /*retain_graph=*/true);
    for (size_t k = 0; k < checked.size(); ++k) {
      Tensor gr = inputs[checked[k]].grad();
      if (gr.defined()) analytic[k][j] = gr.to_vector<double>();
    }
  }

  GradcheckResult result;
  for (size_t k = 0; k < checked.size(); ++k) {
    Tensor& x = inputs[checked[k]];
    Tensor flat = x.detach().view({-1});
    for (int64_t e = 0; e < x.numel(); ++e) {
      std::vector<double> plus, minus;
      {
        NoGradGuard no_grad;
        Tensor cell = flat.narrow(0, e, 1);
        double orig = cell.item<double>();
        cell.fill_(orig + opt.eps);
        plus = fn(inputs).to_vector<double>();
        cell.fill_(orig - opt.eps);
        minus = fn(inputs).to_vector<double>();
        cell.fill_(orig);
      }
      for (int64_t j = 0; j < m; ++j) {
        double numeric = (plus[j] - minus[j]) / (2 * opt.eps);
        double a = analytic[k][j][e];
        double abs_err = std::abs(a - numeric);
        bool bad =
            !(abs_err <= opt.atol + opt.rtol * std::abs(numeric)) && !(std::isnan(a) && std::isnan(numeric));
        double rel_err = abs_err / std::max(std::abs(numeric), 1e-12);
        // Report the first failing element, or (when all pass) the one with the largest error.
        bool report = bad ? result.ok : (result.ok && abs_err >= result.max_abs_error);
        if (report)
          result.worst = fmt::format("input {} element {} (output element {}): analytic {} vs numeric {}",
                                     checked[k], e, j, a, numeric);
        if (bad) result.ok = false;
        result.max_abs_error = std::max(result.max_abs_error, abs_err);
        if (std::abs(numeric) > opt.atol) result.max_rel_error = std::max(result.max_rel_error, rel_err);
      }
    }
  }
  return result;
}

GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                              const std::vector<Tensor>& inputs, GradcheckOptions options) {
  // (checked here: v, added below, would otherwise be the only input that requires grad)
  if (std::none_of(inputs.begin(), inputs.end(),
                   [](const Tensor& t) { return t.defined() && t.requires_grad(); }))
    fail("gradgradcheck: no input requires grad");
  Shape out_shape;
  DType out_dtype;
  Device out_device;
  {
    NoGradGuard no_grad;
    Tensor out = fn(inputs);
    out_shape = out.shape();
    out_dtype = out.dtype();
    out_device = out.device();
  }
  // v: fixed values in [-1, 1) that are not all alike (a constant v would hide errors of ops whose
  // outputs sum to a constant), a function input like any other.
  std::vector<double> values(static_cast<size_t>(shape_numel(out_shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(1.0 + 2.3 * static_cast<double>(i));
  Tensor v = tensor<double>(values, out_shape, TensorOptions(out_dtype).device(out_device));
  v.requires_grad_(true);
  std::vector<Tensor> with_v = inputs;
  with_v.push_back(v);
  // The gradient of sum(fn(x) * v), flattened and joined, as a function of x and v.
  auto first_derivative = [&](const std::vector<Tensor>& args) {
    AutoGradMode recording(true);  // gradcheck evaluates its function unrecorded too
    std::vector<Tensor> xs(args.begin(), args.end() - 1), wrt;
    for (const Tensor& x : xs)
      if (x.defined() && x.requires_grad()) wrt.push_back(x);
    std::vector<Tensor> grads =
        autograd::grad({fn(xs)}, wrt, {args.back()}, /*retain_graph=*/true, /*create_graph=*/true,
                       /*allow_unused=*/true);
    std::vector<Tensor> flat;
    for (size_t i = 0; i < grads.size(); ++i)
      flat.push_back(grads[i].defined() ? grads[i].reshape({-1}) : zeros({wrt[i].numel()}, wrt[i].options()));
    return cat(flat, 0);
  };
  return gradcheck(first_derivative, with_v, options);
}

}  // namespace ember
