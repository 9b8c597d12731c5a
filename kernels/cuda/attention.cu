// CUDA fused attention (the `attention_forward` / `attention_backward` tables), the
// FlashAttention-2 path on CUDA cores (fp32 for float, fp64 for double). Semantics are the
// CPU's (kernels/cpu/attention.h): per-sample q_lens / k_lens, key_mask, bottom-right causal,
// rows that see no key give 0, lse = -inf and zero gradients.
//
// forward   one block per (query tile, b*h); each warp owns kRowsPerWarp query rows, each lane
//           one key of the current K/V tile (staged through shared memory). Scores, running
//           max and sum live in registers (online softmax, warp-shuffle max/sum); the lane's
//           share of the output row (columns lane + 32t) accumulates in registers; lse saved.
// backward  1. Di = rowsum(dO * O) (one warp per row, shuffle reduction);
//           2. dK/dV: one block per (key tile, b*h) walks the query tiles, recomputing
//              P = exp(S - lse); every key's gradient is owned by one warp (no atomics);
//           3. dQ: one block per (query tile, b*h) walks the key tiles, recomputing P.
// All reductions run in a fixed order: results are deterministic.
#include <cmath>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/cuda/attention_mma.h"
#include "kernels/cuda/online_softmax.cuh"
#include "kernels/elementwise.h"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct AttnTraits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kKeyTile = 32;        // keys per tile in forward / dQ: one per lane
  static constexpr int kQueryTile = 32;      // queries per tile in dK/dV: one per lane
  static constexpr int kFwdRowsPerWarp = 4;  // forward: 16 query rows per block
  static constexpr int kDqRowsPerWarp = 2;   // dQ: 8 query rows per block (more smem per row)
  static constexpr int kKeysPerWarp = 2;     // dK/dV: 8 keys per block
  static constexpr int kMaxHeadDim = 128;
  static constexpr int kColsPerLane = kMaxHeadDim / 32;
  static constexpr size_t kMaxSmem = 48 * 1024;  // no opt-in: runs on every sm_80+ part
  static_assert(kKeyTile == 32 && kQueryTile == 32, "one key / query per lane");
  static_assert(kMaxHeadDim % 32 == 0, "head dim split over the lanes");
};

struct AttnArgs {
  int64_t B, H, Lq, Lk, D, Dv;
  double scale;
  bool causal;
  const int32_t* q_lens;
  const int32_t* k_lens;
  const uint8_t* key_mask;
  int64_t q_sb, q_sh, q_sl, k_sb, k_sh, k_sl, v_sb, v_sh, v_sl, o_sb, o_sh, o_sl;
};

template <class T>
__device__ T warp_max(T v) {
  for (int off = 16; off > 0; off >>= 1) {
    const T o = __shfl_xor_sync(kFullMask, v, off);
    v = o > v ? o : v;
  }
  return v;
}

template <class T>
__device__ T warp_sum(T v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

// Sample b's lengths.
__device__ void lengths(const AttnArgs& a, int64_t b, int64_t& lq, int64_t& lk) {
  lq = a.q_lens ? a.q_lens[b] : a.Lq;
  lk = a.k_lens ? a.k_lens[b] : a.Lk;
}

// Does query row i (< Lq) see key j in sample b?
__device__ bool visible(const AttnArgs& a, int64_t b, int64_t lq, int64_t lk, int64_t i,
                        int64_t j) {
  if (i >= lq || j >= lk) return false;
  if (a.key_mask && a.key_mask[b * a.Lk + j]) return false;
  return !a.causal || j <= i + (lk - lq);
}

// Exclusive bound on the keys any of rows [i0, i1) of sample b can see.
__device__ int64_t key_end(const AttnArgs& a, int64_t lq, int64_t lk, int64_t i1) {
  int64_t end = lk;
  if (a.causal) {
    const int64_t c = (i1 - 1) + (lk - lq) + 1;
    end = c < end ? c : end;
  }
  return end < 0 ? 0 : end;
}

// Stages rows [r0, r0 + rows) of a [L, cols] matrix (row stride sl) into smem with row pitch
// `pitch`, zero-filling rows past L. Consecutive threads read consecutive columns.
template <class T>
__device__ void stage(iris::smem_ptr<T> dst, const T* src, int64_t sl, int64_t r0, int rows,
                      int64_t L, int cols, int pitch) {
  for (int e = static_cast<int>(threadIdx.x); e < rows * cols; e += AttnTraits::kThreads) {
    const int r = e / cols, c = e % cols;
    const int64_t row = r0 + r;
    dst[r * pitch + c] = row < L ? src[row * sl + c] : T(0);
  }
}

template <class T, int kRowsPerWarp>
__global__ void __launch_bounds__(AttnTraits::kThreads)
    attn_forward_kernel(AttnArgs a, const T* q, const T* k, const T* v, T* o, T* lse) {
  using Tr = AttnTraits;
  constexpr int kRows = kRowsPerWarp * Tr::kWarps;
  const int D = static_cast<int>(a.D), Dv = static_cast<int>(a.Dv);
  IRIS_DYNAMIC_SHARED(T, smem);
  iris::smem_ptr<T> qs = smem;                         // [kRows][D]
  iris::smem_ptr<T> ks = qs + kRows * D;               // [kKeyTile][D + 1]
  iris::smem_ptr<T> vs = ks + Tr::kKeyTile * (D + 1);  // [kKeyTile][Dv]

  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  int64_t lq, lk;
  lengths(a, b, lq, lk);
  q += b * a.q_sb + h * a.q_sh;
  k += b * a.k_sb + h * a.k_sh;
  v += b * a.v_sb + h * a.v_sh;
  o += b * a.o_sb + h * a.o_sh;

  stage<T>(qs, q, a.q_sl, i0, kRows, a.Lq, D, D);
  const T scale = static_cast<T>(a.scale);
  T m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][Tr::kColsPerLane];
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    m[rr] = neg_inf<T>();
    l[rr] = T(0);
    for (int t = 0; t < Tr::kColsPerLane; ++t) acc[rr][t] = T(0);
  }

  const int64_t kend = key_end(a, lq, lk, i0 + kRows);
  for (int64_t j0 = 0; j0 < kend; j0 += Tr::kKeyTile) {
    __syncthreads();  // the previous tile's readers are done
    stage<T>(ks, k, a.k_sl, j0, Tr::kKeyTile, a.Lk, D, D + 1);
    stage<T>(vs, v, a.v_sl, j0, Tr::kKeyTile, a.Lk, Dv, Dv);
    __syncthreads();
    const int64_t j = j0 + lane;
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t i = i0 + r;
      T s = T(0);
      for (int d = 0; d < D; ++d) {
        const T qv = qs[r * D + d], kv = ks[lane * (D + 1) + d];
        s += qv * kv;
      }
      const bool vis = i < a.Lq && visible(a, b, lq, lk, i, j);
      s = vis ? s * scale : neg_inf<T>();
      const T tmax = warp_max(s);
      const T m_new = m[rr] > tmax ? m[rr] : tmax;
      const T p = vis ? std::exp(s - m_new) : T(0);
      const T alpha = m[rr] == neg_inf<T>() ? T(0) : std::exp(m[rr] - m_new);
      l[rr] = l[rr] * alpha + warp_sum(p);
      m[rr] = m_new;
      for (int t = 0; t < Tr::kColsPerLane; ++t) acc[rr][t] *= alpha;
      for (int jj = 0; jj < Tr::kKeyTile; ++jj) {
        const T pj = __shfl_sync(kFullMask, p, jj);
        if (pj == T(0)) continue;  // warp-uniform
        for (int t = 0; t < Tr::kColsPerLane; ++t) {
          const int c = lane + 32 * t;
          if (c < Dv) {
            const T vv = vs[jj * Dv + c];
            acc[rr][t] += pj * vv;
          }
        }
      }
    }
  }

  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= a.Lq) continue;
    const bool any = l[rr] > T(0);
    const T inv = any ? T(1) / l[rr] : T(0);
    for (int t = 0; t < Tr::kColsPerLane; ++t) {
      const int c = lane + 32 * t;
      if (c < Dv) o[i * a.o_sl + c] = acc[rr][t] * inv;
    }
    if (lse && lane == 0) lse[bh * a.Lq + i] = any ? m[rr] + std::log(l[rr]) : neg_inf<T>();
  }
}

// delta[bh, i] = sum_c dO[i, c] * O[i, c]: one warp per row.
template <class T>
__global__ void __launch_bounds__(AttnTraits::kThreads)
    attn_backward_delta_kernel(AttnArgs a, const T* o, const T* dout, T* delta) {
  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * AttnTraits::kWarps + warp;
  if (i >= a.Lq) return;  // warp-uniform; no barriers in this kernel
  const int64_t off = b * a.o_sb + h * a.o_sh + i * a.o_sl;
  T s = T(0);
  for (int64_t c = lane; c < a.Dv; c += 32) s += dout[off + c] * o[off + c];
  s = warp_sum(s);
  if (lane == 0) delta[bh * a.Lq + i] = s;
}

// dK, dV for kKeysPerWarp * kWarps keys per block, over all query tiles.
template <class T>
__global__ void __launch_bounds__(AttnTraits::kThreads)
    attn_backward_dkdv_kernel(AttnArgs a, const T* q, const T* k, const T* v, const T* dout,
                              const T* lse, const T* delta, T* dk, T* dv) {
  using Tr = AttnTraits;
  constexpr int kKeys = Tr::kKeysPerWarp * Tr::kWarps;
  constexpr int kQ = Tr::kQueryTile;
  const int D = static_cast<int>(a.D), Dv = static_cast<int>(a.Dv);
  IRIS_DYNAMIC_SHARED(T, smem);
  iris::smem_ptr<T> kts = smem;                  // [kKeys][D]
  iris::smem_ptr<T> vts = kts + kKeys * D;       // [kKeys][Dv]
  iris::smem_ptr<T> qs = vts + kKeys * Dv;       // [kQ][D + 1]
  iris::smem_ptr<T> dos = qs + kQ * (D + 1);     // [kQ][Dv + 1]
  iris::smem_ptr<T> lses = dos + kQ * (Dv + 1);  // [kQ]
  iris::smem_ptr<T> dels = lses + kQ;            // [kQ]

  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kKeys;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  int64_t lq, lk;
  lengths(a, b, lq, lk);
  q += b * a.q_sb + h * a.q_sh;
  k += b * a.k_sb + h * a.k_sh;
  v += b * a.v_sb + h * a.v_sh;
  dk += b * a.k_sb + h * a.k_sh;
  dv += b * a.v_sb + h * a.v_sh;
  const int64_t doff = b * a.o_sb + h * a.o_sh;
  lse += bh * a.Lq;
  delta += bh * a.Lq;

  stage<T>(kts, k, a.k_sl, j0, kKeys, a.Lk, D, D);
  stage<T>(vts, v, a.v_sl, j0, kKeys, a.Lk, Dv, Dv);
  const T scale = static_cast<T>(a.scale);
  T gk[Tr::kKeysPerWarp][Tr::kColsPerLane], gv[Tr::kKeysPerWarp][Tr::kColsPerLane];
  for (int kr = 0; kr < Tr::kKeysPerWarp; ++kr)
    for (int t = 0; t < Tr::kColsPerLane; ++t) gk[kr][t] = gv[kr][t] = T(0);

  // Rows that can see a key of this block: causal ones start at j0 - (lk - lq).
  int64_t istart = 0;
  if (a.causal) istart = j0 - (lk - lq) > 0 ? j0 - (lk - lq) : 0;
  const int64_t iend = lq < a.Lq ? lq : a.Lq;
  for (int64_t i0 = istart; i0 < iend && j0 < lk; i0 += kQ) {
    __syncthreads();
    stage<T>(qs, q, a.q_sl, i0, kQ, a.Lq, D, D + 1);
    stage<T>(dos, dout + doff, a.o_sl, i0, kQ, a.Lq, Dv, Dv + 1);
    if (threadIdx.x < kQ) {
      const int64_t i = i0 + threadIdx.x;
      lses[threadIdx.x] = i < a.Lq ? lse[i] : neg_inf<T>();
      dels[threadIdx.x] = i < a.Lq ? delta[i] : T(0);
    }
    __syncthreads();
    const int64_t i = i0 + lane;
    const T lse_i = lses[lane], del_i = dels[lane];
    for (int kr = 0; kr < Tr::kKeysPerWarp; ++kr) {
      const int kk = warp * Tr::kKeysPerWarp + kr;
      const int64_t j = j0 + kk;
      T s = T(0), dp = T(0);
      for (int d = 0; d < D; ++d) {
        const T qv = qs[lane * (D + 1) + d], kv = kts[kk * D + d];
        s += qv * kv;
      }
      for (int c = 0; c < Dv; ++c) {
        const T gv_ = dos[lane * (Dv + 1) + c], vv = vts[kk * Dv + c];
        dp += gv_ * vv;
      }
      const bool vis = i < a.Lq && j < a.Lk && visible(a, b, lq, lk, i, j) && lse_i != neg_inf<T>();
      const T p = vis ? std::exp(s * scale - lse_i) : T(0);
      const T ds = p * (dp - del_i);
      for (int ii = 0; ii < kQ; ++ii) {
        const T pi = __shfl_sync(kFullMask, p, ii), dsi = __shfl_sync(kFullMask, ds, ii);
        if (pi == T(0)) continue;  // warp-uniform; p = 0 implies ds = 0
        for (int t = 0; t < Tr::kColsPerLane; ++t) {
          const int c = lane + 32 * t;
          if (c < Dv) {
            const T g = dos[ii * (Dv + 1) + c];
            gv[kr][t] += pi * g;
          }
          if (c < D) {
            const T qv = qs[ii * (D + 1) + c];
            gk[kr][t] += dsi * qv;
          }
        }
      }
    }
  }

  for (int kr = 0; kr < Tr::kKeysPerWarp; ++kr) {
    const int64_t j = j0 + warp * Tr::kKeysPerWarp + kr;
    if (j >= a.Lk) continue;
    for (int t = 0; t < Tr::kColsPerLane; ++t) {
      const int c = lane + 32 * t;
      if (c < D) dk[j * a.k_sl + c] = gk[kr][t] * scale;
      if (c < Dv) dv[j * a.v_sl + c] = gv[kr][t];
    }
  }
}

// dQ for kRowsPerWarp * kWarps query rows per block, over all key tiles.
template <class T, int kRowsPerWarp>
__global__ void __launch_bounds__(AttnTraits::kThreads)
    attn_backward_dq_kernel(AttnArgs a, const T* q, const T* k, const T* v, const T* dout,
                            const T* lse, const T* delta, T* dq) {
  using Tr = AttnTraits;
  constexpr int kRows = kRowsPerWarp * Tr::kWarps;
  const int D = static_cast<int>(a.D), Dv = static_cast<int>(a.Dv);
  IRIS_DYNAMIC_SHARED(T, smem);
  iris::smem_ptr<T> qs = smem;                         // [kRows][D]
  iris::smem_ptr<T> dos = qs + kRows * D;              // [kRows][Dv]
  iris::smem_ptr<T> ks = dos + kRows * Dv;             // [kKeyTile][D + 1]
  iris::smem_ptr<T> vs = ks + Tr::kKeyTile * (D + 1);  // [kKeyTile][Dv + 1]

  const int64_t bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  int64_t lq, lk;
  lengths(a, b, lq, lk);
  q += b * a.q_sb + h * a.q_sh;
  k += b * a.k_sb + h * a.k_sh;
  v += b * a.v_sb + h * a.v_sh;
  dq += b * a.q_sb + h * a.q_sh;
  stage<T>(qs, q, a.q_sl, i0, kRows, a.Lq, D, D);
  stage<T>(dos, dout + b * a.o_sb + h * a.o_sh, a.o_sl, i0, kRows, a.Lq, Dv, Dv);

  const T scale = static_cast<T>(a.scale);
  T lse_r[kRowsPerWarp], del_r[kRowsPerWarp], acc[kRowsPerWarp][Tr::kColsPerLane];
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = i0 + warp * kRowsPerWarp + rr;
    lse_r[rr] = i < a.Lq ? lse[bh * a.Lq + i] : neg_inf<T>();
    del_r[rr] = i < a.Lq ? delta[bh * a.Lq + i] : T(0);
    for (int t = 0; t < Tr::kColsPerLane; ++t) acc[rr][t] = T(0);
  }

  const int64_t kend = key_end(a, lq, lk, i0 + kRows);
  for (int64_t j0 = 0; j0 < kend; j0 += Tr::kKeyTile) {
    __syncthreads();
    stage<T>(ks, k, a.k_sl, j0, Tr::kKeyTile, a.Lk, D, D + 1);
    stage<T>(vs, v, a.v_sl, j0, Tr::kKeyTile, a.Lk, Dv, Dv + 1);
    __syncthreads();
    const int64_t j = j0 + lane;
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int r = warp * kRowsPerWarp + rr;
      const int64_t i = i0 + r;
      T s = T(0), dp = T(0);
      for (int d = 0; d < D; ++d) {
        const T qv = qs[r * D + d], kv = ks[lane * (D + 1) + d];
        s += qv * kv;
      }
      for (int c = 0; c < Dv; ++c) {
        const T g = dos[r * Dv + c], vv = vs[lane * (Dv + 1) + c];
        dp += g * vv;
      }
      const bool vis = i < a.Lq && visible(a, b, lq, lk, i, j) && lse_r[rr] != neg_inf<T>();
      const T p = vis ? std::exp(s * scale - lse_r[rr]) : T(0);
      const T ds = p * (dp - del_r[rr]);
      for (int jj = 0; jj < Tr::kKeyTile; ++jj) {
        const T dsj = __shfl_sync(kFullMask, ds, jj);
        if (dsj == T(0)) continue;  // warp-uniform
        for (int t = 0; t < Tr::kColsPerLane; ++t) {
          const int c = lane + 32 * t;
          if (c < D) {
            const T kv = ks[jj * (D + 1) + c];
            acc[rr][t] += dsj * kv;
          }
        }
      }
    }
  }

  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int64_t i = i0 + warp * kRowsPerWarp + rr;
    if (i >= a.Lq) continue;
    for (int t = 0; t < Tr::kColsPerLane; ++t) {
      const int c = lane + 32 * t;
      if (c < D) dq[i * a.q_sl + c] = acc[rr][t] * scale;
    }
  }
}

template <class Fn>
void dispatch_float(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32:
      return fn.template operator()<float>();
    case DType::f64:
      return fn.template operator()<double>();
    default:
      IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cuda (float32/float64)");
  }
}

// Masks on the compute device (lengths may arrive on the host); kept alive by the caller.
struct DeviceMasks {
  Tensor q_lens, k_lens, key_mask;
};

AttnArgs args_of(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                 const kernels::AttentionMasks& m, DeviceMasks& dm) {
  AttnArgs a{};
  a.B = q.size(0), a.H = q.size(1), a.Lq = q.size(2), a.Lk = k.size(2), a.D = q.size(3);
  a.Dv = v.size(3);
  IRIS_CHECK(a.D <= AttnTraits::kMaxHeadDim && a.Dv <= AttnTraits::kMaxHeadDim, op,
             ": head dims up to ", AttnTraits::kMaxHeadDim, " on cuda, got D=", a.D, " Dv=", a.Dv);
  IRIS_CHECK(a.B * a.H <= 65535, op, ": B*H = ", a.B * a.H, " exceeds the grid limit on cuda");
  for (const Tensor* t : {&q, &k, &v, &o})
    IRIS_CHECK(t->stride(3) == 1 || t->size(3) == 1, op, ": ", t->desc(),
               " needs a unit stride in its last dim");
  auto on_device = [&](const Tensor& t) {
    if (!t.defined()) return t;
    return t.device() == q.device() ? t.contiguous() : t.to(q.device()).contiguous();
  };
  dm.q_lens = on_device(m.q_lens);
  dm.k_lens = on_device(m.k_lens);
  dm.key_mask = on_device(m.key_mask);
  a.scale = m.scale;
  a.causal = m.causal;
  a.q_lens = dm.q_lens.defined() ? dm.q_lens.data<int32_t>() : nullptr;
  a.k_lens = dm.k_lens.defined() ? dm.k_lens.data<int32_t>() : nullptr;
  a.key_mask =
      dm.key_mask.defined() ? static_cast<const uint8_t*>(dm.key_mask.raw_data()) : nullptr;
  a.q_sb = q.stride(0), a.q_sh = q.stride(1), a.q_sl = q.stride(2);
  a.k_sb = k.stride(0), a.k_sh = k.stride(1), a.k_sl = k.stride(2);
  a.v_sb = v.stride(0), a.v_sh = v.stride(1), a.v_sl = v.stride(2);
  a.o_sb = o.stride(0), a.o_sh = o.stride(1), a.o_sl = o.stride(2);
  return a;
}

size_t check_smem(const char* op, size_t elems, size_t elem_bytes) {
  const size_t bytes = elems * elem_bytes;
  IRIS_CHECK(bytes <= AttnTraits::kMaxSmem, op, ": head dims need ", bytes,
             " bytes of shared memory on cuda (limit ", AttnTraits::kMaxSmem,
             "); use float32 or smaller heads");
  return bytes;
}

unsigned blocks_for(int64_t n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

bool is_16bit(DType dt) { return dt == DType::bf16 || dt == DType::f16; }

// A float32 copy of a 16-bit tensor on its device (dense; no autograd record).
Tensor upcast(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), DType::f32, t.device());
  kernels::copy_table().get(t.device())(t, out);
  return out;
}

void forward_cuda(const Tensor& q, const Tensor& k, const Tensor& v,
                  const kernels::AttentionMasks& m, const Tensor& out, const Tensor& lse);

// bf16 / fp16: tensor cores where the shapes allow, else the fp32 kernels on upcast copies
// (lse is float32 either way).
void forward_16bit(const Tensor& q, const Tensor& k, const Tensor& v,
                   const kernels::AttentionMasks& m, const Tensor& out, const Tensor& lse) {
  if (attention_forward_mma(q, k, v, m, out, lse)) return;
  const Tensor out32 = Tensor::empty(out.shape(), DType::f32, out.device());
  forward_cuda(upcast(q), upcast(k), upcast(v), m, out32, lse);
  kernels::copy_table().get(out.device())(out32, out);
}

void forward_cuda(const Tensor& q, const Tensor& k, const Tensor& v,
                  const kernels::AttentionMasks& m, const Tensor& out, const Tensor& lse) {
  const char* op = "attention_forward";
  if (is_16bit(q.dtype())) return forward_16bit(q, k, v, m, out, lse);
  DeviceMasks dm;
  const AttnArgs a = args_of(op, q, k, v, out, m, dm);
  if (a.Lq == 0 || a.B * a.H == 0) return;
  dispatch_float(q.dtype(), op, [&]<class T>() {
    constexpr int kRows = AttnTraits::kFwdRowsPerWarp * AttnTraits::kWarps;
    const size_t smem =
        check_smem(op, kRows * a.D + AttnTraits::kKeyTile * (a.D + 1) + AttnTraits::kKeyTile * a.Dv,
                   sizeof(T));
    IRIS_LAUNCH((attn_forward_kernel<T, AttnTraits::kFwdRowsPerWarp>),
                dim3(blocks_for(a.Lq, kRows), static_cast<unsigned>(a.B * a.H)),
                dim3(AttnTraits::kThreads), smem, nullptr, a, static_cast<const T*>(q.raw_data()),
                static_cast<const T*>(k.raw_data()), static_cast<const T*>(v.raw_data()),
                static_cast<T*>(out.raw_data()), lse.defined() ? lse.data<T>() : nullptr);
  });
}

void backward_cuda(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                   const Tensor& dout, const Tensor& lse, const kernels::AttentionMasks& m,
                   const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  const char* op = "attention_backward";
  if (is_16bit(q.dtype())) {
    if (attention_backward_mma(q, k, v, out, dout, lse, m, dq, dk, dv)) return;
    // Else (head dims other than 32 / 64 / 128, Dv != D, strided last dims) the fp32 kernels
    // on upcast copies (from the same 16-bit values and the fp32 lse the forward saved),
    // gradients rounded once to 16 bits.
    const Tensor dq32 = Tensor::empty(q.shape(), DType::f32, q.device()),
                 dk32 = Tensor::empty(k.shape(), DType::f32, k.device()),
                 dv32 = Tensor::empty(v.shape(), DType::f32, v.device());
    backward_cuda(upcast(q), upcast(k), upcast(v), upcast(out), upcast(dout), lse, m, dq32, dk32,
                  dv32);
    const auto copy = kernels::copy_table().get(q.device());
    copy(dq32, dq), copy(dk32, dk), copy(dv32, dv);
    return;
  }
  DeviceMasks dm;
  const AttnArgs a = args_of(op, q, k, v, out, m, dm);
  IRIS_CHECK(dout.strides() == out.strides() && dq.strides() == q.strides() &&
                 dk.strides() == k.strides() && dv.strides() == v.strides(),
             op, ": gradients must share the strides of their forward tensors");
  if (a.B * a.H == 0) return;
  dispatch_float(q.dtype(), op, [&]<class T>() {
    using Tr = AttnTraits;
    const unsigned bh = static_cast<unsigned>(a.B * a.H);
    Tensor delta = Tensor::empty({a.B, a.H, std::max<int64_t>(a.Lq, 1)}, q.dtype(), q.device());
    const T *qp = static_cast<const T*>(q.raw_data()), *kp = static_cast<const T*>(k.raw_data()),
            *vp = static_cast<const T*>(v.raw_data()), *op_ = static_cast<const T*>(out.raw_data()),
            *dop = static_cast<const T*>(dout.raw_data()), *lp = lse.data<T>();
    T* dp = delta.data<T>();
    if (a.Lq > 0)
      IRIS_LAUNCH(attn_backward_delta_kernel<T>, dim3(blocks_for(a.Lq, Tr::kWarps), bh),
                  dim3(Tr::kThreads), 0, nullptr, a, op_, dop, dp);
    constexpr int kKeys = Tr::kKeysPerWarp * Tr::kWarps;
    const size_t smem_kv = check_smem(op,
                                      kKeys * a.D + kKeys * a.Dv + Tr::kQueryTile * (a.D + 1) +
                                          Tr::kQueryTile * (a.Dv + 1) + 2 * Tr::kQueryTile,
                                      sizeof(T));
    IRIS_LAUNCH(attn_backward_dkdv_kernel<T>, dim3(blocks_for(a.Lk, kKeys), bh), dim3(Tr::kThreads),
                smem_kv, nullptr, a, qp, kp, vp, dop, lp, dp, static_cast<T*>(dk.raw_data()),
                static_cast<T*>(dv.raw_data()));
    if (a.Lq == 0) return;
    constexpr int kRows = Tr::kDqRowsPerWarp * Tr::kWarps;
    const size_t smem_q =
        check_smem(op, kRows * a.D + kRows * a.Dv + Tr::kKeyTile * (a.D + 1 + a.Dv + 1), sizeof(T));
    IRIS_LAUNCH((attn_backward_dq_kernel<T, Tr::kDqRowsPerWarp>), dim3(blocks_for(a.Lq, kRows), bh),
                dim3(Tr::kThreads), smem_q, nullptr, a, qp, kp, vp, dop, lp, dp,
                static_cast<T*>(dq.raw_data()));
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(attention_forward, CUDA, forward_cuda);
IRIS_REGISTER_KERNEL(attention_backward, CUDA, backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS
