#pragma once
// Launch helpers shared by the CUDA kernels: dtype dispatch, the compute type of the 16-bit
// floats, typed data pointers, grid sizing, the full warp mask. Includes
// kernels/emu/cuda_compat.h itself, so it may come first in a kernel source.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

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

// As on the CPU (kernels/cpu/loops.h): bf16/f16 compute in float and round once, at the
// store, so both backends give the same bits for the same op; other types compute in themselves.
template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;
template <class T>
using compute_t = std::conditional_t<is_half_v<T>, float, T>;
template <class T>
IRIS_HD compute_t<T> load_compute(T v) {
  return convert_value<compute_t<T>>(v);
}
template <class T>
IRIS_HD T store_compute(compute_t<T> v) {
  return convert_value<T>(v);
}

// dispatch_float plus bf16/f16, for kernels written over compute_t<T>.
template <class Fn>
void dispatch_float_or_half(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::bf16:
      return fn.template operator()<bf16>();
    case DType::f16:
      return fn.template operator()<f16>();
    default:
      return dispatch_float(dt, op, std::forward<Fn>(fn));
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

// dispatch_numeric plus bf16/f16, for kernels written over compute_t<T>.
template <class Fn>
void dispatch_numeric_or_half(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::bf16:
      return fn.template operator()<bf16>();
    case DType::f16:
      return fn.template operator()<f16>();
    default:
      return dispatch_numeric(dt, op, std::forward<Fn>(fn));
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
