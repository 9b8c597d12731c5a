// bf16/fp16 pointwise, reduction, normalisation and loss ops on the CPU: each against an fp64
// reference computed from the same 16-bit inputs, with the house rule: the error is at most 2x
// that of the naive computation in the same precision (computed here, per test).
#include <cmath>

#include "autograd/nn_ops.h"
#include "tests/support/half_rule.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::check_cross_entropy;
using testing::check_layer_norm;
using testing::from_doubles;
using testing::naive_row_sums;
using testing::naive_row_vars;
using testing::naive_softmax;
using testing::naive_softmax_backward;
using testing::r16;
using testing::randn_seeded;
using testing::same_bits;
using testing::within_rule;

const DType kHalfTypes[] = {DType::bf16, DType::f16};

using UnaryFn = std::function<Tensor(const Tensor&)>;

std::vector<std::pair<const char*, UnaryFn>> unary_ops() {
  return {{"neg", neg},
          {"abs", abs},
          {"exp", exp},
          {"tanh", tanh},
          {"sigmoid", sigmoid},
          {"relu", relu},
          {"silu", silu},
          {"sin", sin},
          {"cos", cos},
          {"square", square},
          {"expm1", expm1},
          {"gelu", [](const Tensor& t) { return gelu(t); }},
          {"gelu_tanh", [](const Tensor& t) { return gelu(t, true); }},
          {"clamp", [](const Tensor& t) { return clamp(t, -0.5, 0.5); }},
          {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.1); }}};
}

std::vector<std::pair<const char*, UnaryFn>> positive_unary_ops() {
  return {{"log", log},     {"sqrt", sqrt},
          {"rsqrt", rsqrt}, {"reciprocal", reciprocal},
          {"log1p", log1p}, {"pow", [](const Tensor& t) { return pow(t, 1.5); }}};
}

TEST(HalfOps, UnaryForwardRoundsOnceAndBackwardMeetsTheRule) {
  for (DType dt : kHalfTypes) {
    // 13 x 7 transposed: the kernel sees strides; values rounded to dt once, up front.
    const Tensor base = randn_seeded({13, 7}, 2, DType::f32).to(dt).t();
    const Tensor pos = add(abs(base), scalar_like(base, 0.25));
    for (int pass = 0; pass < 2; ++pass) {
      for (auto& [name, f] : pass == 0 ? unary_ops() : positive_unary_ops()) {
        const Tensor x = pass == 0 ? base : pos;
        Tensor x16 = x.detach().set_requires_grad(true);
        Tensor x32 = x.to(DType::f32).detach().set_requires_grad(true);
        Tensor x64 = x.to(DType::f64).detach().set_requires_grad(true);
        Tensor y16 = f(x16), y32 = f(x32), y64 = f(x64);
        ASSERT_EQ(y16.dtype(), dt) << name;
        // Math in float, one rounding at the store: exactly the fp32 result rounded.
        EXPECT_TRUE(same_bits(y16, y32.to(dt))) << name << " " << dt;
        const Tensor dy = randn_seeded(y16.shape(), 7, DType::f32).to(dt);
        y16.backward(dy);
        y32.backward(dy.to(DType::f32));
        y64.backward(dy.to(DType::f64));
        ASSERT_EQ(x16.grad().dtype(), dt) << name;
        EXPECT_TRUE(within_rule(x16.grad(), x32.grad().to(dt), x64.grad()))
            << name << " backward " << dt;
      }
    }
  }
}

TEST(HalfOps, BinaryWithBroadcastRoundsOnce) {
  for (DType dt : kHalfTypes) {
    const Tensor a = randn_seeded({3, 1, 37}, 3, DType::f32).to(dt);
    const Tensor b_pos = abs(randn_seeded({5, 1}, 4, DType::f32));
    const Tensor b = add(b_pos, scalar_like(b_pos, 0.5)).to(dt);
    using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;
    const std::pair<const char*, BinaryFn> binary_ops[] = {
        {"add", add},
        {"sub", sub},
        {"mul", mul},
        {"div", div},
        {"maximum", maximum},
        {"minimum", minimum},
        {"pow", [](const Tensor& u, const Tensor& v) { return pow(abs(u), v); }}};
    for (auto& [name, f] : binary_ops) {
      const Tensor got = f(a, b);
      ASSERT_EQ(got.dtype(), dt);
      EXPECT_TRUE(same_bits(got, f(a.to(DType::f32), b.to(DType::f32)).to(dt))) << name;
      EXPECT_TRUE(within_rule(got, f(a.to(DType::f32), b.to(DType::f32)).to(dt),
                              f(a.to(DType::f64), b.to(DType::f64))))
          << name;
    }
    // Gradients of a broadcast product come back in dt, reduced to each operand's shape.
    Tensor a16 = a.detach().set_requires_grad(true), b16 = b.detach().set_requires_grad(true);
    Tensor a64 = a.to(DType::f64).detach().set_requires_grad(true);
    Tensor b64 = b.to(DType::f64).detach().set_requires_grad(true);
    Tensor a32 = a.to(DType::f32).detach().set_requires_grad(true);
    Tensor b32 = b.to(DType::f32).detach().set_requires_grad(true);
    sum(mul(a16, b16)).backward();
    sum(mul(a32, b32)).backward();
    sum(mul(a64, b64)).backward();
    ASSERT_EQ(a16.grad().dtype(), dt);
    ASSERT_EQ(b16.grad().shape(), b.shape());
    EXPECT_TRUE(within_rule(a16.grad(), a32.grad().to(dt), a64.grad()));
    EXPECT_TRUE(within_rule(b16.grad(), b32.grad().to(dt), b64.grad()));
    // Comparisons and where on 16-bit operands.
    const Tensor c = gt(a, b);
    EXPECT_EQ(c.to_vector<int64_t>(), gt(a.to(DType::f32), b.to(DType::f32)).to_vector<int64_t>());
    EXPECT_TRUE(same_bits(where(c, a, b), where(c, a.to(DType::f32), b.to(DType::f32)).to(dt)));
  }
}

TEST(HalfOps, ReductionsAccumulateInFloatAndRoundOnce) {
  for (DType dt : kHalfTypes) {
    // 6 rows of 1000 (values near 1 make the naive 16-bit running sum lose digits)
    const Tensor x32 = add(randn_seeded({6, 1000}, 31, DType::f32), full({6, 1000}, 1.0));
    const Tensor x = x32.to(dt), x64 = x.to(DType::f64);
    const Shape rows{6};
    for (bool m : {false, true}) {
      const Tensor got = m ? mean(x, {1}) : sum(x, {1});
      ASSERT_EQ(got.dtype(), dt);
      EXPECT_TRUE(within_rule(got, from_doubles(naive_row_sums(x, dt, m), rows),
                              m ? mean(x64, {1}) : sum(x64, {1})))
          << (m ? "mean" : "sum") << " " << dt;
    }
    // The column path (reduced dims leading) and a reduction over a transposed view.
    const Tensor xt = x.t();  // [1000, 6]
    EXPECT_TRUE(within_rule(sum(xt.contiguous(), {0}),
                            from_doubles(naive_row_sums(x, dt, false), rows), sum(x64, {1})))
        << "column sum " << dt;
    EXPECT_TRUE(
        within_rule(sum(xt, {0}), from_doubles(naive_row_sums(x, dt, false), rows), sum(x64, {1})))
        << "strided sum " << dt;
    EXPECT_TRUE(within_rule(var(x, {1}), from_doubles(naive_row_vars(x, dt), rows), var(x64, {1})))
        << "var " << dt;
    // max / min / argmax / argmin are exact
    EXPECT_EQ(amax(x, {1}).to_vector<double>(), amax(x64, {1}).to_vector<double>());
    EXPECT_EQ(amin(xt, {0}).to_vector<double>(), amin(x64, {1}).to_vector<double>());
    EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), argmax(x64, 1).to_vector<int64_t>());
    EXPECT_EQ(argmin(x, 1).to_vector<int64_t>(), argmin(x64, 1).to_vector<int64_t>());
    // cumsum: each prefix rounded once
    const Tensor cs = cumsum(x, 1);
    ASSERT_EQ(cs.dtype(), dt);
    std::vector<double> naive_cs;
    const std::vector<double> v = x.to_vector<double>();
    for (int64_t r = 0; r < 6; ++r) {
      double s = 0;
      for (int64_t i = 0; i < 1000; ++i) naive_cs.push_back(s = r16(s + v[r * 1000 + i], dt));
    }
    EXPECT_TRUE(within_rule(cs, from_doubles(naive_cs, {6, 1000}), cumsum(x64, 1)))
        << "cumsum " << dt;
    // gradients of a mean come back in dt
    Tensor xg = x.detach().set_requires_grad(true);
    mean(xg).backward();
    ASSERT_EQ(xg.grad().dtype(), dt);
    EXPECT_EQ(xg.grad().to_vector<double>()[0], r16(1.0 / 6000, dt));
  }
}

TEST(HalfOps, SoftmaxAndLogSoftmaxKeepFp32Statistics) {
  for (DType dt : kHalfTypes) {
    const Tensor x32 = randn_seeded({5, 300}, 41, DType::f32);
    const Tensor x = mul(x32, full({5, 300}, 3.0)).to(dt);  // a wide range of probabilities
    const Tensor dy = randn_seeded({5, 300}, 42, DType::f32).to(dt);
    for (bool log : {false, true}) {
      auto f = [log](const Tensor& t, int64_t dim) {
        return log ? log_softmax(t, dim) : softmax(t, dim);
      };
      Tensor x16 = x.detach().set_requires_grad(true);
      Tensor x64 = x.to(DType::f64).detach().set_requires_grad(true);
      Tensor y16 = f(x16, 1), y64 = f(x64, 1);
      ASSERT_EQ(y16.dtype(), dt);
      const Tensor naive = naive_softmax(x, log, dt);
      EXPECT_TRUE(within_rule(y16, naive, y64)) << log << " " << dt;
      // over dim 0 of the transposed input: the same values
      EXPECT_TRUE(within_rule(f(x.t().contiguous(), 0), naive.t(), y64.t())) << log << " dim 0";
      y16.backward(dy);
      y64.backward(dy.to(DType::f64));
      ASSERT_EQ(x16.grad().dtype(), dt);
      EXPECT_TRUE(
          within_rule(x16.grad(), naive_softmax_backward(dy, y16.detach(), log, dt), x64.grad()))
          << log << " backward " << dt;
    }
  }
}

TEST(HalfOps, LayerNormKeepsFp32Statistics) {
  for (DType dt : kHalfTypes) check_layer_norm(dt, 7, 300, Device::cpu());
}

TEST(HalfOps, CrossEntropyFusedWithLogSoftmax) {
  for (DType dt : kHalfTypes) check_cross_entropy(dt, 9, 300, Device::cpu());
}

}  // namespace
}  // namespace iris
