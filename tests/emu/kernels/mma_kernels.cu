// Tensor-core test kernels: mma.sync fed from hand-built fragments (the PTX
// table), an ldmatrix probe, and a small GEMM with ldmatrix_x4 (A) and
// ldmatrix_x2_trans (B) feeding mma.sync m16n8k16.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

__device__ uint32_t pack(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// Fragments straight from the PTX ISA table, g = lane >> 2, t = lane % 4.
__global__ void mma_fragments_kernel(const uint16_t* A, const uint16_t* B, const float* C, float* D,
                                     int bf16) {
  const int lane = static_cast<int>(threadIdx.x);
  const int g = lane >> 2, t = lane & 3;
  uint32_t a[4], b[2];
  float c[4], d[4];
  for (int i = 0; i < 4; ++i) {
    const int row = g + ((i & 1) ? 8 : 0), col = 2 * t + ((i & 2) ? 8 : 0);
    a[i] = pack(A[row * 16 + col], A[row * 16 + col + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    const int k = 2 * t + (i ? 8 : 0);
    b[i] = pack(B[k * 8 + g], B[(k + 1) * 8 + g]);
  }
  for (int i = 0; i < 4; ++i) c[i] = C[(g + ((i & 2) ? 8 : 0)) * 8 + 2 * t + (i & 1)];
  if (bf16)
    iris::ptx::mma_m16n8k16_bf16(d, a, b, c);
  else
    iris::ptx::mma_m16n8k16_f16(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + ((i & 2) ? 8 : 0)) * 8 + 2 * t + (i & 1)] = d[i];
}

__global__ void ldmatrix_probe_kernel(const uint16_t* tile, const int* row_of_lane, uint32_t* out,
                                      int num, int trans) {
  IRIS_SHARED(uint16_t, rows, [32][8]);
  const int lane = static_cast<int>(threadIdx.x);
  for (int c = 0; c < 8; ++c) rows[lane][c] = tile[lane * 8 + c];
  __syncwarp();
  uint32_t r[4] = {0, 0, 0, 0};
  const void* row = &rows[row_of_lane[lane]][0];
  if (num == 1) {
    uint32_t x[1];
    trans ? iris::ptx::ldmatrix_x1_trans(x, row) : iris::ptx::ldmatrix_x1(x, row);
    r[0] = x[0];
  } else if (num == 2) {
    uint32_t x[2];
    trans ? iris::ptx::ldmatrix_x2_trans(x, row) : iris::ptx::ldmatrix_x2(x, row);
    r[0] = x[0], r[1] = x[1];
  } else {
    trans ? iris::ptx::ldmatrix_x4_trans(r, row) : iris::ptx::ldmatrix_x4(r, row);
  }
  for (int i = 0; i < 4; ++i) out[lane * 4 + i] = r[i];
}

// Warp (wm, wn) of the block computes the 16x8 tile at (wm * 16, wn * 8).
__global__ void mma_gemm_kernel(int M, int N, int K, const uint16_t* A, const uint16_t* B, float* C,
                                int bf16) {
  using Tr = MmaTraits;
  IRIS_SHARED(uint16_t, As, [Tr::kBlockM][Tr::kBlockK + Tr::kPad]);
  IRIS_SHARED(uint16_t, Bs, [Tr::kBlockK][Tr::kBlockN + Tr::kPad]);
  const int t = static_cast<int>(threadIdx.x);
  const int lane = t % 32, warp = t / 32;
  const int wm = warp / Tr::kWarpsN, wn = warp % Tr::kWarpsN;
  const int m0 = static_cast<int>(blockIdx.y) * Tr::kBlockM;
  const int n0 = static_cast<int>(blockIdx.x) * Tr::kBlockN;
  const int nthreads = static_cast<int>(blockDim.x);
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int k0 = 0; k0 < K; k0 += Tr::kBlockK) {
    for (int i = t; i < Tr::kBlockM * Tr::kBlockK; i += nthreads) {
      const int r = i / Tr::kBlockK, c = i % Tr::kBlockK;
      const bool in = m0 + r < M && k0 + c < K;
      As[r][c] = in ? A[(m0 + r) * K + k0 + c] : uint16_t{0};
    }
    for (int i = t; i < Tr::kBlockK * Tr::kBlockN; i += nthreads) {
      const int r = i / Tr::kBlockN, c = i % Tr::kBlockN;
      const bool in = k0 + r < K && n0 + c < N;
      Bs[r][c] = in ? B[(k0 + r) * N + n0 + c] : uint16_t{0};
    }
    __syncthreads();
    uint32_t a[4], b[2];
    // x4: lanes 0-15 address rows 0-15 at k 0, lanes 16-31 the same rows at k 8.
    iris::ptx::ldmatrix_x4(a, &As[wm * 16 + (lane & 15)][(lane >> 4) * 8]);
    // x2.trans: lanes 0-15 address k rows 0-15 (lanes 16-31 are ignored but valid).
    iris::ptx::ldmatrix_x2_trans(b, &Bs[lane & 15][wn * 8]);
    if (bf16)
      iris::ptx::mma_m16n8k16_bf16(acc, a, b, acc);
    else
      iris::ptx::mma_m16n8k16_f16(acc, a, b, acc);
    __syncthreads();
  }
  const int g = lane >> 2, tq = lane & 3;
  for (int i = 0; i < 4; ++i) {
    const int row = m0 + wm * 16 + g + ((i & 2) ? 8 : 0);
    const int col = n0 + wn * 8 + 2 * tq + (i & 1);
    if (row < M && col < N) C[row * N + col] = acc[i];
  }
}

}  // namespace

void mma_fragments(const uint16_t* A, const uint16_t* B, const float* C, float* D, bool bf16) {
  IRIS_LAUNCH(mma_fragments_kernel, 1, 32, 0, 0, A, B, C, D, bf16 ? 1 : 0);
}

void ldmatrix_probe(const uint16_t* tile, const int* row_of_lane, uint32_t* out, int num,
                    bool trans) {
  IRIS_LAUNCH(ldmatrix_probe_kernel, 1, 32, 0, 0, tile, row_of_lane, out, num, trans ? 1 : 0);
}

void mma_gemm(int M, int N, int K, const uint16_t* A, const uint16_t* B, float* C, bool bf16) {
  using Tr = MmaTraits;
  const dim3 grid((N + Tr::kBlockN - 1) / Tr::kBlockN, (M + Tr::kBlockM - 1) / Tr::kBlockM);
  IRIS_LAUNCH(mma_gemm_kernel, grid, 32 * Tr::kWarpsM * Tr::kWarpsN, 0, 0, M, N, K, A, B, C,
              bf16 ? 1 : 0);
}

}  // namespace iris::emu_test
