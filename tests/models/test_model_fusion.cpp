// FusionVqa: early, late and cross-attention fusion over CNN or ViT image tokens and LSTM or
// Transformer question tokens. Each is checked against its fusion written out with plain
// ops, for invariance to question padding, with float64 gradchecks and bad inputs.
#include <cmath>

#include "models/vqa.h"
#include "tests/support/testing.h"
#include "tests/support/tiny_models.h"

namespace iris::models {
namespace {

using testing::randn_seeded;

FusionConfig tiny(const std::string& fusion, const std::string& image, const std::string& text) {
  return testing::tiny_fusion(fusion, image, text);
}

Tensor questions() {
  return Tensor::from_vector(std::vector<int64_t>{1, 4, 5, 9, 2, 3, 7, 7, 6, 5}, {2, 5});
}
Tensor lengths() { return Tensor::from_vector(std::vector<int64_t>{3, 5}, {2}); }

struct Variant {
  const char* fusion;
  const char* image;
  const char* text;
};
const Variant kVariants[] = {{"early", "cnn", "lstm"},       {"early", "vit", "transformer"},
                             {"late", "cnn", "transformer"}, {"late", "vit", "lstm"},
                             {"xattn", "cnn", "lstm"},       {"xattn", "vit", "transformer"}};

TEST(FusionVqa, ShapesNamesAndPaddingInvariance) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(std::string(v.fusion) + "/" + v.image + "/" + v.text);
    Generator g(1);
    FusionVqa m(tiny(v.fusion, v.image, v.text), &g);
    m.eval();
    const Tensor img = randn_seeded({2, 3, 8, 8}, 2, DType::f32);
    const Tensor logits = m.forward(img, questions(), lengths());
    EXPECT_EQ(logits.shape(), (Shape{2, 5}));
    EXPECT_EQ(m.image_tokens(img).size(1), std::string(v.image) == "cnn" ? 4 : 5);
    // Tokens past a question's length change nothing.
    const Tensor other =
        Tensor::from_vector(std::vector<int64_t>{1, 4, 5, 0, 12, 3, 7, 7, 6, 5}, {2, 5});
    EXPECT_CLOSE(m.forward(img, other, lengths()), logits, 1e-5, 1e-6);
    EXPECT_GT(amax(abs(m.forward(img, other) - m.forward(img, questions()))).item(), 1e-6);
    const auto sd = m.state_dict();
    EXPECT_EQ(sd.back().first, "classifier.2.bias");
    EXPECT_NO_THROW(m.find(std::string(v.image) == "cnn" ? "cnn.0.weight" : "vit.cls"));
    EXPECT_NO_THROW(m.find(std::string(v.text) == "lstm" ? "lstm.weight_ih_l0" : "text.pos"));
  }
}

TEST(FusionVqa, FusionsMatchTheirComposition) {
  const Tensor img = randn_seeded({2, 3, 8, 8}, 3, DType::f32);
  const Tensor q = questions(), l = lengths();
  const std::vector<int64_t> L = {3, 5};
  for (const char* fusion : {"early", "late", "xattn"}) {
    SCOPED_TRACE(fusion);
    Generator g(2);
    FusionVqa m(tiny(fusion, "cnn", "lstm"), &g);
    m.eval();
    const Tensor it = m.image_tokens(img);  // [2, 4, 8]
    const auto [qt, qp] = m.question(q, l);
    // The LSTM's pooled question is its state at each sample's length.
    EXPECT_CLOSE(qp.select(0, 0), qt.select(0, 0).select(0, 2), 1e-5, 1e-6);
    Tensor fused;
    if (std::string(fusion) == "late") {
      const Tensor i = mean(it, {1});
      fused = cat({i, qp, i * qp}, 1);
    } else {
      std::vector<Tensor> rows;
      for (int64_t b = 0; b < 2; ++b) {  // one sample at a time, its padding cut off
        const Tensor ib = it.narrow(0, b, 1), qb = qt.narrow(0, b, 1).narrow(1, 0, L[b]);
        auto& blk = m.blocks->at<nn::TransformerBlock>(0);
        Tensor x;
        if (std::string(fusion) == "early") {
          x = cat({ib + m.type_emb.select(0, 0), qb + m.type_emb.select(0, 1)}, 1);
          x = blk.forward(x, Tensor());
        } else {
          x = blk.forward(qb, ib);
        }
        rows.push_back(mean(m.ln->forward(x), {1}));
      }
      fused = cat(rows, 0);
    }
    EXPECT_CLOSE(m.forward(img, q, l), m.classifier->forward(fused), 1e-5, 1e-6);
  }
}

TEST(FusionVqa, GradcheckFloat64) {
  for (const Variant& v : {kVariants[0], kVariants[3], kVariants[5]}) {
    SCOPED_TRACE(std::string(v.fusion) + "/" + v.image + "/" + v.text);
    Generator g(4);
    FusionVqa m(tiny(v.fusion, v.image, v.text), &g);
    m.to(DType::f64);
    m.train();
    Tensor img = testing::param({2, 3, 8, 8}, 5);
    const Tensor q = questions(), l = lengths();
    std::vector<Tensor> inputs = {img, m.find("classifier.0.weight")};
    inputs.push_back(m.find(std::string(v.text) == "lstm" ? "lstm.weight_hh_l0" : "text.pos"));
    if (std::string(v.fusion) == "early") inputs.push_back(m.type_emb);
    if (std::string(v.fusion) == "xattn") inputs.push_back(m.find("blocks.0.xattn.in_proj_weight"));
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{m.forward(in[0], q, l)}; },
        inputs);
  }
}

// Questions sharing images through image_of give the logits and parameter gradients of the
// same questions with each image repeated.
TEST(FusionVqa, SharedImagesMatchRepeatedImages) {
  std::vector<Variant> variants(std::begin(kVariants), std::end(kVariants));
  variants.push_back({"image-only", "cnn", "lstm"});
  variants.push_back({"text-only", "cnn", "transformer"});
  const Tensor img = randn_seeded({2, 3, 8, 8}, 12, DType::f32);
  const Tensor q = Tensor::from_vector(
      std::vector<int64_t>{1, 4, 5, 9, 2, 3, 7, 7, 6, 5, 8, 2, 11, 0, 0}, {3, 5});
  const Tensor l = Tensor::from_vector(std::vector<int64_t>{3, 5, 3}, {3});
  const Tensor image_of = Tensor::from_vector(std::vector<int64_t>{1, 0, 1}, {3});
  const Tensor repeated = index_select(img, 0, image_of).contiguous();
  for (const Variant& v : variants) {
    SCOPED_TRACE(std::string(v.fusion) + "/" + v.image + "/" + v.text);
    Generator g(9);
    FusionVqa m(tiny(v.fusion, v.image, v.text), &g);
    m.eval();
    const Tensor shared = m.forward(img, q, l, image_of);
    const Tensor each = m.forward(repeated, q, l);
    EXPECT_EQ(shared.shape(), (Shape{3, 5}));
    EXPECT_CLOSE(shared, each, 1e-5, 1e-6);
    std::vector<Tensor> grads[2];
    for (int pass = 0; pass < 2; ++pass) {
      m.zero_grad();
      const Tensor out = pass == 0 ? m.forward(img, q, l, image_of) : m.forward(repeated, q, l);
      sum(out * randn_seeded({3, 5}, 13, DType::f32)).backward();
      for (const auto& [name, p] : m.named_parameters()) grads[pass].push_back(p.grad().clone());
    }
    for (size_t i = 0; i < grads[0].size(); ++i) EXPECT_CLOSE(grads[0][i], grads[1][i], 1e-4, 1e-6);
  }
  Generator g(10);
  FusionVqa m(tiny("xattn", "cnn", "lstm"), &g);
  EXPECT_IRIS_ERROR(m.forward(img, q, l, Tensor::from_vector(std::vector<int64_t>{0, 2, 1}, {3})),
                    "index");
  EXPECT_IRIS_ERROR(m.forward(img, q, l, Tensor::from_vector(std::vector<int64_t>{0, 1}, {2})),
                    "image_of");
}

// cnn_first_stride 1: the first conv stage keeps the image's resolution.
TEST(FusionVqa, FirstStageStrideOneKeepsResolution) {
  FusionConfig c = tiny("xattn", "cnn", "lstm");
  c.cnn_first_stride = 1;
  EXPECT_EQ(c.image_tokens(), 16);  // 8x8 -> 8x8 -> 4x4
  Generator g(11);
  FusionVqa m(c, &g);
  m.eval();
  const Tensor img = randn_seeded({2, 3, 8, 8}, 2, DType::f32);
  EXPECT_EQ(m.cnn->forward(img).shape(), (Shape{2, 6, 4, 4}));
  EXPECT_EQ(m.image_tokens(img).shape(), (Shape{2, 16, 8}));
  EXPECT_EQ(m.forward(img, questions(), lengths()).shape(), (Shape{2, 5}));
  c.cnn_first_stride = 3;
  EXPECT_IRIS_ERROR(FusionVqa{c}, "cnn_first_stride");
}

// The ViT image encoder with a conv stem: the same token count, the stem's parameters.
TEST(FusionVqa, VitImageEncoderTakesAStem) {
  FusionConfig c = tiny("xattn", "vit", "transformer");
  c.vit_stem_channels = {3, 5};
  Generator g(12);
  FusionVqa m(c, &g);
  m.eval();
  EXPECT_EQ(m.find("vit.stem.0.weight").shape(), (Shape{3, 3, 3, 3}));
  EXPECT_EQ(m.find("vit.patch.weight").shape(), (Shape{8, 5, 2, 2}));
  const Tensor img = randn_seeded({2, 3, 8, 8}, 2, DType::f32);
  EXPECT_EQ(m.image_tokens(img).shape(), (Shape{2, 5, 8}));
  EXPECT_EQ(m.forward(img, questions(), lengths()).shape(), (Shape{2, 5}));
}

TEST(FusionVqa, BadInputsAndConfigs) {
  Generator g(6);
  FusionVqa m(tiny("xattn", "cnn", "lstm"), &g);
  const Tensor img = randn_seeded({2, 3, 8, 8}, 7, DType::f32);
  EXPECT_IRIS_ERROR(m.forward(randn_seeded({2, 3, 9, 9}, 7, DType::f32), questions()), "FusionVqa");
  EXPECT_IRIS_ERROR(m.forward(img, Tensor::from_vector(std::vector<int64_t>(14, 1), {2, 7})),
                    "FusionVqa");
  EXPECT_IRIS_ERROR(m.forward(img.narrow(0, 0, 1), questions()), "FusionVqa");
  EXPECT_IRIS_ERROR(
      m.forward(img, questions(), Tensor::from_vector(std::vector<int64_t>{0, 5}, {2})), "length");
  EXPECT_IRIS_ERROR(FusionVqa{tiny("middle", "cnn", "lstm")}, "fusion");
  EXPECT_IRIS_ERROR(FusionVqa{tiny("late", "resnet", "lstm")}, "image_encoder");
  EXPECT_IRIS_ERROR(FusionVqa{tiny("late", "cnn", "gru")}, "text_encoder");
}

}  // namespace
}  // namespace iris::models
