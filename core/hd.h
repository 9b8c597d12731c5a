#pragma once
// IRIS_HD marks functions that both backends compile: host and device under nvcc,
// plain inline functions in C++ (the CPU backend and the SIMT emulator).
#if defined(__CUDACC__)
#define IRIS_HD __host__ __device__ __forceinline__
#else
#define IRIS_HD inline
#endif
