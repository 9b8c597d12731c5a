#pragma once
// The pre-LN Transformer block of torch_ref.py (Block): self-attention (optionally
// causal), optional cross-attention to a memory, and a GELU MLP, each in a residual
// branch after its LayerNorm. An encoder layer is TransformerBlock(d, h, mlp); a decoder
// layer is TransformerBlock(d, h, mlp, /*cross=*/true, /*causal=*/true).
#include <cstdint>
#include <memory>

#include "core/rng.h"
#include "nn/layers_attention.h"
#include "nn/layers_containers.h"
#include "nn/layers_norm.h"
#include "nn/module.h"

namespace iris::nn {

struct BlockOptions {
  Tensor lengths = {};               // int [B]: valid tokens of x per sample (rest: padding)
  Tensor key_padding_mask = {};      // bool [B, T]: padding tokens of x, as keys
  Tensor mem_lengths = {};           // int [B]: valid memory tokens per sample
  Tensor mem_key_padding_mask = {};  // bool [B, M]: padding tokens of the memory
};

// Children (torch's names): ln1, attn, [lnx, xattn], ln2, mlp (Sequential of Linear(d, mlp),
// GELU, Linear(mlp, d): mlp.0.weight, mlp.2.weight, ...).
class TransformerBlock : public Module {
 public:
  TransformerBlock(int64_t dim, int64_t heads, int64_t mlp_dim, bool cross = false,
                   bool causal = false, Generator* gen = nullptr);
  // x [B, T, dim]; mem [B, M, dim] (cross blocks only, required there).
  Tensor forward(const Tensor& x, const Tensor& mem, const BlockOptions& opt = {});
  Tensor forward(const Tensor& x) override { return forward(x, Tensor()); }
  std::string extra_repr() const override;

  int64_t dim, heads, mlp_dim;
  bool cross, causal;
  std::shared_ptr<LayerNorm> ln1, lnx, ln2;
  std::shared_ptr<MultiheadAttention> attn, xattn;
  std::shared_ptr<Sequential> mlp;
};

}  // namespace iris::nn
