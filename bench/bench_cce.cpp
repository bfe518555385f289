// bench_cce: Cut Cross-Entropy against the materialised baseline, forward + backward, in one run.
//
//   baseline: logits = E C^T (float32, N x V, materialised) -> cross_entropy -> backward
//   cce:      cut_cross_entropy(E, C, target) -> backward (no N x V buffer anywhere)
//
// Usage: bench_cce [N D V rounds threads alpha noise]   (default 4096 512 65536 2, ember's
// default thread count, 4 3). The goals: CCE's extra peak memory <= 2% of the baseline's,
// and time <= 1.3x.
//
// Memory: ember::cpu::memory_stats() counts every tensor allocation (CCE's scratch tiles
// included). "Extra" is the peak during forward + backward above what was allocated before,
// minus the gradients dE (N x D) and dC (V x D) that every method must return; the raw peak is
// printed too. Time: the two contenders alternate (A, B, A, B, ...) and the best time of each is
// kept, so background load on a shared machine hits both alike. Both wall time and process CPU
// time are reported: with one thread, CPU time is immune to other processes on the machine.
//
// Two logit regimes:
//  * flat: logits with std 1 and uniform targets. The softmax is spread over the whole vocabulary,
//    so gradient filtering can skip nothing: the worst case for CCE, whose backward recomputes the
//    logits (8 N V D flops in all against the baseline's 6 N V D).
//  * lm: a language-model-like distribution. Column 0 of E is 1 and column 0 of C holds a Zipf
//    log-prior -alpha log(rank), so frequent tokens are likely in every row and rare ones never;
//    the rest of the logit is context noise (std `noise`); targets are drawn from the same Zipf
//    prior. Most vocabulary tiles are then negligible and filtering skips them, as on a trained
//    model (the backward prints the fraction of tiles it kept).
#include <ember/ember.h>
#include <ember/losses/cce.h>
#include <ember/losses/standard.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <utility>

#include "../losses/cpu/cce_config.h"  // the backward's tile counters (kept / visited)

using namespace ember;

namespace {

using Clock = std::chrono::steady_clock;

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Seconds {
  double wall = 1e30, cpu = 1e30;
};

// Runs fn once; keeps the smaller wall and CPU times in `best`.
void time_into(Seconds& best, const std::function<void()>& fn) {
  const double c0 = process_cpu_seconds();
  const auto t0 = Clock::now();
  fn();
  best.wall = std::min(best.wall, std::chrono::duration<double>(Clock::now() - t0).count());
  best.cpu = std::min(best.cpu, process_cpu_seconds() - c0);
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// Peak bytes allocated while fn runs, above what was allocated when it started.
int64_t peak_extra_of(const std::function<void()>& fn) {
  cpu::reset_peak_memory_stats();
  const int64_t before = cpu::memory_stats().current_bytes;
  fn();
  return cpu::memory_stats().peak_bytes - before;
}

struct Problem {
  const char* name;
  Tensor E, C, target;
};

Problem flat(int64_t N, int64_t D, int64_t V) {
  // Each logit is a sum of D products; this scale gives it std 1.
  const double scale = std::pow(static_cast<double>(D), -0.25);
  return {"flat", randn({N, D}) * scale, randn({V, D}) * scale, randint(0, V, {N})};
}

Problem lm_like(int64_t N, int64_t D, int64_t V, double alpha, double noise_std) {
  const double scale = std::sqrt(noise_std / std::sqrt(static_cast<double>(D - 1)));
  Tensor E = randn({N, D}) * scale, C = randn({V, D}) * scale;
  E.narrow(1, 0, 1).fill_(1.0);
  C.narrow(1, 0, 1).copy_((log(arange(1.0, static_cast<double>(V) + 1.0)) * -alpha).reshape({V, 1}));
  std::vector<double> weight(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) weight[j] = std::pow(static_cast<double>(j + 1), -alpha);
  std::mt19937_64 gen(1);
  std::discrete_distribution<int64_t> zipf(weight.begin(), weight.end());
  std::vector<int64_t> t(static_cast<size_t>(N));
  for (int64_t& x : t) x = zipf(gen);
  return {"lm", E, C, tensor<int64_t>(t, {N})};
}

void compare(Problem p, int rounds) {
  const int64_t N = p.E.size(0), D = p.E.size(1), V = p.C.size(0);
  Tensor E = p.E.requires_grad_(), C = p.C.requires_grad_();
  double loss_base = 0, loss_cce = 0;
  auto clear = [&] {
    E.set_grad(Tensor());
    C.set_grad(Tensor());
  };
  auto baseline = [&] {
    Tensor loss = losses::cross_entropy(matmul(E, C.t()), p.target);
    loss.backward();
    loss_base = loss.item<double>();
  };
  auto cce = [&] {
    Tensor loss = losses::cut_cross_entropy(E, C, p.target);
    loss.backward();
    loss_cce = loss.item<double>();
  };
  // Alternate A, B, A, B, ...; every round also measures peak memory.
  Seconds t_base, t_cce;
  int64_t mem_base = 0, mem_cce = 0;
  for (int r = 0; r < rounds; ++r) {
    clear();
    time_into(t_base, [&] { mem_base = std::max(mem_base, peak_extra_of(baseline)); });
    clear();
    time_into(t_cce, [&] { mem_cce = std::max(mem_cce, peak_extra_of(cce)); });
  }
  const auto stats = cpu::cce::last_backward_stats();
  const int64_t grad_bytes = (N + V) * D * 4;
  const double extra_base = mib(mem_base - grad_bytes), extra_cce = mib(mem_cce - grad_bytes);
  std::printf(
      "\n%s: loss baseline %.6f, cce %.6f; backward tiles kept %lld of %lld (%.1f%%), computed %lld "
      "(%.1f%%; the signal mask dropped the rest unseen)\n",
      p.name, loss_base, loss_cce, static_cast<long long>(stats.kept), static_cast<long long>(stats.tiles),
      100.0 * static_cast<double>(stats.kept) / static_cast<double>(stats.tiles),
      static_cast<long long>(stats.computed),
      100.0 * static_cast<double>(stats.computed) / static_cast<double>(stats.tiles));
  std::printf("  peak above inputs:  baseline %9.1f MiB  cce %9.1f MiB  (each includes dE + dC = %.1f MiB)\n",
              mib(mem_base), mib(mem_cce), mib(grad_bytes));
  std::printf("  extra beyond dE+dC: baseline %9.1f MiB  cce %9.2f MiB  -> %.2f%%  (goal <= 2%%)\n",
              extra_base, extra_cce, 100.0 * extra_cce / extra_base);
  std::printf("  forward + backward, wall: baseline %8.3f s  cce %8.3f s  -> %.2fx  (goal <= 1.3x)\n",
              t_base.wall, t_cce.wall, t_cce.wall / t_base.wall);
  std::printf("  forward + backward, CPU:  baseline %8.3f s  cce %8.3f s  -> %.2fx\n", t_base.cpu, t_cce.cpu,
              t_cce.cpu / t_base.cpu);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t N = argc > 1 ? std::atoll(argv[1]) : 4096;
  const int64_t D = argc > 2 ? std::atoll(argv[2]) : 512;
  const int64_t V = argc > 3 ? std::atoll(argv[3]) : 65536;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 2;
  if (argc > 5) set_num_threads(std::atoi(argv[5]));
  const double alpha = argc > 6 ? std::atof(argv[6]) : 4.0, noise = argc > 7 ? std::atof(argv[7]) : 3.0;
  std::printf("bench_cce: N = %lld, D = %lld, V = %lld, float32, %d threads, best of %d rounds\n",
              static_cast<long long>(N), static_cast<long long>(D), static_cast<long long>(V),
              get_num_threads(), rounds);
  std::printf("BLAS kernels: %s\n", blas_core_name().c_str());
  if (std::ifstream load("/proc/loadavg"); load) {
    double one_minute = 0;
    load >> one_minute;
    std::printf("machine load (1-minute average): %.1f\n", one_minute);
  }
  std::fflush(stdout);
  manual_seed(0);
  compare(flat(N, D, V), rounds);
  compare(lm_like(N, D, V, alpha, noise), rounds);
  return 0;
}
