#pragma once
// Status checks of the GPU baselines of `iris profile` (IRIS_WITH_CUDA builds only): a failed
// CUDA, cuDNN or cuBLASLt call becomes an iris::Error naming the call, the library's message
// and file:line, which the harness reports in the row.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"

#define PROFILE_CUDA(call)                                                                     \
  do {                                                                                         \
    const cudaError_t e_ = (call);                                                             \
    IRIS_CHECK(e_ == cudaSuccess, "iris profile: ", #call, ": ", cudaGetErrorString(e_), " (", \
               __FILE__, ":", __LINE__, ")");                                                  \
  } while (0)
#define PROFILE_CUDNN(call)                                                                        \
  do {                                                                                             \
    const cudnnStatus_t s_ = (call);                                                               \
    IRIS_CHECK(s_ == CUDNN_STATUS_SUCCESS, "iris profile: ", #call, ": ", cudnnGetErrorString(s_), \
               " (", __FILE__, ":", __LINE__, ")");                                                \
  } while (0)
#define PROFILE_CUBLAS(call)                                                                     \
  do {                                                                                           \
    const cublasStatus_t s_ = (call);                                                            \
    IRIS_CHECK(s_ == CUBLAS_STATUS_SUCCESS, "iris profile: ", #call, ": status ", int(s_), " (", \
               __FILE__, ":", __LINE__, ")");                                                    \
  } while (0)
