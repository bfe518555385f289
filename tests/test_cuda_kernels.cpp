// CUDA kernels against the CPU on inputs large or odd enough to take each kernel's other code
// paths: multi-tile scans, one-thread-per-lane softmax, attention's masked softmax on rows longer
// than a warp (and MultiheadAttention around it), segmented and single-segment sorts, atomic
// scatter/index_add, batched and transposed GEMMs, grouped/dilated convolution, overlapping
// pooling windows, batch/layer norm, losses and optimizer steps. (The op suites' CudaParity tests
// cover every table row on small inputs.) Every test compares values, and for differentiable ops
// the gradients of sum(out * w) for a fixed random w (expect_cuda_parity, tests/harness.h).
// Without a GPU every test skips with one message.
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/optim.h>

#include <cmath>

#include "harness.h"

namespace ember::testing {
namespace {

// Integer-valued doubles in [0, levels): many exact ties.
Tensor ties(const Shape& shape, int levels, uint64_t seed) {
  return (R(shape, 0, levels, seed, false)).to(kInt64).to(kFloat64);
}

TEST(CudaKernels, SoftmaxAlongEveryLayout) {
  EMBER_SKIP_WITHOUT_GPU();
  auto sm = [](int64_t dim, bool log) {
    return [=](const std::vector<Tensor>& in) { return log ? log_softmax(in[0], dim) : softmax(in[0], dim); };
  };
  for (bool log : {false, true}) {
    SCOPED_TRACE(log ? "log_softmax" : "softmax");
    expect_cuda_parity(sm(-1, log), {R({64, 1000}, -5, 5, 1)}, 1e-12);    // long contiguous rows
    expect_cuda_parity(sm(0, log), {R({300, 40}, -5, 5, 2)}, 1e-12);      // short strided lanes
    expect_cuda_parity(sm(1, log), {R({16, 20, 128}, -5, 5, 3)}, 1e-12);  // one thread per lane
    expect_cuda_parity(sm(1, log), {R({8, 3, 5}, -5, 5, 4, false).to(kFloat32).requires_grad_()}, 1e-5);
  }
}

// Padding mask [B, Tk]: batch b pads every key j with (j * 7 + b) % 5 == 0, and batch 2 every key.
Tensor padding(int64_t batch, int64_t keys) {
  std::vector<bool> v;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < keys; ++j) v.push_back(b == 2 || (j * 7 + b) % 5 == 0);
  return tensor<bool>(v, {batch, keys});
}

TEST(CudaKernels, MaskedSoftmaxRowsLongerThanAWarp) {
  EMBER_SKIP_WITHOUT_GPU();
  auto msm = [](double scale, bool causal) {
    return [=](const std::vector<Tensor>& in) {
      return nn::functional::masked_softmax(in[0], scale, causal, in.size() > 1 ? in[1] : Tensor());
    };
  };
  const Tensor pad = padding(3, 77);  // Tk = 77: lanes take 2 or 3 keys each
  for (bool causal : {false, true})
    for (int64_t Tq : {1, 40, 77, 100}) {  // Tq < Tk, ==, > (the first 23 queries then see no key)
      SCOPED_TRACE(fmt::format("causal {} Tq {}", causal, Tq));
      Tensor x = R({3, 2, Tq, 77}, -6, 6, 80 + Tq);
      expect_cuda_parity(msm(0.25, causal), {x}, 1e-12);
      expect_cuda_parity(msm(0.25, causal), {x, pad}, 1e-12);
      expect_cuda_parity(msm(0.25, causal), {x, pad}, 1e-5, kFloat32);
    }
  // long rows: each lane walks 47 keys; a grid of more rows than warps
  expect_cuda_parity(msm(0.1, true), {R({2, 8, 300, 1500}, -3, 3, 81, false)}, 1e-12);
  expect_cuda_parity(msm(0.1, true), {R({1, 2, 40, 1500}, -3, 3, 82)}, 1e-12);
  // a row of -inf (zeros) and a row with one NaN (all NaN): the warp max must pass NaN on
  Tensor special = R({1, 1, 3, 40}, -1, 1, 83, false);
  special.narrow(2, 0, 1).fill_(-INFINITY);
  special.narrow(2, 1, 1).narrow(3, 37, 1).fill_(NAN);
  Tensor out = nn::functional::masked_softmax(special.cuda(), 1.0).cpu();
  EXPECT_TRUE(tensors_close(out.narrow(2, 0, 1), zeros({1, 1, 1, 40}, TensorOptions(kFloat64)), 0));
  for (double v : out.narrow(2, 1, 1).to_vector<double>()) EXPECT_TRUE(std::isnan(v));
  expect_cuda_parity(msm(1.0, false), {special}, 1e-12);
}

// The whole layer: batched GEMMs (cuBLAS) around the fused softmax, forward and backward.
TEST(CudaKernels, MultiheadAttentionMatchesCpu) {
  EMBER_SKIP_WITHOUT_GPU();
  manual_seed(84);
  nn::MultiheadAttention mha(16, 4, 0.0, true, /*batch_first=*/true);
  mha.to(kFloat64);
  const Tensor x = R({3, 9, 16}, -1, 1, 85, false), w = R({3, 9, 16}, -1, 1, 86, false);
  const Tensor pad = padding(3, 9);
  for (bool causal : {false, true}) {
    SCOPED_TRACE(causal ? "causal" : "not causal");
    auto run = [&](Device d) {
      mha.to(d);
      mha.zero_grad();
      Tensor xi = x.to(d).detach().requires_grad_();  // a fresh leaf on each device
      Tensor out = mha.forward(xi, xi, xi, {}, pad.to(d), causal);
      (out * w.to(d)).sum().backward();
      return std::vector<Tensor>{out.cpu(), xi.grad().cpu(), mha.in_proj_weight.grad().cpu(),
                                 mha.in_proj_bias.grad().cpu(), mha.out_proj->weight.grad().cpu()};
    };
    std::vector<Tensor> c = run(Device::cpu()), g = run(Device::cuda());
    for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(tensors_close(g[i], c[i], 1e-10)) << "result " << i;
  }
}

TEST(CudaKernels, ScansAndLogsumexp) {
  EMBER_SKIP_WITHOUT_GPU();
  expect_cuda_parity([](const std::vector<Tensor>& in) { return cumsum(in[0], 1); }, {R({3, 1000}, -1, 1, 5)},
                     1e-12);
  expect_cuda_parity([](const std::vector<Tensor>& in) { return cumsum(in[0], 0); },
                     {R({50, 2048}, -1, 1, 6)}, 1e-12);
  expect_cuda_parity([](const std::vector<Tensor>& in) { return logcumsumexp(in[0], 1); },
                     {R({5, 700}, -3, 3, 7)}, 1e-12);
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) {
        return logsumexp(in[0], {0, 2});
      },
      {R({40, 3, 300}, -3, 3, 8)}, 1e-12);
  Tensor ints = ties({4, 999}, 100, 9).to(kInt64);
  expect_cuda_parity([](const std::vector<Tensor>& in) { return cumsum(in[0], 1); }, {ints}, 0);
  // -inf entries: logcumsumexp stays -inf until the first finite value
  Tensor with_inf = R({2, 300}, -1, 1, 10, false);
  with_inf.narrow(1, 0, 100).fill_(-INFINITY);
  expect_cuda_parity([](const std::vector<Tensor>& in) { return logcumsumexp(in[0], 1); }, {with_inf}, 1e-12);
}

TEST(CudaKernels, ArgReduceTiesAndNaN) {
  EMBER_SKIP_WITHOUT_GPU();
  Tensor x = ties({37, 1000}, 20, 11);
  x.narrow(0, 5, 1).narrow(1, 700, 1).fill_(NAN);
  x.narrow(0, 5, 1).narrow(1, 900, 1).fill_(NAN);
  for (int64_t dim : {0, 1}) {
    auto [cv, ci] = max(x, dim);
    auto [gv, gi] = max(x.cuda(), dim);
    EXPECT_TRUE(tensors_close(gv.cpu(), cv, 0));
    EXPECT_TRUE(tensors_close(gi.cpu(), ci, 0));
    auto [cn, cni] = min(x, dim);
    auto [gn, gni] = min(x.cuda(), dim);
    EXPECT_TRUE(tensors_close(gn.cpu(), cn, 0));
    EXPECT_TRUE(tensors_close(gni.cpu(), cni, 0));
  }
  EXPECT_EQ(argmax(x.cuda(), 1).cpu().to_vector<int64_t>()[5], 700);  // the first NaN wins
}

TEST(CudaKernels, SortIsStableWithNaNLastAndSignedZeros) {
  EMBER_SKIP_WITHOUT_GPU();
  Tensor x = ties({7, 1000}, 10, 12) - 5.0;
  x.narrow(1, 3, 1).fill_(NAN);
  x.narrow(1, 10, 1).fill_(-0.0);
  x.narrow(1, 11, 1).fill_(0.0);
  for (bool desc : {false, true})
    for (int64_t dim : {0, 1}) {
      SCOPED_TRACE(fmt::format("descending {} dim {}", desc, dim));
      auto [cv, ci] = sort(x, dim, desc);
      auto [gv, gi] = sort(x.cuda(), dim, desc);
      EXPECT_TRUE(tensors_close(gv.cpu(), cv, 0));
      EXPECT_TRUE(tensors_close(gi.cpu(), ci, 0));  // stable: equal keys keep their order
    }
  Tensor big = R({100000}, -1, 1, 13, false).to(kFloat32);  // one segment
  EXPECT_TRUE(tensors_close(argsort(big.cuda()).cpu(), argsort(big), 0));
  for (bool largest : {true, false}) {
    auto [cv, ci] = topk(x, 5, 1, largest);
    auto [gv, gi] = topk(x.cuda(), 5, 1, largest);
    EXPECT_TRUE(tensors_close(gv.cpu(), cv, 0));
    EXPECT_TRUE(tensors_close(gi.cpu(), ci, 0));
  }
  Tensor ints = ties({3, 500}, 7, 14).to(kInt32);
  EXPECT_TRUE(tensors_close(argsort(ints.cuda(), 1, true).cpu(), argsort(ints, 1, true), 0));
}

TEST(CudaKernels, IndexingWithAtomicAndPerLineWrites) {
  EMBER_SKIP_WITHOUT_GPU();
  Tensor idx1 = (R({5000}, 0, 1000, 15, false) * 1.0).to(kInt64);  // repeats: many writes per element
  // scatter_add along a single long line: the atomic path
  expect_cuda_parity(
      [&](const std::vector<Tensor>& in) { return scatter_add(in[0], 0, idx1.to(in[0].device()), in[1]); },
      {R({1000}, -1, 1, 16), R({5000}, -1, 1, 17)}, 1e-12);
  // many short lines: one thread per line, in order
  Tensor idx2 = (R({20000, 3}, 0, 3, 18, false)).to(kInt64);
  expect_cuda_parity(
      [&](const std::vector<Tensor>& in) { return scatter_add(in[0], 1, idx2.to(in[0].device()), in[1]); },
      {R({20000, 3}, -1, 1, 19), R({20000, 3}, -1, 1, 20)}, 1e-12);
  Tensor idx3 = (R({3000}, 0, 1000, 21, false)).to(kInt64);
  expect_cuda_parity(
      [&](const std::vector<Tensor>& in) { return index_select(in[0], 0, idx3.to(in[0].device())); },
      {R({1000, 16}, -1, 1, 22)}, 1e-12);  // backward: index_add with atomics
  Tensor tokens = (R({64, 10}, 0, 100, 23, false)).to(kInt64);
  expect_cuda_parity(
      [&](const std::vector<Tensor>& in) { return embedding(in[0], tokens.to(in[0].device())); },
      {R({100, 32}, -1, 1, 24)}, 1e-12);
  Tensor gidx = (R({50, 30}, 0, 60, 25, false)).to(kInt64);
  expect_cuda_parity([&](const std::vector<Tensor>& in) { return gather(in[0], 1, gidx.to(in[0].device())); },
                     {R({50, 60}, -1, 1, 26)}, 1e-12);
  Tensor iadd = (R({4000}, 0, 100, 27, false)).to(kInt64);
  Tensor counts = zeros({100}, TensorOptions(kInt64));
  EXPECT_TRUE(tensors_close(scatter_add(counts.cuda(), 0, iadd.cuda(), ones_like(iadd).cuda()).cpu(),
                            scatter_add(counts, 0, iadd, ones_like(iadd)), 0));  // exact integer atomics
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) {
        return cat({in[0], in[1].t(), in[0] * 2.0}, 1);
      },
      {R({30, 20}, -1, 1, 28), R({40, 30}, -1, 1, 29)}, 1e-12);
}

TEST(CudaKernels, MatmulLayouts) {
  EMBER_SKIP_WITHOUT_GPU();
  auto mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  expect_cuda_parity(mm, {R({300, 200}, -1, 1, 30), R({200, 150}, -1, 1, 31)}, 1e-12);
  expect_cuda_parity([](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].t()); },
                     {R({200, 300}, -1, 1, 32), R({150, 200}, -1, 1, 33)}, 1e-12);
  expect_cuda_parity(mm, {R({4, 30, 20}, -1, 1, 34), R({20, 10}, -1, 1, 35)}, 1e-12);  // broadcast b
  expect_cuda_parity(mm, {R({3, 4, 30, 20}, -1, 1, 36), R({3, 4, 20, 10}, -1, 1, 37)}, 1e-12);
  expect_cuda_parity(mm, {R({17}, -1, 1, 38), R({17, 5}, -1, 1, 39)}, 1e-12);  // vector @ matrix
  expect_cuda_parity([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                     {R({64, 48}, -1, 1, 40), R({32, 48}, -1, 1, 41), R({32}, -1, 1, 42)}, 1e-12);
  Tensor ia = ties({20, 30}, 50, 43).to(kInt64), ib = ties({30, 10}, 50, 44).to(kInt64);
  EXPECT_TRUE(tensors_close(matmul(ia.cuda(), ib.cuda()).cpu(), matmul(ia, ib), 0));
  Tensor fa = R({257, 129}, -1, 1, 45, false).to(kFloat32), fb = R({129, 65}, -1, 1, 46, false).to(kFloat32);
  EXPECT_TRUE(tensors_close(matmul(fa.cuda(), fb.cuda()).cpu(), matmul(fa, fb), 1e-5));  // TF32 is off
}

TEST(CudaKernels, Conv2dGroupedStridedDilated) {
  EMBER_SKIP_WITHOUT_GPU();
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) {
        return conv2d(in[0], in[1], in[2], {2, 1}, {1, 2}, {2, 1}, 2);
      },
      {R({2, 6, 11, 13}, -1, 1, 47), R({8, 3, 3, 3}, -1, 1, 48), R({8}, -1, 1, 49)}, 1e-12);
  expect_cuda_parity([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1]); },
                     {R({3, 4, 7, 5}, -1, 1, 50), R({6, 4, 1, 1}, -1, 1, 51)}, 1e-12);  // pointwise, no bias
}

TEST(CudaKernels, PoolingWithOverlappingWindows) {
  EMBER_SKIP_WITHOUT_GPU();
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) {
        return max_pool2d(in[0], {3, 3}, {2, 2}, {1, 1});
      },
      {R({2, 3, 9, 11}, -1, 1, 52)}, 1e-12);
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) {
        return avg_pool2d(in[0], {3, 2}, {2, 1}, {1, 1});
      },
      {R({2, 3, 9, 11}, -1, 1, 53)}, 1e-12);
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) {
        return adaptive_avg_pool2d(in[0], {4, 5});
      },
      {R({2, 3, 9, 11}, -1, 1, 54)}, 1e-12);
}

TEST(CudaKernels, BatchAndLayerNorm) {
  EMBER_SKIP_WITHOUT_GPU();
  for (bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "eval");
    expect_cuda_parity(
        [=](const std::vector<Tensor>& in) {
          Tensor rm = full({5}, 0.1, in[0].options()), rv = full({5}, 1.5, in[0].options());
          return nn::functional::batch_norm(in[0], rm, rv, in[1], in[2], training, 0.1, 1e-5);
        },
        {R({8, 5, 7, 3}, -2, 2, 55), R({5}, 0.5, 1.5, 56), R({5}, -1, 1, 57)}, 1e-10);
  }
  // the running statistics are updated in place the same way
  Tensor x = R({8, 5, 7, 3}, -2, 2, 58, false);
  Tensor rm = full({5}, 0.1, TensorOptions(kFloat64)), rv = full({5}, 1.5, TensorOptions(kFloat64));
  Tensor grm = rm.cuda(), grv = rv.cuda();
  nn::functional::batch_norm(x, rm, rv, {}, {}, true);
  nn::functional::batch_norm(x.cuda(), grm, grv, {}, {}, true);
  EXPECT_TRUE(tensors_close(grm.cpu(), rm, 1e-12));
  EXPECT_TRUE(tensors_close(grv.cpu(), rv, 1e-12));
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) { return nn::functional::layer_norm(in[0], {33}, in[1], in[2]); },
      {R({6, 20, 33}, -2, 2, 58), R({33}, 0.5, 1.5, 59), R({33}, -1, 1, 60)}, 1e-10);
  expect_cuda_parity(
      [](const std::vector<Tensor>& in) {
        return nn::functional::layer_norm(in[0], {4, 5});
      },
      {R({3, 4, 5}, -2, 2, 61)}, 1e-10);
}

TEST(CudaKernels, CrossEntropyAndNll) {
  EMBER_SKIP_WITHOUT_GPU();
  Tensor y = (R({37}, 0, 11, 62, false)).to(kInt64);
  y.narrow(0, 3, 2).fill_(-100);  // ignored rows
  losses::CrossEntropyOptions o;
  o.weight = R({11}, 0.5, 2, 63, false);
  o.label_smoothing = 0.1;
  expect_cuda_parity(
      [&](const std::vector<Tensor>& in) {
        losses::CrossEntropyOptions oo = o;
        oo.weight = o.weight.to(in[0].device());
        return losses::cross_entropy(in[0], y.to(in[0].device()), oo);
      },
      {R({37, 11}, -3, 3, 64)}, 1e-12);
  Tensor y2 = (R({4, 5}, 0, 11, 65, false)).to(kInt64);  // [N, C, d] logits: rows are strided
  expect_cuda_parity(
      [&](const std::vector<Tensor>& in) { return losses::cross_entropy(in[0], y2.to(in[0].device())); },
      {R({4, 11, 5}, -3, 3, 66)}, 1e-12);
  expect_cuda_parity(
      [&](const std::vector<Tensor>& in) {
        losses::NLLOptions no;
        no.weight = o.weight.to(in[0].device());
        return losses::nll_loss(log_softmax(in[0], 1), y.to(in[0].device()), no);
      },
      {R({37, 11}, -3, 3, 67)}, 1e-12);
  // an invalid target is an Error on the GPU too
  Tensor bad = y.clone();
  bad.narrow(0, 7, 1).fill_(11);
  EMBER_EXPECT_THROW_MSG(losses::cross_entropy(R({37, 11}, -1, 1, 68, false).cuda(), bad.cuda()),
                         "target 11 at position 7 is out of range");
}

TEST(CudaKernels, OptimizerStepsMatchCpu) {
  EMBER_SKIP_WITHOUT_GPU();
  auto run = [](Device d, int which) {
    Tensor p = R({300}, -1, 1, 69, false).to(d);
    p.requires_grad_(true);
    std::unique_ptr<optim::Optimizer> opt;
    if (which == 0)
      opt =
          std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{0.1, 0.9, 0.0, 0.01, true});
    if (which == 1) {
      optim::AdamOptions a;
      a.amsgrad = true;
      a.weight_decay = 0.01;
      opt = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, a);
    }
    if (which == 2) opt = std::make_unique<optim::AdamW>(std::vector<Tensor>{p});
    for (int step = 0; step < 3; ++step) {
      p.set_grad(R({300}, -1, 1, 70 + step, false).to(d));
      opt->step();
    }
    return p.detach().cpu();
  };
  for (int which = 0; which < 3; ++which)
    EXPECT_TRUE(tensors_close(run(Device::cuda(), which), run(Device::cpu(), which), 1e-12)) << which;
}

TEST(CudaKernels, DropoutMaskIsTheCpuMask) {
  EMBER_SKIP_WITHOUT_GPU();
  Tensor x = R({1000}, 1, 2, 71, false);
  manual_seed(5);
  Tensor c = dropout(x, 0.3, true);
  manual_seed(5);
  Tensor g = dropout(x.cuda(), 0.3, true);
  EXPECT_TRUE(tensors_close(g.cpu(), c, 1e-15));
}

}  // namespace
}  // namespace ember::testing
