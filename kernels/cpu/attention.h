#pragma once
// Fused scaled-dot-product attention on the CPU (FlashAttention-2 tiling), forward and
// backward, on raw strided pointers. Per (batch b, head h):
//   O = softmax(scale * Q K^T + mask) V,   Q: [Lq, D], K: [Lk, D], V: [Lk, Dv], O: [Lq, Dv].
// The Lq x Lk score matrix is never materialised: tiles of it live in per-thread buffers and
// the softmax runs online; the forward saves lse (log-sum-exp of the scaled, masked scores)
// so the backward can recompute the probabilities tile by tile.
//
// Visible keys of query row i in sample b (lq_b = q_lens[b], lk_b = k_lens[b]):
//   j < lk_b, key_mask[b, j] == 0 and, when causal, j <= i + (lk_b - lq_b) (bottom-right
//   aligned, as PyTorch's causal_lower_right). Rows i >= lq_b are padding.
// Rows that see no key (padding rows, causal rows above the diagonal when lq_b > lk_b, or
// every key masked) output 0, lse = -inf, and get zero gradients; PyTorch gives NaN there.
#include <cstdint>

namespace iris::cpu {

struct AttentionParams {
  int64_t B = 0, H = 0, Lq = 0, Lk = 0, D = 0, Dv = 0;
  double scale = 0.0;  // usually 1/sqrt(D)
  bool causal = false;
  const int32_t* q_lens = nullptr;    // [B] or nullptr (= Lq): rows >= q_lens[b] are padding
  const int32_t* k_lens = nullptr;    // [B] or nullptr (= Lk): keys >= k_lens[b] are ignored
  const uint8_t* key_mask = nullptr;  // [B, Lk] contiguous or nullptr: nonzero = masked out
  // Element strides of batch, head and sequence; the feature dimension is contiguous.
  // Gradients share the layout of their forward tensor (dq of q, dout of o, ...). Inputs
  // may broadcast (stride 0); outputs and gradients must not overlap themselves.
  int64_t q_sb = 0, q_sh = 0, q_sl = 0;
  int64_t k_sb = 0, k_sh = 0, k_sl = 0;
  int64_t v_sb = 0, v_sh = 0, v_sl = 0;
  int64_t o_sb = 0, o_sh = 0, o_sl = 0;
};

// Params for contiguous [B, H, L, D] tensors with scale = 1/sqrt(D); strides can then be
// changed for other layouts (e.g. [B, L, H, D] or views of a fused [B, L, 3, H, D] QKV).
AttentionParams attention_params_bhld(int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t D,
                                      int64_t Dv);

// o: layout of p.o_*; lse: [B, H, Lq] contiguous, natural log, or nullptr when the caller
// does not need it (inference). Throws iris::Error on invalid params.
template <class T>
void attention_forward(const AttentionParams& p, const T* q, const T* k, const T* v, T* o, T* lse);

// dout has the layout of o; dq, dk, dv have the layouts of q, k, v and are overwritten
// (every element of the views, padding rows included). lse is the forward's.
template <class T>
void attention_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* o,
                        const T* dout, const T* lse, T* dq, T* dk, T* dv);

extern template void attention_forward<float>(const AttentionParams&, const float*, const float*,
                                              const float*, float*, float*);
extern template void attention_forward<double>(const AttentionParams&, const double*, const double*,
                                               const double*, double*, double*);
extern template void attention_backward<float>(const AttentionParams&, const float*, const float*,
                                               const float*, const float*, const float*,
                                               const float*, float*, float*, float*);
extern template void attention_backward<double>(const AttentionParams&, const double*,
                                                const double*, const double*, const double*,
                                                const double*, const double*, double*, double*,
                                                double*);

// Which tile code the fp32 path runs on this machine: "avx512" or "generic" (fp64 always
// runs "generic").
const char* attention_isa();

}  // namespace iris::cpu

namespace iris::cpu::detail {

// Test and benchmark hook: force the fp32 path to "avx512" or "generic"; nullptr or ""
// restores the automatic choice. Returns false (and changes nothing) when unavailable.
bool attention_force_isa(const char* isa);

}  // namespace iris::cpu::detail
