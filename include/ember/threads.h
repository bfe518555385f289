#pragma once
// One pool of threads (OpenMP) for every large CPU loop; OpenBLAS is the OpenMP build and
// shares it, and runs single-threaded inside ember's own parallel regions.
namespace ember {
void set_num_threads(int n);
int get_num_threads();
}  // namespace ember
