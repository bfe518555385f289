#pragma once
// One pool of threads (OpenMP) for every large CPU loop; OpenBLAS is the OpenMP build and
// shares it, and runs single-threaded inside ember's own parallel regions.
#include <string>

namespace ember {
void set_num_threads(int n);
int get_num_threads();
// The kernel set OpenBLAS runs ("SkylakeX", "Haswell", ...; core/blas_core.cpp), for benchmarks to
// print beside their numbers.
std::string blas_core_name();
}  // namespace ember
