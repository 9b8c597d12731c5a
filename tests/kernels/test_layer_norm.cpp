// layer_norm against a plain double-precision reference (forward and the
// analytic backward), float64 gradchecks of every input, large-mean stability,
// thread-count independence of dweight/dbias, and argument errors.
#include <cmath>
#include <vector>

#include "autograd/nn_ops.h"
#include "core/parallel.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

struct Affine {
  bool weight, bias;
};

// y = (x - mean) / sqrt(var + eps) * w + b over rows of N, and the backward for dy.
struct LayerNormRef {
  std::vector<double> y, dx, dw, db;
};

LayerNormRef reference(const std::vector<double>& x, const std::vector<double>& w,
                       const std::vector<double>& b, const std::vector<double>& dy, int64_t M,
                       int64_t N, double eps) {
  LayerNormRef r{std::vector<double>(M * N), std::vector<double>(M * N),
                 std::vector<double>(N, 0.0), std::vector<double>(N, 0.0)};
  for (int64_t i = 0; i < M; ++i) {
    // Statistics in long double so the reference stays ahead of a double kernel at large means.
    const double* xr = &x[i * N];
    long double mean = 0, var = 0;
    for (int64_t j = 0; j < N; ++j) mean += xr[j];
    mean /= N;
    for (int64_t j = 0; j < N; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    var /= N;
    const double rstd = static_cast<double>(1 / std::sqrt(var + eps));
    std::vector<double> xhat(N), g(N);
    double mean_g = 0, mean_gx = 0;
    for (int64_t j = 0; j < N; ++j) {
      xhat[j] = static_cast<double>((xr[j] - mean) * rstd);
      r.y[i * N + j] = xhat[j] * (w.empty() ? 1 : w[j]) + (b.empty() ? 0 : b[j]);
      g[j] = dy[i * N + j] * (w.empty() ? 1 : w[j]);
      mean_g += g[j] / N;
      mean_gx += g[j] * xhat[j] / N;
      r.dw[j] += dy[i * N + j] * xhat[j];
      r.db[j] += dy[i * N + j];
    }
    for (int64_t j = 0; j < N; ++j) r.dx[i * N + j] = rstd * (g[j] - mean_g - xhat[j] * mean_gx);
  }
  return r;
}

Tensor from_doubles(const std::vector<double>& v, const Shape& shape, DType dt) {
  return Tensor::from_vector(v, shape).to(dt);
}

// Runs forward + backward of layer_norm over the last dim of x [M, N] and checks both
// against the reference computed from the same (rounded) inputs.
void check_against_reference(const Tensor& x_in, Affine affine, double rtol, double atol,
                             uint64_t seed) {
  const DType dt = x_in.dtype();
  const int64_t N = x_in.size(-1), M = x_in.numel() / N;
  Tensor x = x_in.detach();
  x.set_requires_grad(true);
  Tensor w, b;
  if (affine.weight) w = randn_seeded({N}, seed + 1, dt).set_requires_grad(true);
  if (affine.bias) b = randn_seeded({N}, seed + 2, dt).set_requires_grad(true);
  const Tensor dy = randn_seeded(x.shape(), seed + 3, dt);
  const Tensor y = layer_norm(x, {N}, w, b);
  y.backward(dy);

  const LayerNormRef ref =
      reference(x.to_vector<double>(), w.defined() ? w.to_vector<double>() : std::vector<double>{},
                b.defined() ? b.to_vector<double>() : std::vector<double>{}, dy.to_vector<double>(),
                M, N, 1e-5);
  EXPECT_CLOSE(y, from_doubles(ref.y, x.shape(), DType::f64), rtol, atol);
  EXPECT_CLOSE(x.grad(), from_doubles(ref.dx, x.shape(), DType::f64), rtol, atol);
  if (w.defined()) {
    EXPECT_CLOSE(w.grad(), from_doubles(ref.dw, {N}, DType::f64), rtol, atol * M);
  }
  if (b.defined()) {
    EXPECT_CLOSE(b.grad(), from_doubles(ref.db, {N}, DType::f64), rtol, atol * M);
  }
}

class LayerNormWidth : public ::testing::TestWithParam<int64_t> {};

TEST_P(LayerNormWidth, Float32MatchesReferenceWithAndWithoutAffine) {
  const int64_t N = GetParam();
  for (Affine a :
       {Affine{false, false}, Affine{true, false}, Affine{false, true}, Affine{true, true}}) {
    SCOPED_TRACE(::testing::Message() << "N " << N << " weight " << a.weight << " bias " << a.bias);
    check_against_reference(randn_seeded({37, N}, 10 + N, DType::f32), a, 1e-5, 1e-5, N);
  }
}

TEST_P(LayerNormWidth, Float64MatchesReferenceTightly) {
  const int64_t N = GetParam();
  check_against_reference(randn_seeded({9, N}, 20 + N, DType::f64), {true, true}, 1e-11, 1e-12, N);
}

TEST_P(LayerNormWidth, LargeMeanInputsKeepFullPrecision) {
  // 1e4 + noise: a naive sum-of-squares variance (or a mean rounded to fp32) loses ~3 digits.
  const int64_t N = GetParam();
  const Tensor x = (randn_seeded({23, N}, 30 + N, DType::f64) + 1e4).to(DType::f32);
  check_against_reference(x, {true, true}, 1e-5, 1e-5, N + 1);
  const Tensor x64 = randn_seeded({5, N}, 40 + N, DType::f64) + 1e4;
  check_against_reference(x64, {true, true}, 1e-10, 1e-11, N + 2);
}

INSTANTIATE_TEST_SUITE_P(Widths, LayerNormWidth, ::testing::Values(1, 7, 192, 768, 1000),
                         [](const auto& info) { return "N" + std::to_string(info.param); });

TEST(LayerNorm, NonContiguousAndMultiDimNormalizedShape) {
  // x is a transposed view [4, 6, 5] -> normalise over the last two dims [6, 5].
  const Tensor base = randn_seeded({5, 6, 4}, 3, DType::f32);
  const Tensor x = base.permute({2, 1, 0});
  ASSERT_FALSE(x.is_contiguous());
  const Tensor w = randn_seeded({6, 5}, 4, DType::f32);
  const Tensor b = randn_seeded({6, 5}, 5, DType::f32).t().contiguous().t();  // strided bias
  const Tensor y = layer_norm(x, {6, 5}, w, b);
  const LayerNormRef ref =
      reference(x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(),
                std::vector<double>(120, 0.0), 4, 30, 1e-5);
  EXPECT_CLOSE(y, from_doubles(ref.y, {4, 6, 5}, DType::f64), 1e-5, 1e-5);
}

TEST(LayerNorm, BroadcastInputAndUpstreamGradient) {
  // x is one row expanded (stride 0) to 6 rows; dy is an expanded [7] row.
  const Tensor row = randn_seeded({1, 7}, 11);
  Tensor x = row.expand({6, 7});
  const Tensor w = param({7}, 12), b = param({7}, 13);
  const Tensor dy_row = randn_seeded({7}, 14);
  const Tensor y = layer_norm(x, {7}, w, b);
  y.backward(dy_row.expand({6, 7}));
  const LayerNormRef ref =
      reference(x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(),
                dy_row.expand({6, 7}).to_vector<double>(), 6, 7, 1e-5);
  EXPECT_CLOSE(y, from_doubles(ref.y, {6, 7}, DType::f64), 1e-12, 1e-13);
  EXPECT_CLOSE(w.grad(), from_doubles(ref.dw, {7}, DType::f64), 1e-12, 1e-13);
  EXPECT_CLOSE(b.grad(), from_doubles(ref.db, {7}, DType::f64), 1e-12, 1e-13);
}

TEST(LayerNorm, EpsIsUsed) {
  const Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 4});
  const Tensor y = layer_norm(x, {4}, Tensor(), Tensor(), 0.75);
  // var = 1.25: rstd = 1 / sqrt(2)
  const double r = 1 / std::sqrt(2.0);
  EXPECT_CLOSE(y, Tensor::from_vector<double>({-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r}, {1, 4}),
               1e-14, 0);
}

TEST(LayerNorm, GradcheckEveryInputAndVariant) {
  for (Affine a :
       {Affine{false, false}, Affine{true, false}, Affine{false, true}, Affine{true, true}}) {
    SCOPED_TRACE(::testing::Message() << "weight " << a.weight << " bias " << a.bias);
    const Tensor x = param({3, 2, 5}, 1);
    const Tensor w = a.weight ? param({2, 5}, 2) : Tensor();
    const Tensor b = a.bias ? param({2, 5}, 3) : Tensor();
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{layer_norm(in[0], {2, 5}, in[1], in[2], 1e-3)};
        },
        {x, w, b});
  }
  // A width-1 row (every xhat is 0) and a single normalised dim.
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{layer_norm(in[0], {1}, in[1], in[2])};
      },
      {param({4, 1}, 4), param({1}, 5), param({1}, 6)});
}

TEST(LayerNorm, ParameterGradsDoNotDependOnThreadCount) {
  const Tensor x = randn_seeded({301, 192}, 7, DType::f32);
  const Tensor w = randn_seeded({192}, 8, DType::f32);
  const Tensor dy = randn_seeded({301, 192}, 9, DType::f32);
  auto grads = [&](int threads) {
    set_num_threads(threads);
    Tensor wl = w.detach();
    wl.set_requires_grad(true);
    Tensor bl = zeros({192}).set_requires_grad(true);
    layer_norm(x, {192}, wl, bl).backward(dy);
    return std::vector<std::vector<float>>{wl.grad().to_vector<float>(),
                                           bl.grad().to_vector<float>()};
  };
  const int before = num_threads();
  const auto one = grads(1);
  const auto three = grads(3);
  set_num_threads(before);
  EXPECT_EQ(one, three);
}

TEST(LayerNorm, BadArgumentsNameTheOp) {
  const Tensor x = randn_seeded({2, 3, 4}, 1, DType::f32);
  EXPECT_IRIS_ERROR(layer_norm(x, {3}), "layer_norm: normalized_shape [3]");
  EXPECT_IRIS_ERROR(layer_norm(x, {}), "layer_norm");
  EXPECT_IRIS_ERROR(layer_norm(x, {2, 3, 4, 1}), "float32[2, 3, 4]");
  EXPECT_IRIS_ERROR(layer_norm(x, {4}, ones({3})), "layer_norm: weight float32[3]");
  EXPECT_IRIS_ERROR(layer_norm(x, {4}, Tensor(), ones({4}, DType::f64)),
                    "layer_norm: bias float64[4]");
  EXPECT_IRIS_ERROR(layer_norm(arange(4).view({1, 4}), {4}), "layer_norm");
}

}  // namespace
}  // namespace iris
