// cross_entropy against a plain double reference (log-softmax + NLL + PyTorch's
// label-smoothing formula): every reduction, ignore_index (also all ignored),
// [N, C] and [N, C, d...] layouts, float64 gradchecks, and argument errors.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/nn_ops.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

struct CeRef {
  std::vector<double> loss;  // per sample (reduction "none")
  double reduced;            // "mean" or "sum" as asked
  std::vector<double> dx;    // for upstream gradient `grad` (per sample for "none")
};

// logits [N, C, S] flat, target [N, S] flat.
CeRef reference(const std::vector<double>& x, const std::vector<int64_t>& t, int64_t N, int64_t C,
                int64_t S, int64_t ignore, double ls, const std::string& red,
                const std::vector<double>& grad) {
  CeRef r{std::vector<double>(N * S, 0.0), 0.0, std::vector<double>(x.size(), 0.0)};
  auto at = [&](int64_t n, int64_t c, int64_t s) { return (n * C + c) * S + s; };
  int64_t valid = 0;
  double total = 0;
  for (int64_t k = 0; k < N * S; ++k) valid += t[k] != ignore;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t k = n * S + s;
      if (t[k] == ignore) continue;
      double mx = -std::numeric_limits<double>::infinity(), sum = 0, xsum = 0;
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x[at(n, c, s)]);
      for (int64_t c = 0; c < C; ++c) sum += std::exp(x[at(n, c, s)] - mx), xsum += x[at(n, c, s)];
      const double lse = mx + std::log(sum);
      const double nll = lse - x[at(n, t[k], s)];
      const double smooth = C * lse - xsum;
      r.loss[k] = ls == 0 ? nll : (1 - ls) * nll + ls / C * smooth;
      total += r.loss[k];
      const double g = red == "none" ? grad[k] : red == "sum" ? grad[0] : grad[0] / valid;
      for (int64_t c = 0; c < C; ++c) {
        const double p = std::exp(x[at(n, c, s)] - lse);
        r.dx[at(n, c, s)] = g * (p - ls / C - (c == t[k] ? 1 - ls : 0));
      }
    }
  r.reduced = red == "sum" ? total : total / valid;
  return r;
}

struct Case {
  Shape logits_shape;  // [N, C, d...]
  int64_t ignore_index;
  double smoothing;
};

// Targets in [0, C) with every 4th replaced by ignore_index.
Tensor make_target(const Shape& target_shape, int64_t C, int64_t ignore, uint64_t seed) {
  std::vector<int64_t> t(numel_of(target_shape));
  for (size_t k = 0; k < t.size(); ++k)
    t[k] = k % 4 == 1 ? ignore : static_cast<int64_t>((k * 7 + seed) % C);
  return Tensor::from_vector(t, target_shape);
}

void check(const Case& cs, const Tensor& logits_in, const std::string& red, double rtol,
           double atol) {
  SCOPED_TRACE(::testing::Message() << logits_in.desc() << " ignore " << cs.ignore_index
                                    << " smoothing " << cs.smoothing << " " << red);
  const Shape& ls = cs.logits_shape;
  const int64_t N = ls[0], C = ls[1], S = numel_of(ls) / (N * C);
  Shape ts = {N};
  for (size_t d = 2; d < ls.size(); ++d) ts.push_back(ls[d]);
  const Tensor target = make_target(ts, C, cs.ignore_index, 3);
  Tensor x = logits_in.detach();
  x.set_requires_grad(true);
  const Tensor loss = cross_entropy(x, target, cs.ignore_index, cs.smoothing, red);
  const Tensor grad =
      red == "none" ? randn_seeded(ts, 5, x.dtype()) : Tensor::scalar(1.7, x.dtype());
  loss.backward(grad);
  const CeRef ref = reference(x.to_vector<double>(), target.to_vector<int64_t>(), N, C, S,
                              cs.ignore_index, cs.smoothing, red, grad.to_vector<double>());
  if (red == "none") {
    EXPECT_CLOSE(loss, Tensor::from_vector(ref.loss, ts), rtol, atol);
  } else {
    EXPECT_EQ(loss.dim(), 0);
    EXPECT_CLOSE(loss, Tensor::scalar(ref.reduced, DType::f64), rtol, atol);
  }
  EXPECT_CLOSE(x.grad(), Tensor::from_vector(ref.dx, ls), rtol, atol);
}

TEST(CrossEntropy, EveryReductionLayoutAndSmoothing) {
  const std::vector<Shape> shapes = {{7, 11}, {3, 5, 4, 6}, {2, 4, 70}, {3, 1300}};
  for (const Shape& s : shapes)
    for (double ls : {0.0, 0.1})
      for (int64_t ignore : {int64_t{-100}, int64_t{2}})
        for (const char* red : {"mean", "sum", "none"}) {
          check({s, ignore, ls}, randn_seeded(s, 1, DType::f32) * 2.0, red, 1e-5, 1e-6);
          check({s, ignore, ls}, randn_seeded(s, 2, DType::f64) * 2.0, red, 1e-12, 1e-14);
        }
}

TEST(CrossEntropy, StridedLogits) {
  const Tensor base = randn_seeded({11, 7}, 4, DType::f32);
  for (const char* red : {"mean", "none"}) check({{7, 11}, -100, 0.2}, base.t(), red, 1e-5, 1e-6);
  // [N, C, S] from a [N, S, C] buffer.
  const Tensor nsc = randn_seeded({3, 6, 5}, 6, DType::f32);
  check({{3, 5, 6}, -100, 0.0}, nsc.transpose(1, 2), "sum", 1e-5, 1e-6);
}

TEST(CrossEntropy, AllIgnoredMatchesPyTorch) {
  const Tensor x = randn_seeded({4, 3}, 1).set_requires_grad(true);
  const Tensor t = full({4}, -100, DType::i64);
  for (double ls : {0.0, 0.3}) {
    EXPECT_TRUE(std::isnan(cross_entropy(x, t, -100, ls, "mean").item()));
    EXPECT_EQ(cross_entropy(x, t, -100, ls, "sum").item(), 0.0);
    EXPECT_CLOSE(cross_entropy(x, t, -100, ls, "none"), zeros({4}, DType::f64), 0, 0);
  }
  cross_entropy(x, t, -100, 0.1, "mean").backward();
  EXPECT_CLOSE(x.grad(), zeros({4, 3}, DType::f64), 0, 0);
}

TEST(CrossEntropy, UnbatchedAndInfiniteLogits) {
  // [C] logits with a 0-dim target.
  const Tensor x = Tensor::from_vector<double>({1.0, 2.0, 0.5}, {3});
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5));
  EXPECT_NEAR(cross_entropy(x, Tensor::scalar(1, DType::i64)).item(), lse - 2.0, 1e-15);
  // A -inf logit (not the target) contributes exp(-inf) = 0 without smoothing, inf with it.
  const Tensor xi = Tensor::from_vector<float>({1.0f, -INFINITY, 0.5f}, {1, 3});
  const Tensor t = Tensor::from_vector<int64_t>({0}, {1});
  EXPECT_NEAR(cross_entropy(xi, t).item(), std::log(1 + std::exp(-0.5)), 1e-6);
  EXPECT_TRUE(std::isinf(cross_entropy(xi, t, -100, 0.1).item()));
}

TEST(CrossEntropy, GradcheckEveryVariant) {
  for (const Shape& s : {Shape{4, 5}, Shape{2, 3, 4}})
    for (double ls : {0.0, 0.25})
      for (const char* red : {"mean", "sum", "none"}) {
        SCOPED_TRACE(::testing::Message() << shape_str(s) << " smoothing " << ls << " " << red);
        Shape ts = {s[0]};
        if (s.size() == 3) ts.push_back(s[2]);
        const Tensor target = make_target(ts, s[1], -100, 1);
        EXPECT_GRADCHECK(
            [&](const std::vector<Tensor>& in) {
              return std::vector<Tensor>{cross_entropy(in[0], target, -100, ls, red)};
            },
            {param(s, 3)});
      }
}

TEST(CrossEntropy, BadArgumentsNameTheOp) {
  const Tensor x = randn_seeded({3, 4}, 1, DType::f32);
  EXPECT_IRIS_ERROR(cross_entropy(x, Tensor::from_vector<int64_t>({0, 4, 1}, {3})),
                    "cross_entropy: target 4 is out of bounds for 4 classes (sample 1)");
  EXPECT_IRIS_ERROR(cross_entropy(x, Tensor::from_vector<int64_t>({0, -1, 1}, {3})),
                    "cross_entropy: target -1 is out of bounds");
  EXPECT_IRIS_ERROR(
      cross_entropy(randn_seeded({2, 3, 5}, 1, DType::f32),
                    Tensor::from_vector<int64_t>({0, 1, 2, 0, 1, 2, 0, 1, 9, 0}, {2, 5})),
      "target 9 is out of bounds for 3 classes (sample 1, position 3)");
  EXPECT_IRIS_ERROR(cross_entropy(x, Tensor::from_vector<int32_t>({0, 1, 2}, {3})),
                    "cross_entropy: target must be int64");
  EXPECT_IRIS_ERROR(cross_entropy(x, Tensor::from_vector<int64_t>({0, 1}, {2})),
                    "cross_entropy: target int64[2] cpu does not fit logits float32[3, 4]");
  EXPECT_IRIS_ERROR(cross_entropy(x, arange(3), -100, 0.0, "avg"), "cross_entropy: reduction");
  EXPECT_IRIS_ERROR(cross_entropy(x, arange(3), -100, 1.5), "cross_entropy: label_smoothing");
  EXPECT_IRIS_ERROR(cross_entropy(arange(12).view({3, 4}), arange(3)), "cross_entropy");
}

}  // namespace
}  // namespace iris
