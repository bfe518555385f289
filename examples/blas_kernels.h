#pragma once
// Makes sure OpenBLAS runs kernels made for this CPU.
//
// OpenBLAS picks its kernels once, when it is loaded, from the CPU model. A release older than the
// CPU does not know the model and falls back to its generic "Prescott" (SSE3) kernels: Debian 12's
// OpenBLAS 0.3.21 does so on Sapphire/Emerald Rapids Xeons, where every matrix product then runs
// about 4.5x slower (docs/performance.md). The environment variable OPENBLAS_CORETYPE overrides the
// choice, but only before OpenBLAS loads — so when we detect the fallback we set it and restart the
// program (execv keeps the process id, arguments and everything else). Setting OPENBLAS_CORETYPE
// yourself disables this.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

extern "C" char* openblas_get_corename(void);  // part of OpenBLAS's public API (cblas.h)

namespace examples {

inline void use_native_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::string(openblas_get_corename()) != "Prescott")
    return;
  const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                     : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                       : nullptr;
  if (core == nullptr) return;  // an old CPU: Prescott is the right choice
  std::cerr << "note: OpenBLAS does not recognise this CPU and chose its generic kernels; restarting with "
               "OPENBLAS_CORETYPE="
            << core << "\n";
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on with the slow kernels
}

}  // namespace examples
