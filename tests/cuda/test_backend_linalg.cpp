// Backend comparison for the GEMM family: matmul / bmm / linear on the CUDA device
// (emulated in CI, real under `ctest -L cuda`) against the CPU, forward and backward,
// on sizes that are not multiples of the 64x64x16 tiles.
#include "kernels/cuda/runtime.h"
#include "kernels/linalg.h"
#include "kernels/reduce.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

// Broadcast operands and biases get their gradients through a sum (the reduce family);
// until that family has a CUDA kernel those backward comparisons are skipped.
bool cuda_has_reduce() {
  try {
    (void)kernels::reduce_table().get(kCuda);
    return true;
  } catch (const Error&) {
    return false;
  }
}

double tol(DType dt) { return dt == DType::f64 ? 1e-11 : 2e-5; }

// f(a, b) on both devices, forward and the gradients of both operands.
void compare_binary(const char* what, const Tensor& a, const Tensor& b,
                    const std::function<Tensor(const Tensor&, const Tensor&)>& f,
                    bool backward_needs_reduce = false) {
  const double t = tol(a.dtype());
  Tensor ac = a.detach().set_requires_grad(true), bc = b.detach().set_requires_grad(true);
  Tensor ag = a.to(kCuda).detach().set_requires_grad(true);
  Tensor bg = b.to(kCuda).detach().set_requires_grad(true);
  Tensor yc = f(ac, bc), yg = f(ag, bg);
  ASSERT_TRUE(yg.device().is_cuda()) << what;
  EXPECT_CLOSE(yg, yc, t, t) << what;
  if (backward_needs_reduce && !cuda_has_reduce()) return;
  const Tensor dy = randn_seeded(yc.shape(), 77, a.dtype());
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  EXPECT_CLOSE(ag.grad(), ac.grad(), t, t) << what << " grad a";
  EXPECT_CLOSE(bg.grad(), bc.grad(), t, t) << what << " grad b";
}

TEST(BackendLinalg, MatmulOddSizesBothDtypes) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    compare_binary("37x45 @ 45x29", randn_seeded({37, 45}, 1, dt), randn_seeded({45, 29}, 2, dt),
                   [](const Tensor& x, const Tensor& y) { return matmul(x, y); });
    compare_binary("1x3 @ 3x70", randn_seeded({1, 3}, 3, dt), randn_seeded({3, 70}, 4, dt),
                   [](const Tensor& x, const Tensor& y) { return matmul(x, y); });
  }
}

TEST(BackendLinalg, TransposedViews) {
  IRIS_REQUIRE_CUDA();
  // a^T and b^T are views: the kernel reads them through their strides.
  const Tensor a = randn_seeded({45, 37}, 5, DType::f32), b = randn_seeded({29, 45}, 6, DType::f32);
  compare_binary("a^T @ b^T", a, b,
                 [](const Tensor& x, const Tensor& y) { return matmul(x.t(), y.t()); });
  compare_binary("a^T @ a", a, a.contiguous(),
                 [](const Tensor& x, const Tensor& y) { return matmul(x.t(), y); });
}

TEST(BackendLinalg, BatchedAndBroadcast) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    compare_binary("bmm 3x17x33 @ 3x33x20", randn_seeded({3, 17, 33}, 7, dt),
                   randn_seeded({3, 33, 20}, 8, dt),
                   [](const Tensor& x, const Tensor& y) { return bmm(x, y); });
    // a broadcasts over b's batch (batch stride 0 on a)
    compare_binary(
        "1x9x13 @ 4x13x66", randn_seeded({1, 9, 13}, 9, dt), randn_seeded({4, 13, 66}, 10, dt),
        [](const Tensor& x, const Tensor& y) { return matmul(x, y); }, true);
    compare_binary(
        "2x3x19x5 @ 5x70 (folded)", randn_seeded({2, 3, 19, 5}, 11, dt),
        randn_seeded({5, 70}, 12, dt),
        [](const Tensor& x, const Tensor& y) { return matmul(x, y); }, true);
    compare_binary("batched transposed", randn_seeded({2, 21, 11}, 13, dt),
                   randn_seeded({2, 30, 21}, 14, dt), [](const Tensor& x, const Tensor& y) {
                     return matmul(x.transpose(1, 2), y.transpose(1, 2));
                   });
  }
}

TEST(BackendLinalg, LinearWithBias) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    const double t = tol(dt);
    const Tensor x = randn_seeded({5, 7, 23}, 15, dt), w = randn_seeded({67, 23}, 16, dt);
    const Tensor bias = randn_seeded({67}, 17, dt);
    Tensor xc = x.detach().set_requires_grad(true), wc = w.detach().set_requires_grad(true);
    Tensor bc = bias.detach().set_requires_grad(true);
    Tensor xg = x.to(kCuda).detach().set_requires_grad(true);
    Tensor wg = w.to(kCuda).detach().set_requires_grad(true);
    Tensor bg = bias.to(kCuda).detach().set_requires_grad(true);
    Tensor yc = linear(xc, wc, bc), yg = linear(xg, wg, bg);
    EXPECT_CLOSE(yg, yc, t, t);
    if (!cuda_has_reduce()) continue;  // the bias gradient is a sum
    const Tensor dy = randn_seeded(yc.shape(), 18, dt);
    yc.backward(dy);
    yg.backward(dy.to(kCuda));
    EXPECT_CLOSE(xg.grad(), xc.grad(), t, t);
    EXPECT_CLOSE(wg.grad(), wc.grad(), t, t);
    EXPECT_CLOSE(bg.grad(), bc.grad(), t, t);
  }
}

TEST(BackendLinalg, KernelAlphaBetaAndEmptyK) {
  IRIS_REQUIRE_CUDA();
  const Tensor a = randn_seeded({2, 10, 6}, 19, DType::f64),
               b = randn_seeded({2, 6, 70}, 20, DType::f64);
  const Tensor c0 = randn_seeded({2, 10, 70}, 21, DType::f64);
  Tensor cc = c0.clone(), cg = c0.to(kCuda);
  kernels::batched_gemm_table().get(Device::cpu())(a, b, cc, 0.5, -2.0);
  kernels::batched_gemm_table().get(kCuda)(a.to(kCuda), b.to(kCuda), cg, 0.5, -2.0);
  EXPECT_CLOSE(cg, cc, 1e-12, 1e-12);
  // K = 0: out = beta * out
  const Tensor a0 = Tensor::empty({1, 10, 0}, DType::f64),
               b0 = Tensor::empty({1, 0, 70}, DType::f64);
  Tensor e = c0.to(kCuda);
  kernels::batched_gemm_table().get(kCuda)(a0.to(kCuda), b0.to(kCuda), e, 1.0, 3.0);
  EXPECT_CLOSE(e, mul(c0, scalar_like(c0, 3.0)), 1e-12, 1e-12);
}

TEST(BackendLinalg, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor a = randn_seeded({3, 4}, 22, DType::f32).to(kCuda);
  EXPECT_IRIS_ERROR(matmul(a, a), "matmul");
  EXPECT_IRIS_ERROR(matmul(a.to(DType::i32), a.t().to(DType::i32)), "floating-point operands");
}

}  // namespace
}  // namespace iris
