#pragma once
// torch.nn.MultiheadAttention (batch_first=True) over the fused attention kernel.
#include <cstdint>
#include <memory>

#include "core/rng.h"
#include "nn/layers_linear.h"
#include "nn/module.h"

namespace iris::nn {

struct MhaOptions {
  // torch's attn_mask = triu(-inf, 1). When Lq != Lk the diagonal is bottom-right aligned
  // (per sample with lengths), the convention of iris::scaled_dot_product_attention.
  bool causal = false;
  Tensor key_padding_mask = {};  // bool [B, Lk], true = ignore this key (torch's convention)
  Tensor q_lens = {};            // int32/int64 [B]: valid query rows per sample
  Tensor k_lens = {};            // int32/int64 [B]: valid keys per sample
  // Also return the attention probabilities (computed apart from the output, only then).
  bool need_weights = false;
  bool average_attn_weights = true;  // mean over heads: [B, Lq, Lk]; else [B, H, Lq, Lk]
};

struct MhaOutput {
  Tensor output = {};   // [B, Lq, E]; rows past a sample's q_len hold out_proj.bias
  Tensor weights = {};  // defined when need_weights; zero rows where no key is visible
};

// Parameters in_proj_weight [3E, E] (xavier_uniform), in_proj_bias [3E] (zeros),
// out_proj.weight [E, E] (Linear's init), out_proj.bias [E] (zeros).
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, bool bias = true,
                     Generator* gen = nullptr);
  // query [B, Lq, E], key [B, Lk, E], value [B, Lk, E].
  MhaOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                    const MhaOptions& opt = {});
  Tensor forward(const Tensor& x) override { return forward(x, x, x).output; }
  std::string extra_repr() const override;

  int64_t embed_dim, num_heads, head_dim;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;

 private:
  // x [B, L, E] projected by block `which` (0 q, 1 k, 2 v) of in_proj, as [B, H, L, D].
  Tensor project(const Tensor& x, int64_t which) const;
};

}  // namespace iris::nn
