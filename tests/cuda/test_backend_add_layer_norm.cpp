// Backend comparison for add_layer_norm (s = x + residual, y = layer_norm(s), fused): the
// CUDA device (emulated in CI, real under `ctest -L cuda`) against the CPU, forward (s, y,
// saved statistics) and backward (dx = dresidual, dweight, dbias), on widths of the
// warp-per-row (<= 1024) and block-per-row paths, row counts that are not multiples of the
// rows per block or of the partial groups, either upstream gradient absent, bf16/f16 by the
// house rule, and the errors.
#include <cmath>
#include <vector>

#include "autograd/nn_ops.h"
#include "autograd/node.h"
#include "kernels/norm.h"
#include "tests/support/half_rule.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

struct Tol {
  double rtol, atol;
};
Tol tol_for(DType dt) { return dt == DType::f64 ? Tol{1e-10, 1e-11} : Tol{2e-5, 2e-5}; }

Tensor leaf(const Tensor& t) { return t.defined() ? t.detach().set_requires_grad(true) : t; }
Tensor cpu(const Tensor& t) { return t.to(Device::cpu()); }

struct Run {
  Tensor s, y, dx, dr, dw, db;
};

// The fused op on `dev` with ds / dy as the upstream gradients of s / y (undefined: unused).
Run run(const Device& dev, const Tensor& x0, const Tensor& r0, const Tensor& w0, const Tensor& b0,
        const Tensor& ds, const Tensor& dy) {
  const int64_t N = x0.size(-1);
  Tensor x = leaf(x0.to(dev)), r = leaf(r0.to(dev));
  Tensor w = w0.defined() ? leaf(w0.to(dev)) : Tensor(), b = b0.defined() ? leaf(b0.to(dev)) : b0;
  const AddLayerNormResult o = add_layer_norm(x, r, {N}, w, b);
  EXPECT_EQ(o.out.device(), dev);
  std::vector<Tensor> roots, grads;
  if (ds.defined()) roots.push_back(o.sum), grads.push_back(ds.to(dev));
  if (dy.defined()) roots.push_back(o.out), grads.push_back(dy.to(dev));
  autograd::backward(roots, grads, false);
  return {cpu(o.sum),
          cpu(o.out),
          cpu(x.grad()),
          cpu(r.grad()),
          w.defined() ? cpu(w.grad()) : Tensor(),
          b.defined() ? cpu(b.grad()) : Tensor()};
}

void compare(int64_t M, int64_t N, DType dt, bool affine, bool with_ds, bool with_dy,
             uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "M=" << M << " N=" << N << " " << dtype_name(dt)
                                    << (affine ? " affine" : " plain") << (with_ds ? " ds" : "")
                                    << (with_dy ? " dy" : ""));
  const Tol t = tol_for(dt);
  const Tensor x = randn_seeded({M, N}, seed, dt) + 3.0;  // off-centre: the mean matters
  const Tensor r = randn_seeded({M, N}, seed + 1, dt);
  const Tensor w = affine ? randn_seeded({N}, seed + 2, dt) : Tensor();
  const Tensor b = affine ? randn_seeded({N}, seed + 3, dt) : Tensor();
  const Tensor ds = with_ds ? randn_seeded({M, N}, seed + 4, dt) : Tensor();
  const Tensor dy = with_dy ? randn_seeded({M, N}, seed + 5, dt) : Tensor();
  const Run c = run(Device::cpu(), x, r, w, b, ds, dy), g = run(kCuda, x, r, w, b, ds, dy);
  EXPECT_CLOSE(g.s, c.s, 0, 0) << "sum";
  EXPECT_CLOSE(g.y, c.y, t.rtol, t.atol) << "out";
  // dx is a difference of O(1) terms: compare against the scale of the row terms.
  EXPECT_CLOSE(g.dx, c.dx, t.rtol * 10, t.atol * 10) << "dx";
  EXPECT_CLOSE(g.dr, g.dx, 0, 0) << "dresidual";
  if (affine) {
    const double sm = std::sqrt(static_cast<double>(M));
    EXPECT_CLOSE(g.dw, c.dw, t.rtol * 10, t.atol * sm) << "dweight";
    EXPECT_CLOSE(g.db, c.db, t.rtol * 10, t.atol * sm) << "dbias";
  }
}

TEST(BackendAddLayerNorm, WidthsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 10;
  for (int64_t N : {1, 7, 192, 1000, 1024, 1025, 1500})
    for (DType dt : {DType::f32, DType::f64}) compare(5, N, dt, true, true, true, seed += 6);
}

TEST(BackendAddLayerNorm, WithoutAffineAndWithAbsentGradients) {
  IRIS_REQUIRE_CUDA();
  compare(3, 33, DType::f32, false, true, true, 100);
  compare(2, 1500, DType::f64, false, true, true, 110);
  for (int64_t N : {45, 1100}) {
    compare(4, N, DType::f32, true, false, true, 120 + N);  // only y is used
    compare(4, N, DType::f32, true, true, false, 130 + N);  // only s is used
  }
}

TEST(BackendAddLayerNorm, ManyRowsUseSeveralRowsPerGroup) {
  IRIS_REQUIRE_CUDA();
  // More rows than partial groups, and than rows per block: warp path and block path.
  compare(1030, 3, DType::f32, true, true, true, 200);
  compare(259, 1031, DType::f32, true, true, true, 210);
}

TEST(BackendAddLayerNorm, MatchesAddThenLayerNormOnTheDevice) {
  IRIS_REQUIRE_CUDA();
  // The fused forward runs the layer norm's rows on the stored sum: the same bits.
  for (int64_t N : {100, 1300}) {
    const Tensor x = randn_seeded({6, N}, 300 + N, DType::f32).to(kCuda);
    const Tensor r = randn_seeded({6, N}, 301 + N, DType::f32).to(kCuda);
    const Tensor w = randn_seeded({N}, 302 + N, DType::f32).to(kCuda);
    const AddLayerNormResult o = add_layer_norm(x, r, {N}, w);
    EXPECT_CLOSE(cpu(o.sum), cpu(x + r), 0, 0) << N;
    EXPECT_CLOSE(cpu(o.out), cpu(layer_norm(x + r, {N}, w)), 0, 0) << N;
  }
}

TEST(BackendAddLayerNorm, KernelWithoutDyOrDs) {
  IRIS_REQUIRE_CUDA();
  const int64_t M = 6, N = 45;
  const Tensor x = randn_seeded({M, N}, 400), r = randn_seeded({M, N}, 401);
  const Tensor w = randn_seeded({N}, 402), ds = randn_seeded({M, N}, 403);
  const Tensor dy = randn_seeded({M, N}, 404);
  Tensor s = Tensor::empty({M, N}, DType::f64, kCuda), y = Tensor::empty({M, N}, DType::f64, kCuda);
  Tensor mean = Tensor::empty({M}, DType::f64, kCuda), rstd = Tensor::empty({M}, DType::f64, kCuda);
  kernels::add_layer_norm_forward_table().get(kCuda)(x.to(kCuda), r.to(kCuda), w.to(kCuda),
                                                     Tensor(), 1e-5, s, y, mean, rstd);
  const auto bwd = kernels::add_layer_norm_backward_table().get(kCuda);
  auto grads = [&](const Tensor& g_y, const Tensor& g_s) {
    std::vector<Tensor> out{Tensor::empty({M, N}, DType::f64, kCuda),
                            Tensor::empty({N}, DType::f64, kCuda),
                            Tensor::empty({N}, DType::f64, kCuda)};
    bwd(g_y.defined() ? g_y.to(kCuda) : g_y, g_s.defined() ? g_s.to(kCuda) : g_s, s, mean, rstd,
        w.to(kCuda), out[0], out[1], out[2]);
    return std::vector<Tensor>{cpu(out[0]), cpu(out[1]), cpu(out[2])};
  };
  const std::vector<Tensor> full = grads(dy, ds), no_ds = grads(dy, Tensor());
  const std::vector<Tensor> no_dy = grads(Tensor(), ds), none = grads(Tensor(), Tensor());
  EXPECT_CLOSE(full[0], no_ds[0] + ds, 1e-14, 1e-14);
  EXPECT_CLOSE(full[1], no_ds[1], 0, 0);
  EXPECT_CLOSE(full[2], no_ds[2], 0, 0);
  EXPECT_CLOSE(no_dy[0], ds, 0, 0);
  EXPECT_CLOSE(no_dy[1], zeros({N}, DType::f64), 0, 0);
  EXPECT_CLOSE(no_dy[2], zeros({N}, DType::f64), 0, 0);
  EXPECT_CLOSE(none[0], zeros({M, N}, DType::f64), 0, 0);
  // Without ds, the layer norm's own backward on the device.
  Tensor dx_ln = Tensor::empty({M, N}, DType::f64, kCuda);
  kernels::layer_norm_backward_table().get(kCuda)(dy.to(kCuda), s, mean, rstd, w.to(kCuda), dx_ln,
                                                  Tensor(), Tensor());
  EXPECT_CLOSE(no_ds[0], cpu(dx_ln), 0, 0);
}

// bf16/f16 on the device: the sum is the 16-bit add's, y, dx, dweight, dbias within the
// house rule of the naive 16-bit computation against float64.
void check_half(DType dt, int64_t M, int64_t N) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " M " << M << " N " << N);
  const Tensor x = (randn_seeded({M, N}, 71, DType::f32) + 2.0).to(dt);
  const Tensor r = randn_seeded({M, N}, 72, DType::f32).to(dt);
  const Tensor w = (randn_seeded({N}, 73, DType::f32) + 1.0).to(dt);
  const Tensor b = randn_seeded({N}, 74, DType::f32).to(dt);
  const Tensor dy = randn_seeded({M, N}, 75, DType::f32).to(dt);
  const Tensor ds = randn_seeded({M, N}, 76, DType::f32).to(dt);
  const Run g = run(kCuda, x, r, w, b, ds, dy);
  ASSERT_EQ(g.y.dtype(), dt);
  EXPECT_TRUE(testing::same_bits(g.s, x + r)) << "the sum is the 16-bit add's";
  Tensor x64 = leaf(x.to(DType::f64)), r64 = leaf(r.to(DType::f64));
  Tensor w64 = leaf(w.to(DType::f64)), b64 = leaf(b.to(DType::f64));
  const Tensor s64 = x64 + r64;
  const Tensor y64 = layer_norm(s64, {N}, w64, b64);
  autograd::backward({s64, y64}, {ds.to(DType::f64), dy.to(DType::f64)}, false);
  EXPECT_TRUE(testing::within_rule(g.y, testing::naive_layer_norm(g.s, w, b, 1e-5, dt), y64));
  const testing::NaiveLayerNormGrads naive =
      testing::naive_layer_norm_backward(dy, g.s, w, 1e-5, dt);
  std::vector<double> dxv = naive.dx.to_vector<double>();
  const std::vector<double> dsv = ds.to_vector<double>();
  for (size_t i = 0; i < dxv.size(); ++i) dxv[i] = testing::r16(dxv[i] + dsv[i], dt);
  EXPECT_TRUE(testing::within_rule(g.dx, testing::from_doubles(dxv, {M, N}), x64.grad())) << "dx";
  EXPECT_TRUE(testing::within_rule(g.dw, naive.dw, w64.grad())) << "dweight";
  EXPECT_TRUE(testing::within_rule(g.db, naive.db, b64.grad())) << "dbias";
}

TEST(BackendAddLayerNorm, HalfTypesFollowTheHouseRule) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::bf16, DType::f16})
    for (int64_t N : {7, 1500}) check_half(dt, 9, N);
}

TEST(BackendAddLayerNorm, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({2, 3}, 1, DType::f32).to(kCuda);
  EXPECT_IRIS_ERROR(add_layer_norm(x, randn_seeded({3, 2}, 2, DType::f32).to(kCuda), {3}),
                    "add_layer_norm: residual float32[3, 2]");
  EXPECT_IRIS_ERROR(add_layer_norm(x, randn_seeded({2, 3}, 2, DType::f32), {3}),
                    "add_layer_norm: residual float32[2, 3] cpu");
  const Tensor xi = arange(6).reshape({2, 3}).to(kCuda);  // integers: no layer norm
  EXPECT_IRIS_ERROR(add_layer_norm(xi, xi, {3}), "add_layer_norm");
}

}  // namespace
}  // namespace iris
