#include "models/clip.h"

#include "autograd/ops.h"
#include "nn/loss.h"

namespace iris::models {

Tensor l2_normalize(const Tensor& x) {
  const Tensor norm = sqrt(sum(x * x, {-1}, true));
  return x / clamp(norm, 1e-12, std::nullopt);
}

VitConfig ClipConfig::vision() const {
  VitConfig v;
  v.image_size = image_size;
  v.patch = patch;
  v.dim = vision_dim;
  v.depth = vision_depth;
  v.heads = vision_heads;
  v.mlp_dim = vision_mlp;
  v.stem_channels = vision_stem_channels;
  return v;
}

TextEncoderConfig ClipConfig::text() const {
  TextEncoderConfig t;
  t.vocab = vocab;
  t.max_len = text_len;
  t.dim = text_dim;
  t.depth = text_depth;
  t.heads = text_heads;
  t.mlp_dim = text_mlp;
  t.causal = true;
  t.pool = "last";
  return t;
}

Clip::Clip(const ClipConfig& cfg, Generator* gen) : Module("Clip"), config(cfg) {
  IRIS_CHECK(config.embed_dim > 0 && config.max_logit_scale > 0, "Clip: embed_dim (",
             config.embed_dim, ") and max_logit_scale (", config.max_logit_scale,
             ") must be positive");
  logit_scale = register_parameter("logit_scale", Tensor::scalar(std::log(1 / 0.07)));
  visual = register_module("visual", std::make_shared<ViT>(config.vision(), gen));
  text = register_module("text", std::make_shared<TextEncoder>(config.text(), gen));
  visual_proj = register_module(
      "visual_proj", std::make_shared<nn::Linear>(config.vision_dim, config.embed_dim, false, gen));
  text_proj = register_module(
      "text_proj", std::make_shared<nn::Linear>(config.text_dim, config.embed_dim, false, gen));
}

Tensor Clip::encode_image(const Tensor& images) {
  return l2_normalize(visual_proj->forward(visual->forward(images).select(1, 0)));
}

Tensor Clip::encode_text(const Tensor& tokens, const Tensor& lengths) {
  return l2_normalize(text_proj->forward(text->encode(tokens, lengths)));
}

Tensor Clip::logits(const Tensor& image_embeddings, const Tensor& text_embeddings) const {
  return nn::clip_logits(image_embeddings, text_embeddings, logit_scale, config.max_logit_scale);
}

Tensor Clip::loss(const Tensor& images, const Tensor& tokens, const Tensor& lengths,
                  const Tensor& matches) {
  const Tensor img = encode_image(images), txt = encode_text(tokens, lengths);
  IRIS_CHECK(img.size(0) == txt.size(0) || matches.defined(), "Clip::loss: ", img.size(0),
             " images but ", txt.size(0), " captions (pass matches to pair several with each)");
  return nn::clip_loss(img, txt, logit_scale, config.max_logit_scale, matches);
}

std::string Clip::extra_repr() const {
  return detail::cat("embed_dim=", config.embed_dim, ", max_logit_scale=", config.max_logit_scale);
}

}  // namespace iris::models
