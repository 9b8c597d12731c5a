// Tensor-level entry of the CPU attention kernels (kernels/cpu/attention.h).
#include "kernels/attention.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/loops.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(attention_forward)
IRIS_DEFINE_KERNEL_TABLE(attention_backward)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

AttentionParams params_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                          const kernels::AttentionMasks& m) {
  AttentionParams p;
  p.B = q.size(0), p.H = q.size(1), p.Lq = q.size(2), p.Lk = k.size(2), p.D = q.size(3);
  p.Dv = v.size(3);
  p.scale = m.scale;
  p.causal = m.causal;
  p.q_lens = m.q_lens.defined() ? m.q_lens.data<int32_t>() : nullptr;
  p.k_lens = m.k_lens.defined() ? m.k_lens.data<int32_t>() : nullptr;
  p.key_mask = m.key_mask.defined() ? static_cast<const uint8_t*>(m.key_mask.raw_data()) : nullptr;
  p.q_sb = q.stride(0), p.q_sh = q.stride(1), p.q_sl = q.stride(2);
  p.k_sb = k.stride(0), p.k_sh = k.stride(1), p.k_sl = k.stride(2);
  p.v_sb = v.stride(0), p.v_sh = v.stride(1), p.v_sl = v.stride(2);
  p.o_sb = o.stride(0), p.o_sh = o.stride(1), p.o_sl = o.stride(2);
  return p;
}

void forward_cpu(const Tensor& q, const Tensor& k, const Tensor& v,
                 const kernels::AttentionMasks& m, const Tensor& out, const Tensor& lse) {
  const AttentionParams p = params_of(q, k, v, out, m);
  dispatch_float(q.dtype(), "attention", [&]<class T>() {
    attention_forward<T>(p, static_cast<const T*>(q.raw_data()),
                         static_cast<const T*>(k.raw_data()), static_cast<const T*>(v.raw_data()),
                         static_cast<T*>(out.raw_data()),
                         lse.defined() ? lse.data<T>() : nullptr);
  });
}

void backward_cpu(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                  const Tensor& dout, const Tensor& lse, const kernels::AttentionMasks& m,
                  const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const AttentionParams p = params_of(q, k, v, out, m);
  dispatch_float(q.dtype(), "attention_backward", [&]<class T>() {
    attention_backward<T>(
        p, static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
        static_cast<const T*>(v.raw_data()), static_cast<const T*>(out.raw_data()),
        static_cast<const T*>(dout.raw_data()), lse.data<T>(), static_cast<T*>(dq.raw_data()),
        static_cast<T*>(dk.raw_data()), static_cast<T*>(dv.raw_data()));
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(attention_forward, CPU, forward_cpu);
IRIS_REGISTER_KERNEL(attention_backward, CPU, backward_cpu);

}  // namespace iris::cpu
