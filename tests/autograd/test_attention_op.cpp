// scaled_dot_product_attention: masks, lengths, layouts, gradients.
#include <cmath>
#include <limits>

#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::param;
using testing::randn_seeded;

// softmax(scale q k^T + bias) v with an explicit [B, 1|H, Lq, Lk] additive bias (0 / -inf),
// composed from plain ops; rows with no visible key come out as 0 like the fused op.
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor s = add(matmul(q, k.transpose(-1, -2)) * scale, bias);
  Tensor mx = amax(s, {-1}, true);
  mx = where(eq(mx, scalar_like(mx, -INFINITY)), zeros_like(mx), mx);
  Tensor e = exp(sub(s, mx));
  Tensor denom = sum(e, {-1}, true);
  denom = where(eq(denom, zeros_like(denom)), ones_like(denom), denom);
  return matmul(div(e, denom), v);
}

// 0 where query i of sample b sees key j, -inf elsewhere.
Tensor visibility_bias(int64_t B, int64_t Lq, int64_t Lk, bool causal,
                       const std::vector<int32_t>& qlen, const std::vector<int32_t>& klen,
                       const std::vector<int>& kmask) {
  std::vector<double> b(B * Lq * Lk);
  for (int64_t s = 0; s < B; ++s)
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t j = 0; j < Lk; ++j) {
        const int64_t lq = qlen.empty() ? Lq : qlen[s], lk = klen.empty() ? Lk : klen[s];
        bool vis = i < lq && j < lk && (kmask.empty() || !kmask[s * Lk + j]);
        if (causal && j > i + (lk - lq)) vis = false;
        b[(s * Lq + i) * Lk + j] = vis ? 0.0 : -INFINITY;
      }
  return Tensor::from_vector(b, {B, 1, Lq, Lk});
}

TEST(AttentionOp, MatchesNaiveAcrossMasks) {
  const int64_t B = 2, H = 3, D = 8;
  struct Case {
    int64_t Lq, Lk;
    bool causal;
    std::vector<int32_t> qlen, klen;
    std::vector<int> kmask;
  };
  std::vector<int> holes(2 * 11, 0);
  holes[3] = holes[4] = holes[11 + 0] = 1;
  const std::vector<Case> cases = {
      {5, 5, false, {}, {}, {}},     {5, 5, true, {}, {}, {}},
      {3, 11, true, {}, {}, {}},     {4, 11, false, {2, 4}, {7, 11}, {}},
      {4, 11, false, {}, {}, holes}, {6, 11, true, {6, 3}, {9, 11}, {}},
  };
  for (const Case& c : cases) {
    Tensor q = randn_seeded({B, H, c.Lq, D}, 1), k = randn_seeded({B, H, c.Lk, D}, 2);
    Tensor v = randn_seeded({B, H, c.Lk, 5}, 3);
    AttentionOptions opt;
    opt.causal = c.causal;
    if (!c.qlen.empty()) opt.q_lens = Tensor::from_vector<int32_t>(c.qlen, {B});
    if (!c.klen.empty()) opt.k_lens = Tensor::from_vector<int32_t>(c.klen, {B});
    if (!c.kmask.empty()) {
      std::vector<uint8_t> m(c.kmask.begin(), c.kmask.end());
      opt.key_padding_mask = Tensor::from_vector<uint8_t>(m, {B, c.Lk}).to(DType::b8);
    }
    Tensor out = scaled_dot_product_attention(q, k, v, opt);
    ASSERT_EQ(out.shape(), (Shape{B, H, c.Lq, 5}));
    Tensor ref = naive_attention(q, k, v, visibility_bias(B, c.Lq, c.Lk, c.causal, c.qlen,
                                                          c.klen, c.kmask));
    EXPECT_CLOSE(out, ref, 1e-12, 1e-12) << "Lq " << c.Lq << " Lk " << c.Lk;
  }
}

TEST(AttentionOp, LayoutsAndFloat32) {
  // [B, L, H, D] projections viewed as [B, H, L, D] need no copy.
  Tensor q = randn_seeded({2, 7, 3, 16}, 4, DType::f32).transpose(1, 2);
  Tensor k = randn_seeded({2, 9, 3, 16}, 5, DType::f32).transpose(1, 2);
  Tensor v = randn_seeded({2, 9, 3, 16}, 6, DType::f32).transpose(1, 2);
  Tensor out = scaled_dot_product_attention(q, k, v);
  Tensor ref = naive_attention(q.to(DType::f64), k.to(DType::f64), v.to(DType::f64),
                               zeros({1}, DType::f64));
  EXPECT_CLOSE(out, ref, 1e-5, 1e-6);
  // the output is [B, Lq, H, Dv] in memory: merging heads is a view
  EXPECT_EQ(out.transpose(1, 2).reshape({2, 7, 48}).storage(), out.storage());
}

TEST(AttentionOp, Gradchecks) {
  auto one = [](const Tensor& t) { return std::vector<Tensor>{t}; };
  Tensor q = param({2, 2, 3, 4}, 10), k = param({2, 2, 6, 4}, 11), v = param({2, 2, 6, 3}, 12);
  AttentionOptions causal;
  causal.causal = true;
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return one(scaled_dot_product_attention(in[0], in[1], in[2], causal));
      },
      {q, k, v});
  AttentionOptions lens;
  lens.q_lens = Tensor::from_vector<int32_t>({3, 2}, {2});
  lens.k_lens = Tensor::from_vector<int32_t>({4, 6}, {2});
  lens.causal = true;
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return one(scaled_dot_product_attention(in[0], in[1], in[2], lens));
      },
      {q, k, v});
  AttentionOptions masked;
  masked.key_padding_mask =
      Tensor::from_vector<uint8_t>({0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1}, {2, 6}).to(DType::b8);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        // sample 1 sees no key at all: its rows are 0 with zero gradient
        return one(scaled_dot_product_attention(in[0], in[1], in[2], masked));
      },
      {q, k, v});
  // strided inputs and a non-default scale
  Tensor qs = param({2, 3, 2, 4}, 13);
  AttentionOptions sc;
  sc.scale = 0.3;
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        return one(scaled_dot_product_attention(in[0].transpose(1, 2), in[1], in[2], sc));
      },
      {qs, k, v});
}

TEST(AttentionOp, Errors) {
  Tensor q = randn_seeded({1, 2, 3, 4}, 1), k = randn_seeded({1, 2, 5, 4}, 2);
  EXPECT_IRIS_ERROR(scaled_dot_product_attention(q, k, randn_seeded({1, 2, 4, 4}, 3)),
                    "scaled_dot_product_attention: shapes");
  EXPECT_IRIS_ERROR(scaled_dot_product_attention(q.flatten(0, 1), k, k), "expected q");
  AttentionOptions bad;
  bad.k_lens = Tensor::from_vector<int32_t>({6}, {1});
  EXPECT_IRIS_ERROR(scaled_dot_product_attention(q, k, k, bad), "k_lens value 6");
  AttentionOptions badmask;
  badmask.key_padding_mask = zeros({1, 4}, DType::b8);
  EXPECT_IRIS_ERROR(scaled_dot_product_attention(q, k, k, badmask), "key_padding_mask");
}

}  // namespace
}  // namespace iris
