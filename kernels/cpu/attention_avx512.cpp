// AVX-512 build of the fp32 attention tile code (this file alone is compiled with -mavx512f
// ... -mfma; attention.cpp calls it only when cpuid reports them). Three fp32 pieces replace
// the portable templates of attention_tiles.h: a register-blocked micro-kernel for the tile
// products, an in-register 16 x 16 transpose for packing K^T / V^T, and a vector exp for the
// softmax; the rest of the tile code auto-vectorises 16 wide.
#include "kernels/cpu/attention_detail.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

#include <array>
#include <utility>

#include "kernels/cpu/avx512_transpose.h"

namespace iris::cpu::attention_detail::avx512 {
namespace {

constexpr int kLanes = 16;
constexpr __mmask16 kAllLanes = 0xFFFF;

inline __mmask16 first_lanes(int64_t n) {
  return n >= kLanes ? kAllLanes : __mmask16((1u << n) - 1u);
}

// Register tile: kMaxRows x (kMaxVectors * 16) accumulators, plus the B vectors of one k
// step and a broadcast, within the 32 zmm registers.
constexpr int kMaxRows = 6, kMaxVectors = 4;
static_assert(kMaxRows * kMaxVectors + kMaxVectors + 1 <= 32);

// C rows [i0, i0 + MR) x columns [j0, j0 + 16 * NV), the last vector masked by `tail`.
template <int MR, int NV>
void gemm_block(const GemmArgs<float>& g, int64_t i0, int64_t j0, __mmask16 tail) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  }
  const float* a = g.a + i0 * g.a_rs;
  const float* b = g.b + j0;
  for (int64_t l = 0; l < g.k; ++l) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      bv[v] = v + 1 < NV ? _mm512_loadu_ps(b + v * kLanes)
                         : _mm512_maskz_loadu_ps(tail, b + v * kLanes);
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i * g.a_rs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += g.a_ks;
    b += g.ldb;
  }
  const __m512 alpha = _mm512_set1_ps(g.alpha);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    float* c = g.c + (i0 + i) * g.ldc + j0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v + 1 < NV ? kAllLanes : tail;
      __m512 out = _mm512_mul_ps(acc[i][v], alpha);
      if (g.accumulate) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(mask, c + v * kLanes));
      _mm512_mask_storeu_ps(c + v * kLanes, mask, out);
    }
  }
}

using GemmBlockFn = void (*)(const GemmArgs<float>&, int64_t, int64_t, __mmask16);

template <int MR, int... NV>
constexpr auto gemm_row_of_blocks(std::integer_sequence<int, NV...>) {
  return std::array<GemmBlockFn, sizeof...(NV)>{gemm_block<MR, NV + 1>...};
}

template <int... MR>
constexpr auto gemm_block_table(std::integer_sequence<int, MR...>) {
  return std::array<std::array<GemmBlockFn, kMaxVectors>, sizeof...(MR)>{
      gemm_row_of_blocks<MR + 1>(std::make_integer_sequence<int, kMaxVectors>())...};
}

// kGemmBlocks[MR - 1][NV - 1]
constexpr auto kGemmBlocks = gemm_block_table(std::make_integer_sequence<int, kMaxRows>());

}  // namespace

// Preferred by overload resolution to the portable template in attention_tiles.h.
void tile_gemm(const GemmArgs<float>& g) {
  for (int64_t j0 = 0; j0 < g.n; j0 += kMaxVectors * kLanes) {
    const int64_t cols = g.n - j0 < kMaxVectors * kLanes ? g.n - j0 : kMaxVectors * kLanes;
    const int64_t vectors = (cols + kLanes - 1) / kLanes;
    const int64_t tail_cols = cols - (vectors - 1) * kLanes;
    const __mmask16 tail = first_lanes(tail_cols);
    for (int64_t i0 = 0; i0 < g.m; i0 += kMaxRows) {
      const int64_t rows = g.m - i0 < kMaxRows ? g.m - i0 : kMaxRows;
      kGemmBlocks[rows - 1][vectors - 1](g, i0, j0, tail);
    }
  }
}


// Preferred to the scalar template in attention_tiles.h, whose strided stores cost about as
// much as the products for short query blocks.
void transpose_tile(const float* rows, int64_t row_stride, int64_t nc, int64_t width, float* dst,
                    int64_t ld) {
  for (int64_t c0 = 0; c0 < nc; c0 += kLanes) {
    const int64_t row_count = nc - c0 < kLanes ? nc - c0 : kLanes;
    const __mmask16 store_mask = first_lanes(row_count);
    for (int64_t d0 = 0; d0 < width; d0 += kLanes) {
      const int64_t col_count = width - d0 < kLanes ? width - d0 : kLanes;
      const __mmask16 load_mask = first_lanes(col_count);
      __m512 r[kLanes];
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        r[i] = i < row_count ? _mm512_maskz_loadu_ps(load_mask, rows + (c0 + i) * row_stride + d0)
                             : _mm512_setzero_ps();
      }
      ::iris::cpu::avx512::transpose16x16(r);
      for (int64_t i = 0; i < col_count; ++i) {
        _mm512_mask_storeu_ps(dst + (d0 + i) * ld + c0, store_mask, r[i]);
      }
    }
  }
}

// Preferred to the auto-vectorised template in attention_tiles.h: roundscale, scalef and a
// zero-masking compare replace its integer exponent arithmetic and selects. exp(x) uses
// Cody-Waite reduction and Cephes' expf polynomial (about 1 ulp); x below -87.3 (masked -inf
// scores included) gives exactly 0 by the mask, not by underflow: denormal results would
// cost a microcode assist each.
float exp_shifted_row(float* s, float shift, int64_t n) {
  const __m512 shift_v = _mm512_set1_ps(shift), min_arg = _mm512_set1_ps(-87.33654f);
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += kLanes) {
    const __mmask16 mask = first_lanes(n - j);
    const __m512 x_in = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + j), shift_v);
    // Both keep NaN: the unordered compare is true for it, and max returns its second operand.
    const __mmask16 in_range = _mm512_cmp_ps_mask(x_in, min_arg, _CMP_NLT_UQ);
    const __m512 x = _mm512_maskz_max_ps(kAllLanes, min_arg, x_in);
    const __m512 k = _mm512_maskz_roundscale_ps(kAllLanes, _mm512_mul_ps(x, log2e),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_fnmadd_ps(k, ln2_lo, _mm512_fnmadd_ps(k, ln2_hi, x));
    __m512 poly = _mm512_set1_ps(1.9875691500e-4f);
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.3981999507e-3f));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(8.3334519073e-3f));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(4.1665795894e-2f));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.6666665459e-1f));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(5.0000001201e-1f));
    poly = _mm512_fmadd_ps(_mm512_mul_ps(poly, r), r, _mm512_add_ps(r, one));
    const __m512 e = _mm512_maskz_scalef_ps(in_range, poly, k);
    _mm512_mask_storeu_ps(s + j, mask, e);
    sum = _mm512_mask_add_ps(sum, mask, sum, e);
  }
  alignas(64) float lanes[kLanes];
  _mm512_store_ps(lanes, sum);
  float total = 0.0f;
  for (int i = 0; i < kLanes; ++i) total += lanes[i];
  return total;
}

}  // namespace iris::cpu::attention_detail::avx512

#define IRIS_ATTENTION_ISA avx512
#include "kernels/cpu/attention_tiles.h"

namespace iris::cpu::attention_detail {

const AttentionKernels<float>* avx512_attention_kernels() { return avx512::kernel_table<float>(); }

}  // namespace iris::cpu::attention_detail

#else  // built without AVX-512 (e.g. by hand): report the path as unavailable

namespace iris::cpu::attention_detail {

const AttentionKernels<float>* avx512_attention_kernels() { return nullptr; }

}  // namespace iris::cpu::attention_detail

#endif
