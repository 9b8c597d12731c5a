#include "models/captioner_vit.h"

#include "autograd/ops.h"

namespace iris::models {
namespace {

// Block `which` (0 q, 1 k, 2 v) of an attention layer's input projection of x [N, L, E], as
// [N, H, L, D] (a view of the projection, as MultiheadAttention keeps its heads).
Tensor project(const nn::MultiheadAttention& mha, const Tensor& x, int64_t which) {
  const int64_t E = mha.embed_dim;
  const Tensor w = mha.in_proj_weight.narrow(0, which * E, E);
  const Tensor b = mha.in_proj_bias.defined() ? mha.in_proj_bias.narrow(0, which * E, E) : Tensor();
  return linear(x, w, b).view({x.size(0), x.size(1), mha.num_heads, mha.head_dim}).transpose(1, 2);
}

// attention [N, H, L, D] (laid out [N, L, H, D]) through out_proj -> [N, L, E].
Tensor merge_heads(const nn::MultiheadAttention& mha, const Tensor& attention) {
  const int64_t N = attention.size(0), L = attention.size(2);
  return mha.out_proj->forward(attention.transpose(1, 2).reshape({N, L, mha.embed_dim}));
}

// Each step runs only the new token: its self-attention keys and values join a per-layer
// cache, and the cross-attention keys and values of the image memory are projected once.
class CachedSession : public DecodeSession {
 public:
  CachedSession(ViTCaptioner& m, const Tensor& images, int64_t copies)
      : m_(m), copies_(copies), N_(images.size(0) * copies) {
    const Tensor memory = m.encode(images);
    const Tensor rows = repeat_rows(images.size(0), copies, images.device());
    const auto& c = m.config;
    const int64_t H = c.heads, D = c.dim / c.heads;
    for (size_t l = 0; l < m.dec->size(); ++l) {
      const nn::MultiheadAttention& xattn = *m.block(l).xattn;
      Layer layer;
      layer.k = zeros({N_, H, c.max_len, D}, DType::f32, images.device());
      layer.v = zeros({N_, H, c.max_len, D}, DType::f32, images.device());
      layer.xk = project(xattn, memory, 1);
      layer.xv = project(xattn, memory, 2);
      if (copies > 1) {
        layer.xk = index_select(layer.xk, 0, rows);
        layer.xv = index_select(layer.xv, 0, rows);
      }
      layers_.push_back(layer);
    }
  }

  Tensor step(const Tensor& tokens) override {
    NoGradGuard no_grad;
    IRIS_CHECK(tokens.defined() && tokens.dim() == 1 && tokens.size(0) == N_,
               "ViTCaptioner decoding: expected tokens [", N_, "], got ",
               tokens.defined() ? tokens.desc() : "undefined");
    IRIS_CHECK(t_ < m_.config.max_len, "ViTCaptioner decoding: step ", t_ + 1, " exceeds the ",
               m_.config.max_len, " positions");
    Tensor x = m_.tok->forward(tokens.view({N_, 1})) + m_.pos.narrow(1, t_, 1);  // [N, 1, E]
    for (size_t l = 0; l < layers_.size(); ++l) {
      nn::TransformerBlock& blk = m_.block(l);
      Layer& layer = layers_[l];
      Tensor h = blk.ln1->forward(x);
      copy_(layer.k.narrow(2, t_, 1), project(*blk.attn, h, 1));
      copy_(layer.v.narrow(2, t_, 1), project(*blk.attn, h, 2));
      // The new query sees every cached position: the causal mask's last row.
      Tensor a = scaled_dot_product_attention(
          project(*blk.attn, h, 0), layer.k.narrow(2, 0, t_ + 1), layer.v.narrow(2, 0, t_ + 1));
      x = x + merge_heads(*blk.attn, a);
      h = blk.lnx->forward(x);
      a = scaled_dot_product_attention(project(*blk.xattn, h, 0), layer.xk, layer.xv);
      x = x + merge_heads(*blk.xattn, a);
      x = x + blk.mlp->forward(blk.ln2->forward(x));
    }
    ++t_;
    return m_.head->forward(m_.ln->forward(x)).view({N_, m_.config.vocab});
  }

  void reorder(const Tensor& rows) override {
    NoGradGuard no_grad;
    if (!check_reorder_rows(rows, N_, copies_, "ViTCaptioner decoding")) return;
    for (Layer& layer : layers_) {
      layer.k = index_select(layer.k, 0, rows);
      layer.v = index_select(layer.v, 0, rows);
    }
  }

  int64_t max_steps() const override { return m_.config.max_len; }

 private:
  struct Layer {
    Tensor k, v;    // [N, H, max_len, D]; positions < t_ are filled
    Tensor xk, xv;  // [N, H, 1 + patches, D]
  };
  ViTCaptioner& m_;
  int64_t copies_, N_, t_ = 0;
  std::vector<Layer> layers_;
};

// Recomputes the decoder over the whole prefix at every step (the cache's reference).
class FullPrefixSession : public DecodeSession {
 public:
  FullPrefixSession(ViTCaptioner& m, const Tensor& images, int64_t copies)
      : m_(m), copies_(copies), N_(images.size(0) * copies) {
    memory_ = m.encode(images);
    if (copies > 1)
      memory_ = index_select(memory_, 0, repeat_rows(images.size(0), copies, images.device()));
  }

  Tensor step(const Tensor& tokens) override {
    NoGradGuard no_grad;
    IRIS_CHECK(tokens.defined() && tokens.dim() == 1 && tokens.size(0) == N_,
               "ViTCaptioner decoding: expected tokens [", N_, "], got ",
               tokens.defined() ? tokens.desc() : "undefined");
    const Tensor column = tokens.to(DType::i64).view({N_, 1});
    prefix_ = prefix_.defined() ? cat({prefix_, column}, 1) : column;
    const int64_t T = prefix_.size(1);
    return m_.decode_tokens(memory_, prefix_).select(1, T - 1);
  }

  void reorder(const Tensor& rows) override {
    NoGradGuard no_grad;
    if (!check_reorder_rows(rows, N_, copies_, "ViTCaptioner decoding")) return;
    if (prefix_.defined()) prefix_ = index_select(prefix_, 0, rows);
  }

  int64_t max_steps() const override { return m_.config.max_len; }

 private:
  ViTCaptioner& m_;
  int64_t copies_, N_;
  Tensor memory_, prefix_;
};

}  // namespace

VitConfig ViTCaptionerConfig::encoder() const {
  VitConfig v;
  v.image_size = image_size;
  v.patch = patch;
  v.channels = 3;
  v.dim = dim;
  v.depth = encoder_depth;
  v.heads = heads;
  v.mlp_dim = mlp_dim;
  v.num_classes = 0;
  v.stem_channels = stem_channels;
  return v;
}

void ViTCaptionerConfig::validate() const {
  encoder().validate("ViTCaptioner");
  IRIS_CHECK(decoder_depth >= 0 && vocab > 0 && max_len > 0,
             "ViTCaptioner: bad sizes (decoder_depth ", decoder_depth, ", vocab ", vocab,
             ", max_len ", max_len, ")");
}

ViTCaptioner::ViTCaptioner(const ViTCaptionerConfig& cfg, Generator* gen)
    : CaptionModel("ViTCaptioner"), config(cfg) {
  config.validate();
  const int64_t D = config.dim;
  pos = register_parameter("pos",
                           randn({1, config.max_len, D}, DType::f32, Device::cpu(), gen) * 0.02);
  enc = register_module("enc", std::make_shared<ViT>(config.encoder(), gen));
  tok = register_module("tok", std::make_shared<nn::Embedding>(config.vocab, D, std::nullopt, gen));
  dec = register_module("dec", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < config.decoder_depth; ++i)
    dec->push_back(
        std::make_shared<nn::TransformerBlock>(D, config.heads, config.mlp_dim, true, true, gen));
  ln = register_module("ln", std::make_shared<nn::LayerNorm>(D));
  head = register_module("head", std::make_shared<nn::Linear>(D, config.vocab, true, gen));
}

Tensor ViTCaptioner::encode(const Tensor& images) { return enc->forward(images); }

Tensor ViTCaptioner::decode_tokens(const Tensor& memory, const Tensor& tokens,
                                   std::vector<Tensor>* cross_attention) {
  IRIS_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(1) >= 1 &&
                 tokens.size(1) <= config.max_len && memory.defined() && memory.dim() == 3 &&
                 memory.size(0) == tokens.size(0),
             "ViTCaptioner: expected tokens [B, T] with 1 <= T <= ", config.max_len,
             " and memory [B, M, ", config.dim, "], got ",
             tokens.defined() ? tokens.desc() : "undefined", " and ",
             memory.defined() ? memory.desc() : "undefined");
  const int64_t T = tokens.size(1);
  Tensor x = tok->forward(tokens) + pos.narrow(1, 0, T);
  for (size_t l = 0; l < dec->size(); ++l) {
    nn::TransformerBlock& blk = block(l);
    if (!cross_attention) {
      x = blk.forward(x, memory);
      continue;
    }
    // TransformerBlock::forward with the cross-attention probabilities kept.
    nn::MhaOptions self;
    self.causal = true;
    Tensor h = blk.ln1->forward(x);
    x = x + blk.attn->forward(h, h, h, self).output;
    nn::MhaOptions xo;
    xo.need_weights = true;
    h = blk.lnx->forward(x);
    nn::MhaOutput o = blk.xattn->forward(h, memory, memory, xo);
    x = x + o.output;
    cross_attention->push_back(o.weights);
    x = x + blk.mlp->forward(blk.ln2->forward(x));
  }
  return head->forward(ln->forward(x));
}

Tensor ViTCaptioner::forward(const Tensor& images, const Tensor& tokens) {
  return decode_tokens(encode(images), tokens);
}

ViTCaptionerOutput ViTCaptioner::forward_with_attention(const Tensor& images, const Tensor& tokens,
                                                        bool cross_attention) {
  ViTCaptionerOutput out;
  out.logits =
      decode_tokens(encode(images), tokens, cross_attention ? &out.cross_attention : nullptr);
  return out;
}

std::unique_ptr<DecodeSession> ViTCaptioner::start_decoding(const Tensor& images, int64_t copies,
                                                            bool use_cache) {
  IRIS_CHECK(copies > 0, "ViTCaptioner::start_decoding: copies must be positive, got ", copies);
  NoGradGuard no_grad;
  if (use_cache) return std::make_unique<CachedSession>(*this, images, copies);
  return std::make_unique<FullPrefixSession>(*this, images, copies);
}

std::string ViTCaptioner::extra_repr() const {
  return detail::cat("image_size=", config.image_size, ", patch=", config.patch,
                     ", dim=", config.dim, ", encoder_depth=", config.encoder_depth,
                     ", decoder_depth=", config.decoder_depth, ", heads=", config.heads,
                     ", mlp_dim=", config.mlp_dim, ", vocab=", config.vocab,
                     ", max_len=", config.max_len);
}

}  // namespace iris::models
