#pragma once
// vit-cap of torch_ref.py (ViTCaptioner): a ViT encoder over the image, then a Transformer
// decoder of pre-LN blocks with causal self-attention and cross-attention to the image
// tokens; token embedding, learned positions, final LayerNorm and a vocabulary head.
// Parameter names are torch's: pos, enc.*, tok.weight, dec.<i>.*, ln.*, head.*.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "models/decode.h"
#include "models/vit.h"
#include "nn/layers.h"

namespace iris::models {

// Defaults: torch_ref's ViTCaptioner (64x64 images, patch 8, width 192, 4 + 4 blocks,
// 3 heads, MLP 768, vocabulary 1024, at most 24 tokens).
struct ViTCaptionerConfig {
  int64_t image_size = 64;
  int64_t patch = 8;
  int64_t dim = 192;
  int64_t encoder_depth = 4;
  int64_t decoder_depth = 4;
  int64_t heads = 3;
  int64_t mlp_dim = 768;
  int64_t vocab = 1024;
  int64_t max_len = 24;
  std::vector<int64_t> stem_channels;  // the encoder's conv stem (VitConfig); empty: none

  VitConfig encoder() const;
  void validate() const;
  template <class V>
  void visit(V&& v) {
    v("image_size", image_size);
    v("patch", patch);
    v("dim", dim);
    v("encoder_depth", encoder_depth);
    v("decoder_depth", decoder_depth);
    v("heads", heads);
    v("mlp_dim", mlp_dim);
    v("vocab", vocab);
    v("max_len", max_len);
    v("stem_channels", stem_channels);
  }
};

struct ViTCaptionerOutput {
  Tensor logits;  // [B, T, vocab]
  // Per decoder layer, cross-attention probabilities averaged over heads: [B, T, 1 + patches].
  std::vector<Tensor> cross_attention;
};

class ViTCaptioner : public CaptionModel {
 public:
  explicit ViTCaptioner(const ViTCaptionerConfig& config = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& images, const Tensor& tokens) override;
  using CaptionModel::forward;
  ViTCaptionerOutput forward_with_attention(const Tensor& images, const Tensor& tokens,
                                            bool cross_attention = true);
  // The image memory [B, 1 + patches, dim] and the decoder over it.
  Tensor encode(const Tensor& images);
  Tensor decode_tokens(const Tensor& memory, const Tensor& tokens,
                       std::vector<Tensor>* cross_attention = nullptr);
  std::unique_ptr<DecodeSession> start_decoding(const Tensor& images, int64_t copies,
                                                bool use_cache = true) override;
  int64_t vocab_size() const override { return config.vocab; }
  std::string extra_repr() const override;

  ViTCaptionerConfig config;
  Tensor pos;  // [1, max_len, dim]
  std::shared_ptr<ViT> enc;
  std::shared_ptr<nn::Embedding> tok;
  std::shared_ptr<nn::ModuleList> dec;  // TransformerBlock(dim, heads, mlp, cross, causal)
  std::shared_ptr<nn::LayerNorm> ln;
  std::shared_ptr<nn::Linear> head;

  nn::TransformerBlock& block(size_t i) const { return dec->at<nn::TransformerBlock>(i); }
};

}  // namespace iris::models
