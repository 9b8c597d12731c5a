// Backend comparison for fused attention: scaled_dot_product_attention on the CUDA device
// (emulated in CI, real under `ctest -L cuda`) against the CPU, forward and backward, with
// causal masking, per-sample lengths, key masks, Lq != Lk, strided layouts and odd sizes
// (not multiples of the 16/8-row query tiles or the 32-key tiles).
#include <optional>

#include "autograd/attention.h"
#include "kernels/cuda/runtime.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

using testing::randn_seeded;

using testing::kCuda;

struct Case {
  const char* name = "";
  int64_t B = 2, H = 2, Lq = 37, Lk = 45, D = 16, Dv = 16;
  bool causal = false;
  std::vector<int32_t> q_lens, k_lens;
  std::vector<uint8_t> key_mask;  // [B, Lk] or empty
  bool blhd = false;              // q, k, v as [B, L, H, D] memory viewed [B, H, L, D]
  DType dtype = DType::f32;
};

AttentionOptions options_on(const Case& c, Device dev) {
  AttentionOptions opt;
  opt.causal = c.causal;
  if (!c.q_lens.empty()) opt.q_lens = Tensor::from_vector<int32_t>(c.q_lens, {c.B}).to(dev);
  if (!c.k_lens.empty()) opt.k_lens = Tensor::from_vector<int32_t>(c.k_lens, {c.B}).to(dev);
  if (!c.key_mask.empty())
    opt.key_padding_mask =
        Tensor::from_vector<uint8_t>(c.key_mask, {c.B, c.Lk}).to(DType::b8).to(dev);
  return opt;
}

Tensor input(const Case& c, int64_t L, int64_t D, uint64_t seed) {
  if (c.blhd) return randn_seeded({c.B, L, c.H, D}, seed, c.dtype).permute({0, 2, 1, 3});
  return randn_seeded({c.B, c.H, L, D}, seed, c.dtype);
}

void compare(const Case& c) {
  SCOPED_TRACE(c.name);
  const double tol = c.dtype == DType::f64 ? 1e-10 : 1e-4;
  const Tensor q = input(c, c.Lq, c.D, 1), k = input(c, c.Lk, c.D, 2), v = input(c, c.Lk, c.Dv, 3);
  // The device copies keep the strided layout ([B, L, H, D] memory) when blhd is set.
  auto to_dev = [&](const Tensor& t) {
    return c.blhd ? t.permute({0, 2, 1, 3}).contiguous().to(kCuda).permute({0, 2, 1, 3})
                  : t.to(kCuda);
  };
  Tensor qc = q.detach().set_requires_grad(true), kc = k.detach().set_requires_grad(true),
         vc = v.detach().set_requires_grad(true);
  Tensor qg = to_dev(q).detach().set_requires_grad(true),
         kg = to_dev(k).detach().set_requires_grad(true),
         vg = to_dev(v).detach().set_requires_grad(true);
  Tensor oc = scaled_dot_product_attention(qc, kc, vc, options_on(c, Device::cpu()));
  Tensor og = scaled_dot_product_attention(qg, kg, vg, options_on(c, kCuda));
  ASSERT_TRUE(og.device().is_cuda());
  EXPECT_CLOSE(og, oc, tol, tol) << "forward";
  const Tensor dout = randn_seeded(oc.shape(), 4, c.dtype);
  oc.backward(dout);
  og.backward(dout.to(kCuda));
  EXPECT_CLOSE(qg.grad(), qc.grad(), tol, tol) << "dq";
  EXPECT_CLOSE(kg.grad(), kc.grad(), tol, tol) << "dk";
  EXPECT_CLOSE(vg.grad(), vc.grad(), tol, tol) << "dv";
}

TEST(BackendAttention, PlainBothDtypes) {
  IRIS_REQUIRE_CUDA();
  for (DType dt : {DType::f32, DType::f64}) {
    Case c;
    c.name = "plain";
    c.dtype = dt;
    compare(c);
  }
}

TEST(BackendAttention, CausalLqNeLk) {
  IRIS_REQUIRE_CUDA();
  Case a;
  a.name = "causal Lq < Lk";
  a.causal = true;
  compare(a);
  // Lq > Lk: the first Lq - Lk rows see no key (0 output, zero gradient).
  Case b;
  b.name = "causal Lq > Lk";
  b.causal = true, b.Lq = 45, b.Lk = 29, b.dtype = DType::f64;
  compare(b);
}

TEST(BackendAttention, LengthsAndKeyMaskD64) {
  IRIS_REQUIRE_CUDA();
  Case c;
  c.name = "lengths + mask, D=64";
  c.D = 64, c.Dv = 64, c.B = 2, c.H = 1;
  c.q_lens = {37, 20};
  c.k_lens = {45, 11};
  c.key_mask.assign(c.B * c.Lk, 0);
  for (int64_t j = 0; j < c.Lk; j += 3) c.key_mask[j] = 1;    // sample 0: every third key
  for (int64_t j = 0; j < 11; ++j) c.key_mask[c.Lk + j] = 1;  // sample 1: all its keys
  compare(c);
  c.name = "lengths + mask + causal, D=64";
  c.causal = true;
  c.key_mask[c.Lk + 4] = 0;
  compare(c);
}

TEST(BackendAttention, StridedLayoutAndDvNeD) {
  IRIS_REQUIRE_CUDA();
  Case c;
  c.name = "[B, L, H, D] views, Dv != D";
  c.blhd = true, c.H = 3, c.Lq = 19, c.Lk = 33, c.D = 16, c.Dv = 24, c.causal = true;
  compare(c);
}

TEST(BackendAttention, HeadDim128) {
  IRIS_REQUIRE_CUDA();
  Case c;
  c.name = "D = Dv = 128 (the largest head)";
  c.B = 1, c.H = 1, c.Lq = 9, c.Lk = 40, c.D = 128, c.Dv = 128, c.causal = true;
  compare(c);
}

TEST(BackendAttention, ErrorsNameTheOp) {
  IRIS_REQUIRE_CUDA();
  const Tensor q = randn_seeded({1, 1, 3, 160}, 5, DType::f32).to(kCuda);
  EXPECT_IRIS_ERROR(scaled_dot_product_attention(q, q, q), "head dims up to 128");
}

}  // namespace
}  // namespace iris
