#pragma once
// CUDA's built-in variables under emulation. They are per OS thread and the
// block scheduler rewrites threadIdx whenever it switches to another emulated
// thread (a fiber never migrates between OS threads), so kernel code reads
// them exactly as on the device.
#include "kernels/emu/cuda_types.h"

inline thread_local uint3 threadIdx{};
inline thread_local uint3 blockIdx{};
inline thread_local dim3 blockDim{};
inline thread_local dim3 gridDim{};
inline constexpr int warpSize = 32;
