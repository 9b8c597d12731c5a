#include "nn/layers_attention.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "nn/init.h"

namespace iris::nn {
namespace {

std::string describe(const Tensor& t) { return t.defined() ? t.desc() : "undefined"; }

std::vector<int64_t> lengths_or(const Tensor& lens, int64_t B, int64_t full) {
  if (!lens.defined()) return std::vector<int64_t>(B, full);
  return lens.to_vector<int64_t>();
}

// bool [B, 1, Lq, Lk]: true where query i of sample b may see key j (the kernel's rule).
Tensor visibility(const MhaOptions& opt, int64_t B, int64_t Lq, int64_t Lk, Device device) {
  const std::vector<int64_t> ql = lengths_or(opt.q_lens, B, Lq), kl = lengths_or(opt.k_lens, B, Lk);
  std::vector<uint8_t> pad;
  if (opt.key_padding_mask.defined()) pad = opt.key_padding_mask.to(DType::u8).to_vector<uint8_t>();
  std::vector<uint8_t> vis(static_cast<size_t>(B * Lq * Lk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t j = 0; j < Lk; ++j) {
        bool v = i < ql[b] && j < kl[b];
        if (opt.causal) v = v && j <= i + (kl[b] - ql[b]);
        if (!pad.empty()) v = v && !pad[b * Lk + j];
        vis[(b * Lq + i) * Lk + j] = v;
      }
  return Tensor::from_vector(vis, {B, 1, Lq, Lk}).to(DType::b8).to(device);
}

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t E, int64_t H, bool bias, Generator* gen)
    : Module("MultiheadAttention"), embed_dim(E), num_heads(H), head_dim(H > 0 ? E / H : 0) {
  IRIS_CHECK(E > 0 && H > 0 && E % H == 0, "MultiheadAttention: embed_dim ", E,
             " must be a positive multiple of num_heads ", H);
  in_proj_weight = register_parameter("in_proj_weight", empty({3 * E, E}));
  if (bias) in_proj_bias = register_parameter("in_proj_bias", empty({3 * E}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(E, E, bias, gen));
  init::xavier_uniform_(in_proj_weight, 1.0, gen);
  if (bias) {
    init::zeros_(in_proj_bias);
    init::zeros_(out_proj->bias);
  }
}

Tensor MultiheadAttention::project(const Tensor& x, int64_t which) const {
  const Tensor w = in_proj_weight.narrow(0, which * embed_dim, embed_dim);
  const Tensor b =
      in_proj_bias.defined() ? in_proj_bias.narrow(0, which * embed_dim, embed_dim) : Tensor();
  return linear(x, w, b).view({x.size(0), x.size(1), num_heads, head_dim}).transpose(1, 2);
}

MhaOutput MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                      const MhaOptions& opt) {
  IRIS_CHECK(query.defined() && key.defined() && value.defined() && query.dim() == 3 &&
                 key.dim() == 3 && value.dim() == 3 && query.size(2) == embed_dim &&
                 key.size(2) == embed_dim && value.size(2) == embed_dim &&
                 key.size(0) == query.size(0) && value.size(0) == query.size(0) &&
                 key.size(1) == value.size(1),
             repr(), ": expected query [B, Lq, ", embed_dim, "], key and value [B, Lk, ", embed_dim,
             "] (batch_first), got ", describe(query), ", ", describe(key), ", ", describe(value));
  const int64_t B = query.size(0), Lq = query.size(1), Lk = key.size(1);
  const Tensor q = project(query, 0), k = project(key, 1), v = project(value, 2);
  AttentionOptions ao;
  ao.causal = opt.causal;
  ao.q_lens = opt.q_lens;
  ao.k_lens = opt.k_lens;
  ao.key_padding_mask = opt.key_padding_mask;
  const Tensor attn = scaled_dot_product_attention(q, k, v, ao);  // [B, H, Lq, D]
  MhaOutput out;
  out.output = out_proj->forward(attn.transpose(1, 2).reshape({B, Lq, embed_dim}));
  if (opt.need_weights) {
    const Tensor vis = visibility(opt, B, Lq, Lk, query.device());
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    Tensor scores = matmul(q, k.transpose(2, 3)) * scale;
    scores = where(vis, scores, scalar_like(scores, -std::numeric_limits<double>::infinity()));
    Tensor w = where(vis, softmax(scores, -1), scalar_like(scores, 0.0));
    out.weights = opt.average_attn_weights ? mean(w, {1}) : w;
  }
  return out;
}

std::string MultiheadAttention::extra_repr() const {
  return detail::cat("embed_dim=", embed_dim, ", num_heads=", num_heads,
                     ", bias=", in_proj_bias.defined() ? "true" : "false", ", batch_first=true");
}

}  // namespace iris::nn
