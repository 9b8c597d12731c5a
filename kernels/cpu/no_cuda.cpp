// Without the CUDA backend there is no device to report.
#ifndef IRIS_WITH_CUDA
#include "core/error.h"
#include "kernels/cuda/runtime.h"

namespace iris::cuda {

int device_count() { return 0; }

std::string device_description(int index) {
  IRIS_FAIL("cuda: no device ", index, " (iris was built without the CUDA backend)");
}

}  // namespace iris::cuda
#endif
