// In-place ops on views under autograd, and views whose base was modified in place (ops/inplace.cpp).
// Expected values are PyTorch 1.13's for the same programs (float64).
#include "harness.h"

namespace ember::testing {
namespace {

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

TEST(InplaceViews, ViewTakenBeforeInPlaceOnBaseFollowsTheBase) {
  // PyTorch: x.grad = [2, 0]; ember used to refuse such a view.
  Tensor x = T({1, 2}, {2});
  Tensor a = x * 1.0;
  Tensor v = a.select(0, 0);
  Tensor used_before = v * 3.0;
  a.mul_(2.0);
  EXPECT_EQ(v.grad_fn()->name(), "as_strided");
  v.backward({}, /*retain_graph=*/true);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 0}));
  x.set_grad(Tensor());
  used_before.backward();  // recorded before the in-place op: the old value's history
  EXPECT_EQ(values(x.grad()), (std::vector<double>{3, 0}));
}

TEST(InplaceViews, StaleTransposedViewSeesTheBasesNewHistory) {
  Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = T({1, -1, 2, 0.5, 3, 1}, {2, 3});
  Tensor a = x * 1.0;
  Tensor v = a.t();
  a.add_(y * y);
  (v * arange(6).to(DType::float64).view({3, 2})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 2, 4, 1, 3, 5}));
  EXPECT_EQ(values(y.grad()), (std::vector<double>{0, -4, 16, 1, 18, 10}));
}

TEST(InplaceViews, StaleExpandedViewSumsOverItsCopies) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor a = x * 1.0;
  Tensor e = a.unsqueeze(0).expand({2, 3});
  a.mul_(2.0);
  (e * T({1, 2, 3, 4, 5, 6}, {2, 3}, false)).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{10, 14, 18}));
}

// The usual way to build a tensor from pieces: write them into rows of a buffer.
TEST(InplaceViews, CopyIntoRowsOfABufferMakesItRequireGrad) {
  Tensor x = T({1, 2}, {2});
  Tensor y = T({3, 4}, {2});
  Tensor buf = zeros({3, 2}, TensorOptions().dtype(DType::float64));
  Tensor taken_before = buf.narrow(0, 0, 2);
  buf.select(0, 0).copy_(x);
  buf.select(0, 2).copy_(y * 2.0);
  EXPECT_TRUE(buf.requires_grad());
  EXPECT_FALSE(buf.is_leaf());
  EXPECT_EQ(buf.grad_fn()->name(), "copy_slices");
  EXPECT_TRUE(taken_before.requires_grad());
  EXPECT_EQ(values(buf), (std::vector<double>{1, 2, 0, 0, 6, 8}));
  (buf * T({1, 2, 3, 4, 5, 6}, {3, 2}, false)).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 2}));
  EXPECT_EQ(values(y.grad()), (std::vector<double>{10, 12}));
}

TEST(InplaceViews, MulOnANarrowedView) {
  Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = T({2, -1, 0.5, 3}, {2, 2});
  Tensor a = x * 1.0;
  a.narrow(1, 0, 2).mul_(y);
  EXPECT_EQ(values(a), (std::vector<double>{2, -2, 3, 2, 15, 6}));
  (a * a).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{8, 4, 6, 2, 90, 12}));
  EXPECT_EQ(values(y.grad()), (std::vector<double>{4, -8, 16, 150}));
}

TEST(InplaceViews, ViewOfAView) {
  Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor a = x.clone();
  a.select(0, 1).narrow(0, 0, 2).mul_(3.0);
  (a * a).sum().backward();
  EXPECT_EQ(values(a), (std::vector<double>{1, 2, 3, 12, 15, 6}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 4, 6, 72, 90, 12}));
}

TEST(InplaceViews, FillClampAndMaskedFillOnViews) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor a = x * 2.0;
  a.narrow(0, 0, 1).fill_(0.0);
  (a * a).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 16, 24}));

  Tensor z = T({1, -2, 3, -4, 5, -6}, {2, 3});
  Tensor b = z * 1.0;
  b.select(0, 1).clamp_(-5, 4);
  b.select(0, 0).masked_fill_(tensor<bool>({true, false, false}), 7.0);
  (b * T({1, 2, 3, 4, 5, 6}, {2, 3}, false)).sum().backward();
  EXPECT_EQ(values(b), (std::vector<double>{7, -2, 3, -4, 4, -5}));
  EXPECT_EQ(values(z.grad()), (std::vector<double>{0, 2, 3, 4, 0, 0}));
}

// An expanded view taken before a write reads the base's new value: its gradient sums over the copies.
TEST(InplaceViews, GradgradcheckThroughAnExpandedStaleView) {
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor a = in[0] * 1.0;
    Tensor e = a.select(0, 0).unsqueeze(0).expand({3, 3});  // stale after the write below
    a.select(0, 0).mul_(in[0].select(0, 1));
    return (e * e * e).sum() + a.sum();
  };
  EXPECT_TRUE(passes_gradcheck(fn, {R({2, 3}, -1, 1, 31)}));
  EXPECT_TRUE(passes_gradgradcheck(fn, {R({2, 3}, -1, 1, 31)}));
}

TEST(InplaceViews, GradcheckThroughSeveralWrites) {
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor a = in[0] * 1.0;
    a.narrow(1, 0, 2).mul_(in[1]);
    a.select(0, 1).add_(in[1].select(1, 0).sum());
    Tensor t = a.t();  // stale after the next write
    a.select(1, 2).mul_(2.0);
    return (t * t).sum();
  };
  Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = T({2, -1, 0.5, 3}, {2, 2});
  EXPECT_TRUE(passes_gradcheck(fn, {x, y}));
  EXPECT_TRUE(passes_gradgradcheck(fn, {x, y}));  // copy_slices and as_strided have a double backward
  fn({x, y}).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{8, 4, 24, 4.5, 105, 68}));
  EXPECT_EQ(values(y.grad()), (std::vector<double>{116, -8, 148, 175}));
}

TEST(InplaceViews, RetainGradFollowsTheView) {
  Tensor x = T({1, 2, 3}, {3});
  Tensor a = x * 1.0;
  Tensor v = a.narrow(0, 1, 2);
  v.retain_grad();
  v.mul_(3.0);
  (v * v).sum().backward();
  EXPECT_EQ(values(v.grad()), (std::vector<double>{12, 18}));
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 36, 54}));
}

TEST(InplaceViews, RefusedWrites) {
  Tensor x = T({1, 2, 3}, {3});
  EMBER_EXPECT_THROW_MSG(x.narrow(0, 0, 1).mul_(2.0),
                         "mul_: a view of a leaf tensor that requires grad cannot be modified in place");
  Tensor a = x * 1.0;
  Tensor v;
  {
    NoGradGuard no_grad;
    v = a.narrow(0, 0, 2);
  }
  EMBER_EXPECT_THROW_MSG(v.mul_(5.0), "mul_: a view taken under NoGradGuard is being modified in place");
  {
    NoGradGuard no_grad;
    v.mul_(5.0);  // both under NoGradGuard: not recorded, as in PyTorch
  }
  EXPECT_EQ(values(a), (std::vector<double>{5, 10, 3}));
  // mul saves its other operand, which the write then changes (PyTorch fails the same way)
  Tensor b = x * 1.0;
  b.narrow(0, 0, 1).mul_(b.narrow(0, 2, 1));
  EMBER_EXPECT_THROW_MSG(b.sum().backward(), "modified by an in-place operation");
}

TEST(InplaceViews, NoGradWritesLeaveHistoriesAlone) {
  Tensor x = T({1, 2}, {2});
  Tensor b = x * 1.0;
  Tensor w = b.select(0, 1);
  {
    NoGradGuard no_grad;
    b.mul_(2.0);  // not recorded: b keeps its history, and so does w (as in PyTorch)
  }
  (w * 1.0).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1}));
}

// The nodes capture geometry, never the tensors: a view's base owns the node, which must not own
// the view back.
TEST(InplaceViews, GraphsAreFreedWithTheirTensors) {
  std::weak_ptr<TensorImpl> base_alive, view_alive;
  {
    Tensor x = T({1, 2, 3}, {3});
    Tensor a = x * 1.0;
    Tensor v = a.narrow(0, 1, 2);
    Tensor stale = a.unsqueeze(0);
    v.mul_(x.narrow(0, 0, 2));
    EXPECT_TRUE(stale.requires_grad());
    base_alive = a.impl_ptr();
    view_alive = v.impl_ptr();
  }
  EXPECT_TRUE(base_alive.expired());
  EXPECT_TRUE(view_alive.expired());
}

// Module::to gives a parameter new memory; a view taken before still reads the old one and is no
// longer an alias of the parameter, so writing into it concerns nobody else.
TEST(InplaceViews, ViewOfAParameterMovedByModuleToIsNoLongerAnAlias) {
  nn::Linear lin(2, 2);
  Tensor row;
  {
    NoGradGuard no_grad;
    row = lin.weight.select(0, 0);
  }
  lin.to(DType::float64);
  row.mul_(2.0);  // would otherwise be refused as a write into a no-grad view of a parameter
  EXPECT_FALSE(row.requires_grad());
  EXPECT_TRUE(lin.weight.is_leaf());
  EXPECT_EQ(lin.weight.dtype(), DType::float64);
}

TEST(InplaceViews, CudaMatchesCpu) {
  EMBER_SKIP_WITHOUT_GPU();
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor a = in[0] * 1.0;
    Tensor t = a.t();
    a.narrow(1, 1, 2).mul_(in[1]);
    a.select(0, 0).add_(1.5);
    return t * 1.0;
  };
  expect_cuda_parity(fn, {R({3, 4}), R({3, 2}, -1, 1, 2)}, 1e-12);
}

}  // namespace
}  // namespace ember::testing
