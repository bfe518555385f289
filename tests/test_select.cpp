// cumprod (ops/scan.cpp), nonzero and masked_select (ops/select.cpp): table rows with values
// worked out by hand or checked against PyTorch 1.13 (gradcheck, CUDA parity), then dtypes,
// broadcasting, empty and 0-d inputs, strided inputs, the cumprod gradient with zeros against a
// brute-force reference, and the errors.
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include "harness.h"

namespace ember::testing {
namespace {

using In = std::vector<Tensor>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor E(const std::vector<double>& values, const Shape& shape) { return tensor<double>(values, shape); }
Tensor B(const std::vector<bool>& values, const Shape& shape) { return tensor<bool>(values, shape); }
std::vector<int64_t> ints(const Tensor& t) { return t.to_vector<int64_t>(); }
std::vector<double> doubles(const Tensor& t) { return t.to(kFloat64).to_vector<double>(); }

// ---------------------------------------------------------------------------------------------
// table rows

std::vector<OpCase> select_cases() {
  Tensor x = T({1, 2, 3, 4, 5, 6}, {2, 3});
  // zeros at different places in different lanes: first, middle, last, two, none
  Tensor z = T({0, 2, 3, 2, 0, 3, 2, 3, 0, 0, 2, 0, 2, -1, 3}, {5, 3});
  Tensor mask23 = B({true, false, true, false, true, false}, {2, 3});
  std::vector<OpCase> cases = with_gradgradcheck({
      {"cumprod_dim1", [](const In& in) { return cumprod(in[0], 1); }, {x}, E({1, 2, 6, 4, 20, 120}, {2, 3})},
      {"cumprod_dim0", [](const In& in) { return cumprod(in[0], 0); }, {x}, E({1, 2, 3, 4, 10, 18}, {2, 3})},
      {"cumprod_negative_dim",
       [](const In& in) { return in[0].cumprod(-1); },
       {x},
       E({1, 2, 6, 4, 20, 120}, {2, 3})},
      // x.t() = [[1,4],[2,5],[3,6]]
      {"cumprod_transposed",
       [](const In& in) { return cumprod(in[0].t(), 1); },
       {x},
       E({1, 4, 2, 10, 3, 18}, {3, 2})},
      {"cumprod_middle_dim",
       [](const In& in) { return cumprod(in[0], 1); },
       {T({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 3, 2})},
       E({1, 2, 3, 8, 15, 48, 7, 8, 63, 80, 693, 960}, {2, 3, 2})},
      {"cumprod_scalar", [](const In& in) { return cumprod(in[0], 0); }, {T({2.5}, {})}, E({2.5}, {})},
      {"cumprod_lane_of_one",
       [](const In& in) { return cumprod(in[0], 0); },
       {T({0, 3}, {1, 2})},
       E({0, 3}, {1, 2})},
      {"cumprod_zero_middle",
       [](const In& in) { return cumprod(in[0], 0); },
       {T({2, 0, 3, 4}, {4})},
       E({2, 0, 0, 0}, {4})},
      {"cumprod_zero_first",
       [](const In& in) { return cumprod(in[0], 0); },
       {T({0, 2, 3}, {3})},
       E({0, 0, 0}, {3})},
      {"cumprod_zero_last",
       [](const In& in) { return cumprod(in[0], 0); },
       {T({2, 3, 0}, {3})},
       E({2, 6, 0}, {3})},
      {"cumprod_two_zeros",
       [](const In& in) { return cumprod(in[0], 0); },
       {T({2, 0, 3, 0, 5}, {5})},
       E({2, 0, 0, 0, 0}, {5})},
      {"cumprod_all_zeros",
       [](const In& in) { return cumprod(in[0], 0); },
       {T({0, 0, 0}, {3})},
       E({0, 0, 0}, {3})},
      {"cumprod_zeros_per_row",
       [](const In& in) { return cumprod(in[0], 1); },
       {z},
       E({0, 0, 0, 2, 0, 0, 2, 6, 0, 0, 0, 0, 2, -2, -6}, {5, 3})},
      // lanes along dim 0 of z: [0,2,2,0,2], [2,0,3,2,-1], [3,3,0,0,3]
      {"cumprod_zeros_per_column",
       [](const In& in) { return cumprod(in[0], 0); },
       {z},
       E({0, 2, 3, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {5, 3})},

      // [[0,1,0],[2,0,3]]: row-major (row, col) of 1, 2 and 3
      {"nonzero_2d",
       [](const In& in) { return nonzero(in[0]); },
       {T({0, 1, 0, 2, 0, 3}, {2, 3}, false)},
       I({0, 1, 1, 0, 1, 2}, {3, 2}),
       0,
       false},
      {"nonzero_nan_counts",
       [](const In& in) { return nonzero(in[0]); },
       {T({0, kNaN, -0.0, 0}, {2, 2}, false)},
       I({0, 1}, {1, 2}),
       0,
       false},
      {"nonzero_3d",
       [](const In& in) { return in[0].nonzero(); },
       {T({1, 0, 0, 0, 0, 5, 0, 7, 0, 0, 0, 1}, {2, 3, 2}, false)},
       I({0, 0, 0, 0, 2, 1, 1, 0, 1, 1, 2, 1}, {4, 3}),
       0,
       false},
      // x.t() = [[0,2],[1,0],[0,3]]
      {"nonzero_transposed",
       [](const In& in) { return nonzero(in[0].t()); },
       {T({0, 1, 0, 2, 0, 3}, {2, 3}, false)},
       I({0, 1, 1, 0, 2, 1}, {3, 2}),
       0,
       false},

      {"masked_select_same_shape",
       [](const In& in) { return masked_select(in[0], in[1]); },
       {x, mask23},
       E({1, 3, 5}, {3})},
      // x [3] broadcast over mask [2,3]: x[0] and x[2] from row 0, x[1] from row 1 (PyTorch: [1,3,2])
      {"masked_select_broadcast_x",
       [](const In& in) { return masked_select(in[0], in[1]); },
       {T({1, 2, 3}, {3}), mask23},
       E({1, 3, 2}, {3})},
      {"masked_select_broadcast_mask",
       [](const In& in) { return in[0].masked_select(in[1]); },
       {x, B({true, false, true}, {3})},
       E({1, 3, 4, 6}, {4})},
      // x [2,1] and mask [3] broadcast to [2,3] (PyTorch: [1,1,2,2])
      {"masked_select_broadcast_both",
       [](const In& in) { return masked_select(in[0], in[1]); },
       {T({1, 2}, {2, 1}), B({true, false, true}, {3})},
       E({1, 1, 2, 2}, {4})},
      // x.t() = [[1,4],[2,5],[3,6]]
      {"masked_select_transposed",
       [](const In& in) { return masked_select(in[0].t(), in[1]); },
       {x, B({false, true, true, false, true, true}, {3, 2})},
       E({4, 2, 3, 6}, {4})},
      {"masked_select_scalar",
       [](const In& in) { return masked_select(in[0], in[1]); },
       {T({2.5}, {}), B({true}, {})},
       E({2.5}, {1})},
      {"masked_select_scalar_mask",
       [](const In& in) { return masked_select(in[0], in[1]); },
       {T({1, 2}, {2}), B({true}, {})},
       E({1, 2}, {2})},
  });
  return cases;
}
EMBER_OP_SUITE(Select, select_cases);

// ---------------------------------------------------------------------------------------------
// cumprod

// grad[i] = sum_{j>=i} g[j] prod_{k<=j, k!=i} x[k] for one lane, straight from the products.
std::vector<double> cumprod_grad_reference(const std::vector<double>& x, const std::vector<double>& g) {
  const size_t n = x.size();
  std::vector<double> grad(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    double p = 1;  // prod_{k<=j, k!=i} x[k]
    for (size_t k = 0; k < i; ++k) p *= x[k];
    for (size_t j = i; j < n; ++j) {
      if (j > i) p *= x[j];
      grad[i] += g[j] * p;
    }
  }
  return grad;
}

// The gradient of sum(f(x) * w) with respect to x.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x_in, const Tensor& w) {
  Tensor x = x_in.detach().clone().requires_grad_();
  (f(x) * w).sum().backward();
  return x.grad();
}

TEST(Cumprod, GradientWithZerosMatchesPyTorch) {
  // values from torch.cumprod(x, 0).backward(g) in PyTorch 1.13
  struct Case {
    std::vector<double> x, g, grad;
  };
  for (const Case& c :
       {Case{{2, 0, 3, 0, 5}, {1, 2, 3, 4, 5}, {1, 22, 0, 0, 0}}, Case{{0, 2, 3}, {1, -1, 2}, {11, 0, 0}},
        Case{{2, 3, 0}, {1, -1, 2}, {-2, -2, 12}}, Case{{2, 3, 4}, {1, -1, 2}, {22, 14, 12}},
        Case{{0, 0, 0}, {1, -1, 2}, {1, 0, 0}}, Case{{2, 0, 3, 4}, {1, 1, 1, 1}, {1, 32, 0, 0}}}) {
    Tensor x = tensor<double>(c.x), g = tensor<double>(c.g);
    EXPECT_EQ(doubles(grad_of([](const Tensor& t) { return cumprod(t, 0); }, x, g)), c.grad);
    EXPECT_EQ(cumprod_grad_reference(c.x, c.g), c.grad);  // the reference agrees too
  }
}

TEST(Cumprod, RandomZerosMatchBruteForce) {
  // lanes of length 1..9 with 0..3 zeros at random positions, along the last dim (contiguous
  // lanes) and along dim 0 of the transpose (strided, side-by-side lanes)
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> magnitude(0.5, 1.5);
  for (int64_t n = 1; n <= 9; ++n) {
    const int64_t lanes = 24;
    std::vector<double> xv(lanes * n), gv(lanes * n);
    for (int64_t l = 0; l < lanes; ++l) {
      for (int64_t k = 0; k < n; ++k) {
        xv[l * n + k] = (gen() % 2 ? 1 : -1) * magnitude(gen);
        gv[l * n + k] = magnitude(gen) - 1.0;
      }
      for (uint64_t count = gen() % 4, i = 0; i < count; ++i) xv[l * n + gen() % n] = 0;
    }
    std::vector<double> expected(lanes * n);
    for (int64_t l = 0; l < lanes; ++l) {
      std::vector<double> x(xv.begin() + l * n, xv.begin() + (l + 1) * n);
      std::vector<double> g(gv.begin() + l * n, gv.begin() + (l + 1) * n);
      std::vector<double> r = cumprod_grad_reference(x, g);
      std::copy(r.begin(), r.end(), expected.begin() + l * n);
    }
    Tensor x = tensor<double>(xv, {lanes, n}), g = tensor<double>(gv, {lanes, n});
    const std::vector<std::function<Tensor(const Tensor&)>> layouts = {
        [](const Tensor& t) { return cumprod(t, 1); },                       // contiguous lanes
        [](const Tensor& t) { return cumprod(t.t(), 0).t(); },               // a strided input
        [](const Tensor& t) { return cumprod(t.t().contiguous(), 0).t(); },  // side-by-side lanes
    };
    for (size_t k = 0; k < layouts.size(); ++k)
      EXPECT_TRUE(tensors_close(grad_of(layouts[k], x, g), E(expected, {lanes, n}), 1e-12))
          << "n = " << n << ", layout " << k;
  }
}

TEST(Cumprod, GradcheckWithZerosAtEveryPosition) {
  // a single zero at each position of a lane of 6, and the pairs of zeros, in float64
  for (int a = 0; a < 6; ++a)
    for (int b = a; b < 6; ++b) {
      std::vector<double> v = {1.5, -0.5, 2.0, 0.75, -1.25, 1.1};
      v[a] = 0;
      v[b] = 0;
      Tensor x = T(v, {2, 3});  // dim 0 and 1 of [2,3], and the flat lane
      EXPECT_TRUE(passes_gradcheck([](const In& in) { return cumprod(in[0].reshape({6}), 0); }, {x}))
          << a << " " << b;
      EXPECT_TRUE(passes_gradcheck([](const In& in) { return cumprod(in[0], 0); }, {x})) << a << " " << b;
      EXPECT_TRUE(passes_gradcheck([](const In& in) { return cumprod(in[0], 1); }, {x})) << a << " " << b;
    }
}

TEST(Cumprod, LaneOfOnePassesTheGradientUnchanged) {
  Tensor x = tensor<double>({3.0, 0.1}, {1, 2}).requires_grad_();
  Tensor w = tensor<double>({0.3, 0.7}, {1, 2});
  (cumprod(x, 0) * w).sum().backward();
  EXPECT_EQ(doubles(x.grad()), (std::vector<double>{0.3, 0.7}));  // exactly g, not g * x / x
}

TEST(Cumprod, Dtypes) {
  Tensor i = cumprod(tensor<int32_t>({2, 3, 4}), 0);
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(ints(i), (std::vector<int64_t>{2, 6, 24}));
  // int32 values whose product leaves int32: accumulated in int64
  EXPECT_EQ(ints(cumprod(tensor<int32_t>({100000, 100000}), 0)), (std::vector<int64_t>{100000, 10000000000}));
  Tensor b = cumprod(B({true, true, true, false}, {2, 2}), 1);
  EXPECT_EQ(b.dtype(), kInt64);
  EXPECT_EQ(ints(b), (std::vector<int64_t>{1, 1, 1, 0}));
  EXPECT_EQ(cumprod(tensor<float>({2, 3}), 0).dtype(), kFloat32);
  EXPECT_EQ(cumprod(zeros({0, 3}), 0).shape(), (Shape{0, 3}));

  // bfloat16, as PyTorch: values [[1,2,6],[4,20,120]], gradient of the sum [[9,4,2],[36,28,20]]
  Tensor h = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).to(kBFloat16).requires_grad_();
  Tensor y = cumprod(h, 1);
  EXPECT_EQ(y.dtype(), kBFloat16);
  EXPECT_EQ(doubles(y), (std::vector<double>{1, 2, 6, 4, 20, 120}));
  y.sum().backward();
  EXPECT_EQ(h.grad().dtype(), kBFloat16);
  EXPECT_EQ(doubles(h.grad()), (std::vector<double>{9, 4, 2, 36, 28, 20}));
}

TEST(Cumprod, EmptyInputHasAnEmptyGradient) {
  Tensor x = zeros({0, 3}, kFloat64).requires_grad_();
  cumprod(x, 0).sum().backward();
  EXPECT_EQ(x.grad().shape(), (Shape{0, 3}));
}

TEST(Cumprod, Errors) {
  EMBER_EXPECT_THROW_MSG(cumprod(zeros({2, 3}), 2), "cumprod: dim 2 out of range");
  EMBER_EXPECT_THROW_MSG(cumprod(Tensor(), 0), "cumprod");
}

// ---------------------------------------------------------------------------------------------
// nonzero

// The row-major indices of the nonzero elements, by a plain loop over a contiguous copy.
std::vector<int64_t> nonzero_reference(const Tensor& x) {
  std::vector<double> v = doubles(x.contiguous());
  std::vector<int64_t> out;
  for (int64_t f = 0; f < static_cast<int64_t>(v.size()); ++f) {
    if (v[f] == 0) continue;
    int64_t rest = f;
    std::vector<int64_t> index(x.dim());
    for (int64_t d = x.dim() - 1; d >= 0; --d) {
      index[d] = rest % x.size(d);
      rest /= x.size(d);
    }
    out.insert(out.end(), index.begin(), index.end());
  }
  return out;
}

TEST(Nonzero, Dtypes) {
  const std::vector<int64_t> expected = {0, 1, 1, 0, 1, 2};  // of [[0,a,0],[b,0,c]]
  for (DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8, kBFloat16}) {
    Tensor x = tensor<double>({0, 1, 0, 2, 0, 3}, {2, 3}).to(dt);
    Tensor r = nonzero(x);
    EXPECT_EQ(r.dtype(), kInt64) << dtype_name(dt);
    EXPECT_EQ(r.shape(), (Shape{3, 2})) << dtype_name(dt);
    EXPECT_EQ(ints(r), expected) << dtype_name(dt);
  }
  EXPECT_EQ(ints(nonzero(B({false, true, false, true, false, true}, {2, 3}))),
            (std::vector<int64_t>{0, 1, 1, 0, 1, 2}));
  // bfloat16 keeps tiny values that float32 would too: 1e-30 is nonzero
  EXPECT_EQ(ints(nonzero(tensor<float>({0, 1e-30f}).to(kBFloat16))), (std::vector<int64_t>{1}));
  // a nonzero gradient-tracking input gives a plain int64 result
  Tensor g = tensor<double>({0, 2}).requires_grad_();
  EXPECT_FALSE(nonzero(g).requires_grad());
}

TEST(Nonzero, ZeroDimAndEmpty) {
  // 0-d: PyTorch gives [1, 0] for a nonzero scalar and [0, 0] for zero
  EXPECT_EQ(nonzero(scalar_tensor(5.0)).shape(), (Shape{1, 0}));
  EXPECT_EQ(nonzero(scalar_tensor(0.0)).shape(), (Shape{0, 0}));
  EXPECT_EQ(nonzero(scalar_tensor(kNaN)).shape(), (Shape{1, 0}));
  EXPECT_EQ(nonzero(zeros({2, 0, 3})).shape(), (Shape{0, 3}));
  EXPECT_EQ(nonzero(zeros({0})).shape(), (Shape{0, 1}));
  Tensor none = nonzero(zeros({2, 3}));
  EXPECT_EQ(none.shape(), (Shape{0, 2}));
  EXPECT_EQ(none.dtype(), kInt64);
  EXPECT_EQ(ints(nonzero(ones({2, 2}))), (std::vector<int64_t>{0, 0, 0, 1, 1, 0, 1, 1}));
  EXPECT_EQ(ints(nonzero(ones({1, 1, 1}))), (std::vector<int64_t>{0, 0, 0}));
}

TEST(Nonzero, StridedInputs) {
  Tensor x = tensor<double>({0, 1, 2, 0, 0, 3, 4, 0, 5, 0, 0, 6}, {3, 4});
  // a step slice: columns 1 and 3 = [[1,0],[3,0],[0,6]] (PyTorch: [[0,0],[1,0],[2,1]])
  EXPECT_EQ(ints(nonzero(x.slice(1, 1, 4, 2))), (std::vector<int64_t>{0, 0, 1, 0, 2, 1}));
  // the transpose (PyTorch: [[0,2],[1,0],[1,1],[2,0],[2,1],[3,2]])
  EXPECT_EQ(ints(nonzero(x.t())), (std::vector<int64_t>{0, 2, 1, 0, 1, 1, 2, 0, 2, 1, 3, 2}));
  // an expanded (stride 0) bool row
  Tensor row = B({true, false, true}, {1, 3}).expand({2, 3});
  EXPECT_EQ(ints(nonzero(row)), (std::vector<int64_t>{0, 0, 0, 2, 1, 0, 1, 2}));
}

TEST(Nonzero, LargeRandomMatchesALoop) {
  // enough elements for several parallel chunks, sizes that share no factor, ~30% nonzero
  Tensor x = (rand({37, 53, 3}, kFloat64) > 0.7).to(kFloat64) * randn({37, 53, 3}, kFloat64);
  EXPECT_EQ(ints(nonzero(x)), nonzero_reference(x));
  Tensor dense = rand({5, 7, 11, 13}, kFloat64) + 0.5;  // every element nonzero
  EXPECT_EQ(ints(nonzero(dense)), nonzero_reference(dense));
}

TEST(Nonzero, Errors) { EMBER_EXPECT_THROW_MSG(nonzero(Tensor()), "nonzero"); }

// ---------------------------------------------------------------------------------------------
// masked_select

TEST(MaskedSelect, Dtypes) {
  Tensor mask = B({true, false, true, true}, {4});
  Tensor i = masked_select(tensor<int64_t>({5, 6, 7, 8}), mask);
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(ints(i), (std::vector<int64_t>{5, 7, 8}));
  Tensor b = masked_select(B({false, true, true, false}, {4}), mask);
  EXPECT_EQ(b.dtype(), kBool);
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(ints(masked_select(tensor<int32_t>({1, 2, 3, 4}), mask).to(kInt64)),
            (std::vector<int64_t>{1, 3, 4}));

  Tensor h = tensor<float>({1.5, -2, 3.25, 4}).to(kBFloat16).requires_grad_();
  Tensor y = masked_select(h, mask);
  EXPECT_EQ(y.dtype(), kBFloat16);
  EXPECT_EQ(doubles(y), (std::vector<double>{1.5, 3.25, 4}));
  (y * tensor<float>({1, 2, 3}).to(kBFloat16)).sum().backward();
  EXPECT_EQ(h.grad().dtype(), kBFloat16);
  EXPECT_EQ(doubles(h.grad()), (std::vector<double>{1, 0, 2, 3}));
}

TEST(MaskedSelect, EmptyAllTrueAndZeroDim) {
  Tensor x = tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor none = masked_select(x, zeros({2, 3}, kBool));
  EXPECT_EQ(none.shape(), (Shape{0}));
  EXPECT_EQ(none.dtype(), kFloat64);
  EXPECT_EQ(doubles(masked_select(x, ones({2, 3}, kBool))), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(masked_select(scalar_tensor(3.0), scalar_tensor(0.0, kBool)).shape(), (Shape{0}));
  EXPECT_EQ(doubles(masked_select(scalar_tensor(3.0), scalar_tensor(1.0, kBool))), (std::vector<double>{3}));
  EXPECT_EQ(masked_select(zeros({0, 3}), ones({3}, kBool)).shape(), (Shape{0}));

  // nothing selected: the gradient is all zeros
  Tensor xg = x.clone().requires_grad_();
  masked_select(xg, zeros({3}, kBool)).sum().backward();
  EXPECT_EQ(doubles(xg.grad()), std::vector<double>(6, 0.0));
}

TEST(MaskedSelect, BroadcastGradientsSumBack) {
  // x [3] read through mask [2,3] = [[T,F,T],[T,T,F]]: x[0] twice, x[1] once, x[2] once
  Tensor x = tensor<double>({1, 2, 3}).requires_grad_();
  Tensor mask = B({true, false, true, true, true, false}, {2, 3});
  Tensor y = masked_select(x, mask);
  EXPECT_EQ(doubles(y), (std::vector<double>{1, 3, 1, 2}));
  (y * tensor<double>({1, 10, 100, 1000})).sum().backward();
  EXPECT_EQ(doubles(x.grad()), (std::vector<double>{101, 1000, 10}));

  // x [2,3] with mask [3]: each selected column of each row once
  Tensor x2 = tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  masked_select(x2, B({false, true, true}, {3})).sum().backward();
  EXPECT_EQ(doubles(x2.grad()), (std::vector<double>{0, 1, 1, 0, 1, 1}));
}

TEST(MaskedSelect, StridedInputs) {
  Tensor x = tensor<double>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 4});
  Tensor mask = B({true, false, false, true, true, false, false, true, true, false, true, false}, {4, 3});
  // x.t() [4,3] = [[1,5,9],[2,6,10],[3,7,11],[4,8,12]]
  EXPECT_EQ(doubles(masked_select(x.t(), mask)), (std::vector<double>{1, 2, 6, 7, 11, 8}));
  // a step-sliced x and a transposed mask: x[:, ::2] = [[1,3],[5,7],[9,11]], mask.t()[:, :2]
  Tensor m = mask.t().narrow(1, 0, 2);  // [[T,T],[F,T],[F,F]]
  EXPECT_EQ(doubles(masked_select(x.slice(1, 0, 4, 2), m)), (std::vector<double>{1, 3, 7}));
}

TEST(MaskedSelect, LargeRandomMatchesALoop) {
  Tensor x = randn({61, 47}, kFloat64);
  Tensor mask = rand({61, 47}, kFloat64) > 0.6;
  std::vector<double> xv = doubles(x), expected;
  std::vector<bool> mv = mask.to_vector<bool>();
  for (size_t i = 0; i < xv.size(); ++i)
    if (mv[i]) expected.push_back(xv[i]);
  EXPECT_EQ(doubles(masked_select(x, mask)), expected);
}

TEST(MaskedSelect, Errors) {
  Tensor x = zeros({3});
  EMBER_EXPECT_THROW_MSG(masked_select(x, tensor<uint8_t>({1, 0, 1})),
                         "masked_select: expected BoolTensor for mask");
  EMBER_EXPECT_THROW_MSG(masked_select(x, tensor<int64_t>({1, 0, 1})),
                         "masked_select: expected BoolTensor for mask, got int64");
  EMBER_EXPECT_THROW_MSG(masked_select(x, ones({2}, kBool)), "masked_select");
  EMBER_EXPECT_THROW_MSG(masked_select(Tensor(), ones({3}, kBool)), "masked_select");
  EMBER_EXPECT_THROW_MSG(masked_select(x, Tensor()), "masked_select");
}

// ---------------------------------------------------------------------------------------------
// unique (values, inverse and counts as torch.unique gives them)

TEST(Unique, ValuesInverseAndCountsMatchPyTorch) {
  const Unique u = unique(tensor<int64_t>({3, 1, 2, 3, 7, 1}, {2, 3}));
  EXPECT_EQ(u.values.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 7}));
  EXPECT_EQ(u.inverse.shape(), (Shape{2, 3}));
  EXPECT_EQ(u.inverse.to_vector<int64_t>(), (std::vector<int64_t>{2, 0, 1, 2, 3, 0}));
  EXPECT_EQ(u.counts.to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 2, 1}));
  // values[inverse] rebuilds the input.
  EXPECT_TRUE(tensors_close(index_select(u.values, 0, u.inverse.reshape({-1})).reshape({2, 3}),
                            tensor<int64_t>({3, 1, 2, 3, 7, 1}, {2, 3}), 0));
  // Each NaN is a value of its own, after the numbers: NumPy's unique(equal_nan=False) gives the
  // same (PyTorch 1.13's CPU kernel returns [1, nan, nan, 2] with counts [1, 0, 0, 2], a bug).
  const Unique f = unique(tensor<float>({2, NAN, 1, NAN, 2}, {5}).requires_grad_());
  EXPECT_FALSE(f.values.requires_grad());
  const std::vector<float> v = f.values.to_vector<float>();
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.0f);
  EXPECT_TRUE(std::isnan(v[2]) && std::isnan(v[3]));
  EXPECT_EQ(f.inverse.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 0, 3, 1}));
  EXPECT_EQ(f.counts.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 1, 1}));
  const Unique b = unique(tensor<bool>({true, false, true}, {3}));
  EXPECT_EQ(b.values.dtype(), kBool);
  EXPECT_EQ(b.values.to_vector<bool>(), (std::vector<bool>{false, true}));
  EXPECT_EQ(b.inverse.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
}

TEST(Unique, EmptyZeroDimStridedAndLarge) {
  const Unique e = unique(zeros({0, 3}));
  EXPECT_EQ(e.values.shape(), (Shape{0}));
  EXPECT_EQ(e.inverse.shape(), (Shape{0, 3}));
  EXPECT_EQ(e.counts.shape(), (Shape{0}));
  const Unique s = unique(scalar_tensor(4.0));
  EXPECT_EQ(s.values.to_vector<float>(), (std::vector<float>{4}));
  EXPECT_EQ(s.inverse.shape(), (Shape{}));
  const Tensor t = tensor<int64_t>({5, 1, 5, 1, 5, 9}, {2, 3}).t();  // strided
  EXPECT_EQ(unique(t).inverse.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1, 1, 2}));
  // Random small integers: against a std::map.
  const Tensor r = randint(0, 50, {2000});
  const Unique u = unique(r);
  std::map<int64_t, int64_t> count;
  for (int64_t x : r.to_vector<int64_t>()) ++count[x];
  std::vector<int64_t> keys, counts;
  for (const auto& [k, c] : count) {
    keys.push_back(k);
    counts.push_back(c);
  }
  EXPECT_EQ(u.values.to_vector<int64_t>(), keys);
  EXPECT_EQ(u.counts.to_vector<int64_t>(), counts);
  EXPECT_TRUE(tensors_close(index_select(u.values, 0, u.inverse), r, 0));
  EMBER_EXPECT_THROW_MSG(unique(Tensor()), "unique");
}

// ---------------------------------------------------------------------------------------------
// CUDA: devices and larger inputs than the table rows (skip without a GPU)

TEST(SelectCuda, UniqueMatchesTheCpu) {
  EMBER_SKIP_WITHOUT_GPU();
  const Tensor x = randint(-100, 100, {3000}).to(kFloat32);
  const Unique cpu = unique(x), gpu = unique(x.cuda());
  EXPECT_TRUE(tensors_close(gpu.values.cpu(), cpu.values, 0));
  EXPECT_TRUE(tensors_close(gpu.inverse.cpu(), cpu.inverse, 0));
  EXPECT_TRUE(tensors_close(gpu.counts.cpu(), cpu.counts, 0));
}

TEST(SelectCuda, DeviceMismatch) {
  EMBER_SKIP_WITHOUT_GPU();
  Tensor x = ones({3}).cuda();
  EMBER_EXPECT_THROW_MSG(masked_select(x, ones({3}, kBool)), "masked_select");
  EMBER_EXPECT_THROW_MSG(masked_select(ones({3}), ones({3}, kBool).cuda()), "masked_select");
}

TEST(SelectCuda, LargeInputsMatchTheCpu) {
  EMBER_SKIP_WITHOUT_GPU();
  Tensor x = (rand({300, 517}, kFloat64) > 0.8).to(kFloat64) * randn({300, 517}, kFloat64);
  Tensor mask = rand({517}, kFloat64) > 0.5;
  expect_cuda_parity([](const In& in) { return nonzero(in[0]); }, {x}, 0);
  expect_cuda_parity([](const In& in) { return masked_select(in[0], in[1]); }, {x.requires_grad_(), mask},
                     1e-12);
  // lanes with zeros (80% of x is zero): the zero-aware backward on both devices
  Tensor c = (x.detach() + (rand({300, 517}, kFloat64) > 0.9).to(kFloat64) * 0.5).requires_grad_();
  expect_cuda_parity([](const In& in) { return cumprod(in[0].narrow(1, 0, 9), 1); }, {c}, 1e-12);
  expect_cuda_parity([](const In& in) { return cumprod(in[0].narrow(0, 0, 12) + 1.0, 0); }, {c}, 1e-12);
}

}  // namespace
}  // namespace ember::testing
