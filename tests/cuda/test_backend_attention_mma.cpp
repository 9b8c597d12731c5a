// Tensor-core attention (bf16 / fp16, mma.sync), forward: against an fp64 reference on the
// same 16-bit inputs, its error must be at most twice that of the naive computation in the
// same precision (scores, probabilities and output each rounded to 16 bits), for head dims
// 32/64/128, causal, per-sample lengths, key padding and Lq != Lk, on shapes that are not
// multiples of the tiles; short query sets (the packed kernel: several (batch, head) pairs per
// block) and long ones. The backward by the same rule (head dims 32, 64, 128), and autocast.
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "autograd/ops.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::kCuda;
using testing::randn_seeded;

struct Case {
  int64_t B, H, Lq, Lk, D;
  bool causal, lengths, key_mask;
  bool unaligned = false;  // rows not 16-byte aligned: plain loads instead of cp.async
};

// Which (b, i, j) are visible: the kernels' semantics written plainly.
Tensor visibility(const Case& c, const std::vector<int64_t>& lq, const std::vector<int64_t>& lk,
                  const std::vector<uint8_t>& km) {
  std::vector<uint8_t> vis(c.B * c.Lq * c.Lk);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t i = 0; i < c.Lq; ++i)
      for (int64_t j = 0; j < c.Lk; ++j)
        vis[(b * c.Lq + i) * c.Lk + j] =
            i < lq[b] && j < lk[b] && !km[b * c.Lk + j] && (!c.causal || j <= i + (lk[b] - lq[b]));
  return Tensor::from_vector(vis, {c.B, 1, c.Lq, c.Lk}).to(DType::b8);
}

double max_abs_diff_valid_rows(const Tensor& a, const Tensor& b, const Case& c,
                               const std::vector<int64_t>& lq) {
  const auto x = a.to(DType::f64).to(Device::cpu()).contiguous().to_vector<double>();
  const auto y = b.to(DType::f64).to(Device::cpu()).contiguous().to_vector<double>();
  double worst = 0;
  for (int64_t bh = 0; bh < c.B * c.H; ++bh)
    for (int64_t i = 0; i < lq[bh / c.H]; ++i)
      for (int64_t d = 0; d < c.D; ++d) {
        const size_t e = (bh * c.Lq + i) * c.D + d;
        const double diff = std::abs(x[e] - y[e]);
        worst = std::isnan(diff) ? std::numeric_limits<double>::infinity() : std::max(worst, diff);
      }
  return worst;
}

TEST(BackendAttentionMma, ForwardWithinTwiceTheNaive16BitError) {
  IRIS_REQUIRE_CUDA();
  const Case cases[] = {
      {2, 2, 19, 37, 32, false, false, false},     {1, 3, 70, 70, 64, true, false, false},
      {2, 1, 23, 81, 128, false, true, true},      {2, 2, 33, 21, 64, true, true, false},
      {1, 2, 16, 77, 64, false, false, true},      {2, 1, 65, 40, 32, true, false, true},
      {2, 2, 17, 29, 32, true, true, false, true}, {3, 1, 5, 64, 64, false, true, true},
      {2, 3, 77, 197, 64, false, true, false}};
  uint64_t seed = 10;
  for (const Case& c : cases) {
    for (DType dt : {DType::bf16, DType::f16}) {
      SCOPED_TRACE(::testing::Message()
                   << dtype_name(dt) << " B" << c.B << " H" << c.H << " Lq" << c.Lq << " Lk" << c.Lk
                   << " D" << c.D << " causal " << c.causal << " lengths " << c.lengths << " mask "
                   << c.key_mask);
      // Unaligned: q's rows are D + 1 apart on the device (a narrowed view).
      const Tensor q_full =
          randn_seeded({c.B, c.H, c.Lq, c.unaligned ? c.D + 1 : c.D}, ++seed, DType::f32).to(dt);
      const Tensor q = q_full.narrow(3, 0, c.D);
      const Tensor qg = q_full.to(kCuda).narrow(3, 0, c.D);
      const Tensor k = randn_seeded({c.B, c.H, c.Lk, c.D}, ++seed, DType::f32).to(dt);
      const Tensor v = randn_seeded({c.B, c.H, c.Lk, c.D}, ++seed, DType::f32).to(dt);
      std::vector<int64_t> lq(c.B, c.Lq), lk(c.B, c.Lk);
      if (c.lengths) lq[0] = c.Lq - 5, lk[c.B - 1] = c.Lk - 7;
      std::vector<uint8_t> km(c.B * c.Lk, 0);
      if (c.key_mask)
        for (int64_t j = 0; j < c.Lk; ++j) km[j] = j % 5 == 3;  // sample 0 only
      AttentionOptions opt;
      opt.causal = c.causal;
      if (c.lengths) {
        opt.q_lens = Tensor::from_vector(lq, {c.B});
        opt.k_lens = Tensor::from_vector(lk, {c.B});
      }
      if (c.key_mask) opt.key_padding_mask = Tensor::from_vector(km, {c.B, c.Lk}).to(DType::b8);
      AttentionOptions opt_gpu = opt;
      if (c.key_mask) opt_gpu.key_padding_mask = opt.key_padding_mask.to(kCuda);

      const Tensor out =
          scaled_dot_product_attention(q.to(kCuda), k.to(kCuda), v.to(kCuda), opt_gpu);
      EXPECT_EQ(out.dtype(), dt);
      const Tensor q64 = q.to(DType::f64), k64 = k.to(DType::f64), v64 = v.to(DType::f64);
      const Tensor ref = scaled_dot_product_attention(q64, k64, v64, opt);
      // The naive computation in 16 bits.
      const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
      auto round16 = [&](const Tensor& x) { return x.to(dt).to(DType::f64); };
      const Tensor s = round16(matmul(q64, k64.transpose(-1, -2))) * scale;
      const Tensor vis = visibility(c, lq, lk, km);
      const Tensor neg_inf = scalar_like(s, -std::numeric_limits<double>::infinity());
      const Tensor p = round16(softmax(where(vis, s, neg_inf), -1));
      // Rows that see no key give 0 (softmax's NaN there is replaced).
      const Tensor naive = round16(matmul(where(vis, p, zeros_like(p)), v64));
      const double err = max_abs_diff_valid_rows(out, ref, c, lq);
      const double err_naive = max_abs_diff_valid_rows(naive, ref, c, lq);
      EXPECT_LE(err, 2 * err_naive) << "naive " << err_naive;
      EXPECT_GT(err_naive, 0);
      // Padding query rows are zero.
      if (c.lengths) {
        const Tensor pad = out.to(DType::f32).to(Device::cpu()).narrow(0, 0, 1).narrow(2, lq[0], 5);
        EXPECT_EQ(amax(abs(pad)).item(), 0.0);
      }
    }
  }
}

double relative_error(const Tensor& x, const Tensor& ref) {
  const Tensor a = x.to(Device::cpu()).to(DType::f64), r = ref.to(Device::cpu()).to(DType::f64);
  return std::sqrt(sum(square(a - r)).item() / sum(square(r)).item());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  const auto y = b.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  double worst = 0;
  for (size_t e = 0; e < x.size(); ++e) {
    const double diff = std::abs(x[e] - y[e]);
    worst = std::isnan(diff) ? std::numeric_limits<double>::infinity() : std::max(worst, diff);
  }
  return worst;
}

// Backward on tensor cores (head dims 32, 64, 128): each gradient's error against fp64 gradients
// of the same 16-bit inputs is at most twice that of the naive backward in 16 bits (S, P,
// dP, dS and each product rounded to 16 bits when materialised).
TEST(BackendAttentionMma, BackwardWithinTwiceTheNaive16BitError) {
  IRIS_REQUIRE_CUDA();
  const Case cases[] = {{2, 2, 21, 35, 64, true, false, false},
                        {1, 3, 70, 45, 32, false, true, true},
                        {2, 1, 40, 23, 64, true, true, false},
                        {2, 2, 16, 77, 64, false, false, true},
                        // d = 128 (16-row steps, fragments re-read from shared memory): more
                        // keys than a 64-key block, more queries than a 64-row block, Lq > Lk
                        // causal (bottom-right), per-sample lengths and key padding
                        {1, 2, 37, 83, 128, true, false, false},
                        {2, 1, 29, 41, 128, false, true, true},
                        {2, 1, 70, 19, 128, true, true, true}};
  uint64_t seed = 100;
  for (const Case& c : cases) {
    for (DType dt : {DType::bf16, DType::f16}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " Lq" << c.Lq << " Lk" << c.Lk << " D"
                                        << c.D << " causal " << c.causal);
      const Tensor q = randn_seeded({c.B, c.H, c.Lq, c.D}, ++seed, DType::f32).to(dt);
      const Tensor k = randn_seeded({c.B, c.H, c.Lk, c.D}, ++seed, DType::f32).to(dt);
      const Tensor v = randn_seeded({c.B, c.H, c.Lk, c.D}, ++seed, DType::f32).to(dt);
      const Tensor dout = randn_seeded({c.B, c.H, c.Lq, c.D}, ++seed, DType::f32).to(dt);
      std::vector<int64_t> lq(c.B, c.Lq), lk(c.B, c.Lk);
      if (c.lengths) lq[0] = c.Lq - 5, lk[c.B - 1] = c.Lk - 7;
      std::vector<uint8_t> km(c.B * c.Lk, 0);
      if (c.key_mask)
        for (int64_t j = 0; j < c.Lk; ++j) km[j] = j % 5 == 3;
      AttentionOptions opt;
      opt.causal = c.causal;
      if (c.lengths) {
        opt.q_lens = Tensor::from_vector(lq, {c.B});
        opt.k_lens = Tensor::from_vector(lk, {c.B});
      }
      if (c.key_mask) opt.key_padding_mask = Tensor::from_vector(km, {c.B, c.Lk}).to(DType::b8);
      AttentionOptions opt_gpu = opt;
      if (c.key_mask) opt_gpu.key_padding_mask = opt.key_padding_mask.to(kCuda);

      Tensor qg = q.to(kCuda).detach().set_requires_grad(true);
      Tensor kg = k.to(kCuda).detach().set_requires_grad(true);
      Tensor vg = v.to(kCuda).detach().set_requires_grad(true);
      scaled_dot_product_attention(qg, kg, vg, opt_gpu).backward(dout.to(kCuda));
      EXPECT_EQ(qg.grad().dtype(), dt);
      Tensor q64 = q.to(DType::f64).detach().set_requires_grad(true);
      Tensor k64 = k.to(DType::f64).detach().set_requires_grad(true);
      Tensor v64 = v.to(DType::f64).detach().set_requires_grad(true);
      const Tensor o64 = scaled_dot_product_attention(q64, k64, v64, opt);
      o64.backward(dout.to(DType::f64));

      // The naive backward in 16 bits. Padding query rows carry no gradient (as the kernels).
      NoGradGuard ng;
      const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
      auto r16 = [&](const Tensor& x) { return x.to(dt).to(DType::f64); };
      const Tensor Q = q.to(DType::f64), K = k.to(DType::f64), V = v.to(DType::f64);
      const Tensor dO = dout.to(DType::f64);
      const Tensor vis = visibility(c, lq, lk, km);
      const Tensor s = r16(matmul(Q, K.transpose(-1, -2))) * scale;
      const Tensor neg_inf = scalar_like(s, -std::numeric_limits<double>::infinity());
      const Tensor P = r16(where(vis, softmax(where(vis, s, neg_inf), -1), zeros_like(s)));
      const Tensor O = r16(matmul(P, V));
      const Tensor dV = r16(matmul(P.transpose(-1, -2), dO));
      const Tensor dP = r16(matmul(dO, V.transpose(-1, -2)));
      const Tensor Di = sum(mul(dO, O), {-1}, true);
      const Tensor dS = r16(mul(P, sub(dP, Di)));
      const Tensor dQ = r16(matmul(dS, K)) * scale;
      const Tensor dK = r16(matmul(dS.transpose(-1, -2), Q)) * scale;
      const std::pair<const char*, std::array<Tensor, 3>> grads[] = {
          {"dq", {qg.grad(), q64.grad(), dQ}},
          {"dk", {kg.grad(), k64.grad(), dK}},
          {"dv", {vg.grad(), v64.grad(), dV}}};
      for (const auto& [name, g] : grads) {
        const double err = max_abs_diff(g[0], g[1]), err_naive = max_abs_diff(g[2], g[1]);
        EXPECT_LE(err, 2 * err_naive) << name << ": naive " << err_naive;
        EXPECT_GT(err_naive, 0) << name;
      }
    }
  }
}

// Under autocast, float32 attention on the device runs on the tensor cores and hands back
// float32 (and float32 gradients).
TEST(BackendAttentionMma, AutocastRunsFloat32AttentionInBf16) {
  IRIS_REQUIRE_CUDA();
  const Tensor q = randn_seeded({1, 3, 30, 32}, 61, DType::f32);
  const Tensor k = randn_seeded({1, 3, 45, 32}, 62, DType::f32);
  const Tensor v = randn_seeded({1, 3, 45, 32}, 63, DType::f32);
  Tensor qg = q.to(kCuda).detach().set_requires_grad(true);
  Tensor out;
  {
    AutocastGuard autocast(DType::bf16);
    out = scaled_dot_product_attention(qg, k.to(kCuda), v.to(kCuda));
  }
  EXPECT_EQ(out.dtype(), DType::f32);
  const auto r16 = [](const Tensor& x) { return x.to(DType::bf16).to(DType::f64); };
  const Tensor ref = scaled_dot_product_attention(r16(q), r16(k), r16(v));
  EXPECT_LT(relative_error(out, ref), 8e-3);
  EXPECT_GT(relative_error(out, scaled_dot_product_attention(q, k, v)), 1e-5);  // not fp32
  out.backward(randn_seeded(out.shape(), 64, DType::f32).to(kCuda));
  EXPECT_EQ(qg.grad().dtype(), DType::f32);
}

}  // namespace
}  // namespace iris
