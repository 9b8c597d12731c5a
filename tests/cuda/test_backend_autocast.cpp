// Mixed precision on the CUDA backend: float32 <-> bfloat16 / float16 copies round exactly
// as the CPU does; under autocast, matmul and linear compute on the tensor cores in the
// 16-bit type, return float32 within the 16-bit rounding of the operands, and send float32
// gradients to float32 parameters; a small model trains under bf16 autocast as it does in
// fp32.
#include <cmath>

#include "autograd/ops.h"
#include "nn/amp.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

TEST(BackendAutocast, SixteenBitCopiesRoundAsTheCpu) {
  IRIS_REQUIRE_CUDA();
  // Values across the ranges that matter: normal, f16 subnormal and overflow, ties.
  std::vector<float> v = {0.f,  -0.f, 1.f,    -2.5f,       3.14159f,    1e-5f,         6e-8f,
                          7e4f, 1e5f, -1e38f, 1.00390625f, 1.01171875f, std::nanf(""), INFINITY};
  for (int i = 0; i < 50; ++i) v.push_back(std::ldexp(static_cast<float>(i) * 0.37f - 9.f, i - 25));
  const Tensor x = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  for (DType dt : {DType::bf16, DType::f16}) {
    const Tensor cpu = x.to(dt), gpu = x.to(kCuda).to(dt);
    EXPECT_EQ(gpu.dtype(), dt);
    const Tensor back_cpu = cpu.to(DType::f32), back_gpu = gpu.to(DType::f32).to(Device::cpu());
    const auto a = back_cpu.to_vector<float>(), b = back_gpu.to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::isnan(a[i])) {
        EXPECT_TRUE(std::isnan(b[i])) << dtype_name(dt) << " " << v[i];
      } else {
        EXPECT_EQ(a[i], b[i]) << dtype_name(dt) << " " << v[i];
      }
    }
    // 16-bit -> float64 as well (through float).
    const auto c64 = cpu.to(DType::f64).to_vector<double>();
    const auto g64 = gpu.to(DType::f64).to(Device::cpu()).to_vector<double>();
    for (size_t i = 0; i < c64.size(); ++i) {
      if (!std::isnan(c64[i])) {
        EXPECT_EQ(g64[i], c64[i]) << dtype_name(dt) << " " << v[i];
      }
    }
  }
}

// Reference: the product of the operands rounded to `dt`, accumulated in float64.
Tensor rounded_reference(const Tensor& a, const Tensor& b, DType dt) {
  return matmul(a.to(dt).to(DType::f64), b.to(dt).to(DType::f64));
}

TEST(BackendAutocast, MatmulAndLinearComputeInSixteenBitsAndReturnFloat32) {
  IRIS_REQUIRE_CUDA();
  const Tensor a = randn_seeded({2, 19, 37}, 1, DType::f32),
               b = randn_seeded({37, 21}, 2, DType::f32);
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor ag = a.to(kCuda).detach().set_requires_grad(true);
    Tensor bg = b.to(kCuda).detach().set_requires_grad(true);
    Tensor out;
    {
      AutocastGuard autocast(dt);
      out = matmul(ag, bg);
    }
    EXPECT_EQ(out.dtype(), DType::f32);
    // fp32 accumulation of exactly representable products, then one rounding of the
    // result to the 16-bit type: within half an ulp of it (2^-8 bf16, 2^-11 f16).
    const double ulp = dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    const Tensor want = rounded_reference(a, b, dt);
    EXPECT_CLOSE(out.to(Device::cpu()).to(DType::f64), want, ulp, 1e-3);
    // Gradients come back in float32 to the float32 leaves.
    const Tensor dy = randn_seeded(out.shape(), 3, DType::f32);
    out.backward(dy.to(kCuda));
    ASSERT_TRUE(ag.grad().defined());
    EXPECT_EQ(ag.grad().dtype(), DType::f32);
    const Tensor ga_want = matmul(dy.to(dt).to(DType::f64), b.to(dt).to(DType::f64).t());
    EXPECT_CLOSE(ag.grad().to(Device::cpu()).to(DType::f64), ga_want, 2 * ulp, 1e-3);
    EXPECT_EQ(bg.grad().dtype(), DType::f32);
  }
  // linear: the bias is added in float32 after the 16-bit product.
  const Tensor x = randn_seeded({5, 37}, 4, DType::f32), w = randn_seeded({11, 37}, 5, DType::f32);
  const Tensor bias = randn_seeded({11}, 6, DType::f32);
  Tensor y;
  {
    AutocastGuard autocast(DType::bf16);
    y = linear(x.to(kCuda), w.to(kCuda), bias.to(kCuda));
  }
  const Tensor product = sub(y.to(Device::cpu()), bias).to(DType::f64);
  EXPECT_CLOSE(product, rounded_reference(x, w.t(), DType::bf16), std::ldexp(1.0, -8), 1e-3);
}

// conv2d under autocast: the 16-bit convolution of the rounded operands (fp32 accumulation,
// one rounding of the result), the bias added in float32, float32 gradients to the leaves.
TEST(BackendAutocast, Conv2dComputesInSixteenBitsAndReturnsFloat32) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({2, 6, 9, 11}, 7, DType::f32);
  const Tensor w = randn_seeded({6, 3, 3, 3}, 8, DType::f32) * 0.3;
  const Tensor bias = randn_seeded({6}, 9, DType::f32);
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor xg = x.to(kCuda).detach().set_requires_grad(true);
    Tensor wg = w.to(kCuda).detach().set_requires_grad(true);
    Tensor y;
    {
      AutocastGuard autocast(dt);
      y = conv2d(xg, wg, bias.to(kCuda), {2, 1}, {1, 1}, {1, 2}, 2);
    }
    EXPECT_EQ(y.dtype(), DType::f32);
    const double ulp = dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    const Tensor want = conv2d(x.to(dt).to(DType::f64), w.to(dt).to(DType::f64), Tensor(), {2, 1},
                               {1, 1}, {1, 2}, 2);
    const Tensor product = sub(y.to(Device::cpu()), bias.reshape({-1, 1, 1})).to(DType::f64);
    EXPECT_CLOSE(product, want, ulp, 1e-3);
    y.backward(randn_seeded(y.shape(), 10, DType::f32).to(kCuda));
    ASSERT_TRUE(xg.grad().defined() && wg.grad().defined());
    EXPECT_EQ(xg.grad().dtype(), DType::f32);
    EXPECT_EQ(wg.grad().dtype(), DType::f32);
  }
}

// A two-layer regression trained with AdamW in float32 and under bf16 autocast (float32
// master weights) on the CUDA device: both fit, and the final losses agree closely.
TEST(BackendAutocast, ASmallModelTrainsUnderBf16AsInFloat32) {
  IRIS_REQUIRE_CUDA();
  const Tensor x = randn_seeded({64, 12}, 7, DType::f32);
  const Tensor target = tanh(matmul(x, randn_seeded({12, 3}, 8, DType::f32)));
  double final_loss[2] = {0, 0};
  for (int mixed = 0; mixed < 2; ++mixed) {
    Generator gen(11);
    nn::Sequential net;
    net.push_back(std::make_shared<nn::Linear>(12, 32, true, &gen));
    net.push_back(std::make_shared<nn::Tanh>());
    net.push_back(std::make_shared<nn::Linear>(32, 3, true, &gen));
    net.to(kCuda);
    nn::AdamWOptions o;
    o.lr = 1e-2;
    o.weight_decay = 0;
    nn::AdamW opt(net, o);
    const Tensor xg = x.to(kCuda), tg = target.to(kCuda);
    double first = 0, last = 0;
    for (int step = 0; step < 60; ++step) {
      Tensor loss;
      {
        AutocastGuard autocast(DType::bf16, mixed == 1);
        loss = mean(square(sub(net.forward(xg), tg)));
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
      (step == 0 ? first : last) = loss.item();
    }
    for (const auto& [name, p] : net.named_parameters()) EXPECT_EQ(p.dtype(), DType::f32) << name;
    EXPECT_LT(last, 0.1 * first) << (mixed ? "bf16" : "fp32");
    final_loss[mixed] = last;
  }
  EXPECT_NEAR(final_loss[1], final_loss[0], 0.25 * final_loss[0] + 1e-3);
}

// float16 with loss scaling on the device: a scale so large that the fp16 gradients of the
// products overflow makes the scaler skip steps and back off until a step goes through.
TEST(BackendAutocast, GradScalerOnTheDevice) {
  IRIS_REQUIRE_CUDA();
  Generator gen(3);
  nn::Linear layer(8, 4, true, &gen);
  layer.to(kCuda);
  nn::SgdOptions so;
  so.lr = 0.01;
  nn::SGD opt(layer, so);
  nn::GradScalerOptions o;
  o.init_scale = std::ldexp(1.0, 24);  // |grad| * 2^24 is far beyond fp16's 65504
  nn::GradScaler scaler(o);
  const Tensor x = randn_seeded({16, 8}, 9, DType::f32).to(kCuda);
  const Tensor w0 = layer.weight.to(Device::cpu());
  int steps = 0;
  bool stepped = false;
  while (!stepped && steps < 40) {
    Tensor loss;
    {
      AutocastGuard autocast(DType::f16);
      loss = mean(square(layer.forward(x)));
    }
    opt.zero_grad();
    scaler.scale(loss).backward();
    stepped = scaler.step(opt);
    scaler.update();
    ++steps;
    if (!stepped) {
      EXPECT_CLOSE(layer.weight.to(Device::cpu()), w0, 0, 0);  // skipped: unchanged
    }
  }
  EXPECT_TRUE(stepped);
  EXPECT_GE(scaler.skipped_steps(), 1);
  EXPECT_LT(scaler.get_scale(), std::ldexp(1.0, 24));
  const double moved = amax(abs(sub(layer.weight.to(Device::cpu()), w0))).item();
  EXPECT_TRUE(std::isfinite(moved) && moved > 0);
}

}  // namespace
}  // namespace iris
