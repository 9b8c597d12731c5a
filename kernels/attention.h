#pragma once
// Fused scaled-dot-product attention (any device). q [B, H, Lq, D], k [B, H, Lk, D],
// v [B, H, Lk, Dv], out [B, H, Lq, Dv]: logical shapes over any strides whose last dim
// is unit; gradients share the strides of their forward tensors. lse [B, H, Lq] dense.
#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

struct AttentionMasks {
  bool causal = false;  // bottom-right aligned when the (per-sample) lengths differ
  double scale = 0;
  Tensor q_lens;    // int32 [B] or undefined: query rows past the length are padding
  Tensor k_lens;    // int32 [B] or undefined: keys past the length are ignored
  Tensor key_mask;  // bool [B, Lk] or undefined: true = key ignored
};

IRIS_DECLARE_KERNEL(attention_forward, void(const Tensor& q, const Tensor& k, const Tensor& v,
                                            const AttentionMasks& m, const Tensor& out,
                                            const Tensor& lse));
IRIS_DECLARE_KERNEL(attention_backward,
                    void(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                         const Tensor& dout, const Tensor& lse, const AttentionMasks& m,
                         const Tensor& dq, const Tensor& dk, const Tensor& dv));

}  // namespace iris::kernels
