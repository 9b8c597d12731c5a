// The classic shared-memory tiled SGEMM: one thread per output element, tiles
// of A and B staged in shared memory between two barriers per k-step.
#include "kernels/emu/cuda_compat.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

template <int kTile>
__global__ void sgemm_tiled_kernel(int M, int N, int K, const float* A, int lda, const float* B,
                                   int ldb, float* C, int ldc) {
  // +1 column: the transposed read of Bs would otherwise hit one bank 16 times.
  IRIS_SHARED(float, As, [kTile][kTile + 1]);
  IRIS_SHARED(float, Bs, [kTile][kTile + 1]);
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const int row = static_cast<int>(blockIdx.y) * kTile + ty;
  const int col = static_cast<int>(blockIdx.x) * kTile + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kTile) {
    As[ty][tx] = (row < M && k0 + tx < K) ? A[row * lda + k0 + tx] : 0.0f;
    Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * ldb + col] : 0.0f;
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (row < M && col < N) C[row * ldc + col] = acc;
}

}  // namespace

void sgemm_tiled(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
                 int ldc) {
  constexpr int kTile = SgemmTraits::kTile;
  const dim3 grid((N + kTile - 1) / kTile, (M + kTile - 1) / kTile);
  const dim3 block(kTile, kTile);
  IRIS_LAUNCH((sgemm_tiled_kernel<kTile>), grid, block, 0, 0, M, N, K, A, lda, B, ldb, C, ldc);
}

}  // namespace iris::emu_test
