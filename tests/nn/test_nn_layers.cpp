// Linear, Conv2d, PatchEmbedding, pooling, BatchNorm2d, LayerNorm, Embedding, Dropout and
// the activations: forward against naive double loops or op compositions, PyTorch's
// initialisation bounds, float64 gradchecks of inputs and parameters, bad inputs.
#include <cmath>

#include "nn/init.h"
#include "nn/layers.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

using testing::param;
using testing::randn_seeded;

// Gradcheck of fn over `inputs` and every parameter of `m` (a float64 module).
::testing::AssertionResult module_gradcheck(Module& m, const std::vector<Tensor>& inputs,
                                            const std::function<Tensor()>& fn) {
  std::vector<Tensor> all = inputs;
  for (const Tensor& p : m.parameters()) all.push_back(p);
  return testing::grad_ok(
      gradcheck([&](const std::vector<Tensor>&) { return std::vector<Tensor>{fn()}; }, all));
}

void expect_within(const Tensor& t, double bound, const char* what) {
  const std::vector<double> v = t.to_vector<double>();
  double lo = 1e300, hi = -1e300;
  for (double x : v) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_GE(lo, -bound) << what;
  EXPECT_LE(hi, bound) << what;
  // Enough draws span most of the interval (uniform, not a narrower distribution).
  if (v.size() >= 200) {
    EXPECT_LT(lo, -0.9 * bound) << what;
    EXPECT_GT(hi, 0.9 * bound) << what;
  }
}

TEST(Linear, MatchesNaiveLoopOnStridedInput) {
  Generator g(3);
  Linear lin(7, 5, true, &g);
  lin.to(DType::f64);
  const Tensor x = randn_seeded({2, 7, 3}, 1).transpose(1, 2);  // [2, 3, 7], non-contiguous
  const Tensor y = lin.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
  const auto xv = x.contiguous().to_vector<double>(), wv = lin.weight.to_vector<double>(),
             bv = lin.bias.to_vector<double>();
  std::vector<double> ref(30);
  for (int r = 0; r < 6; ++r)
    for (int o = 0; o < 5; ++o) {
      double s = bv[o];
      for (int i = 0; i < 7; ++i) s += xv[r * 7 + i] * wv[o * 7 + i];
      ref[r * 5 + o] = s;
    }
  EXPECT_CLOSE(y, Tensor::from_vector(ref, {2, 3, 5}), 1e-12, 1e-12);
}

TEST(Linear, InitialisationBoundsAndGradcheck) {
  Generator g(11);
  Linear lin(37, 50, true, &g);
  expect_within(lin.weight, 1 / std::sqrt(37.0), "weight");
  expect_within(lin.bias, 1 / std::sqrt(37.0), "bias");
  Linear nob(4, 3, false, &g);
  EXPECT_FALSE(nob.bias.defined());
  EXPECT_EQ(nob.state_dict().size(), 1u);
  Linear small(4, 3, true, &g);
  small.to(DType::f64);
  const Tensor x = param({2, 4}, 5);
  EXPECT_TRUE(module_gradcheck(small, {x}, [&] { return small.forward(x); }));
}

TEST(Conv2d, MatchesNaiveLoopWithStridePaddingDilationGroups) {
  Generator g(5);
  const int64_t N = 2, Cin = 4, H = 9, W = 7, Cout = 6, kH = 3, kW = 2, G = 2;
  Conv2d conv(Cin, Cout, {kH, kW},
              Conv2dOptions{.stride = {2, 1}, .padding = {1, 1}, .dilation = {1, 2}, .groups = G},
              &g);
  conv.to(DType::f64);
  const Tensor x = randn_seeded({N, Cin, W, H}, 2).transpose(2, 3);  // non-contiguous
  const Tensor y = conv.forward(x);
  const int64_t OH = (H + 2 - 1 * (kH - 1) - 1) / 2 + 1, OW = (W + 2 - 2 * (kW - 1) - 1) / 1 + 1;
  ASSERT_EQ(y.shape(), (Shape{N, Cout, OH, OW}));
  const auto xv = x.contiguous().to_vector<double>(), wv = conv.weight.to_vector<double>(),
             bv = conv.bias.to_vector<double>();
  std::vector<double> ref(N * Cout * OH * OW);
  const int64_t Cin_g = Cin / G, Cout_g = Cout / G;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Cout; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = bv[co];
          for (int64_t cg = 0; cg < Cin_g; ++cg)
            for (int64_t kh = 0; kh < kH; ++kh)
              for (int64_t kw = 0; kw < kW; ++kw) {
                const int64_t ih = oh * 2 - 1 + kh, iw = ow - 1 + kw * 2;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ci = co / Cout_g * Cin_g + cg;
                s += xv[((n * Cin + ci) * H + ih) * W + iw] *
                     wv[((co * Cin_g + cg) * kH + kh) * kW + kw];
              }
          ref[((n * Cout + co) * OH + oh) * OW + ow] = s;
        }
  EXPECT_CLOSE(y, Tensor::from_vector(ref, y.shape()), 1e-12, 1e-12);
}

TEST(Conv2d, InitialisationGradcheckAndErrors) {
  Generator g(9);
  Conv2d big(6, 40, 3, Conv2dOptions{.groups = 2}, &g);
  const double bound = 1 / std::sqrt(3.0 * 9);  // fan_in = 6 / 2 * 3 * 3
  expect_within(big.weight, bound, "weight");
  expect_within(big.bias, bound, "bias");
  EXPECT_EQ(big.weight.shape(), (Shape{40, 3, 3, 3}));
  Conv2d conv(2, 3, 2, Conv2dOptions{.stride = {2, 1}, .padding = {1, 0}}, &g);
  conv.to(DType::f64);
  const Tensor x = param({2, 2, 4, 3}, 4);
  EXPECT_TRUE(module_gradcheck(conv, {x}, [&] { return conv.forward(x); }));
  EXPECT_IRIS_ERROR(Conv2d(3, 4, 3, Conv2dOptions{.groups = 2}), "divisible by groups");
  EXPECT_IRIS_ERROR(conv.forward(zeros({1, 3, 4, 4}, DType::f64)), "Conv2d(2, 3");
}

TEST(PatchEmbedding, IsConvThenFlattenTranspose) {
  Generator g(2);
  PatchEmbedding pe(3, 5, 4, &g);
  EXPECT_EQ(pe.type_name(), "PatchEmbedding");
  const auto sd = pe.state_dict();
  ASSERT_EQ(sd.size(), 2u);
  EXPECT_EQ(sd[0].first, "weight");
  EXPECT_EQ(sd[0].second.shape(), (Shape{5, 3, 4, 4}));
  const Tensor x = randn({2, 3, 8, 12});
  const Tensor y = pe.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 6, 5}));
  const Tensor ref = conv2d(x, pe.weight, pe.bias, {4, 4}).reshape({2, 5, 6}).transpose(1, 2);
  EXPECT_CLOSE(y, ref, 0, 0);
  pe.to(DType::f64);
  const Tensor xs = param({1, 3, 4, 8}, 3);
  EXPECT_TRUE(module_gradcheck(pe, {xs}, [&] { return pe.forward(xs); }));
  EXPECT_IRIS_ERROR(pe.forward(zeros({1, 3, 6, 8}, DType::f64)), "multiples of 4");
}

TEST(Pooling, ModulesCallTheOpsWithTheirOptions) {
  const Tensor x = randn_seeded({2, 3, 9, 8}, 7);
  MaxPool2d mp(3, MaxPool2dOptions{.stride = Size2{2, 2}, .padding = {1, 1}, .ceil_mode = true});
  EXPECT_CLOSE(mp.forward(x), max_pool2d(x, {3, 3}, Size2{2, 2}, {1, 1}, {1, 1}, true), 0, 0);
  AvgPool2d ap({3, 2}, AvgPool2dOptions{.padding = {1, 1}, .count_include_pad = false});
  EXPECT_CLOSE(ap.forward(x), avg_pool2d(x, {3, 2}, std::nullopt, {1, 1}, false, false), 0, 0);
  AdaptiveAvgPool2d aap({4, 3});
  const Tensor y = aap.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4, 3}));
  // Bin (1, 2): rows [floor(9/4), ceil(18/4)) = [2, 5), cols [floor(16/3), 8) = [5, 8).
  const auto xv = x.to_vector<double>();
  double s = 0;
  for (int h = 2; h < 5; ++h)
    for (int w = 5; w < 8; ++w) s += xv[((1 * 3 + 2) * 9 + h) * 8 + w];
  EXPECT_NEAR(y.select(0, 1).select(0, 2).select(0, 1).select(0, 2).item(), s / 9, 1e-12);
  const Tensor xp = param({1, 2, 5, 4}, 8);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{ap.forward(in[0])}; }, {xp});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{aap.forward(in[0])}; }, {xp});
}

// Per-channel batch statistics in double: mean and biased variance over N, H, W.
void channel_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const auto v = x.contiguous().to_vector<double>();
  mean.assign(C, 0);
  var.assign(C, 0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) mean[c] += v[(n * C + c) * HW + i];
    mean[c] /= static_cast<double>(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        const double d = v[(n * C + c) * HW + i] - mean[c];
        var[c] += d * d;
      }
    var[c] /= static_cast<double>(N * HW);
  }
}

TEST(BatchNorm2d, TrainingNormalisesAndUpdatesRunningStats) {
  BatchNorm2d bn(3, BatchNormOptions{.eps = 1e-3, .momentum = 0.2});
  bn.to(DType::f64);
  EXPECT_EQ(bn.num_batches_tracked.dtype(), DType::i64);
  {
    NoGradGuard ng;
    copy_(bn.weight, Tensor::from_vector<double>({1.5, -0.5, 2.0}, {3}));
    copy_(bn.bias, Tensor::from_vector<double>({0.1, 0.2, -0.3}, {3}));
  }
  const Tensor x = randn_seeded({4, 3, 5, 3}, 3) * 2.0 + 1.0;
  const Tensor y = bn.forward(x);
  std::vector<double> mean, var;
  channel_stats(x, mean, var);
  const auto xv = x.to_vector<double>();
  std::vector<double> ref(xv.size());
  const double w[] = {1.5, -0.5, 2.0}, b[] = {0.1, 0.2, -0.3};
  for (size_t i = 0; i < xv.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / 15) % 3;
    ref[i] = (xv[i] - mean[c]) / std::sqrt(var[c] + 1e-3) * w[c] + b[c];
  }
  EXPECT_CLOSE(y, Tensor::from_vector(ref, x.shape()), 1e-10, 1e-12);
  const double n = 4 * 15;
  std::vector<double> rm(3), rv(3);
  for (int c = 0; c < 3; ++c) rm[c] = 0.2 * mean[c], rv[c] = 0.8 + 0.2 * var[c] * n / (n - 1);
  EXPECT_CLOSE(bn.running_mean, Tensor::from_vector(rm, {3}), 1e-12, 1e-14);
  EXPECT_CLOSE(bn.running_var, Tensor::from_vector(rv, {3}), 1e-12, 1e-14);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
  // Eval: the running statistics, and no update.
  bn.eval();
  const Tensor ye = bn.forward(x);
  for (size_t i = 0; i < xv.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / 15) % 3;
    ref[i] = (xv[i] - rm[c]) / std::sqrt(rv[c] + 1e-3) * w[c] + b[c];
  }
  EXPECT_CLOSE(ye, Tensor::from_vector(ref, x.shape()), 1e-10, 1e-12);
  EXPECT_EQ(bn.num_batches_tracked.item(), 1);
}

TEST(BatchNorm2d, CumulativeAverageWithoutMomentumAndNoTracking) {
  BatchNorm2d bn(2, BatchNormOptions{.momentum = std::nullopt});
  bn.to(DType::f64);
  const Tensor a = randn_seeded({3, 2, 2, 2}, 1), b = randn_seeded({3, 2, 2, 2}, 2) + 3.0;
  bn.forward(a);
  bn.forward(b);
  std::vector<double> ma, va, mb, vb;
  channel_stats(a, ma, va);
  channel_stats(b, mb, vb);
  // Factor 1 then 1/2: the plain average of the two batch means.
  EXPECT_CLOSE(bn.running_mean,
               Tensor::from_vector<double>({(ma[0] + mb[0]) / 2, (ma[1] + mb[1]) / 2}, {2}), 1e-12,
               1e-14);
  EXPECT_EQ(bn.num_batches_tracked.item(), 2);
  BatchNorm2d plain(2, BatchNormOptions{.affine = false, .track_running_stats = false});
  EXPECT_TRUE(plain.state_dict().empty());
  plain.eval();  // still batch statistics
  plain.to(DType::f64);
  const Tensor y = plain.forward(a);
  std::vector<double> my, vy;
  channel_stats(y, my, vy);
  EXPECT_NEAR(my[0], 0, 1e-12);
  EXPECT_NEAR(vy[1], va[1] / (va[1] + 1e-5), 1e-10);
}

TEST(BatchNorm2d, GradcheckAndErrors) {
  BatchNorm2d bn(3);
  bn.to(DType::f64);
  {
    NoGradGuard ng;
    copy_(bn.weight, randn_seeded({3}, 4));
    copy_(bn.bias, randn_seeded({3}, 5));
  }
  const Tensor x = param({3, 3, 2, 3}, 6);
  EXPECT_TRUE(module_gradcheck(bn, {x}, [&] { return bn.forward(x); }));
  bn.eval();
  EXPECT_TRUE(module_gradcheck(bn, {x}, [&] { return bn.forward(x); }));
  EXPECT_IRIS_ERROR(bn.forward(zeros({2, 3, 4}, DType::f64)), "expected 4D input");
  EXPECT_IRIS_ERROR(bn.forward(zeros({2, 4, 2, 2}, DType::f64)), "BatchNorm2d(3");
  EXPECT_IRIS_ERROR(BatchNorm2d(3, BatchNormOptions{.momentum = 1.5}), "momentum");
}

TEST(LayerNorm, MatchesNaiveLoopAndGradchecks) {
  LayerNorm ln(Shape{2, 5}, 1e-4);
  ln.to(DType::f64);
  {
    NoGradGuard ng;
    copy_(ln.weight, randn_seeded({2, 5}, 1));
    copy_(ln.bias, randn_seeded({2, 5}, 2));
  }
  EXPECT_EQ(ln.weight.shape(), (Shape{2, 5}));
  const Tensor x = randn_seeded({5, 2, 3}, 3).permute({2, 1, 0});  // [3, 2, 5], strided
  const Tensor y = ln.forward(x);
  const auto xv = x.contiguous().to_vector<double>(), wv = ln.weight.to_vector<double>(),
             bv = ln.bias.to_vector<double>();
  std::vector<double> ref(xv.size());
  for (int r = 0; r < 3; ++r) {
    double m = 0, v = 0;
    for (int i = 0; i < 10; ++i) m += xv[r * 10 + i];
    m /= 10;
    for (int i = 0; i < 10; ++i) v += (xv[r * 10 + i] - m) * (xv[r * 10 + i] - m);
    v /= 10;
    for (int i = 0; i < 10; ++i)
      ref[r * 10 + i] = (xv[r * 10 + i] - m) / std::sqrt(v + 1e-4) * wv[i] + bv[i];
  }
  EXPECT_CLOSE(y, Tensor::from_vector(ref, {3, 2, 5}), 1e-10, 1e-12);
  LayerNorm fresh(4);
  EXPECT_EQ(sum(fresh.weight).item(), 4.0);
  EXPECT_EQ(sum(abs(fresh.bias)).item(), 0.0);
  const Tensor xs = param({3, 2, 5}, 9);
  EXPECT_TRUE(module_gradcheck(ln, {xs}, [&] { return ln.forward(xs); }));
  LayerNorm noaffine(Shape{4}, 1e-5, false);
  EXPECT_TRUE(noaffine.state_dict().empty());
}

TEST(Embedding, RowsPaddingInitAndGradient) {
  Generator g(1);
  Embedding emb(300, 40, -2, &g);
  EXPECT_EQ(*emb.padding_idx, 298);
  EXPECT_EQ(sum(abs(emb.weight.select(0, 298))).item(), 0.0);
  // N(0, 1) over 12000 draws (minus the padding row).
  const double m = mean(emb.weight).item(), sd = std::sqrt(var(emb.weight).item());
  EXPECT_NEAR(m, 0.0, 0.03);
  EXPECT_NEAR(sd, 1.0, 0.03);
  const Tensor ids = Tensor::from_vector<int64_t>({5, 298, 7, 5}, {2, 2});
  const Tensor y = emb.forward(ids);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 40}));
  EXPECT_CLOSE(y.select(0, 1).select(0, 0), emb.weight.select(0, 7), 0, 0);
  sum(y * randn({2, 2, 40})).backward();
  EXPECT_EQ(sum(abs(emb.weight.grad().select(0, 298))).item(), 0.0);
  EXPECT_GT(sum(abs(emb.weight.grad().select(0, 5))).item(), 0.0);
  Embedding small(6, 3, std::nullopt, &g);
  small.to(DType::f64);
  const Tensor few = Tensor::from_vector<int64_t>({1, 4, 4, 0, 5}, {5});
  EXPECT_TRUE(module_gradcheck(small, {}, [&] { return small.forward(few); }));
  EXPECT_IRIS_ERROR(Embedding(4, 2, 4), "padding_idx 4");
}

TEST(Dropout, TrainMaskEvalIdentityAndReproducibleGradcheck) {
  Generator g(21);
  Dropout drop(0.3, &g);
  const Tensor x = randn_seeded({40, 50}, 1) + 5.0;  // no zeros of its own
  const Tensor y = drop.forward(x);
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  int64_t zeros_seen = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0) {
      ++zeros_seen;
    } else {
      EXPECT_NEAR(yv[i], xv[i] / 0.7, 1e-12);
    }
  }
  EXPECT_NEAR(static_cast<double>(zeros_seen) / 2000, 0.3, 0.04);
  // The mask is a function of the generator state.
  g.set_state(21, 0);
  EXPECT_CLOSE(drop.forward(x), y, 0, 0);
  drop.eval();
  EXPECT_TRUE(drop.forward(x).is_same(x));
  drop.train();
  const Tensor xs = param({3, 4}, 2);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        g.set_state(5, 0);
        return std::vector<Tensor>{drop.forward(in[0])};
      },
      {xs});
  EXPECT_IRIS_ERROR(Dropout(1.5), "between 0 and 1");
}

TEST(Activations, MatchFormulasAndGradcheck) {
  const Tensor x = randn_seeded({3, 7}, 4) * 2.0;
  const auto xv = x.to_vector<double>();
  auto check = [&](Module& m, double (*f)(double)) {
    const auto yv = m.forward(x).to_vector<double>();
    for (size_t i = 0; i < xv.size(); ++i) EXPECT_NEAR(yv[i], f(xv[i]), 1e-12) << m.repr();
    const Tensor xs = param({2, 5}, 3);
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{m.forward(in[0])}; }, {xs});
  };
  ReLU relu_m;
  GELU gelu_m;
  GELU gelu_tanh_m("tanh");
  Tanh tanh_m;
  SiLU silu_m;
  Sigmoid sigmoid_m;
  check(relu_m, [](double v) { return v > 0 ? v : 0.0; });
  check(gelu_m, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
  check(gelu_tanh_m, [](double v) {
    return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  });
  check(tanh_m, [](double v) { return std::tanh(v); });
  check(silu_m, [](double v) { return v / (1 + std::exp(-v)); });
  check(sigmoid_m, [](double v) { return 1 / (1 + std::exp(-v)); });
  EXPECT_IRIS_ERROR(GELU("fast"), "approximate");
  Flatten flat;
  EXPECT_EQ(flat.forward(zeros({2, 3, 4})).shape(), (Shape{2, 12}));
  Identity id;
  EXPECT_TRUE(id.forward(x).is_same(x));
}

TEST(Init, FansGainsAndBounds) {
  const Tensor w = empty({8, 3, 5, 2});
  EXPECT_EQ(init::fan_in_and_fan_out(w).fan_in, 30);
  EXPECT_EQ(init::fan_in_and_fan_out(w).fan_out, 80);
  EXPECT_NEAR(init::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3.0), 1e-15);
  EXPECT_NEAR(init::calculate_gain("tanh"), 5.0 / 3.0, 1e-15);
  Generator g(4);
  const Tensor big = empty({64, 100});
  init::xavier_uniform_(big, 1.0, &g);
  expect_within(big, std::sqrt(6.0 / 164), "xavier_uniform");
  init::kaiming_uniform_(big, 0.0, "fan_out", "relu", &g);
  expect_within(big, std::sqrt(2.0) * std::sqrt(3.0 / 64), "kaiming_uniform fan_out");
  init::kaiming_normal_(big, 0.0, "fan_in", "relu", &g);
  EXPECT_NEAR(std::sqrt(var(big).item()), std::sqrt(2.0 / 100), 0.003);
  EXPECT_IRIS_ERROR(init::xavier_uniform_(empty({3})), "at least 2 dims");
  EXPECT_IRIS_ERROR(init::kaiming_uniform_(big, 0, "fan_sideways"), "mode");
  EXPECT_IRIS_ERROR(init::calculate_gain("swish"), "unsupported nonlinearity");
  // Initialising a parameter in place is allowed (it runs under NoGradGuard).
  const Tensor p = zeros({2, 2}).set_requires_grad(true);
  init::ones_(p);
  EXPECT_EQ(sum(p).item(), 4.0);
}

}  // namespace
}  // namespace iris::nn
