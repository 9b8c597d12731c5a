#pragma once
// The bf16/fp16 accuracy rule of the house, for tests: an op's error against an fp64
// reference is at most 2x that of the naive computation in the same precision (every
// arithmetic step rounded to the 16-bit type, sums accumulated in order). The naive
// computations of the row ops, and the layer-norm and cross-entropy checks, live here: shared
// by the CPU test (tests/kernels/test_half_ops.cpp) and the backend one (tests/cuda/...).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/nn_ops.h"
#include "autograd/ops.h"
#include "tests/support/testing.h"

namespace iris::testing {

// v rounded to dt: one step of the naive computation in 16-bit arithmetic.
inline double r16(double v, DType dt) {
  const float f = static_cast<float>(v);
  return dt == DType::bf16 ? bf16_to_float(float_to_bf16(f)) : f16_to_float(float_to_f16(f));
}

// max_i |got_i - ref_i| / (|ref_i| + floor): relative error, absolute near zero.
inline double max_error(const Tensor& got, const Tensor& ref, double floor = 1e-3) {
  const std::vector<double> g = got.to_vector<double>(), r = ref.to_vector<double>();
  EXPECT_EQ(g.size(), r.size());
  double err = 0;
  for (size_t i = 0; i < g.size() && i < r.size(); ++i)
    err = std::max(err, std::abs(g[i] - r[i]) / (std::abs(r[i]) + floor));
  return err;
}

// The house rule: err(got) <= 2 err(naive), both against the fp64 reference.
inline ::testing::AssertionResult within_rule(const Tensor& got, const Tensor& naive,
                                              const Tensor& ref, double floor = 1e-3) {
  const double e = max_error(got, ref, floor), en = max_error(naive, ref, floor);
  if (e <= 2 * en) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error " << e << " > 2 x naive error " << en;
}

inline ::testing::AssertionResult same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape())
    return ::testing::AssertionFailure() << a.desc() << " vs " << b.desc();
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  for (size_t i = 0; i < x.size(); ++i)
    if (!(x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs " << y[i];
  return ::testing::AssertionSuccess();
}

inline Tensor from_doubles(const std::vector<double>& v, const Shape& shape) {
  return Tensor::from_vector<double>(v, shape);
}

// Row sums (or means) of x [rows, n], naive.
inline std::vector<double> naive_row_sums(const Tensor& x, DType dt, bool mean) {
  const int64_t rows = x.size(0), n = x.size(1);
  const std::vector<double> v = x.to_vector<double>();
  std::vector<double> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s = r16(s + v[r * n + i], dt);
    out[r] = mean ? r16(s / static_cast<double>(n), dt) : s;
  }
  return out;
}

// Unbiased row variances of x [rows, n], naive.
inline std::vector<double> naive_row_vars(const Tensor& x, DType dt) {
  const int64_t rows = x.size(0), n = x.size(1);
  const std::vector<double> v = x.to_vector<double>(), m = naive_row_sums(x, dt, true);
  std::vector<double> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = r16(v[r * n + i] - m[r], dt);
      ss = r16(ss + r16(d * d, dt), dt);
    }
    out[r] = r16(ss / static_cast<double>(n - 1), dt);
  }
  return out;
}

// (log_)softmax over the rows of x [rows, D], naive.
inline Tensor naive_softmax(const Tensor& x, bool log, DType dt) {
  const int64_t rows = x.size(0), D = x.size(1);
  const std::vector<double> v = x.to_vector<double>();
  std::vector<double> y(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = v.data() + r * D;
    const double m = *std::max_element(xr, xr + D);
    double s = 0;
    for (int64_t i = 0; i < D; ++i) s = r16(s + r16(std::exp(r16(xr[i] - m, dt)), dt), dt);
    for (int64_t i = 0; i < D; ++i)
      y[r * D + i] = log ? r16(r16(xr[i] - m, dt) - r16(std::log(s), dt), dt)
                         : r16(r16(std::exp(r16(xr[i] - m, dt)), dt) / s, dt);
  }
  return from_doubles(y, x.shape());
}

// dx of (log_)softmax over the rows from dy and the saved 16-bit y, naive.
inline Tensor naive_softmax_backward(const Tensor& dy, const Tensor& y, bool log, DType dt) {
  const int64_t rows = y.size(0), D = y.size(1);
  const std::vector<double> g = dy.to_vector<double>(), v = y.to_vector<double>();
  std::vector<double> dx(v.size());
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t i = 0; i < D; ++i)
      s = r16(s + (log ? g[r * D + i] : r16(g[r * D + i] * v[r * D + i], dt)), dt);
    for (int64_t i = 0; i < D; ++i) {
      const double gi = g[r * D + i], yi = v[r * D + i];
      dx[r * D + i] =
          log ? r16(gi - r16(r16(std::exp(yi), dt) * s, dt), dt) : r16(yi * r16(gi - s, dt), dt);
    }
  }
  return from_doubles(dx, y.shape());
}

// Layer norm over the rows of x [M, N] with weight w and bias b [N], naive: returns y.
inline Tensor naive_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                               DType dt) {
  const int64_t M = x.size(0), N = x.size(1);
  const std::vector<double> v = x.to_vector<double>(), wv = w.to_vector<double>(),
                            bv = b.to_vector<double>();
  std::vector<double> y(v.size());
  for (int64_t r = 0; r < M; ++r) {
    const double* xr = v.data() + r * N;
    double s = 0, ss = 0;
    for (int64_t i = 0; i < N; ++i) s = r16(s + xr[i], dt);
    const double mean = r16(s / static_cast<double>(N), dt);
    for (int64_t i = 0; i < N; ++i) {
      const double d = r16(xr[i] - mean, dt);
      ss = r16(ss + r16(d * d, dt), dt);
    }
    const double var = r16(ss / static_cast<double>(N), dt);
    const double rstd = r16(1.0 / r16(std::sqrt(r16(var + eps, dt)), dt), dt);
    for (int64_t i = 0; i < N; ++i) {
      const double xhat = r16(r16(xr[i] - mean, dt) * rstd, dt);
      y[r * N + i] = r16(r16(xhat * wv[i], dt) + bv[i], dt);
    }
  }
  return from_doubles(y, x.shape());
}

// Layer norm backward, naive, from the naive statistics: dx [M, N], dw and db [N].
struct NaiveLayerNormGrads {
  Tensor dx, dw, db;
};
inline NaiveLayerNormGrads naive_layer_norm_backward(const Tensor& dy, const Tensor& x,
                                                     const Tensor& w, double eps, DType dt) {
  const int64_t M = x.size(0), N = x.size(1);
  const std::vector<double> v = x.to_vector<double>(), g0 = dy.to_vector<double>(),
                            wv = w.to_vector<double>();
  std::vector<double> dx(v.size()), dw(N, 0.0), db(N, 0.0), xhat(N), g(N);
  for (int64_t r = 0; r < M; ++r) {
    const double* xr = v.data() + r * N;
    const double* dyr = g0.data() + r * N;
    double s = 0, ss = 0;
    for (int64_t i = 0; i < N; ++i) s = r16(s + xr[i], dt);
    const double mean = r16(s / static_cast<double>(N), dt);
    for (int64_t i = 0; i < N; ++i) {
      const double d = r16(xr[i] - mean, dt);
      ss = r16(ss + r16(d * d, dt), dt);
    }
    const double rstd =
        r16(1.0 / r16(std::sqrt(r16(r16(ss / static_cast<double>(N), dt) + eps, dt)), dt), dt);
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < N; ++i) {
      xhat[i] = r16(r16(xr[i] - mean, dt) * rstd, dt);
      g[i] = r16(dyr[i] * wv[i], dt);
      sg = r16(sg + g[i], dt);
      sgx = r16(sgx + r16(g[i] * xhat[i], dt), dt);
      dw[i] = r16(dw[i] + r16(dyr[i] * xhat[i], dt), dt);
      db[i] = r16(db[i] + dyr[i], dt);
    }
    const double mg = r16(sg / static_cast<double>(N), dt);
    const double mgx = r16(sgx / static_cast<double>(N), dt);
    for (int64_t i = 0; i < N; ++i)
      dx[r * N + i] = r16(rstd * r16(r16(g[i] - mg, dt) - r16(xhat[i] * mgx, dt), dt), dt);
  }
  return {from_doubles(dx, x.shape()), from_doubles(dw, {N}), from_doubles(db, {N})};
}

// Cross-entropy of logits x [N, C] against target [N], per sample, naive.
inline Tensor naive_cross_entropy(const Tensor& x, const std::vector<int64_t>& target, DType dt) {
  const int64_t n = x.size(0), C = x.size(1);
  const std::vector<double> v = x.to_vector<double>();
  std::vector<double> loss(n);
  for (int64_t r = 0; r < n; ++r) {
    const double* xr = v.data() + r * C;
    const double m = *std::max_element(xr, xr + C);
    double s = 0;
    for (int64_t i = 0; i < C; ++i) s = r16(s + r16(std::exp(r16(xr[i] - m, dt)), dt), dt);
    const double lse = r16(m + r16(std::log(s), dt), dt);
    loss[r] = r16(lse - xr[target[r]], dt);
  }
  return from_doubles(loss, {n});
}

// dlogits of the per-sample cross-entropy with upstream gradient dloss [N], naive.
inline Tensor naive_cross_entropy_backward(const Tensor& x, const std::vector<int64_t>& target,
                                           const Tensor& dloss, DType dt) {
  const int64_t n = x.size(0), C = x.size(1);
  const std::vector<double> v = x.to_vector<double>(), gv = dloss.to_vector<double>();
  std::vector<double> dx(v.size());
  for (int64_t r = 0; r < n; ++r) {
    const double* xr = v.data() + r * C;
    const double m = *std::max_element(xr, xr + C);
    double s = 0;
    for (int64_t i = 0; i < C; ++i) s = r16(s + r16(std::exp(r16(xr[i] - m, dt)), dt), dt);
    const double lse = r16(m + r16(std::log(s), dt), dt);
    for (int64_t i = 0; i < C; ++i) {
      const double p = r16(std::exp(r16(xr[i] - lse, dt)), dt);
      dx[r * C + i] = r16(gv[r] * r16(p - (i == target[r] ? 1.0 : 0.0), dt), dt);
    }
  }
  return from_doubles(dx, x.shape());
}

// Layer norm of x [M, N] with weight and bias: y, dx, dweight, dbias against fp64 and the naive.
inline void check_layer_norm(DType dt, int64_t M, int64_t N, const Device& dev) {
  const Tensor x = add(randn_seeded({M, N}, 51, DType::f32), full({M, N}, 2.0)).to(dt);
  const Tensor w = add(randn_seeded({N}, 52, DType::f32), full({N}, 1.0)).to(dt);
  const Tensor b = randn_seeded({N}, 53, DType::f32).to(dt);
  const Tensor dy = randn_seeded({M, N}, 54, DType::f32).to(dt);
  auto leaf = [](const Tensor& t) { return t.detach().set_requires_grad(true); };
  Tensor x16 = leaf(x.to(dev)), w16 = leaf(w.to(dev)), b16 = leaf(b.to(dev));
  Tensor x64 = leaf(x.to(DType::f64)), w64 = leaf(w.to(DType::f64)), b64 = leaf(b.to(DType::f64));
  Tensor y16 = layer_norm(x16, {N}, w16, b16, 1e-5), y64 = layer_norm(x64, {N}, w64, b64, 1e-5);
  ASSERT_EQ(y16.dtype(), dt);
  EXPECT_TRUE(within_rule(y16, naive_layer_norm(x, w, b, 1e-5, dt), y64)) << dt << " " << N;
  y16.backward(dy.to(dev));
  y64.backward(dy.to(DType::f64));
  const auto naive = naive_layer_norm_backward(dy, x, w, 1e-5, dt);
  ASSERT_EQ(w16.grad().dtype(), dt);
  EXPECT_TRUE(within_rule(x16.grad(), naive.dx, x64.grad())) << "dx " << dt << " " << N;
  EXPECT_TRUE(within_rule(w16.grad(), naive.dw, w64.grad())) << "dw " << dt << " " << N;
  EXPECT_TRUE(within_rule(b16.grad(), naive.db, b64.grad())) << "db " << dt << " " << N;
}

// Cross-entropy of logits [N, C] (per sample and mean, one target ignored) against fp64 and
// the naive, forward and backward.
inline void check_cross_entropy(DType dt, int64_t N, int64_t C, const Device& dev) {
  const Tensor x = mul(randn_seeded({N, C}, 61, DType::f32), full({N, C}, 3.0)).to(dt);
  std::vector<int64_t> ids(N);
  for (int64_t i = 0; i < N; ++i) ids[i] = (i * 37 + 5) % C;
  const Tensor t = Tensor::from_vector<int64_t>(ids, {N}).to(dev);
  const Tensor dy = randn_seeded({N}, 62, DType::f32).to(dt);
  Tensor x16 = x.to(dev).detach().set_requires_grad(true);
  Tensor x64 = x.to(DType::f64).detach().set_requires_grad(true);
  Tensor l16 = cross_entropy(x16, t, -100, 0.0, "none");
  Tensor l64 = cross_entropy(x64, t.to(Device::cpu()), -100, 0.0, "none");
  ASSERT_EQ(l16.dtype(), dt);
  EXPECT_TRUE(within_rule(l16, naive_cross_entropy(x, ids, dt), l64)) << dt << " " << C;
  l16.backward(dy.to(dev));
  l64.backward(dy.to(DType::f64));
  ASSERT_EQ(x16.grad().dtype(), dt);
  EXPECT_TRUE(within_rule(x16.grad(), naive_cross_entropy_backward(x, ids, dy, dt), x64.grad()))
      << "backward " << dt << " " << C;
  // mean over the samples whose target is not ignored
  std::vector<int64_t> ids2 = ids;
  ids2[1] = -100;
  const Tensor t2 = Tensor::from_vector<int64_t>(ids2, {N});
  const Tensor m16 = cross_entropy(x.to(dev), t2.to(dev));
  ASSERT_EQ(m16.dtype(), dt);
  const std::vector<double> per = naive_cross_entropy(x, ids, dt).to_vector<double>();
  double s = 0;
  for (int64_t i = 0; i < N; ++i)
    if (i != 1) s = r16(s + per[i], dt);
  EXPECT_TRUE(within_rule(m16, from_doubles({r16(s / static_cast<double>(N - 1), dt)}, {}),
                          cross_entropy(x.to(DType::f64), t2)))
      << "mean " << dt;
}

}  // namespace iris::testing
