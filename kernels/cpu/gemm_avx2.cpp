// AVX2+FMA fp32 GEMM micro-kernel (this file is compiled with -mavx2 -mfma).
// Same scheme as the AVX-512 kernel on 16 ymm registers: MR x NR/8 accumulators, NR/8 B
// vectors, one broadcast. Edge tiles go through a small stack tile (AVX2 has no cheap
// per-lane masks for every width).
#include <immintrin.h>

#include "kernels/cpu/gemm.h"

namespace iris::cpu::detail {
namespace {

constexpr int kLanes = 8;

template <int MR, int NV>
inline void microkernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                        int64_t ldc, float alpha, float beta, int64_t m, int64_t n) {
  __m256 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + v * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
    a += MR;
    b += NV * kLanes;
  }

  const __m256 alpha_v = _mm256_set1_ps(alpha);
  const __m256 beta_v = _mm256_set1_ps(beta);
  const bool full_tile = m == MR && n == NV * kLanes;
  alignas(32) float tile[MR][NV * kLanes];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m256 scaled = _mm256_mul_ps(acc[i][v], alpha_v);
      if (!full_tile) {
        _mm256_store_ps(&tile[i][v * kLanes], scaled);
      } else if (beta == 0.0f) {
        _mm256_storeu_ps(c + i * ldc + v * kLanes, scaled);
      } else {
        float* dst = c + i * ldc + v * kLanes;
        _mm256_storeu_ps(dst, _mm256_fmadd_ps(_mm256_loadu_ps(dst), beta_v, scaled));
      }
    }
  }
  if (full_tile) return;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float& dst = c[i * ldc + j];
      dst = beta == 0.0f ? tile[i][j] : tile[i][j] + beta * dst;
    }
  }
}

}  // namespace

void microkernel_avx2_f32(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                          int64_t ldc, float alpha, float beta, int64_t m, int64_t n) {
  static_assert(Avx2F32Tile::kNR % kLanes == 0);
  microkernel<Avx2F32Tile::kMR, Avx2F32Tile::kNR / kLanes>(kc, a_panel, b_panel, c, ldc, alpha,
                                                           beta, m, n);
}

}  // namespace iris::cpu::detail
