#pragma once
// Fused scaled-dot-product attention. The Lq x Lk score matrix is never
// materialised (forward or backward) on any backend.
#include <optional>

#include "core/tensor.h"

namespace iris {

struct AttentionOptions {
  bool causal = false;          // bottom-right aligned when Lq != Lk (per sample with lengths)
  std::optional<double> scale;  // default 1/sqrt(D)
  Tensor q_lens;                // int32/int64 [B]: valid query rows per sample (rest = padding)
  Tensor k_lens;                // int32/int64 [B]: valid keys per sample
  Tensor key_padding_mask;      // bool [B, Lk]: true = ignore this key (PyTorch's convention)
};

// q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv] -> [B, H, Lq, Dv]. Any strides; the
// result is laid out [B, Lq, H, Dv] in memory, so out.transpose(1, 2).reshape({B, Lq, H*Dv})
// is a view. Rows that see no key (padding rows, fully masked rows) give 0 and no gradient.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt = {});

}  // namespace iris
