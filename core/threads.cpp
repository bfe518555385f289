#include <cblas.h>
#include <omp.h>

#include "ember/error.h"
#include "ember/threads.h"

namespace ember {
namespace {
int& thread_count() {
  static int n = omp_get_max_threads();
  return n;
}
}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail("set_num_threads: expected a positive count, got {}", n);
  thread_count() = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}
int get_num_threads() { return thread_count(); }
}  // namespace ember
