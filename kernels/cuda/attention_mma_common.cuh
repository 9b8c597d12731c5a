#pragma once
// What the tensor-core attention forward (attention_mma.cu) and backward (attention_mma_bwd.cu)
// share: the kernels' view of the operands, the 16-bit packing of fragments, and the host-side
// checks that choose between the kernels and the cp.async staging.
#include <cstdint>
#include <initializer_list>

#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/cuda/mma_tile.cuh"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS::attn_mma {

struct MmaAttnArgs {
  int64_t H, Lq, Lk;
  float scale_log2;  // softmax scale * log2(e)
  bool causal, async;
  const int32_t* q_lens;
  const int32_t* k_lens;
  const uint8_t* key_mask;
  int64_t q_sb, q_sh, q_sl, k_sb, k_sh, k_sl, v_sb, v_sh, v_sl, o_sb, o_sh, o_sl;
};

template <mma::Half H>
IRIS_DEV uint32_t pack2(float lo, float hi) {
  return static_cast<uint32_t>(mma::float_to_half<H>(lo)) |
         (static_cast<uint32_t>(mma::float_to_half<H>(hi)) << 16);
}

// Whether cp.async can stage x: a 16-byte aligned base and strides of whole 16-byte chunks.
inline bool aligned16(const Tensor& x) {
  if (reinterpret_cast<uintptr_t>(x.raw_data()) % 16 != 0) return false;
  for (int d = 0; d < 3; ++d)
    if (x.stride(d) % 8 != 0 && x.size(d) > 1) return false;
  return true;
}

// The kernels' view of the operands (dq/dk/dv/dout share the strides of q/k/v/out).
inline MmaAttnArgs args_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                           const kernels::AttentionMasks& m, Tensor (&masks)[3]) {
  MmaAttnArgs a{};
  a.H = q.size(1), a.Lq = q.size(2), a.Lk = k.size(2);
  a.scale_log2 = static_cast<float>(m.scale * 1.4426950408889634);
  a.causal = m.causal;
  a.async = aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
  // Masks on the compute device, alive until the (stream-ordered) launches have run.
  auto on_device = [&](const Tensor& x) {
    if (!x.defined()) return x;
    return x.device() == q.device() ? x.contiguous() : x.to(q.device()).contiguous();
  };
  masks[0] = on_device(m.q_lens), masks[1] = on_device(m.k_lens), masks[2] = on_device(m.key_mask);
  a.q_lens = masks[0].defined() ? masks[0].data<int32_t>() : nullptr;
  a.k_lens = masks[1].defined() ? masks[1].data<int32_t>() : nullptr;
  a.key_mask = masks[2].defined() ? static_cast<const uint8_t*>(masks[2].raw_data()) : nullptr;
  a.q_sb = q.stride(0), a.q_sh = q.stride(1), a.q_sl = q.stride(2);
  a.k_sb = k.stride(0), a.k_sh = k.stride(1), a.k_sl = k.stride(2);
  a.v_sb = v.stride(0), a.v_sh = v.stride(1), a.v_sl = v.stride(2);
  a.o_sb = out.stride(0), a.o_sh = out.stride(1), a.o_sl = out.stride(2);
  return a;
}

// The kernels read rows of the head dim as contiguous 16-bit runs.
inline bool unit_last_stride(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* x : ts)
    if (x->stride(3) != 1) return false;
  return true;
}

}  // namespace iris::IRIS_KERNEL_NS::attn_mma
