// Elementwise ops and reductions: forward against plain loops, gradcheck in fp64.
#include <cmath>

#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

std::vector<Tensor> one(const Tensor& t) { return {t}; }

TEST(Elementwise, BroadcastingForwardMatchesLoops) {
  Tensor a = randn_seeded({3, 1, 5}, 1);
  Tensor b = randn_seeded({4, 1}, 2);
  Tensor out = add(mul(a, b), a);
  ASSERT_EQ(out.shape(), (Shape{3, 4, 5}));
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>(), ov = out.to_vector<double>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k)
        EXPECT_DOUBLE_EQ(ov[(i * 4 + j) * 5 + k], av[i * 5 + k] * bv[j] + av[i * 5 + k]);
  EXPECT_IRIS_ERROR(add(randn_seeded({3}, 1), randn_seeded({4}, 1)), "add: shapes [3] and [4]");
  EXPECT_IRIS_ERROR(add(randn_seeded({3}, 1), randn_seeded({3}, 1, DType::f32)), "dtype mismatch");
}

TEST(Elementwise, NonContiguousInputs) {
  Tensor a = randn_seeded({6, 4}, 3).t();  // [4, 6] strided
  Tensor b = randn_seeded({4, 12}, 4).slice(1, 0, 12, 2);
  Tensor out = sub(a, b);
  EXPECT_CLOSE(out, sub(a.contiguous(), b.contiguous()), 0, 0);
  EXPECT_CLOSE(exp(a), exp(a.contiguous()), 0, 0);
}

TEST(Elementwise, UnaryValues) {
  Tensor x = Tensor::from_vector<double>({-2, -0.5, 0, 0.5, 3}, {5});
  const auto xs = x.to_vector<double>();
  auto check = [&](const Tensor& y, auto f) {
    const auto ys = y.to_vector<double>();
    for (size_t i = 0; i < xs.size(); ++i) EXPECT_NEAR(ys[i], f(xs[i]), 1e-14) << i;
  };
  check(gelu(x), [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
  check(gelu(x, true), [](double v) {
    return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  });
  check(silu(x), [](double v) { return v / (1 + std::exp(-v)); });
  check(sigmoid(x), [](double v) { return 1 / (1 + std::exp(-v)); });
  check(clamp(x, -1.0, std::nullopt), [](double v) { return std::max(v, -1.0); });
  check(relu(x), [](double v) { return std::max(v, 0.0); });
  check(leaky_relu(x, 0.2), [](double v) { return v > 0 ? v : 0.2 * v; });
  // sigmoid stays finite and exact far from 0
  Tensor big = Tensor::from_vector<float>({-100.f, 100.f}, {2});
  const auto sb = sigmoid(big).to_vector<float>();
  EXPECT_NEAR(sb[0], std::exp(-100.0), 1e-45);
  EXPECT_EQ(sb[1], 1.f);
}

TEST(Elementwise, IntegerArithmeticAndComparisons) {
  Tensor a = Tensor::from_vector<int64_t>({1, 5, -3}, {3});
  Tensor b = Tensor::from_vector<int64_t>({2, 5, 1}, {3});
  EXPECT_EQ(add(a, b).to_vector<int64_t>(), (std::vector<int64_t>{3, 10, -2}));
  EXPECT_EQ(lt(a, b).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(eq(a, b).dtype(), DType::b8);
  EXPECT_IRIS_ERROR(div(a, Tensor::from_vector<int64_t>({1, 0, 1}, {3})), "division by zero");
}

TEST(Elementwise, GradcheckBinaryWithBroadcast) {
  Tensor a = param({3, 1, 4}, 10), b = param({2, 1}, 11);
  for (auto op : {add, sub, mul})
    EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(op(in[0], in[1])); }, {a, b});
  Tensor pos = abs(randn_seeded({2, 1}, 12)) + 0.5;
  pos.set_requires_grad(true);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(div(in[0], in[1])); }, {a, pos});
  Tensor base = abs(randn_seeded({3, 4}, 13)) + 0.5;
  base.set_requires_grad(true);
  Tensor e = param({3, 4}, 14);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(pow(in[0], in[1])); },
                   {base, e});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(maximum(in[0], in[1])); },
                   {a, b});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(minimum(in[0], in[1])); },
                   {a, b});
}

TEST(Elementwise, GradcheckUnary) {
  Tensor x = param({4, 5}, 20);
  Tensor pos = abs(randn_seeded({4, 5}, 21)) + 0.3;
  pos.set_requires_grad(true);
  std::vector<std::function<Tensor(const Tensor&)>> any = {
      neg, exp, tanh, sigmoid, silu, sin, cos, square, expm1,
      [](const Tensor& t) { return gelu(t); }, [](const Tensor& t) { return gelu(t, true); },
      [](const Tensor& t) { return clamp(t, -0.5, 0.5); },
      [](const Tensor& t) { return leaky_relu(t, 0.3); }, relu, abs};
  for (auto& f : any)
    EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(f(in[0])); }, {x});
  std::vector<std::function<Tensor(const Tensor&)>> positive = {
      log, sqrt, rsqrt, reciprocal, log1p, [](const Tensor& t) { return pow(t, 1.7); }};
  for (auto& f : positive)
    EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(f(in[0])); }, {pos});
}

TEST(Elementwise, WhereAndMaskedFill) {
  Tensor c = gt(randn_seeded({3, 4}, 30), zeros({}, DType::f64));
  Tensor a = param({3, 4}, 31), b = param({4}, 32);
  EXPECT_GRADCHECK([&](const std::vector<Tensor>& in) { return one(where(c, in[0], in[1])); },
                   {a, b});
  Tensor m = masked_fill(a, c, -1.0);
  const auto cv = c.to_vector<int64_t>();
  const auto av = a.to_vector<double>(), mv = m.to_vector<double>();
  for (size_t i = 0; i < cv.size(); ++i) EXPECT_EQ(mv[i], cv[i] ? -1.0 : av[i]);
  EXPECT_IRIS_ERROR(where(a, a, b), "condition must be bool");
}

TEST(Reduce, ForwardMatchesLoops) {
  Tensor x = randn_seeded({3, 4, 5}, 40);
  const auto v = x.to_vector<double>();
  auto at = [&](int i, int j, int k) { return v[(i * 4 + j) * 5 + k]; };
  const auto s = sum(x, {0, 2}).to_vector<double>();
  for (int j = 0; j < 4; ++j) {
    double e = 0;
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k) e += at(i, j, k);
    EXPECT_NEAR(s[j], e, 1e-12);
  }
  const auto mx = amax(x, {1}).to_vector<double>();
  const auto am = argmax(x, 1).to_vector<int64_t>();
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 5; ++k) {
      int best = 0;
      for (int j = 1; j < 4; ++j)
        if (at(i, j, k) > at(i, best, k)) best = j;
      EXPECT_EQ(mx[i * 5 + k], at(i, best, k));
      EXPECT_EQ(am[i * 5 + k], best);
    }
  // leading-dims (column) path and row path agree
  EXPECT_CLOSE(sum(x, {0}), sum(x.permute({1, 2, 0}), {2}), 1e-14, 1e-14);
  EXPECT_CLOSE(mean(x, {0, 1}), mean(x.reshape({12, 5}), {0}), 1e-14, 1e-14);
  EXPECT_NEAR(var(x).item(), var(x.flatten(), {0}).item(), 1e-14);
  EXPECT_TRUE(std::isnan(mean(zeros({0, 3}, DType::f64), {0}).to_vector<double>()[0]));
  EXPECT_EQ(sum(zeros({0, 3}, DType::f64), {0}).to_vector<double>()[0], 0.0);
  EXPECT_IRIS_ERROR(amax(zeros({0, 3}), {0}), "empty");
  EXPECT_IRIS_ERROR(sum(x, {3}), "dim 3 out of range");
  EXPECT_IRIS_ERROR(sum(x, {1, -2}), "twice");
  // cumsum
  const auto cs = cumsum(x, 2).to_vector<double>();
  double run = 0;
  for (int k = 0; k < 5; ++k) {
    run += at(1, 2, k);
    EXPECT_NEAR(cs[(1 * 4 + 2) * 5 + k], run, 1e-12);
  }
}

TEST(Reduce, NanPropagatesThroughMaxMin) {
  Tensor x = Tensor::from_vector<float>({1, NAN, 3, 2, 5, 4}, {2, 3});
  EXPECT_TRUE(std::isnan(amax(x, {1}).to_vector<float>()[0]));
  EXPECT_TRUE(std::isnan(amin(x, {1}).to_vector<float>()[0]));
  EXPECT_EQ(amax(x, {1}).to_vector<float>()[1], 5.f);
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 1}));
  EXPECT_TRUE(std::isnan(amax(x, {0}).to_vector<float>()[1]));  // column path
}

TEST(Reduce, Gradchecks) {
  Tensor x = param({3, 4, 5}, 50);
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(sum(in[0], {0, 2})); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(sum(in[0])); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(mean(in[0], {1}, true)); },
                   {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(var(in[0], {2})); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(var(in[0], {}, 0)); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(amax(in[0], {1})); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(amin(in[0], {0, 2})); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(cumsum(in[0], 1)); }, {x});
  EXPECT_GRADCHECK([](const std::vector<Tensor>& in) { return one(sum_to(in[0], {4, 1})); }, {x});
}

}  // namespace
}  // namespace iris
