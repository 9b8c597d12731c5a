// Fused attention backward on tensor cores (FlashAttention-2), bf16 or fp16 in and out, fp32
// accumulation, for the forward of attention_mma.cu (whose lse it reads); head dims 32, 64,
// 128. delta = rowsum(dO * O); dK/dV with a block per 64 keys (K and V fragments in registers;
// at d = 128 re-read from shared memory, which keeps the 128 accumulator registers clear of
// spills) walking the queries: S^T = K Q^T, P^T, dV += P^T dO, dP^T = V dO^T,
// dS^T = P^T (dP^T - delta), dK += dS^T Q; dQ with a block per 64 query rows walking the keys.
// Every gradient row belongs to one warp: no atomics, deterministic.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_mma.h"
#include "kernels/cuda/attention_mma_common.cuh"
#include "kernels/cuda/mma_tile.cuh"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

using namespace attn_mma;

// delta[bh, i] = sum_d dO[i, d] O[i, d] in fp32: a warp per row.
template <mma::Half H>
__global__ void __launch_bounds__(128)
    attn_bwd_delta_kernel(MmaAttnArgs a, int64_t D, const uint16_t* o, const uint16_t* dout,
                          float* delta) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 4 + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  if (row >= a.Lq) return;  // whole warps leave; no barriers follow
  const int64_t off = b * a.o_sb + h * a.o_sh + row * a.o_sl;
  float acc = 0.f;
  for (int64_t d = lane; d < D; d += 32)
    acc += mma::half_to_float<H>(o[off + d]) * mma::half_to_float<H>(dout[off + d]);
  for (int m = 16; m > 0; m >>= 1) acc += __shfl_xor_sync(kFullMask, acc, m);
  if (lane == 0) delta[bh * a.Lq + row] = acc;
}

template <int kHeadDim>
struct BwdTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kChunk = 8;
  static constexpr int kTile = 64;  // keys per block (dK/dV) / query rows per block (dQ)
  // Queries (dK/dV) / keys (dQ) per inner step: 16 at d = 128 keeps the two step tiles and
  // the block's two 64-row tiles within 48 KB of shared memory.
  static constexpr int kStep = kHeadDim == 128 ? 16 : 32;
  static constexpr int kPitch = kHeadDim + 8;
  static constexpr int kKSteps = kHeadDim / 16;
  static constexpr int kDimOctets = kHeadDim / 8;
  static constexpr int kStepOctets = kStep / 8;
  // The warp's 16-row A fragments of its two block tiles (K, V for dK/dV; Q, dO for dQ) stay
  // in registers up to d = 64; at d = 128 they would be 64 registers next to 128 (dK/dV) of
  // accumulators and spill, so they are re-read from shared memory by ldmatrix at each use.
  static constexpr bool kFragsInRegisters = kHeadDim <= 64;
  static constexpr int kHeldSteps = kFragsInRegisters ? kKSteps : 1;
  static_assert(kHeadDim == 32 || kHeadDim == 64 || kHeadDim == 128,
                "tensor-core backward: head dims 32, 64, 128");
  static_assert(kTile == 16 * kWarps && kStep % 16 == 0, "a warp owns 16 rows of the tile");
  static_assert(kStep <= kThreads, "one thread per step row stages the softmax statistics");
  static constexpr size_t kSmemBytes =
      size_t{2} * 2 * (kTile + kStep) * kPitch + sizeof(float) * 2 * kStep;
  static_assert(kSmemBytes <= 48 * 1024, "no shared-memory opt-in needed");
};

// The warp's A fragments (k16 step st) of its 16 rows (from row0) of a block tile: held in
// registers where kFragsInRegisters, else read from the tile at each use.
template <class Tr>
struct WarpRows {
  uint32_t held[Tr::kHeldSteps][4];
  IRIS_DEV void load(iris::smem_ptr<uint16_t> tile, int row0, int lane) {
    if constexpr (Tr::kFragsInRegisters) {
      IRIS_MMA_UNROLL
      for (int st = 0; st < Tr::kKSteps; ++st)
        mma::load_a_fragment(held[st], tile, {true, Tr::kPitch}, row0, 16 * st, lane);
    }
  }
  IRIS_DEV void get(uint32_t (&f)[4], iris::smem_ptr<uint16_t> tile, int row0, int st,
                    int lane) const {
    if constexpr (Tr::kFragsInRegisters) {
      f[0] = held[st][0], f[1] = held[st][1], f[2] = held[st][2], f[3] = held[st][3];
    } else {
      mma::load_a_fragment(f, tile, {true, Tr::kPitch}, row0, 16 * st, lane);
    }
  }
};

// Rounds a C-fragment pair of octets (columns 16c .. 16c+15 of a 16-row tile) to an A
// fragment: the P / dS trick of FlashAttention-2.
template <mma::Half H>
IRIS_DEV void to_a_fragment(uint32_t (&frag)[4], const float (&lo)[4], const float (&hi)[4]) {
  frag[0] = pack2<H>(lo[0], lo[1]);
  frag[1] = pack2<H>(lo[2], lo[3]);
  frag[2] = pack2<H>(hi[0], hi[1]);
  frag[3] = pack2<H>(hi[2], hi[3]);
}

IRIS_DEV bool visible(const MmaAttnArgs& a, int64_t b, int64_t lq, int64_t lk, int64_t i,
                      int64_t j) {
  bool vis = i < lq && j < lk && (!a.causal || j <= i + (lk - lq));
  if (vis && a.key_mask) vis = !a.key_mask[b * a.Lk + j];
  return vis;
}

// dK, dV: a block owns 64 keys of one (b, h) (16 per warp, K and V fragments from WarpRows)
// and walks the query rows kStep at a time: S^T = K Q^T, P^T = exp(S^T - lse), dV += P^T dO,
// dP^T = V dO^T, dS^T = P^T (dP^T - delta), dK += dS^T Q. Each key belongs to one warp: no
// atomics, a fixed order.
template <mma::Half H, int kHeadDim>
__global__ void __launch_bounds__(BwdTraits<kHeadDim>::kThreads, 1)
    attn_bwd_dkdv_kernel(MmaAttnArgs a, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                         const uint16_t* dout, const float* lse, const float* delta, uint16_t* dk,
                         uint16_t* dv) {
  using Tr = BwdTraits<kHeadDim>;
  IRIS_DYNAMIC_SHARED(uint16_t, smem);
  iris::smem_ptr<uint16_t> ks = smem;                          // [kTile][kPitch]
  iris::smem_ptr<uint16_t> vs = ks + Tr::kTile * Tr::kPitch;   // [kTile][kPitch]
  iris::smem_ptr<uint16_t> qs = vs + Tr::kTile * Tr::kPitch;   // [kStep][kPitch]
  iris::smem_ptr<uint16_t> dos = qs + Tr::kStep * Tr::kPitch;  // [kStep][kPitch]
  iris::smem_ptr<float> stats = iris::ptr_cast<float>(dos + Tr::kStep * Tr::kPitch);
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * Tr::kTile;
  const int64_t lq = a.q_lens ? a.q_lens[b] : a.Lq, lk = a.k_lens ? a.k_lens[b] : a.Lk;
  const int64_t qoff = b * a.q_sb + h * a.q_sh, koff = b * a.k_sb + h * a.k_sh,
                voff = b * a.v_sb + h * a.v_sh, ooff = b * a.o_sb + h * a.o_sh;

  mma::stage_slab<Tr>(ks, Tr::kPitch, Tr::kTile, kHeadDim, k + koff, a.k_sl, j0, a.Lk, 0, kHeadDim,
                      a.async, tid);
  mma::stage_slab<Tr>(vs, Tr::kPitch, Tr::kTile, kHeadDim, v + voff, a.v_sl, j0, a.Lk, 0, kHeadDim,
                      a.async, tid);
  if (a.async) {
    iris::ptx::cp_async_commit();
    iris::ptx::cp_async_wait_all();
  }
  __syncthreads();
  WarpRows<Tr> kr, vr;  // the warp's 16 keys of K and V (the tiles stay in shared memory)
  kr.load(ks, warp * 16, lane);
  vr.load(vs, warp * 16, lane);
  float dka[Tr::kDimOctets][4], dva[Tr::kDimOctets][4];
  IRIS_MMA_UNROLL
  for (int d = 0; d < Tr::kDimOctets; ++d) IRIS_MMA_UNROLL
  for (int e = 0; e < 4; ++e) dka[d][e] = dva[d][e] = 0.f;
  int64_t key[2];  // this lane's keys (rows of S^T): g and g + 8 of the warp's 16
  key[0] = j0 + warp * 16 + g;
  key[1] = key[0] + 8;
  // Queries that can see any of the block's keys: causal rows start at j - (lk - lq).
  int64_t i_begin = 0;
  if (a.causal) {
    const int64_t first = j0 - (lk - lq);
    i_begin = first > 0 ? first / Tr::kStep * Tr::kStep : 0;
  }
  const bool warp_active = j0 + warp * 16 < lk;
  for (int64_t i0 = i_begin; i0 < lq; i0 += Tr::kStep) {
    __syncthreads();  // the previous step's tiles are free
    mma::stage_slab<Tr>(qs, Tr::kPitch, Tr::kStep, kHeadDim, q + qoff, a.q_sl, i0, a.Lq, 0,
                        kHeadDim, a.async, tid);
    mma::stage_slab<Tr>(dos, Tr::kPitch, Tr::kStep, kHeadDim, dout + ooff, a.o_sl, i0, a.Lq, 0,
                        kHeadDim, a.async, tid);
    if (tid < Tr::kStep) {
      const int64_t i = i0 + tid;
      stats[tid] = i < a.Lq ? lse[bh * a.Lq + i] * 1.4426950408889634f : 0.f;
      stats[Tr::kStep + tid] = i < a.Lq ? delta[bh * a.Lq + i] : 0.f;
    }
    if (a.async) {
      iris::ptx::cp_async_commit();
      iris::ptx::cp_async_wait_all();
    }
    __syncthreads();
    if (!warp_active) continue;
    // S^T and dP^T: 16 keys x kStep queries.
    float p[Tr::kStepOctets][4], dp[Tr::kStepOctets][4];
    IRIS_MMA_UNROLL
    for (int n = 0; n < Tr::kStepOctets; ++n) IRIS_MMA_UNROLL
    for (int e = 0; e < 4; ++e) p[n][e] = dp[n][e] = 0.f;
    IRIS_MMA_UNROLL
    for (int st = 0; st < Tr::kKSteps; ++st) {
      uint32_t kf[4], vf[4];
      kr.get(kf, ks, warp * 16, st, lane);
      vr.get(vf, vs, warp * 16, st, lane);
      IRIS_MMA_UNROLL
      for (int n2 = 0; n2 < Tr::kStepOctets / 2; ++n2) {
        uint32_t qb[4], ob[4];
        mma::load_b_fragments(qb, qs, {true, Tr::kPitch}, 16 * n2, 16 * st, lane);
        mma::load_b_fragments(ob, dos, {true, Tr::kPitch}, 16 * n2, 16 * st, lane);
        const uint32_t q0[2] = {qb[0], qb[1]}, q1[2] = {qb[2], qb[3]};
        const uint32_t o0[2] = {ob[0], ob[1]}, o1[2] = {ob[2], ob[3]};
        mma::mma_16816<H>(p[2 * n2], kf, q0);
        mma::mma_16816<H>(p[2 * n2 + 1], kf, q1);
        mma::mma_16816<H>(dp[2 * n2], vf, o0);
        mma::mma_16816<H>(dp[2 * n2 + 1], vf, o1);
      }
    }
    // P^T and dS^T (element e: key = key[e >> 1], query column 8n + 2t + (e & 1)).
    IRIS_MMA_UNROLL
    for (int n = 0; n < Tr::kStepOctets; ++n) {
      IRIS_MMA_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int c = 8 * n + 2 * t + (e & 1);
        const bool vis = visible(a, b, lq, lk, i0 + c, key[e >> 1]);
        const float pe = vis ? exp2f(p[n][e] * a.scale_log2 - stats[c]) : 0.f;
        p[n][e] = pe;
        dp[n][e] = pe * (dp[n][e] - stats[Tr::kStep + c]);
      }
    }
    // dV += P^T dO and dK += dS^T Q, kStep queries as k.
    IRIS_MMA_UNROLL
    for (int kc = 0; kc < Tr::kStepOctets / 2; ++kc) {
      uint32_t pa[4], sa[4];
      to_a_fragment<H>(pa, p[2 * kc], p[2 * kc + 1]);
      to_a_fragment<H>(sa, dp[2 * kc], dp[2 * kc + 1]);
      IRIS_MMA_UNROLL
      for (int d2 = 0; d2 < Tr::kDimOctets / 2; ++d2) {
        uint32_t ob[4], qb[4];
        mma::load_b_fragments(ob, dos, {false, Tr::kPitch}, 16 * d2, 16 * kc, lane);
        mma::load_b_fragments(qb, qs, {false, Tr::kPitch}, 16 * d2, 16 * kc, lane);
        const uint32_t o0[2] = {ob[0], ob[1]}, o1[2] = {ob[2], ob[3]};
        const uint32_t q0[2] = {qb[0], qb[1]}, q1[2] = {qb[2], qb[3]};
        mma::mma_16816<H>(dva[2 * d2], pa, o0);
        mma::mma_16816<H>(dva[2 * d2 + 1], pa, o1);
        mma::mma_16816<H>(dka[2 * d2], sa, q0);
        mma::mma_16816<H>(dka[2 * d2 + 1], sa, q1);
      }
    }
  }
  const float scale = a.scale_log2 * 0.693147180559945309f;
  IRIS_MMA_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int64_t j = key[r];
    if (j >= a.Lk) continue;
    IRIS_MMA_UNROLL
    for (int d = 0; d < Tr::kDimOctets; ++d) {
      const int c = 8 * d + 2 * t;
      dk[koff + j * a.k_sl + c] = mma::float_to_half<H>(dka[d][2 * r] * scale);
      dk[koff + j * a.k_sl + c + 1] = mma::float_to_half<H>(dka[d][2 * r + 1] * scale);
      dv[voff + j * a.v_sl + c] = mma::float_to_half<H>(dva[d][2 * r]);
      dv[voff + j * a.v_sl + c + 1] = mma::float_to_half<H>(dva[d][2 * r + 1]);
    }
  }
}

// dQ: a block owns 64 query rows (16 per warp, Q and dO fragments from WarpRows) and walks
// the keys kStep at a time: S = Q K^T, P = exp(S - lse), dP = dO V^T, dS = P (dP - delta),
// dQ += dS K.
template <mma::Half H, int kHeadDim>
__global__ void __launch_bounds__(BwdTraits<kHeadDim>::kThreads, 1)
    attn_bwd_dq_kernel(MmaAttnArgs a, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                       const uint16_t* dout, const float* lse, const float* delta, uint16_t* dq) {
  using Tr = BwdTraits<kHeadDim>;
  IRIS_DYNAMIC_SHARED(uint16_t, smem);
  iris::smem_ptr<uint16_t> qs = smem;                          // [kTile][kPitch]
  iris::smem_ptr<uint16_t> dos = qs + Tr::kTile * Tr::kPitch;  // [kTile][kPitch]
  iris::smem_ptr<uint16_t> ks = dos + Tr::kTile * Tr::kPitch;  // [kStep][kPitch]
  iris::smem_ptr<uint16_t> vs = ks + Tr::kStep * Tr::kPitch;   // [kStep][kPitch]
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * Tr::kTile;
  const int64_t lq = a.q_lens ? a.q_lens[b] : a.Lq, lk = a.k_lens ? a.k_lens[b] : a.Lk;
  const int64_t qoff = b * a.q_sb + h * a.q_sh, koff = b * a.k_sb + h * a.k_sh,
                voff = b * a.v_sb + h * a.v_sh, ooff = b * a.o_sb + h * a.o_sh;

  mma::stage_slab<Tr>(qs, Tr::kPitch, Tr::kTile, kHeadDim, q + qoff, a.q_sl, i0, a.Lq, 0, kHeadDim,
                      a.async, tid);
  mma::stage_slab<Tr>(dos, Tr::kPitch, Tr::kTile, kHeadDim, dout + ooff, a.o_sl, i0, a.Lq, 0,
                      kHeadDim, a.async, tid);
  if (a.async) {
    iris::ptx::cp_async_commit();
    iris::ptx::cp_async_wait_all();
  }
  __syncthreads();
  WarpRows<Tr> qr, dor;  // the warp's 16 rows of Q and dO (the tiles stay in shared memory)
  qr.load(qs, warp * 16, lane);
  dor.load(dos, warp * 16, lane);
  int64_t row[2];
  row[0] = i0 + warp * 16 + g;
  row[1] = row[0] + 8;
  float lse2[2], dlt[2];
  IRIS_MMA_UNROLL
  for (int r = 0; r < 2; ++r) {
    const bool in = row[r] < a.Lq;
    lse2[r] = in ? lse[bh * a.Lq + row[r]] * 1.4426950408889634f : 0.f;
    dlt[r] = in ? delta[bh * a.Lq + row[r]] : 0.f;
  }
  float dqa[Tr::kDimOctets][4];
  IRIS_MMA_UNROLL
  for (int d = 0; d < Tr::kDimOctets; ++d) IRIS_MMA_UNROLL
  for (int e = 0; e < 4; ++e) dqa[d][e] = 0.f;
  int64_t kend = lk;
  if (a.causal) {
    const int64_t last = (i0 + Tr::kTile < lq ? i0 + Tr::kTile : lq) - 1;
    const int64_t c = last + (lk - lq) + 1;
    kend = c < kend ? c : kend;
  }
  const bool warp_active = i0 + warp * 16 < lq;
  for (int64_t j0 = 0; j0 < kend; j0 += Tr::kStep) {
    __syncthreads();
    mma::stage_slab<Tr>(ks, Tr::kPitch, Tr::kStep, kHeadDim, k + koff, a.k_sl, j0, a.Lk, 0,
                        kHeadDim, a.async, tid);
    mma::stage_slab<Tr>(vs, Tr::kPitch, Tr::kStep, kHeadDim, v + voff, a.v_sl, j0, a.Lk, 0,
                        kHeadDim, a.async, tid);
    if (a.async) {
      iris::ptx::cp_async_commit();
      iris::ptx::cp_async_wait_all();
    }
    __syncthreads();
    if (!warp_active) continue;
    float p[Tr::kStepOctets][4], dp[Tr::kStepOctets][4];
    IRIS_MMA_UNROLL
    for (int n = 0; n < Tr::kStepOctets; ++n) IRIS_MMA_UNROLL
    for (int e = 0; e < 4; ++e) p[n][e] = dp[n][e] = 0.f;
    IRIS_MMA_UNROLL
    for (int st = 0; st < Tr::kKSteps; ++st) {
      uint32_t qf[4], of[4];
      qr.get(qf, qs, warp * 16, st, lane);
      dor.get(of, dos, warp * 16, st, lane);
      IRIS_MMA_UNROLL
      for (int n2 = 0; n2 < Tr::kStepOctets / 2; ++n2) {
        uint32_t kb[4], vb[4];
        mma::load_b_fragments(kb, ks, {true, Tr::kPitch}, 16 * n2, 16 * st, lane);
        mma::load_b_fragments(vb, vs, {true, Tr::kPitch}, 16 * n2, 16 * st, lane);
        const uint32_t k0[2] = {kb[0], kb[1]}, k1[2] = {kb[2], kb[3]};
        const uint32_t v0[2] = {vb[0], vb[1]}, v1[2] = {vb[2], vb[3]};
        mma::mma_16816<H>(p[2 * n2], qf, k0);
        mma::mma_16816<H>(p[2 * n2 + 1], qf, k1);
        mma::mma_16816<H>(dp[2 * n2], of, v0);
        mma::mma_16816<H>(dp[2 * n2 + 1], of, v1);
      }
    }
    IRIS_MMA_UNROLL
    for (int n = 0; n < Tr::kStepOctets; ++n) {
      IRIS_MMA_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const bool vis = visible(a, b, lq, lk, row[r], j0 + 8 * n + 2 * t + (e & 1));
        const float pe = vis ? exp2f(p[n][e] * a.scale_log2 - lse2[r]) : 0.f;
        dp[n][e] = pe * (dp[n][e] - dlt[r]);
      }
    }
    IRIS_MMA_UNROLL
    for (int kc = 0; kc < Tr::kStepOctets / 2; ++kc) {
      uint32_t sa[4];
      to_a_fragment<H>(sa, dp[2 * kc], dp[2 * kc + 1]);
      IRIS_MMA_UNROLL
      for (int d2 = 0; d2 < Tr::kDimOctets / 2; ++d2) {
        uint32_t kb[4];
        mma::load_b_fragments(kb, ks, {false, Tr::kPitch}, 16 * d2, 16 * kc, lane);
        const uint32_t k0[2] = {kb[0], kb[1]}, k1[2] = {kb[2], kb[3]};
        mma::mma_16816<H>(dqa[2 * d2], sa, k0);
        mma::mma_16816<H>(dqa[2 * d2 + 1], sa, k1);
      }
    }
  }
  const float scale = a.scale_log2 * 0.693147180559945309f;
  IRIS_MMA_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int64_t i = row[r];
    if (i >= a.Lq) continue;
    IRIS_MMA_UNROLL
    for (int d = 0; d < Tr::kDimOctets; ++d) {
      const int c = 8 * d + 2 * t;
      dq[qoff + i * a.q_sl + c] = mma::float_to_half<H>(dqa[d][2 * r] * scale);
      dq[qoff + i * a.q_sl + c + 1] = mma::float_to_half<H>(dqa[d][2 * r + 1] * scale);
    }
  }
}

template <mma::Half H, int kHeadDim>
void launch_backward(const MmaAttnArgs& a, int64_t BH, const Tensor& q, const Tensor& k,
                     const Tensor& v, const Tensor& out, const Tensor& dout, const Tensor& lse,
                     const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  using Tr = BwdTraits<kHeadDim>;
  const auto in = [](const Tensor& x) { return static_cast<const uint16_t*>(x.raw_data()); };
  const auto outp = [](const Tensor& x) { return static_cast<uint16_t*>(x.raw_data()); };
  const Tensor delta = Tensor::empty({BH, a.Lq}, DType::f32, q.device());
  const unsigned bh = static_cast<unsigned>(BH);
  IRIS_LAUNCH(attn_bwd_delta_kernel<H>, dim3(static_cast<unsigned>((a.Lq + 3) / 4), bh), dim3(128),
              0, nullptr, a, int64_t{kHeadDim}, in(out), in(dout), delta.data<float>());
  IRIS_LAUNCH((attn_bwd_dkdv_kernel<H, kHeadDim>),
              dim3(static_cast<unsigned>((a.Lk + Tr::kTile - 1) / Tr::kTile), bh),
              dim3(Tr::kThreads), Tr::kSmemBytes, nullptr, a, in(q), in(k), in(v), in(dout),
              lse.data<float>(), delta.data<float>(), outp(dk), outp(dv));
  IRIS_LAUNCH((attn_bwd_dq_kernel<H, kHeadDim>),
              dim3(static_cast<unsigned>((a.Lq + Tr::kTile - 1) / Tr::kTile), bh),
              dim3(Tr::kThreads), Tr::kSmemBytes, nullptr, a, in(q), in(k), in(v), in(dout),
              lse.data<float>(), delta.data<float>(), outp(dq));
}

}  // namespace

bool attention_backward_mma(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                            const Tensor& dout, const Tensor& lse, const kernels::AttentionMasks& m,
                            const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3);
  if (v.size(3) != D || (D != 32 && D != 64 && D != 128) || B * H > 65535 ||
      !unit_last_stride({&q, &k, &v, &out, &dout, &dq, &dk, &dv}) || lse.dtype() != DType::f32)
    return false;
  Tensor masks[3];
  const MmaAttnArgs a = args_of(q, k, v, out, m, masks);
  if (a.Lq == 0 || a.Lk == 0) return false;  // the caller zeroes what needs zeroing
  const bool bf = q.dtype() == DType::bf16;
  auto go = [&]<int kD>() {
    if (bf)
      launch_backward<mma::Half::kBf16, kD>(a, B * H, q, k, v, out, dout, lse, dq, dk, dv);
    else
      launch_backward<mma::Half::kF16, kD>(a, B * H, q, k, v, out, dout, lse, dq, dk, dv);
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
