// GEMM with bias / GELU epilogues (the gemm_epilogue table) on the CUDA device: on a real GPU
// the automatic path is cuBLASLt (BIAS / GELU_BIAS epilogues) and hand_written forces iris's
// kernels; under the emulator (no cuBLASLt) both run the hand-written kernels, whose epilogue
// is what is checked there, and the routing decision is checked as a pure function.
// Reference: long double from the operands' values. Tolerance by the issue's rule: the
// largest error is at most twice that of the naive computation in the operands' precision
// (products, partial sums, the bias add and the GELU each rounded to the dtype; for 16-bit
// types this is what a 16-bit accumulator would give). The CPU backend's kernel (fp32/fp64)
// is held to the same bound. Shapes are not multiples of the 64x64 tiles.
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "autograd/ops.h"
#include "core/stream.h"
#include "kernels/cuda/gemm_lt.h"
#include "kernels/elementwise_math.h"
#include "kernels/gemm_epilogue.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using kernels::GemmEpilogue;
using kernels::GemmImpl;
using kernels::GemmLtProblem;
using testing::kCuda;
using testing::randn_seeded;

// ---- routing (pure; the same answer on every build) ----

GemmLtProblem linear_problem(DType dt) {
  GemmLtProblem p;
  p.dtype = dt;
  p.B = 1, p.M = 37, p.N = 29, p.K = 45;
  p.b_trans = true;  // W [N, K] read as W^T
  p.lda = 45, p.ldb = 45;
  p.ep = GemmEpilogue::bias;
  return p;
}

TEST(GemmLtRoute, CublasLtOnlyWhereAvailableAndAllowed) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    const GemmLtProblem p = linear_problem(dt);
    EXPECT_TRUE(kernels::gemm_prefers_cublaslt(p, true, GemmImpl::automatic));
    EXPECT_FALSE(kernels::gemm_prefers_cublaslt(p, false, GemmImpl::automatic));  // emulator
    EXPECT_FALSE(kernels::gemm_prefers_cublaslt(p, true, GemmImpl::hand_written));
  }
  // fp64 has no fp32-compute cuBLASLt path: iris's kernel.
  EXPECT_FALSE(
      kernels::gemm_prefers_cublaslt(linear_problem(DType::f64), true, GemmImpl::automatic));
}

TEST(GemmLtRoute, EmptyProblemsAndInvalidLeadingDimsStayHandWritten) {
  GemmLtProblem p = linear_problem(DType::f32);
  p.K = 0;  // out = beta * out: nothing to multiply
  EXPECT_FALSE(kernels::gemm_prefers_cublaslt(p, true, GemmImpl::automatic));
  p = linear_problem(DType::f32);
  p.ldb = 44;  // W^T stored [N][K] needs ldb >= K in the column-major view
  EXPECT_FALSE(kernels::gemm_prefers_cublaslt(p, true, GemmImpl::automatic));
  p = linear_problem(DType::f32);
  p.b_trans = false, p.ldb = 28;  // row-major B [K, N] needs ldb >= N
  EXPECT_FALSE(kernels::gemm_prefers_cublaslt(p, true, GemmImpl::automatic));
  p.ldb = 29;
  EXPECT_TRUE(kernels::gemm_prefers_cublaslt(p, true, GemmImpl::automatic));
  p.a_trans = true, p.lda = 36;  // A^T stored [K][M] needs lda >= M
  EXPECT_FALSE(kernels::gemm_prefers_cublaslt(p, true, GemmImpl::automatic));
}

// ---- numerics ----

float round_to(DType dt, double v) {
  switch (dt) {
    case DType::bf16:
      return bf16_to_float(float_to_bf16(static_cast<float>(v)));
    case DType::f16:
      return f16_to_float(float_to_f16(static_cast<float>(v)));
    default:
      return static_cast<float>(v);
  }
}

// The naive result in the operands' precision (double for f64, else float, rounded to dt).
template <class T>
double naive_value(DType dt, const std::vector<double>& a_row, const std::vector<double>& b_col,
                   double bias, GemmEpilogue ep) {
  auto rnd = [dt](T v) -> T {
    if constexpr (std::is_same_v<T, double>)
      return v;
    else
      return round_to(dt, v);
  };
  T acc = 0;
  for (size_t k = 0; k < a_row.size(); ++k)
    acc = rnd(acc + rnd(static_cast<T>(a_row[k]) * static_cast<T>(b_col[k])));
  if (ep == GemmEpilogue::none) return acc;
  acc = rnd(acc + static_cast<T>(bias));
  if (ep == GemmEpilogue::bias_gelu_tanh)
    acc = rnd(kernels::unary_value(kernels::UnaryOp::gelu_tanh, {}, acc));
  return acc;
}

using View = std::function<Tensor(const Tensor&)>;
Tensor identity(const Tensor& t) { return t; }
Tensor transposed(const Tensor& t) { return t.transpose(1, 2); }

struct Errors {
  double got = 0, naive = 0;
};

// Max error of `out` (dt values on any device) against the long double reference, and the naive
// computation's.
Errors errors_of(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& out,
                 GemmEpilogue ep) {
  const DType dt = out.dtype();
  const int64_t Ba = a.size(0), Bb = b.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  const int64_t B = out.size(0);
  const std::vector<double> A = a.contiguous().to_vector<double>(),
                            Bv = b.contiguous().to_vector<double>(),
                            bias_v = bias.defined() ? bias.to_vector<double>()
                                                    : std::vector<double>(size_t(N), 0.0),
                            got = out.to_vector<double>();
  Errors e;
  std::vector<double> a_row(static_cast<size_t>(K)), b_col(static_cast<size_t>(K));
  for (int64_t z = 0; z < B; ++z)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        long double ref = 0;  // wider than the fp64 naive computation
        for (int64_t k = 0; k < K; ++k) {
          a_row[size_t(k)] = A[size_t(((Ba == 1 ? 0 : z) * M + m) * K + k)];
          b_col[size_t(k)] = Bv[size_t(((Bb == 1 ? 0 : z) * K + k) * N + n)];
          ref += static_cast<long double>(a_row[size_t(k)]) * b_col[size_t(k)];
        }
        if (ep != GemmEpilogue::none) ref += bias_v[size_t(n)];
        if (ep == GemmEpilogue::bias_gelu_tanh)
          ref = kernels::unary_value(kernels::UnaryOp::gelu_tanh, {}, ref);
        const double naive = dt == DType::f64
                                 ? naive_value<double>(dt, a_row, b_col, bias_v[size_t(n)], ep)
                                 : naive_value<float>(dt, a_row, b_col, bias_v[size_t(n)], ep);
        e.got = std::max(e.got, double(std::fabs(got[size_t((z * M + m) * N + n)] - ref)));
        e.naive = std::max(e.naive, double(std::fabs(naive - ref)));
      }
  return e;
}

// a_store / b_store on the CPU in the test's dtype; the views give the [B, M, K] / [B, K, N]
// operands the kernel sees, the same way on both devices.
void check_epilogue(const std::string& what, const Tensor& a_store, const View& a_view,
                    const Tensor& b_store, const View& b_view, GemmEpilogue ep, GemmImpl impl,
                    uint64_t bias_seed) {
  const DType dt = a_store.dtype();
  SCOPED_TRACE(what + " " + dtype_name(dt) + " " + kernels::gemm_epilogue_name(ep));
  const Tensor a = a_view(a_store), b = b_view(b_store);
  const int64_t B = std::max(a.size(0), b.size(0)), M = a.size(1), N = b.size(2);
  const Tensor bias =
      ep == GemmEpilogue::none ? Tensor() : randn_seeded({N}, bias_seed, DType::f32).to(dt);
  Tensor out = Tensor::empty({B, M, N}, dt, kCuda);
  kernels::gemm_epilogue_table().get(kCuda)(a_view(a_store.to(kCuda)), b_view(b_store.to(kCuda)),
                                            bias.defined() ? bias.to(kCuda) : Tensor(), out, ep,
                                            impl);
  const Errors cuda = errors_of(a, b, bias, out, ep);
  ASSERT_GT(cuda.naive, 0.0);
  EXPECT_LE(cuda.got, 2 * cuda.naive) << "cuda error " << cuda.got << ", naive " << cuda.naive;
  if (dt == DType::f32 || dt == DType::f64) {  // the CPU backend computes these dtypes
    Tensor cpu_out = Tensor::empty({B, M, N}, dt);
    kernels::gemm_epilogue_table().get(Device::cpu())(a, b, bias, cpu_out, ep, impl);
    const Errors cpu = errors_of(a, b, bias, cpu_out, ep);
    EXPECT_LE(cpu.got, 2 * cpu.naive) << "cpu error " << cpu.got << ", naive " << cpu.naive;
  }
}

Tensor randn_as(const Shape& shape, uint64_t seed, DType dt) {
  return randn_seeded(shape, seed, DType::f32).to(dt);
}

class GemmEpilogueCuda : public ::testing::TestWithParam<std::tuple<DType, GemmImpl>> {};

// A linear layer: x [1, 37, 45] @ W^T with W [29, 45], one bias per output feature.
TEST_P(GemmEpilogueCuda, LinearLayerBiasAndGelu) {
  IRIS_REQUIRE_CUDA();
  const auto [dt, impl] = GetParam();
  const Tensor x = randn_as({1, 37, 45}, 1, dt), w = randn_as({1, 29, 45}, 2, dt);
  check_epilogue("x W^T", x, identity, w, transposed, GemmEpilogue::bias, impl, 3);
  check_epilogue("x W^T", x, identity, w, transposed, GemmEpilogue::bias_gelu_tanh, impl, 4);
}

TEST_P(GemmEpilogueCuda, BatchedBroadcastAndTransposedOperands) {
  IRIS_REQUIRE_CUDA();
  const auto [dt, impl] = GetParam();
  check_epilogue("1x21x35 @ 3x35x18", randn_as({1, 21, 35}, 5, dt), identity,
                 randn_as({3, 35, 18}, 6, dt), identity, GemmEpilogue::bias_gelu_tanh, impl, 7);
  check_epilogue("a^T 2x19x40 @ 2x40x33", randn_as({2, 40, 19}, 8, dt), transposed,
                 randn_as({2, 40, 33}, 9, dt), identity, GemmEpilogue::bias, impl, 10);
  check_epilogue("no epilogue", randn_as({2, 13, 27}, 11, dt), identity,
                 randn_as({2, 27, 70}, 12, dt), identity, GemmEpilogue::none, impl, 0);
}

INSTANTIATE_TEST_SUITE_P(
    DtypesAndPaths, GemmEpilogueCuda,
    ::testing::Combine(::testing::Values(DType::f32, DType::f64, DType::bf16, DType::f16),
                       ::testing::Values(GemmImpl::automatic, GemmImpl::hand_written)),
    [](const ::testing::TestParamInfo<std::tuple<DType, GemmImpl>>& i) {
      return std::string(dtype_name(std::get<0>(i.param))) +
             (std::get<1>(i.param) == GemmImpl::automatic ? "_automatic" : "_hand_written");
    });

TEST(GemmEpilogueCuda, BadBiasIsAnErrorNamingTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor a = zeros({1, 4, 6}, DType::f32, kCuda);
  const Tensor b = zeros({1, 6, 5}, DType::f32, kCuda);
  const Tensor out = Tensor::empty({1, 4, 5}, DType::f32, kCuda);
  const auto fn = kernels::gemm_epilogue_table().get(kCuda);
  EXPECT_IRIS_ERROR(fn(a, b, Tensor(), out, GemmEpilogue::bias, GemmImpl::automatic),
                    "gemm_epilogue: epilogue bias needs a bias");
  EXPECT_IRIS_ERROR(
      fn(a, b, zeros({4}, DType::f32, kCuda), out, GemmEpilogue::bias, GemmImpl::automatic),
      "gemm_epilogue: bias");
  EXPECT_IRIS_ERROR(fn(a, b, zeros({5}, DType::f32), out, GemmEpilogue::bias, GemmImpl::automatic),
                    "gemm_epilogue: bias");
  EXPECT_IRIS_ERROR(fn(a, zeros({1, 5, 5}, DType::f32, kCuda), Tensor(), out, GemmEpilogue::none,
                       GemmImpl::automatic),
                    "gemm_epilogue: shapes do not agree");
}

// ---- streams: both paths launch on the current stream (the emulator runs a created stream's
// work only when the host waits, so a GEMM on the wrong stream reads stale data there) ----

using cuda::Event;
using cuda::Stream;
using cuda::StreamGuard;

// out = a @ b through the backend's GEMM (cuBLASLt on a GPU), on the current stream. Small
// M, N and a long K: cuBLASLt's heuristic picks split-K algorithms, which use the workspace.
Tensor gemm_on_current_stream(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty({a.size(0), a.size(1), b.size(2)}, a.dtype(), kCuda);
  kernels::gemm_epilogue_table().get(kCuda)(a, b, Tensor(), out, GemmEpilogue::none,
                                            GemmImpl::automatic);
  return out;
}

void expect_product(const std::string& what, const Tensor& a, const Tensor& b, const Tensor& out) {
  SCOPED_TRACE(what);
  const Errors e = errors_of(a, b, Tensor(), out, GemmEpilogue::none);
  ASSERT_GT(e.naive, 0.0);
  EXPECT_LE(e.got, 2 * e.naive) << "cuda error " << e.got << ", naive " << e.naive;
}

TEST(GemmLtStreams, AnEventOrdersGemmsOnTwoStreams) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_as({1, 24, 1536}, 21, DType::f32).to(kCuda);
  const Tensor w = randn_as({1, 1536, 40}, 22, DType::f32).to(kCuda);
  const Tensor v = randn_as({1, 40, 1280}, 23, DType::f32).to(kCuda);
  const Stream a = Stream::create(), b = Stream::create();
  Tensor y, z;
  Event produced;
  {
    StreamGuard g(a);
    y = gemm_on_current_stream(x, w);
    produced.record();
  }
  {
    StreamGuard g(b);
    b.wait(produced);
    z = gemm_on_current_stream(y, v);  // reads y after a's GEMM wrote it
    cuda::record_stream(y, b);
  }
  b.synchronize();
  a.synchronize();
  expect_product("y = x w on a", x, w, y);
  expect_product("z = y v on b", y, v, z);
}

// Two host threads, each issuing split-K GEMMs on its own stream with no ordering between the
// streams: each call's workspace is its stream's, so the results are those of one GEMM alone
// (bit-identical to a run on the default stream; a shared workspace would mix partial sums).
TEST(GemmLtStreams, ConcurrentStreamsKeepTheirOwnWorkspaces) {
  IRIS_REQUIRE_CUDA();
  constexpr int kRounds = 6;
  const Tensor xa = randn_as({1, 16, 2048}, 31, DType::f32).to(kCuda);
  const Tensor wa = randn_as({1, 2048, 24}, 32, DType::f32).to(kCuda);
  const Tensor xb = randn_as({1, 16, 2048}, 33, DType::f32).to(kCuda);
  const Tensor wb = randn_as({1, 2048, 24}, 34, DType::f32).to(kCuda);
  const std::vector<float> want_a = gemm_on_current_stream(xa, wa).to_vector<float>();
  const std::vector<float> want_b = gemm_on_current_stream(xb, wb).to_vector<float>();
  const Stream sa = Stream::create(), sb = Stream::create();
  std::vector<Tensor> got_a(kRounds), got_b(kRounds);
  auto issue = [](const Stream& s, const Tensor& x, const Tensor& w, std::vector<Tensor>& out) {
    StreamGuard g(s);
    for (Tensor& t : out) t = gemm_on_current_stream(x, w);
  };
  std::thread ta(issue, std::cref(sa), std::cref(xa), std::cref(wa), std::ref(got_a));
  std::thread tb(issue, std::cref(sb), std::cref(xb), std::cref(wb), std::ref(got_b));
  ta.join();
  tb.join();
  sa.synchronize();
  sb.synchronize();
  for (int r = 0; r < kRounds; ++r) {
    SCOPED_TRACE("round " + std::to_string(r));
    EXPECT_EQ(got_a[size_t(r)].to_vector<float>(), want_a);
    EXPECT_EQ(got_b[size_t(r)].to_vector<float>(), want_b);
  }
  expect_product("x_a w_a", xa, wa, got_a[0]);
  expect_product("x_b w_b", xb, wb, got_b[0]);
}

}  // namespace
}  // namespace iris
