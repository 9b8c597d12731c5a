#include <sstream>

#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace iris::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

std::string device_description(int index) {
  IRIS_CHECK(index >= 0 && index < device_count(), "cuda: no device ", index, " (",
             device_count(), " visible)");
  cudaDeviceProp prop{};
  IRIS_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  std::ostringstream os;
  os << prop.name << " (sm_" << prop.major << prop.minor << ", "
     << (prop.totalGlobalMem >> 30) << " GiB)";
  return os.str();
}

}  // namespace iris::cuda
