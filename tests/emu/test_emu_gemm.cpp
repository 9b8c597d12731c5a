// The shared-memory tiled SGEMM on shapes that are not tile multiples, against
// a double-precision reference.
#include <cmath>
#include <vector>

#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

std::vector<float> matrix(int rows, int cols, int seed) {
  std::vector<float> m(static_cast<size_t>(rows) * cols);
  uint32_t s = 2463534242u + static_cast<uint32_t>(seed);
  for (float& x : m) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    x = static_cast<float>(s % 2001) / 1000.0f - 1.0f;
  }
  return m;
}

void check_sgemm(int M, int N, int K, int lda_pad, int ldc_pad) {
  const int lda = K + lda_pad, ldb = N, ldc = N + ldc_pad;
  const std::vector<float> A = matrix(M, lda, 1), B = matrix(K, ldb, 2);
  DeviceArray<float> dA(A), dB(B), dC(static_cast<size_t>(M) * ldc);
  dC.fill_zero();
  sgemm_tiled(M, N, K, dA.get(), lda, dB.get(), ldb, dC.get(), ldc);
  const std::vector<float> C = dC.host();
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double ref = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        ref += static_cast<double>(A[i * lda + k]) * B[k * ldb + j];
        mag += std::fabs(static_cast<double>(A[i * lda + k]) * B[k * ldb + j]);
      }
      // fp32 products and sums: |error| <= (K + 1) * 2^-24 * sum |a b|.
      const double tol = (K + 1) * std::ldexp(1.0, -24) * mag + 1e-30;
      ASSERT_NEAR(C[i * ldc + j], ref, tol) << M << "x" << N << "x" << K << " at " << i << "," << j;
    }
    for (int j = N; j < ldc; ++j) ASSERT_EQ(C[i * ldc + j], 0.0f) << "wrote outside C";
  }
}

TEST(EmuGemm, TiledSgemmOnRaggedShapes) {
  check_sgemm(37, 29, 45, 0, 0);
  check_sgemm(16, 16, 16, 0, 0);
  check_sgemm(1, 1, 1, 0, 0);
  check_sgemm(50, 17, 33, 3, 5);  // leading dimensions wider than the matrices
}

}  // namespace
}  // namespace iris::emu_test
