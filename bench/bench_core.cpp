// bench_core: ember against what it is built on, measured in the same run on the same buffers.
//
//   1. matmul float32 (square 512/1024/2048, and one transposed operand) vs cblas_sgemm directly
//   2. per-op overhead: a 16-element add with autograd recording (and PyTorch's, when installed)
//   3. elementwise add/mul/exp on 4M float32, and a row-broadcast bias add, vs an OpenMP loop
//   4. conv2d forward + backward (batch 64, 32->64 channels, 28x28, 3x3, padding 1): Winograd vs
//      im2col + GEMM, vs PyTorch; and a DCGAN generator's conv_transpose2d vs PyTorch
//   4c. the composite layer ops (interpolate, group_norm, rms_norm, conv1d, LSTM) vs PyTorch
//
// Each pair of contenders runs alternately (A, B, A, B, ...) and the best time of each is kept,
// so background load on a shared machine hits both alike. Ratios are ember / reference
// throughput: 100% means ember is as fast as the raw library. Runs in well under two minutes.
#include <cblas.h>
#include <ember/ember.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "ops/conv_testing.h"

using namespace ember;

namespace {

using Clock = std::chrono::steady_clock;
using namespace ember::bench;

// ---- 1. matmul ----
void bench_matmul() {
  std::printf("\n== 1. matmul float32: ember vs cblas_sgemm on the same buffers (goal >= 95%%) ==\n");
  std::printf("%-34s %12s %12s %8s  %s\n", "case", "ember GF/s", "cblas GF/s", "ratio", "goal");
  std::printf("(GF/s: best call of each; ratio: median over rounds of the per-round time ratio)\n");
  for (int64_t n : {512, 1024, 2048}) {
    for (bool transposed : {false, true}) {
      if (transposed && n != 1024) continue;
      Tensor a = randn({n, n}), b_store = randn({n, n});
      // transposed: b is a column-major view (b_store^T); ember must hand it to BLAS as is
      Tensor b = transposed ? b_store.t() : b_store;
      Tensor c = empty({n, n});
      const int ni = static_cast<int>(n);
      auto ember_call = [&] { Tensor r = matmul(a, b); };
      auto blas_call = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposed ? CblasTrans : CblasNoTrans, ni, ni, ni, 1.0f,
                    a.data_ptr<float>(), ni, b_store.data_ptr<float>(), ni, 0.0f, c.data_ptr<float>(), ni);
      };
      Race r = race(ember_call, blas_call, n >= 2048 ? 8.0 : 4.0);
      double flops = 2.0 * n * n * n;
      std::printf("%-34s %12.1f %12.1f %7.1f%%  %s\n",
                  fmt::format("{0}x{0} @ {0}x{0}{1}", n, transposed ? " (B^T view)" : "").c_str(),
                  flops / r.best_a / 1e9, flops / r.best_b / 1e9, 100 * r.ratio,
                  verdict(r.ratio, 0.95, true));
    }
  }
}

// ---- 2. per-op overhead ----
// Thread CPU time per op (best of 5 runs of 100k ops), and wall time beside it.
std::pair<double, double> per_op_cost(const std::function<void()>& op, int inner) {
  op();
  double best_cpu = 1e30, best_wall = 1e30;
  for (int r = 0; r < 5; ++r) {
    double c0 = thread_cpu_seconds();
    double wall = seconds_of([&] {
      for (int i = 0; i < inner; ++i) op();
    });
    best_cpu = std::min(best_cpu, (thread_cpu_seconds() - c0) / inner);
    best_wall = std::min(best_wall, wall / inner);
  }
  return {best_cpu, best_wall};
}

void bench_overhead(const std::string& python) {
  std::printf("\n== 2. per-op overhead: 16-element float32 add (goal <= 1.5 us with autograd) ==\n");
  std::printf("%-40s %12s %12s\n", "case", "CPU us/op", "wall us/op");
  const int inner = 100000;
  Tensor a = randn({16}).requires_grad_(), b = randn({16}).requires_grad_();
  auto [cpu, wall] = per_op_cost([&] { Tensor c = a + b; }, inner);
  std::printf("%-40s %12.3f %12.3f  %s\n", "ember, recording a graph node", cpu * 1e6, wall * 1e6,
              verdict(cpu * 1e6, 1.5, false));
  Tensor an = randn({16}), bn = randn({16});
  auto [cpu_n, wall_n] = per_op_cost([&] { Tensor c = an + bn; }, inner);
  std::printf("%-40s %12.3f %12.3f\n", "ember, no autograd", cpu_n * 1e6, wall_n * 1e6);
  if (python.empty()) {
    std::printf("%-40s %s\n", "PyTorch", "skipped (no python3 can import torch; set EMBER_PYTHON)");
    return;
  }
  auto py = run_python(python, fmt::format(R"(
import time, torch
torch.set_num_threads({0})
a = torch.randn(16, requires_grad=True); b = torch.randn(16, requires_grad=True)
for _ in range(10000): c = a + b
best = 1e30
for _ in range(5):
    t = time.thread_time()
    for _ in range({1}): c = a + b
    best = min(best, (time.thread_time() - t) / {1})
print(best * 1e6)
)",
                                           get_num_threads(), inner));
  if (py) {
    std::printf("%-40s %12.3f %12s  (from Python: includes the interpreter)\n", "PyTorch, recording", *py,
                "");
  } else {
    std::printf("%-40s %s\n", "PyTorch", "failed to run");
  }
}

// ---- 3. elementwise ----
void bench_elementwise() {
  std::printf("\n== 3. elementwise float32 vs an OpenMP -O3 loop on %d threads ==\n", get_num_threads());
  std::printf("%-34s %11s %11s %8s  %s\n", "case", "ember ms", "loop ms", "ratio", "goal");
  const int64_t n = int64_t{1} << 22;  // 4M
  Tensor x = randn({n}), y = randn({n});
  Tensor out = empty({n});
  const float* xp = x.data_ptr<float>();
  const float* yp = y.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int threads = get_num_threads();
  auto row = [](const char* name, const Race& r, double goal) {
    std::printf("%-34s %11.3f %11.3f %7.1f%%  %s (>= %.0f%%)\n", name, r.best_a * 1e3, r.best_b * 1e3,
                100 * r.ratio, verdict(r.ratio, goal, true), 100 * goal);
  };
  row("add  [4M] + [4M]",
      race([&] { Tensor r = x + y; },
           [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
             for (int64_t i = 0; i < n; ++i) op[i] = xp[i] + yp[i];
           },
           3.0),
      0.8);
  row("mul  [4M] * [4M]",
      race([&] { Tensor r = x * y; },
           [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
             for (int64_t i = 0; i < n; ++i) op[i] = xp[i] * yp[i];
           },
           3.0),
      0.8);
  row("exp  [4M]",
      race([&] { Tensor r = exp(x); },
           [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
             for (int64_t i = 0; i < n; ++i) op[i] = std::exp(xp[i]);
           },
           3.0),
      0.8);
  // a bias added to every row: the second operand has stride 0 along the rows
  const int64_t rows = 4096, cols = 1024;
  Tensor m = randn({rows, cols}), bias = randn({cols});
  const float* mp = m.data_ptr<float>();
  const float* bp = bias.data_ptr<float>();
  row("bias [4096,1024] + [1024]",
      race([&] { Tensor r = m + bias; },
           [&] {
#pragma omp parallel for num_threads(threads) schedule(static)
             for (int64_t i = 0; i < rows; ++i)
               for (int64_t j = 0; j < cols; ++j) op[i * cols + j] = mp[i * cols + j] + bp[j];
           },
           3.0),
      0.7);
}

// Runs `steps` (Python defining the steps, then `print(best(step), ...)`) after a prelude that
// imports torch, sets ember's thread count and defines best(f) (best of 5 calls, in ms), and prints
// one "PyTorch <label>" line per row with its time beside ember's (`rows`: label, ember seconds).
void compare_with_torch(const std::string& python, const std::string& steps,
                        const std::vector<std::pair<std::string, double>>& rows) {
  if (python.empty()) {
    std::printf("%-40s %s\n", "PyTorch", "skipped (no python3 can import torch; set EMBER_PYTHON)");
    return;
  }
  const std::string prelude = fmt::format(R"(
import time, torch
import torch.nn.functional as F
torch.set_num_threads({})
def best(f):
    f(); b = 1e30
    for _ in range(5):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b * 1e3
)",
                                          get_num_threads());
  const std::optional<std::string> out = run_python_output(python, prelude + steps);
  std::vector<double> times;
  if (out) {
    std::istringstream in(*out);
    for (double t; in >> t;) times.push_back(t);
  }
  if (times.size() != rows.size()) {
    std::printf("%-40s %s\n", "PyTorch", "failed to run");
    return;
  }
  for (size_t i = 0; i < rows.size(); ++i)
    std::printf("%-40s %9.1f ms  (ember / PyTorch time: %.2f)\n", ("PyTorch " + rows[i].first).c_str(),
                times[i], rows[i].second * 1e3 / times[i]);
}

// ---- 4. conv2d ----
// Winograd F(2x2, 3x3) (the default for this shape) raced against ember's own im2col + GEMM path,
// then PyTorch (oneDNN) on the same thread count.
void bench_conv(const std::string& python) {
  std::printf("\n== 4. conv2d forward + backward: x [64,32,28,28], w [64,32,3,3], padding 1 ==\n");
  Tensor x = randn({64, 32, 28, 28}).requires_grad_(), w = randn({64, 32, 3, 3}).requires_grad_();
  Tensor b = randn({64}).requires_grad_();
  Tensor g = randn({64, 64, 28, 28});
  auto with = [](detail::Conv2dAlgorithm algorithm, const std::function<void()>& step) {
    return [algorithm, step] {
      const detail::Conv2dAlgorithmScope scope(algorithm);
      step();
    };
  };
  using enum detail::Conv2dAlgorithm;
  auto forward = [&] {
    NoGradGuard no_grad;
    conv2d(x, w, b, {1, 1}, {1, 1});
  };
  auto both_ways = [&] { conv2d(x, w, b, {1, 1}, {1, 1}).backward(g); };
  const Race fwd = race(with(winograd, forward), with(im2col, forward), 3.0);
  const Race both = race(with(winograd, both_ways), with(im2col, both_ways), 6.0);
  const double flops = 2.0 * 64 * 64 * 28 * 28 * 32 * 9;  // direct, one direction; backward is twice that
  std::printf("%-40s %9.1f ms  (%.1f direct-GFLOP/s)\n", "ember forward, Winograd", fwd.best_a * 1e3,
              flops / fwd.best_a / 1e9);
  std::printf("%-40s %9.1f ms  (Winograd speed-up %.2fx)\n", "ember forward, im2col + GEMM", fwd.best_b * 1e3,
              fwd.ratio);
  std::printf("%-40s %9.1f ms  (%.1f direct-GFLOP/s)\n", "ember forward + backward, Winograd",
              both.best_a * 1e3, 3 * flops / both.best_a / 1e9);
  std::printf("%-40s %9.1f ms  (Winograd speed-up %.2fx)\n", "ember forward + backward, im2col + GEMM",
              both.best_b * 1e3, both.ratio);
  compare_with_torch(python, R"(
x = torch.randn(64, 32, 28, 28, requires_grad=True); w = torch.randn(64, 32, 3, 3, requires_grad=True)
b = torch.randn(64, requires_grad=True); g = torch.randn(64, 64, 28, 28)
def step():
    F.conv2d(x, w, b, padding=1).backward(g)
print(best(step))
)",
                     {{"forward + backward", both.best_a}});
}

// A DCGAN generator's upsampling layer (4x4, stride 2, padding 1: 8x8 -> 16x16), which ember runs as
// conv2d's input-gradient kernel (col2im) forward and conv2d + its weight gradient backward.
void bench_conv_transpose(const std::string& python) {
  std::printf(
      "\n== 4b. conv_transpose2d forward + backward: x [64,128,8,8], w [128,64,4,4], stride 2, padding 1 "
      "==\n");
  Tensor x = randn({64, 128, 8, 8}).requires_grad_(), w = randn({128, 64, 4, 4}).requires_grad_();
  Tensor b = randn({64}).requires_grad_();
  Tensor g = randn({64, 64, 16, 16});
  auto forward = [&] {
    NoGradGuard no_grad;
    conv_transpose2d(x, w, b, {2, 2}, {1, 1});
  };
  auto both_ways = [&] { conv_transpose2d(x, w, b, {2, 2}, {1, 1}).backward(g); };
  const double t_fwd = best_per_call(forward, 1, 5), t_both = best_per_call(both_ways, 1, 5);
  std::printf("%-40s %9.1f ms\n", "ember forward", t_fwd * 1e3);
  std::printf("%-40s %9.1f ms\n", "ember forward + backward", t_both * 1e3);
  compare_with_torch(python, R"(
x = torch.randn(64, 128, 8, 8, requires_grad=True); w = torch.randn(128, 64, 4, 4, requires_grad=True)
b = torch.randn(64, requires_grad=True); g = torch.randn(64, 64, 16, 16)
def forward():
    with torch.no_grad():
        F.conv_transpose2d(x, w, b, stride=2, padding=1)
def both():
    F.conv_transpose2d(x, w, b, stride=2, padding=1).backward(g)
print(best(forward), best(both))
)",
                     {{"forward", t_fwd}, {"forward + backward", t_both}});
}

// ---- 4c. the composite layer ops ----
// interpolate, group_norm, rms_norm, conv1d and the recurrent layers are built from other ops (a pass per
// piece); this shows what that costs beside PyTorch's fused kernels, on a decoder-sized feature map
// and a small LSTM language-model body.
void bench_composite_layers(const std::string& python) {
  std::printf("\n== 4c. composite layer ops forward + backward (x [16,64,32,32]; an LSTM) ==\n");
  namespace F = nn::functional;
  Tensor x = randn({16, 64, 32, 32}).requires_grad_();
  Tensor w = randn({64}).requires_grad_(), b = randn({64}).requires_grad_();
  Tensor w_rms = randn({32}).requires_grad_();
  Tensor g_up = randn({16, 64, 64, 64}), g = randn({16, 64, 32, 32});
  Tensor seq_x = randn({16, 64, 1024}).requires_grad_(), seq_g = randn({16, 64, 1024});
  Tensor seq_w = (randn({64, 64, 3}) * 0.1).requires_grad_();
  const std::vector<std::pair<std::string, std::function<void()>>> steps = {
      {"bilinear 2x upsample",
       [&] {
         F::interpolate(x, {.scale_factor = {2.0}, .mode = F::InterpolateMode::bilinear}).backward(g_up);
       }},
      {"nearest 2x upsample", [&] { F::interpolate(x, {.scale_factor = {2.0}}).backward(g_up); }},
      {"group_norm, 32 groups", [&] { F::group_norm(x, 32, w, b).backward(g); }},
      {"rms_norm over the last dim", [&] { F::rms_norm(x, {32}, w_rms).backward(g); }},
      {"conv1d 64->64, k 3, [16,64,1024]", [&] { conv1d(seq_x, seq_w, {}, 1, 1).backward(seq_g); }},
  };
  std::vector<std::pair<std::string, double>> rows;
  for (const auto& [name, step] : steps) {
    const double t = best_per_call(step, 1, 5);
    std::printf("%-40s %9.1f ms\n", ("ember " + name).c_str(), t * 1e3);
    rows.emplace_back(name, t);
  }
  // a 2-layer LSTM language-model body: T = 64 steps of a batch of 32, 256 features
  nn::LSTM lstm(256, 256, {.num_layers = 2});
  Tensor seq = randn({64, 32, 256}), g_seq = randn({64, 32, 256});
  const double t_lstm = best_per_call([&] { lstm.forward(seq).backward(g_seq); }, 1, 3);
  std::printf("%-40s %9.1f ms\n", "ember LSTM 2 x 256, T 64, batch 32", t_lstm * 1e3);
  rows.emplace_back("LSTM 2 x 256, T 64, batch 32", t_lstm);
  compare_with_torch(python, R"(
lstm = torch.nn.LSTM(256, 256, num_layers=2)
seq = torch.randn(64, 32, 256); g_seq = torch.randn(64, 32, 256)
x = torch.randn(16, 64, 32, 32, requires_grad=True)
w = torch.randn(64, requires_grad=True); b = torch.randn(64, requires_grad=True)
w_rms = torch.randn(32, requires_grad=True)
g_up = torch.randn(16, 64, 64, 64); g = torch.randn(16, 64, 32, 32)
seq_x = torch.randn(16, 64, 1024, requires_grad=True); seq_g = torch.randn(16, 64, 1024)
seq_w = (torch.randn(64, 64, 3) * 0.1).requires_grad_()
def rms_norm(t, v):  # PyTorch 1.13 has no rms_norm: the same composite
    return t * torch.rsqrt(t.square().mean(-1, keepdim=True) + torch.finfo(t.dtype).eps) * v
print(best(lambda: F.interpolate(x, scale_factor=2.0, mode="bilinear").backward(g_up)),
      best(lambda: F.interpolate(x, scale_factor=2.0).backward(g_up)),
      best(lambda: F.group_norm(x, 32, w, b).backward(g)),
      best(lambda: rms_norm(x, w_rms).backward(g)),
      best(lambda: F.conv1d(seq_x, seq_w, None, 1, 1).backward(seq_g)),
      best(lambda: lstm(seq)[0].backward(g_seq)))
)",
                     rows);
}

// ---- 5. double backward ----
// WGAN-GP's gradient penalty on a small conv critic: d critic / d input with create_graph, then
// backward through it to the weights. Beside it the plain forward + backward of the same critic,
// to show what the second pass costs; PyTorch runs both on the same thread count.
void bench_double_backward(const std::string& python) {
  std::printf("\n== 5. double backward: WGAN-GP gradient penalty, conv critic on x [32,3,32,32] ==\n");
  Tensor w1 = (randn({64, 3, 4, 4}) * 0.1).requires_grad_(),
         w2 = (randn({128, 64, 4, 4}) * 0.05).requires_grad_();
  Tensor w3 = (randn({1, 128 * 8 * 8}) * 0.01).requires_grad_();
  Tensor x = randn({32, 3, 32, 32}).requires_grad_();
  auto critic = [&](const Tensor& in) {
    Tensor h = leaky_relu(conv2d(in, w1, {}, {2, 2}, {1, 1}), 0.2);
    h = leaky_relu(conv2d(h, w2, {}, {2, 2}, {1, 1}), 0.2);
    return linear(h.flatten(1), w3);
  };
  auto plain = [&] { critic(x).sum().backward(); };
  auto penalty = [&] {
    Tensor gx = autograd::grad({critic(x).sum()}, {x}, {}, {}, /*create_graph=*/true)[0];
    square(sqrt(square(gx.flatten(1)).sum({1})) - 1.0).mean().backward();
  };
  const double t_plain = best_per_call(plain, 1, 5), t_penalty = best_per_call(penalty, 1, 5);
  std::printf("%-40s %9.1f ms\n", "ember critic forward + backward", t_plain * 1e3);
  std::printf("%-40s %9.1f ms  (%.2fx the plain step)\n", "ember gradient-penalty step", t_penalty * 1e3,
              t_penalty / t_plain);
  compare_with_torch(python, R"(
w1 = (torch.randn(64, 3, 4, 4) * 0.1).requires_grad_(); w2 = (torch.randn(128, 64, 4, 4) * 0.05).requires_grad_()
w3 = (torch.randn(1, 128 * 8 * 8) * 0.01).requires_grad_(); x = torch.randn(32, 3, 32, 32, requires_grad=True)
def critic(i):
    h = F.leaky_relu(F.conv2d(i, w1, stride=2, padding=1), 0.2)
    h = F.leaky_relu(F.conv2d(h, w2, stride=2, padding=1), 0.2)
    return F.linear(h.flatten(1), w3)
def plain():
    critic(x).sum().backward()
def penalty():
    gx, = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    ((gx.flatten(1).norm(2, dim=1) - 1) ** 2).mean().backward()
print(best(plain), best(penalty))
)",
                     {{"critic forward + backward", t_plain}, {"gradient-penalty step", t_penalty}});
}

}  // namespace

int main(int argc, char** argv) {
  auto t0 = Clock::now();
  manual_seed(0);
  const std::string python = find_torch_python();
  std::printf("ember bench_core: %d threads; %s; BLAS kernels: %s; PyTorch %s\n", get_num_threads(),
              openblas_get_config(), blas_core_name().c_str(),
              python.empty() ? "not available" : python.c_str());
  if (std::ifstream load("/proc/loadavg"); load) {
    double one_minute = 0;
    load >> one_minute;
    std::printf("machine load (1-minute average): %.1f on %d hardware threads%s\n", one_minute,
                omp_get_num_procs(), one_minute > omp_get_num_procs() ? ": expect noisy wall times" : "");
  }
  bench_matmul();
  bench_overhead(python);
  bench_elementwise();
  bench_conv(python);
  bench_conv_transpose(python);
  bench_composite_layers(python);
  bench_double_backward(python);
  std::printf("\ntotal %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
  return 0;
}
