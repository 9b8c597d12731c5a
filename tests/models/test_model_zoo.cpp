// The zoo: every name builds its model; configurations round-trip through JSON (defaults,
// overrides, unknown fields and wrong types are errors); a captioner's configuration is
// read back off its state_dict; save_model / load_model round-trip weights and config.
#include <unistd.h>

#include <filesystem>

#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "models/clip.h"
#include "models/vqa.h"
#include "models/zoo.h"
#include "nn/safetensors.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

using testing::randn_seeded;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("iris-zoo-" + std::to_string(getpid()) + "-" + name))
      .string();
}

TEST(Zoo, EveryNameBuildsItsModel) {
  const std::vector<std::string> want = {"vit-cap",      "cnn-rnn",      "vit-b16",
                                         "clip",         "fusion-early", "fusion-late",
                                         "fusion-xattn", "image-only",   "text-only"};
  EXPECT_EQ(zoo_names(), want);
  const std::map<std::string, std::string> type = {{"vit-cap", "ViTCaptioner"},
                                                   {"cnn-rnn", "CnnRnnCaptioner"},
                                                   {"vit-b16", "ViT"},
                                                   {"clip", "Clip"},
                                                   {"fusion-early", "FusionVqa"},
                                                   {"fusion-late", "FusionVqa"},
                                                   {"fusion-xattn", "FusionVqa"},
                                                   {"image-only", "FusionVqa"},
                                                   {"text-only", "FusionVqa"}};
  for (const auto& name : want) {
    // vit-b16 at a small depth: the defaults are tested in test_model_captioners.
    const std::string cfg = name == "vit-b16" ? R"({"depth": 1})" : "{}";
    auto m = build_model(name, cfg);
    EXPECT_EQ(m->type_name(), type.at(name)) << name;
    EXPECT_GT(m->parameter_count(), 0) << name;
    EXPECT_EQ(is_captioner(name), name == "vit-cap" || name == "cnn-rnn");
  }
  EXPECT_EQ(dynamic_cast<FusionVqa&>(*build_model("fusion-late")).config.fusion, "late");
  EXPECT_EQ(build_captioner("cnn-rnn")->vocab_size(), 1024);
}

TEST(Zoo, ConfigsRoundTripThroughJson) {
  const std::string vc = zoo_config("vit-cap", R"({"dim": 96, "heads": 4, "decoder_depth": 2})");
  const auto c = config_from_json<ViTCaptionerConfig>(vc, "test");
  EXPECT_EQ(c.dim, 96);
  EXPECT_EQ(c.heads, 4);
  EXPECT_EQ(c.decoder_depth, 2);
  EXPECT_EQ(c.encoder_depth, 4);  // default kept
  EXPECT_EQ(zoo_config("vit-cap", vc), vc);
  const auto cr =
      config_from_json<CnnRnnConfig>(zoo_config("cnn-rnn", R"({"channels": [8, 16]})"), "t");
  EXPECT_EQ(cr.channels, (std::vector<int64_t>{8, 16}));
  const auto cl =
      config_from_json<ClipConfig>(zoo_config("clip", R"({"max_logit_scale": 50.5})"), "t");
  EXPECT_DOUBLE_EQ(cl.max_logit_scale, 50.5);
  const auto fu = config_from_json<FusionConfig>(
      zoo_config("fusion-early", R"({"image_encoder": "vit", "text_encoder": "transformer"})"),
      "t");
  EXPECT_EQ(fu.fusion, "early");
  EXPECT_EQ(fu.image_encoder, "vit");
  auto m = build_model("vit-cap", vc);
  EXPECT_EQ(dynamic_cast<ViTCaptioner&>(*m).config.dim, 96);
}

TEST(Zoo, BadNamesAndConfigsAreErrors) {
  EXPECT_IRIS_ERROR(build_model("resnet"), "unknown model 'resnet'");
  EXPECT_IRIS_ERROR(zoo_config("vit-cap", R"({"depth": 3})"), "unknown field 'depth'");
  EXPECT_IRIS_ERROR(zoo_config("vit-cap", R"({"dim": "wide"})"), "'dim' must be an integer");
  EXPECT_IRIS_ERROR(zoo_config("vit-cap", R"({"dim": 1.5})"), "'dim' must be an integer");
  EXPECT_IRIS_ERROR(zoo_config("cnn-rnn", R"({"channels": 3})"), "'channels'");
  EXPECT_IRIS_ERROR(zoo_config("vit-cap", R"([1, 2])"), "JSON object");
  EXPECT_IRIS_ERROR(zoo_config("vit-cap", R"({"dim": )"), "config of vit-cap");
  EXPECT_IRIS_ERROR(zoo_config("fusion-late", R"({"fusion": "early"})"), "contradicts");
  EXPECT_IRIS_ERROR(build_captioner("clip"), "not a captioner");
  EXPECT_IRIS_ERROR(build_model("vit-cap", R"({"dim": 100})"), "heads");
}

TEST(Zoo, CaptionerConfigIsReadOffTheStateDict) {
  ViTCaptionerConfig c;
  c.image_size = 24;
  c.patch = 6;
  c.dim = 16;
  c.encoder_depth = 2;
  c.decoder_depth = 3;
  c.heads = 4;
  c.mlp_dim = 20;
  c.vocab = 50;
  c.max_len = 9;
  ViTCaptioner m(c);
  std::map<std::string, Tensor> sd;
  for (const auto& [k, t] : m.state_dict()) sd[k] = t;
  // Heads are not in the shapes: they come from the base configuration.
  const auto back = config_from_json<ViTCaptionerConfig>(
      infer_captioner_config("vit-cap", sd, R"({"heads": 4})"), "t");
  EXPECT_EQ(config_to_json(back), config_to_json(c));

  CnnRnnConfig r;
  r.vocab = 30;
  r.emb = 7;
  r.hidden = 9;
  r.channels = {4, 5, 6};
  CnnRnnCaptioner cr(r);
  sd.clear();
  for (const auto& [k, t] : cr.state_dict()) sd[k] = t;
  EXPECT_EQ(infer_captioner_config("cnn-rnn", sd), config_to_json(r));
  sd.erase("emb.weight");
  EXPECT_IRIS_ERROR(infer_captioner_config("cnn-rnn", sd), "emb.weight");
}

TEST(Zoo, SaveAndLoadModelRoundTrip) {
  const std::string path = temp_path("vitcap.safetensors");
  const std::string cfg = zoo_config("vit-cap", R"({"image_size": 16, "patch": 4, "dim": 12,
      "encoder_depth": 1, "decoder_depth": 1, "mlp_dim": 16, "vocab": 20, "max_len": 5})");
  Generator g(3);
  auto m = build_captioner("vit-cap", cfg, &g);
  save_model(path, *m, "vit-cap", cfg);
  const LoadedModel loaded = load_model(path);
  EXPECT_EQ(loaded.name, "vit-cap");
  EXPECT_EQ(loaded.config, cfg);
  auto& back = dynamic_cast<ViTCaptioner&>(*loaded.model);
  const Tensor img = randn_seeded({2, 3, 16, 16}, 1, DType::f32);
  const Tensor tok = Tensor::from_vector(std::vector<int64_t>{1, 5, 7, 1, 9, 3}, {2, 3});
  EXPECT_CLOSE(back.forward(img, tok), m->forward(img, tok), 0, 0);
  std::filesystem::remove(path);

  // A plain state_dict (no metadata) is not a zoo checkpoint.
  save_safetensors(path, m->state_dict());
  EXPECT_IRIS_ERROR(load_model(path), "iris.model");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace iris::models
