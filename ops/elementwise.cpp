// Elementwise ops: forward through unary_stub / binary_stub / where_stub, and each op's
// derivative right beside it.
#include <cmath>

#include "ops/bf16_compute.h"
#include "ops/internal.h"

namespace ember {

EMBER_DEFINE_STUB(unary_stub, UnaryFn);
EMBER_DEFINE_STUB(binary_stub, BinaryFn);
EMBER_DEFINE_STUB(where_stub, WhereFn);

using autograd::BackwardArgs;
using autograd::SavedTensor;
using autograd::sum_to;
using Grads = std::vector<Tensor>;

bool unary_returns_bool(UnaryOp op) { return op >= UnaryOp::eq_scalar; }
bool unary_float_only(UnaryOp op) {
  return op <= UnaryOp::reciprocal || op == UnaryOp::pow_scalar || op == UnaryOp::rpow_scalar ||
         op == UnaryOp::rdiv_scalar;
}
bool binary_returns_bool(BinaryOp op) { return op >= BinaryOp::eq && op <= BinaryOp::logical_xor; }

namespace {
bool is_float_op(BinaryOp op) {
  return op == BinaryOp::div || op == BinaryOp::pow || op == BinaryOp::atan2 || op == BinaryOp::hypot ||
         op > BinaryOp::leaky_relu_backward;
}
}  // namespace

Tensor unary_raw(UnaryOp op, const Tensor& x, double a, double b) {
  check_defined("unary", x);
  if (x.dtype() == DType::bfloat16)
    return via_float32_raw([&](const Tensor& f) { return unary_raw(op, f, a, b); }, x);
  Tensor in = x;
  if (unary_float_only(op) && !is_floating(x.dtype())) in = cast_raw(x, DType::float32);
  if (op == UnaryOp::affine && !is_floating(x.dtype()) &&
      (a != std::floor(a) || b != std::floor(b) || x.dtype() == DType::boolean))
    in = cast_raw(x, DType::float32);
  DType out_dtype = unary_returns_bool(op) ? DType::boolean : in.dtype();
  Tensor out = empty_tensor(in.shape(), out_dtype, in.device());
  if (out.numel() > 0) unary_stub(in.device(), op, out, in, a, b);
  return out;
}

DType result_type(const Tensor& a, const Tensor& b) {
  if ((a.dim() == 0) == (b.dim() == 0)) return promote_types(a.dtype(), b.dtype());
  const Tensor& dims = a.dim() == 0 ? b : a;
  const Tensor& zero_d = a.dim() == 0 ? a : b;
  auto kind = [](DType t) { return is_floating(t) ? 2 : is_integral(t) ? 1 : 0; };
  return kind(zero_d.dtype()) > kind(dims.dtype()) ? promote_types(dims.dtype(), zero_d.dtype())
                                                   : dims.dtype();
}

Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, double alpha, std::string_view name) {
  check_defined(name, a, "first operand");
  check_defined(name, b, "second operand");
  check_same_device(name, {a, b});
  DType compute = result_type(a, b);
  if (is_float_op(op) && !is_floating(compute)) compute = DType::float32;
  if (compute == DType::boolean && !binary_returns_bool(op)) {
    // bool arithmetic as in PyTorch: + and max are "or", * and min are "and" (computed in uint8,
    // nonzero is true); a difference of bools has no such meaning
    if (op == BinaryOp::sub) fail("{}: subtracting bool tensors is not supported (use logical_xor)", name);
    return cast_raw(binary_raw(op, cast_raw(a, DType::uint8), cast_raw(b, DType::uint8), alpha, name),
                    DType::boolean);
  }
  if (compute == DType::bfloat16)  // operands are rounded to bfloat16 first, as in PyTorch (bf16 + int)
    return via_float32_raw(
        [&](const Tensor& x, const Tensor& y) { return binary_raw(op, x, y, alpha, name); },
        cast_raw(a, compute), cast_raw(b, compute));
  Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), name);
  Tensor x = cast_raw(a, compute), y = cast_raw(b, compute);
  if (x.shape() != shape) x = x.detach().expand(shape);
  if (y.shape() != shape) y = y.detach().expand(shape);
  Tensor out = empty_tensor(shape, binary_returns_bool(op) ? DType::boolean : compute, a.device());
  if (out.numel() > 0) binary_stub(a.device(), op, out, x, y, alpha);
  return out;
}

namespace {

// Records a single-input op whose gradient is `rule(grad, saved input, saved output)`. Every rule
// is written in differentiable ops (or in a fused kernel only when not recording, see
// `derivative`), so every such op has a double backward.
template <class Rule>
Tensor unary_with_grad(const char* name, const Tensor& x, Tensor y, Rule rule, bool save_input,
                       bool save_output) {
  if (autograd::any_requires_grad({x})) {
    SavedTensor xs = save_input ? SavedTensor(x) : SavedTensor();
    SavedTensor ys = save_output ? SavedTensor::output(y) : SavedTensor();
    autograd::record(
        name, {x}, y,
        [=](const BackwardArgs& a) { return Grads{rule(a.grad(), xs.unpack(name), ys.unpack(name))}; },
        autograd::DoubleBackward::supported);
  }
  return y;
}

// g times an activation's derivative at v: one fused kernel, except while the backward pass is
// itself recorded (create_graph), when `recorded()` computes the same product in differentiable ops.
template <class Recorded>
Tensor derivative(BinaryOp fused, const Tensor& g, const Tensor& v, Recorded recorded, double alpha = 1.0) {
  return GradMode::is_enabled() ? recorded() : binary_raw(fused, g, v, alpha);
}

// g times the slope of a piecewise-linear activation (relu, leaky_relu) at v, one fused kernel, as
// an op of its own so that it can be recorded (create_graph). It is linear in g; its derivative in v
// is zero, so v is recorded as its input only when g has no history: the second derivative through
// such activations alone is then zeros, as with PyTorch's threshold_backward, rather than a
// gradient with no history ("does not require grad"). When g has a history (any network with
// weights after the activation) the zeros would add nothing but a full backward pass through
// whatever computed v, which doubled a WGAN-GP penalty step.
Tensor piecewise_linear_backward(const char* name, BinaryOp op, const Tensor& g, const Tensor& v,
                                 double slope) {
  Tensor out = binary_raw(op, g, v, slope, name);
  if (autograd::any_requires_grad({g})) {
    autograd::record(
        name, {g}, out,
        [=, sv = SavedTensor(v)](const BackwardArgs& a) {
          return Grads{piecewise_linear_backward(name, op, a.grad(), sv.unpack(name), slope)};
        },
        autograd::DoubleBackward::supported);
  } else if (autograd::any_requires_grad({v})) {
    autograd::record(
        name, {v}, out, [](const BackwardArgs& a) { return Grads{zeros_like(a.grad())}; },
        autograd::DoubleBackward::supported);
  }
  return out;
}

#define EMBER_UNARY(fn, OP, SAVE_IN, SAVE_OUT, ...)                                                        \
  Tensor fn(const Tensor& x) {                                                                             \
    return unary_with_grad(                                                                                \
        #fn, x, unary_raw(UnaryOp::OP, x),                                                                 \
        [](const Tensor& g, const Tensor& x, const Tensor& y) { return __VA_ARGS__; }, SAVE_IN, SAVE_OUT); \
  }

}  // namespace

// name, kernel op, save input?, save output?, gradient
EMBER_UNARY(exp, exp, false, true, g* y)
EMBER_UNARY(log, log, true, false, g / x)
EMBER_UNARY(log1p, log1p, true, false, g / (x + 1.0))
EMBER_UNARY(expm1, expm1, false, true, g*(y + 1.0))
EMBER_UNARY(sqrt, sqrt, false, true, g * 0.5 / y)
EMBER_UNARY(rsqrt, rsqrt, false, true, g * -0.5 * y * y * y)
EMBER_UNARY(abs, abs, true, false, g* sign(x))
EMBER_UNARY(neg, neg, false, false, -g)
EMBER_UNARY(sign, sign, false, false, zeros_like(g))
EMBER_UNARY(square, square, true, false, g * 2.0 * x)
EMBER_UNARY(reciprocal, reciprocal, false, true, -g* y* y)
EMBER_UNARY(sin, sin, true, false, g* cos(x))
EMBER_UNARY(cos, cos, true, false, -g* sin(x))
EMBER_UNARY(erf, erf, true, false, g*(2.0 / std::sqrt(M_PI)) * exp(-square(x)))
EMBER_UNARY(erfc, erfc, true, false, g*(-2.0 / std::sqrt(M_PI)) * exp(-square(x)))
EMBER_UNARY(erfinv, erfinv, false, true, g*(std::sqrt(M_PI) / 2.0) * exp(square(y)))
EMBER_UNARY(tan, tan, false, true, g*(1.0 + square(y)))
EMBER_UNARY(asin, asin, true, false, g* rsqrt(1.0 - square(x)))
EMBER_UNARY(acos, acos, true, false, -g* rsqrt(1.0 - square(x)))
EMBER_UNARY(atan, atan, true, false, g / (1.0 + square(x)))
EMBER_UNARY(sinh, sinh, true, false, g* cosh(x))
EMBER_UNARY(cosh, cosh, true, false, g* sinh(x))
EMBER_UNARY(asinh, asinh, true, false, g* rsqrt(square(x) + 1.0))
EMBER_UNARY(acosh, acosh, true, false, g* rsqrt(square(x) - 1.0))
EMBER_UNARY(atanh, atanh, true, false, g / (1.0 - square(x)))
EMBER_UNARY(exp2, exp2, false, true, g* y* M_LN2)
EMBER_UNARY(log2, log2, true, false, g / (x * M_LN2))
EMBER_UNARY(log10, log10, true, false, g / (x * M_LN10))
// Rounding: integers pass through unchanged; the derivative is 0 (PyTorch's, also at the jumps).
EMBER_UNARY(floor, floor, false, false, zeros_like(g))
EMBER_UNARY(ceil, ceil, false, false, zeros_like(g))
EMBER_UNARY(round, round, false, false, zeros_like(g))
EMBER_UNARY(trunc, trunc, false, false, zeros_like(g))
EMBER_UNARY(sigmoid, sigmoid, false, true,
            derivative(BinaryOp::sigmoid_backward, g, y, [&] { return g * (y * (1.0 - y)); }))
EMBER_UNARY(tanh, tanh, false, true,
            derivative(BinaryOp::tanh_backward, g, y, [&] { return g * (1.0 - y * y); }))
EMBER_UNARY(relu, relu, false, true,
            piecewise_linear_backward("relu_backward", BinaryOp::relu_backward, g, y, 0.0))
EMBER_UNARY(silu, silu, true, false, derivative(BinaryOp::silu_backward, g, x, [&] {
              Tensor s = sigmoid(x);
              return g * s * (1.0 + x * (1.0 - s));
            }))
EMBER_UNARY(softplus, softplus, true, false,
            derivative(BinaryOp::softplus_backward, g, x, [&] { return g * sigmoid(x); }))
EMBER_UNARY(logsigmoid, logsigmoid, true, false,
            derivative(BinaryOp::softplus_backward, g, -x, [&] { return g * sigmoid(-x); }))
#undef EMBER_UNARY

// x - trunc(x); PyTorch has no integer frac (it raises rather than promoting)
Tensor frac(const Tensor& x) {
  check_floating("frac", x);
  return unary_with_grad(
      "frac", x, unary_raw(UnaryOp::frac, x), [](const Tensor& g, const Tensor&, const Tensor&) { return g; },
      false, false);
}

Tensor gelu(const Tensor& x, bool tanh_approx) {
  UnaryOp op = tanh_approx ? UnaryOp::gelu_tanh : UnaryOp::gelu;
  BinaryOp back = tanh_approx ? BinaryOp::gelu_tanh_backward : BinaryOp::gelu_backward;
  return unary_with_grad(
      "gelu", x, unary_raw(op, x),
      [back, tanh_approx](const Tensor& g, const Tensor& x, const Tensor&) {
        return derivative(back, g, x, [&] {
          if (!tanh_approx)  // Phi(x) + x phi(x)
            return g * (0.5 * (1.0 + erf(x * M_SQRT1_2)) +
                        x * exp(-0.5 * square(x)) * (0.5 * M_2_SQRTPI * M_SQRT1_2));
          const double k = std::sqrt(2.0 / M_PI), c = 0.044715;
          Tensor t = tanh(k * (x + c * x * x * x));
          return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x));
        });
      },
      true, false);
}

Tensor leaky_relu(const Tensor& x, double slope) {
  return unary_with_grad(
      "leaky_relu", x, unary_raw(UnaryOp::leaky_relu, x, slope),
      [slope](const Tensor& g, const Tensor& x, const Tensor&) {
        return piecewise_linear_backward("leaky_relu_backward", BinaryOp::leaky_relu_backward, g, x, slope);
      },
      true, false);
}

Tensor pow(const Tensor& x, double p) {
  return unary_with_grad(
      "pow", x, unary_raw(UnaryOp::pow_scalar, x, p),
      [p](const Tensor& g, const Tensor& x, const Tensor&) {
        if (p == 0.0) return zeros_like(g);
        if (p == 1.0) return g;
        if (p == 2.0) return g * 2.0 * x;
        return g * p * pow(x, p - 1.0);
      },
      true, false);
}

Tensor pow(double base, const Tensor& e) {
  return unary_with_grad(
      "pow", e, unary_raw(UnaryOp::rpow_scalar, e, base),
      [base](const Tensor& g, const Tensor&, const Tensor& y) { return g * y * std::log(base); }, false,
      true);
}

namespace {
// An integer (or bool) tensor clamped to a fractional or NaN bound leaves the integers, as in
// PyTorch; an infinite bound is no bound (clamp_min / clamp_max pass one) and keeps the dtype.
bool clamp_leaves_integers(double bound) {
  return std::isfinite(bound) ? bound != std::floor(bound) : std::isnan(bound);
}
}  // namespace

// min(max(x, lo), hi) as in PyTorch: lo > hi gives hi everywhere (and a zero gradient), a NaN
// bound gives NaN.
Tensor clamp(const Tensor& x, double lo, double hi) {
  check_defined("clamp", x);
  if (!is_floating(x.dtype()) && (clamp_leaves_integers(lo) || clamp_leaves_integers(hi)))
    return clamp(x.to(DType::float32), lo, hi);
  if (x.dtype() == DType::boolean) return clamp(x.to(DType::int64), lo, hi);  // bool and an int scalar: int64
  return unary_with_grad(
      "clamp", x, unary_raw(UnaryOp::clamp, x, lo, hi),
      [lo, hi](const Tensor& g, const Tensor& x, const Tensor&) {
        return where(logical_and(x >= lo, x <= hi), g, 0.0);
      },
      true, false);
}
Tensor clamp_min(const Tensor& x, double lo) { return clamp(x, lo, INFINITY); }
Tensor clamp_max(const Tensor& x, double hi) { return clamp(x, -INFINITY, hi); }

// ---- tensor (op) scalar ----
namespace {
Tensor affine(const char* name, const Tensor& x, double scale, double shift) {
  return unary_with_grad(
      name, x, unary_raw(UnaryOp::affine, x, scale, shift),
      [scale](const Tensor& g, const Tensor&, const Tensor&) { return scale == 1.0 ? g : g * scale; }, false,
      false);
}
}  // namespace

Tensor operator+(const Tensor& a, double b) { return affine("add", a, 1.0, b); }
Tensor operator-(const Tensor& a, double b) { return affine("sub", a, 1.0, -b); }
Tensor operator*(const Tensor& a, double b) { return affine("mul", a, b, 0.0); }
Tensor operator/(const Tensor& a, double b) {
  if (!is_floating(a.dtype())) return a.to(DType::float32) / b;
  return affine("div", a, 1.0 / b, 0.0);
}
Tensor operator+(double a, const Tensor& b) { return affine("add", b, 1.0, a); }
Tensor operator-(double a, const Tensor& b) { return affine("rsub", b, -1.0, a); }
Tensor operator*(double a, const Tensor& b) { return affine("mul", b, a, 0.0); }
Tensor operator/(double a, const Tensor& b) {
  return unary_with_grad(
      "rdiv", b, unary_raw(UnaryOp::rdiv_scalar, b, a),
      [](const Tensor& g, const Tensor& x, const Tensor& y) { return -g * y / x; }, true, true);
}
Tensor operator-(const Tensor& a) { return neg(a); }

// ---- tensor (op) tensor ----
Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  Tensor out = binary_raw(BinaryOp::add, a, b, alpha, "add");
  if (autograd::any_requires_grad({a, b})) {
    autograd::record(
        "add", {a, b}, out,
        [alpha, sa = a.shape(), sb = b.shape()](const BackwardArgs& g) {
          return Grads{g.needs(0) ? sum_to(g.grad(), sa) : Tensor(),
                       g.needs(1) ? sum_to(alpha == 1.0 ? g.grad() : g.grad() * alpha, sb) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  Tensor out = binary_raw(BinaryOp::sub, a, b, alpha, "sub");
  if (autograd::any_requires_grad({a, b})) {
    autograd::record(
        "sub", {a, b}, out,
        [alpha, sa = a.shape(), sb = b.shape()](const BackwardArgs& g) {
          return Grads{g.needs(0) ? sum_to(g.grad(), sa) : Tensor(),
                       g.needs(1) ? sum_to(g.grad() * -alpha, sb) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryOp::mul, a, b, 1.0, "mul");
  if (autograd::any_requires_grad({a, b})) {
    autograd::record(
        "mul", {a, b}, out,
        [sa = SavedTensor(a), sb = SavedTensor(b)](const BackwardArgs& g) {
          Tensor x = sa.unpack("mul"), y = sb.unpack("mul");
          return Grads{g.needs(0) ? sum_to(g.grad() * y, x.shape()) : Tensor(),
                       g.needs(1) ? sum_to(g.grad() * x, y.shape()) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryOp::div, a, b, 1.0, "div");
  if (autograd::any_requires_grad({a, b})) {
    autograd::record(
        "div", {a, b}, out,
        [sa = a.shape(), sb = SavedTensor(b), so = SavedTensor::output(out)](const BackwardArgs& g) {
          Tensor y = sb.unpack("div");
          Tensor ga = g.grad() / y;
          return Grads{g.needs(0) ? sum_to(ga, sa) : Tensor(),
                       g.needs(1) ? sum_to(-ga * so.unpack("div"), y.shape()) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor pow(const Tensor& x, const Tensor& e) {
  Tensor out = binary_raw(BinaryOp::pow, x, e, 1.0, "pow");
  if (autograd::any_requires_grad({x, e})) {
    autograd::record(
        "pow", {x, e}, out,
        [sx = SavedTensor(x), se = SavedTensor(e), so = SavedTensor::output(out)](const BackwardArgs& g) {
          Tensor b = sx.unpack("pow"), p = se.unpack("pow"), y = so.unpack("pow");
          Tensor gx, ge;
          // As PyTorch: d/db b^p = p b^(p-1), taken as 0 where p == 0 (also at 0^0); d/dp b^p = b^p log b,
          // taken as 0 where b == 0 and p >= 0 (the limit for p > 0; for p < 0 it is -inf).
          if (g.needs(0)) gx = sum_to(where(p == 0.0, 0.0, g.grad() * p * pow(b, p - 1.0)), b.shape());
          if (g.needs(1))
            ge = sum_to(where(logical_and(b == 0.0, p >= 0.0), 0.0, g.grad() * y * log(b)), p.shape());
          return Grads{gx, ge};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

namespace {
Tensor min_max(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(op, a, b, 1.0, name);
  if (autograd::any_requires_grad({a, b})) {
    autograd::record(
        name, {a, b}, out,
        [op, name, sa = SavedTensor(a), sb = SavedTensor(b)](const BackwardArgs& g) {
          Tensor x = sa.unpack(name), y = sb.unpack(name);
          // As PyTorch: ties split the gradient evenly, and an input gets none only where it lost the
          // comparison; where either is NaN (so is the result) both get all of it.
          const bool is_max = op == BinaryOp::maximum;
          Tensor half = where(x == y, g.grad() * 0.5, g.grad());
          return Grads{g.needs(0) ? sum_to(where(is_max ? x < y : x > y, 0.0, half), x.shape()) : Tensor(),
                       g.needs(1) ? sum_to(where(is_max ? x > y : x < y, 0.0, half), y.shape()) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}
}  // namespace
Tensor maximum(const Tensor& a, const Tensor& b) { return min_max(BinaryOp::maximum, "maximum", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return min_max(BinaryOp::minimum, "minimum", a, b); }

namespace {
// The gradient of `out` in input i: rules[i](g, inputs, out), written in differentiable ops (so
// there is a double backward), summed back to the input's shape. For ops computed by one kernel and
// for composites whose own graph would differ from PyTorch's derivative at the edges (a masked
// 0 * inf): such a composite runs without recording and records only this.
using InputGradient = Tensor (*)(const Tensor& g, const std::vector<Tensor>& in, const Tensor& out);
Tensor with_gradients(const char* name, const std::vector<Tensor>& inputs, Tensor out,
                      std::vector<InputGradient> rules, bool save_output = false) {
  if (autograd::any_requires_grad(inputs)) {
    std::vector<SavedTensor> saved(inputs.begin(), inputs.end());
    SavedTensor so = save_output ? SavedTensor::output(out) : SavedTensor();
    autograd::record(
        name, inputs, out,
        [=](const BackwardArgs& a) {
          std::vector<Tensor> in;
          for (const SavedTensor& t : saved) in.push_back(t.unpack(name));
          const Tensor y = save_output ? so.unpack(name) : Tensor();
          Grads grads(in.size());
          for (size_t i = 0; i < in.size(); ++i)
            if (a.needs(i)) grads[i] = sum_to(rules[i](a.grad(), in, y), in[i].shape());
          return grads;
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

// The scalar operand of a binary op (where, fmod, remainder) as a 0-d tensor: of the tensor's
// dtype, except that a fractional or non-finite scalar beside an integer or bool tensor makes the
// result float32 (as i * 2.5 does).
Tensor scalar_operand(double v, const Tensor& beside, std::string_view name) {
  check_defined(name, beside);
  const bool whole = std::isfinite(v) && v == std::floor(v);
  DType dt = is_floating(beside.dtype()) || whole ? beside.dtype() : DType::float32;
  return full({}, v, TensorOptions(dt).device(beside.device()));
}

// fmod and remainder: integers stay integers (a zero divisor raises, as PyTorch's
// ZeroDivisionError), bool is rejected.
Tensor modulo(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_defined(name, a, "first operand");
  check_defined(name, b, "second operand");
  const DType dt = result_type(a, b);
  if (dt == DType::boolean) fail("{}: not defined for bool tensors", name);
  if (!is_floating(dt) && (b == 0.0).any().item<bool>())
    fail("{}: ZeroDivisionError (integer division by zero)", name);
  // d/da = 1; d/db = -(a / b rounded toward zero for fmod, down for remainder), as PyTorch
  InputGradient db = [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
    return -g * trunc(in[0] / in[1]);
  };
  if (op == BinaryOp::remainder)
    db = [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
      return -g * floor(in[0] / in[1]);
    };
  return with_gradients(name, {a, b}, binary_raw(op, a, b, 1.0, name),
                        {[](const Tensor& g, const std::vector<Tensor>&, const Tensor&) { return g; }, db});
}

// PyTorch rejects integer (and bool) operands of these, rather than promoting them
void check_floating_result(const char* name, const Tensor& a, const Tensor& b) {
  check_defined(name, a, "first operand");
  check_defined(name, b, "second operand");
  const DType dt = result_type(a, b);
  if (!is_floating(dt)) fail("{}: not defined for {} tensors (PyTorch has no integer {})", name, dt, name);
}
}  // namespace

Tensor fmod(const Tensor& a, const Tensor& b) { return modulo(BinaryOp::fmod, "fmod", a, b); }
Tensor remainder(const Tensor& a, const Tensor& b) { return modulo(BinaryOp::remainder, "remainder", a, b); }
Tensor fmod(const Tensor& a, double b) {
  const Tensor x = a.defined() && a.dtype() == DType::boolean ? a.to(DType::int64) : a;
  return fmod(x, scalar_operand(b, x, "fmod"));
}
Tensor remainder(const Tensor& a, double b) {
  const Tensor x = a.defined() && a.dtype() == DType::boolean ? a.to(DType::int64) : a;
  return remainder(x, scalar_operand(b, x, "remainder"));
}

Tensor atan2(const Tensor& a, const Tensor& b) {
  // d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2) (NaN at 0, 0, as in PyTorch)
  return with_gradients("atan2", {a, b}, binary_raw(BinaryOp::atan2, a, b, 1.0, "atan2"),
                        {[](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
                           return g * in[1] / (square(in[0]) + square(in[1]));
                         },
                         [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
                           return -g * in[0] / (square(in[0]) + square(in[1]));
                         }});
}

Tensor hypot(const Tensor& a, const Tensor& b) {
  check_floating_result("hypot", a, b);
  // one kernel (libm's hypot): sqrt(a^2 + b^2) in ops would overflow from |a| ~ 1.8e19 in float32
  return with_gradients(
      "hypot", {a, b}, binary_raw(BinaryOp::hypot, a, b, 1.0, "hypot"),
      {[](const Tensor& g, const std::vector<Tensor>& in, const Tensor& y) { return g * in[0] / y; },
       [](const Tensor& g, const std::vector<Tensor>& in, const Tensor& y) { return g * in[1] / y; }},
      true);
}

// log(e^a + e^b) = max(a, b) + log1p(e^-|a - b|), and a itself where a and b are the same
// infinity. The derivatives are PyTorch's sigmoid(a - b), sigmoid(b - a) (NaN at two equal
// infinities), which the composite's own graph would not give there.
Tensor logaddexp(const Tensor& a, const Tensor& b) {
  check_floating_result("logaddexp", a, b);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = maximum(a, b) + log1p(exp(-abs(a - b)));
    out = where(logical_and(isinf(a), a == b), a, out);
  }
  return with_gradients("logaddexp", {a, b}, out,
                        {[](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
                           return g * sigmoid(in[0] - in[1]);
                         },
                         [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
                           return g * sigmoid(in[1] - in[0]);
                         }});
}

// x log(y), 0 where x == 0 unless y is NaN. Derivatives as PyTorch: xlogy(x != 0, y) and x / y (so
// d/dx is 0 at x == 0, where the composite's graph would give 0 * log 0 = NaN).
Tensor xlogy(const Tensor& x, const Tensor& y) {
  check_defined("xlogy", x, "first operand");
  check_defined("xlogy", y, "second operand");
  Tensor out;
  {
    NoGradGuard no_grad;
    out = where(logical_and(x == 0.0, logical_not(isnan(y))), 0.0, x * log(y));
  }
  return with_gradients(
      "xlogy", {x, y}, out,
      {[](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) {
         return g * xlogy(in[0] != 0.0, in[1]);
       },
       [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) { return g * in[0] / in[1]; }});
}

// sin(pi x) / (pi x), 1 at 0; the quotient sees 1 where x == 0, so the branch not taken has a
// finite derivative and sinc'(0) is 0, as in PyTorch.
Tensor sinc(const Tensor& x) {
  check_defined("sinc", x);
  const Tensor zero = x == 0.0;
  const Tensor px = where(zero, 1.0, x) * M_PI;
  return where(zero, 1.0, sin(px) / px);
}

namespace {
void check_lerp_operand(const Tensor& t, const Tensor& start, const char* what) {
  check_defined("lerp", t, what);
  if (!is_floating(t.dtype())) fail("lerp: expected a floating dtype for `{}`, got {}", what, t.dtype());
  if (t.dtype() != start.dtype())
    fail("lerp: expected dtype {} for `{}` but got dtype {}", start.dtype(), what, t.dtype());
}
}  // namespace

// start + weight (end - start), computed from end when |weight| >= 1/2 (PyTorch's formula, exact at
// weight 1). start, end and a tensor weight share one floating dtype, as in PyTorch.
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  check_lerp_operand(start, start, "start");
  check_lerp_operand(end, start, "end");
  check_lerp_operand(weight, start, "weight");
  Tensor out;
  {
    NoGradGuard no_grad;
    const Tensor diff = end - start;
    out = where(abs(weight) < 0.5, start + weight * diff, end - diff * (1.0 - weight));
  }
  return with_gradients(
      "lerp", {start, end, weight}, out,
      {[](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) { return g * (1.0 - in[2]); },
       [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) { return g * in[2]; },
       [](const Tensor& g, const std::vector<Tensor>& in, const Tensor&) { return g * (in[1] - in[0]); }});
}

Tensor lerp(const Tensor& start, const Tensor& end, double weight) {
  check_lerp_operand(start, start, "start");
  check_lerp_operand(end, start, "end");
  const Tensor diff = end - start;  // (recorded: the gradients are (1 - w) g and w g)
  return std::abs(weight) < 0.5 ? start + diff * weight : end - diff * (1.0 - weight);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }

// ---- where / masked_fill ----
namespace {
Tensor where_raw(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  DType dtype = result_type(a, b);
  if (dtype == DType::bfloat16)  // exact: every bfloat16 value is a float32 value
    return via_float32_raw([&](const Tensor& x, const Tensor& y) { return where_raw(cond, x, y); },
                           cast_raw(a, dtype), cast_raw(b, dtype));
  auto prep = [&](const Tensor& t) {
    Tensor c = cast_raw(t, dtype);
    return c.shape() == shape ? c : c.detach().expand(shape);
  };
  Tensor c = cond.shape() == shape ? cond : cond.detach().expand(shape);
  Tensor out = empty_tensor(shape, dtype, a.device());
  if (out.numel() > 0) where_stub(a.device(), out, c, prep(a), prep(b));
  return out;
}
}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond, "condition");
  check_same_device("where", {cond, a, b});
  if (cond.dtype() != DType::boolean) fail("where: condition must be a bool tensor, got {}", cond.dtype());
  Tensor out = where_raw(cond, a, b);
  if (autograd::any_requires_grad({a, b})) {
    autograd::record(
        "where", {a, b}, out,
        [sc = SavedTensor(cond), sa = a.shape(), sb = b.shape()](const BackwardArgs& g) {
          Tensor c = sc.unpack("where");
          Tensor zero = zeros({}, g.grad().options());
          return Grads{g.needs(0) ? sum_to(where(c, g.grad(), zero), sa) : Tensor(),
                       g.needs(1) ? sum_to(where(c, zero, g.grad()), sb) : Tensor()};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}
Tensor where(const Tensor& cond, const Tensor& a, double b) {
  return where(cond, a, scalar_operand(b, a, "where"));
}
Tensor where(const Tensor& cond, double a, const Tensor& b) {
  return where(cond, scalar_operand(a, b, "where"), b);
}
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined("masked_fill", x);
  check_defined("masked_fill", mask, "mask");
  if (mask.dtype() != DType::boolean) fail("masked_fill: mask must be a bool tensor, got {}", mask.dtype());
  // Out of place, x and mask broadcast against each other, as in PyTorch (x [3] with a mask [2, 3]
  // gives [2, 3]); masked_fill_ below needs the result to keep x's shape.
  broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  return where(mask, full({}, value, x.options()), x);
}

// ---- comparisons and logic ----
namespace {
Tensor compare_scalar(UnaryOp op, const Tensor& a, double b) { return unary_raw(op, a, b); }
}  // namespace
Tensor eq(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::eq, a, b, 1, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::ne, a, b, 1, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::lt, a, b, 1, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::le, a, b, 1, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::gt, a, b, 1, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::ge, a, b, 1, "ge"); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return compare_scalar(UnaryOp::eq_scalar, a, b); }
Tensor operator!=(const Tensor& a, double b) { return compare_scalar(UnaryOp::ne_scalar, a, b); }
Tensor operator<(const Tensor& a, double b) { return compare_scalar(UnaryOp::lt_scalar, a, b); }
Tensor operator<=(const Tensor& a, double b) { return compare_scalar(UnaryOp::le_scalar, a, b); }
Tensor operator>(const Tensor& a, double b) { return compare_scalar(UnaryOp::gt_scalar, a, b); }
Tensor operator>=(const Tensor& a, double b) { return compare_scalar(UnaryOp::ge_scalar, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) {
  return binary_raw(BinaryOp::logical_and, a, b, 1, "logical_and");
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return binary_raw(BinaryOp::logical_or, a, b, 1, "logical_or");
}
Tensor logical_xor(const Tensor& a, const Tensor& b) {
  return binary_raw(BinaryOp::logical_xor, a, b, 1, "logical_xor");
}
Tensor logical_not(const Tensor& a) { return unary_raw(UnaryOp::logical_not, a); }
Tensor operator&&(const Tensor& a, const Tensor& b) { return logical_and(a, b); }
Tensor operator||(const Tensor& a, const Tensor& b) { return logical_or(a, b); }
Tensor operator!(const Tensor& a) { return logical_not(a); }
Tensor isnan(const Tensor& a) { return unary_raw(UnaryOp::isnan, a); }
Tensor isinf(const Tensor& a) { return unary_raw(UnaryOp::isinf, a); }
Tensor isfinite(const Tensor& a) { return unary_raw(UnaryOp::isfinite, a); }

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (broadcast_shapes(a.shape(), b.shape(), "allclose") != a.shape()) return false;
  NoGradGuard g;
  Tensor x = a.to(DType::float64), y = b.to(DType::float64);
  Tensor ok = abs(x - y) <= abs(y) * rtol + atol;
  // NaNs in the same places count as equal
  ok = logical_or(ok, logical_and(isnan(x), isnan(y)));
  ok = logical_or(ok, x == y);  // equal infinities
  return logical_not(ok).to(DType::int64).sum().item<int64_t>() == 0;
}

bool equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  return (a != b).to(DType::int64).sum().item<int64_t>() == 0;
}

// ---- in place ----
namespace {
Tensor& binary_inplace(Tensor& self, const char* name, BinaryOp op, const Tensor& other, double alpha,
                       Tensor (*out_of_place)(const Tensor&, const Tensor&, double)) {
  check_defined(name, other, "other");
  check_same_device(name, {self, other});
  DType promoted = promote_types(self.dtype(), other.dtype());
  if (is_floating(promoted) && !is_floating(self.dtype()))
    fail("{}: result type {} cannot be written into a {} tensor in place", name, promoted, self.dtype());
  if (op == BinaryOp::div && !is_floating(self.dtype()))
    fail("{}: true division cannot be written into a {} tensor in place", name, self.dtype());
  return apply_inplace(
      self, name,
      [&] {
        Shape b = broadcast_shapes(self.shape(), other.shape(), name);
        if (b != self.shape())
          fail("{}: operand of shape {} does not broadcast to {}", name, shape_str(other.shape()),
               shape_str(self.shape()));
        if (self.dtype() == DType::bfloat16 || self.dtype() == DType::boolean) {
          // no bfloat16 or bool arithmetic kernel: compute aside, then round (or test) into self
          copy_into(self, binary_raw(op, self.detach(), other, alpha, name));
          return;
        }
        Tensor o = cast_raw(other, self.dtype());
        if (may_overlap(self, o)) o = o.detach().clone();  // the values before the op, not those it writes
        if (o.shape() != self.shape()) o = o.detach().expand(self.shape());
        binary_stub(self.device(), op, self, self, o, alpha);
      },
      [&](const Tensor& before) { return out_of_place(before, other, alpha); },
      autograd::any_requires_grad({self, other}));
}
Tensor add_alpha(const Tensor& a, const Tensor& b, double alpha) { return add(a, b, alpha); }
Tensor sub_alpha(const Tensor& a, const Tensor& b, double alpha) { return sub(a, b, alpha); }
Tensor mul_2(const Tensor& a, const Tensor& b, double) { return mul(a, b); }
Tensor div_2(const Tensor& a, const Tensor& b, double) { return div(a, b); }

Tensor& scalar_inplace(Tensor& self, const char* name, UnaryOp op, double a, double b,
                       const std::function<Tensor(const Tensor&)>& out_of_place) {
  if (!is_floating(self.dtype()) && op == UnaryOp::affine && (a != std::floor(a) || b != std::floor(b)))
    fail("{}: a non-integer scalar cannot be applied to a {} tensor in place", name, self.dtype());
  return apply_inplace(
      self, name,
      [&] {
        if (self.dtype() == DType::bfloat16) {  // no bfloat16 kernel: compute aside, round into self
          copy_into(self, unary_raw(op, self.detach(), a, b));
        } else {
          unary_stub(self.device(), op, self, self, a, b);
        }
      },
      out_of_place, autograd::any_requires_grad({self}));
}
}  // namespace

Tensor& Tensor::add_(const Tensor& o, double alpha) {
  return binary_inplace(*this, "add_", BinaryOp::add, o, alpha, add_alpha);
}
Tensor& Tensor::sub_(const Tensor& o, double alpha) {
  return binary_inplace(*this, "sub_", BinaryOp::sub, o, alpha, sub_alpha);
}
Tensor& Tensor::mul_(const Tensor& o) { return binary_inplace(*this, "mul_", BinaryOp::mul, o, 1.0, mul_2); }
Tensor& Tensor::div_(const Tensor& o) { return binary_inplace(*this, "div_", BinaryOp::div, o, 1.0, div_2); }
Tensor& Tensor::add_(double v) {
  return scalar_inplace(*this, "add_", UnaryOp::affine, 1.0, v, [v](const Tensor& t) { return t + v; });
}
Tensor& Tensor::sub_(double v) {
  return scalar_inplace(*this, "sub_", UnaryOp::affine, 1.0, -v, [v](const Tensor& t) { return t - v; });
}
Tensor& Tensor::mul_(double v) {
  return scalar_inplace(*this, "mul_", UnaryOp::affine, v, 0.0, [v](const Tensor& t) { return t * v; });
}
Tensor& Tensor::div_(double v) {
  if (!is_floating(dtype())) fail("div_: true division cannot be written into a {} tensor in place", dtype());
  return scalar_inplace(*this, "div_", UnaryOp::affine, 1.0 / v, 0.0, [v](const Tensor& t) { return t / v; });
}
Tensor& Tensor::clamp_(double lo, double hi) {
  if (!is_floating(dtype()) && (clamp_leaves_integers(lo) || clamp_leaves_integers(hi)))
    fail("clamp_: the bounds [{}, {}] cannot be applied to a {} tensor in place (the result is float)", lo,
         hi, dtype());
  return scalar_inplace(*this, "clamp_", UnaryOp::clamp, lo, hi,
                        [=](const Tensor& t) { return ember::clamp(t, lo, hi); });
}
Tensor& Tensor::masked_fill_(const Tensor& mask, double value) {
  check_defined("masked_fill_", *this);
  check_defined("masked_fill_", mask, "mask");
  if (broadcast_shapes(shape(), mask.shape(), "masked_fill_") != shape())
    fail("masked_fill_: mask of shape {} does not broadcast to input of shape {}", shape_str(mask.shape()),
         shape_str(shape()));
  return apply_inplace(
      *this, "masked_fill_", [&] { copy_into(*this, ember::masked_fill(this->detach(), mask, value)); },
      [&](const Tensor& t) { return ember::masked_fill(t, mask, value); },
      autograd::any_requires_grad({*this}));
}

Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, const Tensor& b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, const Tensor& b) { return a.div_(b); }
Tensor& operator+=(Tensor& a, double b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, double b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, double b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, double b) { return a.div_(b); }

}  // namespace ember
