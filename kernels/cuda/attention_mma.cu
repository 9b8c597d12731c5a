// Fused attention on tensor cores (FlashAttention-2), bf16 or fp16 in and out, fp32
// accumulation and softmax statistics, lse saved in fp32. Same semantics as the fp32 path
// (attention.cu): per-sample q_lens / k_lens, key_mask, bottom-right causal, rows that see
// no key give 0 and lse = -inf.
//
// A warp owns 16 query rows, whose Q fragments stay in registers (WarpAttention). Key/value
// tiles are staged in shared memory by cp.async (zero-filled past the end); per tile the warp
// computes S = Q K^T with mma.sync m16n8k16 (K rows are B's columns: ldmatrix without
// .trans), applies the masks, updates its rows' running max and sum (a quad of 4 lanes
// shares a row: two shuffles), rescales its output accumulators, and adds P V: the S
// accumulators of two adjacent key octets are exactly an A fragment once rounded to 16 bits,
// and V comes in by ldmatrix .trans. The softmax runs in base 2 (scores pre-multiplied by
// scale * log2(e)).
//
// Two kernels: for long queries a block of 4 warps takes 64 rows of one (b, h) and shares
// each K/V tile; for short ones (under 64 rows: cross-modal attention, 16-77 text tokens over
// many image tokens) each warp takes a (b, h, 16-row chunk) of its own with its own tiles, so
// one block serves up to 4 (batch, head) pairs and no warp idles.
//
// The backward kernels are in attention_mma_bwd.cu; attention_mma_common.cuh holds what both
// share.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_mma.h"
#include "kernels/cuda/attention_mma_common.cuh"
#include "kernels/cuda/mma_tile.cuh"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

using namespace attn_mma;

// Per-warp work: 16 query rows, kBlockN keys per tile.
template <int kHeadDim, int kBlockN_>
struct WarpTraits {
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kPad = 8;  // row padding: 16 bytes, rows of an ldmatrix in distinct banks
  static constexpr int kPitch = kHeadDim + kPad;
  static constexpr int kKSteps = kHeadDim / 16;  // k16 steps of Q K^T
  static constexpr int kKeyOctets = kBlockN / 8;
  static constexpr int kDimOctets = kHeadDim / 8;
  static_assert(kHeadDim % 32 == 0 && kHeadDim <= 128, "head dims 32, 64, 128");
  static_assert(kBlockN % 16 == 0, "key tiles are whole k16 steps of P V");
  static_assert(kPitch * 2 % 16 == 0, "ldmatrix and cp.async need 16-byte aligned rows");
};

// The block-shared kernel: 4 warps, 64 query rows of one (b, h), K/V tiles shared.
template <int kHeadDim>
struct SharedTileTraits : WarpTraits<kHeadDim, kHeadDim == 128 ? 32 : 64> {
  using W = WarpTraits<kHeadDim, kHeadDim == 128 ? 32 : 64>;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kChunk = 8;  // 16-bit elements per cp.async (stage_slab)
  static constexpr int kBlockM = 16 * kWarps;
  static constexpr size_t kSmemBytes = size_t{2} * (kBlockM + 2 * W::kBlockN) * W::kPitch;
  static_assert(kSmemBytes <= 48 * 1024, "no shared-memory opt-in needed");
};

// The packed kernel for short queries (cross-modal: 16-77 text tokens over image tokens):
// each warp owns one (b, h, 16-row chunk) with its own K/V tiles, so a block serves up to 4
// (batch, head) pairs and no warp idles when Lq is small.
template <int kHeadDim>
struct PackedTraits : WarpTraits<kHeadDim, kHeadDim == 32 ? 64 : (kHeadDim == 64 ? 32 : 16)> {
  using W = WarpTraits<kHeadDim, kHeadDim == 32 ? 64 : (kHeadDim == 64 ? 32 : 16)>;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  // A warp's region: its K and V tiles; its 16 Q rows pass through it first.
  static constexpr int kRegionRows = 2 * W::kBlockN > 16 ? 2 * W::kBlockN : 16;
  static constexpr size_t kSmemBytes = size_t{2} * kWarps * kRegionRows * W::kPitch;
  static_assert(kSmemBytes <= 48 * 1024, "no shared-memory opt-in needed");
};
// stage_slab's view of one warp staging alone.
struct WarpStaging {
  static constexpr int kThreads = 32;
  static constexpr int kChunk = 8;
};

IRIS_DEV float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(kFullMask, v, 1));
  return fmaxf(v, __shfl_xor_sync(kFullMask, v, 2));
}
IRIS_DEV float quad_sum(float v) {
  v += __shfl_xor_sync(kFullMask, v, 1);
  return v + __shfl_xor_sync(kFullMask, v, 2);
}

// One (b, h)'s view for a warp: its rows' running softmax and output, and the sample's
// lengths and masks.
template <mma::Half H, class W>
struct WarpAttention {
  const MmaAttnArgs& a;
  int64_t b, lq, lk;
  int64_t row[2];  // this lane's rows: g and g + 8 of the warp's 16
  int lane, t;
  uint32_t qf[W::kKSteps][4];
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  float acc[W::kDimOctets][4];

  IRIS_DEV WarpAttention(const MmaAttnArgs& args, int64_t b_, int64_t row0, int lane_)
      : a(args), b(b_), lane(lane_), t(lane_ & 3) {
    lq = a.q_lens ? a.q_lens[b] : a.Lq;
    lk = a.k_lens ? a.k_lens[b] : a.Lk;
    row[0] = row0 + (lane >> 2);
    row[1] = row[0] + 8;
    IRIS_MMA_UNROLL
    for (int d = 0; d < W::kDimOctets; ++d) acc[d][0] = acc[d][1] = acc[d][2] = acc[d][3] = 0.f;
  }

  // Q fragments of the warp's 16 rows, stored from row `base` of `qs`.
  IRIS_DEV void load_q(iris::smem_ptr<uint16_t> qs, int base) {
    IRIS_MMA_UNROLL
    for (int s = 0; s < W::kKSteps; ++s)
      mma::load_a_fragment(qf[s], qs, {true, W::kPitch}, base, 16 * s, lane);
  }

  // Keys [j0, j0 + kBlockN) from the K and V tiles in shared memory.
  IRIS_DEV void attend(iris::smem_ptr<uint16_t> ks, iris::smem_ptr<uint16_t> vs, int64_t j0) {
    float s[W::kKeyOctets][4];
    IRIS_MMA_UNROLL
    for (int n = 0; n < W::kKeyOctets; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    // S = Q K^T: K's rows are B's columns (ldmatrix without .trans).
    IRIS_MMA_UNROLL
    for (int st = 0; st < W::kKSteps; ++st) {
      IRIS_MMA_UNROLL
      for (int n2 = 0; n2 < W::kKeyOctets / 2; ++n2) {
        uint32_t kb[4];
        mma::load_b_fragments(kb, ks, {true, W::kPitch}, 16 * n2, 16 * st, lane);
        const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
        mma::mma_16816<H>(s[2 * n2], qf[st], b0);
        mma::mma_16816<H>(s[2 * n2 + 1], qf[st], b1);
      }
    }
    // Masks, then the online softmax per row half r (a quad of lanes shares a row).
    float tile_max[2] = {-INFINITY, -INFINITY};
    IRIS_MMA_UNROLL
    for (int n = 0; n < W::kKeyOctets; ++n) {
      IRIS_MMA_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const int64_t i = row[r], j = j0 + 8 * n + 2 * t + (e & 1);
        bool vis = i < lq && j < lk && (!a.causal || j <= i + (lk - lq));
        if (vis && a.key_mask) vis = !a.key_mask[b * a.Lk + j];
        s[n][e] = vis ? s[n][e] * a.scale_log2 : -INFINITY;
        tile_max[r] = fmaxf(tile_max[r], s[n][e]);
      }
    }
    float alpha[2];
    IRIS_MMA_UNROLL
    for (int r = 0; r < 2; ++r) {
      const float m_new = fmaxf(m_run[r], quad_max(tile_max[r]));
      alpha[r] = m_run[r] == -INFINITY ? 0.f : exp2f(m_run[r] - m_new);
      m_run[r] = m_new;
      l_run[r] *= alpha[r];
    }
    IRIS_MMA_UNROLL
    for (int n = 0; n < W::kKeyOctets; ++n) {
      IRIS_MMA_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const float p = s[n][e] == -INFINITY ? 0.f : exp2f(s[n][e] - m_run[r]);
        s[n][e] = p;
        l_run[r] += p;  // this lane's share; the quad's shares are summed at the end
      }
    }
    IRIS_MMA_UNROLL
    for (int d = 0; d < W::kDimOctets; ++d) {
      acc[d][0] *= alpha[0], acc[d][1] *= alpha[0];
      acc[d][2] *= alpha[1], acc[d][3] *= alpha[1];
    }
    // O += P V, 16 keys at a time: two key octets of S accumulators are an A fragment.
    IRIS_MMA_UNROLL
    for (int kc = 0; kc < W::kKeyOctets / 2; ++kc) {
      const uint32_t pa[4] = {pack2<H>(s[2 * kc][0], s[2 * kc][1]),
                              pack2<H>(s[2 * kc][2], s[2 * kc][3]),
                              pack2<H>(s[2 * kc + 1][0], s[2 * kc + 1][1]),
                              pack2<H>(s[2 * kc + 1][2], s[2 * kc + 1][3])};
      IRIS_MMA_UNROLL
      for (int d2 = 0; d2 < W::kDimOctets / 2; ++d2) {
        uint32_t vb[4];
        mma::load_b_fragments(vb, vs, {false, W::kPitch}, 16 * d2, 16 * kc, lane);
        const uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
        mma::mma_16816<H>(acc[2 * d2], pa, b0);
        mma::mma_16816<H>(acc[2 * d2 + 1], pa, b1);
      }
    }
  }

  // Keys the warp's rows can see at most (causal bound of its last valid row).
  IRIS_DEV int64_t key_end(int64_t rows_end) const {
    int64_t end = lk;
    if (a.causal) {
      const int64_t c = ((rows_end < lq ? rows_end : lq) - 1) + (lk - lq) + 1;
      end = c < end ? c : end;
    }
    return end;
  }

  // Output rows (16-bit) and lse (fp32, natural log) of (b, h) = bh.
  IRIS_DEV void store(uint16_t* o, float* lse, int64_t bh) {
    constexpr float kLn2 = 0.693147180559945309f;
    IRIS_MMA_UNROLL
    for (int r = 0; r < 2; ++r) {
      const float l = quad_sum(l_run[r]);
      const int64_t i = row[r];
      if (i >= a.Lq) continue;
      const bool any = l > 0.f;
      const float inv = any ? 1.f / l : 0.f;
      IRIS_MMA_UNROLL
      for (int d = 0; d < W::kDimOctets; ++d) {
        const int c = 8 * d + 2 * t;
        o[i * a.o_sl + c] = mma::float_to_half<H>(acc[d][2 * r] * inv);
        o[i * a.o_sl + c + 1] = mma::float_to_half<H>(acc[d][2 * r + 1] * inv);
      }
      if (t == 0) lse[bh * a.Lq + i] = any ? (m_run[r] + log2f(l)) * kLn2 : -INFINITY;
    }
  }
};

template <mma::Half H, int kHeadDim>
__global__ void __launch_bounds__(SharedTileTraits<kHeadDim>::kThreads, 1)
    attn_forward_mma_kernel(MmaAttnArgs a, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                            uint16_t* o, float* lse) {
  using Tr = SharedTileTraits<kHeadDim>;
  IRIS_DYNAMIC_SHARED(uint16_t, smem);
  iris::smem_ptr<uint16_t> qs = smem;                           // [kBlockM][kPitch]
  iris::smem_ptr<uint16_t> ks = qs + Tr::kBlockM * Tr::kPitch;  // [kBlockN][kPitch]
  iris::smem_ptr<uint16_t> vs = ks + Tr::kBlockN * Tr::kPitch;  // [kBlockN][kPitch]
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * Tr::kBlockM;
  q += b * a.q_sb + h * a.q_sh;
  k += b * a.k_sb + h * a.k_sh;
  v += b * a.v_sb + h * a.v_sh;
  o += b * a.o_sb + h * a.o_sh;

  mma::stage_slab<Tr>(qs, Tr::kPitch, Tr::kBlockM, kHeadDim, q, a.q_sl, i0, a.Lq, 0, kHeadDim,
                      a.async, tid);
  if (a.async) {
    iris::ptx::cp_async_commit();
    iris::ptx::cp_async_wait_all();
  }
  __syncthreads();
  WarpAttention<H, typename Tr::W> w(a, b, i0 + warp * 16, lane);
  w.load_q(qs, warp * 16);
  const bool warp_active = i0 + warp * 16 < w.lq;  // warp-uniform: rows past lq do no math
  const int64_t kend = w.key_end(i0 + Tr::kBlockM);
  for (int64_t j0 = 0; j0 < kend; j0 += Tr::kBlockN) {
    __syncthreads();  // every warp is done with the previous tile
    mma::stage_slab<Tr>(ks, Tr::kPitch, Tr::kBlockN, kHeadDim, k, a.k_sl, j0, a.Lk, 0, kHeadDim,
                        a.async, tid);
    mma::stage_slab<Tr>(vs, Tr::kPitch, Tr::kBlockN, kHeadDim, v, a.v_sl, j0, a.Lk, 0, kHeadDim,
                        a.async, tid);
    if (a.async) {
      iris::ptx::cp_async_commit();
      iris::ptx::cp_async_wait_all();
    }
    __syncthreads();
    if (warp_active) w.attend(ks, vs, j0);
  }
  w.store(o, lse, bh);
}

// Warp `item` of the launch: (b, h) = item / chunks, rows 16 * (item % chunks) onwards.
template <mma::Half H, int kHeadDim>
__global__ void __launch_bounds__(PackedTraits<kHeadDim>::kThreads, 1)
    attn_forward_mma_packed_kernel(MmaAttnArgs a, int64_t items, int64_t chunks, const uint16_t* q,
                                   const uint16_t* k, const uint16_t* v, uint16_t* o, float* lse) {
  using Tr = PackedTraits<kHeadDim>;
  IRIS_DYNAMIC_SHARED(uint16_t, smem);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * Tr::kWarps + warp;
  if (item >= items) return;  // no block-wide barriers below: a warp may leave alone
  iris::smem_ptr<uint16_t> ks = smem + warp * Tr::kRegionRows * Tr::kPitch;
  iris::smem_ptr<uint16_t> vs = ks + Tr::kBlockN * Tr::kPitch;
  const int64_t bh = item / chunks, b = bh / a.H, h = bh % a.H, i0 = 16 * (item % chunks);
  q += b * a.q_sb + h * a.q_sh;
  k += b * a.k_sb + h * a.k_sh;
  v += b * a.v_sb + h * a.v_sh;
  o += b * a.o_sb + h * a.o_sh;

  // Q passes through the K region: fragments into registers, then the region is free.
  mma::stage_slab<WarpStaging>(ks, Tr::kPitch, 16, kHeadDim, q, a.q_sl, i0, a.Lq, 0, kHeadDim,
                               a.async, lane);
  if (a.async) {
    iris::ptx::cp_async_commit();
    iris::ptx::cp_async_wait_all();
  }
  __syncwarp();
  WarpAttention<H, typename Tr::W> w(a, b, i0, lane);
  w.load_q(ks, 0);
  const bool active = i0 < w.lq;
  const int64_t kend = active ? w.key_end(i0 + 16) : 0;
  for (int64_t j0 = 0; j0 < kend; j0 += Tr::kBlockN) {
    __syncwarp();  // the warp is done with the previous tile (and with Q)
    mma::stage_slab<WarpStaging>(ks, Tr::kPitch, Tr::kBlockN, kHeadDim, k, a.k_sl, j0, a.Lk, 0,
                                 kHeadDim, a.async, lane);
    mma::stage_slab<WarpStaging>(vs, Tr::kPitch, Tr::kBlockN, kHeadDim, v, a.v_sl, j0, a.Lk, 0,
                                 kHeadDim, a.async, lane);
    if (a.async) {
      iris::ptx::cp_async_commit();
      iris::ptx::cp_async_wait_all();
    }
    __syncwarp();
    w.attend(ks, vs, j0);
  }
  w.store(o, lse, bh);
}

template <mma::Half H, int kHeadDim>
void launch(const MmaAttnArgs& a, int64_t BH, const Tensor& q, const Tensor& k, const Tensor& v,
            const Tensor& out, const Tensor& lse) {
  const auto* qp = static_cast<const uint16_t*>(q.raw_data());
  const auto* kp = static_cast<const uint16_t*>(k.raw_data());
  const auto* vp = static_cast<const uint16_t*>(v.raw_data());
  auto* op = static_cast<uint16_t*>(out.raw_data());
  const int64_t chunks = (a.Lq + 15) / 16;
  if (chunks < SharedTileTraits<kHeadDim>::kWarps) {  // short queries: pack (b, h) pairs
    using Tr = PackedTraits<kHeadDim>;
    const int64_t items = BH * chunks;
    IRIS_LAUNCH((attn_forward_mma_packed_kernel<H, kHeadDim>),
                dim3(static_cast<unsigned>((items + Tr::kWarps - 1) / Tr::kWarps)),
                dim3(Tr::kThreads), Tr::kSmemBytes, nullptr, a, items, chunks, qp, kp, vp, op,
                lse.data<float>());
    return;
  }
  using Tr = SharedTileTraits<kHeadDim>;
  const dim3 grid(static_cast<unsigned>((a.Lq + Tr::kBlockM - 1) / Tr::kBlockM),
                  static_cast<unsigned>(BH));
  IRIS_LAUNCH((attn_forward_mma_kernel<H, kHeadDim>), grid, dim3(Tr::kThreads), Tr::kSmemBytes,
              nullptr, a, qp, kp, vp, op, lse.data<float>());
}

}  // namespace

bool attention_forward_mma(const Tensor& q, const Tensor& k, const Tensor& v,
                           const kernels::AttentionMasks& m, const Tensor& out, const Tensor& lse) {
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3);
  if (v.size(3) != D || (D != 32 && D != 64 && D != 128) || B * H > 65535 ||
      B * H * ((q.size(2) + 15) / 16) > (int64_t{1} << 31) || !unit_last_stride({&q, &k, &v, &out}))
    return false;
  IRIS_CHECK(lse.dtype() == DType::f32 && lse.is_contiguous(),
             "attention_forward: 16-bit inputs need a float32 lse, got ", lse.desc());
  Tensor masks[3];
  const MmaAttnArgs a = args_of(q, k, v, out, m, masks);
  if (a.Lq == 0) return true;
  const bool bf = q.dtype() == DType::bf16;
  auto go = [&]<int kD>() {
    if (bf)
      launch<mma::Half::kBf16, kD>(a, B * H, q, k, v, out, lse);
    else
      launch<mma::Half::kF16, kD>(a, B * H, q, k, v, out, lse);
  };
  if (D == 32)
    go.template operator()<32>();
  else if (D == 64)
    go.template operator()<64>();
  else
    go.template operator()<128>();
  return true;
}

}  // namespace iris::IRIS_KERNEL_NS
