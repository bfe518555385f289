// matmul with PyTorch semantics (dot, matrix-vector, matrix-matrix, batched with broadcast batch
// dims), on the gemm kernel; and its backward right below.
#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/kernels/copy.h"
#include "ops/kernels/linalg.h"
#include "ops/linalg.h"

namespace ember {

EMBER_DEFINE_STUB(gemm_stub, GemmFn);

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

Tensor transpose_last_raw(const Tensor& t) {
  int64_t n = t.dim();
  Shape shape = t.shape(), strides = t.strides();
  std::swap(shape[n - 1], shape[n - 2]);
  std::swap(strides[n - 1], strides[n - 2]);
  return make_view(t, shape, strides, t.storage_offset());
}

Tensor flatten_rows(const Tensor& t) {
  return t.reshape({shape_numel(Shape(t.shape().begin(), t.shape().end() - 1)), t.size(-1)});
}

Tensor contiguous_raw(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = empty_tensor(t.shape(), t.dtype(), t.device());
  copy_into(c, t);
  return c;
}

namespace {

// The stride that walks dims [0, end) of t as one merged dim, if one exists (size-1 dims are
// skipped; then each dim's stride must be the next one's stride times its size).
std::optional<int64_t> merged_stride(const Tensor& t, int64_t end) {
  std::optional<int64_t> inner;  // stride of the innermost non-trivial dim seen so far
  int64_t span = 1;              // elements covered by the dims seen so far
  for (int64_t d = end - 1; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (!inner) {
      inner = t.stride(d);
    } else if (t.stride(d) != *inner * span) {
      return std::nullopt;
    }
    span *= t.size(d);
  }
  return inner.value_or(1);
}

// A batch of matrices as one [B, rows, cols] view with a single batch stride.
Tensor view3(const Tensor& t, int64_t offset, int64_t batch, int64_t batch_stride) {
  int64_t n = t.dim();
  return make_view(t, {batch, t.size(n - 2), t.size(n - 1)}, {batch_stride, t.stride(n - 2), t.stride(n - 1)},
                   offset);
}

}  // namespace

void gemm_into(const Tensor& out, const Tensor& a_in, const Tensor& b_in, double beta, std::string_view op) {
  if (out.numel() == 0) return;
  EMBER_CHECK(out.is_contiguous(), "{}: internal error: gemm output must be contiguous", op);
  const int64_t k = a_in.size(-1), n = b_in.size(-1);
  if (k == 0) {  // an empty sum: out = beta * out
    if (beta == 0.0) fill_stub(out.device(), out, 0.0);
    return;
  }
  // Only matrices that are neither row- nor column-major (strided slices, expanded rows) are copied.
  const Tensor a = blas_layout(a_in) ? a_in : contiguous_raw(a_in);
  const Tensor b = blas_layout(b_in) ? b_in : contiguous_raw(b_in);
  const int64_t na = a.dim(), nb = b.dim(), nout = out.dim();

  // b is one matrix for the whole batch: fold a's batch dims into its rows and do one large GEMM
  // (the common "activations @ weight" case), when that needs no copy.
  if (b.numel() == k * n) {
    std::optional<int64_t> row_stride = merged_stride(a, na - 1);
    const int64_t rows = a.numel() / k;
    if (row_stride && blas_layout(rows, k, *row_stride, a.stride(-1))) {
      Tensor a3 = make_view(a, {1, rows, k}, {0, *row_stride, a.stride(-1)}, a.storage_offset());
      Tensor b3 = view3(b, b.storage_offset(), 1, 0);
      Tensor o3 = make_view(out, {1, rows, n}, {0, n, 1}, out.storage_offset());
      gemm_stub(out.device(), o3, a3, b3, 1.0, beta);
      return;
    }
  }

  // General case: line the batch dims of out, a, b up (stride 0 where an operand is broadcast),
  // merge the ones that merge for all three, and call the kernel once per outer index with the
  // innermost batch dim as the kernel's strided batch. Usually one call.
  const int64_t nbatch = nout - 2;
  struct BatchDim {
    int64_t size, so, sa, sb;
  };
  std::vector<BatchDim> dims;  // outermost first
  for (int64_t d = 0; d < nbatch; ++d) {
    if (out.size(d) == 1) continue;
    int64_t da = d - (nout - na), db = d - (nout - nb);
    int64_t sa = (da >= 0 && a.size(da) != 1) ? a.stride(da) : 0;
    int64_t sb = (db >= 0 && b.size(db) != 1) ? b.stride(db) : 0;
    BatchDim cur{out.size(d), out.stride(d), sa, sb};
    if (!dims.empty()) {
      BatchDim& prev = dims.back();
      if (prev.so == cur.so * cur.size && prev.sa == cur.sa * cur.size && prev.sb == cur.sb * cur.size) {
        prev = BatchDim{prev.size * cur.size, cur.so, cur.sa, cur.sb};
        continue;
      }
    }
    dims.push_back(cur);
  }
  BatchDim inner = dims.empty() ? BatchDim{1, 0, 0, 0} : dims.back();
  if (!dims.empty()) dims.pop_back();
  int64_t outer = 1;
  for (const BatchDim& d : dims) outer *= d.size;
  for (int64_t idx = 0; idx < outer; ++idx) {
    int64_t oo = out.storage_offset(), oa = a.storage_offset(), ob = b.storage_offset();
    for (int64_t d = static_cast<int64_t>(dims.size()) - 1, rem = idx; d >= 0; --d) {
      int64_t i = rem % dims[d].size;
      rem /= dims[d].size;
      oo += i * dims[d].so;
      oa += i * dims[d].sa;
      ob += i * dims[d].sb;
    }
    gemm_stub(out.device(), view3(out, oo, inner.size, inner.so), view3(a, oa, inner.size, inner.sa),
              view3(b, ob, inner.size, inner.sb), 1.0, beta);
  }
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a, "first operand");
  check_defined("matmul", b, "second operand");
  auto shapes = [&] { return fmt::format("{} @ {}", shape_str(a.shape()), shape_str(b.shape())); };
  if (a.dim() == 0 || b.dim() == 0) fail("matmul: {}: both operands must be at least 1-D", shapes());
  if (a.dtype() != b.dtype())
    fail("matmul: {}: dtype mismatch ({} vs {}); convert one operand with .to()", shapes(), a.dtype(),
         b.dtype());
  if (a.dtype() == DType::boolean) fail("matmul: {}: not defined for bool tensors", shapes());
  check_same_device("matmul", {a, b});
  // bfloat16 on the CPU: a float32 GEMM of the widened operands, rounded once. On CUDA the GEMM
  // takes bf16 directly (tensor cores, float32 accumulation, the same single rounding).
  if (a.dtype() == DType::bfloat16 && !a.device().is_cuda())
    return via_float32([](const Tensor& x, const Tensor& y) { return matmul(x, y); }, a, b);

  // A vector is a 1-row (left) or 1-column (right) matrix whose extra dim is dropped at the end.
  const Tensor a2 = a.dim() == 1 ? make_view(a, {1, a.size(0)}, {0, a.stride(0)}, a.storage_offset()) : a;
  const Tensor b2 = b.dim() == 1 ? make_view(b, {b.size(0), 1}, {b.stride(0), 0}, b.storage_offset()) : b;
  const int64_t m = a2.size(-2), k = a2.size(-1), n = b2.size(-1);
  if (b2.size(-2) != k) fail("matmul: {}: inner dimensions differ ({} vs {})", shapes(), k, b2.size(-2));

  const Shape batch_a(a2.shape().begin(), a2.shape().end() - 2),
      batch_b(b2.shape().begin(), b2.shape().end() - 2);
  Shape out2_shape(std::max(batch_a.size(), batch_b.size()));
  for (size_t i = 0; i < out2_shape.size(); ++i) {
    size_t lead = out2_shape.size() - i;  // position counted from the right
    int64_t da = lead <= batch_a.size() ? batch_a[batch_a.size() - lead] : 1;
    int64_t db = lead <= batch_b.size() ? batch_b[batch_b.size() - lead] : 1;
    if (da != db && da != 1 && db != 1)
      fail("matmul: {}: batch dimensions {} and {} cannot be broadcast", shapes(), shape_str(batch_a),
           shape_str(batch_b));
    out2_shape[i] = da == 1 ? db : da;
  }
  out2_shape.push_back(m);
  out2_shape.push_back(n);
  Tensor out2 = empty_tensor(out2_shape, a.dtype(), a.device());
  gemm_into(out2, a2, b2, 0.0, "matmul");

  Shape out_shape(out2_shape.begin(), out2_shape.end() - 2);
  if (a.dim() > 1) out_shape.push_back(m);
  if (b.dim() > 1) out_shape.push_back(n);
  Tensor out = out_shape == out2_shape ? out2 : out2.view(out_shape);

  if (autograd::any_requires_grad({a, b})) {
    autograd::record(
        "matmul", {a, b}, out,
        [sa = SavedTensor(a), sb = SavedTensor(b), out2_shape](const BackwardArgs& args) {
          Tensor x = sa.unpack("matmul"), y = sb.unpack("matmul");
          // Work with the matrix forms (vectors as 1-row / 1-column matrices).
          Tensor x2 = x.dim() == 1 ? x.view({1, x.size(0)}) : x;
          Tensor y2 = y.dim() == 1 ? y.view({y.size(0), 1}) : y;
          Tensor g = args.grad().reshape(out2_shape);
          Tensor gx, gy;
          if (args.needs(0)) {  // dA = g @ B^T, summed over dims where A was broadcast
            gx = autograd::sum_to(matmul(g, y2.transpose(-1, -2)), x2.shape()).view(x.shape());
          }
          if (args.needs(1)) {  // dB = A^T @ g
            if (y2.dim() == 2) {
              // One B for the whole batch: its gradient sums over every row of every
              // batch entry, which is a single GEMM on the flattened rows.
              gy = matmul(flatten_rows(x2).t(), flatten_rows(g)).view(y.shape());
            } else {
              gy = autograd::sum_to(matmul(x2.transpose(-1, -2), g), y2.shape()).view(y.shape());
            }
          }
          return Grads{gx, gy};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

}  // namespace ember
