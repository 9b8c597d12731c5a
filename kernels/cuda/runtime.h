#pragma once
// The CUDA runtime layer's entry points (the backend itself is built on these).
// Declared for every build; without IRIS_WITH_CUDA they report no device.
#include <string>

namespace iris::cuda {

// Number of visible devices; 0 when there is no driver or no GPU (never throws).
int device_count();
// "NVIDIA H200 (sm_90, 139 GiB)"; throws iris::Error for a bad index.
std::string device_description(int index);

}  // namespace iris::cuda
