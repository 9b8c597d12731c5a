#pragma once
// The one include of every iris .cu kernel source. With nvcc it is CUDA; with
// g++ it is the SIMT emulator (kernels/emu/README.md). Kernels written in the
// subset below build both ways:
//   IRIS_LAUNCH(kernel, grid, block, shared_bytes, stream, args...)  -- never <<<>>>
//   IRIS_SHARED(float, tile, [32][33]);   IRIS_DYNAMIC_SHARED(float, smem);
//   iris::smem_ptr<T> / iris::ptr_cast<U>(p) for pointers into shared memory
//   _sync warp intrinsics with explicit masks; iris::ptx wrappers for inline PTX
//   IRIS_DEVICE_CHECK(cond, "what") instead of assert
//   namespace iris::IRIS_KERNEL_NS { ... } so both builds can link into one binary
#include <cstdint>

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "kernels/cuda/check.h"
#include "kernels/cuda/launch_stream.h"

#define IRIS_EMU 0
#define IRIS_KERNEL_NS cuda

namespace iris {
using stream_t = cudaStream_t;
template <class T>
using smem_ptr = T*;
template <class U, class T>
__host__ __device__ __forceinline__ auto ptr_cast(T* p) {
  if constexpr (std::is_const_v<T>)
    return reinterpret_cast<const U*>(p);
  else
    return reinterpret_cast<U*>(p);
}
}  // namespace iris

// Warp shuffles of trivially copyable structs, one 32-bit word at a time
// (CUDA's own overloads keep the built-in types).
#define IRIS_STRUCT_SHUFFLE(name, argtype)                                                     \
  template <class T>                                                                           \
  requires(std::is_class_v<T> && std::is_trivially_copyable_v<T>) __device__ __forceinline__ T \
  name(unsigned mask, T var, argtype arg, int width = warpSize) {                              \
    static_assert(sizeof(T) % 4 == 0, "shuffled structs must be a multiple of 4 bytes");       \
    unsigned w[sizeof(T) / 4];                                                                 \
    __builtin_memcpy(w, &var, sizeof(T));                                                      \
    for (unsigned i = 0; i < sizeof(T) / 4; ++i) w[i] = name(mask, w[i], arg, width);          \
    T out;                                                                                     \
    __builtin_memcpy(&out, w, sizeof(T));                                                      \
    return out;                                                                                \
  }
IRIS_STRUCT_SHUFFLE(__shfl_sync, int)
IRIS_STRUCT_SHUFFLE(__shfl_up_sync, unsigned int)
IRIS_STRUCT_SHUFFLE(__shfl_down_sync, unsigned int)
IRIS_STRUCT_SHUFFLE(__shfl_xor_sync, int)
#undef IRIS_STRUCT_SHUFFLE

#define IRIS_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)     \
  do {                                                                  \
    kernel<<<(grid), (block), (shared_bytes),                           \
             ::iris::cuda::launch_stream(stream)>>>(__VA_ARGS__);       \
    IRIS_CUDA_CHECK(cudaGetLastError());                                \
  } while (0)
#define IRIS_SHARED(T, name, ...) __shared__ __align__(16) T name __VA_ARGS__
#define IRIS_DYNAMIC_SHARED(T, name)                                  \
  extern __shared__ __align__(16) unsigned char iris_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(iris_dynamic_smem_)
#define IRIS_DEVICE_CHECK(cond, what) \
  do {                                \
    if (!(cond)) __trap();            \
  } while (0)

#else  // g++: the emulator

#if defined(__CUDA_RUNTIME_H__)
#error "kernel sources built for the emulator must not include cuda_runtime.h"
#endif

#include <string>

#include "kernels/emu/builtins.h"
#include "kernels/emu/cuda_types.h"
#include "kernels/emu/intrinsics.h"
#include "kernels/emu/runtime.h"
#include "kernels/emu/shared.h"

#define IRIS_EMU 1
#define IRIS_KERNEL_NS cuda_emu

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

namespace iris {
using stream_t = emu::Stream;
}

#define IRIS_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)     \
  ::iris::emu::launch(#kernel, kernel, (grid), (block), (shared_bytes), \
                      (stream)__VA_OPT__(, ) __VA_ARGS__)
#define IRIS_DEVICE_CHECK(cond, what)                                                              \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::iris::emu::detail::fail_in_kernel(std::string("IRIS_DEVICE_CHECK(" #cond ") failed at ") + \
                                          __FILE__ + ":" + std::to_string(__LINE__) + ": " +       \
                                          (what));                                                 \
  } while (0)

#endif

#include "kernels/emu/ptx.h"
