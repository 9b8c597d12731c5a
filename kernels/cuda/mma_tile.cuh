#pragma once
// The tensor-core tile shared by the hand-written GEMM (gemm.cu) and convolution: a block
// computes a kBM x kBN fp32 tile of C = A B from 16-bit operands (bf16 or fp16) staged a
// kBK slab at a time in shared memory. A slab is stored [outer][inner + kPad] with inner
// the operand's unit-stride index in global memory, so staging is 16-byte cp.async chunks
// (zero-filled past the matrix edges) and fragments come out of either orientation by
// ldmatrix (.trans where the stored rows run along k for A or along n for B). Each warp
// owns a kWarpM x kWarpN sub-tile: kFragsM x kFragsN mma.sync m16n8k16 accumulators.
#include <cstdint>

#include "kernels/emu/cuda_compat.h"
// (IRIS_DEV; needs cuda_compat.h first)
#include "kernels/cuda/online_softmax.cuh"

// Full unrolling where fragment and accumulator arrays are indexed: any loop left rolled
// moves them to local memory.
#if defined(__CUDACC__)
#define IRIS_MMA_UNROLL _Pragma("unroll")
#else
#define IRIS_MMA_UNROLL
#endif

namespace iris::IRIS_KERNEL_NS::mma {

enum class Half { kBf16, kF16 };

struct TileTraits {
  static constexpr int kBM = 64, kBN = 64, kBK = 32;  // block tile and K slab
  static constexpr int kWarpsM = 2, kWarpsN = 2;
  static constexpr int kWarpM = kBM / kWarpsM, kWarpN = kBN / kWarpsN;
  static constexpr int kFragsM = kWarpM / 16, kFragsN = kWarpN / 8;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int kChunk = 8;  // 16-bit elements per 16-byte cp.async
  // Row padding (16 bytes): consecutive rows of an 8x8 ldmatrix fall in distinct banks.
  static constexpr int kPad = 8;
  static constexpr int kMaxOuter = kBM > kBN ? kBM : kBN;
  static constexpr int kSlabElems = (kMaxOuter * (kBK + kPad) > kBK * (kMaxOuter + kPad))
                                        ? kMaxOuter * (kBK + kPad)
                                        : kBK * (kMaxOuter + kPad);
  static_assert(kBM % (16 * kWarpsM) == 0 && kBN % (16 * kWarpsN) == 0,
                "warp tiles are whole m16 rows and pairs of n8 columns (ldmatrix x4 for B)");
  static_assert(kBK % 16 == 0, "K slabs are whole k16 steps");
  static_assert((kBK + kPad) * 2 % 16 == 0 && (kMaxOuter + kPad) * 2 % 16 == 0 &&
                    (kBM + kPad) * 2 % 16 == 0 && (kBN + kPad) * 2 % 16 == 0,
                "ldmatrix and cp.async need 16-byte aligned rows");
  static_assert(kBM * kBK % (kChunk * kThreads) == 0 && kBN * kBK % (kChunk * kThreads) == 0,
                "every thread stages the same number of chunks");
  static_assert(2 * 2 * kSlabElems * 2 <= 48 * 1024, "two double-buffered slabs fit statically");
};

// How a slab of one operand sits in shared memory.
struct SlabLayout {
  bool k_inner;  // rows run along the other index, k is the unit stride (else the reverse)
  int pitch;     // elements per stored row
};

// The A fragment (16x16 at m_base, k_base) of a slab stored [m][k] (k_inner) or [k][m].
IRIS_DEV void load_a_fragment(uint32_t (&a)[4], iris::smem_ptr<uint16_t> slab, SlabLayout l,
                              int m_base, int k_base, int lane) {
  if (l.k_inner) {
    // matrices: (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15)
    iris::ptx::ldmatrix_x4(a, slab + (m_base + (lane & 15)) * l.pitch + k_base + (lane >> 4) * 8);
  } else {
    const int i = lane >> 3, r = lane & 7;
    iris::ptx::ldmatrix_x4_trans(
        a, slab + (k_base + r + (i >> 1) * 8) * l.pitch + m_base + (i & 1) * 8);
  }
}

// The B fragments (16x8) at n_base (registers 0-1) and n_base + 8 (registers 2-3) of a
// slab stored [k][n] or, k_inner, [n][k].
IRIS_DEV void load_b_fragments(uint32_t (&b)[4], iris::smem_ptr<uint16_t> slab, SlabLayout l,
                               int n_base, int k_base, int lane) {
  const int half_k = ((lane >> 3) & 1) * 8, half_n = (lane >> 4) * 8;
  if (l.k_inner)
    iris::ptx::ldmatrix_x4(b, slab + (n_base + (lane & 7) + half_n) * l.pitch + k_base + half_k);
  else
    iris::ptx::ldmatrix_x4_trans(b,
                                 slab + (k_base + (lane & 7) + half_k) * l.pitch + n_base + half_n);
}

template <Half H>
IRIS_DEV void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (H == Half::kBf16)
    iris::ptx::mma_m16n8k16_bf16(d, a, b, d);
  else
    iris::ptx::mma_m16n8k16_f16(d, a, b, d);
}

// The warp's fp32 accumulators: fragment (i, j) covers rows warp_m0 + 16 i + {g, g + 8},
// columns warp_n0 + 8 j + 2 t + {0, 1} (g = lane / 4, t = lane % 4).
template <class Tr = TileTraits>
struct Accumulators {
  float c[Tr::kFragsM][Tr::kFragsN][4];
  IRIS_DEV void zero() {
    IRIS_MMA_UNROLL
    for (int i = 0; i < Tr::kFragsM; ++i) {
      IRIS_MMA_UNROLL
      for (int j = 0; j < Tr::kFragsN; ++j) {
        IRIS_MMA_UNROLL
        for (int r = 0; r < 4; ++r) c[i][j][r] = 0.0f;
      }
    }
  }
  // Row and column within the block tile of element r of fragment (i, j).
  IRIS_DEV static int row(int warp_m0, int i, int r, int lane) {
    return warp_m0 + 16 * i + (lane >> 2) + (r >> 1) * 8;
  }
  IRIS_DEV static int col(int warp_n0, int j, int r, int lane) {
    return warp_n0 + 8 * j + 2 * (lane & 3) + (r & 1);
  }
};

// acc += A_slab[warp rows, :] B_slab[:, warp columns] over the kBK slab.
template <Half H, class Tr = TileTraits>
IRIS_DEV void warp_mma_slab(Accumulators<Tr>& acc, iris::smem_ptr<uint16_t> a_slab, SlabLayout al,
                            iris::smem_ptr<uint16_t> b_slab, SlabLayout bl, int warp_m0,
                            int warp_n0, int lane) {
  IRIS_MMA_UNROLL
  for (int k = 0; k < Tr::kBK; k += 16) {
    uint32_t a[Tr::kFragsM][4], b[Tr::kFragsN / 2][4];
    IRIS_MMA_UNROLL
    for (int i = 0; i < Tr::kFragsM; ++i)
      load_a_fragment(a[i], a_slab, al, warp_m0 + 16 * i, k, lane);
    IRIS_MMA_UNROLL
    for (int j = 0; j < Tr::kFragsN / 2; ++j)
      load_b_fragments(b[j], b_slab, bl, warp_n0 + 16 * j, k, lane);
    IRIS_MMA_UNROLL
    for (int i = 0; i < Tr::kFragsM; ++i) {
      IRIS_MMA_UNROLL
      for (int j = 0; j < Tr::kFragsN; ++j) {
        const uint32_t bj[2] = {b[j / 2][2 * (j % 2)], b[j / 2][2 * (j % 2) + 1]};
        mma_16816<H>(acc.c[i][j], a[i], bj);
      }
    }
  }
}

// Stages the [outer][inner] tile at (outer0, inner0) of a global matrix whose inner index
// has unit stride (row o at src + o * ld) into a slab; elements past (outer_lim, inner_lim)
// are zero. async: 16-byte cp.async chunks (src and ld must keep them 16-byte aligned; the
// caller commits and waits), else plain loads and stores.
template <class Tr = TileTraits>
IRIS_DEV void stage_slab(iris::smem_ptr<uint16_t> slab, int pitch, int outer_n, int inner_n,
                         const uint16_t* __restrict__ src, int64_t ld, int64_t outer0,
                         int64_t outer_lim, int64_t inner0, int64_t inner_lim, bool async,
                         int tid) {
  const int chunks_per_row = inner_n / Tr::kChunk;
  for (int c = tid; c < outer_n * chunks_per_row; c += Tr::kThreads) {
    const int o = c / chunks_per_row, i = (c - o * chunks_per_row) * Tr::kChunk;
    const int64_t go = outer0 + o, gi = inner0 + i;
    int64_t valid = go < outer_lim ? inner_lim - gi : 0;
    valid = valid < 0 ? 0 : (valid > Tr::kChunk ? Tr::kChunk : valid);
    const uint16_t* s = src + (valid > 0 ? go * ld + gi : 0);
    iris::smem_ptr<uint16_t> d = slab + o * pitch + i;
    if (async) {
      iris::ptx::cp_async_16_zfill(d, s, static_cast<int>(valid) * 2);
    } else {
      for (int e = 0; e < Tr::kChunk; ++e) d[e] = e < valid ? s[e] : uint16_t{0};
    }
  }
}

template <Half H>
IRIS_DEV float half_to_float(uint16_t bits) {
  if constexpr (H == Half::kBf16)
    return __uint_as_float(static_cast<unsigned>(bits) << 16);
  else
    return __half2float(__ushort_as_half(bits));
}

template <Half H>
IRIS_DEV uint16_t float_to_half(float v) {
  if constexpr (H == Half::kBf16)
    return __bfloat16_as_ushort(__float2bfloat16_rn(v));
  else
    return __half_as_ushort(__float2half_rn(v));
}

}  // namespace iris::IRIS_KERNEL_NS::mma
