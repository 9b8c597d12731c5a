#pragma once
// Element types. fp32 is the reference; fp64 exists on the CPU for gradient
// checks; bf16/fp16 are storage types (round-to-nearest-even conversion).
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>

namespace iris {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, b8 };
constexpr int kNumDTypes = 8;

size_t itemsize(DType dt);
const char* dtype_name(DType dt);  // "float32", "bfloat16", ...
bool is_floating(DType dt);        // f32, f64, bf16, f16
inline std::ostream& operator<<(std::ostream& os, DType dt) { return os << dtype_name(dt); }

// 16-bit float storage types: conversion only, arithmetic happens in fp32.
struct bf16 {
  uint16_t bits = 0;
};
struct f16 {
  uint16_t bits = 0;
};

inline float bf16_to_float(bf16 h) {
  uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return bf16{static_cast<uint16_t>(u >> 16)};
}
float f16_to_float(f16 h);
f16 float_to_f16(float f);

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
