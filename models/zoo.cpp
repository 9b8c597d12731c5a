#include "models/zoo.h"

#include <cmath>
#include <sstream>

#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "models/clip.h"
#include "models/vit.h"
#include "models/vqa.h"
#include "nn/checkpoint.h"
#include "nn/json_lite.h"
#include "nn/safetensors.h"

namespace iris::models {
namespace {

using json::Value;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

int64_t json_int(const Value& v, const std::string& who, const std::string& field) {
  IRIS_CHECK(v.kind == Value::Kind::number && v.is_integer, who, ": field '", field,
             "' must be an integer");
  return v.integer;
}

const std::vector<std::string>& names() {
  static const std::vector<std::string> n = {"vit-cap",      "cnn-rnn",      "vit-b16",
                                             "clip",         "fusion-early", "fusion-late",
                                             "fusion-xattn", "image-only",   "text-only"};
  return n;
}

void check_name(const std::string& name, const char* who) {
  for (const auto& n : names())
    if (n == name) return;
  std::string all;
  for (const auto& n : names()) all += (all.empty() ? "" : ", ") + n;
  IRIS_FAIL(who, ": unknown model '", name, "' (the zoo has ", all, ")");
}

// Count of children "<prefix><i>." present in a state_dict.
int64_t count_indexed(const std::map<std::string, Tensor>& t, const std::string& prefix,
                      const std::string& probe) {
  int64_t n = 0;
  while (t.count(prefix + std::to_string(n) + "." + probe)) ++n;
  return n;
}

const Tensor& need(const std::map<std::string, Tensor>& t, const std::string& name,
                   const std::string& who) {
  auto it = t.find(name);
  IRIS_CHECK(it != t.end(), who, ": the weights have no tensor '", name, "'");
  return it->second;
}

// fusion-early -> "early", ..., image-only and text-only as named; the configuration may
// not ask for another fusion.
FusionConfig fusion_config(const std::string& name, const std::string& json) {
  FusionConfig base;
  const std::string prefix = "fusion-";
  base.fusion = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
  FusionConfig c = config_from_json<FusionConfig>(json, "config of " + name, base);
  IRIS_CHECK(c.fusion == base.fusion, "config of ", name, ": fusion '", c.fusion,
             "' contradicts the model name");
  return c;
}

}  // namespace

std::string fields_to_json(const std::vector<ConfigField>& fields) {
  std::ostringstream os;
  os << "{";
  for (size_t i = 0; i < fields.size(); ++i) {
    os << (i ? ", " : "") << json::quote(fields[i].name) << ": ";
    std::visit(Overloaded{[&](int64_t* v) { os << *v; },
                          [&](double* v) {
                            std::ostringstream num;
                            num.precision(17);
                            num << *v;
                            os << num.str();
                          },
                          [&](bool* v) { os << (*v ? "true" : "false"); },
                          [&](std::string* v) { os << json::quote(*v); },
                          [&](std::vector<int64_t>* v) {
                            os << "[";
                            for (size_t k = 0; k < v->size(); ++k) os << (k ? ", " : "") << (*v)[k];
                            os << "]";
                          }},
               fields[i].value);
  }
  os << "}";
  return os.str();
}

void fields_from_json(const std::vector<ConfigField>& fields, const std::string& text,
                      const std::string& who) {
  const Value doc = json::parse(text.empty() ? "{}" : text, who);
  IRIS_CHECK(doc.kind == Value::Kind::object, who, ": a configuration must be a JSON object");
  for (const auto& [key, v] : doc.obj) {
    const ConfigField* field = nullptr;
    for (const auto& f : fields)
      if (f.name == key) field = &f;
    if (!field) {
      std::string known;
      for (const auto& f : fields) known += (known.empty() ? "" : ", ") + f.name;
      IRIS_FAIL(who, ": unknown field '", key, "' (fields: ", known, ")");
    }
    std::visit(Overloaded{[&](int64_t* out) { *out = json_int(v, who, key); },
                          [&](double* out) {
                            IRIS_CHECK(v.kind == Value::Kind::number, who, ": field '", key,
                                       "' must be a number");
                            *out = v.num;
                          },
                          [&](bool* out) {
                            IRIS_CHECK(v.kind == Value::Kind::boolean, who, ": field '", key,
                                       "' must be true or false");
                            *out = v.b;
                          },
                          [&](std::string* out) {
                            IRIS_CHECK(v.kind == Value::Kind::string, who, ": field '", key,
                                       "' must be a string");
                            *out = v.str;
                          },
                          [&](std::vector<int64_t>* out) {
                            IRIS_CHECK(v.kind == Value::Kind::array, who, ": field '", key,
                                       "' must be an array of integers");
                            out->clear();
                            for (const Value& e : v.arr) out->push_back(json_int(e, who, key));
                          }},
               field->value);
  }
}

std::vector<std::string> zoo_names() { return names(); }

bool is_captioner(const std::string& name) { return name == "vit-cap" || name == "cnn-rnn"; }

std::string zoo_config(const std::string& name, const std::string& overrides) {
  check_name(name, "zoo_config");
  const std::string who = "config of " + name;
  if (name == "vit-cap")
    return config_to_json(config_from_json<ViTCaptionerConfig>(overrides, who));
  if (name == "cnn-rnn") return config_to_json(config_from_json<CnnRnnConfig>(overrides, who));
  if (name == "vit-b16") return config_to_json(config_from_json<VitConfig>(overrides, who));
  if (name == "clip") return config_to_json(config_from_json<ClipConfig>(overrides, who));
  return config_to_json(fusion_config(name, overrides));
}

std::shared_ptr<CaptionModel> build_captioner(const std::string& name,
                                              const std::string& config_json, Generator* gen) {
  check_name(name, "build_captioner");
  const std::string who = "config of " + name;
  if (name == "vit-cap")
    return std::make_shared<ViTCaptioner>(config_from_json<ViTCaptionerConfig>(config_json, who),
                                          gen);
  if (name == "cnn-rnn")
    return std::make_shared<CnnRnnCaptioner>(config_from_json<CnnRnnConfig>(config_json, who), gen);
  IRIS_FAIL("build_captioner: '", name, "' is not a captioner (vit-cap, cnn-rnn)");
}

std::shared_ptr<nn::Module> build_model(const std::string& name, const std::string& config_json,
                                        Generator* gen) {
  check_name(name, "build_model");
  if (is_captioner(name)) return build_captioner(name, config_json, gen);
  if (name == "vit-b16")
    return std::make_shared<ViT>(config_from_json<VitConfig>(config_json, "config of vit-b16"),
                                 gen);
  if (name == "clip")
    return std::make_shared<Clip>(config_from_json<ClipConfig>(config_json, "config of clip"), gen);
  return std::make_shared<FusionVqa>(fusion_config(name, config_json), gen);
}

std::string infer_captioner_config(const std::string& name, const std::map<std::string, Tensor>& t,
                                   const std::string& base) {
  const std::string who = "infer_captioner_config(" + name + ")";
  if (name == "vit-cap") {
    ViTCaptionerConfig c = config_from_json<ViTCaptionerConfig>(base, who);
    const Tensor& tok = need(t, "tok.weight", who);
    const Tensor& patch = need(t, "enc.patch.weight", who);
    const Tensor& enc_pos = need(t, "enc.pos", who);
    IRIS_CHECK(tok.dim() == 2 && patch.dim() == 4 && enc_pos.dim() == 3, who,
               ": unexpected shapes tok.weight ", tok.desc(), ", enc.patch.weight ", patch.desc(),
               ", enc.pos ", enc_pos.desc());
    c.vocab = tok.size(0);
    c.dim = tok.size(1);
    c.max_len = need(t, "pos", who).size(1);
    c.patch = patch.size(2);
    const auto side = static_cast<int64_t>(std::lround(std::sqrt(double(enc_pos.size(1) - 1))));
    c.image_size = side * c.patch;
    c.encoder_depth = count_indexed(t, "enc.blocks.", "ln1.weight");
    c.decoder_depth = count_indexed(t, "dec.", "ln1.weight");
    const std::string mlp =
        c.encoder_depth > 0 ? "enc.blocks.0.mlp.0.weight" : "dec.0.mlp.0.weight";
    if (t.count(mlp)) c.mlp_dim = t.at(mlp).size(0);
    return config_to_json(c);
  }
  if (name == "cnn-rnn") {
    CnnRnnConfig c = config_from_json<CnnRnnConfig>(base, who);
    const Tensor& emb = need(t, "emb.weight", who);
    c.vocab = emb.size(0);
    c.emb = emb.size(1);
    c.hidden = need(t, "cell.weight_hh", who).size(1);
    c.channels.clear();
    for (int64_t i = 0; t.count("cnn." + std::to_string(i) + ".weight"); i += 6)
      c.channels.push_back(t.at("cnn." + std::to_string(i) + ".weight").size(0));
    return config_to_json(c);
  }
  IRIS_FAIL(who, ": not a captioner (vit-cap, cnn-rnn)");
}

void save_model(const std::string& path, const nn::Module& model, const std::string& name,
                const std::string& config_json) {
  check_name(name, "save_model");
  nn::save_state_dict(model, path, {{"iris.model", name}, {"iris.config", config_json}});
}

LoadedModel load_model(const std::string& path) {
  const Safetensors file = load_safetensors(path);
  auto meta = [&](const char* key) {
    auto it = file.metadata.find(key);
    IRIS_CHECK(it != file.metadata.end(), "load_model: ", path, " has no metadata '", key,
               "' (not written by save_model)");
    return it->second;
  };
  LoadedModel out;
  out.name = meta("iris.model");
  out.config = meta("iris.config");
  out.model = build_model(out.name, out.config);
  nn::load_state_dict(*out.model, file.tensors, true, "", path);
  return out;
}

}  // namespace iris::models
