#pragma once
// The stream of an IRIS_LAUNCH on a real GPU: the one the kernel source names, or, for
// nullptr, this host thread's current stream of the current device (core/stream.h).
#include <cuda_runtime.h>

namespace iris::cuda {

cudaStream_t launch_stream(cudaStream_t requested);

}  // namespace iris::cuda
