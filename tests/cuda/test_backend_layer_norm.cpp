// Backend comparison for layer norm: forward (output, saved mean/rstd) and backward
// (dx, dweight, dbias) on the CUDA device (emulated in CI, real under `ctest -L cuda`)
// against the CPU, on widths that cover the warp-per-row (<= 1024) and
// block-per-row paths and are not multiples of the warp or block size.
#include <cmath>

#include "autograd/nn_ops.h"
#include "kernels/norm.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

struct Tol {
  double rtol, atol;
};
Tol tol_for(DType dt) { return dt == DType::f64 ? Tol{1e-10, 1e-11} : Tol{2e-5, 2e-5}; }

// layer_norm over the last dim of x [M, N], both backends, forward and backward.
void compare(int64_t M, int64_t N, DType dt, bool affine, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "M=" << M << " N=" << N << " " << dtype_name(dt)
                                    << (affine ? " affine" : " plain"));
  const Tol t = tol_for(dt);
  // Off-centre input so the mean matters.
  const Tensor x0 = randn_seeded({M, N}, seed, dt) + 3.0;
  Tensor xc = x0.detach().set_requires_grad(true);
  Tensor xg = x0.to(kCuda).detach().set_requires_grad(true);
  Tensor wc, bc, wg, bg;
  if (affine) {
    const Tensor w0 = randn_seeded({N}, seed + 1, dt), b0 = randn_seeded({N}, seed + 2, dt);
    wc = w0.detach().set_requires_grad(true);
    bc = b0.detach().set_requires_grad(true);
    wg = w0.to(kCuda).detach().set_requires_grad(true);
    bg = b0.to(kCuda).detach().set_requires_grad(true);
  }
  Tensor yc = layer_norm(xc, {N}, wc, bc), yg = layer_norm(xg, {N}, wg, bg);
  EXPECT_TRUE(yg.device().is_cuda());
  EXPECT_CLOSE(yg.to(Device::cpu()), yc, t.rtol, t.atol) << "forward";
  const Tensor dy = randn_seeded({M, N}, seed + 3, dt);
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  // dx is a difference of O(1) terms: compare against the scale of the row terms.
  EXPECT_CLOSE(xg.grad().to(Device::cpu()), xc.grad(), t.rtol * 10, t.atol * 10) << "dx";
  if (affine) {
    const double s = std::sqrt(static_cast<double>(M));
    EXPECT_CLOSE(wg.grad().to(Device::cpu()), wc.grad(), t.rtol * 10, t.atol * s) << "dweight";
    EXPECT_CLOSE(bg.grad().to(Device::cpu()), bc.grad(), t.rtol * 10, t.atol * s) << "dbias";
  }
}

TEST(BackendLayerNorm, WidthsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 10;
  for (int64_t N : {1, 7, 192, 1000, 1500})
    for (DType dt : {DType::f32, DType::f64}) compare(5, N, dt, true, seed += 4);
}

TEST(BackendLayerNorm, WithoutAffineMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  compare(3, 33, DType::f32, false, 100);
  compare(2, 1500, DType::f64, false, 104);
}

TEST(BackendLayerNorm, ManyRowsUseSeveralRowsPerGroup) {
  IRIS_REQUIRE_CUDA();
  // More rows than partial groups: warp path (N <= 1024) and block path.
  compare(1030, 3, DType::f32, true, 200);
  compare(259, 1031, DType::f32, true, 204);
}

TEST(BackendLayerNorm, SavedStatisticsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  const int64_t M = 4, N = 1000;
  const Tensor x = randn_seeded({M, N}, 300, DType::f64);
  const Tensor w = randn_seeded({N}, 301, DType::f64), b = randn_seeded({N}, 302, DType::f64);
  Tensor out[2], mean[2], rstd[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? Device::cpu() : kCuda;
    out[d] = Tensor::empty({M, N}, DType::f64, dev);
    mean[d] = Tensor::empty({M}, DType::f64, dev);
    rstd[d] = Tensor::empty({M}, DType::f64, dev);
    kernels::layer_norm_forward_table().get(dev)(x.to(dev), w.to(dev), b.to(dev), 1e-5, out[d],
                                                 mean[d], rstd[d]);
  }
  EXPECT_CLOSE(mean[1].to(Device::cpu()), mean[0], 1e-12, 1e-12);
  EXPECT_CLOSE(rstd[1].to(Device::cpu()), rstd[0], 1e-12, 1e-12);
  EXPECT_CLOSE(out[1].to(Device::cpu()), out[0], 1e-11, 1e-11);
}

TEST(BackendLayerNorm, BackwardIsDeterministic) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({300, 40}, 400, DType::f32).to(kCuda);
  const Tensor w = randn_seeded({40}, 401, DType::f32).to(kCuda);
  const Tensor dy = randn_seeded({300, 40}, 402, DType::f32).to(kCuda);
  std::vector<float> first;
  for (int rep = 0; rep < 2; ++rep) {
    Tensor wl = w.detach().set_requires_grad(true);
    layer_norm(x, {40}, wl).backward(dy);
    const std::vector<float> g = wl.grad().to_vector<float>();
    if (rep == 0) first = g;
    else EXPECT_EQ(g, first);
  }
}

TEST(BackendLayerNorm, BackwardPartialOutputsAndEmptyBatch) {
  IRIS_REQUIRE_CUDA();
  const int64_t M = 6, N = 45;
  const Tensor x = randn_seeded({M, N}, 500, DType::f64), w = randn_seeded({N}, 501, DType::f64);
  const Tensor dy = randn_seeded({M, N}, 502, DType::f64);
  Tensor out = Tensor::empty({M, N}, DType::f64), mean = Tensor::empty({M}, DType::f64);
  Tensor rstd = Tensor::empty({M}, DType::f64);
  kernels::layer_norm_forward_table().get(Device::cpu())(x, w, Tensor(), 1e-5, out, mean, rstd);
  // Only dbias; only dweight (no dx): each against the CPU's full backward.
  Tensor dx = Tensor::empty({M, N}, DType::f64), dw = Tensor::empty({N}, DType::f64);
  Tensor db = Tensor::empty({N}, DType::f64);
  kernels::layer_norm_backward_table().get(Device::cpu())(dy, x, mean, rstd, w, dx, dw, db);
  Tensor db_g = Tensor::empty({N}, DType::f64, kCuda), dw_g = Tensor::empty({N}, DType::f64, kCuda);
  const auto bwd = kernels::layer_norm_backward_table().get(kCuda);
  bwd(dy.to(kCuda), x.to(kCuda), mean.to(kCuda), rstd.to(kCuda), w.to(kCuda), Tensor(), Tensor(),
      db_g);
  EXPECT_CLOSE(db_g.to(Device::cpu()), db, 1e-12, 1e-12);
  bwd(dy.to(kCuda), x.to(kCuda), mean.to(kCuda), rstd.to(kCuda), w.to(kCuda), Tensor(), dw_g,
      Tensor());
  EXPECT_CLOSE(dw_g.to(Device::cpu()), dw, 1e-11, 1e-11);
  // M == 0: dweight and dbias are zero.
  const Tensor e = Tensor::empty({0, N}, DType::f64, kCuda), e1 = Tensor::empty({0}, DType::f64, kCuda);
  bwd(e, e, e1, e1, w.to(kCuda), e, dw_g, db_g);
  for (double v : dw_g.to_vector<double>()) EXPECT_EQ(v, 0.0);
  for (double v : db_g.to_vector<double>()) EXPECT_EQ(v, 0.0);
}

TEST(BackendLayerNorm, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = arange(6).reshape({2, 3}).to(kCuda);  // integers: no layer norm
  EXPECT_IRIS_ERROR(layer_norm(x, {3}), "layer_norm");
}

}  // namespace
}  // namespace iris
