// Fused attention and its derivative (FlashAttention-2 recomputation from the saved lse).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/attention.h"
#include "autograd/autocast.h"
#include "autograd/function.h"
#include "autograd/ops.h"
#include "kernels/attention.h"

namespace iris {

using autograd::BackwardCtx;
using autograd::Saved;

namespace {

// True when t's elements fill its storage span exactly in some order of dims with a
// unit last stride: the kernels can read it and a gradient can share its strides.
bool dense_with_unit_last(const Tensor& t) {
  if (t.stride(-1) != 1 && t.size(-1) != 1) return false;
  std::vector<int64_t> order(t.dim());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return t.stride(a) > t.stride(b); });
  int64_t expect = 1;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (t.size(*it) == 1) continue;
    if (t.stride(*it) != expect) return false;
    expect *= t.size(*it);
  }
  return true;
}

Tensor ready(const Tensor& t) { return dense_with_unit_last(t) ? t : t.contiguous(); }

// A fresh tensor with t's shape and strides (t dense in some dim order).
Tensor empty_like_strided(const Tensor& t) {
  Tensor base = Tensor::empty({t.numel()}, t.dtype(), t.device());
  return base.as_strided(t.shape(), t.strides(), 0);
}

Tensor lengths_int32(const Tensor& lens, int64_t B, int64_t limit, const char* which) {
  if (!lens.defined()) return lens;
  IRIS_CHECK(lens.dim() == 1 && lens.size(0) == B &&
                 (lens.dtype() == DType::i32 || lens.dtype() == DType::i64),
             "scaled_dot_product_attention: ", which, " must be int32/int64 [", B, "], got ",
             lens.desc());
  Tensor l = lens.to(Device::cpu()).to(DType::i32).contiguous();
  for (int32_t v : l.to_vector<int32_t>())
    IRIS_CHECK(v >= 0 && v <= limit, "scaled_dot_product_attention: ", which, " value ", v,
               " outside [0, ", limit, "]");
  return lens.device().is_cpu() ? l : l.to(lens.device());
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const AttentionOptions& opt) {
  const char* op = "scaled_dot_product_attention";
  IRIS_CHECK(q_in.defined() && k_in.defined() && v_in.defined(), op, ": undefined operand");
  IRIS_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4, op,
             ": expected q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv]; got ", q_in.desc(), ", ",
             k_in.desc(), ", ", v_in.desc());
  const int64_t B = q_in.size(0), H = q_in.size(1), Lq = q_in.size(2), D = q_in.size(3);
  const int64_t Lk = k_in.size(2), Dv = v_in.size(3);
  IRIS_CHECK(k_in.size(0) == B && v_in.size(0) == B && k_in.size(1) == H && v_in.size(1) == H &&
                 k_in.size(3) == D && v_in.size(2) == Lk,
             op, ": shapes do not agree: q ", q_in.desc(), ", k ", k_in.desc(), ", v ",
             v_in.desc());
  IRIS_CHECK(q_in.dtype() == k_in.dtype() && q_in.dtype() == v_in.dtype(), op,
             ": dtype mismatch: ", q_in.desc(), ", ", k_in.desc(), ", ", v_in.desc());
  IRIS_CHECK(q_in.device() == k_in.device() && q_in.device() == v_in.device(), op,
             ": device mismatch: ", q_in.desc(), ", ", k_in.desc(), ", ", v_in.desc());
  IRIS_CHECK(D > 0 && Dv > 0 && Lk > 0, op, ": empty head or key dim: q ", q_in.desc(), ", k ",
             k_in.desc());
  if (const auto dt = autocast_dtype(q_in, k_in))  // tensor cores; float32 out
    return scaled_dot_product_attention(q_in.to(*dt), k_in.to(*dt), v_in.to(*dt), opt)
        .to(DType::f32);

  kernels::AttentionMasks m;
  m.causal = opt.causal;
  m.scale = opt.scale.value_or(1.0 / std::sqrt(static_cast<double>(D)));
  m.q_lens = lengths_int32(opt.q_lens, B, Lq, "q_lens");
  m.k_lens = lengths_int32(opt.k_lens, B, Lk, "k_lens");
  if (opt.key_padding_mask.defined()) {
    const Tensor& km = opt.key_padding_mask;
    IRIS_CHECK(km.dtype() == DType::b8 && km.dim() == 2 && km.size(0) == B && km.size(1) == Lk,
               op, ": key_padding_mask must be bool [", B, ", ", Lk, "], got ", km.desc());
    IRIS_CHECK(km.device() == q_in.device(), op, ": key_padding_mask on ", km.device().str());
    m.key_mask = km.contiguous();
  }

  const Tensor q = ready(q_in), k = ready(k_in), v = ready(v_in);
  // [B, Lq, H, Dv] in memory, viewed as [B, H, Lq, Dv].
  Tensor out = Tensor::empty({B, Lq, H, Dv}, q.dtype(), q.device()).permute({0, 2, 1, 3});
  // Softmax statistics stay float32 for 16-bit inputs.
  const bool half = q.dtype() == DType::bf16 || q.dtype() == DType::f16;
  Tensor lse = Tensor::empty({B, H, Lq}, half ? DType::f32 : q.dtype(), q.device());
  if (Lq > 0) kernels::attention_forward_table().get(q.device())(q, k, v, m, out, lse);

  if (autograd::any_requires_grad({&q_in, &k_in, &v_in}))
    autograd::record(op, {q_in, k_in, v_in}, {out},
                     [Q = Saved(q), K = Saved(k), V = Saved(v), O = Saved(out), L = Saved(lse),
                      m](const BackwardCtx& c) {
                       const Tensor &q = Q.get(), &k = K.get(), &v = V.get(), &o = O.get();
                       Tensor dout = c.grad();
                       if (dout.strides() != o.strides()) {
                         Tensor d = empty_like_strided(o);
                         copy_(d, dout);
                         dout = d;
                       }
                       Tensor dq = empty_like_strided(q), dk = empty_like_strided(k),
                              dv = empty_like_strided(v);
                       if (q.size(2) > 0)
                         kernels::attention_backward_table().get(q.device())(
                             q, k, v, o, dout, L.get(), m, dq, dk, dv);
                       else
                         zero_(dk), zero_(dv);
                       return std::vector<Tensor>{dq, dk, dv};
                     });
  return out;
}

}  // namespace iris
