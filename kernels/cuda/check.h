#pragma once
// Every CUDA runtime call goes through IRIS_CUDA_CHECK: a failure becomes an
// iris::Error with the call, file:line and the runtime's error string.
#include <cuda_runtime.h>

#include "core/error.h"

#define IRIS_CUDA_CHECK(call)                                                              \
  do {                                                                                     \
    const cudaError_t iris_cuda_err = (call);                                              \
    if (iris_cuda_err != cudaSuccess)                                                      \
      IRIS_FAIL(#call, " failed at ", __FILE__, ":", __LINE__, ": ",                       \
                cudaGetErrorName(iris_cuda_err), " (", cudaGetErrorString(iris_cuda_err), \
                ")");                                                                      \
  } while (0)
