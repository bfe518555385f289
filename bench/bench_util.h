#pragma once
// Timing and PyTorch helpers shared by the benchmarks (header-only; each bench is one program).
//
// Benchmarks compare ember with a reference measured in the same run. On a shared machine both
// contenders must see the same load, so pairs run alternately (`race`), and single-threaded
// figures use this thread's CPU time, which other processes cannot inflate.
#include <ember/threads.h>
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ember::bench {

inline double seconds_of(const std::function<void()>& fn) {
  auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds this thread has used: unlike wall time, not inflated when other processes compete
// for the cores.
inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

inline double cpu_seconds_of(const std::function<void()>& fn) {
  double t0 = thread_cpu_seconds();
  fn();
  return thread_cpu_seconds() - t0;
}

// The outcome of timing ember (a) against a reference (b).
struct Race {
  double best_a, best_b;  // best seconds per call of each
  double ratio;           // median over rounds of t_b / t_a: ember's speed relative to the reference
};

// Alternates a and b (a, b, a, b, ...) for about `budget` seconds (at least `min_rounds` rounds)
// after one warm-up call each. The two calls of a round run milliseconds apart under the same
// machine load, so the median of the per-round ratios stays meaningful on a busy machine, where
// best-of times alone are luck.
inline Race race(const std::function<void()>& a, const std::function<void()>& b, double budget,
                 int min_rounds = 5) {
  a();
  b();
  Race r{1e30, 1e30, 0};
  std::vector<double> ratios;
  double spent = 0;
  for (int round = 0; (round < min_rounds || spent < budget) && round < 20000; ++round) {
    double ta = seconds_of(a), tb = seconds_of(b);
    r.best_a = std::min(r.best_a, ta);
    r.best_b = std::min(r.best_b, tb);
    ratios.push_back(tb / ta);
    spent += ta + tb;
  }
  std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
  r.ratio = ratios[ratios.size() / 2];
  return r;
}

// Best seconds per call of `fn` repeated `inner` times per measurement, after `warmup` calls.
// `sync` ends the warm-up and each measurement: ember::cuda::synchronize for GPU work, whose calls
// only queue kernels.
inline double best_per_call(
    const std::function<void()>& fn, int inner, int rounds, const std::function<void()>& sync = [] {},
    int warmup = 1) {
  for (int i = 0; i < warmup; ++i) fn();
  sync();
  double best = 1e30;
  for (int r = 0; r < rounds; ++r)
    best = std::min(best, seconds_of([&] {
                            for (int i = 0; i < inner; ++i) fn();
                            sync();
                          }) / inner);
  return best;
}

// A `RESULT key value` line, which scripts/gpu_check.sh collects into its summary.
inline void print_result(const std::string& key, double value) {
  std::printf("RESULT %s %.6g\n", key.c_str(), value);
}

inline const char* verdict(double value, double goal, bool higher_is_better) {
  return (higher_is_better ? value >= goal : value <= goal) ? "met" : "MISSED";
}

// The Python that can import torch: $EMBER_PYTHON if set, else the first of python3 on PATH and
// the system's /usr/bin/python3 (a pyenv or venv python3 on PATH does not see Debian's
// python3-torch). Empty when none can. Debian's PyTorch calls the same OpenBLAS as ember, so the
// child processes are told to run the kernels ember runs: a new process would otherwise make
// OpenBLAS's own choice again, which core/blas_core.cpp may have replaced.
inline std::string find_torch_python() {
  if (!std::getenv("OPENBLAS_CORETYPE")) setenv("OPENBLAS_CORETYPE", ember::blas_core_name().c_str(), 1);
  std::vector<std::string> candidates = {"python3", "/usr/bin/python3"};
  if (const char* env = std::getenv("EMBER_PYTHON")) candidates.insert(candidates.begin(), env);
  for (const std::string& python : candidates)
    if (std::system(fmt::format("'{}' -c 'import torch' >/dev/null 2>&1", python).c_str()) == 0)
      return python;
  return "";
}

// Runs a Python script with `python` and returns what it printed (nothing when it fails).
inline std::optional<std::string> run_python_output(const std::string& python, const std::string& code) {
  char path[] = "/tmp/ember_bench_XXXXXX.py";
  int fd = mkstemps(path, 3);
  if (fd < 0) return std::nullopt;
  close(fd);
  std::ofstream(path) << code;
  FILE* pipe = popen(fmt::format("'{}' {} 2>/dev/null", python, path).c_str(), "r");
  std::optional<std::string> output;
  if (pipe != nullptr) {
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
    if (pclose(pipe) == 0) output = std::move(text);
  }
  std::remove(path);
  return output;
}

// Runs a Python script and returns the number it prints last (nothing when it fails).
inline std::optional<double> run_python(const std::string& python, const std::string& code) {
  std::optional<std::string> text = run_python_output(python, code);
  if (!text) return std::nullopt;
  std::optional<double> value;
  size_t begin = 0;
  while (begin < text->size()) {
    size_t end = text->find('\n', begin);
    if (end == std::string::npos) end = text->size();
    const std::string line = text->substr(begin, end - begin);
    char* stop = nullptr;
    double v = std::strtod(line.c_str(), &stop);
    if (stop != line.c_str()) value = v;
    begin = end + 1;
  }
  return value;
}

}  // namespace ember::bench
