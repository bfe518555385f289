// nonzero and masked_select: where a mask is true, composed from scans, scatter_add and gather,
// so that CUDA needs no kernel of its own. Like PyTorch, each op syncs with the host once, to
// learn the number of true elements (the size of its result).
#include "ops/bf16_compute.h"
#include "ops/internal.h"
#include "ops/kernels/index.h"

namespace ember {

using autograd::BackwardArgs;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;

namespace {

// For a contiguous 1-D bool mask with true elements at f_0 < f_1 < ... < f_{count-1}: int64
// [count, blocks.size()] with entry [k, j] = floor(f_k / blocks[j]), the number of whole blocks
// of blocks[j] elements before f_k (blocks[j] divides the mask's length). With pos the
// inclusive running count of the mask, the block ending at element e lies wholly before f_k
// exactly when pos[e] <= k. So +1 is scattered at pos[e] for every block end e, and a running
// sum over k counts the blocks -- integer ops only, no division. scatter_add into one long line
// runs with atomics on CUDA, so it is parallel there too.
Tensor blocks_before(const Tensor& mask, const Shape& blocks) {
  const int64_t n = mask.numel(), width = static_cast<int64_t>(blocks.size());
  const TensorOptions int64 = TensorOptions(DType::int64).device(mask.device());
  if (n == 0) return empty_tensor({0, width}, DType::int64, mask.device());
  Tensor pos = scan_raw(ScanOp::sum, mask, 0);
  const int64_t count = pos.select(0, n - 1).item<int64_t>();
  Tensor hits = zeros({count + 1, width}, int64);  // row `count` collects the blocks after f_{count-1}
  Tensor one = scalar_tensor(1.0, int64);
  for (int64_t j = 0; j < width; ++j) {
    const int64_t b = blocks[j], ends = n / b;
    Tensor block_ends = make_view(pos, {ends}, {b}, pos.storage_offset() + b - 1);
    scatter_stub(mask.device(), ScatterMode::add, hits.select(1, j), 0, block_ends, one.expand({ends}));
  }
  return scan_raw(ScanOp::sum, hits.narrow(0, 0, count), 0);
}

// A tensor's elements as a contiguous 1-D tensor (a copy only when they are not laid out so).
Tensor flat(const Tensor& t) { return t.reshape({-1}); }

}  // namespace

Tensor nonzero(const Tensor& x) {
  check_defined("nonzero", x);
  // NaN != 0, so NaN counts as nonzero, as in PyTorch
  Tensor mask = x.dtype() == DType::boolean ? x : unary_raw(UnaryOp::ne_scalar, x, 0);
  // Block sizes: the whole tensor, then each dim's row-major stride. Element f's index along dim d
  // is floor(f / stride_d) - size_d floor(f / stride_{d-1}), with stride_{-1} = numel (that column
  // is all zeros: no element lies after a whole tensor).
  const int64_t ndim = x.dim();
  Shape blocks{std::max<int64_t>(x.numel(), 1)};
  for (int64_t s : contiguous_strides(x.shape())) blocks.push_back(s);
  Tensor q = blocks_before(flat(mask), blocks);
  Tensor sizes = tensor<int64_t>(x.shape(), Shape{ndim}, TensorOptions().device(x.device()));
  return binary_raw(BinaryOp::sub, q.narrow(1, 1, ndim),
                    binary_raw(BinaryOp::mul, q.narrow(1, 0, ndim), sizes), 1.0, "nonzero");
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  check_defined("masked_select", x);
  check_defined("masked_select", mask, "mask");
  if (mask.dtype() != DType::boolean)
    fail("masked_select: expected BoolTensor for mask, got {} (convert with .to(ember::kBool))",
         mask.dtype());
  check_same_device("masked_select", {x, mask});
  if (is_bfloat16(x)) return via_float32([&](const Tensor& f) { return masked_select(f, mask); }, x);
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_select");
  // The flat positions of the selected elements in the broadcast shape, gathered from x flattened
  // in that shape. Flattening is differentiable, so a broadcast x gets its gradient summed back.
  Tensor index = blocks_before(flat(mask.expand(shape)), {1}).select(1, 0);
  Tensor source = flat(x.expand(shape));
  Tensor out = empty_tensor({index.numel()}, x.dtype(), x.device());
  if (out.numel() > 0) gather_stub(x.device(), out, source, 0, index);
  if (autograd::any_requires_grad({source})) {
    const int64_t n = source.numel();
    autograd::record(
        "masked_select", {source}, out,
        [n, si = SavedTensor(index)](const BackwardArgs& a) {
          Tensor idx = si.unpack("masked_select");
          Tensor g = zeros({n}, a.grad().options());
          if (GradMode::is_enabled())
            return Grads{scatter_add(g, 0, idx, a.grad())};  // create_graph: recorded
          // distinct indices, so add is exact; on CUDA it is the parallel (atomic) scatter
          if (idx.numel() > 0) scatter_stub(g.device(), ScatterMode::add, g, 0, idx, a.grad());
          return Grads{g};
        },
        autograd::DoubleBackward::supported);
  }
  return out;
}

Tensor Tensor::nonzero() const { return ember::nonzero(*this); }
Tensor Tensor::masked_select(const Tensor& mask) const { return ember::masked_select(*this, mask); }

}  // namespace ember
