// Indexing and joining ops: gather, scatter, scatter_add, index_select, embedding, one_hot, cat,
// stack, split, chunk. Table rows (hand-computed values, gradcheck, CUDA parity), then the
// properties a table cannot show: accumulation, padding, large parallel runs, errors.
#include <random>

#include "harness.h"

namespace ember::testing {
namespace {

using Inputs = std::vector<Tensor>;

std::vector<OpCase> index_cases() {
  Tensor x23 = T({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor x32 = T({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor x33 = T({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  Tensor w = T({0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8}, {4, 2});
  return with_gradgradcheck({
      // out[i][j] = x[i][index[i][j]]; x[1][1] is read twice, so it gets twice the gradient
      {"gather_dim1",
       [](const Inputs& in) { return gather(in[0], 1, in[1]); },
       {x23, I({2, 0, 1, 1}, {2, 2})},
       tensor<double>({3, 1, 5, 5}, {2, 2})},
      // out[i][j] = x[index[i][j]][j]
      {"gather_dim0",
       [](const Inputs& in) { return gather(in[0], 0, in[1]); },
       {x32, I({2, 0, 1, 2}, {2, 2})},
       tensor<double>({5, 2, 3, 6}, {2, 2})},
      // index smaller than x outside dim: only rows 0 and 1 are read
      {"gather_small_index",
       [](const Inputs& in) { return gather(in[0], 1, in[1]); },
       {x33, I({2, 0}, {2, 1})},
       tensor<double>({3, 4}, {2, 1})},
      // a strided (transposed) input: x.t() = [[1,4],[2,5],[3,6]]
      {"gather_transposed",
       [](const Inputs& in) { return gather(in[0].t(), 0, in[1]); },
       {x23, I({2, 0}, {1, 2})},
       tensor<double>({3, 4}, {1, 2})},
      {"gather_int32_index",
       [](const Inputs& in) { return gather(in[0], -1, in[1]); },
       {x23, I({1, 1, 0, 2}, {2, 2}).to(kInt32)},
       tensor<double>({2, 2, 4, 6}, {2, 2})},

      // self with src written at [i][index[i][j]]
      {"scatter_dim1",
       [](const Inputs& in) { return scatter(in[0], 1, in[1], in[2]); },
       {x23, I({2, 0, 1, 2}, {2, 2}), T({10, 20, 30, 40}, {2, 2})},
       tensor<double>({20, 2, 10, 4, 30, 40}, {2, 3})},
      // self with src written at [index[i][j]][j]
      {"scatter_dim0",
       [](const Inputs& in) { return scatter(in[0], 0, in[1], in[2]); },
       {T({1, 2, 3, 4}, {2, 2}), I({1, 0}, {1, 2}), T({7, 8}, {1, 2})},
       tensor<double>({1, 8, 7, 4}, {2, 2})},
      // src larger than index: src[0][0] and src[1][0] are used; the rest of src gets no gradient
      {"scatter_src_larger",
       [](const Inputs& in) { return scatter(in[0], 1, in[1], in[2]); },
       {x23, I({1, 0}, {2, 1}), T({10, 20, 30, 40, 50, 60}, {2, 3})},
       tensor<double>({1, 10, 3, 40, 5, 6}, {2, 3})},
      // repeated indices add up: row 0 gets 10 + 20 at column 0, row 1 gets 40 + 50 + 60 at column 1
      {"scatter_add_dim1",
       [](const Inputs& in) { return scatter_add(in[0], 1, in[1], in[2]); },
       {x23, I({0, 0, 2, 1, 1, 1}, {2, 3}), T({10, 20, 30, 40, 50, 60}, {2, 3})},
       tensor<double>({31, 2, 33, 4, 155, 6}, {2, 3})},
      // a 1-D histogram-like sum: the index is longer than self
      {"scatter_add_1d",
       [](const Inputs& in) { return scatter_add(in[0], 0, in[1], in[2]); },
       {T({0, 0, 0}, {3}), I({0, 2, 0, 2, 2}, {5}), T({1, 2, 3, 4, 5}, {5})},
       tensor<double>({4, 0, 11}, {3})},
      {"scatter_add_method",
       [](const Inputs& in) { return in[0].scatter_add(0, in[1], in[2]); },
       {T({1, 2, 3, 4}, {2, 2}), I({1, 1}, {1, 2}), T({0.5, 0.25}, {1, 2})},
       tensor<double>({1, 2, 3.5, 4.25}, {2, 2})},
      // the in-place forms, on a non-leaf (recorded through apply_inplace)
      {"scatter_inplace",
       [](const Inputs& in) {
         Tensor s = in[0] * 1.0;
         return s.scatter_(1, in[1], in[2]);
       },
       {x23, I({2, 0, 1, 2}, {2, 2}), T({10, 20, 30, 40}, {2, 2})},
       tensor<double>({20, 2, 10, 4, 30, 40}, {2, 3})},
      {"scatter_add_inplace",
       [](const Inputs& in) {
         Tensor s = in[0] * 1.0;
         return s.scatter_add_(1, in[1], in[2]);
       },
       {x23, I({0, 0, 2, 1, 1, 1}, {2, 3}), T({10, 20, 30, 40, 50, 60}, {2, 3})},
       tensor<double>({31, 2, 33, 4, 155, 6}, {2, 3})},
      // one-hot rows: x[i][index[i][0]] = 1 (PyTorch: [0, 0, 1, 0, 1, 0, 0, 0] from zeros)
      {"scatter_value_inplace",
       [](const Inputs& in) {
         Tensor s = in[0] * 1.0;
         return s.scatter_(1, in[1], 1.0);
       },
       {T({5, 6, 7, 8, 9, 10, 11, 12}, {2, 4}), I({2, 0}, {2, 1})},
       tensor<double>({5, 6, 1, 8, 1, 10, 11, 12}, {2, 4})},

      // rows 2, 0, 2: row 2 is selected twice, so it gets twice the gradient
      {"index_select_dim0",
       [](const Inputs& in) { return index_select(in[0], 0, in[1]); },
       {x32, I({2, 0, 2}, {3})},
       tensor<double>({5, 6, 1, 2, 5, 6}, {3, 2})},
      {"index_select_dim1",
       [](const Inputs& in) { return index_select(in[0], 1, in[1]); },
       {x23, I({1}, {1})},
       tensor<double>({2, 5}, {2, 1})},
      {"index_select_transposed",
       [](const Inputs& in) { return in[0].t().index_select(1, in[1]); },
       {x23, I({1, 0}, {2})},
       tensor<double>({4, 1, 5, 2, 6, 3}, {3, 2})},
      // a 0-d index keeps the dim, with size 1
      {"index_select_0d_index",
       [](const Inputs& in) { return index_select(in[0], 0, in[1]); },
       {x32, I({1}, {})},
       tensor<double>({3, 4}, {1, 2})},
      // 0-d operands read as shape [1], as in PyTorch (values from torch 1.13)
      {"index_select_0d_input",
       [](const Inputs& in) { return index_select(in[0], -1, in[1]); },
       {T({5}, {}), I({0}, {1})},
       tensor<double>({5}, Shape{})},
      {"gather_0d_input_and_index",
       [](const Inputs& in) { return gather(in[0], 0, in[1]); },
       {T({5}, {}), I({0}, {})},
       tensor<double>({5}, Shape{})},
      {"gather_0d_input_1d_index",
       [](const Inputs& in) { return gather(in[0], 0, in[1]); },
       {T({5}, {}), I({0, 0}, {2})},
       tensor<double>({5, 5}, {2})},
      {"gather_1d_input_0d_index",
       [](const Inputs& in) { return gather(in[0], 0, in[1]); },
       {T({1, 2, 3}, {3}), I({2}, {})},
       tensor<double>({3}, Shape{})},
      {"scatter_0d",
       [](const Inputs& in) { return scatter(in[0], 0, in[1], in[2]); },
       {T({5}, {}), I({0}, {}), T({7, 8}, {2})},
       tensor<double>({7}, Shape{})},
      {"scatter_add_1d_self_0d_index",
       [](const Inputs& in) { return scatter_add(in[0], 0, in[1], in[2]); },
       {T({1, 2, 3}, {3}), I({1}, {}), T({7, 9}, {2})},
       tensor<double>({1, 9, 3}, {3})},

      {"embedding_1d",
       [](const Inputs& in) { return embedding(in[0], in[1]); },
       {w, I({3, 0, 3}, {3})},
       tensor<double>({0.7, 0.8, 0.1, 0.2, 0.7, 0.8}, {3, 2})},
      {"embedding_2d_indices",
       [](const Inputs& in) { return embedding(in[0], in[1]); },
       {w, I({3, 0, 1, 3}, {2, 2})},
       tensor<double>({0.7, 0.8, 0.1, 0.2, 0.3, 0.4, 0.7, 0.8}, {2, 2, 2})},
      // the padding row is still looked up as it is; its (zero) gradient is tested below, and
      // finite differences would disagree with it by design, so no gradcheck here
      {"embedding_padding_forward",
       [](const Inputs& in) { return embedding(in[0], in[1], 1); },
       {w, I({1, 2}, {2})},
       tensor<double>({0.3, 0.4, 0.5, 0.6}, {2, 2}),
       1e-6,
       false},

      {"one_hot",
       [](const Inputs& in) { return one_hot(in[0], 3); },
       {I({0, 2, 1}, {3})},
       I({1, 0, 0, 0, 0, 1, 0, 1, 0}, {3, 3}),
       0,
       false},
      {"one_hot_infer_classes",
       [](const Inputs& in) { return one_hot(in[0], -1); },
       {I({1, 3}, {2})},
       I({0, 1, 0, 0, 0, 0, 0, 1}, {2, 4}),
       0,
       false},
      {"one_hot_2d",
       [](const Inputs& in) { return one_hot(in[0], 2); },
       {I({1, 0, 0, 1}, {2, 2})},
       I({0, 1, 1, 0, 1, 0, 0, 1}, {2, 2, 2}),
       0,
       false},
  });
}
EMBER_OP_SUITE(Indexing, index_cases);

std::vector<OpCase> join_cases() {
  Tensor a12 = T({1, 2}, {1, 2});
  Tensor b22 = T({3, 4, 5, 6}, {2, 2});
  Tensor a21 = T({1, 2}, {2, 1});
  Tensor v1 = T({1, 2}, {2});
  Tensor v2 = T({3, 4}, {2});
  return with_gradgradcheck({
      {"cat_dim0",
       [](const Inputs& in) {
         return cat({in[0], in[1]}, 0);
       },
       {a12, b22},
       tensor<double>({1, 2, 3, 4, 5, 6}, {3, 2})},
      {"cat_dim1",
       [](const Inputs& in) {
         return cat({in[0], in[1]}, 1);
       },
       {a21, b22},
       tensor<double>({1, 3, 4, 2, 5, 6}, {2, 3})},
      {"cat_negative_dim",
       [](const Inputs& in) {
         return cat({in[1], in[0]}, -1);
       },
       {a21, b22},
       tensor<double>({3, 4, 1, 5, 6, 2}, {2, 3})},
      // a 1-D empty tensor is skipped whatever the other shapes
      {"cat_skips_1d_empty",
       [](const Inputs& in) {
         return cat({in[0], in[1], in[2]}, 1);
       },
       {a21, T({}, {0}, false), b22},
       tensor<double>({1, 3, 4, 2, 5, 6}, {2, 3})},
      {"cat_three",
       [](const Inputs& in) {
         return cat({in[0], in[1], in[0]});
       },
       {v1, v2},
       tensor<double>({1, 2, 3, 4, 1, 2}, {6})},
      {"stack_dim0",
       [](const Inputs& in) {
         return stack({in[0], in[1]}, 0);
       },
       {v1, v2},
       tensor<double>({1, 2, 3, 4}, {2, 2})},
      {"stack_dim1",
       [](const Inputs& in) {
         return stack({in[0], in[1]}, 1);
       },
       {v1, v2},
       tensor<double>({1, 3, 2, 4}, {2, 2})},
      {"stack_negative_dim",
       [](const Inputs& in) {
         return stack({in[0], in[1], in[0]}, -1);
       },
       {v1, v2},
       tensor<double>({1, 3, 1, 2, 4, 2}, {2, 3})},
      // split widths 2, 2, 1, put back together in another order
      {"split_reorder",
       [](const Inputs& in) {
         std::vector<Tensor> p = split(in[0], 2, 1);
         return cat({p[2], p[0], p[1]}, 1);
       },
       {T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 5})},
       tensor<double>({5, 1, 2, 3, 4, 10, 6, 7, 8, 9}, {2, 5})},
      // slice 1 unused: its part of the gradient is zero
      {"unbind_some_slices",
       [](const Inputs& in) {
         std::vector<Tensor> p = unbind(in[0], 1);
         return stack({p[2] * 3.0, p[0]}, 0);
       },
       {T({1, 2, 3, 4, 5, 6}, {2, 3})},
       tensor<double>({9, 18, 1, 4}, {2, 2})},
      {"unbind_method_last_dim",
       [](const Inputs& in) { return in[0].unbind(-1)[1] + in[0].unbind(-1)[0]; },
       {T({1, 2, 3, 4, 5, 6}, {3, 2})},
       tensor<double>({3, 7, 11}, {3})},
      // 5 rows in 3 chunks: ceil(5 / 3) = 2 rows each, the last one row
      {"chunk_last_piece",
       [](const Inputs& in) { return in[0].chunk(3, 0)[2] * 2.0; },
       {T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {5, 2})},
       tensor<double>({18, 20}, {1, 2})},
  });
}
EMBER_OP_SUITE(Join, join_cases);

// ---- properties ----

TEST(Indexing, OutputDtypesAndShapes) {
  Tensor x = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(gather(x, 1, I({0, 1}, {2, 1})).dtype(), kFloat32);
  EXPECT_EQ(one_hot(I({0, 2}, {2}), 3).dtype(), kInt64);
  EXPECT_EQ(one_hot(I({}, {0}), 3).shape(), (Shape{0, 3}));
  EXPECT_EQ(index_select(x, 1, I({}, {0})).shape(), (Shape{2, 0}));
  Tensor xi = tensor<int64_t>({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(gather(xi, 0, I({1, 0}, {1, 2})).to_vector<int64_t>(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(scatter_add(xi, 1, I({0, 0}, {1, 2}), tensor<int64_t>({5, 6}, {1, 2})).to_vector<int64_t>(),
            (std::vector<int64_t>{12, 2, 3, 4}));
}

TEST(Indexing, ScatterInPlaceWithoutAutogradAndOnLeaves) {
  Tensor x = zeros({2, 4}, DType::float64);
  x.scatter_(1, I({2, 0}, {2, 1}), 1.0);
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{0, 0, 1, 0, 1, 0, 0, 0}));
  x.scatter_add_(0, I({1, 1, 1, 1}, {1, 4}), tensor<double>({1, 2, 3, 4}, {1, 4}));
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{0, 0, 1, 0, 2, 2, 3, 4}));
  Tensor leaf = T({1, 2}, {2});
  EMBER_EXPECT_THROW_MSG(leaf.scatter_(0, I({0}, {1}), 5.0), "scatter_: a leaf tensor that requires grad");
  EMBER_EXPECT_THROW_MSG(x.scatter_(1, I({4}, {1, 1}), 1.0), "scatter_: index 4 is out of range");
}

TEST(Indexing, ScatterIsOutOfPlace) {
  Tensor self = tensor<double>({1, 2, 3});
  Tensor out = scatter(self, 0, I({2}, {1}), tensor<double>({9}));
  EXPECT_EQ(out.to_vector<double>(), (std::vector<double>{1, 2, 9}));
  EXPECT_EQ(self.to_vector<double>(), (std::vector<double>{1, 2, 3}));
}

TEST(Indexing, ScatterGradientZerosOverwrittenPositions) {
  Tensor self = tensor<double>({1, 2, 3, 4}).requires_grad_();
  Tensor src = tensor<double>({7, 8}).requires_grad_();
  Tensor out = scatter(self, 0, I({3, 0}, {2}), src);
  (out * tensor<double>({1, 2, 3, 4})).sum().backward();
  EXPECT_EQ(self.grad().to_vector<double>(), (std::vector<double>{0, 2, 3, 0}));
  EXPECT_EQ(src.grad().to_vector<double>(), (std::vector<double>{4, 1}));
}

TEST(Indexing, EmbeddingPaddingRowGetsNoGradient) {
  Tensor w = tensor<double>(std::vector<double>(12, 0.5), {4, 3}).requires_grad_();
  Tensor out = embedding(w, I({1, 2, 1, 0}, {2, 2}), /*padding_idx=*/1);
  EXPECT_EQ(out.shape(), (Shape{2, 2, 3}));
  // weight each lookup by its position 1..4, so each row's gradient shows which lookups hit it
  Tensor scale = tensor<double>({1, 2, 3, 4}, {2, 2, 1});
  (out * scale).sum().backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{4, 4, 4, 0, 0, 0, 2, 2, 2, 0, 0, 0}));
}

TEST(Indexing, EmbeddingRepeatedIndicesAccumulate) {
  Tensor w = tensor<double>({1, 2, 3, 4, 5, 6}, {3, 2}).requires_grad_();
  embedding(w, I({2, 2, 0, 2}, {4})).sum().backward();
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{1, 1, 0, 0, 3, 3}));
}

// Reference results by plain loops, for inputs big enough to be split across threads.
TEST(Indexing, LargeEmbeddingBackwardMatchesSerialSum) {
  const int64_t rows = 37, width = 300, n = 6000;
  std::mt19937 gen(7);
  std::uniform_int_distribution<int64_t> pick(0, rows - 1);
  std::vector<int64_t> idx(n);
  for (int64_t& i : idx) i = pick(gen);
  std::vector<double> g(n * width);
  for (int64_t i = 0; i < n * width; ++i) g[i] = static_cast<double>((i * 7919) % 13) - 6.0;
  std::vector<double> expected(rows * width, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < width; ++k) expected[idx[i] * width + k] += g[i * width + k];
  for (int64_t k = 0; k < width; ++k) expected[5 * width + k] = 0.0;  // padding row

  Tensor w = zeros({rows, width}, kFloat64).requires_grad_();
  Tensor out = embedding(w, I(idx, {n}), /*padding_idx=*/5);
  out.backward(tensor<double>(g, {n, width}));
  EXPECT_EQ(w.grad().to_vector<double>(), expected);  // small integers: exact in any order
}

TEST(Indexing, LargeScatterAddAndGatherMatchLoops) {
  const int64_t rows = 300, cols = 200, width = 50;
  std::mt19937 gen(3);
  std::uniform_int_distribution<int64_t> pick(0, width - 1);
  std::vector<int64_t> idx(rows * cols);
  for (int64_t& i : idx) i = pick(gen);  // many repeats within every row
  std::vector<double> src(rows * cols), base(rows * width);
  for (int64_t i = 0; i < rows * cols; ++i) src[i] = static_cast<double>(i % 17);
  for (int64_t i = 0; i < rows * width; ++i) base[i] = static_cast<double>(i % 5);

  std::vector<double> added = base, gathered(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      added[r * width + idx[r * cols + c]] += src[r * cols + c];
      gathered[r * cols + c] = base[r * width + idx[r * cols + c]];
    }
  Tensor index = I(idx, {rows, cols});
  Tensor self = tensor<double>(base, {rows, width});
  EXPECT_EQ(scatter_add(self, 1, index, tensor<double>(src, {rows, cols})).to_vector<double>(), added);
  EXPECT_EQ(gather(self, 1, index).to_vector<double>(), gathered);
  // the same along dim 0 of the transposed problem, through strided views
  EXPECT_EQ(
      scatter_add(self.t(), 0, index.t(), tensor<double>(src, {rows, cols}).t()).t().to_vector<double>(),
      added);
}

TEST(Indexing, OneHotPutsOneOnePerRow) {
  Tensor oh = one_hot(I({3, 0, 3, 1}, {4}), 5);
  std::vector<int64_t> v = oh.to_vector<int64_t>();
  std::vector<int64_t> expected(20, 0);
  expected[0 * 5 + 3] = expected[1 * 5 + 0] = expected[2 * 5 + 3] = expected[3 * 5 + 1] = 1;
  EXPECT_EQ(v, expected);
}

TEST(Join, CatPromotesAndSendsGradientInEachInputsDtype) {
  Tensor f = tensor<float>({1.5f, 2.5f}).requires_grad_();
  Tensor i = tensor<int64_t>({3});
  Tensor d = tensor<double>({4.0}).requires_grad_();
  Tensor out = cat({f, i, d});
  EXPECT_EQ(out.dtype(), kFloat64);
  EXPECT_EQ(out.to_vector<double>(), (std::vector<double>{1.5, 2.5, 3, 4}));
  (out * tensor<double>({1, 2, 3, 4})).sum().backward();
  EXPECT_EQ(f.grad().dtype(), kFloat32);
  EXPECT_EQ(f.grad().to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(d.grad().to_vector<double>(), (std::vector<double>{4}));
}

TEST(Join, StackOfScalarsAndCatOfOnlyEmpties) {
  Tensor s = stack({scalar_tensor(1.0), scalar_tensor(2.0)});
  EXPECT_EQ(s.shape(), (Shape{2}));
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(cat({zeros({0}), zeros({0})}).shape(), (Shape{0}));
  EXPECT_EQ(cat({zeros({0}), ones({2, 2})}, 1).shape(), (Shape{2, 2}));
}

TEST(Join, SplitAndChunkAreViewsWithTheRightSizes) {
  Tensor x = arange(10.0, kFloat64).reshape({5, 2});
  std::vector<Tensor> s = split(x, 2);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(s[2].shape(), (Shape{1, 2}));
  EXPECT_EQ(s[2].to_vector<double>(), (std::vector<double>{8, 9}));
  // a view into x's storage, not a copy
  EXPECT_EQ(static_cast<const char*>(s[1].raw_data()),
            static_cast<const char*>(x.raw_data()) + 4 * sizeof(double));
  std::vector<Tensor> c = x.chunk(2, 1);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].to_vector<double>(), (std::vector<double>{1, 3, 5, 7, 9}));
  // chunk may return fewer pieces than asked: 5 rows in 4 chunks of ceil(5/4) = 2 rows
  EXPECT_EQ(chunk(x, 4).size(), 3u);
  EXPECT_EQ(chunk(x, 10).size(), 5u);
  EXPECT_EQ(chunk(zeros({0, 3}), 3).size(), 3u);
  EXPECT_EQ(split(zeros({0, 3}), 2).size(), 1u);
}

TEST(Join, UnbindGivesViewsAndOneBackward) {
  Tensor x = arange(6.0, kFloat64).reshape({2, 3}).requires_grad_();
  std::vector<Tensor> rows = unbind(x);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].shape(), (Shape{3}));
  EXPECT_EQ(static_cast<const char*>(rows[1].raw_data()),
            static_cast<const char*>(x.raw_data()) + 3 * sizeof(double));
  EXPECT_EQ(rows[0].grad_fn(), rows[1].grad_fn());  // one node for every slice
  EXPECT_EQ(unbind(zeros({2, 0}), 1).size(), 0u);
  EMBER_EXPECT_THROW_MSG(unbind(zeros({})), "unbind: cannot unbind a 0-d tensor");
  EMBER_EXPECT_THROW_MSG(unbind(zeros({2}), 1), "unbind");
}

TEST(IndexingErrors, BadIndices) {
  Tensor x = tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  EMBER_EXPECT_THROW_MSG(gather(x, 1, I({0, 3}, {2, 1})),
                         "gather: index 3 is out of range for dim 1 of size 3 (valid range [0, 3))");
  EMBER_EXPECT_THROW_MSG(gather(x, 1, I({-1, 0}, {2, 1})), "gather: index -1 is out of range");
  EMBER_EXPECT_THROW_MSG(scatter(x, 0, I({2}, {1, 1}), x),
                         "scatter: index 2 is out of range for dim 0 of size 2");
  EMBER_EXPECT_THROW_MSG(scatter_add(x, 1, I({5}, {1, 1}), x), "scatter_add: index 5 is out of range");
  EMBER_EXPECT_THROW_MSG(index_select(x, 0, I({0, 2}, {2})),
                         "index_select: index 2 is out of range for dim 0 of size 2");
  EMBER_EXPECT_THROW_MSG(embedding(x, I({1, 7}, {2})),
                         "embedding: index 7 is out of range for a weight of 2 rows (valid range [0, 2))");
  EMBER_EXPECT_THROW_MSG(one_hot(I({0, 4}, {2}), 3), "one_hot: index 4 is out of range for num_classes 3");
  EMBER_EXPECT_THROW_MSG(one_hot(I({-2}, {1}), -1), "one_hot: index -2 is out of range");
}

TEST(IndexingErrors, WrongIndexDtype) {
  Tensor x = tensor<double>({1, 2, 3, 4}, {2, 2});
  Tensor f = tensor<float>({0, 1}, {2, 1});
  EMBER_EXPECT_THROW_MSG(gather(x, 1, f), "gather: index must be an int64 or int32 tensor, got float32");
  EMBER_EXPECT_THROW_MSG(index_select(x, 0, tensor<bool>({true})),
                         "index_select: index must be an int64 or int32");
  EMBER_EXPECT_THROW_MSG(embedding(x, f), "embedding: index must be an int64 or int32 tensor, got float32");
  EMBER_EXPECT_THROW_MSG(one_hot(tensor<double>({1}), 2), "one_hot: index must be an int64 or int32");
  EMBER_EXPECT_THROW_MSG(scatter(x, 0, f, x), "scatter: index must be an int64 or int32");
}

TEST(IndexingErrors, BadDimsAndShapes) {
  Tensor x = tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  EMBER_EXPECT_THROW_MSG(gather(x, 2, I({0}, {1, 1})), "gather: dim 2 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(index_select(x, -3, I({0}, {1})), "index_select: dim -3 out of range");
  EMBER_EXPECT_THROW_MSG(gather(x, 1, I({0, 0}, {2})),
                         "gather: index has 1 dims ([2]) but input has 2 ([2,3])");
  EMBER_EXPECT_THROW_MSG(gather(x, 1, I({0, 0, 0}, {3, 1})),
                         "gather: index shape [3,1] is larger than input shape [2,3] in dim 0");
  EMBER_EXPECT_THROW_MSG(scatter(x, 1, I({0, 0}, {1, 2}), tensor<double>({1}, {1, 1})),
                         "scatter: index shape [1,2] is larger than src shape [1,1] in dim 1");
  EMBER_EXPECT_THROW_MSG(scatter(x, 1, I({0}, {1, 1}), tensor<float>({1}, {1, 1})),
                         "scatter: self is float64 but src is float32");
  EMBER_EXPECT_THROW_MSG(index_select(x, 0, I({0, 1}, {1, 2})), "index_select: index must be 0-d or 1-d");
  EMBER_EXPECT_THROW_MSG(gather(scalar_tensor(1.0), 0, I({1}, {})),
                         "gather: index 1 is out of range for dim 0 of size 1");
  EMBER_EXPECT_THROW_MSG(gather(scalar_tensor(1.0), 0, I({0}, {1, 1})),
                         "gather: index has 2 dims ([1,1]) but input has 0 ([])");
  EMBER_EXPECT_THROW_MSG(gather(scalar_tensor(1.0), 1, I({0}, {})),
                         "gather: dim 1 out of range for a 0-d tensor");
  EMBER_EXPECT_THROW_MSG(index_select(scalar_tensor(1.0), 0, I({0, 0}, {2})),
                         "index_select: a 0-d input takes an index of one element, got shape [2]");
  EMBER_EXPECT_THROW_MSG(scatter(scalar_tensor(1.0, kFloat64), 0, I({0}, {}), scalar_tensor(1.0, kFloat32)),
                         "scatter: self is float64 but src is float32");
  EMBER_EXPECT_THROW_MSG(embedding(tensor<double>({1, 2}), I({0}, {1})), "embedding: weight must be 2-D");
  EMBER_EXPECT_THROW_MSG(embedding(x, I({0}, {1}), 2),
                         "embedding: padding_idx 2 is out of range for 2 embeddings");
  EMBER_EXPECT_THROW_MSG(one_hot(I({}, {0}), -1),
                         "one_hot: cannot infer num_classes from an empty index tensor");
  EMBER_EXPECT_THROW_MSG(one_hot(I({0}, {1}), -2), "one_hot: num_classes must be -1 (infer) or >= 0, got -2");
}

TEST(JoinErrors, BadLists) {
  Tensor a = zeros({2, 3}), b = zeros({2, 4});
  EMBER_EXPECT_THROW_MSG(
      cat({a, b}, 0),
      "cat: tensor 1 has shape [2,4] but tensor 0 has shape [2,3]; shapes must match except in dim 0");
  EMBER_EXPECT_THROW_MSG(cat({a, zeros({2, 3, 1})}, 0), "cat: tensor 1 has shape [2,3,1]");
  EMBER_EXPECT_THROW_MSG(cat({}, 0), "cat: expects a non-empty list of tensors");
  EMBER_EXPECT_THROW_MSG(cat({a, Tensor()}, 0), "cat: tensor 1 is undefined");
  EMBER_EXPECT_THROW_MSG(cat({scalar_tensor(1.0)}, 0), "cat: tensor 0 is 0-d");
  EMBER_EXPECT_THROW_MSG(cat({a, a}, 2), "cat: dim 2 out of range for a 2-d tensor");
  EMBER_EXPECT_THROW_MSG(stack({}, 0), "stack: expects a non-empty list of tensors");
  EMBER_EXPECT_THROW_MSG(stack({a, b}, 0), "stack: tensor 1 has shape [2,4] but tensor 0 has shape [2,3]");
  EMBER_EXPECT_THROW_MSG(stack({a, a}, 3), "stack: dim 3 out of range for a 3-d tensor");
  EMBER_EXPECT_THROW_MSG(split(a, 0, 1), "split: split_size must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(split(scalar_tensor(1.0), 1), "split: cannot split a 0-d tensor");
  EMBER_EXPECT_THROW_MSG(chunk(a, 0), "chunk: chunks must be positive, got 0");
  EMBER_EXPECT_THROW_MSG(chunk(a, 2, 5), "chunk: dim 5 out of range");
}

}  // namespace
}  // namespace ember::testing
