#pragma once
// Visual question answering / image-text classification: image tokens from a CNN (regions
// of a conv stack, projected to `dim`, with learned positions) or a ViT, question tokens
// from an LSTM or a Transformer text encoder, fused one of three ways, then an answer
// classifier:
//   early  one Transformer over [image tokens; question tokens] (plus a type embedding
//          each), mean-pooled over the valid tokens;
//   late   pooled image features and the pooled question combined as [i, q, i * q];
//   xattn  question tokens (few queries) attending over the image tokens (many keys) in
//          cross-attention blocks, mean-pooled over the valid question tokens.
// And the unimodal baselines that multimodal models are measured against, built the same
// way from one modality only (its encoder, then fusion_depth self-attention blocks):
//   image-only  the image tokens, mean-pooled; the question is not read;
//   text-only   the question tokens, mean-pooled over the valid ones; the image is not read.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/text_encoder.h"
#include "models/vit.h"
#include "nn/layers.h"

namespace iris::models {

struct FusionConfig {
  std::string fusion = "xattn";       // early | late | xattn | image-only | text-only
  std::string image_encoder = "cnn";  // cnn | vit
  std::string text_encoder = "lstm";  // lstm | transformer
  int64_t image_size = 64;
  std::vector<int64_t> cnn_channels = {32, 64, 128};  // conv stages, each halving H and W
  int64_t cnn_first_stride = 2;                       // 1: the first stage keeps H and W
  int64_t patch = 8;                                  // vit
  int64_t vit_depth = 2;                              // vit
  std::vector<int64_t> vit_stem_channels;             // vit: its conv stem (VitConfig)
  int64_t dim = 128;  // width of image tokens, question tokens and fusion
  int64_t heads = 4;
  int64_t mlp_dim = 256;  // Transformer MLPs and the classifier's hidden layer
  int64_t vocab = 1024;
  int64_t max_question_len = 24;
  int64_t text_depth = 2;    // transformer text encoder blocks, or LSTM layers
  int64_t fusion_depth = 2;  // early / xattn blocks
  int64_t num_answers = 100;

  int64_t image_tokens() const;
  bool uses_image() const { return fusion != "text-only"; }
  bool uses_text() const { return fusion != "image-only"; }
  void validate() const;
  template <class V>
  void visit(V&& v) {
    v("fusion", fusion);
    v("image_encoder", image_encoder);
    v("text_encoder", text_encoder);
    v("image_size", image_size);
    v("cnn_channels", cnn_channels);
    v("cnn_first_stride", cnn_first_stride);
    v("patch", patch);
    v("vit_depth", vit_depth);
    v("vit_stem_channels", vit_stem_channels);
    v("dim", dim);
    v("heads", heads);
    v("mlp_dim", mlp_dim);
    v("vocab", vocab);
    v("max_question_len", max_question_len);
    v("text_depth", text_depth);
    v("fusion_depth", fusion_depth);
    v("num_answers", num_answers);
  }
};

// Children by configuration: image: cnn + img_proj + img_pos | vit (none for text-only);
// text: emb + lstm | text (none for image-only); fusion: type_emb + blocks + ln (early) |
// blocks + ln (xattn, image-only, text-only) | none (late); classifier.
class FusionVqa : public nn::Module {
 public:
  explicit FusionVqa(const FusionConfig& config = {}, Generator* gen = nullptr);
  // images [B, 3, S, S], questions int [B, T] (T <= max_question_len), lengths int [B] or
  // undefined (all valid) -> answer logits [B, num_answers]. The unimodal baselines accept
  // (and ignore) the modality they do not read; it may then be undefined.
  // Several questions about one image: images [N, 3, S, S] and image_of int64 [B], the row of
  // `images` each question asks about; each image is encoded once (the image encoder is most
  // of the model's work, and a VQA set asks several questions per image).
  Tensor forward(const Tensor& images, const Tensor& questions, const Tensor& lengths = Tensor(),
                 const Tensor& image_of = Tensor());
  Tensor forward(const Tensor& x) override { return nn::Module::forward(x); }
  Tensor image_tokens(const Tensor& images);  // [B, M, dim]
  // Question tokens [B, T, dim] and the pooled question [B, dim].
  std::pair<Tensor, Tensor> question(const Tensor& questions, const Tensor& lengths);
  std::string extra_repr() const override;

  FusionConfig config;
  Tensor img_pos, type_emb;
  std::shared_ptr<nn::Sequential> cnn;
  std::shared_ptr<nn::Linear> img_proj;
  std::shared_ptr<ViT> vit;
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<TextEncoder> text;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> ln;
  std::shared_ptr<nn::Sequential> classifier;

 private:
  Tensor unimodal_forward(const Tensor& images, const Tensor& questions, const Tensor& lengths,
                          const Tensor& image_of);
  // Image tokens (or any per-image rows) repeated for each question: rows[image_of].
  Tensor per_question(const Tensor& rows, const Tensor& image_of, int64_t questions) const;
};

}  // namespace iris::models
