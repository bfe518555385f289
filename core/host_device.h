#pragma once
// EMBER_HD marks a small function that both the C++ code and the CUDA kernels call: host and
// device under nvcc, a plain inline function elsewhere (so the header needs no CUDA).
#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__ __forceinline__
#else
#define EMBER_HD inline
#endif
