// OpenBLAS's kernels, picked again when its own choice fell back to the generic ones.
//
// A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels when it loads, from the CPU's model number.
// A model newer than the library knows gets the generic x86-64 fallback, "Prescott" (SSE3): Debian
// 12's OpenBLAS 0.3.21 does this on 5th-generation Xeons (family 6, model 207), where SGEMM then runs
// at about 40% of the speed of the AVX-512 kernels the CPU can run (32 vs 80 GFLOP/s, one thread,
// 1024^3). OpenBLAS has chosen before ember loads (a library's initialisers run after those of the
// libraries it depends on), so this runs its selection again with OPENBLAS_CORETYPE set from what
// the CPU and the OS support: SkylakeX with AVX-512 (F, CD, BW, DQ, VL), Haswell with AVX2 and FMA.
// A real Prescott has neither, so only a fallback is replaced, and a user's own OPENBLAS_CORETYPE
// is left as it is. Builds of OpenBLAS without runtime selection lack the two functions (they are
// weak here) and keep what they were compiled for.
#include <cblas.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "ember/threads.h"

extern "C" void gotoblas_dynamic_init(void) __attribute__((weak));
extern "C" void gotoblas_dynamic_quit(void) __attribute__((weak));

namespace ember {
namespace {

const char* better_core() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();  // these checks include the OS's consent (XSAVE) for the wide registers
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

struct ReplaceFallbackBlasCore {
  ReplaceFallbackBlasCore() {
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || std::getenv("OPENBLAS_CORETYPE")) return;
    const char* chosen = openblas_get_corename();
    if (!chosen || (std::strcmp(chosen, "Prescott") != 0 && std::strcmp(chosen, "Unknown") != 0)) return;
    const char* core = better_core();
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 1);  // read by gotoblas_dynamic_init, and only there
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
  }
};
const ReplaceFallbackBlasCore replace_fallback_blas_core;

}  // namespace

std::string blas_core_name() {
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
}

}  // namespace ember
