#pragma once
// Element types. fp32 is the reference; fp64 exists on the CPU for gradient
// checks; bf16/fp16 are storage types (round-to-nearest-even conversion).
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <type_traits>

#include "core/hd.h"

namespace iris {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, b8 };
constexpr int kNumDTypes = 8;

size_t itemsize(DType dt);
const char* dtype_name(DType dt);  // "float32", "bfloat16", ...
bool is_floating(DType dt);        // f32, f64, bf16, f16
inline std::ostream& operator<<(std::ostream& os, DType dt) { return os << dtype_name(dt); }

// 16-bit float storage types: conversion only, arithmetic happens in fp32. The conversions
// are IRIS_HD: CUDA kernels round exactly as the CPU does.
struct bf16 {
  uint16_t bits = 0;
};
struct f16 {
  uint16_t bits = 0;
};

IRIS_HD float bf16_to_float(bf16 h) {
  uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
IRIS_HD bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return bf16{static_cast<uint16_t>(u >> 16)};
}
IRIS_HD float f16_to_float(f16 h) {
  const uint32_t sign = (h.bits & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1fu;
  uint32_t mant = h.bits & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = sign;
  } else {  // subnormal: normalise
    int shift = 0;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      ++shift;
    }
    mant &= 0x3ffu;
    u = sign | (static_cast<uint32_t>(113 - shift) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

IRIS_HD f16 float_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return f16{static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (abs >= 0x477ff000u) return f16{static_cast<uint16_t>(sign | 0x7c00u)};  // overflow -> inf
  if (abs < 0x38800000u) {  // result is subnormal or zero: round 24-bit mantissa at the right place
    if (abs < 0x33000000u) return f16{sign};  // below half the smallest subnormal
    const int e = static_cast<int>(abs >> 23);
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - e;  // value = mant * 2^(e-150) = r * 2^-24
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return f16{static_cast<uint16_t>(sign | r)};
  }
  uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);  // round to nearest even
  return f16{static_cast<uint16_t>(sign | (r >> 13))};
}

// Any storage type to any other: 16-bit floats through float, the rest by static_cast.
template <class TD, class TS>
IRIS_HD TD convert_value(TS v) {
  if constexpr (std::is_same_v<TS, bf16>) {
    return convert_value<TD, float>(bf16_to_float(v));
  } else if constexpr (std::is_same_v<TS, f16>) {
    return convert_value<TD, float>(f16_to_float(v));
  } else if constexpr (std::is_same_v<TD, bf16>) {
    return float_to_bf16(static_cast<float>(v));
  } else if constexpr (std::is_same_v<TD, f16>) {
    return float_to_f16(static_cast<float>(v));
  } else {
    return static_cast<TD>(v);
  }
}

// C++ type -> DType.
template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::b8; };
template <class T>
inline constexpr DType dtype_v = dtype_of<T>::value;

}  // namespace iris
