#pragma once
// The CPU's one strided N-operand loop. Operands share a shape (inputs already
// broadcast with stride-0 dims); dims are coalesced where every operand allows,
// and the element range is split over the thread pool. `inner(ptrs, strides, n)`
// runs a 1-D loop of n elements with byte strides; it is called with all strides
// equal to the element sizes whenever the innermost dim is dense.
#include <array>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/parallel.h"
#include "core/tensor.h"

namespace iris::cpu {

constexpr int64_t kElementwiseGrain = 32768;

template <size_t N>
struct LoopGeometry {
  int ndim = 0;  // innermost first
  int64_t sizes[16];
  int64_t strides[N][16];  // bytes
};

template <size_t N>
LoopGeometry<N> make_geometry(const Shape& shape, const std::array<const Tensor*, N>& ops) {
  IRIS_CHECK(shape.size() <= 16, "elementwise: more than 16 dims: ", shape_str(shape));
  LoopGeometry<N> g;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    const int k = g.ndim;
    int64_t st[N];
    for (size_t i = 0; i < N; ++i)
      st[i] = ops[i]->stride(d) * static_cast<int64_t>(itemsize(ops[i]->dtype()));
    bool merge = k > 0;
    for (size_t i = 0; merge && i < N; ++i)
      merge = g.strides[i][k - 1] * g.sizes[k - 1] == st[i];
    if (merge) {
      g.sizes[k - 1] *= shape[d];
    } else {
      g.sizes[k] = shape[d];
      for (size_t i = 0; i < N; ++i) g.strides[i][k] = st[i];
      ++g.ndim;
    }
  }
  if (g.ndim == 0) {  // a single element
    g.ndim = 1;
    g.sizes[0] = 1;
    for (size_t i = 0; i < N; ++i) g.strides[i][0] = 0;
  }
  return g;
}

template <size_t N, class Inner>
void strided_loop(const Shape& shape, const std::array<const Tensor*, N>& ops, Inner inner,
                  int64_t grain = kElementwiseGrain) {
  const int64_t total = numel_of(shape);
  if (total == 0) return;
  const LoopGeometry<N> g = make_geometry(shape, ops);
  std::array<char*, N> base;
  for (size_t i = 0; i < N; ++i) base[i] = static_cast<char*>(ops[i]->raw_data());
  const int64_t n0 = g.sizes[0];
  parallel_for(0, total, grain, [&](int64_t begin, int64_t end) {
    // Position of `begin` in the outer dims, then walk rows of the innermost dim.
    int64_t idx[16] = {0};
    int64_t rem = begin / n0;
    for (int d = 1; d < g.ndim; ++d) {
      idx[d] = rem % g.sizes[d];
      rem /= g.sizes[d];
    }
    int64_t i0 = begin % n0;
    int64_t pos = begin;
    std::array<int64_t, N> inner_st;
    for (size_t i = 0; i < N; ++i) inner_st[i] = g.strides[i][0];
    while (pos < end) {
      const int64_t n = std::min(n0 - i0, end - pos);
      std::array<char*, N> p;
      for (size_t i = 0; i < N; ++i) {
        int64_t off = i0 * g.strides[i][0];
        for (int d = 1; d < g.ndim; ++d) off += idx[d] * g.strides[i][d];
        p[i] = base[i] + off;
      }
      inner(p, inner_st, n);
      pos += n;
      i0 = 0;
      for (int d = 1; d < g.ndim; ++d) {
        if (++idx[d] < g.sizes[d]) break;
        idx[d] = 0;
      }
    }
  });
}

// Runs fn.template operator()<T>() for the C++ type of a floating dtype the CPU computes in.
template <class Fn>
decltype(auto) dispatch_float(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    default: IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cpu (float32/float64)");
  }
}

// The 16-bit float storage types compute in float (one rounding at the store); every other
// type computes in itself.
template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;
template <class T>
using compute_t = std::conditional_t<is_half_v<T>, float, T>;
template <class T>
compute_t<T> load_compute(T v) {
  return convert_value<compute_t<T>>(v);
}
template <class T>
T store_compute(compute_t<T> v) {
  return convert_value<T>(v);
}

// dispatch_float plus bf16/f16, for kernels written over compute_t<T>.
template <class Fn>
decltype(auto) dispatch_float_or_half(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::bf16: return fn.template operator()<bf16>();
    case DType::f16: return fn.template operator()<f16>();
    default: return dispatch_float(dt, op, std::forward<Fn>(fn));
  }
}

// Floating and integer dtypes with arithmetic.
template <class Fn>
decltype(auto) dispatch_numeric(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::i32: return fn.template operator()<int32_t>();
    case DType::i64: return fn.template operator()<int64_t>();
    case DType::u8: return fn.template operator()<uint8_t>();
    default: IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cpu");
  }
}

// dispatch_numeric plus bf16/f16, for kernels written over compute_t<T>.
template <class Fn>
decltype(auto) dispatch_numeric_or_half(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::bf16: return fn.template operator()<bf16>();
    case DType::f16: return fn.template operator()<f16>();
    default: return dispatch_numeric(dt, op, std::forward<Fn>(fn));
  }
}

// Every dtype, by storage type (bf16/f16 as their 16-bit structs, bool as uint8).
template <class Fn>
decltype(auto) dispatch_all(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::bf16: return fn.template operator()<bf16>();
    case DType::f16: return fn.template operator()<f16>();
    case DType::i32: return fn.template operator()<int32_t>();
    case DType::i64: return fn.template operator()<int64_t>();
    case DType::u8: case DType::b8: return fn.template operator()<uint8_t>();
  }
  IRIS_FAIL("dispatch: unknown dtype");
}

}  // namespace iris::cpu
