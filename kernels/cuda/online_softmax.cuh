#pragma once
// Device helpers shared by the CUDA row kernels (softmax, cross-entropy, reductions):
// the device-function marker, the full warp mask, -inf, and the online (max, sum of
// exp) accumulator of a softmax row. Include after kernels/emu/cuda_compat.h.
#include <cmath>

// Device-side helpers (kernels only; under emulation __device__ is empty).
#define IRIS_DEV __device__ __forceinline__

namespace iris::IRIS_KERNEL_NS {

constexpr unsigned kFullMask = 0xffffffffu;

template <class T>
IRIS_DEV T neg_inf() {
  if constexpr (sizeof(T) == 4) return __int_as_float(static_cast<int>(0xff800000u));
  else return __longlong_as_double(static_cast<long long>(0xfff0000000000000ull));
}

// Running max m and sum s of exp(x - m); exp(-inf - m) terms are skipped, so a row
// that starts with -inf stays finite.
template <class T>
struct MaxSum {
  T m;
  T s;
};

template <class T>
IRIS_DEV void online_add(MaxSum<T>& a, T x) {
  if (x > a.m) {
    a.s = a.s * std::exp(a.m - x) + T(1);
    a.m = x;
  } else if (x != neg_inf<T>()) {
    a.s += std::exp(x - a.m);
  }
}

template <class T>
IRIS_DEV MaxSum<T> online_combine(MaxSum<T> a, MaxSum<T> b) {
  const T m = a.m > b.m ? a.m : b.m;
  const T sa = a.s == T(0) ? T(0) : a.s * std::exp(a.m - m);
  const T sb = b.s == T(0) ? T(0) : b.s * std::exp(b.m - m);
  return MaxSum<T>{m, sa + sb};
}

}  // namespace iris::IRIS_KERNEL_NS
