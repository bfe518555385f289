// bench_losses_a: PLD forward + backward against cross_entropy forward + backward on the same
// logits (N = 256, C = 1000, float32), in the same run. The goal: PLD within 2x of
// cross_entropy's time. Also reports OPL forward + backward at B = 256, D = 512.
// Two measurements: all threads in wall time, and one thread in that thread's CPU time, which
// is immune to other processes competing for the cores (the figure to quote on a busy machine).
//
// The two contenders run alternately (A, B, A, B, ...) and the best time of each is kept, so
// background load on a shared machine hits both alike. Threads: ember's default.
#include <ember/ember.h>
#include <ember/losses/opl.h>
#include <ember/losses/pld.h>
#include <ember/losses/standard.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <utility>

#include "bench_util.h"

using namespace ember;
using ember::bench::cpu_seconds_of;
using ember::bench::seconds_of;

namespace {

// Best seconds per call of a and of b, alternating for about `budget` seconds after a warm-up.
std::pair<double, double> race(const std::function<void()>& a, const std::function<void()>& b, double budget,
                               bool cpu_time = false) {
  a();
  b();
  auto time = cpu_time ? cpu_seconds_of : seconds_of;
  double best_a = 1e30, best_b = 1e30, spent = 0;
  for (int round = 0; round < 5 || spent < budget; ++round) {
    double ta = time(a), tb = time(b);
    best_a = std::min(best_a, ta);
    best_b = std::min(best_b, tb);
    spent += ta + tb;
  }
  return {best_a, best_b};
}

}  // namespace

int main() {
  const int64_t N = 256, C = 1000;
  manual_seed(0);
  Tensor logits = randn({N, C}) * 3.0;
  Tensor teacher = randn({N, C}) * 3.0;
  Tensor target = randint(0, C, {N});
  Tensor student = logits.detach().clone().requires_grad_(true);

  auto run_ce = [&] {
    student.set_grad(Tensor());
    losses::cross_entropy(student, target).backward();
  };
  auto run_pld = [&] {
    student.set_grad(Tensor());
    losses::pld(student, teacher, target).backward();
  };
  // 1. all threads, wall time; 2. one thread, that thread's CPU time (immune to machine load)
  const int threads = get_num_threads();
  for (bool single : {false, true}) {
    set_num_threads(single ? 1 : threads);
    auto [t_pld, t_ce] = race(run_pld, run_ce, 3.0, single);
    double ratio = t_pld / t_ce;
    std::printf("%s\n", single ? "1 thread, thread CPU time:"
                               : fmt::format("{} threads, wall time:", threads).c_str());
    std::printf("  cross_entropy fwd+bwd  N=%lld C=%lld float32: %8.3f ms\n", static_cast<long long>(N),
                static_cast<long long>(C), 1e3 * t_ce);
    std::printf("  pld           fwd+bwd  N=%lld C=%lld float32: %8.3f ms\n", static_cast<long long>(N),
                static_cast<long long>(C), 1e3 * t_pld);
    std::printf("  pld / cross_entropy time: %.2fx (goal <= 2x: %s)\n", ratio,
                ratio <= 2.0 ? "met" : "MISSED");
  }
  set_num_threads(threads);

  // OPL: one thread, thread CPU time (its two GEMMs are small; BLAS threads only add noise here)
  const int64_t B = 256, D = 512;
  Tensor features = randn({B, D}).relu().requires_grad_(true);
  Tensor labels = randint(0, 100, {B});
  auto run_opl = [&] {
    features.set_grad(Tensor());
    losses::opl(features, labels).backward();
  };
  set_num_threads(1);
  auto [t_opl, unused] = race(
      run_opl, [] {}, 1.0, true);
  (void)unused;
  set_num_threads(threads);
  std::printf("opl fwd+bwd B=%lld D=%lld float32, 1 thread, thread CPU time: %.3f ms\n",
              static_cast<long long>(B), static_cast<long long>(D), 1e3 * t_opl);
  return 0;
}
