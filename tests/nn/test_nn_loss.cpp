// Losses against naive double formulas (reductions, ignore_index, label smoothing, weights,
// extreme logits, CLIP's clamped temperature), float64 gradchecks of every differentiable
// input, bad arguments.
#include <cmath>

#include "nn/loss.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

using testing::param;
using testing::randn_seeded;

TEST(CrossEntropyLoss, IgnoreIndexAndSmoothingMatchNaive) {
  const int64_t N = 5, C = 4;
  const Tensor logits = randn_seeded({C, N}, 1).t() * 2.0;  // non-contiguous
  const std::vector<int64_t> tv = {2, -1, 0, 3, 3};
  const Tensor target = Tensor::from_vector(tv, {N});
  const double eps = 0.2;
  const auto lv = logits.contiguous().to_vector<double>();
  double total = 0;
  int counted = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (tv[n] == -1) continue;
    double mx = -1e300, z = 0;
    for (int64_t c = 0; c < C; ++c) mx = std::max(mx, lv[n * C + c]);
    for (int64_t c = 0; c < C; ++c) z += std::exp(lv[n * C + c] - mx);
    const double lse = mx + std::log(z);
    double smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth += lse - lv[n * C + c];
    total += (1 - eps) * (lse - lv[n * C + tv[n]]) + eps / C * smooth;
    ++counted;
  }
  const CrossEntropyOptions opt{.ignore_index = -1, .label_smoothing = eps};
  EXPECT_NEAR(cross_entropy_loss(logits, target, opt).item(), total / counted, 1e-12);
  const Tensor x = param({N, C}, 2);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{cross_entropy_loss(in[0], target, opt)};
      },
      {x});
}

TEST(MseLoss, ReductionsBroadcastAndGradcheck) {
  const Tensor a = randn_seeded({3, 4}, 1), b = randn_seeded({4}, 2);
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  double s = 0;
  std::vector<double> none(12);
  for (int i = 0; i < 12; ++i) s += none[i] = (av[i] - bv[i % 4]) * (av[i] - bv[i % 4]);
  EXPECT_NEAR(mse_loss(a, b).item(), s / 12, 1e-12);
  EXPECT_NEAR(mse_loss(a, b, "sum").item(), s, 1e-12);
  EXPECT_CLOSE(mse_loss(a, b, "none"), Tensor::from_vector(none, {3, 4}), 1e-14, 0);
  const Tensor x = param({3, 4}, 3), y = param({3, 4}, 4);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{mse_loss(in[0], in[1])}; },
      {x, y});
  EXPECT_IRIS_ERROR(mse_loss(a, b, "avg"), "mse_loss: reduction");
  EXPECT_IRIS_ERROR(mse_loss(a, b.to(DType::f32)), "mse_loss");
}

double bce_naive(double x, double y, double w, double pw) {
  const double sig = 1 / (1 + std::exp(-x));
  return -w * (pw * y * std::log(sig) + (1 - y) * std::log(1 - sig));
}

TEST(BceWithLogits, MatchesNaiveWithWeightsAndPosWeight) {
  const Tensor x = randn_seeded({3, 4}, 1) * 3.0;
  const Tensor y = rand({3, 4}, DType::f64);
  const Tensor w = rand({4}, DType::f64) + 0.5;
  const Tensor pw = Tensor::from_vector<double>({1.0, 2.0, 0.5, 3.0}, {4});
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>(), wv = w.to_vector<double>(),
             pv = pw.to_vector<double>();
  double plain = 0, weighted = 0;
  std::vector<double> none(12);
  for (int i = 0; i < 12; ++i) {
    plain += bce_naive(xv[i], yv[i], 1, 1);
    weighted += none[i] = bce_naive(xv[i], yv[i], wv[i % 4], pv[i % 4]);
  }
  EXPECT_NEAR(binary_cross_entropy_with_logits(x, y).item(), plain / 12, 1e-12);
  EXPECT_NEAR(binary_cross_entropy_with_logits(x, y, w, pw, "sum").item(), weighted, 1e-11);
  EXPECT_CLOSE(binary_cross_entropy_with_logits(x, y, w, pw, "none"),
               Tensor::from_vector(none, {3, 4}), 1e-12, 1e-14);
  const Tensor xs = param({3, 4}, 2), ys = rand({3, 4}, DType::f64).set_requires_grad(true);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{binary_cross_entropy_with_logits(in[0], in[1], w, pw)};
      },
      {xs, ys});
}

TEST(BceWithLogits, StableAtExtremesAndExactAtZero) {
  const Tensor x = Tensor::from_vector<float>({-200.f, -30.f, 0.f, 30.f, 200.f}, {5});
  const Tensor y = Tensor::from_vector<float>({1.f, 0.f, 1.f, 1.f, 0.f}, {5});
  const auto l =
      binary_cross_entropy_with_logits(x, y, Tensor(), Tensor(), "none").to_vector<double>();
  EXPECT_NEAR(l[0], 200.0, 1e-4);
  EXPECT_NEAR(l[1], std::log1p(std::exp(-30.0)), 1e-12);
  EXPECT_NEAR(l[2], std::log(2.0), 1e-7);
  EXPECT_NEAR(l[4], 200.0, 1e-4);
  // The gradient at exactly 0 is sigmoid(0) - y (torch's), not a one-sided subgradient.
  const Tensor z = zeros({3}, DType::f64).set_requires_grad(true);
  const Tensor t = Tensor::from_vector<double>({0.0, 1.0, 0.25}, {3});
  binary_cross_entropy_with_logits(z, t, Tensor(), Tensor(), "sum").backward();
  EXPECT_CLOSE(z.grad(), Tensor::from_vector<double>({0.5, -0.5, 0.25}, {3}), 0, 1e-15);
  const Tensor pwz = zeros({1}, DType::f64).set_requires_grad(true);
  binary_cross_entropy_with_logits(pwz, Tensor::from_vector<double>({1.0}, {1}), Tensor(),
                                   Tensor::from_vector<double>({3.0}, {1}), "sum")
      .backward();
  EXPECT_NEAR(pwz.grad().item(), -1.5, 1e-15);  // (1 - y) - pos_weight * y * sigmoid(-0)
  EXPECT_IRIS_ERROR(binary_cross_entropy_with_logits(zeros({3}), zeros({4})), "same as input size");
  EXPECT_IRIS_ERROR(
      binary_cross_entropy_with_logits(zeros({3}), zeros({3}), Tensor(), Tensor(), "x"),
      "binary_cross_entropy_with_logits: reduction");
}

// Naive symmetric InfoNCE.
double clip_naive(const Tensor& img, const Tensor& txt, double logit_scale) {
  const int64_t N = img.size(0), D = img.size(1);
  const auto iv = img.to_vector<double>(), tv = txt.to_vector<double>();
  const double scale = std::min(std::exp(logit_scale), 100.0);
  std::vector<double> L(N * N);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t d = 0; d < D; ++d) s += iv[i * D + d] * tv[j * D + d];
      L[i * N + j] = scale * s;
    }
  double rows = 0, cols = 0;
  for (int64_t i = 0; i < N; ++i) {
    double zr = 0, zc = 0;
    for (int64_t j = 0; j < N; ++j) zr += std::exp(L[i * N + j]), zc += std::exp(L[j * N + i]);
    rows += std::log(zr) - L[i * N + i];
    cols += std::log(zc) - L[i * N + i];
  }
  return (rows / N + cols / N) / 2;
}

TEST(ClipLoss, SymmetricInfoNceWithClampedTemperature) {
  const Tensor img = randn_seeded({5, 3}, 1) * 0.3, txt = randn_seeded({5, 3}, 2) * 0.3;
  const double init = std::log(1 / 0.07);
  EXPECT_NEAR(clip_loss(img, txt, Tensor::scalar(init, DType::f64)).item(),
              clip_naive(img, txt, init), 1e-12);
  EXPECT_EQ(clip_logits(img, txt, Tensor::scalar(0.5, DType::f64)).shape(), (Shape{5, 5}));
  // Above log(100) the scale stays at 100 and the temperature gets no gradient.
  const Tensor big = Tensor::from_vector<double>({std::log(300.0)}, {1}).set_requires_grad(true);
  const Tensor loss = clip_loss(img, txt, big);
  EXPECT_NEAR(loss.item(), clip_naive(img, txt, std::log(300.0)), 1e-12);
  loss.backward();
  EXPECT_EQ(big.grad().item(), 0.0);
  const Tensor i = param({4, 3}, 3), t = param({4, 3}, 4);
  const Tensor s = Tensor::scalar(0.7, DType::f64).set_requires_grad(true);
  EXPECT_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{clip_loss(in[0], in[1], in[2])};
      },
      {i, t, s});
  EXPECT_IRIS_ERROR(clip_loss(zeros({4, 3}), zeros({5, 3}), zeros({})), "clip_loss");
  // The identity as matches is plain InfoNCE.
  std::vector<double> eye(25, 0.0);
  for (int k = 0; k < 5; ++k) eye[k * 6] = 1.0;
  EXPECT_NEAR(
      clip_loss(img, txt, Tensor::scalar(init, DType::f64), 100.0, Tensor::from_vector(eye, {5, 5}))
          .item(),
      clip_naive(img, txt, init), 1e-12);
  EXPECT_IRIS_ERROR(clip_logits(zeros({4, 3}), zeros({4, 3}), zeros({2})), "logit_scale");
}

// The loss with a matches matrix [N, M], written out naively: row i (image i over the texts)
// and column j (text j over the images) each aim at their matches evenly.
double clip_naive_matches(const Tensor& img, const Tensor& txt, const std::vector<double>& m,
                          double scale) {
  const int64_t N = img.size(0), M = txt.size(0), D = img.size(1);
  const auto iv = img.to_vector<double>(), tv = txt.to_vector<double>();
  std::vector<double> L(N * M);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < M; ++j) {
      double s = 0;
      for (int64_t d = 0; d < D; ++d) s += iv[i * D + d] * tv[j * D + d];
      L[i * M + j] = scale * s;
    }
  double rows = 0, cols = 0;
  for (int64_t i = 0; i < N; ++i) {
    double z = 0, n = 0, d = 0;
    for (int64_t j = 0; j < M; ++j) z += std::exp(L[i * M + j]);
    for (int64_t j = 0; j < M; ++j)
      n += m[i * M + j], d += m[i * M + j] * (L[i * M + j] - std::log(z));
    rows -= d / n;
  }
  for (int64_t j = 0; j < M; ++j) {
    double z = 0, n = 0, d = 0;
    for (int64_t i = 0; i < N; ++i) z += std::exp(L[i * M + j]);
    for (int64_t i = 0; i < N; ++i)
      n += m[i * M + j], d += m[i * M + j] * (L[i * M + j] - std::log(z));
    cols -= d / n;
  }
  return rows / (2.0 * N) + cols / (2.0 * M);
}

// Several matches per row/column: targets spread evenly over them.
TEST(ClipLoss, SharedCaptionsSpreadTheTarget) {
  const int64_t N = 4, D = 3;
  const Tensor img = randn_seeded({N, D}, 5) * 0.4, txt = randn_seeded({N, D}, 6) * 0.4;
  // Text 2 also describes image 0, and text 3 image 1 (not symmetric).
  const std::vector<double> m = {1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1};
  const double scale = 3.0;
  const double total = clip_naive_matches(img, txt, m, scale) * 2.0 * N;
  const Tensor matches = Tensor::from_vector(m, {N, N});
  EXPECT_NEAR(
      clip_loss(img, txt, Tensor::scalar(std::log(scale), DType::f64), 100.0, matches).item(),
      total / (2.0 * N), 1e-12);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{clip_loss(in[0], in[1], in[2], 100.0, matches)};
      },
      {param({N, D}, 7), param({N, D}, 8),
       Tensor::scalar(0.4, DType::f64).set_requires_grad(true)});
  EXPECT_IRIS_ERROR(clip_loss(img, txt, Tensor::scalar(0.0, DType::f64), 100.0, zeros({3, 3})),
                    "matches");
  EXPECT_IRIS_ERROR(clip_loss(img, txt, Tensor::scalar(0.0, DType::f64), 100.0, zeros({4, 4})),
                    "must be 1");
}

// Several captions per image (M texts for N images): the same loss over a [N, M] matches.
TEST(ClipLoss, SeveralCaptionsPerImage) {
  const int64_t N = 3, M = 7, D = 4;
  const Tensor img = randn_seeded({N, D}, 15) * 0.5, txt = randn_seeded({M, D}, 16) * 0.5;
  // Image 0 has texts 0-2, image 1 texts 3-4, image 2 texts 5-6; text 4 also describes image 0.
  const std::vector<double> m = {1, 1, 1, 0, 1, 0, 0,  //
                                 0, 0, 0, 1, 1, 0, 0,  //
                                 0, 0, 0, 0, 0, 1, 1};
  const Tensor matches = Tensor::from_vector(m, {N, M});
  EXPECT_NEAR(clip_loss(img, txt, Tensor::scalar(std::log(2.5), DType::f64), 100.0, matches).item(),
              clip_naive_matches(img, txt, m, 2.5), 1e-12);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{clip_loss(in[0], in[1], in[2], 100.0, matches)};
      },
      {param({N, D}, 17), param({M, D}, 18),
       Tensor::scalar(0.3, DType::f64).set_requires_grad(true)});
  const Tensor s0 = Tensor::scalar(0.0, DType::f64);
  EXPECT_IRIS_ERROR(clip_loss(img, txt, s0), "clip_loss: expected image and text");
  EXPECT_IRIS_ERROR(clip_loss(img, txt, s0, 100.0, zeros({N, N})), "must be [3, 7]");
  std::vector<double> lonely_text = m;
  lonely_text[1 * M + 4] = lonely_text[0 * M + 4] = 0;
  EXPECT_IRIS_ERROR(clip_loss(img, txt, s0, 100.0, Tensor::from_vector(lonely_text, {N, M})),
                    "text 4 matches none of the 3 images");
  std::vector<double> lonely_image = m;
  lonely_image[2 * M + 5] = lonely_image[2 * M + 6] = 0;
  lonely_image[0 * M + 5] = lonely_image[1 * M + 6] = 1;
  EXPECT_IRIS_ERROR(clip_loss(img, txt, s0, 100.0, Tensor::from_vector(lonely_image, {N, M})),
                    "image 2 matches none of the 7 texts");
}

}  // namespace
}  // namespace iris::nn
