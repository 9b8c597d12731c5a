// Backend comparison for the elementwise family: each op on the CPU and on the CUDA
// device (emulated in CI, real under `ctest -L cuda`), same inputs, same results.
#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

TEST(BackendElementwise, TransfersRoundTrip) {
  IRIS_REQUIRE_CUDA();
  Tensor x = randn_seeded({3, 5}, 1, DType::f32);
  Tensor d = x.to(kCuda);
  EXPECT_TRUE(d.device().is_cuda());
  EXPECT_EQ(d.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(d.to_vector<float>(), x.to_vector<float>());  // host read of a device tensor
}

TEST(BackendElementwise, UnaryForwardAndBackwardMatchCpu) {
  IRIS_REQUIRE_CUDA();
  // 7 x 13 (not a multiple of any block size), transposed so the kernel sees strides.
  const Tensor base = randn_seeded({13, 7}, 2, DType::f32).t();
  const Tensor pos = add(abs(base), scalar_like(base, 0.25));
  std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops = {
      {"neg", neg},   {"abs", abs},         {"exp", exp},         {"tanh", tanh},
      {"sigmoid", sigmoid}, {"relu", relu}, {"silu", silu},       {"sin", sin},
      {"cos", cos},   {"square", square},   {"expm1", expm1},
      {"gelu", [](const Tensor& t) { return gelu(t); }},
      {"gelu_tanh", [](const Tensor& t) { return gelu(t, true); }},
      {"clamp", [](const Tensor& t) { return clamp(t, -0.5, 0.5); }},
      {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.1); }}};
  std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> positive = {
      {"log", log}, {"sqrt", sqrt}, {"rsqrt", rsqrt}, {"reciprocal", reciprocal},
      {"log1p", log1p}, {"pow", [](const Tensor& t) { return pow(t, 1.5); }}};
  for (int pass = 0; pass < 2; ++pass) {
    for (auto& [name, f] : pass == 0 ? ops : positive) {
      const Tensor in = pass == 0 ? base : pos;
      Tensor xc = in.contiguous().detach().set_requires_grad(true);
      Tensor xg = in.to(kCuda).detach().set_requires_grad(true);
      Tensor yc = f(xc), yg = f(xg);
      EXPECT_CLOSE(yg, yc, 1e-5, 1e-6) << name;
      const Tensor dy = randn_seeded(yc.shape(), 7, DType::f32);
      yc.backward(dy);
      yg.backward(dy.to(kCuda));
      EXPECT_CLOSE(xg.grad(), xc.grad(), 1e-5, 1e-6) << name << " backward";
    }
  }
}

TEST(BackendElementwise, BinaryBroadcastCompareWhere) {
  IRIS_REQUIRE_CUDA();
  const Tensor a = randn_seeded({3, 1, 5}, 3, DType::f32), b = randn_seeded({4, 1}, 4, DType::f32);
  const Tensor ag = a.to(kCuda), bg = b.to(kCuda);
  EXPECT_CLOSE(add(ag, bg), add(a, b), 0, 0);
  EXPECT_CLOSE(sub(ag, bg), sub(a, b), 0, 0);
  EXPECT_CLOSE(mul(ag, bg), mul(a, b), 0, 0);
  EXPECT_CLOSE(div(ag, bg), div(a, b), 1e-6, 0);
  EXPECT_CLOSE(maximum(ag, bg), maximum(a, b), 0, 0);
  EXPECT_CLOSE(minimum(ag, bg), minimum(a, b), 0, 0);
  EXPECT_EQ(gt(ag, bg).to_vector<int64_t>(), gt(a, b).to_vector<int64_t>());
  const Tensor c = gt(a, scalar_like(a, 0.0));
  EXPECT_CLOSE(where(c.to(kCuda), ag, bg), where(c, a, b), 0, 0);
  // integer arithmetic and dtype conversion on the device
  const Tensor i = arange(10).to(kCuda);
  EXPECT_EQ(add(i, i).to_vector<int64_t>(), add(arange(10), arange(10)).to_vector<int64_t>());
  EXPECT_EQ(i.to(DType::f32).to(DType::f64).to_vector<double>(),
            arange(10).to(DType::f64).to_vector<double>());
}

TEST(BackendElementwise, PhiloxDrawsAreTheSameOnBothBackends) {
  IRIS_REQUIRE_CUDA();
  Generator g1(99), g2(99);
  const Tensor c = randn({1000}, DType::f32, Device::cpu(), &g1);
  const Tensor d = randn({1000}, DType::f32, kCuda, &g2);
  EXPECT_CLOSE(d, c, 1e-6, 1e-6);
  const Tensor u = uniform({257}, -2, 3, DType::f64, kCuda, &g2);
  const Tensor v = uniform({257}, -2, 3, DType::f64, Device::cpu(), &g1);
  EXPECT_CLOSE(u, v, 0, 0);
}

TEST(BackendElementwise, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor a = randn_seeded({3}, 5, DType::f32);
  EXPECT_IRIS_ERROR(add(a.to(kCuda), a), "device mismatch");
  EXPECT_IRIS_ERROR(exp(arange(3).to(kCuda)), "exp: unsupported dtype int64 on cuda");
}

}  // namespace
}  // namespace iris
