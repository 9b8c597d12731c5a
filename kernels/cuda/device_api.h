#pragma once
// What the CUDA backend needs from a device, in both builds of a .cu source:
// the CUDA runtime with nvcc, the SIMT emulator's heap and copies with g++.
#include <cstddef>

namespace iris::IRIS_KERNEL_NS::device {

int count();  // visible devices (the emulator shows one)
void* malloc(size_t bytes, int device);  // nullptr when out of memory
void free(void* p, int device);
void copy_to_host(void* dst, const void* src, size_t n, int device);
void copy_from_host(void* dst, const void* src, size_t n, int device);
void copy_within(void* dst, const void* src, size_t n, int device);
void synchronize(int device);
const char* name();  // "cuda" or "cuda (emulated)", for messages

}  // namespace iris::IRIS_KERNEL_NS::device
