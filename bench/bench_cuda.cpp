// GPU benchmarks for the CUDA backend, each measured against a same-run reference:
//   * matmul 4096^3 float32 through ember vs calling cuBLAS directly (goal: >= 97% of its speed);
//   * elementwise add of 64M float32 in GB/s vs the device's copy bandwidth (cudaMemcpy
//     device-to-device; goal: >= 80%);
//   * per-op launch overhead: a + b on 1024-element tensors, microseconds per op;
//   * one training step (forward, backward, optimizer step) of the two Fashion-MNIST models of
//     bench_train on the GPU: MLP 784-256-256-10 (batch 128, SGD momentum) and the CNN (conv32,
//     conv64, pool, fc128; batch 64, Adam).
//   * attention (no goal, for the record): nn::MultiheadAttention forward + backward, causal
//     self-attention, batch 8, length 1024, embed 512, 8 heads, float32; and the fused
//     masked_softmax kernel alone in GB/s (to set against copy_gbs).
// scripts/gpu_check.sh measures PyTorch's launch overhead, training steps and attention step the
// same way and compares (goal: ember's training step <= 1.0x PyTorch's).
// Prints one "RESULT <name> <value>" line per number; scripts/gpu_check.sh collects them into its
// summary table. Without a GPU it says so and exits 0.
//
// Timing: ember queues its work on its own stream, so each measurement is host wall-clock time
// around N back-to-back ops followed by ember::cuda::synchronize() (the direct cuBLAS calls run on
// their own stream and are timed the same way), after warm-up runs that also fill the caching
// allocator. The best of several repetitions is reported.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <ember/ember.h>
#include <ember/losses.h>
#include <ember/nn.h>
#include <ember/optim.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include "bench_util.h"

namespace {

#define CHECK_CUDA(x)                                                                         \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) throw ember::Error(std::string(#x ": ") + cudaGetErrorString(e_)); \
  } while (0)
#define CHECK_CUBLAS(x)                                                                                    \
  do {                                                                                                     \
    cublasStatus_t s_ = (x);                                                                               \
    if (s_ != CUBLAS_STATUS_SUCCESS) throw ember::Error(std::string(#x ": ") + cublasGetStatusString(s_)); \
  } while (0)

// Seconds per call of `body`: best of `reps` timings of `iters` calls each; `sync` waits for the GPU
// (bench_util.h's best_per_call, in this file's argument order).
double seconds_per_call(const std::function<void()>& body, const std::function<void()>& sync, int iters,
                        int reps, int warmup = 3) {
  return ember::bench::best_per_call(body, iters, reps, sync, warmup);
}

using ember::bench::print_result;

void bench_matmul() {
  const int n = 4096;
  ember::manual_seed(0);
  ember::Tensor a = ember::randn({n, n}, ember::Device::cuda()),
                b = ember::randn({n, n}, ember::Device::cuda());
  const double flops = 2.0 * n * n * static_cast<double>(n);
  auto sync = [] { ember::cuda::synchronize(); };
  const double t_ember = seconds_per_call([&] { ember::Tensor c = ember::matmul(a, b); }, sync, 20, 3);

  // The same product through cuBLAS directly: row-major C = A B is column-major C^T = B^T A^T.
  cublasHandle_t h;
  cudaStream_t s;
  CHECK_CUBLAS(cublasCreate(&h));
  CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CHECK_CUBLAS(cublasSetStream(h, s));
  float* c = nullptr;
  CHECK_CUDA(cudaMalloc(&c, sizeof(float) * n * n));
  const float alpha = 1.0f, beta = 0.0f;
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  auto direct = [&] {
    CHECK_CUBLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, pb, n, pa, n, &beta, c, n));
  };
  const double t_cublas = seconds_per_call(
      direct, [&] { CHECK_CUDA(cudaStreamSynchronize(s)); }, 20, 3);
  CHECK_CUDA(cudaFree(c));
  CHECK_CUBLAS(cublasDestroy(h));
  CHECK_CUDA(cudaStreamDestroy(s));

  print_result("matmul_ember_tflops", flops / t_ember / 1e12);
  print_result("matmul_cublas_tflops", flops / t_cublas / 1e12);
  print_result("matmul_ratio", t_cublas / t_ember);
}

void bench_add() {
  const int64_t n = int64_t{64} << 20;  // 64M float32 = 256 MiB per tensor
  ember::Tensor a = ember::rand({n}, ember::Device::cuda()), b = ember::rand({n}, ember::Device::cuda());
  const double bytes = static_cast<double>(n) * sizeof(float);
  auto sync = [] { ember::cuda::synchronize(); };
  const double t_add = seconds_per_call([&] { ember::Tensor c = a + b; }, sync, 20, 3);

  float* dst = nullptr;
  CHECK_CUDA(cudaMalloc(&dst, static_cast<size_t>(bytes)));
  const void* src = a.raw_data();
  const double t_copy = seconds_per_call(
      [&] {
        CHECK_CUDA(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice, nullptr));
      },
      [] { CHECK_CUDA(cudaDeviceSynchronize()); }, 20, 3);
  CHECK_CUDA(cudaFree(dst));

  const double add_gbs = 3 * bytes / t_add / 1e9,
               copy_gbs = 2 * bytes / t_copy / 1e9;  // bytes read + written
  print_result("add_gbs", add_gbs);
  print_result("copy_gbs", copy_gbs);
  print_result("add_ratio", add_gbs / copy_gbs);
}

void bench_launch() {
  ember::Tensor a = ember::rand({1024}, ember::Device::cuda()),
                b = ember::rand({1024}, ember::Device::cuda());
  const double t =
      seconds_per_call([&] { ember::Tensor c = a + b; }, [] { ember::cuda::synchronize(); }, 10000, 5, 100);
  print_result("launch_us_ember", t * 1e6);
}

// Seconds per training step of a model on the GPU (best of 5 rounds of 20 steps after warm-up).
double train_step_seconds(const std::shared_ptr<ember::nn::Sequential>& model, ember::optim::Optimizer& opt,
                          const ember::Tensor& x, const ember::Tensor& y) {
  auto step = [&] {
    opt.zero_grad();
    ember::Tensor loss = ember::losses::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
  };
  return seconds_per_call(
      step, [] { ember::cuda::synchronize(); }, 20, 5, 5);
}

void bench_training() {
  using namespace ember;
  const Device gpu = Device::cuda();
  manual_seed(0);
  {
    auto mlp =
        std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(784, 256), std::make_shared<nn::ReLU>(),
                                         std::make_shared<nn::Linear>(256, 256), std::make_shared<nn::ReLU>(),
                                         std::make_shared<nn::Linear>(256, 10));
    mlp->to(gpu);
    optim::SGDOptions o;
    o.lr = 0.01;
    o.momentum = 0.9;
    optim::SGD sgd(mlp->parameters(), o);
    Tensor x = randn({128, 784}, gpu), y = randint(0, 10, {128}, TensorOptions(kInt64).device(gpu));
    print_result("train_mlp_ms_ember", train_step_seconds(mlp, sgd, x, y) * 1e3);
  }
  {
    auto cnn = std::make_shared<nn::Sequential>(
        std::make_shared<nn::Conv2d>(1, 32, 3), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Conv2d>(32, 64, 3), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
        std::make_shared<nn::Linear>(9216, 128), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Linear>(128, 10));
    cnn->to(gpu);
    optim::Adam adam(cnn->parameters(), {});
    Tensor x = randn({64, 1, 28, 28}, gpu), y = randint(0, 10, {64}, TensorOptions(kInt64).device(gpu));
    print_result("train_cnn_ms_ember", train_step_seconds(cnn, adam, x, y) * 1e3);
  }
}

// Causal self-attention, forward + backward of sum(out), as gpu_check.sh's PyTorch reference.
void bench_attention() {
  using namespace ember;
  const Device gpu = Device::cuda();
  const int64_t batch = 8, len = 1024, embed = 512, heads = 8;
  manual_seed(0);
  nn::MultiheadAttention mha(embed, heads, 0.0, true, /*batch_first=*/true);
  mha.to(gpu);
  Tensor x = randn({batch, len, embed}, gpu).requires_grad_();
  auto step = [&] {
    mha.zero_grad();
    x.set_grad(Tensor());
    mha.forward(x, x, x, {}, {}, /*is_causal=*/true).sum().backward();
  };
  auto sync = [] { cuda::synchronize(); };
  print_result("attn_ms_ember", seconds_per_call(step, sync, 10, 3, 3) * 1e3);

  // The fused softmax alone on [B, H, L, L] scores, without the causal mask (which would skip
  // half the reads): every score read once and every weight written once.
  Tensor scores = randn({batch, heads, len, len}, gpu);
  const double t =
      seconds_per_call([&] { Tensor y = nn::functional::masked_softmax(scores, 0.125, false); }, sync, 20, 3);
  print_result("masked_softmax_gbs", 2.0 * static_cast<double>(scores.numel()) * sizeof(float) / t / 1e9);
}

// group_norm forward + backward on a feature map of 134 MB (bandwidth-bound), as gpu_check.sh's
// PyTorch reference.
void bench_group_norm() {
  using namespace ember;
  const Device gpu = Device::cuda();
  manual_seed(0);
  Tensor x = randn({32, 256, 64, 64}, gpu).requires_grad_();
  Tensor w = randn({256}, gpu).requires_grad_(), b = randn({256}, gpu).requires_grad_();
  Tensor g = randn({32, 256, 64, 64}, gpu);
  auto step = [&] {
    x.set_grad(Tensor());
    w.set_grad(Tensor());
    b.set_grad(Tensor());
    nn::functional::group_norm(x, 32, w, b).backward(g);
  };
  print_result("group_norm_ms_ember", seconds_per_call(
                                          step, [] { cuda::synchronize(); }, 10, 3, 3) *
                                          1e3);
}

// Bilinear 2x upsampling forward + backward, [32, 64, 128, 128] -> [32, 64, 256, 256], as
// gpu_check.sh's PyTorch reference.
void bench_upsample() {
  using namespace ember;
  namespace F = nn::functional;
  const Device gpu = Device::cuda();
  manual_seed(0);
  Tensor x = randn({32, 64, 128, 128}, gpu).requires_grad_();
  Tensor g = randn({32, 64, 256, 256}, gpu);
  auto step = [&] {
    x.set_grad(Tensor());
    F::interpolate(x, {.scale_factor = {2.0}, .mode = F::InterpolateMode::bilinear}).backward(g);
  };
  print_result("bilinear_ms_ember", seconds_per_call(
                                        step, [] { cuda::synchronize(); }, 10, 3, 3) *
                                        1e3);
}

}  // namespace

int main() {
  if (!ember::cuda::is_available()) {
    std::printf("bench_cuda: no CUDA device available; nothing to measure\n");
    return 0;
  }
  try {
    bench_matmul();
    bench_add();
    bench_launch();
    bench_training();
    bench_attention();
    bench_group_norm();
    bench_upsample();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
