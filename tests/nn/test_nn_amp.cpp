// Mixed precision: the GradScaler's dynamic loss scaling (scale, unscale, skipped steps on
// overflow, growth, checkpoint state, misuse) and autocast's scope rules. On the CPU
// autocast changes nothing (tests/cuda/test_backend_autocast.cpp covers the CUDA path).
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "nn/amp.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

using testing::randn_seeded;

struct Fixture {
  Linear layer{3, 2};
  std::unique_ptr<SGD> opt;
  Fixture() {
    SgdOptions o;
    o.lr = 0.1;
    opt = std::make_unique<SGD>(layer, o);
  }
  Tensor loss() {
    const Tensor x = randn_seeded({4, 3}, 1, DType::f32);
    return sum(square(layer.forward(x)));
  }
};

TEST(GradScaler, ScaledBackwardThenUnscaleGivesTheTrueGradients) {
  Fixture plain, scaled;
  {
    NoGradGuard ng;
    copy_(scaled.layer.weight, plain.layer.weight);
    copy_(scaled.layer.bias, plain.layer.bias);
  }
  plain.loss().backward();
  GradScaler scaler;
  EXPECT_EQ(scaler.get_scale(), 65536.0);
  scaler.scale(scaled.loss()).backward();
  EXPECT_CLOSE(scaled.layer.weight.grad(), plain.layer.weight.grad() * 65536.0, 1e-6, 0);
  scaler.unscale_(*scaled.opt);
  EXPECT_CLOSE(scaled.layer.weight.grad(), plain.layer.weight.grad(), 1e-6, 1e-9);
  EXPECT_TRUE(scaler.step(*scaled.opt));
  plain.opt->step();
  EXPECT_CLOSE(scaled.layer.weight, plain.layer.weight, 1e-6, 1e-9);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 65536.0);
}

TEST(GradScaler, AnOverflowSkipsTheStepAndBacksOff) {
  Fixture f;
  GradScaler scaler;
  const Tensor before = f.layer.weight.clone();
  scaler.scale(f.loss()).backward();
  fill_(f.layer.bias.grad().narrow(0, 1, 1), std::numeric_limits<double>::infinity());
  EXPECT_FALSE(scaler.step(*f.opt));
  EXPECT_CLOSE(f.layer.weight, before, 0, 0);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 32768.0);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  // NaN counts as well.
  f.opt->zero_grad();
  scaler.scale(f.loss()).backward();
  fill_(f.layer.weight.grad().narrow(0, 0, 1), std::numeric_limits<double>::quiet_NaN());
  EXPECT_FALSE(scaler.step(*f.opt));
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 16384.0);
}

TEST(GradScaler, GrowsAfterTheIntervalOfCleanSteps) {
  Fixture f;
  GradScalerOptions o;
  o.init_scale = 8.0;
  o.growth_interval = 3;
  GradScaler scaler(o);
  for (int step = 1; step <= 7; ++step) {
    f.opt->zero_grad();
    scaler.scale(f.loss()).backward();
    EXPECT_TRUE(scaler.step(*f.opt));
    scaler.update();
    EXPECT_EQ(scaler.get_scale(), step < 3 ? 8.0 : step < 6 ? 16.0 : 32.0) << step;
  }
  // The state travels with checkpoints: a restored scaler grows on the same step.
  GradScaler restored(o);
  restored.load_state_dict(scaler.state_dict());
  EXPECT_EQ(restored.get_scale(), 32.0);
  for (GradScaler* s : {&scaler, &restored}) {
    f.opt->zero_grad();
    s->scale(f.loss()).backward();
    s->step(*f.opt);
    s->update();
  }
  EXPECT_EQ(restored.get_scale(), scaler.get_scale());
  EXPECT_EQ(scaler.get_scale(), 32.0);
  for (GradScaler* s : {&scaler, &restored}) {
    f.opt->zero_grad();
    s->scale(f.loss()).backward();
    s->step(*f.opt);
    s->update();
    EXPECT_EQ(s->get_scale(), 64.0);
  }
}

TEST(GradScaler, DisabledPassesThrough) {
  Fixture f;
  GradScalerOptions o;
  o.enabled = false;
  GradScaler scaler(o);
  const Tensor loss = f.loss();
  EXPECT_CLOSE(scaler.scale(loss), loss, 0, 0);
  loss.backward();
  EXPECT_TRUE(scaler.step(*f.opt));
  scaler.update();
}

TEST(GradScaler, MisuseAndBadOptionsAreErrors) {
  Fixture f;
  GradScaler scaler;
  scaler.scale(f.loss()).backward();
  scaler.unscale_(*f.opt);
  EXPECT_IRIS_ERROR(scaler.unscale_(*f.opt), "unscale_: already called");
  EXPECT_IRIS_ERROR(scaler.update(), "call step() first");
  scaler.step(*f.opt);
  EXPECT_IRIS_ERROR(scaler.step(*f.opt), "step: already called");
  GradScalerOptions bad;
  bad.backoff_factor = 1.5;
  EXPECT_IRIS_ERROR(GradScaler{bad}, "GradScaler: need");
  EXPECT_IRIS_ERROR(scaler.load_state_dict({{"scale", Tensor::scalar(2.0, DType::f64)}}),
                    "missing or malformed 'growth_tracker'");
}

TEST(Autocast, ChangesNothingOnTheCpuAndRestoresItsScope) {
  const Tensor a = randn_seeded({5, 7}, 2, DType::f32), b = randn_seeded({7, 3}, 3, DType::f32);
  const Tensor w = randn_seeded({4, 7}, 4, DType::f32), bias = randn_seeded({4}, 5, DType::f32);
  const Tensor ref = matmul(a, b), ref_lin = linear(a, w, bias);
  EXPECT_FALSE(autocast_enabled());
  {
    AutocastGuard autocast(DType::bf16);
    EXPECT_TRUE(autocast_enabled());
    EXPECT_FALSE(autocast_dtype(a, b).has_value());  // CPU operands
    EXPECT_CLOSE(matmul(a, b), ref, 0, 0);
    EXPECT_CLOSE(linear(a, w, bias), ref_lin, 0, 0);
    EXPECT_EQ(matmul(a, b).dtype(), DType::f32);
    {
      AutocastGuard off(DType::bf16, false);
      EXPECT_FALSE(autocast_enabled());
    }
    EXPECT_TRUE(autocast_enabled());
  }
  EXPECT_FALSE(autocast_enabled());
  EXPECT_IRIS_ERROR(AutocastGuard(DType::f32), "AutocastGuard: dtype must be bfloat16");
}

}  // namespace
}  // namespace iris::nn
