#pragma once
// The model zoo: every model by name, built from a configuration that travels as a JSON
// string (in a checkpoint's safetensors metadata, on the command line).
//
//   name           model               config
//   vit-cap        ViTCaptioner        ViTCaptionerConfig
//   cnn-rnn        CnnRnnCaptioner     CnnRnnConfig
//   vit-b16        ViT                 VitConfig (defaults: ViT-B/16)
//   clip           Clip                ClipConfig
//   fusion-early   FusionVqa           FusionConfig with fusion = "early"
//   fusion-late    FusionVqa           FusionConfig with fusion = "late"
//   fusion-xattn   FusionVqa           FusionConfig with fusion = "xattn"
//   image-only     FusionVqa           FusionConfig with fusion = "image-only" (baseline)
//   text-only      FusionVqa           FusionConfig with fusion = "text-only" (baseline)
//
// A configuration's JSON is an object of its fields ({"dim": 192, "channels": [32, 64]});
// fields left out keep their defaults, unknown fields are errors.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/rng.h"
#include "models/decode.h"
#include "nn/module.h"

namespace iris::models {

// ---- configurations as JSON ----
struct ConfigField {
  std::string name;
  std::variant<int64_t*, double*, bool*, std::string*, std::vector<int64_t>*> value;
};
template <class C>
std::vector<ConfigField> config_fields(C& config) {
  std::vector<ConfigField> fields;
  config.visit([&](const char* name, auto& v) { fields.push_back({name, &v}); });
  return fields;
}
std::string fields_to_json(const std::vector<ConfigField>& fields);
// Sets the fields named in `json`; `who` names the configuration in errors.
void fields_from_json(const std::vector<ConfigField>& fields, const std::string& json,
                      const std::string& who);

template <class C>
std::string config_to_json(C config) {
  return fields_to_json(config_fields(config));
}
template <class C>
C config_from_json(const std::string& json, const std::string& who, C base = {}) {
  fields_from_json(config_fields(base), json, who);
  return base;
}

// ---- the zoo ----
std::vector<std::string> zoo_names();
bool is_captioner(const std::string& name);  // vit-cap, cnn-rnn
// The full configuration of `name`: its defaults, then the fields of `overrides`.
std::string zoo_config(const std::string& name, const std::string& overrides = "{}");
std::shared_ptr<nn::Module> build_model(const std::string& name,
                                        const std::string& config_json = "{}",
                                        Generator* gen = nullptr);
std::shared_ptr<CaptionModel> build_captioner(const std::string& name,
                                              const std::string& config_json = "{}",
                                              Generator* gen = nullptr);

// The configuration of a captioner whose state_dict is `tensors` (a torch_ref export or an
// iris checkpoint): sizes are read off the tensor shapes; what shapes do not tell (the
// number of heads) comes from `base` (a configuration JSON; defaults otherwise).
std::string infer_captioner_config(const std::string& name,
                                   const std::map<std::string, Tensor>& tensors,
                                   const std::string& base = "{}");

// Checkpoints that know their model: the state_dict plus metadata "iris.model" (the zoo
// name) and "iris.config" (its configuration JSON).
void save_model(const std::string& path, const nn::Module& model, const std::string& name,
                const std::string& config_json);
struct LoadedModel {
  std::string name, config;
  std::shared_ptr<nn::Module> model;
};
LoadedModel load_model(const std::string& path);

}  // namespace iris::models
