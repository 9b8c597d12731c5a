// MultiheadAttention and TransformerBlock: outputs and attention weights against a
// materialised-softmax composition of ops and a naive loop (self, causal, cross with
// key padding, per-sample lengths, Lq != Lk), float64 gradchecks of inputs and every
// parameter, PyTorch's initialisation, bad inputs.
#include <cmath>
#include <limits>

#include "nn/layers.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

using testing::param;
using testing::randn_seeded;

struct MaskSpec {
  bool causal = false;
  std::vector<int64_t> q_lens = {}, k_lens = {};  // empty: full
  std::vector<uint8_t> key_pad = {};              // empty: none; [B * Lk], 1 = padding
};

// bool [B, 1, Lq, Lk]: the visibility rule written plainly.
Tensor visible(const MaskSpec& s, int64_t B, int64_t Lq, int64_t Lk) {
  std::vector<uint8_t> v(B * Lq * Lk);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t j = 0; j < Lk; ++j) {
        const int64_t ql = s.q_lens.empty() ? Lq : s.q_lens[b],
                      kl = s.k_lens.empty() ? Lk : s.k_lens[b];
        bool ok = i < ql && j < kl;
        if (s.causal) ok = ok && j - i <= kl - ql;
        if (!s.key_pad.empty()) ok = ok && !s.key_pad[b * Lk + j];
        v[(b * Lq + i) * Lk + j] = ok;
      }
  return Tensor::from_vector(v, {B, 1, Lq, Lk}).to(DType::b8);
}

MhaOptions options_of(const MaskSpec& s, int64_t B, int64_t Lk, bool need_weights) {
  MhaOptions o;
  o.causal = s.causal;
  if (!s.q_lens.empty()) o.q_lens = Tensor::from_vector(s.q_lens, {B});
  if (!s.k_lens.empty()) o.k_lens = Tensor::from_vector(s.k_lens, {B});
  if (!s.key_pad.empty())
    o.key_padding_mask = Tensor::from_vector(s.key_pad, {B, Lk}).to(DType::b8);
  o.need_weights = need_weights;
  return o;
}

// The attention written with a materialised score matrix; `weights` gets [B, H, Lq, Lk].
Tensor mha_reference(const MultiheadAttention& m, const Tensor& query, const Tensor& key,
                     const Tensor& value, const Tensor& vis, Tensor* weights) {
  const int64_t B = query.size(0), Lq = query.size(1), Lk = key.size(1), E = m.embed_dim,
                H = m.num_heads, D = E / H;
  auto proj = [&](const Tensor& x, int64_t i, int64_t L) {
    return linear(x, m.in_proj_weight.narrow(0, i * E, E), m.in_proj_bias.narrow(0, i * E, E))
        .reshape({B, L, H, D})
        .permute({0, 2, 1, 3});
  };
  const Tensor q = proj(query, 0, Lq), k = proj(key, 1, Lk), v = proj(value, 2, Lk);
  Tensor s = matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(D));
  s = where(vis, s, scalar_like(s, -std::numeric_limits<double>::infinity()));
  const Tensor p = where(vis, softmax(s, -1), scalar_like(s, 0.0));
  if (weights) *weights = p;
  const Tensor o = matmul(p, v).permute({0, 2, 1, 3}).reshape({B, Lq, E});
  return linear(o, m.out_proj->weight, m.out_proj->bias);
}

void randomise(Module& m, uint64_t seed) {
  NoGradGuard ng;
  for (const Tensor& p : m.parameters()) copy_(p, randn_seeded(p.shape(), seed++, p.dtype()) * 0.5);
}

TEST(MultiheadAttention, ParametersAndInitialisationAsTorch) {
  Generator g(1);
  MultiheadAttention mha(48, 4, true, &g);
  const auto sd = mha.state_dict();
  ASSERT_EQ(sd.size(), 4u);
  EXPECT_EQ(sd[0].first, "in_proj_weight");
  EXPECT_EQ(sd[0].second.shape(), (Shape{144, 48}));
  EXPECT_EQ(sd[1].first, "in_proj_bias");
  EXPECT_EQ(sd[2].first, "out_proj.weight");
  EXPECT_EQ(sd[3].first, "out_proj.bias");
  const double xavier = std::sqrt(6.0 / (48 + 144));
  EXPECT_LE(amax(abs(mha.in_proj_weight)).item(), xavier);
  EXPECT_GT(amax(abs(mha.in_proj_weight)).item(), 0.95 * xavier);
  EXPECT_EQ(amax(abs(mha.in_proj_bias)).item(), 0.0);
  EXPECT_EQ(amax(abs(mha.out_proj->bias)).item(), 0.0);
  EXPECT_LE(amax(abs(mha.out_proj->weight)).item(), 1 / std::sqrt(48.0));
  MultiheadAttention nobias(8, 2, false, &g);
  EXPECT_EQ(nobias.state_dict().size(), 2u);
}

TEST(MultiheadAttention, SelfAttentionMatchesNaiveLoop) {
  Generator g(2);
  const int64_t B = 2, L = 5, E = 6, H = 2, D = 3;
  MultiheadAttention mha(E, H, true, &g);
  mha.to(DType::f64);
  randomise(mha, 10);
  const Tensor x = randn_seeded({B, L, E}, 3);
  const Tensor y = mha.forward(x);
  const auto xv = x.to_vector<double>(), W = mha.in_proj_weight.to_vector<double>(),
             bias = mha.in_proj_bias.to_vector<double>(),
             Wo = mha.out_proj->weight.to_vector<double>(),
             bo = mha.out_proj->bias.to_vector<double>();
  std::vector<double> ref(B * L * E);
  for (int64_t b = 0; b < B; ++b) {
    // qkv[t][r] for r in [0, 3E)
    std::vector<double> qkv(L * 3 * E);
    for (int64_t t = 0; t < L; ++t)
      for (int64_t r = 0; r < 3 * E; ++r) {
        double s = bias[r];
        for (int64_t c = 0; c < E; ++c) s += W[r * E + c] * xv[(b * L + t) * E + c];
        qkv[t * 3 * E + r] = s;
      }
    std::vector<double> heads(L * E);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> sc(L);
        double mx = -1e300, tot = 0;
        for (int64_t j = 0; j < L; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d)
            s += qkv[i * 3 * E + h * D + d] * qkv[j * 3 * E + E + h * D + d];
          sc[j] = s / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, sc[j]);
        }
        for (double& s : sc) tot += (s = std::exp(s - mx));
        for (int64_t d = 0; d < D; ++d) {
          double o = 0;
          for (int64_t j = 0; j < L; ++j) o += sc[j] / tot * qkv[j * 3 * E + 2 * E + h * D + d];
          heads[i * E + h * D + d] = o;
        }
      }
    for (int64_t i = 0; i < L; ++i)
      for (int64_t r = 0; r < E; ++r) {
        double s = bo[r];
        for (int64_t c = 0; c < E; ++c) s += Wo[r * E + c] * heads[i * E + c];
        ref[(b * L + i) * E + r] = s;
      }
  }
  EXPECT_CLOSE(y, Tensor::from_vector(ref, {B, L, E}), 1e-12, 1e-12);
}

struct MhaCase {
  const char* name;
  int64_t B, Lq, Lk, E, H;
  MaskSpec mask;
  bool self;
};

std::vector<MhaCase> mha_cases() {
  return {
      {"self", 2, 5, 5, 8, 2, {}, true},
      {"self_causal", 2, 7, 7, 6, 3, {.causal = true}, true},
      {"self_causal_lengths",
       3,
       6,
       6,
       4,
       2,
       {.causal = true, .q_lens = {6, 2, 4}, .k_lens = {6, 2, 4}},
       true},
      {"cross_key_padding",
       2,
       3,
       9,
       8,
       2,
       {.key_pad = {0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1}},
       false},
      {"cross_lengths", 3, 4, 6, 4, 1, {.q_lens = {4, 1, 3}, .k_lens = {6, 3, 1}}, false},
      {"cross_causal_bottom_right", 2, 3, 5, 4, 2, {.causal = true}, false},
      {"cross_fully_masked_row", 2, 2, 3, 4, 2, {.key_pad = {1, 1, 1, 0, 1, 0}}, false},
  };
}

TEST(MultiheadAttention, OutputsAndWeightsMatchComposition) {
  for (const MhaCase& c : mha_cases()) {
    SCOPED_TRACE(c.name);
    Generator g(3);
    MultiheadAttention mha(c.E, c.H, true, &g);
    mha.to(DType::f64);
    randomise(mha, 20);
    const Tensor q = randn_seeded({c.B, c.Lq, c.E}, 4);
    const Tensor kv = c.self ? q : randn_seeded({c.B, c.Lk, c.E}, 5);
    // A distinct value tensor for cross cases exercises three separate projections.
    const Tensor v = c.self ? q : randn_seeded({c.Lk, c.B, c.E}, 6).transpose(0, 1);
    const Tensor vis = visible(c.mask, c.B, c.Lq, c.Lk);
    Tensor w_ref;
    const Tensor ref = mha_reference(mha, q, kv, v, vis, &w_ref);
    MhaOptions opt = options_of(c.mask, c.B, c.Lk, true);
    const MhaOutput out = mha.forward(q, kv, v, opt);
    EXPECT_CLOSE(out.output, ref, 1e-11, 1e-12);
    EXPECT_CLOSE(out.weights, mean(w_ref, {1}), 1e-12, 1e-14);
    opt.average_attn_weights = false;
    EXPECT_CLOSE(mha.forward(q, kv, v, opt).weights, w_ref, 1e-12, 1e-14);
    opt.need_weights = false;
    EXPECT_FALSE(mha.forward(q, kv, v, opt).weights.defined());
  }
}

TEST(MultiheadAttention, PaddedQueryRowsHoldTheOutputBias) {
  Generator g(4);
  MultiheadAttention mha(4, 2, true, &g);
  mha.to(DType::f64);
  randomise(mha, 30);
  MhaOptions opt;
  opt.q_lens = Tensor::from_vector<int64_t>({1}, {1});
  const Tensor x = randn_seeded({1, 3, 4}, 1);
  const Tensor y = mha.forward(x, x, x, opt).output;
  EXPECT_CLOSE(y.select(1, 2).reshape({4}), mha.out_proj->bias, 0, 1e-15);
}

TEST(MultiheadAttention, Gradchecks) {
  for (const MhaCase& c : {mha_cases()[2], mha_cases()[3]}) {
    SCOPED_TRACE(c.name);
    Generator g(5);
    const int64_t B = c.B, Lq = std::min<int64_t>(c.Lq, 4), Lk = c.self ? Lq : c.Lk, E = 4, H = 2;
    MaskSpec mask = c.mask;
    if (c.self) mask.q_lens = mask.k_lens = {4, 2, 3};
    MultiheadAttention mha(E, H, true, &g);
    mha.to(DType::f64);
    randomise(mha, 40);
    const Tensor q = param({B, Lq, E}, 1), kv = c.self ? q : param({B, Lk, E}, 2);
    std::vector<Tensor> inputs = {q};
    if (!c.self) inputs.push_back(kv);
    for (const Tensor& p : mha.parameters()) inputs.push_back(p);
    const MhaOptions opt = options_of(mask, B, Lk, true);
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>&) {
          const MhaOutput o = mha.forward(q, kv, kv, opt);
          return std::vector<Tensor>{o.output, o.weights};
        },
        inputs);
  }
}

// torch_ref.Block.forward written with ops and the reference attention.
Tensor block_reference(TransformerBlock& blk, const Tensor& x, const Tensor& mem) {
  const int64_t B = x.size(0), L = x.size(1);
  auto ln = [](const LayerNorm& m, const Tensor& t) {
    return layer_norm(t, m.normalized_shape, m.weight, m.bias);
  };
  Tensor h = ln(*blk.ln1, x);
  Tensor y =
      x + mha_reference(*blk.attn, h, h, h, visible({.causal = blk.causal}, B, L, L), nullptr);
  if (blk.cross) {
    h = ln(*blk.lnx, y);
    y = y + mha_reference(*blk.xattn, h, mem, mem, visible({}, B, L, mem.size(1)), nullptr);
  }
  const Linear &l0 = blk.mlp->at<Linear>(0), &l2 = blk.mlp->at<Linear>(2);
  return y + linear(gelu(linear(ln(*blk.ln2, y), l0.weight, l0.bias)), l2.weight, l2.bias);
}

TEST(TransformerBlock, MatchesCompositionAndGradchecks) {
  for (bool cross : {false, true}) {
    SCOPED_TRACE(cross ? "decoder (cross, causal)" : "encoder");
    Generator g(6);
    TransformerBlock blk(6, 2, 10, cross, /*causal=*/cross, &g);
    blk.to(DType::f64);
    randomise(blk, 50);
    const Tensor x = randn_seeded({2, 5, 6}, 1),
                 mem = cross ? randn_seeded({2, 7, 6}, 2) : Tensor();
    EXPECT_CLOSE(blk.forward(x, mem), block_reference(blk, x, mem), 1e-11, 1e-12);
    TransformerBlock small(4, 2, 3, cross, cross, &g);
    small.to(DType::f64);
    randomise(small, 60);
    const Tensor xs = param({2, 3, 4}, 3), ms = cross ? param({2, 2, 4}, 4) : Tensor();
    std::vector<Tensor> inputs = {xs};
    if (cross) inputs.push_back(ms);
    for (const Tensor& p : small.parameters()) inputs.push_back(p);
    EXPECT_GRADCHECK(
        [&](const std::vector<Tensor>&) { return std::vector<Tensor>{small.forward(xs, ms)}; },
        inputs);
  }
}

TEST(TransformerBlock, LengthsMaskKeysAndMemory) {
  Generator g(7);
  TransformerBlock blk(4, 2, 8, true, true, &g);
  blk.to(DType::f64);
  randomise(blk, 70);
  const Tensor x = randn_seeded({2, 4, 4}, 1), mem = randn_seeded({2, 5, 4}, 2);
  BlockOptions opt;
  opt.lengths = Tensor::from_vector<int64_t>({4, 2}, {2});
  opt.mem_lengths = Tensor::from_vector<int64_t>({5, 3}, {2});
  const Tensor y = blk.forward(x, mem, opt);
  // Sample 1 alone, truncated to its lengths, gives the same valid rows.
  const Tensor y1 =
      blk.forward(x.narrow(0, 1, 1).narrow(1, 0, 2), mem.narrow(0, 1, 1).narrow(1, 0, 3));
  EXPECT_CLOSE(y.narrow(0, 1, 1).narrow(1, 0, 2), y1, 1e-12, 1e-13);
  // Key padding masks are equivalent to lengths for the keys.
  BlockOptions masks;
  masks.lengths = opt.lengths;
  masks.mem_key_padding_mask =
      Tensor::from_vector<uint8_t>({0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, {2, 5}).to(DType::b8);
  EXPECT_CLOSE(blk.forward(x, mem, masks).narrow(0, 1, 1).narrow(1, 0, 2), y1, 1e-12, 1e-13);
}

TEST(AttentionLayers, BadInputsNameTheLayer) {
  MultiheadAttention mha(8, 2);
  EXPECT_IRIS_ERROR(MultiheadAttention(10, 3), "multiple of num_heads");
  EXPECT_IRIS_ERROR(mha.forward(zeros({2, 3, 6})), "MultiheadAttention(embed_dim=8");
  EXPECT_IRIS_ERROR(mha.forward(zeros({2, 3, 8}), zeros({2, 4, 8}), zeros({2, 5, 8})),
                    "key and value [B, Lk, 8]");
  MhaOptions bad;
  bad.key_padding_mask = zeros({2, 3});
  EXPECT_IRIS_ERROR(mha.forward(zeros({2, 3, 8}), zeros({2, 4, 8}), zeros({2, 4, 8}), bad),
                    "key_padding_mask");
  TransformerBlock dec(8, 2, 16, true, true);
  EXPECT_IRIS_ERROR(dec.forward(zeros({1, 2, 8})), "needs a memory");
  TransformerBlock enc(8, 2, 16);
  EXPECT_IRIS_ERROR(enc.forward(zeros({1, 2, 8}), zeros({1, 3, 8})), "without cross-attention");
}

}  // namespace
}  // namespace iris::nn
