#pragma once
// CUDA's built-in types for the emulator build (g++): dim3/uint3, the vector
// types with their CUDA alignments, and the bf16/fp16 storage types with the
// conversion intrinsics (round to nearest even, like the device).
#include <cstdint>
#include <cstring>

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};

#define IRIS_EMU_VEC2(name, T, align) \
  struct alignas(align) name {        \
    T x, y;                           \
  };                                  \
  inline constexpr name make_##name(T x, T y) { return name{x, y}; }
#define IRIS_EMU_VEC3(name, T) \
  struct name {                \
    T x, y, z;                 \
  };                           \
  inline constexpr name make_##name(T x, T y, T z) { return name{x, y, z}; }
#define IRIS_EMU_VEC4(name, T, align) \
  struct alignas(align) name {        \
    T x, y, z, w;                     \
  };                                  \
  inline constexpr name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }

IRIS_EMU_VEC2(char2, signed char, 2)
IRIS_EMU_VEC4(char4, signed char, 4)
IRIS_EMU_VEC2(uchar2, unsigned char, 2)
IRIS_EMU_VEC4(uchar4, unsigned char, 4)
IRIS_EMU_VEC2(short2, short, 4)
IRIS_EMU_VEC4(short4, short, 8)
IRIS_EMU_VEC2(ushort2, unsigned short, 4)
IRIS_EMU_VEC4(ushort4, unsigned short, 8)
IRIS_EMU_VEC2(int2, int, 8)
IRIS_EMU_VEC3(int3, int)
IRIS_EMU_VEC4(int4, int, 16)
IRIS_EMU_VEC2(uint2, unsigned int, 8)
IRIS_EMU_VEC4(uint4, unsigned int, 16)
IRIS_EMU_VEC2(float2, float, 8)
IRIS_EMU_VEC3(float3, float)
IRIS_EMU_VEC4(float4, float, 16)
IRIS_EMU_VEC2(double2, double, 16)
IRIS_EMU_VEC2(longlong2, long long, 16)
IRIS_EMU_VEC2(ulonglong2, unsigned long long, 16)
inline constexpr uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) {
  return uint3{x, y, z};
}

#undef IRIS_EMU_VEC2
#undef IRIS_EMU_VEC3
#undef IRIS_EMU_VEC4

namespace iris::emu::detail {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_bits_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }
uint16_t float_to_half_bits(float f);
float half_bits_to_float(uint16_t h);

}  // namespace iris::emu::detail

// Storage types: construct from float, read back as float; arithmetic happens in float.
struct __nv_bfloat16 {
  unsigned short __x;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(::iris::emu::detail::float_to_bf16_bits(f)) {}
  operator float() const { return ::iris::emu::detail::bf16_bits_to_float(__x); }
};
struct __half {
  unsigned short __x;
  __half() = default;
  __half(float f) : __x(::iris::emu::detail::float_to_half_bits(f)) {}
  operator float() const { return ::iris::emu::detail::half_bits_to_float(__x); }
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
struct alignas(4) __half2 {
  __half x, y;
};
using nv_bfloat16 = __nv_bfloat16;
using nv_bfloat162 = __nv_bfloat162;
using half = __half;
using half2 = __half2;

inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return static_cast<float>(h); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {a, b}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
  __nv_bfloat16 h;
  h.__x = u;
  return h;
}
inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return static_cast<float>(h); }
inline __half2 __floats2half2_rn(float a, float b) { return {a, b}; }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) {
  __half h;
  h.__x = u;
  return h;
}
