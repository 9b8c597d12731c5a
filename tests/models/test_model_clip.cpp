// TextEncoder (pooling, padding, causality) and Clip (unit-norm embeddings, scaled cosine
// logits, the symmetric InfoNCE loss), against plain compositions and loops, with float64
// gradchecks and bad inputs.
#include <cmath>

#include "models/clip.h"
#include "models/text_encoder.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

using testing::randn_seeded;

TextEncoderConfig tiny_text(bool causal, const std::string& pool) {
  TextEncoderConfig c;
  c.vocab = 17;
  c.max_len = 7;
  c.dim = 8;
  c.depth = 2;
  c.heads = 2;
  c.mlp_dim = 12;
  c.causal = causal;
  c.pool = pool;
  return c;
}

ClipConfig tiny_clip() {
  ClipConfig c;
  c.image_size = 8;
  c.patch = 4;
  c.vision_dim = 8;
  c.vision_depth = 1;
  c.vision_heads = 2;
  c.vision_mlp = 12;
  c.vocab = 17;
  c.text_len = 6;
  c.text_dim = 6;
  c.text_depth = 1;
  c.text_heads = 2;
  c.text_mlp = 10;
  c.embed_dim = 5;
  return c;
}

Tensor ids(const std::vector<int64_t>& v, int64_t B, int64_t T) {
  return Tensor::from_vector(v, {B, T});
}
Tensor lens(const std::vector<int64_t>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
}

TEST(PoolTokens, MatchesNaiveLoops) {
  const Tensor x = randn_seeded({3, 5, 4}, 1);
  const Tensor l = lens({5, 2, 1});
  const auto xv = x.to_vector<double>();
  const std::vector<int64_t> L = {5, 2, 1};
  std::vector<double> mean_ref(12, 0.0), last_ref(12), first_ref(12);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t d = 0; d < 4; ++d) {
      for (int64_t t = 0; t < L[b]; ++t) mean_ref[b * 4 + d] += xv[(b * 5 + t) * 4 + d] / L[b];
      last_ref[b * 4 + d] = xv[(b * 5 + L[b] - 1) * 4 + d];
      first_ref[b * 4 + d] = xv[(b * 5) * 4 + d];
    }
  EXPECT_CLOSE(pool_tokens(x, l, "mean"), Tensor::from_vector(mean_ref, {3, 4}), 1e-12, 1e-12);
  EXPECT_CLOSE(pool_tokens(x, l, "last"), Tensor::from_vector(last_ref, {3, 4}), 0, 0);
  EXPECT_CLOSE(pool_tokens(x, l, "first"), Tensor::from_vector(first_ref, {3, 4}), 0, 0);
  EXPECT_CLOSE(pool_tokens(x, Tensor(), "mean"), mean(x, {1}), 1e-12, 1e-12);
  // Non-contiguous input (a transposed view).
  const Tensor xt = randn_seeded({5, 3, 4}, 2).transpose(0, 1);
  EXPECT_CLOSE(pool_tokens(xt, l, "last"), pool_tokens(xt.contiguous(), l, "last"), 0, 0);
  for (const char* how : {"mean", "last", "first"}) {
    Tensor p = testing::param({3, 5, 4}, 3);
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{pool_tokens(in[0], l, how)};
        },
        {p});
  }
  EXPECT_IRIS_ERROR(pool_tokens(x, l, "max"), "pool_tokens");
  EXPECT_IRIS_ERROR(pool_tokens(x, lens({5, 6, 1}), "mean"), "pool_tokens");
  EXPECT_IRIS_ERROR(pool_tokens(x, lens({5, 0, 1}), "mean"), "pool_tokens");
}

TEST(TextEncoder, NamesShapesAndPaddingInvariance) {
  Generator g(1);
  TextEncoder enc(tiny_text(false, "mean"), &g);
  const auto sd = enc.state_dict();
  EXPECT_EQ(sd[0].first, "pos");
  EXPECT_EQ(sd[1].first, "tok.weight");
  EXPECT_EQ(sd[2].first, "blocks.0.ln1.weight");
  EXPECT_EQ(sd.back().first, "ln.bias");
  const Tensor l = lens({3, 5});
  const Tensor a = ids({1, 4, 5, 9, 9, 2, 3, 4, 5, 6}, 2, 5);
  const Tensor b = ids({1, 4, 5, 0, 16, 2, 3, 4, 5, 6}, 2, 5);  // differs only past length 3
  const Tensor fa = enc.forward(a, l), fb = enc.forward(b, l);
  EXPECT_EQ(fa.shape(), (Shape{2, 5, 8}));
  EXPECT_CLOSE(fa.narrow(1, 0, 3), fb.narrow(1, 0, 3), 1e-6, 1e-6);
  EXPECT_CLOSE(enc.encode(a, l), enc.encode(b, l), 1e-6, 1e-6);
  // Without lengths every token counts.
  EXPECT_GT(amax(abs(enc.encode(a) - enc.encode(b))).item(), 1e-5);
}

TEST(TextEncoder, CausalEncoderIgnoresLaterTokens) {
  Generator g(2);
  TextEncoder enc(tiny_text(true, "last"), &g);
  const Tensor fa = enc.forward(ids({1, 4, 5, 9, 2}, 1, 5), Tensor());
  const Tensor fb = enc.forward(ids({1, 4, 5, 3, 7}, 1, 5), Tensor());
  EXPECT_CLOSE(fa.narrow(1, 0, 3), fb.narrow(1, 0, 3), 1e-6, 1e-6);
  EXPECT_CLOSE(enc.encode(ids({1, 4, 5, 9, 2}, 1, 5), lens({3})), fa.select(1, 2), 1e-6, 1e-6);
}

TEST(TextEncoder, GradcheckFloat64) {
  Generator g(3);
  TextEncoder enc(tiny_text(true, "last"), &g);
  enc.to(DType::f64);
  const Tensor t = ids({1, 4, 5, 9, 2, 3, 8, 1}, 2, 4);
  const Tensor l = lens({4, 2});
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>&) { return std::vector<Tensor>{enc.encode(t, l)}; },
      {enc.pos, enc.tok->weight, enc.find("blocks.1.attn.in_proj_weight"), enc.ln->bias});
}

TEST(TextEncoder, BadInputs) {
  Generator g(4);
  TextEncoder enc(tiny_text(false, "mean"), &g);
  EXPECT_IRIS_ERROR(enc.forward(ids(std::vector<int64_t>(16, 1), 2, 8), Tensor()), "TextEncoder");
  EXPECT_IRIS_ERROR(enc.forward(randn_seeded({2, 3}, 1, DType::f32), Tensor()), "TextEncoder");
  EXPECT_IRIS_ERROR(enc.forward(ids({1, 2, 3, 4}, 2, 2), lens({1, 3})), "TextEncoder");
  EXPECT_IRIS_ERROR(enc.forward(ids({1, 2, 3, 4}, 2, 2), lens({1})), "TextEncoder");
  TextEncoderConfig bad = tiny_text(false, "max");
  EXPECT_IRIS_ERROR(TextEncoder{bad}, "pool");
}

TEST(Clip, EmbeddingsLogitsAndLossAsComposition) {
  Generator g(5);
  Clip clip(tiny_clip(), &g);
  const auto sd = clip.state_dict();
  EXPECT_EQ(sd[0].first, "logit_scale");
  EXPECT_NEAR(clip.logit_scale.item(), std::log(1 / 0.07), 1e-6);
  EXPECT_EQ(clip.find("visual.patch.weight").shape(), (Shape{8, 3, 4, 4}));
  EXPECT_EQ(clip.find("text.pos").shape(), (Shape{1, 6, 6}));
  EXPECT_EQ(clip.find("visual_proj.weight").shape(), (Shape{5, 8}));
  EXPECT_EQ(sd.back().first, "text_proj.weight");

  const Tensor img = randn_seeded({3, 3, 8, 8}, 6, DType::f32);
  const Tensor tok = ids({1, 4, 5, 9, 2, 0, 3, 8, 1, 2, 0, 0, 7, 7, 6, 5, 4, 2}, 3, 6);
  const Tensor l = lens({5, 4, 6});
  const Tensor ie = clip.encode_image(img), te = clip.encode_text(tok, l);
  EXPECT_EQ(ie.shape(), (Shape{3, 5}));
  EXPECT_CLOSE(sum(ie * ie, {1}), ones({3}), 1e-5, 1e-6);
  EXPECT_CLOSE(sum(te * te, {1}), ones({3}), 1e-5, 1e-6);
  // Image embedding = normalised projection of the ViT class token; text = of the last token.
  const Tensor v = linear(clip.visual->forward(img).select(1, 0), clip.visual_proj->weight);
  EXPECT_CLOSE(ie, v / sqrt(sum(v * v, {1}, true)), 1e-5, 1e-6);
  const Tensor logits = clip.logits(ie, te);
  EXPECT_CLOSE(logits, matmul(ie, te.t()) * std::exp(clip.logit_scale.item()), 1e-5, 1e-5);
  // Symmetric InfoNCE written out: mean of row-wise and column-wise cross-entropy.
  const auto lg = logits.to_vector<float>();
  double rows = 0, cols = 0;
  for (int64_t i = 0; i < 3; ++i) {
    double zr = 0, zc = 0;
    for (int64_t j = 0; j < 3; ++j) zr += std::exp(lg[i * 3 + j]), zc += std::exp(lg[j * 3 + i]);
    rows += std::log(zr) - lg[i * 3 + i];
    cols += std::log(zc) - lg[i * 3 + i];
  }
  EXPECT_NEAR(clip.loss(img, tok, l).item(), (rows + cols) / 6, 1e-4);
}

TEST(Clip, GradcheckFloat64) {
  Generator g(7);
  Clip clip(tiny_clip(), &g);
  clip.to(DType::f64);
  const Tensor tok = ids({1, 4, 5, 9, 2, 0, 3, 8, 1, 2, 0, 0}, 2, 6);
  const Tensor l = lens({5, 4});
  Tensor img = testing::param({2, 3, 8, 8}, 8);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{clip.loss(in[0], tok, l)}; },
      {img, clip.logit_scale, clip.visual_proj->weight, clip.text_proj->weight, clip.text->pos});
}

TEST(Clip, BadInputs) {
  Generator g(9);
  Clip clip(tiny_clip(), &g);
  const Tensor img = randn_seeded({3, 3, 8, 8}, 6, DType::f32);
  EXPECT_IRIS_ERROR(clip.loss(img, ids({1, 2, 3, 4}, 2, 2)), "Clip::loss");
  EXPECT_IRIS_ERROR(clip.encode_image(randn_seeded({3, 3, 9, 9}, 6, DType::f32)), "ViT");
  ClipConfig bad = tiny_clip();
  bad.embed_dim = 0;
  EXPECT_IRIS_ERROR(Clip{bad}, "Clip");
}

}  // namespace
}  // namespace iris::models
