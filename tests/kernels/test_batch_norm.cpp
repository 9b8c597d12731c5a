// batch_norm in training and eval against a plain double-precision reference:
// outputs, the in-place running-stat update, analytic gradients, float64
// gradchecks for every input and mode, and argument errors.
#include <cmath>
#include <vector>

#include "autograd/nn_ops.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

struct BatchNormRef {
  std::vector<double> y, dx, dw, db, running_mean, running_var;
};

// x [N, C, S] flattened; w, b empty for none; running stats always given.
BatchNormRef reference(const std::vector<double>& x, const std::vector<double>& w,
                       const std::vector<double>& b, std::vector<double> rm, std::vector<double> rv,
                       const std::vector<double>& dy, int64_t N, int64_t C, int64_t S,
                       bool training, double momentum, double eps) {
  BatchNormRef r;
  r.y.resize(x.size());
  r.dx.resize(x.size());
  r.dw.assign(C, 0);
  r.db.assign(C, 0);
  const double M = static_cast<double>(N * S);
  auto at = [&](int64_t n, int64_t c, int64_t s) { return (n * C + c) * S + s; };
  for (int64_t c = 0; c < C; ++c) {
    long double mean = 0, var = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean += x[at(n, c, s)];
    mean /= M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) var += (x[at(n, c, s)] - mean) * (x[at(n, c, s)] - mean);
    var /= M;
    double use_mean = static_cast<double>(mean), use_var = static_cast<double>(var);
    if (training) {
      rm[c] = (1 - momentum) * rm[c] + momentum * use_mean;
      rv[c] = (1 - momentum) * rv[c] + momentum * use_var * M / (M - 1);
    } else {
      use_mean = rm[c];
      use_var = rv[c];
    }
    const double invstd = 1 / std::sqrt(use_var + eps);
    const double wc = w.empty() ? 1 : w[c], bc = b.empty() ? 0 : b[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t k = at(n, c, s);
        const double xhat = (x[k] - use_mean) * invstd;
        r.y[k] = xhat * wc + bc;
        sum_dy += dy[k];
        sum_dy_xhat += dy[k] * xhat;
      }
    r.dw[c] = sum_dy_xhat;
    r.db[c] = sum_dy;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t k = at(n, c, s);
        const double xhat = (x[k] - use_mean) * invstd;
        r.dx[k] = training ? wc * invstd * (dy[k] - sum_dy / M - xhat * sum_dy_xhat / M)
                           : wc * invstd * dy[k];
      }
  }
  r.running_mean = rm;
  r.running_var = rv;
  return r;
}

Tensor doubles(const std::vector<double>& v, const Shape& shape) {
  return Tensor::from_vector(v, shape);
}

struct Case {
  Shape shape;
  bool training;
  bool affine;
};

void run_case(const Case& cs, const Tensor& x_in, double rtol, double atol) {
  SCOPED_TRACE(::testing::Message() << shape_str(cs.shape) << " training " << cs.training
                                    << " affine " << cs.affine << " " << x_in.desc());
  const DType dt = x_in.dtype();
  const int64_t N = cs.shape[0], C = cs.shape[1], S = x_in.numel() / (N * C);
  // Reference data in [N, C, S] order (x_in may be a strided view).
  const std::vector<double> xv = x_in.to_vector<double>();
  Tensor x = x_in.detach();
  x.set_requires_grad(true);
  Tensor w, b;
  if (cs.affine) {
    w = randn_seeded({C}, 5, dt).set_requires_grad(true);
    b = randn_seeded({C}, 6, dt).set_requires_grad(true);
  }
  const Tensor rm = randn_seeded({C}, 7, dt);
  const Tensor rv = (randn_seeded({C}, 8, dt) * randn_seeded({C}, 8, dt) + 0.5).to(dt);
  const std::vector<double> rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
  const Tensor dy = randn_seeded(cs.shape, 9, dt);
  const uint32_t version0 = rm.storage()->version();

  const Tensor y = batch_norm(x, rm, rv, w, b, cs.training, 0.3, 1e-4);
  y.backward(dy);

  const BatchNormRef ref = reference(xv, cs.affine ? w.to_vector<double>() : std::vector<double>{},
                                     cs.affine ? b.to_vector<double>() : std::vector<double>{}, rm0,
                                     rv0, dy.to_vector<double>(), N, C, S, cs.training, 0.3, 1e-4);
  EXPECT_CLOSE(y, doubles(ref.y, cs.shape), rtol, atol);
  EXPECT_CLOSE(x.grad(), doubles(ref.dx, cs.shape), rtol, atol);
  if (cs.affine) {
    EXPECT_CLOSE(w.grad(), doubles(ref.dw, {C}), rtol, atol * N * S);
    EXPECT_CLOSE(b.grad(), doubles(ref.db, {C}), rtol, atol * N * S);
  }
  EXPECT_CLOSE(rm, doubles(ref.running_mean, {C}), rtol, atol);
  EXPECT_CLOSE(rv, doubles(ref.running_var, {C}), rtol, atol);
  if (cs.training) {
    EXPECT_GT(rm.storage()->version(), version0);
  } else {
    EXPECT_EQ(rm.storage()->version(), version0);
  }
}

TEST(BatchNorm, MatchesReferenceIn2D3D4DTrainingAndEval) {
  for (const Shape& s : {Shape{13, 5}, Shape{4, 3, 7}, Shape{3, 4, 5, 6}})
    for (bool training : {true, false})
      for (bool affine : {true, false}) {
        const Case cs{s, training, affine};
        run_case(cs, randn_seeded(s, 1, DType::f32) * 2.0 + 0.5, 1e-5, 1e-5);
        run_case(cs, randn_seeded(s, 2, DType::f64), 1e-11, 1e-12);
      }
}

TEST(BatchNorm, StridedChannelsLastInput) {
  // A [N, H, W, C] buffer viewed as [N, C, H, W].
  const Tensor nhwc = randn_seeded({3, 5, 6, 4}, 3, DType::f32);
  const Tensor x = nhwc.permute({0, 3, 1, 2});
  ASSERT_FALSE(x.is_contiguous());
  run_case({{3, 4, 5, 6}, true, true}, x, 1e-5, 1e-5);
  run_case({{3, 4, 5, 6}, false, true}, x, 1e-5, 1e-5);
}

TEST(BatchNorm, LargeMeanTrainingStaysAccurate) {
  const Tensor x = (randn_seeded({8, 3, 50}, 4, DType::f64) + 1e4).to(DType::f32);
  run_case({{8, 3, 50}, true, true}, x, 1e-5, 1e-5);
}

TEST(BatchNorm, RunningStatUpdateIsPyTorchsFormula) {
  // Channel 0 holds 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3).
  const Tensor x = Tensor::from_vector<double>({1, 10, 2, 20, 3, 30, 6, 60}, {4, 2});
  const Tensor rm = Tensor::from_vector<double>({1, -1}, {2});
  const Tensor rv = Tensor::from_vector<double>({2, 4}, {2});
  batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.25);
  EXPECT_CLOSE(rm, Tensor::from_vector<double>({0.75 * 1 + 0.25 * 3, 0.75 * -1 + 0.25 * 30}, {2}),
               1e-15, 0);
  EXPECT_CLOSE(
      rv,
      Tensor::from_vector<double>({0.75 * 2 + 0.25 * 14.0 / 3, 0.75 * 4 + 0.25 * 1400.0 / 3}, {2}),
      1e-15, 0);
  // Training without running stats is allowed; eval without them is not.
  EXPECT_EQ(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true).shape(), x.shape());
}

TEST(BatchNorm, GradcheckEveryInputTrainingAndEval) {
  for (bool training : {true, false})
    for (const Shape& s : {Shape{5, 3}, Shape{2, 3, 4}, Shape{2, 2, 3, 2}}) {
      SCOPED_TRACE(::testing::Message() << shape_str(s) << " training " << training);
      const int64_t C = s[1];
      const Tensor rm = randn_seeded({C}, 11);
      const Tensor rv = (randn_seeded({C}, 12) * randn_seeded({C}, 12) + 0.5);
      EXPECT_GRADCHECK(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{
                batch_norm(in[0], rm.clone(), rv.clone(), in[1], in[2], training, 0.1, 1e-3)};
          },
          {param(s, 1), param({C}, 2), param({C}, 3)});
      EXPECT_GRADCHECK(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{
                batch_norm(in[0], rm.clone(), rv.clone(), Tensor(), Tensor(), training)};
          },
          {param(s, 4)});
    }
}

TEST(BatchNorm, BadArgumentsNameTheOp) {
  const Tensor x = randn_seeded({4, 3, 2}, 1, DType::f32);
  const Tensor rs = zeros({3});
  EXPECT_IRIS_ERROR(batch_norm(x, Tensor(), Tensor()), "batch_norm: running_mean and running_var");
  EXPECT_IRIS_ERROR(
      batch_norm(randn_seeded({1, 3}, 1, DType::f32), rs, ones({3}), Tensor(), Tensor(), true),
      "batch_norm: expected more than 1 value per channel");
  EXPECT_IRIS_ERROR(batch_norm(x, rs, ones({3}), ones({4})), "batch_norm: weight float32[4]");
  EXPECT_IRIS_ERROR(batch_norm(x, zeros({2}), ones({3})), "batch_norm: running_mean float32[2]");
  EXPECT_IRIS_ERROR(batch_norm(x, rs, ones({3}, DType::f64)), "batch_norm: running_var float64[3]");
  EXPECT_IRIS_ERROR(batch_norm(randn_seeded({4}, 1, DType::f32), rs, rs), "batch_norm: expected");
}

}  // namespace
}  // namespace iris
