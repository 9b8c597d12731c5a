// AVX-512 fp32 GEMM micro-kernel (this file is compiled with -mavx512f ... -mfma).
// One k step: NR/16 vector loads of packed B, MR broadcasts of packed A, MR*NR/16
// independent FMAs into accumulators that stay in zmm registers for the whole panel.
#include <immintrin.h>

#include "kernels/cpu/avx512_transpose.h"
#include "kernels/cpu/gemm.h"

namespace iris::cpu::detail {
namespace {

constexpr int kLanes = 16;
// Elements ahead along each source run that transpose packing prefetches (4 cache lines).
constexpr int64_t kPackPrefetchDistance = 64;

inline void prefetch_l1(const float* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

// Writes alpha*acc (+ beta*c) to one row of C; `mask` selects the valid columns.
inline void store_row_vector(float* c, __m512 acc, __m512 alpha, float beta, __mmask16 mask) {
  const __m512 scaled = _mm512_mul_ps(acc, alpha);
  if (beta == 0.0f) {
    _mm512_mask_storeu_ps(c, mask, scaled);
  } else {
    const __m512 old = _mm512_maskz_loadu_ps(mask, c);
    _mm512_mask_storeu_ps(c, mask, _mm512_fmadd_ps(old, _mm512_set1_ps(beta), scaled));
  }
}

template <int MR, int NV>
inline void microkernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c,
                        int64_t ldc, float alpha, float beta, int64_t m, int64_t n) {
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  }
  // The C tile is read (or written) only after the k loop: start its cache misses now.
  // Elements 0, 16, ... and n - 1 of a row segment touch every 64-byte line it spans.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) prefetch_l1(c + i * ldc + v * kLanes);
    prefetch_l1(c + i * ldc + n - 1);
  }
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + v * kLanes);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
    a += MR;
    b += NV * kLanes;
  }

  const __m512 alpha_v = _mm512_set1_ps(alpha);
  __mmask16 masks[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const int64_t cols = n - v * kLanes;
    masks[v] = cols >= kLanes ? __mmask16(0xFFFF)
               : cols <= 0    ? __mmask16(0)
                              : __mmask16((1u << cols) - 1u);
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      store_row_vector(c + i * ldc + v * kLanes, acc[i][v], alpha_v, beta, masks[v]);
  }
}

__mmask16 first_lanes(int64_t count) {
  return count >= kLanes ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1u);
}

}  // namespace

// 16 x 16 blocks: 16 lanes' runs along k in, 16 k-steps of 16 lanes out (masked to the
// panel width W and the kc tail).
void transpose_pack_avx512_f32(const float* src, int64_t lane_stride, int64_t lanes, int64_t kc,
                               int64_t W, float* dst) {
  for (int64_t g = 0; g < W; g += kLanes) {
    const __mmask16 store_mask = first_lanes(W - g);
    const int64_t present = lanes - g;
    for (int64_t k0 = 0; k0 < kc; k0 += kLanes) {
      const int64_t steps = kc - k0 < kLanes ? kc - k0 : kLanes;
      const __mmask16 load_mask = first_lanes(steps);
      __m512 r[kLanes];
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        if (i < present) {
          const float* run = src + (g + i) * lane_stride + k0;
          // Up to 16 concurrent row streams defeat the hardware prefetcher; fetch ahead.
          prefetch_l1(run + kPackPrefetchDistance);
          r[i] = _mm512_maskz_loadu_ps(load_mask, run);
        } else {
          r[i] = _mm512_setzero_ps();
        }
      }
      ::iris::cpu::avx512::transpose16x16(r);
#pragma GCC unroll 16
      for (int t = 0; t < kLanes; ++t) {
        if (t < steps) _mm512_mask_storeu_ps(dst + (k0 + t) * W + g, store_mask, r[t]);
      }
    }
  }
}

void microkernel_avx512_f32(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                            int64_t ldc, float alpha, float beta, int64_t m, int64_t n) {
  static_assert(Avx512F32Tile::kNR % kLanes == 0);
  microkernel<Avx512F32Tile::kMR, Avx512F32Tile::kNR / kLanes>(kc, a_panel, b_panel, c, ldc, alpha,
                                                               beta, m, n);
}

}  // namespace iris::cpu::detail
