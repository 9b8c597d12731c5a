// A tiny VQA task on generated scenes: one shape (circle, square, triangle) in one
// colour (red, green, blue) on a noisy background; the question asks for the colour or
// the shape. A small CNN encodes the image, an embedding the question, and the two are
// fused by an elementwise product before the answer classifier.
#include "tools/demo.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "autograd/ops.h"
#include "core/parallel.h"
#include "core/philox.h"
#include "tools/command.h"

namespace iris::tools {
namespace {

constexpr int64_t kSize = 16, kAnswers = 6;
const char* kAnswerNames[kAnswers] = {"red", "green", "blue", "circle", "square", "triangle"};

struct Batch {
  Tensor images;     // [B, 3, 16, 16]
  Tensor questions;  // [B] int64: 0 = colour?, 1 = shape?
  Tensor answers;    // [B] int64 in [0, 6)
};

// Deterministic scenes: sample i of a split draws its numbers from Philox (seed, i).
Batch make_batch(uint64_t seed, int64_t first, int64_t B) {
  std::vector<float> img(B * 3 * kSize * kSize);
  std::vector<int64_t> q(B), a(B);
  for (int64_t b = 0; b < B; ++b) {
    uint64_t ctr = static_cast<uint64_t>(first + b) << 12;
    auto u = [&] { return philox::uniform(seed, ctr++); };
    const int colour = static_cast<int>(u() * 3), shape = static_cast<int>(u() * 3);
    const double r = 4.5 + u() * 2.5, cx = r + u() * (kSize - 2 * r), cy = r + u() * (kSize - 2 * r);
    for (int64_t y = 0; y < kSize; ++y)
      for (int64_t x = 0; x < kSize; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        bool in = false;
        if (shape == 0) in = dx * dx + dy * dy <= r * r;
        if (shape == 1) in = std::abs(dx) <= r * 0.8 && std::abs(dy) <= r * 0.8;
        if (shape == 2) in = dy <= r * 0.8 && dy >= -r && std::abs(dx) <= (dy + r) * 0.55;
        for (int c = 0; c < 3; ++c) {
          const double noise = 0.15 * (u() - 0.5);
          img[((b * 3 + c) * kSize + y) * kSize + x] =
              static_cast<float>((in ? (c == colour ? 0.9 : 0.1) : 0.3) + noise);
        }
      }
    q[b] = static_cast<int64_t>(u() * 2);
    a[b] = q[b] == 0 ? colour : 3 + shape;
  }
  return {Tensor::from_vector(img, {B, 3, kSize, kSize}), Tensor::from_vector(q, {B}),
          Tensor::from_vector(a, {B})};
}

Tensor init_param(const Shape& shape, int64_t fan_in, Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  Tensor t = uniform(shape, -bound, bound, DType::f32, Device::cpu(), &gen);
  t.set_requires_grad(true);
  return t;
}

struct Model {
  Tensor conv1_w, conv1_b, conv2_w, conv2_b, img_w, img_b, q_emb, fc1_w, fc1_b, fc2_w, fc2_b;
  explicit Model(Generator& g)
      : conv1_w(init_param({16, 3, 3, 3}, 27, g)), conv1_b(init_param({16}, 27, g)),
        conv2_w(init_param({32, 16, 3, 3}, 144, g)), conv2_b(init_param({32}, 144, g)),
        img_w(init_param({64, 512}, 512, g)), img_b(init_param({64}, 512, g)),
        q_emb(init_param({2, 64}, 1, g)), fc1_w(init_param({64, 64}, 64, g)),
        fc1_b(init_param({64}, 64, g)), fc2_w(init_param({kAnswers, 64}, 64, g)),
        fc2_b(init_param({kAnswers}, 64, g)) {}
  std::vector<Tensor> params() const {
    return {conv1_w, conv1_b, conv2_w, conv2_b, img_w, img_b, q_emb, fc1_w, fc1_b, fc2_w, fc2_b};
  }
  Tensor forward(const Batch& b) const {
    Tensor h = relu(conv2d(b.images, conv1_w, conv1_b, {1, 1}, {1, 1}));
    h = max_pool2d(h, {2, 2});                                  // [B, 16, 8, 8]
    h = relu(conv2d(h, conv2_w, conv2_b, {1, 1}, {1, 1}));
    h = max_pool2d(h, {2, 2}).flatten(1);                       // [B, 512]: keeps the layout
    Tensor img = relu(linear(h, img_w, img_b));                 // [B, 64]
    Tensor fused = mul(img, embedding(q_emb, b.questions));  // multiplicative fusion
    return linear(relu(linear(fused, fc1_w, fc1_b)), fc2_w, fc2_b);
  }
};

double accuracy(const Model& m, const Batch& b) {
  NoGradGuard ng;
  const auto pred = argmax(m.forward(b), 1).to_vector<int64_t>();
  const auto truth = b.answers.to_vector<int64_t>();
  int64_t hit = 0;
  for (size_t i = 0; i < pred.size(); ++i) hit += pred[i] == truth[i];
  return static_cast<double>(hit) / static_cast<double>(pred.size());
}

}  // namespace

int run_demo(const DemoOptions& opt) {
  Generator gen(opt.seed);
  Model model(gen);
  std::vector<Tensor> params = model.params(), m1, m2;
  for (const Tensor& p : params) m1.push_back(zeros_like(p)), m2.push_back(zeros_like(p));
  const Batch test = make_batch(opt.seed + 1, 0, 512);
  std::printf("iris demo: tiny VQA (CNN image encoder x question embedding), %lld steps of %lld "
              "on cpu, %d threads\n",
              static_cast<long long>(opt.steps), static_cast<long long>(opt.batch),
              num_threads());
  std::printf("  before training: test accuracy %.3f (chance %.3f)\n", accuracy(model, test),
              1.0 / 3.0);
  const auto t0 = std::chrono::steady_clock::now();
  double running = 0;
  for (int64_t step = 1; step <= opt.steps; ++step) {
    const Batch b = make_batch(opt.seed, step * opt.batch, opt.batch);
    Tensor loss = cross_entropy(model.forward(b), b.answers);
    for (const Tensor& p : params) p.set_grad(Tensor());
    loss.backward();
    std::vector<Tensor> grads;
    for (const Tensor& p : params) grads.push_back(p.grad());
    adamw_step(params, grads, m1, m2, step, opt.lr, 0.9, 0.999, 1e-8, 1e-4);
    running = step == 1 ? loss.item() : 0.9 * running + 0.1 * loss.item();
    if (step % opt.log_every == 0 || step == 1)
      std::printf("  step %4lld  loss %.4f\n", static_cast<long long>(step), running);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double acc = accuracy(model, test);
  std::printf("  after training: test accuracy %.3f on 512 held-out questions (%.1f s, %.0f "
              "images/s)\n",
              acc, secs, static_cast<double>(opt.steps * opt.batch) / secs);
  NoGradGuard ng;
  const Batch show = make_batch(opt.seed + 2, 0, 4);
  const auto pred = argmax(model.forward(show), 1).to_vector<int64_t>();
  const auto q = show.questions.to_vector<int64_t>(), a = show.answers.to_vector<int64_t>();
  for (size_t i = 0; i < pred.size(); ++i)
    std::printf("  Q: what %s is it?  A: %s  (truth: %s)\n", q[i] == 0 ? "colour" : "shape",
                kAnswerNames[pred[i]], kAnswerNames[a[i]]);
  return acc > 0.9 ? 0 : 1;
}

IRIS_COMMAND(demo, "train a tiny VQA model on built-in data (CPU)", [](CLI::App& cmd) {
  auto opt = std::make_shared<DemoOptions>();
  cmd.add_option("--steps", opt->steps, "training steps")->capture_default_str();
  cmd.add_option("--batch", opt->batch, "batch size")->capture_default_str();
  cmd.add_option("--lr", opt->lr, "AdamW learning rate")->capture_default_str();
  cmd.add_option("--seed", opt->seed, "data and init seed")->capture_default_str();
  return [opt] { return run_demo(*opt); };
});

}  // namespace iris::tools
