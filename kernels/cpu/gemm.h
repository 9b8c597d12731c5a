#pragma once
// CPU GEMM: packed, cache-blocked, threaded on the iris pool. fp32 runs an
// AVX-512, AVX2+FMA or portable micro-kernel chosen at run time; fp64 is the
// portable path (gradient checks).
#include <cstdint>

namespace iris::cpu {

// Row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
// op(A) = A (A is M x K, leading dim lda) or A^T (A stored K x M) when trans_a; same for B.
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
// alpha == 0 or K == 0 means C = beta * C (A and B are not read).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
          int64_t ldc);

// `batch` independent products; A_b = A + b*stride_a etc. (stride 0 = broadcast the same
// matrix). The C matrices of different products must not overlap.
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c);
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                  int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc,
                  int64_t stride_c);

// Which micro-kernel the fp32 path uses on this machine: "avx512", "avx2" or "generic".
const char* gemm_isa();

}  // namespace iris::cpu

namespace iris::cpu::detail {

// Test hook: force the fp32 path to "avx512", "avx2" or "generic"; nullptr or "" restores
// the automatic choice. Returns false (and changes nothing) when this CPU lacks the ISA.
bool gemm_force_isa(const char* isa);

// Micro-kernel contract, shared by the ISA-specific files: c[m x n] (row-major, ldc) =
// alpha * a_panel * b_panel + beta * c, with a_panel MR x kc packed k-major (MR values per
// k), b_panel kc x NR (NR values per k), both 64-byte aligned and zero-padded;
// 1 <= m <= MR, 1 <= n <= NR; beta == 0 never reads c.
template <class T>
using MicroKernel = void (*)(int64_t kc, const T* a_panel, const T* b_panel, T* c, int64_t ldc,
                             T alpha, T beta, int64_t m, int64_t n);

// Register tiles, picked by measurement (bench/README.md); the MR x NR accumulators plus
// the B vectors of one k step must fit in the vector register file.
struct Avx512F32Tile {
  static constexpr int64_t kMR = 14, kNR = 32;
};
struct Avx2F32Tile {
  static constexpr int64_t kMR = 6, kNR = 16;
};
static_assert(Avx512F32Tile::kNR % 16 == 0 &&
              Avx512F32Tile::kMR * Avx512F32Tile::kNR / 16 + Avx512F32Tile::kNR / 16 <= 32);
static_assert(Avx2F32Tile::kNR % 8 == 0 &&
              Avx2F32Tile::kMR * Avx2F32Tile::kNR / 8 + Avx2F32Tile::kNR / 8 <= 16);

// Packs the transposing case of a panel: dst[k * W + l] = src[l * lane_stride + k] for
// l < lanes, 0 for lanes <= l < W (each lane is a contiguous run along k).
template <class T>
using TransposePacker = void (*)(const T* src, int64_t lane_stride, int64_t lanes, int64_t kc,
                                 int64_t W, T* dst);

// Defined in gemm_avx512.cpp / gemm_avx2.cpp: call only when the CPU supports the ISA.
void microkernel_avx512_f32(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                            int64_t ldc, float alpha, float beta, int64_t m, int64_t n);
void transpose_pack_avx512_f32(const float* src, int64_t lane_stride, int64_t lanes, int64_t kc,
                               int64_t W, float* dst);
void microkernel_avx2_f32(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                          int64_t ldc, float alpha, float beta, int64_t m, int64_t n);

}  // namespace iris::cpu::detail
