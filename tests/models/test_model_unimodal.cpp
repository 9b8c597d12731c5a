// The unimodal baselines of FusionVqa (image-only, text-only): each reads exactly one
// modality, has only that modality's encoder, matches its composition written out with the
// model's own children, and is built by the zoo by name.
#include <algorithm>
#include <cmath>
#include <set>

#include "models/text_encoder.h"
#include "models/vqa.h"
#include "models/zoo.h"
#include "tests/support/testing.h"
#include "tests/support/tiny_models.h"

namespace iris::models {
namespace {

using testing::randn_seeded;

FusionConfig tiny(const std::string& fusion, const std::string& image, const std::string& text) {
  return testing::tiny_fusion(fusion, image, text);
}

Tensor questions_a() {
  return Tensor::from_vector(std::vector<int64_t>{1, 4, 5, 9, 2, 3, 7, 7, 6, 5}, {2, 5});
}
Tensor questions_b() {
  return Tensor::from_vector(std::vector<int64_t>{8, 8, 1, 0, 0, 2, 2, 3, 4, 11}, {2, 5});
}
Tensor lengths() { return Tensor::from_vector(std::vector<int64_t>{3, 5}, {2}); }

std::set<std::string> top_level_children(nn::Module& m) {
  std::set<std::string> out;
  for (const auto& [name, p] : m.named_parameters()) out.insert(name.substr(0, name.find('.')));
  return out;
}

bool differ(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<float>(), y = b.to_vector<float>();
  for (size_t i = 0; i < x.size(); ++i)
    if (std::abs(x[i] - y[i]) > 1e-4f) return true;
  return false;
}

TEST(Unimodal, ImageOnlyReadsOnlyTheImage) {
  for (const char* enc : {"cnn", "vit"}) {
    SCOPED_TRACE(enc);
    Generator g(1);
    FusionVqa m(tiny("image-only", enc, "lstm"), &g);
    m.eval();
    EXPECT_EQ(
        top_level_children(m),
        std::string(enc) == "cnn"
            ? (std::set<std::string>{"img_pos", "cnn", "img_proj", "blocks", "ln", "classifier"})
            : (std::set<std::string>{"vit", "blocks", "ln", "classifier"}));
    const Tensor img = randn_seeded({2, 3, 8, 8}, 2, DType::f32);
    const Tensor out = m.forward(img, questions_a(), lengths());
    EXPECT_EQ(out.shape(), (Shape{2, 5}));
    EXPECT_CLOSE(m.forward(img, questions_b(), Tensor()), out, 0, 0);
    EXPECT_CLOSE(m.forward(img, Tensor(), Tensor()), out, 0, 0);
    EXPECT_TRUE(differ(m.forward(randn_seeded({2, 3, 8, 8}, 3, DType::f32), questions_a()), out));
    // Its composition: image tokens, self-attention blocks, LayerNorm, mean, classifier.
    NoGradGuard ng;
    Tensor x = m.image_tokens(img);
    for (size_t i = 0; i < m.blocks->size(); ++i)
      x = m.blocks->at<nn::TransformerBlock>(i).forward(x, Tensor());
    EXPECT_CLOSE(m.classifier->forward(mean(m.ln->forward(x), {1})), out, 1e-5, 1e-6);
    EXPECT_IRIS_ERROR(m.question(questions_a(), lengths()), "image-only model has no text encoder");
    EXPECT_IRIS_ERROR(m.forward(img, questions_a().narrow(0, 0, 1)), "2 images but questions");
  }
}

TEST(Unimodal, TextOnlyReadsOnlyTheQuestion) {
  for (const char* enc : {"lstm", "transformer"}) {
    SCOPED_TRACE(enc);
    Generator g(4);
    FusionVqa m(tiny("text-only", "cnn", enc), &g);
    m.eval();
    EXPECT_EQ(top_level_children(m),
              std::string(enc) == "lstm"
                  ? (std::set<std::string>{"emb", "lstm", "blocks", "ln", "classifier"})
                  : (std::set<std::string>{"text", "blocks", "ln", "classifier"}));
    const Tensor img = randn_seeded({2, 3, 8, 8}, 2, DType::f32);
    const Tensor out = m.forward(img, questions_a(), lengths());
    EXPECT_EQ(out.shape(), (Shape{2, 5}));
    EXPECT_CLOSE(m.forward(randn_seeded({2, 3, 8, 8}, 9, DType::f32), questions_a(), lengths()),
                 out, 0, 0);
    EXPECT_CLOSE(m.forward(Tensor(), questions_a(), lengths()), out, 0, 0);
    EXPECT_TRUE(differ(m.forward(img, questions_b(), lengths()), out));
    // Tokens past a question's length change nothing.
    const Tensor padded_other =
        Tensor::from_vector(std::vector<int64_t>{1, 4, 5, 12, 0, 3, 7, 7, 6, 5}, {2, 5});
    EXPECT_CLOSE(m.forward(img, padded_other, lengths()), out, 1e-5, 1e-6);
    // Its composition: question tokens, self-attention blocks over the valid ones,
    // LayerNorm, masked mean, classifier.
    NoGradGuard ng;
    Tensor x = m.question(questions_a(), lengths()).first;
    nn::BlockOptions opt;
    opt.lengths = lengths();
    for (size_t i = 0; i < m.blocks->size(); ++i)
      x = m.blocks->at<nn::TransformerBlock>(i).forward(x, Tensor(), opt);
    EXPECT_CLOSE(m.classifier->forward(pool_tokens(m.ln->forward(x), lengths(), "mean")), out, 1e-5,
                 1e-6);
    EXPECT_IRIS_ERROR(m.image_tokens(img), "text-only model has no image encoder");
  }
}

TEST(Unimodal, EveryParameterGetsAGradient) {
  Generator g(5);
  FusionVqa m(tiny("image-only", "cnn", "lstm"), &g);
  m.train();
  const Tensor loss =
      cross_entropy(m.forward(randn_seeded({2, 3, 8, 8}, 2, DType::f32), questions_a(), lengths()),
                    Tensor::from_vector(std::vector<int64_t>{1, 3}, {2}));
  loss.backward();
  for (const auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(p.grad().defined());
  }
}

TEST(Unimodal, ZooBuildsThemByName) {
  const auto names = zoo_names();
  for (const char* name : {"image-only", "text-only"}) {
    SCOPED_TRACE(name);
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());
    auto m = std::dynamic_pointer_cast<FusionVqa>(build_model(name));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->config.fusion, name);
    EXPECT_NE(zoo_config(name).find(std::string("\"fusion\": \"") + name + "\""),
              std::string::npos);
    EXPECT_IRIS_ERROR(zoo_config(name, R"({"fusion": "xattn"})"), "contradicts");
  }
  // The baselines keep the fusion models' budget style: early fusion's image or text encoder
  // and the same blocks, LayerNorm and classifier (early fusion adds a type embedding).
  auto count = [](const std::string& name, const std::string& prefix) {
    int64_t n = 0;
    for (const auto& [k, p] : build_model(name)->named_parameters())
      if (k.rfind(prefix, 0) == 0) n += p.numel();
    return n;
  };
  const int64_t shared = count("image-only", "blocks.") + count("image-only", "ln.") +
                         count("image-only", "classifier.");
  EXPECT_EQ(shared, count("text-only", "blocks.") + count("text-only", "ln.") +
                        count("text-only", "classifier."));
  EXPECT_GT(shared, 0);
  EXPECT_EQ(count("image-only", "") + count("text-only", ""),
            count("fusion-early", "") + shared - 2 * FusionConfig{}.dim);
  FusionConfig bad = tiny("both", "cnn", "lstm");
  EXPECT_IRIS_ERROR(FusionVqa m(bad), "image-only or text-only, got 'both'");
}

}  // namespace
}  // namespace iris::models
