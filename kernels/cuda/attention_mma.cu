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
// Backward (head dims 32, 64, 128): delta = rowsum(dO * O); dK/dV with a block per 64 keys
// (K and V fragments in registers; at d = 128 re-read from shared memory, which keeps the 128
// accumulator registers clear of spills) walking the queries: S^T = K Q^T, P^T, dV += P^T dO,
// dP^T = V dO^T, dS^T = P^T (dP^T - delta), dK += dS^T Q; dQ with a block per 64 query rows
// walking the keys.
// Every gradient row belongs to one warp: no atomics, deterministic.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_mma.h"
#include "kernels/cuda/mma_tile.cuh"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

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

struct MmaAttnArgs {
  int64_t H, Lq, Lk;
  float scale_log2;  // softmax scale * log2(e)
  bool causal, async;
  const int32_t* q_lens;
  const int32_t* k_lens;
  const uint8_t* key_mask;
  int64_t q_sb, q_sh, q_sl, k_sb, k_sh, k_sl, v_sb, v_sh, v_sl, o_sb, o_sh, o_sl;
};

IRIS_DEV float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(kFullMask, v, 1));
  return fmaxf(v, __shfl_xor_sync(kFullMask, v, 2));
}
IRIS_DEV float quad_sum(float v) {
  v += __shfl_xor_sync(kFullMask, v, 1);
  return v + __shfl_xor_sync(kFullMask, v, 2);
}

template <mma::Half H>
IRIS_DEV uint32_t pack2(float lo, float hi) {
  return static_cast<uint32_t>(mma::float_to_half<H>(lo)) |
         (static_cast<uint32_t>(mma::float_to_half<H>(hi)) << 16);
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

// ---- backward (head dims 32, 64, 128) ----
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

bool aligned16(const Tensor& x) {
  if (reinterpret_cast<uintptr_t>(x.raw_data()) % 16 != 0) return false;
  for (int d = 0; d < 3; ++d)
    if (x.stride(d) % 8 != 0 && x.size(d) > 1) return false;
  return true;
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

namespace {

// The kernels' view of the operands (dq/dk/dv/dout share the strides of q/k/v/out).
MmaAttnArgs args_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                    const kernels::AttentionMasks& m, Tensor (&masks)[3]) {
  MmaAttnArgs a{};
  a.H = q.size(1), a.Lq = q.size(2), a.Lk = k.size(2);
  a.scale_log2 = static_cast<float>(m.scale * 1.4426950408889634);
  a.causal = m.causal;
  a.async = aligned16(q) && aligned16(k) && aligned16(v) && aligned16(out);
  // Masks on the compute device, alive until the (stream-ordered) launches have run.
  auto on_device = [&](const Tensor& x) {
    if (!x.defined()) return x;
    return x.device() == q.device() ? x.contiguous() : x.to(q.device()).contiguous();
  };
  masks[0] = on_device(m.q_lens), masks[1] = on_device(m.k_lens), masks[2] = on_device(m.key_mask);
  a.q_lens = masks[0].defined() ? masks[0].data<int32_t>() : nullptr;
  a.k_lens = masks[1].defined() ? masks[1].data<int32_t>() : nullptr;
  a.key_mask = masks[2].defined() ? static_cast<const uint8_t*>(masks[2].raw_data()) : nullptr;
  a.q_sb = q.stride(0), a.q_sh = q.stride(1), a.q_sl = q.stride(2);
  a.k_sb = k.stride(0), a.k_sh = k.stride(1), a.k_sl = k.stride(2);
  a.v_sb = v.stride(0), a.v_sh = v.stride(1), a.v_sl = v.stride(2);
  a.o_sb = out.stride(0), a.o_sh = out.stride(1), a.o_sl = out.stride(2);
  return a;
}

bool unit_last_stride(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* x : ts)
    if (x->stride(3) != 1) return false;
  return true;
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
