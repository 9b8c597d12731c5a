#pragma once
// Launch helpers shared by the pooling, batch-norm, recurrent-cell and index kernels:
// dtype dispatch, typed data pointers, grid sizing, the full warp mask. Includes
// kernels/emu/cuda_compat.h itself, so it may come first in a kernel source.
#include <algorithm>
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"
#include "kernels/emu/cuda_compat.h"

// Grid-stride loop over [0, n) in a kernel.
#define IRIS_OPS_GRID_STRIDE(i, n)                                                       \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

namespace iris::IRIS_KERNEL_NS::ops {

constexpr unsigned kFullMask = 0xffffffffu;

struct GridTraits {
  static constexpr int kThreads = 256;         // flat grid-stride kernels
  static constexpr int64_t kMaxBlocks = 8192;  // grid-stride beyond this
  static_assert(kThreads % 32 == 0 && kMaxBlocks >= 1);
};

// Blocks of kThreads for n work items (at least one, at most kMaxBlocks).
inline dim3 flat_grid(int64_t n, int64_t threads = GridTraits::kThreads) {
  const int64_t want = (n + threads - 1) / threads;
  return dim3(static_cast<unsigned>(std::clamp<int64_t>(want, 1, GridTraits::kMaxBlocks)));
}

template <class Fn>
void dispatch_float(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32:
      return fn.template operator()<float>();
    case DType::f64:
      return fn.template operator()<double>();
    default:
      IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cuda (float32/float64)");
  }
}

// The CPU's dispatch_numeric set: dtypes that add.
template <class Fn>
void dispatch_numeric(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32:
      return fn.template operator()<float>();
    case DType::f64:
      return fn.template operator()<double>();
    case DType::i32:
      return fn.template operator()<int32_t>();
    case DType::i64:
      return fn.template operator()<int64_t>();
    case DType::u8:
      return fn.template operator()<uint8_t>();
    default:
      IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cuda");
  }
}

// Every dtype, as an unsigned word of its size: copies move bits only.
template <class Fn>
void dispatch_bits(DType dt, Fn&& fn) {
  switch (itemsize(dt)) {
    case 1:
      return fn.template operator()<uint8_t>();
    case 2:
      return fn.template operator()<uint16_t>();
    case 4:
      return fn.template operator()<uint32_t>();
    case 8:
      return fn.template operator()<uint64_t>();
    default:
      IRIS_FAIL("cuda copy: unsupported item size ", itemsize(dt));
  }
}

// Typed data pointer, nullptr for an undefined tensor.
template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

}  // namespace iris::IRIS_KERNEL_NS::ops
