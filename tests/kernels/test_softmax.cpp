// softmax / log_softmax along every dim against a plain double reference
// (forward and backward), with -inf entries, all -inf rows (NaN, as PyTorch),
// large offsets, strided inputs, float64 gradchecks, and argument errors.
#include <cmath>
#include <limits>
#include <vector>

#include "autograd/nn_ops.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct SoftmaxRef {
  std::vector<double> y, dx;
};

// Reference over `dim` of a row-major tensor `shape`, for upstream gradient dy.
SoftmaxRef reference(const std::vector<double>& x, const std::vector<double>& dy,
                     const Shape& shape, int64_t dim, bool log) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[d];
  for (size_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t D = shape[dim];
  SoftmaxRef r{std::vector<double>(x.size()), std::vector<double>(x.size())};
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      auto at = [&](int64_t d) { return (o * D + d) * inner + j; };
      double mx = -kInf;
      for (int64_t d = 0; d < D; ++d) mx = std::max(mx, x[at(d)]);
      double sum = 0;
      for (int64_t d = 0; d < D; ++d) sum += std::exp(x[at(d)] - mx);
      double s = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double p = std::exp(x[at(d)] - mx) / sum;
        r.y[at(d)] = log ? x[at(d)] - mx - std::log(sum) : p;
        s += log ? dy[at(d)] : dy[at(d)] * p;
      }
      for (int64_t d = 0; d < D; ++d) {
        const double p = std::exp(x[at(d)] - mx) / sum;
        r.dx[at(d)] = log ? dy[at(d)] - p * s : p * (dy[at(d)] - s);
      }
    }
  return r;
}

// Like EXPECT_CLOSE, but infinities must match exactly (all_close compares inf - inf).
void expect_close_with_infs(const Tensor& actual, const std::vector<double>& expected,
                            double rtol) {
  std::vector<double> a = actual.to_vector<double>(), e = expected;
  ASSERT_EQ(a.size(), e.size());
  for (size_t i = 0; i < a.size(); ++i)
    if (std::isinf(e[i])) {
      EXPECT_EQ(a[i], e[i]) << "element " << i;
      a[i] = e[i] = 0;
    }
  EXPECT_CLOSE(Tensor::from_vector(a, actual.shape()), Tensor::from_vector(e, actual.shape()), rtol,
               0);
}

void check(const Tensor& x_in, int64_t dim, bool log, double rtol, double atol) {
  SCOPED_TRACE(::testing::Message()
               << (log ? "log_softmax " : "softmax ") << x_in.desc() << " dim " << dim);
  Tensor x = x_in.detach();
  x.set_requires_grad(true);
  const Tensor dy = randn_seeded(x.shape(), 77, x.dtype());
  const Tensor y = log ? log_softmax(x, dim) : softmax(x, dim);
  y.backward(dy);
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  const SoftmaxRef ref =
      reference(x.to_vector<double>(), dy.to_vector<double>(), x.shape(), d, log);
  EXPECT_CLOSE(y, Tensor::from_vector(ref.y, x.shape()), rtol, atol);
  EXPECT_CLOSE(x.grad(), Tensor::from_vector(ref.dx, x.shape()), rtol, atol);
}

TEST(Softmax, EveryDimOf3DFloat32AndFloat64) {
  for (bool log : {false, true})
    for (int64_t dim : {0, 1, 2, -1}) {
      check(randn_seeded({5, 7, 9}, 1, DType::f32) * 3.0, dim, log, 1e-5, 1e-6);
      check(randn_seeded({5, 7, 9}, 2, DType::f64) * 3.0, dim, log, 1e-12, 1e-14);
    }
}

TEST(Softmax, WideRowsAndWideStrips) {
  // Rows longer than the exp block, and an inner extent (70) wider than one strip.
  for (bool log : {false, true}) {
    check(randn_seeded({3, 1300}, 3, DType::f32) * 4.0, 1, log, 1e-5, 1e-6);
    check(randn_seeded({2, 33, 70}, 4, DType::f32) * 4.0, 1, log, 1e-5, 1e-6);
    check(randn_seeded({1300, 2}, 5, DType::f32), 0, log, 1e-5, 1e-6);
  }
}

TEST(Softmax, StridedInputs) {
  const Tensor base = randn_seeded({9, 6, 4}, 6, DType::f32);
  for (bool log : {false, true}) {
    check(base.transpose(0, 2), 0, log, 1e-5, 1e-6);  // [4, 6, 9]
    check(base.transpose(0, 2), 2, log, 1e-5, 1e-6);
    check(base.slice(0, 1, 9, 3), 1, log, 1e-5, 1e-6);
  }
}

TEST(Softmax, BroadcastInputAndUpstreamGradient) {
  // An expanded (stride 0) input along the softmax dim and across it, and an expanded dy.
  const Tensor col = randn_seeded({4, 1}, 9);
  for (bool log : {false, true}) {
    check(col.expand({4, 6}), 1, log, 1e-12, 1e-14);
    check(col.expand({4, 6}), 0, log, 1e-12, 1e-14);
    Tensor x = randn_seeded({3, 5}, 10).set_requires_grad(true);
    const Tensor dy = randn_seeded({5}, 11);
    const Tensor y = log ? log_softmax(x, 1) : softmax(x, 1);
    y.backward(dy.expand({3, 5}));
    const SoftmaxRef ref =
        reference(x.to_vector<double>(), dy.expand({3, 5}).to_vector<double>(), {3, 5}, 1, log);
    EXPECT_CLOSE(x.grad(), Tensor::from_vector(ref.dx, {3, 5}), 1e-12, 1e-14);
  }
}

TEST(Softmax, LargeOffsetsDoNotOverflow) {
  for (bool log : {false, true}) {
    check(randn_seeded({4, 50}, 7, DType::f32) + 1000.0, 1, log, 1e-5, 1e-5);
    check(randn_seeded({4, 50}, 8, DType::f32) * 30.0 - 500.0, 1, log, 1e-5, 1e-5);
  }
}

TEST(Softmax, NegativeInfinityEntries) {
  // Row 0: two -inf entries (exact zeros / -inf); row 1: all -inf (NaN everywhere, as PyTorch).
  const std::vector<double> v = {0.5, -kInf, 2.0, -kInf, -1.0, -kInf, -kInf, -kInf, -kInf, -kInf};
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = Tensor::from_vector(v, {2, 5}).to(dt);
    const Tensor y = softmax(x, 1);
    const Tensor ly = log_softmax(x, 1);
    const double s = std::exp(0.5) + std::exp(2.0) + std::exp(-1.0);
    const double nan = std::nan("");
    EXPECT_CLOSE(y,
                 Tensor::from_vector<double>({std::exp(0.5) / s, 0, std::exp(2.0) / s, 0,
                                              std::exp(-1.0) / s, nan, nan, nan, nan, nan},
                                             {2, 5}),
                 1e-6, 0);
    expect_close_with_infs(ly,
                           {0.5 - std::log(s), -kInf, 2.0 - std::log(s), -kInf, -1.0 - std::log(s),
                            nan, nan, nan, nan, nan},
                           1e-6);
    EXPECT_EQ(y.to_vector<double>()[1], 0.0);
    // Along dim 0 (strips) the same rule holds per column.
    const Tensor yt = softmax(x.t().contiguous(), 0);
    EXPECT_CLOSE(yt, y.t(), 1e-6, 0);
  }
}

TEST(Softmax, ScalarAndSingletonDim) {
  EXPECT_CLOSE(softmax(Tensor::scalar(3.0, DType::f64), 0), Tensor::scalar(1.0, DType::f64), 0, 0);
  EXPECT_CLOSE(log_softmax(randn_seeded({3, 1}, 1), 1), zeros({3, 1}, DType::f64), 0, 0);
}

TEST(Softmax, GradcheckEveryDim) {
  for (bool log : {false, true})
    for (int64_t dim : {0, 1, 2}) {
      SCOPED_TRACE(::testing::Message() << (log ? "log_softmax" : "softmax") << " dim " << dim);
      EXPECT_GRADCHECK(
          [&](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{log ? log_softmax(in[0], dim) : softmax(in[0], dim)};
          },
          {param({3, 4, 5}, 10 + dim)});
    }
}

TEST(Softmax, BadArgumentsNameTheOp) {
  const Tensor x = randn_seeded({2, 3}, 1, DType::f32);
  EXPECT_IRIS_ERROR(softmax(x, 2), "softmax: dim 2 out of range");
  EXPECT_IRIS_ERROR(log_softmax(x, -3), "log_softmax: dim -3 out of range");
  EXPECT_IRIS_ERROR(softmax(arange(4), 0),
                    "softmax: expected a float32 or float64 input, got int64[4]");
  EXPECT_IRIS_ERROR(softmax(Tensor(), 0), "softmax");
}

}  // namespace
}  // namespace iris
