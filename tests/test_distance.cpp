// cosine_similarity and pairwise_distance (ops and modules) against PyTorch: every expected value
// below was computed with torch 1.13's torch.nn.functional in float64. Each row is gradient-checked
// (and second derivatives where the row asks), and compared with CUDA when a GPU is present.
#include <ember/nn.h>

#include <cmath>
#include <limits>

#include "harness.h"

namespace ember::testing {
namespace {

const double kInf = std::numeric_limits<double>::infinity();

Tensor a() { return T({0.5, -1.2, 2.0, -0.3, 0.8, 0.1}, {2, 3}); }
Tensor b() { return T({1.0, 0.4, -0.5, 0.25, 0.9, -0.4}, {2, 3}); }
Tensor scalar(double v) { return scalar_tensor(v, kFloat64); }

OpFn cos_sim(int64_t dim = 1, double eps = 1e-8) {
  return [=](const std::vector<Tensor>& in) { return cosine_similarity(in[0], in[1], dim, eps); };
}
OpFn pdist(double p = 2.0, double eps = 1e-6, bool keepdim = false) {
  return [=](const std::vector<Tensor>& in) { return pairwise_distance(in[0], in[1], p, eps, keepdim); };
}

std::vector<OpCase> cosine_similarity_cases() {
  return with_gradgradcheck({
      {"rows", cos_sim(), {a(), b()}, tensor<double>({-0.345987482065, 0.692140854241}, {2})},
      {"dim0", cos_sim(0), {a(), b()}, tensor<double>({0.707106781187, 0.168963815111, -0.81109033178}, {3})},
      {"vectors_dim0",
       cos_sim(0),
       {T({0.5, -1.2, 2.0}, {3}), T({0.25, 0.9, -0.4}, {3})},
       scalar(-0.724062336563)},
      {"vectors_dim_minus1",
       cos_sim(-1),
       {T({0.5, -1.2, 2.0}, {3}), T({0.25, 0.9, -0.4}, {3})},
       scalar(-0.724062336563)},
      // a [3] against b [2, 3]: dim 1 counts in the broadcast shape
      {"broadcast_vector",
       cos_sim(),
       {T({0.3, -0.7, 1.1}, {3}), b()},
       tensor<double>({-0.333610566594, -0.731899642612}, {2})},
      // [2, 1, 3] against [4, 3]: every pair of rows
      {"broadcast_all_pairs",
       cos_sim(-1),
       {T({0.5, -1.2, 2.0, -0.3, 0.8, 0.1}, {2, 1, 3}),
        T({1.0, 0.4, -0.5, 0.25, 0.9, -0.4, 0.6, -0.2, 0.3, -1.0, 0.5, 0.7}, {4, 3})},
       tensor<double>({-0.345987482065, -0.724062336563, 0.682732658988, 0.0953433697753, -0.0293694516863,
                       0.692140854241, -0.51481097158, 0.678578727768},
                      {2, 4})},
      {"middle_dim",
       cos_sim(1),
       {T({0.5, -1.2, 2.0, -0.3, 0.8, 0.1}, {1, 2, 3}), T({1.0, 0.4, -0.5, 0.25, 0.9, -0.4}, {1, 2, 3})},
       tensor<double>({0.707106781187, 0.168963815111, -0.81109033178}, {1, 3})},
      {"scalars",
       cos_sim(0),
       {scalar(-2.0).requires_grad_(true), scalar(3.0).requires_grad_(true)},
       scalar(-1)},
      // eps = 2 clamps |b| = 1.19 in row 0, and both norms (0.86, 1.02) in row 1
      {"eps_clamps",
       cos_sim(1, 2.0),
       {a(), b()},
       tensor<double>({-0.205418685994, 0.15125}, {2}),
       1e-6,
       false},  // clamped: PyTorch's gradient is the unclamped norm's (see ClampedNormGradientIsPyTorchs)
  });
}
EMBER_OP_SUITE(CosineSimilarity, cosine_similarity_cases);

std::vector<OpCase> pairwise_distance_cases() {
  std::vector<OpCase> cases = with_gradgradcheck({
      {"p2", pdist(), {a(), b()}, tensor<double>({3.00998352155, 0.749999800002}, {2})},
      {"p1", pdist(1.0), {a(), b()}, tensor<double>({4.599999, 1.149999}, {2})},
      {"p3_keepdim",
       pdist(3.0, 1e-6, true),
       {a(), b()},
       tensor<double>({2.7074331218, 0.663712482351}, {2, 1})},
      {"p_half", pdist(0.5), {a(), b()}, tensor<double>({12.6249167728, 3.11505855452}, {2})},
      {"eps", pdist(2.0, 0.1), {a(), b()}, tensor<double>({3.02820078595, 0.75}, {2})},
      {"vectors", pdist(), {T({0.5, -1.2, 2.0}, {3}), T({0.25, 0.9, -0.4}, {3})}, scalar(3.19882808228)},
      {"vectors_keepdim",
       pdist(2.0, 1e-6, true),
       {T({0.5, -1.2, 2.0}, {3}), T({0.25, 0.9, -0.4}, {3})},
       tensor<double>({3.19882808228}, {1})},
      // the last dim of a 0-d tensor is the tensor itself: |1 - 3 + 1e-6|
      {"scalars",
       pdist(),
       {scalar(1.0).requires_grad_(true), scalar(3.0).requires_grad_(true)},
       scalar(1.999999)},
      {"broadcast",
       pdist(),
       {T({0.3, -0.7, 1.1}, {3}), b()},
       tensor<double>({2.06397664716, 2.19374107406}, {2})},
      {"batched_3d",
       pdist(),
       {T({0.5, -1.2, 2.0, -0.3, 0.8, 0.1}, {1, 2, 3}), T({1.0, 0.4, -0.5, 0.25, 0.9, -0.4}, {1, 2, 3})},
       tensor<double>({3.00998352155, 0.749999800002}, {1, 2})},
      // a == b: the distance is |eps| sqrt(D), and the gradient is defined
      {"identical", pdist(2.0, 0.1), {a(), a()}, tensor<double>({0.173205080757, 0.173205080757}, {2})},
  });
  // the max and min norms and the count of nonzeros: first derivatives only (norm's)
  cases.push_back({"p_inf", pdist(kInf), {a(), b()}, tensor<double>({2.500001, 0.549999}, {2})});
  cases.push_back({"p_minus_inf", pdist(-kInf), {a(), b()}, tensor<double>({0.499999, 0.099999}, {2})});
  cases.push_back({"p0", pdist(0.0), {a(), b()}, tensor<double>({3, 3}, {2})});
  return cases;
}
EMBER_OP_SUITE(PairwiseDistance, pairwise_distance_cases);

TEST(CosineSimilarity, ClampedNormGradientIsPyTorchs) {
  // torch 1.13 clamps each squared norm to eps^2 in place under no_grad: the value uses eps, the
  // gradient the unclamped norm. |a| = 2.2e-9 < eps = 1e-8 here; PyTorch's value and gradients:
  Tensor x = T({1e-9, 2e-9}, {1, 2}), y = T({1e-3, 0.0}, {1, 2});
  Tensor c = cosine_similarity(x, y);
  EXPECT_TRUE(tensors_close(c, tensor<double>({0.1}, {1}), 1e-12));
  c.sum().backward();
  EXPECT_TRUE(tensors_close(x.grad(), tensor<double>({99000000.0, -2000000.0}, {1, 2}), 1e-9));
  EXPECT_TRUE(tensors_close(y.grad(), tensor<double>({0.0, 200.0}, {1, 2}), 1e-9));
  // a zero vector: similarity 0, and PyTorch's gradient b / (eps |b|) for it
  Tensor z = T({0.0, 0.0}, {1, 2});
  Tensor cz = cosine_similarity(z, T({1.0, 0.0}, {1, 2}, false));
  EXPECT_EQ(cz.item<double>(), 0.0);
  cz.sum().backward();
  EXPECT_TRUE(tensors_close(z.grad(), tensor<double>({1e8, 0.0}, {1, 2}), 1e-12));
}

TEST(CosineSimilarity, SquaredNormOverflowGivesZeroLikePyTorch) {
  // the squared norms overflow to inf: torch 1.13's a / |a| gives 0 (not NaN), and so does ember
  Tensor big = T({1e200, 1e200}, {1, 2});
  Tensor c = cosine_similarity(big, tensor<double>({1e200, 0.0}, {1, 2}));
  EXPECT_EQ(c.item<double>(), 0.0);
  c.sum().backward();
  EXPECT_TRUE(tensors_close(big.grad(), zeros({1, 2}, kFloat64), 0.0));
}

TEST(CosineSimilarity, Float32AndBFloat16) {
  Tensor x = R({3, 5}, -1, 1, 3, false), y = R({3, 5}, -1, 1, 4, false);
  Tensor ref = cosine_similarity(x, y);
  EXPECT_EQ(cosine_similarity(x.to(kFloat32), y.to(kFloat32)).dtype(), kFloat32);
  EXPECT_TRUE(tensors_close(cosine_similarity(x.to(kFloat32), y.to(kFloat32)).to(kFloat64), ref, 1e-6));
  Tensor h = cosine_similarity(x.to(DType::bfloat16), y.to(DType::bfloat16));
  EXPECT_EQ(h.dtype(), DType::bfloat16);
  EXPECT_TRUE(tensors_close(h.to(kFloat64), ref, 2e-2));
  Tensor d = pairwise_distance(x.to(DType::bfloat16), y.to(DType::bfloat16));
  EXPECT_EQ(d.dtype(), DType::bfloat16);
  EXPECT_TRUE(tensors_close(d.to(kFloat64), pairwise_distance(x, y), 2e-2));
}

TEST(Distance, Errors) {
  EMBER_EXPECT_THROW_MSG(cosine_similarity(a(), T({1, 2}, {2})),
                         "cosine_similarity: shapes [2,3] and [2] cannot be broadcast");
  // PyTorch: dim 1 is out of range for two vectors (pass dim 0 or -1)
  EMBER_EXPECT_THROW_MSG(cosine_similarity(T({1, 2}, {2}), T({1, 2}, {2})),
                         "cosine_similarity: dim 1 out of range for a 1-d tensor");
  EMBER_EXPECT_THROW_MSG(cosine_similarity(a(), b(), 1, -1.0),
                         "cosine_similarity: eps must be a finite number >= 0, got -1");
  EMBER_EXPECT_THROW_MSG(cosine_similarity(I({1, 2}, {1, 2}), b()),
                         "cosine_similarity: input dtype int64 is not floating point");
  EMBER_EXPECT_THROW_MSG(cosine_similarity(a(), Tensor()), "cosine_similarity: input is an undefined tensor");
  EMBER_EXPECT_THROW_MSG(pairwise_distance(a(), T({1, 2, 3, 4}, {1, 4})),
                         "pairwise_distance: shapes [2,3] and [1,4] cannot be broadcast (dim 1: 3 vs 4)");
  EMBER_EXPECT_THROW_MSG(pairwise_distance(a(), b(), -1.0),
                         "pairwise_distance: p must be > 0, 0, inf or -inf; got -1");
  EMBER_EXPECT_THROW_MSG(pairwise_distance(a(), b(), NAN), "pairwise_distance: p must be > 0");
  EMBER_EXPECT_THROW_MSG(pairwise_distance(a(), b(), 2.0, kInf),
                         "pairwise_distance: eps must be finite, got inf");
  EMBER_EXPECT_THROW_MSG(pairwise_distance(a(), I({1, 2, 3}, {3})),
                         "pairwise_distance: input dtype int64 is not floating point");
}

// ---- modules ----

std::vector<OpCase> module_cases() {
  return with_gradgradcheck({
      {"CosineSimilarity_default",
       [](const std::vector<Tensor>& in) { return nn::CosineSimilarity().forward(in[0], in[1]); },
       {a(), b()},
       tensor<double>({-0.345987482065, 0.692140854241}, {2})},
      {"CosineSimilarity_dim0",
       [](const std::vector<Tensor>& in) { return nn::CosineSimilarity(0).forward(in[0], in[1]); },
       {a(), b()},
       tensor<double>({0.707106781187, 0.168963815111, -0.81109033178}, {3})},
      {"PairwiseDistance_default",
       [](const std::vector<Tensor>& in) { return nn::PairwiseDistance().forward(in[0], in[1]); },
       {a(), b()},
       tensor<double>({3.00998352155, 0.749999800002}, {2})},
      {"PairwiseDistance_p3_keepdim",
       [](const std::vector<Tensor>& in) {
         return nn::PairwiseDistance(3.0, 1e-6, true).forward(in[0], in[1]);
       },
       {a(), b()},
       tensor<double>({2.7074331218, 0.663712482351}, {2, 1})},
      {"PairwiseDistance_p1_eps",
       [](const std::vector<Tensor>& in) { return nn::PairwiseDistance(1.0, 0.3).forward(in[0], in[1]); },
       {a(), b()},
       tensor<double>({4.3, 1.25}, {2})},
  });
}
EMBER_OP_SUITE(DistanceModules, module_cases);

TEST(DistanceModules, ReprAndErrors) {
  EXPECT_EQ(nn::CosineSimilarity().str(), "CosineSimilarity(dim=1, eps=1e-08)");
  EXPECT_EQ(nn::PairwiseDistance(1.0, 0.5, true).str(), "PairwiseDistance(p=1, eps=0.5, keepdim=true)");
  EXPECT_EQ(nn::PairwiseDistance().str(), "PairwiseDistance(p=2, eps=1e-06, keepdim=false)");
  EMBER_EXPECT_THROW_MSG(nn::CosineSimilarity(1, -1.0), "CosineSimilarity: eps must be >= 0, got -1");
  EMBER_EXPECT_THROW_MSG(nn::PairwiseDistance(-2.0),
                         "PairwiseDistance: p must be > 0, 0, inf or -inf; got -2");
  nn::CosineSimilarity cs;
  // the one-tensor forward (the Module interface) has nothing to compare with
  EMBER_EXPECT_THROW_MSG(cs.forward(a()), "this module has no single-tensor forward");
  nn::PairwiseDistance pd;
  EMBER_EXPECT_THROW_MSG(pd.forward(a()), "this module has no single-tensor forward");
  EMBER_EXPECT_THROW_MSG(pd.forward(a(), T({1, 2}, {2})),
                         "pairwise_distance: shapes [2,3] and [2] cannot be broadcast");
}

}  // namespace
}  // namespace ember::testing
