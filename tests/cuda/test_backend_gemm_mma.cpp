// The tensor-core batched GEMM (bf16 / fp16 in, fp32 accumulation, C in the operands'
// dtype) through the batched_gemm table on the CUDA device (emulated in CI, real under
// `ctest -L cuda`). The CPU backend has no 16-bit GEMM, so the reference is computed here
// in double from the 16-bit inputs. Tolerance by the rule: the kernel's largest
// error against that reference is at most twice that of the naive computation in the same
// precision (every product and partial sum rounded to the 16-bit type), and each element
// is within one rounding to the 16-bit type of an fp32-accumulated result. Shapes are not
// multiples of the 64x64x32 tiles; operands cover cp.async staging (16-byte aligned rows,
// partial chunks at the edges), plain staging (unaligned rows), transposed views and a
// broadcast batch.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "kernels/linalg.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

float round_to(DType dt, float v) {
  return dt == DType::bf16 ? bf16_to_float(float_to_bf16(v)) : f16_to_float(float_to_f16(v));
}

// Unit roundoff of the 16-bit type (8 or 11 significant bits).
double unit_roundoff(DType dt) {
  return dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
}

using View = std::function<Tensor(const Tensor&)>;
Tensor identity(const Tensor& t) { return t; }

// a_store / b_store: the operands' storage (CPU, 16-bit); a_view / b_view make the [B, M, K]
// and [B, K, N] views the kernel sees, the same way on both devices.
void check_gemm(const std::string& what, const Tensor& a_store, const View& a_view,
                const Tensor& b_store, const View& b_view, double alpha = 1.0, double beta = 0.0,
                uint64_t c_seed = 0) {
  SCOPED_TRACE(what + " " + dtype_name(a_store.dtype()));
  const DType dt = a_store.dtype();
  const Tensor a = a_view(a_store), b = b_view(b_store);
  const int64_t Ba = a.size(0), Bb = b.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  const int64_t B = std::max(Ba, Bb);
  const Tensor c0 = beta != 0.0 ? randn_seeded({B, M, N}, c_seed, DType::f32).to(dt)
                                : Tensor::empty({B, M, N}, dt);
  Tensor out = c0.to(kCuda);
  kernels::batched_gemm_table().get(kCuda)(a_view(a_store.to(kCuda)), b_view(b_store.to(kCuda)),
                                           out, alpha, beta);
  const std::vector<float> A = a.to_vector<float>(), Bv = b.to_vector<float>();
  const std::vector<float> C0 = beta != 0.0 ? c0.to_vector<float>() : std::vector<float>();
  const std::vector<float> got = out.to_vector<float>();
  const double u = unit_roundoff(dt);
  double err = 0, naive_err = 0;
  for (int64_t z = 0; z < B; ++z) {
    const float* Az = A.data() + (Ba == 1 ? 0 : z) * M * K;
    const float* Bz = Bv.data() + (Bb == 1 ? 0 : z) * K * N;
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        double ref = 0, mag = 0;
        float naive = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double p = static_cast<double>(Az[m * K + k]) * Bz[k * N + n];
          ref += p, mag += std::fabs(p);
          naive = round_to(dt, naive + round_to(dt, Az[m * K + k] * Bz[k * N + n]));
        }
        const int64_t i = (z * M + m) * N + n;
        const double c = beta != 0.0 ? C0[i] : 0.0;
        ref = alpha * ref + beta * c;
        const float naive_out =
            round_to(dt, static_cast<float>(alpha * naive + (beta != 0.0 ? beta * c : 0.0)));
        const double accumulate =
            (K + 3) * std::ldexp(1.0, -24) * (std::fabs(alpha) * mag + std::fabs(beta * c));
        const double e = std::fabs(got[i] - ref);
        ASSERT_LE(e, u * std::fabs(ref) + (1 + u) * accumulate + 1e-30)
            << "at batch " << z << " (" << m << ", " << n << "): got " << got[i] << ", want "
            << ref;
        err = std::max(err, e);
        naive_err = std::max(naive_err, std::fabs(naive_out - ref));
      }
    }
  }
  EXPECT_LE(err, 2 * naive_err) << "kernel error " << err << ", naive " << naive_err;
}

Tensor half_randn(const Shape& shape, uint64_t seed, DType dt) {
  return randn_seeded(shape, seed, DType::f32).to(dt);
}

class GemmMma : public ::testing::TestWithParam<DType> {};

TEST_P(GemmMma, UnalignedRowsTakeThePlainStagingPath) {
  IRIS_REQUIRE_CUDA();
  const DType dt = GetParam();
  // K = 45 and N = 29: rows are not 16-byte aligned.
  check_gemm("2x37x45 @ 2x45x29", half_randn({2, 37, 45}, 1, dt), identity,
             half_randn({2, 45, 29}, 2, dt), identity);
}

TEST_P(GemmMma, AlignedRowsTakeCpAsyncWithPartialEdgeChunks) {
  IRIS_REQUIRE_CUDA();
  const DType dt = GetParam();
  check_gemm("1x70x40 @ 1x40x72", half_randn({1, 70, 40}, 3, dt), identity,
             half_randn({1, 40, 72}, 4, dt), identity);
  // Rows 48 apart but K = 43 and N = 21 wide: the last chunk of a row is partly outside.
  check_gemm(
      "strided 2x33x43 @ 2x43x21", half_randn({2, 33, 48}, 5, dt),
      [](const Tensor& t) {
        return t.as_strided({2, 33, 43}, {33 * 48, 48, 1}, t.offset());
      },
      half_randn({2, 43, 24}, 6, dt),
      [](const Tensor& t) {
        return t.as_strided({2, 43, 21}, {43 * 24, 24, 1}, t.offset());
      });
}

TEST_P(GemmMma, TransposedOperands) {
  IRIS_REQUIRE_CUDA();
  const DType dt = GetParam();
  const View tr = [](const Tensor& t) { return t.transpose(1, 2); };
  // a^T with aligned M (cp.async, stored [k][m]); b^T with aligned K (stored [n][k]).
  check_gemm("a^T 64x40, b^T 40x50", half_randn({1, 40, 64}, 7, dt), tr,
             half_randn({1, 50, 40}, 8, dt), tr);
  // unaligned transposed rows: plain staging
  check_gemm("a^T 33x45, b^T 45x19", half_randn({2, 45, 33}, 9, dt), tr,
             half_randn({2, 19, 45}, 10, dt), tr);
}

TEST_P(GemmMma, BroadcastBatchAlphaBeta) {
  IRIS_REQUIRE_CUDA();
  const DType dt = GetParam();
  check_gemm("1x19x40 @ 3x40x16", half_randn({1, 19, 40}, 11, dt), identity,
             half_randn({3, 40, 16}, 12, dt), identity);
  check_gemm("alpha 0.5 beta -1", half_randn({2, 21, 35}, 13, dt), identity,
             half_randn({2, 35, 66}, 14, dt), identity, 0.5, -1.0, 15);
}

TEST_P(GemmMma, EmptyKScalesC) {
  IRIS_REQUIRE_CUDA();
  const DType dt = GetParam();
  check_gemm("K = 0", Tensor::empty({1, 9, 0}, dt), identity, Tensor::empty({1, 0, 70}, dt),
             identity, 1.0, 2.0, 16);
}

// The op layer passes 16-bit device operands straight to this kernel (the batch folded
// into rows): the same values as the table call checked above.
TEST_P(GemmMma, MatmulOpReachesTheTensorCoreKernel) {
  IRIS_REQUIRE_CUDA();
  const DType dt = GetParam();
  const Tensor a = half_randn({2, 37, 45}, 17, dt).to(kCuda), b = half_randn({45, 29}, 18, dt);
  const Tensor bg = b.to(kCuda);
  Tensor want = Tensor::empty({1, 74, 29}, dt, kCuda);
  kernels::batched_gemm_table().get(kCuda)(a.reshape({1, 74, 45}), bg.reshape({1, 45, 29}), want,
                                           1.0, 0.0);
  const Tensor got = matmul(a, bg);
  ASSERT_EQ(got.dtype(), dt);
  EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GemmMma, ::testing::Values(DType::bf16, DType::f16),
                         [](const ::testing::TestParamInfo<DType>& i) {
                           return std::string(dtype_name(i.param));
                         });

}  // namespace
}  // namespace iris
