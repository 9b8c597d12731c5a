// iris::cpu::gemm against a naive triple loop in higher precision, on every fp32 ISA path
// this CPU can run and at several thread counts. The tolerance is the classic dot-product
// error bound, |err| <= (K + 4) * eps * sum_k |alpha a_ik b_kj| (+ |beta c_ij|).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu/gemm.h"

namespace iris::cpu {
namespace {

struct Shape {
  int64_t M, N, K;
};

// Edge cases first; the last ones cross the MC / NC cache blocks and the thread split
// thresholds (split along M and along N).
const Shape kShapes[] = {{1, 1, 1},      {7, 13, 5},      {33, 65, 17},
                         {64, 64, 64},   {127, 129, 131}, {300, 200, 500},
                         {700, 40, 300}, {40, 1000, 300}, {20, 4200, 30}};

template <class T>
using Accum = std::conditional_t<std::is_same_v<T, float>, double, long double>;

// A rows x cols matrix stored with leading dimension ld; the padding holds NaN so that a
// read outside the logical matrix poisons the result.
template <class T>
std::vector<T> random_matrix(int64_t rows, int64_t cols, int64_t ld, std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<T> m(size_t(std::max<int64_t>(1, rows * ld)), std::numeric_limits<T>::quiet_NaN());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) m[r * ld + c] = T(dist(rng));
  }
  return m;
}

struct Operands {
  bool trans_a, trans_b;
  Shape s;
  int64_t lda, ldb, ldc;
};

Operands make_operands(bool trans_a, bool trans_b, Shape s, int64_t ld_pad) {
  return {trans_a,     trans_b, s, (trans_a ? s.M : s.K) + ld_pad, (trans_b ? s.K : s.N) + ld_pad,
          s.N + ld_pad};
}

// Checks C (after the call) against alpha * op(A) op(B) + beta * C0 element by element;
// the columns of C beyond N must be untouched.
template <class T>
void expect_matches(const Operands& o, T alpha, const std::vector<T>& A, const std::vector<T>& B,
                    T beta, const std::vector<T>& C0, const std::vector<T>& C) {
  using R = Accum<T>;
  const auto [M, N, K] = o.s;
  const double eps = std::numeric_limits<T>::epsilon();
  int64_t failures = 0;
  for (int64_t i = 0; i < M && failures < 5; ++i) {
    for (int64_t j = 0; j < o.ldc; ++j) {
      const T got = C[i * o.ldc + j];
      if (j >= N) {
        const T old = C0[i * o.ldc + j];
        EXPECT_TRUE(std::isnan(old) ? std::isnan(got) : got == old)
            << "padding touched at " << i << "," << j;
        continue;
      }
      R sum = 0, abs_sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        const R a = o.trans_a ? A[k * o.lda + i] : A[i * o.lda + k];
        const R b = o.trans_b ? B[j * o.ldb + k] : B[k * o.ldb + j];
        sum += a * b;
        abs_sum += std::fabs(a * b);
      }
      R want = R(alpha) * sum, bound = std::fabs(R(alpha)) * abs_sum;
      if (beta != T(0)) {
        want += R(beta) * R(C0[i * o.ldc + j]);
        bound += std::fabs(R(beta) * R(C0[i * o.ldc + j]));
      }
      const double err = double(std::fabs(R(got) - want));
      const double tol = double(K + 4) * eps * double(bound) + std::numeric_limits<T>::min();
      if (!(err <= tol)) {
        ++failures;
        ADD_FAILURE() << "C[" << i << "," << j << "] = " << got << ", want " << double(want)
                      << " (err " << err << " > tol " << tol << ")";
      }
    }
  }
}

template <class T>
void check_gemm(const Operands& o, T alpha, T beta, uint32_t seed) {
  const auto [M, N, K] = o.s;
  SCOPED_TRACE(::testing::Message()
               << "trans_a=" << o.trans_a << " trans_b=" << o.trans_b << " M=" << M << " N=" << N
               << " K=" << K << " alpha=" << alpha << " beta=" << beta << " lda=" << o.lda
               << " ldb=" << o.ldb << " ldc=" << o.ldc);
  std::mt19937 rng(seed);
  const auto A =
      o.trans_a ? random_matrix<T>(K, M, o.lda, rng) : random_matrix<T>(M, K, o.lda, rng);
  const auto B =
      o.trans_b ? random_matrix<T>(N, K, o.ldb, rng) : random_matrix<T>(K, N, o.ldb, rng);
  auto C0 = random_matrix<T>(M, N, o.ldc, rng);
  // beta == 0 must ignore C entirely, NaN included.
  if (beta == T(0)) {
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) C0[i * o.ldc + j] = std::numeric_limits<T>::quiet_NaN();
    }
  }
  auto C = C0;
  gemm(o.trans_a, o.trans_b, M, N, K, alpha, A.data(), o.lda, B.data(), o.ldb, beta, C.data(),
       o.ldc);
  expect_matches(o, alpha, A, B, beta, C0, C);
}

struct ScaleCase {
  double alpha, beta;
};
const ScaleCase kScales[] = {{1.0, 0.0}, {0.5, -1.5}, {-2.0, 1.0}};

// Every shape, transpose pair and scale; with_ld_padding adds one run with leading
// dimensions 3 wider than the matrices.
template <class T>
void check_all_shapes(bool with_ld_padding) {
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    for (int t = 0; t < 4; ++t) {
      const bool trans_a = t & 1, trans_b = t & 2;
      for (const ScaleCase& sc : kScales) {
        check_gemm<T>(make_operands(trans_a, trans_b, s, 0), T(sc.alpha), T(sc.beta), seed++);
      }
      if (with_ld_padding) {
        check_gemm<T>(make_operands(trans_a, trans_b, s, 3), T(0.5), T(-1.5), seed++);
      }
    }
  }
}

// Restores the automatic ISA choice and the thread count when a test ends.
class GemmPath : public ::testing::TestWithParam<std::tuple<std::string, int>> {
 protected:
  void SetUp() override {
    saved_threads_ = iris::num_threads();
    const auto& [isa, threads] = GetParam();
    if (!detail::gemm_force_isa(isa.c_str())) GTEST_SKIP() << isa << " not supported here";
    iris::set_num_threads(threads);
  }
  void TearDown() override {
    detail::gemm_force_isa(nullptr);
    iris::set_num_threads(saved_threads_);
  }
  int saved_threads_ = 1;
};

TEST_P(GemmPath, Fp32AllTransposesShapesAndScales) {
  EXPECT_STREQ(gemm_isa(), std::get<0>(GetParam()).c_str());
  check_all_shapes<float>(true);
}

TEST_P(GemmPath, Fp64AllTransposesShapesAndScales) { check_all_shapes<double>(false); }

TEST_P(GemmPath, BatchedWithBroadcastOperands) {
  // Small products (parallel over the batch) and, at 2 threads, products large enough
  // (> 134 MFLOP) to be parallel inside each product.
  for (const Shape s : {Shape{33, 65, 17}, Shape{416, 320, 520}}) {
    for (const auto& [bcast_a, bcast_b] : {std::pair{false, false}, {true, false}, {false, true}}) {
      const int64_t batch = 3;
      const Operands o = make_operands(false, true, s, 1);
      const int64_t stride_a = bcast_a ? 0 : s.M * o.lda, stride_b = bcast_b ? 0 : s.N * o.ldb;
      const int64_t stride_c = s.M * o.ldc + 5;
      std::mt19937 rng(7);
      const auto A = random_matrix<float>(bcast_a ? s.M : batch * s.M, s.K, o.lda, rng);
      const auto B = random_matrix<float>(bcast_b ? s.N : batch * s.N, s.K, o.ldb, rng);
      // Fully random storage: the products start mid-row, so no NaN padding columns here.
      const auto C0 = random_matrix<float>(batch * s.M + 1, o.ldc, o.ldc, rng);
      auto C = C0;
      gemm_batched(batch, false, true, s.M, s.N, s.K, 0.75f, A.data(), o.lda, stride_a, B.data(),
                   o.ldb, stride_b, 0.25f, C.data(), o.ldc, stride_c);
      for (int64_t b = 0; b < batch; ++b) {
        SCOPED_TRACE(::testing::Message() << "M=" << s.M << " batch " << b << " bcast_a=" << bcast_a
                                          << " bcast_b=" << bcast_b);
        const auto slice = [](const std::vector<float>& v, int64_t offset, int64_t count) {
          return std::vector<float>(v.begin() + offset, v.begin() + offset + count);
        };
        const int64_t c_count = s.M * o.ldc;
        expect_matches(o, 0.75f, slice(A, b * stride_a, s.M * o.lda),
                       slice(B, b * stride_b, s.N * o.ldb), 0.25f, slice(C0, b * stride_c, c_count),
                       slice(C, b * stride_c, c_count));
      }
    }
  }
}

TEST_P(GemmPath, Fp64Batched) {
  const Shape s{17, 9, 40};
  const int64_t batch = 4;
  const Operands o = make_operands(true, false, s, 0);
  std::mt19937 rng(3);
  const auto A = random_matrix<double>(batch * s.K, s.M, o.lda, rng);
  const auto B = random_matrix<double>(s.K, s.N, o.ldb, rng);
  auto C = random_matrix<double>(batch * s.M, s.N, o.ldc, rng);
  const auto C0 = C;
  gemm_batched(batch, true, false, s.M, s.N, s.K, 1.0, A.data(), o.lda, s.K * o.lda, B.data(),
               o.ldb, 0, 0.0, C.data(), o.ldc, s.M * o.ldc);
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<double> Ab(A.begin() + b * s.K * o.lda, A.begin() + (b + 1) * s.K * o.lda);
    const std::vector<double> Cb(C.begin() + b * s.M * o.ldc, C.begin() + (b + 1) * s.M * o.ldc);
    const std::vector<double> C0b(C0.begin() + b * s.M * o.ldc, C0.begin() + (b + 1) * s.M * o.ldc);
    expect_matches(o, 1.0, Ab, B, 0.0, C0b, Cb);
  }
}

std::string path_name(const ::testing::TestParamInfo<GemmPath::ParamType>& info) {
  return std::get<0>(info.param) + "_" + std::to_string(std::get<1>(info.param)) + "threads";
}

// 3 threads gives uneven splits of the M x N grid.
INSTANTIATE_TEST_SUITE_P(IsaAndThreads, GemmPath,
                         ::testing::Values(std::tuple{"avx512", 1}, std::tuple{"avx512", 2},
                                           std::tuple{"avx512", 3}, std::tuple{"avx2", 1},
                                           std::tuple{"avx2", 2}, std::tuple{"generic", 1},
                                           std::tuple{"generic", 2}),
                         path_name);

TEST(Gemm, ReportsAnIsaAndRejectsUnknownOnes) {
  const std::string isa = gemm_isa();
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "generic") << isa;
  EXPECT_FALSE(detail::gemm_force_isa("sse9"));
  EXPECT_EQ(gemm_isa(), isa);
  EXPECT_TRUE(detail::gemm_force_isa("generic"));
  EXPECT_STREQ(gemm_isa(), "generic");
  EXPECT_TRUE(detail::gemm_force_isa(""));
  EXPECT_EQ(gemm_isa(), isa);
}

TEST(Gemm, KZeroScalesCAndNeverReadsAB) {
  std::vector<float> C = {1, 2, std::numeric_limits<float>::quiet_NaN(), 4};
  gemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 2.0f, C.data(), 2);
  EXPECT_EQ(C[0], 2.0f);
  EXPECT_EQ(C[3], 8.0f);
  gemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, C.data(), 2);
  for (float c : C) EXPECT_EQ(c, 0.0f);
}

TEST(Gemm, AlphaZeroIgnoresNaNOperands) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> A(6, nan), B(6, nan);
  std::vector<double> Cd = {1, 2, 3, 4};
  std::vector<float> C = {1, 2, 3, 4};
  gemm(false, false, 2, 2, 3, 0.0f, A.data(), 3, B.data(), 2, 0.5f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
  gemm(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 1.0, Cd.data(), 2);
  EXPECT_EQ(Cd, (std::vector<double>{1, 2, 3, 4}));
}

TEST(Gemm, EmptyOutputIsANoOp) {
  float c = 5.0f;
  gemm(false, false, 0, 4, 3, 1.0f, nullptr, 3, nullptr, 4, 0.0f, nullptr, 4);
  gemm(false, false, 1, 0, 3, 1.0f, nullptr, 3, nullptr, 1, 0.0f, &c, 1);
  gemm_batched(0, false, false, 2, 2, 2, 1.0f, nullptr, 2, 4, nullptr, 2, 4, 0.0f, nullptr, 2, 4);
  EXPECT_EQ(c, 5.0f);
}

TEST(Gemm, InvalidArgumentsThrow) {
  std::vector<float> A(64, 1.0f), B(64, 1.0f), C(64, 0.0f);
  const auto call = [&](bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                        int64_t ldc) {
    gemm(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), ldc);
  };
  EXPECT_NO_THROW(call(false, false, 4, 5, 3, 3, 5, 5));
  EXPECT_THROW(call(false, false, -1, 5, 3, 3, 5, 5), Error);
  EXPECT_THROW(call(false, false, 4, -5, 3, 3, 5, 5), Error);
  EXPECT_THROW(call(false, false, 4, 5, -3, 3, 5, 5), Error);
  EXPECT_THROW(call(false, false, 4, 5, 3, 2, 5, 5), Error);  // lda < K
  EXPECT_THROW(call(true, false, 4, 5, 3, 3, 5, 5), Error);   // lda < M (A is K x M)
  EXPECT_THROW(call(false, false, 4, 5, 3, 3, 4, 5), Error);  // ldb < N
  EXPECT_THROW(call(false, true, 4, 5, 3, 3, 2, 5), Error);   // ldb < K (B is N x K)
  EXPECT_THROW(call(false, false, 4, 5, 3, 3, 5, 4), Error);  // ldc < N
  EXPECT_THROW(call(false, false, 4, 5, 3, 0, 5, 5), Error);
  EXPECT_THROW(gemm(false, false, 2, 2, 2, 1.0f, nullptr, 2, B.data(), 2, 0.0f, C.data(), 2),
               Error);
  std::vector<double> D(16, 0.0);
  EXPECT_THROW(gemm(false, false, 2, 2, 2, 1.0, D.data(), 1, D.data(), 2, 0.0, D.data(), 2), Error);
  EXPECT_THROW(gemm_batched(-1, false, false, 2, 2, 2, 1.0f, A.data(), 2, 4, B.data(), 2, 4, 0.0f,
                            C.data(), 2, 4),
               Error);
  EXPECT_THROW(gemm_batched(2, false, false, 2, 2, 2, 1.0f, A.data(), 2, -4, B.data(), 2, 4, 0.0f,
                            C.data(), 2, 4),
               Error);
  // stride_c 0 (or too small) would make the products race on the same C.
  EXPECT_THROW(gemm_batched(2, false, false, 2, 2, 2, 1.0f, A.data(), 2, 4, B.data(), 2, 4, 0.0f,
                            C.data(), 2, 0),
               Error);
  EXPECT_THROW(gemm_batched(2, false, false, 2, 2, 2, 1.0, D.data(), 2, 4, D.data(), 1, 4, 0.0,
                            D.data(), 2, 4),
               Error);
  try {
    call(false, false, 4, 5, 3, 2, 5, 5);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemm: lda=2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace iris::cpu
