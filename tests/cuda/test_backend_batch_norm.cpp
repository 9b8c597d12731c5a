// Backend comparison for batch norm: training (batch statistics, running-stat update)
// and eval, forward and backward (dx, dweight, dbias), on the CUDA device (emulated in
// CI, real under `ctest -L cuda`) against the CPU. Spatial sizes cover the thread-,
// warp- and block-per-row reductions and are not multiples of the warp or block size.
#include <vector>

#include "autograd/nn_ops.h"
#include "kernels/norm.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

struct Tol {
  double rtol, atol;
};
Tol tol_for(DType dt) { return dt == DType::f64 ? Tol{1e-12, 1e-12} : Tol{1e-5, 1e-5}; }

struct Case {
  Shape shape;
  DType dt;
  bool training, affine, running;
  bool transposed = false;  // x reaches the op as a non-dense [N, C, ...] view
};

void compare(const Case& k, uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << shape_str(k.shape) << " " << dtype_name(k.dt) << (k.training ? " train" : " eval")
               << (k.affine ? " affine" : "") << (k.running ? " running" : "")
               << (k.transposed ? " transposed" : ""));
  const Tol t = tol_for(k.dt);
  const int64_t C = k.shape[1];
  Shape base_shape = k.shape;
  if (k.transposed) std::swap(base_shape[0], base_shape[1]);
  // Off-centre input so the mean matters.
  const Tensor x0 = randn_seeded(base_shape, seed, k.dt) * 2.0 + 3.0;
  Tensor w0, b0, rm0, rv0;
  if (k.affine) w0 = randn_seeded({C}, seed + 1, k.dt), b0 = randn_seeded({C}, seed + 2, k.dt);
  if (k.running) {
    rm0 = randn_seeded({C}, seed + 3, k.dt);
    rv0 = randn_seeded({C}, seed + 4, k.dt) * 0.1 + 1.0;
  }
  Tensor x[2], w[2], b[2], rm[2], rv[2], y[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? Device::cpu() : kCuda;
    x[d] = x0.to(dev).detach().set_requires_grad(true);
    if (k.affine) {
      w[d] = w0.to(dev).detach().set_requires_grad(true);
      b[d] = b0.to(dev).detach().set_requires_grad(true);
    }
    if (k.running) rm[d] = rm0.clone().to(dev), rv[d] = rv0.clone().to(dev);  // updated in place
    const Tensor xin = k.transposed ? x[d].transpose(0, 1) : x[d];
    y[d] = batch_norm(xin, rm[d], rv[d], w[d], b[d], k.training, 0.1, 1e-5);
  }
  EXPECT_CLOSE(y[1].to(Device::cpu()), y[0], t.rtol, t.atol) << "forward";
  if (k.running) {
    EXPECT_CLOSE(rm[1].to(Device::cpu()), rm[0], t.rtol, t.atol) << "running_mean";
    EXPECT_CLOSE(rv[1].to(Device::cpu()), rv[0], t.rtol, t.atol) << "running_var";
  }
  const Tensor dy = randn_seeded(y[0].shape(), seed + 5, k.dt);
  y[0].backward(dy);
  y[1].backward(dy.to(kCuda));
  EXPECT_CLOSE(x[1].grad().to(Device::cpu()), x[0].grad(), t.rtol * 10, t.atol * 10) << "dx";
  if (k.affine) {
    EXPECT_CLOSE(w[1].grad().to(Device::cpu()), w[0].grad(), t.rtol, t.atol * 10) << "dweight";
    EXPECT_CLOSE(b[1].grad().to(Device::cpu()), b[0].grad(), t.rtol, t.atol * 10) << "dbias";
  }
}

TEST(BackendBatchNorm, TrainingMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  uint64_t seed = 10;
  // S = 1 (thread per row), 35 (warp per row), 1100 (block per row).
  for (const Shape& s : {Shape{7, 3}, Shape{4, 5, 5, 7}, Shape{2, 3, 1100}})
    for (DType dt : {DType::f32, DType::f64}) compare({s, dt, true, true, true}, seed += 8);
}

TEST(BackendBatchNorm, TrainingWithoutAffineOrRunningStats) {
  IRIS_REQUIRE_CUDA();
  compare({{5, 4, 9}, DType::f64, true, false, false}, 100);
  compare({{3, 2, 40}, DType::f32, true, false, true}, 108);
  compare({{6, 3, 3, 3}, DType::f32, true, true, false, true}, 116);
}

TEST(BackendBatchNorm, EvalMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  compare({{6, 5}, DType::f64, false, true, true}, 200);
  compare({{3, 4, 7, 6}, DType::f32, false, true, true, true}, 208);
  compare({{2, 3, 1030}, DType::f64, false, false, true}, 216);
}

TEST(BackendBatchNorm, StridedParametersAndRunningStats) {
  IRIS_REQUIRE_CUDA();
  // weight, bias and the running stats as columns of [C, 2] tensors (stride 2).
  const int64_t N = 4, C = 3, S = 10;
  const Tensor x = randn_seeded({N, C, S}, 300, DType::f64) + 1.0;
  const Tensor p0 = randn_seeded({4, C, 2}, 301, DType::f64) * 0.2 + 1.0;
  Tensor p[2], out[2], sm[2], si[2];
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? Device::cpu() : kCuda;
    p[d] = p0.clone().to(dev);  // the running stats are updated in place
    out[d] = Tensor::empty({N, C, S}, DType::f64, dev);
    sm[d] = Tensor::empty({C}, DType::f64, dev);
    si[d] = Tensor::empty({C}, DType::f64, dev);
    kernels::batch_norm_forward_table().get(dev)(
        x.to(dev), p[d].select(0, 0).select(1, 0), p[d].select(0, 1).select(1, 0),
        p[d].select(0, 2).select(1, 0), p[d].select(0, 3).select(1, 0), true, 0.3, 1e-5, out[d],
        sm[d], si[d]);
  }
  EXPECT_CLOSE(out[1].to(Device::cpu()), out[0], 1e-12, 1e-12);
  EXPECT_CLOSE(sm[1].to(Device::cpu()), sm[0], 1e-14, 1e-14);
  EXPECT_CLOSE(si[1].to(Device::cpu()), si[0], 1e-14, 1e-14);
  // The running stats (and only they) changed, column 0 only.
  EXPECT_CLOSE(p[1].to(Device::cpu()), p[0], 1e-14, 1e-14);
  EXPECT_EQ(p[0].select(2, 1).to_vector<double>(),
            p0.select(2, 1).contiguous().to_vector<double>());
}

TEST(BackendBatchNorm, BackwardPartialOutputs) {
  IRIS_REQUIRE_CUDA();
  const int64_t N = 3, C = 4, S = 33;
  const Tensor x = randn_seeded({N, C, S}, 400, DType::f64), dy = randn_seeded({N, C, S}, 401);
  const Tensor w = randn_seeded({C}, 402, DType::f64);
  for (bool training : {true, false}) {
    Tensor y = Tensor::empty({N, C, S}, DType::f64), sm = Tensor::empty({C}, DType::f64);
    Tensor si = Tensor::empty({C}, DType::f64);
    const Tensor rm = randn_seeded({C}, 403), rv = randn_seeded({C}, 404) * 0.1 + 1.0;
    kernels::batch_norm_forward_table().get(Device::cpu())(x, w, Tensor(), rm.clone(), rv.clone(),
                                                           training, 0.1, 1e-5, y, sm, si);
    Tensor dx = Tensor::empty({N, C, S}, DType::f64), dw = Tensor::empty({C}, DType::f64);
    Tensor db = Tensor::empty({C}, DType::f64);
    kernels::batch_norm_backward_table().get(Device::cpu())(dy, x, sm, si, w, training, dx, dw, db);
    const auto bwd = kernels::batch_norm_backward_table().get(kCuda);
    Tensor dx_g = Tensor::empty({N, C, S}, DType::f64, kCuda);
    Tensor dw_g = Tensor::empty({C}, DType::f64, kCuda),
           db_g = Tensor::empty({C}, DType::f64, kCuda);
    bwd(dy.to(kCuda), x.to(kCuda), sm.to(kCuda), si.to(kCuda), w.to(kCuda), training, dx_g,
        Tensor(), Tensor());
    EXPECT_CLOSE(dx_g.to(Device::cpu()), dx, 1e-12, 1e-12) << "dx only";
    bwd(dy.to(kCuda), x.to(kCuda), sm.to(kCuda), si.to(kCuda), w.to(kCuda), training, Tensor(),
        dw_g, db_g);
    EXPECT_CLOSE(dw_g.to(Device::cpu()), dw, 1e-12, 1e-12) << "dweight";
    EXPECT_CLOSE(db_g.to(Device::cpu()), db, 1e-12, 1e-12) << "dbias";
  }
}

TEST(BackendBatchNorm, Deterministic) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({9, 6, 70}, 500, DType::f32).to(kCuda);
  const Tensor dy = randn_seeded({9, 6, 70}, 501, DType::f32).to(kCuda);
  std::vector<float> first_y, first_dw;
  for (int rep = 0; rep < 2; ++rep) {
    Tensor w = ones({6}, DType::f32, kCuda).set_requires_grad(true);
    const Tensor y = batch_norm(x, Tensor(), Tensor(), w, Tensor(), true);
    y.backward(dy);
    if (rep == 0) {
      first_y = y.to_vector<float>(), first_dw = w.grad().to_vector<float>();
    } else {
      EXPECT_EQ(y.to_vector<float>(), first_y);
      EXPECT_EQ(w.grad().to_vector<float>(), first_dw);
    }
  }
}

TEST(BackendBatchNorm, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor ints = Tensor::from_vector(std::vector<int32_t>(24, 1), {2, 3, 4}, kCuda);
  EXPECT_IRIS_ERROR(batch_norm(ints, Tensor(), Tensor(), Tensor(), Tensor(), true), "batch_norm");
  const Tensor one = randn_seeded({1, 3}, 6, DType::f32).to(kCuda);
  EXPECT_IRIS_ERROR(batch_norm(one, Tensor(), Tensor(), Tensor(), Tensor(), true),
                    "batch_norm: expected more than 1 value per channel");
}

}  // namespace
}  // namespace iris
