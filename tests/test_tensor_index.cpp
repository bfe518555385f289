// Tensor::index and index_put_ (include/ember/indexing.h). Expected values are PyTorch 1.13's for
// the same subscripts, on x = arange(24).view(2, 3, 4).
#include "harness.h"

namespace ember::testing {
namespace {

using namespace ember::indexing;

Tensor X(bool requires_grad = false) {
  return arange(24).to(DType::float64).view({2, 3, 4}).requires_grad_(requires_grad);
}
std::vector<double> values(const Tensor& t) { return t.contiguous().to_vector<double>(); }
std::vector<double> iota(double from, double to) {
  std::vector<double> v;
  for (double x = from; x < to; ++x) v.push_back(x);
  return v;
}

TEST(TensorIndex, BasicIndicesAreViews) {
  Tensor x = X();
  Tensor col = x.index({Slice(), 0});  // x[:, 0]
  EXPECT_EQ(col.shape(), (Shape{2, 4}));
  EXPECT_EQ(values(col), (std::vector<double>{0, 1, 2, 3, 12, 13, 14, 15}));
  EXPECT_EQ(col.data_ptr<double>(), x.data_ptr<double>());  // shares memory

  Tensor odd = x.index({"...", None, Slice(1, None, 2)});  // x[..., None, 1::2]
  EXPECT_EQ(odd.shape(), (Shape{2, 3, 1, 2}));
  EXPECT_EQ(values(odd), (std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  EXPECT_EQ(values(x.index({Ellipsis, 1, 2})), (std::vector<double>{6, 18}));

  Tensor last = x.index({-1, Slice(None, -1)});  // x[-1, :-1]
  EXPECT_EQ(last.shape(), (Shape{2, 4}));
  EXPECT_EQ(values(last), iota(12, 20));
  EXPECT_EQ(x.index({Slice(5, 10)}).shape(), (Shape{0, 3, 4}));  // clamped, as in Python
  EXPECT_EQ(x.index({true}).shape(), (Shape{1, 2, 3, 4}));
  EXPECT_EQ(x.index({false}).shape(), (Shape{0, 2, 3, 4}));
  EXPECT_EQ(x.index({1, 2, 3}).item<double>(), 23);
}

TEST(TensorIndex, MaskSelectsItsTruePositions) {
  Tensor x = X();
  Tensor mask = x.index({Slice(), Slice(), 0}).gt(scalar_tensor(5.0));  // [[F, F, T], [T, T, T]]
  Tensor picked = x.index({mask});
  EXPECT_EQ(picked.shape(), (Shape{4, 4}));
  EXPECT_EQ(values(picked), iota(8, 24));
  EXPECT_EQ(values(x.index({x.gt(scalar_tensor(20.0))})), (std::vector<double>{21, 22, 23}));
}

TEST(TensorIndex, IndexTensorsBroadcastAndPlaceTheirDims) {
  Tensor x = X();
  // adjacent index tensors at the front: their broadcast shape [2, 2] comes first
  Tensor rc = x.index({I({0, 1}, {2, 1}), I({0, 2}, {2})});
  EXPECT_EQ(rc.shape(), (Shape{2, 2, 4}));
  EXPECT_EQ(values(rc), (std::vector<double>{0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23}));
  // not adjacent (a slice between): the index dims go first
  Tensor apart = x.index({I({1, 0}, {2}), Slice(), I({3, -1}, {2})});
  EXPECT_EQ(apart.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(apart), (std::vector<double>{15, 19, 23, 3, 7, 11}));
  // adjacent in the middle: the index dims stay where they were
  Tensor middle = x.index({Slice(), I({2, 0}, {2}), I({1, 3}, {2})});
  EXPECT_EQ(middle.shape(), (Shape{2, 2}));
  EXPECT_EQ(values(middle), (std::vector<double>{9, 3, 21, 15}));
  Tensor negative = x.index({I({-1}, {1}), 1});
  EXPECT_EQ(negative.shape(), (Shape{1, 4}));
  EXPECT_EQ(values(negative), iota(16, 20));
  EXPECT_EQ(x.index({I({}, {0})}).shape(), (Shape{0, 3, 4}));
  EXPECT_EQ(values(x.index({tensor<int32_t>({1})}).index({0, 0})), iota(12, 16));
}

TEST(TensorIndex, GradientsAddUpOverRepeatedIndices) {
  Tensor x = X(true);
  Tensor w = arange(1, 13).to(DType::float64).view({3, 4});
  (x.index({I({0, 0, 1}, {3}), 1}) * w).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 0, 0, 6, 8,  10, 12, 0, 0, 0, 0,  //
                                                   0, 0, 0, 0, 9, 10, 11, 12, 0, 0, 0, 0}));
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor mask = tensor<bool>({true, false, true}, {3});
    return in[0].index({Slice(), mask, I({2, 0}, {2, 1})}) +
           in[0].index({Slice(), Slice(1, 3), Slice(None, None, 2)});
  };
  EXPECT_TRUE(passes_gradcheck(fn, {R({2, 3, 4})}));
}

TEST(TensorIndex, IndexPutWritesThroughViews) {
  Tensor y = X();
  y.index_put_({Slice(), 0}, 1.0);
  EXPECT_EQ(values(y), (std::vector<double>{1, 1, 1, 1, 4,  5,  6,  7,  8,  9,  10, 11,  //
                                            1, 1, 1, 1, 16, 17, 18, 19, 20, 21, 22, 23}));
  Tensor z = X();
  Tensor mask = z.index({Slice(), Slice(), 0}).gt(scalar_tensor(5.0));
  z.index_put_({mask}, 0.0);
  EXPECT_EQ(values(z), (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0,  //
                                            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(TensorIndex, IndexPutWithIndexTensors) {
  Tensor y = X();
  y.index_put_({I({0, 1}, {2}), I({2, 0}, {2})}, arange(8).to(DType::float64).view({2, 4}) * -1.0);
  EXPECT_EQ(values(y), (std::vector<double>{0,  1,  2,  3,  4,  5,  6,  7,  0,  -1, -2, -3,  //
                                            -4, -5, -6, -7, 16, 17, 18, 19, 20, 21, 22, 23}));
  Tensor apart = X();
  apart.index_put_({I({1, 0}, {2}), Slice(), I({3, -1}, {2})}, tensor<double>({100, 200, 300}));
  EXPECT_EQ(values(apart), (std::vector<double>{0,  1,  2,  100, 4,  5,  6,  200, 8,  9,  10, 300,  //
                                                12, 13, 14, 100, 16, 17, 18, 200, 20, 21, 22, 300}));
  Tensor extra = X();  // values with leading size-1 dims beyond the target's, as PyTorch takes them
  extra.index_put_({0, 0}, full({1, 1, 4}, -1.0, DType::float64));
  extra.index_put_({I({1}, {1}), 2}, full({1, 1, 4}, -2.0, DType::float64));
  EXPECT_EQ(values(extra.index({0, 0})), (std::vector<double>{-1, -1, -1, -1}));
  EXPECT_EQ(values(extra.index({1, 2})), (std::vector<double>{-2, -2, -2, -2}));
  Tensor sums = zeros({3, 2}, DType::float64);
  sums.index_put_({I({0, 0, 2}, {3})}, T({1, 2, 3, 4, 5, 6}, {3, 2}, false), /*accumulate=*/true);
  EXPECT_EQ(values(sums), (std::vector<double>{4, 6, 0, 0, 5, 6}));
}

TEST(TensorIndex, IndexPutIsRecordedByAutograd) {
  Tensor x = X(true);
  Tensor v = T({10, 20, 30, 40}, {4});
  Tensor a = x * 2.0;
  Tensor mask = x.detach().index({Slice(), Slice(), 0}).gt(scalar_tensor(5.0));
  a.index_put_({mask}, v * v);
  (a * arange(24).to(DType::float64).view({2, 3, 4})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0,  //
                                                   0, 0, 0, 0, 0, 0,  0,  0,  0, 0, 0, 0}));
  EXPECT_EQ(values(v.grad()), (std::vector<double>{1120, 2400, 3840, 5440}));
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor a = in[0] * 1.0;
    a.index_put_({I({1, 0}, {2}), Slice(), I({3, -1}, {2})}, in[1]);
    a.index_put_({Slice(), Slice(), 1}, in[1], /*accumulate=*/true);
    return a;
  };
  EXPECT_TRUE(passes_gradcheck(fn, {R({2, 3, 4}), R({1, 3}, -1, 1, 2)}));
}

TEST(TensorIndex, Errors) {
  Tensor x = X();
  EMBER_EXPECT_THROW_MSG(x.index({0, 0, 0, 0}),
                         "index: too many indices for a tensor of dimension 3 (4 dims indexed)");
  EMBER_EXPECT_THROW_MSG(x.index({Slice(), 3}), "index: index 3 is out of bounds for dim 1 of size 3");
  EMBER_EXPECT_THROW_MSG(x.index({I({0, -3}, {2})}), "index: index -3 is out of bounds for dim 0 of size 2");
  EMBER_EXPECT_THROW_MSG(
      x.index({Slice(), tensor<bool>({true, false})}),
      "index: the mask of shape [2] does not match the shape [3] of the dims it indexes (from dim 1)");
  EMBER_EXPECT_THROW_MSG(x.index({tensor<double>({0})}),
                         "index: tensors used as indices must be int64, int32 or bool");
  EMBER_EXPECT_THROW_MSG(x.index({"...", 0, "..."}), "index: an index can only have a single ellipsis");
  EMBER_EXPECT_THROW_MSG(x.index({"::"}), "index: the only string index is \"...\"");
  EMBER_EXPECT_THROW_MSG(x.index({Slice(None, None, 0)}), "index: slice step must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(x.index({I({0, 1}, {2}), I({0, 1, 2}, {3})}), "index:");
  EMBER_EXPECT_THROW_MSG(x.clone().index_put_({I({0}, {1})}, ones({2})),
                         "index_put_: values of shape [2] cannot be broadcast to the indexed shape [1,3,4]");
  Tensor leaf = X(true);  // itself a view (of arange's result) that is a leaf, as in PyTorch
  EMBER_EXPECT_THROW_MSG(leaf.index_put_({0}, 1.0), "index_put_: a leaf tensor that requires grad");
  EMBER_EXPECT_THROW_MSG(leaf.index_put_({I({0}, {1})}, 1.0), "index_put_: a leaf tensor that requires grad");
  EMBER_EXPECT_THROW_MSG(leaf.select(0, 0).index_put_({I({0}, {1})}, 1.0),
                         "scatter_: a view of a leaf tensor that requires grad");
}

TEST(TensorIndex, CudaMatchesCpu) {
  EMBER_SKIP_WITHOUT_GPU();
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor a = in[0] * 1.0;
    Tensor mask = in[0].detach().gt(scalar_tensor(0.0, in[0].options()));
    a.index_put_({mask}, 0.5);
    a.index_put_({Slice(), I({2, 0}, {2})}, in[1], /*accumulate=*/true);
    return a.index({I({1, 0, 1}, {3}), Slice(1, None)});
  };
  expect_cuda_parity(fn, {R({3, 4}), R({3, 2}, -1, 1, 2)}, 1e-12);
}

}  // namespace
}  // namespace ember::testing
