// bf16/fp16 pointwise, reduction, normalisation and loss ops: the CUDA device (emulated in CI,
// real under `ctest -L cuda`) against the CPU backend. Elementwise ops compute in float and
// round once on both, so the emulator (same libm) must give the CPU's bits; a real GPU's
// libdevice and FMA contraction may move a transcendental op by one 16-bit ulp, or in float32
// by the few ulps CUDA's math functions document (expf 2, sinf 2, powf 4, ...).
#include <cmath>
#include <filesystem>

#include "autograd/nn_ops.h"
#include "tests/support/half_rule.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::check_cross_entropy;
using testing::check_layer_norm;
using testing::from_doubles;
using testing::kCuda;
using testing::naive_cross_entropy;
using testing::naive_row_sums;
using testing::naive_row_vars;
using testing::naive_softmax;
using testing::naive_softmax_backward;
using testing::r16;
using testing::randn_seeded;
using testing::within_rule;

const DType kHalfTypes[] = {DType::bf16, DType::f16};

bool emulated() {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").filename().string();
  return exe.size() > 4 && exe.substr(exe.size() - 4) == "_emu";
}

// The spacing of dt's values at v (one unit in the last place).
double ulp(double v, DType dt) {
  const int mantissa_bits = dt == DType::bf16 ? 7 : dt == DType::f16 ? 10 : 23;
  const double a = std::max(std::abs(v), dt == DType::f16 ? 6.1035156e-05 : 1.1754944e-38);
  return std::ldexp(1.0, std::ilogb(a) - mantissa_bits);
}

// Same bits, or (an op that is not correctly rounded, on a real GPU) within one ulp of a 16-bit
// dt; in float32, within 8 ulps of the value or of 1 (a gradient that sums terms of order 1
// keeps their rounding where they cancel).
::testing::AssertionResult matches_cpu(const Tensor& dev, const Tensor& cpu, bool exact_op) {
  if (dev.dtype() != cpu.dtype() || dev.shape() != cpu.shape())
    return ::testing::AssertionFailure() << dev.desc() << " vs " << cpu.desc();
  const bool bitwise = exact_op || emulated();
  const DType dt = dev.dtype();
  const std::vector<double> x = dev.to_vector<double>(), y = cpu.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i] || (std::isnan(x[i]) && std::isnan(y[i]))) continue;
    const double tol =
        dt == DType::f32 ? 8 * ulp(std::max(std::abs(y[i]), 1.0), dt) : ulp(y[i], dt);
    if (!bitwise && std::abs(x[i] - y[i]) <= tol) continue;
    return ::testing::AssertionFailure() << "element " << i << ": " << x[i] << " vs " << y[i];
  }
  return ::testing::AssertionSuccess();
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> f;
  bool exact;     // correctly rounded in float on every backend
  bool positive;  // needs x > 0
};

std::vector<UnaryCase> unary_cases() {
  return {{"neg", neg, true, false},
          {"abs", abs, true, false},
          {"relu", relu, true, false},
          {"square", square, true, false},
          {"clamp", [](const Tensor& t) { return clamp(t, -0.5, 0.5); }, true, false},
          {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.1); }, true, false},
          {"exp", exp, false, false},
          {"tanh", tanh, false, false},
          {"sigmoid", sigmoid, false, false},
          {"silu", silu, false, false},
          {"sin", sin, false, false},
          {"cos", cos, false, false},
          {"expm1", expm1, false, false},
          {"gelu", [](const Tensor& t) { return gelu(t); }, false, false},
          {"gelu_tanh", [](const Tensor& t) { return gelu(t, true); }, false, false},
          {"sqrt", sqrt, true, true},
          {"log", log, false, true},
          {"rsqrt", rsqrt, false, true},
          {"reciprocal", reciprocal, true, true},
          {"log1p", log1p, false, true},
          {"pow", [](const Tensor& t) { return pow(t, 1.5); }, false, true}};
}

// Host inputs in three layouts: dense (the 128-bit path, 1003 = 125 x 8 + 3 elements), a
// view one element into its storage (misaligned: the strided path) and a transposed one.
struct Layouts {
  Tensor dense, misaligned_base, transposed;
};

Layouts layouts(DType dt, bool positive, uint64_t seed) {
  auto make = [&](const Shape& s, uint64_t k) {
    Tensor t = randn_seeded(s, seed + k, DType::f32);
    if (positive) t = add(abs(t), scalar_like(t, 0.25));
    return t.to(dt);
  };
  return {make({1003}, 0), make({1004}, 1), make({13, 7}, 2)};
}

// Runs f forward and backward on the CPU and the device from the same host input; the device
// input is `to_device(x moved to kCuda)`, a view chosen by the caller.
void check_unary(const UnaryCase& c, const Tensor& host_in,
                 const std::function<Tensor(const Tensor&)>& to_device_view,
                 const std::string& where) {
  Tensor xc = host_in.contiguous().detach().set_requires_grad(true);
  Tensor xg = to_device_view(host_in).detach().set_requires_grad(true);
  ASSERT_EQ(xg.shape(), xc.shape());
  Tensor yc = c.f(xc), yg = c.f(xg);
  EXPECT_TRUE(matches_cpu(yg, yc, c.exact)) << c.name << " " << where;
  const Tensor dy = randn_seeded(yc.shape(), 7, DType::f32).to(yc.dtype());
  yc.backward(dy);
  yg.backward(dy.to(kCuda));
  EXPECT_TRUE(matches_cpu(xg.grad(), xc.grad(), false)) << c.name << " backward " << where;
}

TEST(BackendHalfOps, UnaryDenseMisalignedAndStridedMatchCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::bf16, DType::f16, DType::f32}) {
    for (const UnaryCase& c : unary_cases()) {
      const Layouts in = layouts(dt, c.positive, 11);
      check_unary(
          c, in.dense, [](const Tensor& t) { return t.to(kCuda); }, "dense");
      check_unary(
          c, in.misaligned_base.narrow(0, 1, 1003), [](const Tensor& t) { return t.to(kCuda); },
          "dense copy of a view");
      check_unary(
          c, in.misaligned_base.narrow(0, 1, 1003),
          [&](const Tensor&) { return in.misaligned_base.to(kCuda).narrow(0, 1, 1003); },
          "misaligned");
      check_unary(
          c, in.transposed.t(), [&](const Tensor&) { return in.transposed.to(kCuda).t(); },
          "transposed");
    }
  }
}

TEST(BackendHalfOps, BinaryDenseScalarBroadcastAndMisalignedMatchCpu) {
  IRIS_REQUIRE_CUDA();
  using BinaryFn = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::pair<const char*, BinaryFn> cases[] = {
      {"add", add},
      {"sub", sub},
      {"mul", mul},
      {"div", div},
      {"maximum", maximum},
      {"minimum", minimum},
      {"pow", [](const Tensor& u, const Tensor& v) { return pow(abs(u), v); }}};
  for (DType dt : kHalfTypes) {
    const Tensor a = randn_seeded({1004}, 21, DType::f32).to(dt);
    const Tensor b = randn_seeded({1004}, 22, DType::f32).to(dt);
    const Tensor s = Tensor::scalar(0.75, dt);
    const Tensor a3 = randn_seeded({3, 1, 37}, 23, DType::f32).to(dt);
    const Tensor b3 = randn_seeded({5, 1}, 24, DType::f32).to(dt);
    const Tensor ag = a.to(kCuda), bg = b.to(kCuda), sg = s.to(kCuda);
    for (auto& [name, f] : cases) {
      const bool exact = std::string(name) != "pow";
      // dense and aligned, 1003 or 5 elements (tail only); a scalar operand either side
      for (int64_t n : {int64_t{1003}, int64_t{5}}) {
        EXPECT_TRUE(matches_cpu(f(ag.narrow(0, 0, n), bg.narrow(0, 0, n)),
                                f(a.narrow(0, 0, n), b.narrow(0, 0, n)), exact))
            << name << " dense " << n;
        EXPECT_TRUE(matches_cpu(f(ag.narrow(0, 0, n), sg), f(a.narrow(0, 0, n), s), exact))
            << name << " scalar " << n;
        EXPECT_TRUE(matches_cpu(f(sg, bg.narrow(0, 0, n)), f(s, b.narrow(0, 0, n)), exact))
            << name << " scalar first " << n;
      }
      // one operand a misaligned view, and a general broadcast
      EXPECT_TRUE(matches_cpu(f(ag.narrow(0, 1, 1003), bg.narrow(0, 0, 1003)),
                              f(a.narrow(0, 1, 1003), b.narrow(0, 0, 1003)), exact))
          << name << " misaligned";
      EXPECT_TRUE(matches_cpu(f(a3.to(kCuda), b3.to(kCuda)), f(a3, b3), exact))
          << name << " broadcast";
    }
    // gradients of a broadcast product reduce to each operand's shape, in dt
    Tensor ac = a3.detach().set_requires_grad(true), bc = b3.detach().set_requires_grad(true);
    Tensor agr = a3.to(kCuda).detach().set_requires_grad(true);
    Tensor bgr = b3.to(kCuda).detach().set_requires_grad(true);
    const Tensor dy = randn_seeded({3, 5, 37}, 25, DType::f32).to(dt);
    mul(ac, bc).backward(dy);
    mul(agr, bgr).backward(dy.to(kCuda));
    EXPECT_TRUE(matches_cpu(agr.grad(), ac.grad(), true)) << "mul backward a";
    ASSERT_EQ(bgr.grad().dtype(), dt);
    // compare and where
    EXPECT_EQ(gt(a3.to(kCuda), b3.to(kCuda)).to_vector<int64_t>(), gt(a3, b3).to_vector<int64_t>());
    const Tensor c = gt(a3, b3);
    EXPECT_TRUE(
        matches_cpu(where(c.to(kCuda), a3.to(kCuda), b3.to(kCuda)), where(c, a3, b3), true));
    EXPECT_TRUE(matches_cpu(full({7}, 0.3, dt, kCuda), full({7}, 0.3, dt), true));
  }
}

TEST(BackendHalfOps, ReductionsMeetTheRuleAndExactOnesMatchCpu) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes) {
    // rows of 1500 (block per row), 5 rows of 300 (warp per row), columns (reduced dim leading)
    for (int64_t n : {int64_t{1500}, int64_t{300}}) {
      const Tensor x32 = add(randn_seeded({5, n}, 31, DType::f32), full({5, n}, 1.0));
      const Tensor x = x32.to(dt), x64 = x.to(DType::f64), xg = x.to(kCuda);
      const Shape rows{5};
      for (bool m : {false, true}) {
        const Tensor got = m ? mean(xg, {1}) : sum(xg, {1});
        ASSERT_EQ(got.dtype(), dt);
        EXPECT_TRUE(within_rule(got, from_doubles(naive_row_sums(x, dt, m), rows),
                                m ? mean(x64, {1}) : sum(x64, {1})))
            << (m ? "mean " : "sum ") << n << " " << dt;
      }
      const Tensor xtg = x.t().contiguous().to(kCuda);  // [n, 5]: the column kernel
      EXPECT_TRUE(within_rule(sum(xtg, {0}), from_doubles(naive_row_sums(x, dt, false), rows),
                              sum(x64, {1})))
          << "column sum " << n;
      EXPECT_TRUE(
          within_rule(var(xg, {1}), from_doubles(naive_row_vars(x, dt), rows), var(x64, {1})))
          << "var " << n;
      EXPECT_EQ(amax(xg, {1}).to_vector<double>(), amax(x, {1}).to_vector<double>());
      EXPECT_EQ(amin(xtg, {0}).to_vector<double>(), amin(x, {1}).to_vector<double>());
      EXPECT_EQ(argmax(xg, 1).to_vector<int64_t>(), argmax(x, 1).to_vector<int64_t>());
      EXPECT_EQ(argmin(xtg, 0).to_vector<int64_t>(), argmin(x, 1).to_vector<int64_t>());
      std::vector<double> naive_cs;
      const std::vector<double> v = x.to_vector<double>();
      for (int64_t r = 0; r < 5; ++r) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) naive_cs.push_back(s = r16(s + v[r * n + i], dt));
      }
      EXPECT_TRUE(within_rule(cumsum(xg, 1), from_doubles(naive_cs, {5, n}), cumsum(x64, 1)))
          << "cumsum " << n;
    }
  }
}

TEST(BackendHalfOps, SoftmaxRowsAndColumnsMeetTheRule) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes) {
    // 5 x 300: a warp per row; 3 x 1100: a block per row; dim 0 of the transpose: columns
    for (int64_t D : {int64_t{300}, int64_t{1100}}) {
      const int64_t rows = D == 300 ? 5 : 3;
      const Tensor x = mul(randn_seeded({rows, D}, 41, DType::f32), full({rows, D}, 3.0)).to(dt);
      const Tensor dy = randn_seeded({rows, D}, 42, DType::f32).to(dt);
      for (bool log : {false, true}) {
        auto f = [log](const Tensor& t, int64_t dim) {
          return log ? log_softmax(t, dim) : softmax(t, dim);
        };
        Tensor xg = x.to(kCuda).detach().set_requires_grad(true);
        Tensor x64 = x.to(DType::f64).detach().set_requires_grad(true);
        Tensor yg = f(xg, 1), y64 = f(x64, 1);
        ASSERT_EQ(yg.dtype(), dt);
        const Tensor naive = naive_softmax(x, log, dt);
        EXPECT_TRUE(within_rule(yg, naive, y64)) << log << " " << D << " " << dt;
        EXPECT_TRUE(within_rule(f(x.t().contiguous().to(kCuda), 0), naive.t(), y64.t()))
            << log << " columns " << D;
        yg.backward(dy.to(kCuda));
        y64.backward(dy.to(DType::f64));
        ASSERT_EQ(xg.grad().dtype(), dt);
        EXPECT_TRUE(
            within_rule(xg.grad(), naive_softmax_backward(dy, yg.detach(), log, dt), x64.grad()))
            << log << " backward " << D << " " << dt;
        // columns backward: dim 0 of the transposes
        Tensor xtg = x.t().contiguous().to(kCuda).detach().set_requires_grad(true);
        const Tensor ytg = f(xtg, 0);
        ytg.backward(dy.t().contiguous().to(kCuda));
        EXPECT_TRUE(within_rule(xtg.grad().t(),
                                naive_softmax_backward(dy, ytg.detach().t().contiguous(), log, dt),
                                x64.grad()))
            << log << " columns backward " << D << " " << dt;
      }
    }
  }
}

TEST(BackendHalfOps, LayerNormWarpAndBlockRowsMeetTheRule) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes) {
    check_layer_norm(dt, 7, 300, kCuda);   // a warp per row
    check_layer_norm(dt, 3, 1100, kCuda);  // a block per row
  }
}

TEST(BackendHalfOps, CrossEntropyWarpBlockAndSpatialMeetTheRule) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : kHalfTypes) {
    check_cross_entropy(dt, 9, 300, kCuda);   // a warp per sample
    check_cross_entropy(dt, 3, 1100, kCuda);  // a block per sample
    // [N, C, S]: the column kernel, against the same samples laid out as [N * S, C]
    const int64_t N = 2, C = 37, S = 5;
    const Tensor x = mul(randn_seeded({N, C, S}, 63, DType::f32), full({N, C, S}, 3.0)).to(dt);
    std::vector<int64_t> ids(N * S);
    for (int64_t i = 0; i < N * S; ++i) ids[i] = (i * 7 + 3) % C;
    const Tensor t = Tensor::from_vector<int64_t>(ids, {N, S});
    const Tensor rows = x.permute({0, 2, 1}).contiguous().reshape({N * S, C});
    const Tensor loss = cross_entropy(x.to(kCuda), t.to(kCuda), -100, 0.0, "none");
    EXPECT_TRUE(within_rule(loss.reshape({N * S}), naive_cross_entropy(rows, ids, dt),
                            cross_entropy(x.to(DType::f64), t, -100, 0.0, "none").reshape({N * S})))
        << "spatial " << dt;
  }
}

}  // namespace
}  // namespace iris
