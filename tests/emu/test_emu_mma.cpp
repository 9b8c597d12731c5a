// Tensor-core emulation against the PTX ISA: mma.sync m16n8k16 fed with
// fragments built from the documented table, every ldmatrix variant's
// registers against the documented layout, and a GEMM where ldmatrix_x4 (A)
// and ldmatrix_x2_trans (B) feed mma.sync on shapes that are not tile multiples.
#include <cmath>
#include <cstring>
#include <vector>

#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

// Independent decoders of the 16-bit formats (sign, exponent, mantissa).
double decode_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
double decode_f16(uint16_t h) {
  const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return sign ? -v : v;
}
double decode(uint16_t h, bool bf16) { return bf16 ? decode_bf16(h) : decode_f16(h); }

// Random finite values of moderate magnitude, as raw 16-bit patterns.
std::vector<uint16_t> random_halves(size_t n, bool bf16, uint32_t seed) {
  std::vector<uint16_t> v(n);
  uint32_t s = seed * 747796405u + 2891336453u;
  for (uint16_t& h : v) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    const uint32_t sign = (s >> 31) << 15;
    if (bf16) {
      const uint32_t e = 124 + (s >> 8) % 5;  // 2^-3 .. 2^1
      h = static_cast<uint16_t>(sign | e << 7 | (s & 127));
    } else {
      const uint32_t e = 12 + (s >> 8) % 5;
      h = static_cast<uint16_t>(sign | e << 10 | (s & 1023));
    }
    if ((s >> 20) % 9 == 0) h = 0;  // some zeros
  }
  return v;
}

TEST(EmuMma, HalfConversionsRoundTripEveryFiniteValue) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    if (((h >> 10) & 31) != 31) {
      const float f = static_cast<float>(decode_f16(h));
      ASSERT_EQ(__half_as_ushort(__float2half(f)), h) << bits;
      ASSERT_EQ(__half2float(__ushort_as_half(h)), f) << bits;
    }
    if (((h >> 7) & 255) != 255) {
      const float f = static_cast<float>(decode_bf16(h));
      ASSERT_EQ(__bfloat16_as_ushort(__float2bfloat16(f)), h) << bits;
    }
  }
  // Ties round to even; past 65504 rounds to infinity; below 2^-25 to zero.
  EXPECT_EQ(__half_as_ushort(__float2half(1.0f + std::ldexp(1.0f, -11))), 0x3c00);
  EXPECT_EQ(__half_as_ushort(__float2half(1.0f + 3 * std::ldexp(1.0f, -11))), 0x3c02);
  EXPECT_EQ(__half_as_ushort(__float2half(65520.0f)), 0x7c00);
  EXPECT_EQ(__half_as_ushort(__float2half(std::ldexp(1.0f, -25))), 0x0000);
  EXPECT_EQ(__half_as_ushort(__float2half(std::ldexp(1.5f, -25))), 0x0001);
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(1.0f + std::ldexp(1.0f, -8))), 0x3f80);
}

void check_fragments(bool bf16) {
  const std::vector<uint16_t> A = random_halves(16 * 16, bf16, 1),
                              B = random_halves(16 * 8, bf16, 2);
  std::vector<float> C(16 * 8);
  for (int i = 0; i < 16 * 8; ++i) C[i] = 0.25f * (i % 11) - 1.0f;
  DeviceArray<uint16_t> dA(A), dB(B);
  DeviceArray<float> dC(C), dD(16 * 8);
  mma_fragments(dA.get(), dB.get(), dC.get(), dD.get(), bf16);
  const std::vector<float> D = dD.host();
  for (int m = 0; m < 16; ++m) {
    for (int n = 0; n < 8; ++n) {
      double ref = C[m * 8 + n], mag = std::fabs(ref);
      for (int k = 0; k < 16; ++k) {
        const double p = decode(A[m * 16 + k], bf16) * decode(B[k * 8 + n], bf16);
        ref += p;
        mag += std::fabs(p);
      }
      EXPECT_NEAR(D[m * 8 + n], ref, 17 * std::ldexp(1.0, -24) * mag) << m << "," << n;
    }
  }
}

TEST(EmuMma, Bf16FragmentsFollowThePtxTable) { check_fragments(true); }
TEST(EmuMma, F16FragmentsFollowThePtxTable) { check_fragments(false); }

TEST(EmuMma, LdmatrixRegistersFollowThePtxLayout) {
  std::vector<uint16_t> tile(32 * 8);
  for (int r = 0; r < 32; ++r)
    for (int c = 0; c < 8; ++c) tile[r * 8 + c] = static_cast<uint16_t>(1000 + r * 8 + c);
  std::vector<int> row_of_lane(32);
  for (int l = 0; l < 32; ++l) row_of_lane[l] = (l * 5 + 3) % 32;  // rows come from any lane
  DeviceArray<uint16_t> dtile(tile);
  DeviceArray<int> drows(row_of_lane);
  for (int num : {1, 2, 4}) {
    for (bool trans : {false, true}) {
      DeviceArray<uint32_t> dout(32 * 4);
      ldmatrix_probe(dtile.get(), drows.get(), dout.get(), num, trans);
      const std::vector<uint32_t> out = dout.host();
      // Matrix i, row r is the 16 bytes that lane 8i + r pointed at.
      auto M = [&](int i, int r, int c) { return tile[row_of_lane[8 * i + r] * 8 + c]; };
      for (int lane = 0; lane < 32; ++lane) {
        for (int i = 0; i < num; ++i) {
          const int q = lane >> 2, c = 2 * (lane & 3);
          const uint32_t lo = trans ? M(i, c, q) : M(i, q, c);
          const uint32_t hi = trans ? M(i, c + 1, q) : M(i, q, c + 1);
          EXPECT_EQ(out[lane * 4 + i], lo | hi << 16)
              << "x" << num << (trans ? ".trans" : "") << " lane " << lane << " reg " << i;
        }
      }
    }
  }
}

void check_mma_gemm(int M, int N, int K, bool bf16) {
  const std::vector<uint16_t> A = random_halves(static_cast<size_t>(M) * K, bf16, 3);
  const std::vector<uint16_t> B = random_halves(static_cast<size_t>(K) * N, bf16, 4);
  DeviceArray<uint16_t> dA(A), dB(B);
  DeviceArray<float> dC(static_cast<size_t>(M) * N);
  mma_gemm(M, N, K, dA.get(), dB.get(), dC.get(), bf16);
  const std::vector<float> C = dC.host();
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      double ref = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        const double p = decode(A[m * K + k], bf16) * decode(B[k * N + n], bf16);
        ref += p;
        mag += std::fabs(p);
      }
      ASSERT_NEAR(C[m * N + n], ref, (K + 16) * std::ldexp(1.0, -24) * mag)
          << M << "x" << N << "x" << K << " at " << m << "," << n;
    }
  }
}

TEST(EmuMma, Bf16GemmThroughLdmatrixOnRaggedShapes) {
  check_mma_gemm(37, 21, 40, true);
  check_mma_gemm(16, 8, 16, true);
  check_mma_gemm(5, 3, 7, true);
}

TEST(EmuMma, F16GemmThroughLdmatrix) { check_mma_gemm(33, 17, 24, false); }

}  // namespace
}  // namespace iris::emu_test
