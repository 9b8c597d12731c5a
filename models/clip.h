#pragma once
// A CLIP-style dual encoder: a ViT image tower (its class token) and a Transformer text
// tower (causal, pooled at each caption's last token, as CLIP), each projected without bias
// into a shared space and L2-normalised; a learnable log-temperature logit_scale (init
// log(1/0.07)) scales the cosine similarities, trained with the symmetric InfoNCE loss.
// Parameter names: logit_scale, visual.*, text.*, visual_proj.weight, text_proj.weight.
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "models/text_encoder.h"
#include "models/vit.h"
#include "nn/layers.h"

namespace iris::models {

struct ClipConfig {
  int64_t image_size = 64;
  int64_t patch = 8;
  int64_t vision_dim = 192;
  int64_t vision_depth = 4;
  int64_t vision_heads = 3;
  int64_t vision_mlp = 768;
  int64_t vocab = 1024;
  int64_t text_len = 32;
  int64_t text_dim = 192;
  int64_t text_depth = 4;
  int64_t text_heads = 3;
  int64_t text_mlp = 768;
  int64_t embed_dim = 128;
  double max_logit_scale = 100.0;
  std::vector<int64_t> vision_stem_channels;  // the image tower's conv stem (VitConfig)

  VitConfig vision() const;
  TextEncoderConfig text() const;
  template <class V>
  void visit(V&& v) {
    v("image_size", image_size);
    v("patch", patch);
    v("vision_dim", vision_dim);
    v("vision_depth", vision_depth);
    v("vision_heads", vision_heads);
    v("vision_mlp", vision_mlp);
    v("vocab", vocab);
    v("text_len", text_len);
    v("text_dim", text_dim);
    v("text_depth", text_depth);
    v("text_heads", text_heads);
    v("text_mlp", text_mlp);
    v("embed_dim", embed_dim);
    v("max_logit_scale", max_logit_scale);
    v("vision_stem_channels", vision_stem_channels);
  }
};

class Clip : public nn::Module {
 public:
  explicit Clip(const ClipConfig& config = {}, Generator* gen = nullptr);
  // Unit-norm embeddings: images [B, 3, H, W] -> [B, embed_dim]; tokens [B, T] (with
  // lengths [B] or undefined = all valid) -> [B, embed_dim].
  Tensor encode_image(const Tensor& images);
  Tensor encode_text(const Tensor& tokens, const Tensor& lengths = Tensor());
  // scale * image @ text^T: [B_images, B_texts].
  Tensor logits(const Tensor& image_embeddings, const Tensor& text_embeddings) const;
  // Symmetric InfoNCE of a batch of matching pairs (pair i: image i, caption i).
  // matches: nn::clip_loss's (captions that also describe other images of the batch; with
  // matches, several captions per image: tokens [M, T] and matches [B, M]).
  Tensor loss(const Tensor& images, const Tensor& tokens, const Tensor& lengths = Tensor(),
              const Tensor& matches = Tensor());
  std::string extra_repr() const override;

  ClipConfig config;
  Tensor logit_scale;  // 0-dim
  std::shared_ptr<ViT> visual;
  std::shared_ptr<TextEncoder> text;
  std::shared_ptr<nn::Linear> visual_proj, text_proj;
};

// x / max(||x||_2, 1e-12) along the last dim (F.normalize).
Tensor l2_normalize(const Tensor& x);

}  // namespace iris::models
