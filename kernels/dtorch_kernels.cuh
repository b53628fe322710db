// Shared by every kernel source in kernels/: the qualifiers that let one file serve two compilers.
//
// Each kernel keeps its arithmetic in small DT_HD functions (per element or per row) and its CUDA index loop
// in a thin `extern "C" __global__` function guarded by `#ifdef __CUDACC__`. NVRTC (and nvcc) define
// __CUDACC__, so they see both; the host C++ compiler sees only the arithmetic, which the tests compile with
// g++ and compare with dtorch's NumPy reference on random and edge-case inputs (NaN, inf, zero steps).
#pragma once

#if defined(__CUDACC__)
#define DT_HD __host__ __device__ __forceinline__
#define DT_INFINITY __int_as_float(0x7f800000)  // NVRTC has no <math.h>, so no INFINITY macro
#else
#include <math.h>
#define DT_HD static inline
#define DT_INFINITY INFINITY
#endif
