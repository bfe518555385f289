#pragma once
// parallel_for: split [begin, end) across ember's OpenMP threads in contiguous chunks of at
// least `grain` items. Runs inline when the range is small or we are already inside a parallel
// region (so nested calls and BLAS inside a region stay single-threaded).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>

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
  int64_t want = std::min<int64_t>(threads, (n + grain - 1) / grain);
  std::exception_ptr error;
#pragma omp parallel num_threads(static_cast<int>(want))
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

}  // namespace ember
