#pragma once
// A Transformer text encoder: token embedding, learned positions, pre-LN blocks (the
// TransformerBlock of torch_ref.py, optionally causal as CLIP's), a final LayerNorm, and a
// pooling of the valid tokens into one vector. Parameter names: pos, tok.weight,
// blocks.<i>.*, ln.*. Padding: per-sample lengths; tokens past a length are never attended
// to and never pooled.
#include <cstdint>
#include <memory>
#include <string>

#include "core/rng.h"
#include "nn/layers.h"

namespace iris::models {

struct TextEncoderConfig {
  int64_t vocab = 1024;
  int64_t max_len = 32;
  int64_t dim = 256;
  int64_t depth = 4;
  int64_t heads = 4;
  int64_t mlp_dim = 1024;
  bool causal = false;
  std::string pool = "mean";  // "mean" (valid tokens), "first", "last" (CLIP's end token)

  void validate(const char* who) const;
  template <class V>
  void visit(V&& v) {
    v("vocab", vocab);
    v("max_len", max_len);
    v("dim", dim);
    v("depth", depth);
    v("heads", heads);
    v("mlp_dim", mlp_dim);
    v("causal", causal);
    v("pool", pool);
  }
};

// lengths: int32/int64 [B] in [1, T], or undefined (every token valid).
// The pooling, apart from the encoder: x [B, T, D] -> [B, D].
Tensor pool_tokens(const Tensor& x, const Tensor& lengths, const std::string& how);
// float [B, T, 1] (x's dtype): 1 at valid tokens.
Tensor valid_mask(const Tensor& lengths, int64_t B, int64_t T, DType dtype);

class TextEncoder : public nn::Module {
 public:
  explicit TextEncoder(const TextEncoderConfig& config = {}, Generator* gen = nullptr);
  // tokens int [B, T] (T <= max_len) -> [B, T, dim].
  Tensor forward(const Tensor& tokens, const Tensor& lengths);
  Tensor forward(const Tensor& tokens) override { return forward(tokens, Tensor()); }
  // pool_tokens(forward(tokens, lengths), lengths, config.pool) -> [B, dim].
  Tensor encode(const Tensor& tokens, const Tensor& lengths = Tensor());
  std::string extra_repr() const override;

  TextEncoderConfig config;
  Tensor pos;  // [1, max_len, dim]
  std::shared_ptr<nn::Embedding> tok;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> ln;
};

}  // namespace iris::models
