// linear(x, W, b) = x W^T + b as one fused GEMM: the output starts as the broadcast bias and the
// kernel adds x W^T onto it (beta = 1). W^T is a transposed view, never a copy.
#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/linalg.h"

namespace ember {

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_defined("linear", x, "input");
  check_defined("linear", w, "weight");
  if (w.dim() != 2)
    fail("linear: weight must be 2-D [out_features, in_features], got shape {}", shape_str(w.shape()));
  if (x.dim() == 0) fail("linear: input must be at least 1-D, got a 0-d tensor");
  const int64_t in = w.size(1), out_features = w.size(0);
  if (x.size(-1) != in)
    fail("linear: input {} and weight {}: in_features differ ({} vs {})", shape_str(x.shape()),
         shape_str(w.shape()), x.size(-1), in);
  if (b.defined() && (b.dim() != 1 || b.size(0) != out_features))
    fail("linear: bias must have shape [{}] (out_features), got {}", out_features, shape_str(b.shape()));
  if (x.dtype() != w.dtype() || (b.defined() && b.dtype() != x.dtype()))
    fail("linear: dtype mismatch: input {}, weight {}{}", x.dtype(), w.dtype(),
         b.defined() ? fmt::format(", bias {}", b.dtype()) : "");
  if (x.dtype() == DType::boolean) fail("linear: not defined for bool tensors");
  check_same_device("linear", {x, w, b});
  // bfloat16 on the CPU: a float32 GEMM, rounded once; on CUDA the GEMM takes bf16 (see matmul).
  if (x.dtype() == DType::bfloat16 && !x.device().is_cuda())
    return via_float32(
        [](const Tensor& x32, const Tensor& w32, const Tensor& b32) { return linear(x32, w32, b32); }, x, w,
        b);

  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor out = empty_tensor(out_shape, x.dtype(), x.device());
  if (b.defined()) copy_into(out, b);
  // The GEMM wants matrices: a vector input is a single row.
  const Tensor x2 = x.dim() == 1 ? make_view(x, {1, in}, {0, x.stride(0)}, x.storage_offset()) : x;
  const Tensor out2 = x.dim() == 1 ? out.view({1, out_features}) : out;
  gemm_into(out2, x2, transpose_last_raw(w), b.defined() ? 1.0 : 0.0, "linear");

  if (autograd::any_requires_grad({x, w, b})) {
    autograd::record(
        "linear", {x, w, b}, out,
        [sx = SavedTensor(x), sw = SavedTensor(w)](const BackwardArgs& a) {
          Tensor xv = sx.unpack("linear"), wv = sw.unpack("linear");
          // Leading dims of x are just more rows: flatten them so each gradient is one GEMM.
          Tensor g2 = flatten_rows(a.grad());
          Grads grads(3);
          if (a.needs(0)) grads[0] = matmul(g2, wv).view(xv.shape());   // dx = g W
          if (a.needs(1)) grads[1] = matmul(g2.t(), flatten_rows(xv));  // dW = g^T x
          if (a.needs(2)) grads[2] = g2.sum({0});                       // db = sum of g over rows
          return grads;
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace ember
