#pragma once
// parallel_for: split [begin, end) across ember's OpenMP threads in contiguous chunks of at
// least `grain` items. Runs inline when the range is small or we are already inside a parallel
// region (so nested calls and BLAS inside a region stay single-threaded).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "ember/threads.h"

namespace ember {

inline constexpr int64_t kDefaultGrain = 32768;

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int threads = get_num_threads();
  if (n <= grain || threads <= 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  const int team = static_cast<int>(std::min<int64_t>(threads, (n + grain - 1) / grain));
  std::exception_ptr error;
#pragma omp parallel num_threads(team)
  {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    int64_t b = begin + t * chunk, e = std::min(end, b + chunk);
    if (b < e) {
      try {
        f(b, e);
      } catch (...) {
#pragma omp critical(ember_parallel_error)
        error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

// parallel_for for a sum of per-chunk results. body(b, e, partial) adds the contribution of items
// [b, e) into `partial` (n zeros to start with); the chunks' partials are then added into out[0, n)
// in chunk order. Threads finish in any order and floating-point addition is not associative, so
// adding each partial as its thread finishes would change the last bits from run to run; this way
// a given thread count always gives the same bits.
template <class T, class F>
void parallel_for_sum(int64_t begin, int64_t end, int64_t grain, T* out, size_t n, const F& body) {
  std::vector<std::pair<int64_t, std::vector<T>>> partials;
  std::mutex guard;
  parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
    std::vector<T> partial(n, T(0));
    body(b, e, partial.data());
    std::lock_guard<std::mutex> lock(guard);
    partials.emplace_back(b, std::move(partial));
  });
  std::sort(partials.begin(), partials.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  for (const auto& chunk : partials)
    for (size_t i = 0; i < n; ++i) out[i] += chunk.second[i];
}

}  // namespace ember
