#pragma once
// A 16 x 16 fp32 transpose in AVX-512 registers, for packing transposed operands
// (GEMM panels, attention's K^T and V^T tiles). Include only from *_avx512.cpp files,
// the only ones compiled with -mavx512f; call only after the run-time ISA check.
#include <immintrin.h>

namespace iris::cpu::avx512 {

// The all-lanes zero-masking forms compile to the plain shuffles; the plain intrinsics
// trip g++ 12's -Wmaybe-uninitialized (their _mm512_undefined_ps pass-through operand).
constexpr __mmask16 kAllLanes16 = 0xFFFF;
inline __m512 unpacklo(__m512 a, __m512 b) { return _mm512_maskz_unpacklo_ps(kAllLanes16, a, b); }
inline __m512 unpackhi(__m512 a, __m512 b) { return _mm512_maskz_unpackhi_ps(kAllLanes16, a, b); }
template <int kImm>
inline __m512 shuffle_ps(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_ps(kAllLanes16, a, b, kImm);
}
template <int kImm>
inline __m512 shuffle_f32x4(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_f32x4(kAllLanes16, a, b, kImm);
}

// In-register 16 x 16 transpose: 4x4 blocks within 128-bit lanes (unpack, shuffle), then the
// 4x4 grid of lanes (two rounds of shuffle_f32x4).
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = unpacklo(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpackhi(r[2 * i], r[2 * i + 1]);
  }
  // u[4k + c], lane g: column 4g + c of rows 4k .. 4k + 3.
  __m512 u[16];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    u[4 * k + 0] = shuffle_ps<_MM_SHUFFLE(1, 0, 1, 0)>(t[4 * k], t[4 * k + 2]);
    u[4 * k + 1] = shuffle_ps<_MM_SHUFFLE(3, 2, 3, 2)>(t[4 * k], t[4 * k + 2]);
    u[4 * k + 2] = shuffle_ps<_MM_SHUFFLE(1, 0, 1, 0)>(t[4 * k + 1], t[4 * k + 3]);
    u[4 * k + 3] = shuffle_ps<_MM_SHUFFLE(3, 2, 3, 2)>(t[4 * k + 1], t[4 * k + 3]);
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = shuffle_f32x4<_MM_SHUFFLE(2, 0, 2, 0)>(u[c], u[4 + c]);
    const __m512 v1 = shuffle_f32x4<_MM_SHUFFLE(3, 1, 3, 1)>(u[c], u[4 + c]);
    const __m512 v2 = shuffle_f32x4<_MM_SHUFFLE(2, 0, 2, 0)>(u[8 + c], u[12 + c]);
    const __m512 v3 = shuffle_f32x4<_MM_SHUFFLE(3, 1, 3, 1)>(u[8 + c], u[12 + c]);
    r[c] = shuffle_f32x4<_MM_SHUFFLE(2, 0, 2, 0)>(v0, v2);
    r[4 + c] = shuffle_f32x4<_MM_SHUFFLE(2, 0, 2, 0)>(v1, v3);
    r[8 + c] = shuffle_f32x4<_MM_SHUFFLE(3, 1, 3, 1)>(v0, v2);
    r[12 + c] = shuffle_f32x4<_MM_SHUFFLE(3, 1, 3, 1)>(v1, v3);
  }
}

}  // namespace iris::cpu::avx512
