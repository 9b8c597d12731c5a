// Tile code of the CPU attention kernels, included once per instruction set (no include
// guard, on purpose). The including file defines IRIS_ATTENTION_ISA, the namespace that keeps
// each build's functions distinct, and may first declare faster non-template fp32 versions of
// tile_gemm, transpose_tile and exp_shifted_row: overload resolution prefers them to the
// portable templates below.
//
// FlashAttention-2 (Dao, 2023) on the CPU. Forward, per (b, h, chunk of Br-row query blocks):
// for each block of Bc keys (K^T packed once per chunk), for each query block: S = scale Q K^T
// into a Br x Bc tile, online softmax (running max m and sum l, rescaling the accumulator),
// acc += P V; finally O = acc / l, lse = m + log l. Backward, per (b, h): for each key block,
// for each query block that sees it: P = exp(S - lse), dV += P^T dO, dP = dO V^T,
// dS = P (dP - Di) with Di = rowsum(dO O), dQ += scale dS K, dK += scale dS^T Q. A work item
// owns its rows of O, dQ, dK and dV, so threads share nothing and need no atomics.
#ifndef IRIS_ATTENTION_ISA
#error "define IRIS_ATTENTION_ISA before including attention_tiles.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cpu/attention_detail.h"

namespace iris::cpu::attention_detail::IRIS_ATTENTION_ISA {

// The j loop auto-vectorises (contiguous, restrict); this is the fp64 path and the fp32
// fallback.
template <class T>
void tile_gemm(const GemmArgs<T>& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    T* __restrict c = g.c + i * g.ldc;
    if (!g.accumulate) {
      for (int64_t j = 0; j < g.n; ++j) c[j] = T(0);
    }
    const T* a = g.a + i * g.a_rs;
    for (int64_t l = 0; l < g.k; ++l) {
      const T ail = g.alpha * a[l * g.a_ks];
      const T* __restrict b = g.b + l * g.ldb;
      for (int64_t j = 0; j < g.n; ++j) c[j] += ail * b[j];
    }
  }
}

// exp(x) for x <= 88 in fp32: Cody-Waite range reduction and Cephes' expf polynomial (about
// 1 ulp); x < -87.3 (and -inf) give exactly 0. Branch-free so that loops over it vectorise
// (libm's expf does not without -ffast-math).
inline float exp_f32(float x) {
  constexpr float kMinArg = -87.33654f;  // exp(kMinArg) is FLT_MIN
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float xc = x < kMinArg ? kMinArg : x;
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float poly = 1.9875691500e-4f;
  poly = poly * r + 1.3981999507e-3f;
  poly = poly * r + 8.3334519073e-3f;
  poly = poly * r + 4.1665795894e-2f;
  poly = poly * r + 1.6666665459e-1f;
  poly = poly * r + 5.0000001201e-1f;
  poly = poly * r * r + r + 1.0f;
  const float two_n = __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
  return x < kMinArg ? 0.0f : poly * two_n;
}

template <class T>
inline T exp_scalar(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_f32(x);
  } else {
    return std::exp(x);
  }
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Reductions split into kLanes partial results, so they vectorise without reassociation
// flags; the order is fixed, so results do not depend on threads.
template <class T>
T row_max(const T* __restrict x, int64_t n) {
  constexpr int64_t kLanes = AttentionTileTraits<T>::kLanes;
  T lanes[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) lanes[l] = T(kNegInf);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] = x[j + l] > lanes[l] ? x[j + l] : lanes[l];
  }
  T result = T(kNegInf);
  for (; j < n; ++j) result = x[j] > result ? x[j] : result;
  for (int64_t l = 0; l < kLanes; ++l) result = lanes[l] > result ? lanes[l] : result;
  return result;
}

template <class T>
T row_dot(const T* __restrict x, const T* __restrict y, int64_t n) {
  constexpr int64_t kLanes = AttentionTileTraits<T>::kLanes;
  T lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += x[j + l] * y[j + l];
  }
  T result = T(0);
  for (; j < n; ++j) result += x[j] * y[j];
  for (int64_t l = 0; l < kLanes; ++l) result += lanes[l];
  return result;
}

// p[j] = exp(s[j] - shift) in place; returns the sum of the p[j].
template <class T>
T exp_shifted_row(T* __restrict s, T shift, int64_t n) {
  constexpr int64_t kLanes = AttentionTileTraits<T>::kLanes;
  T lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      s[j + l] = exp_scalar(s[j + l] - shift);
      lanes[l] += s[j + l];
    }
  }
  T result = T(0);
  for (; j < n; ++j) {
    s[j] = exp_scalar(s[j] - shift);
    result += s[j];
  }
  for (int64_t l = 0; l < kLanes; ++l) result += lanes[l];
  return result;
}

inline int64_t align_up(int64_t bytes) {
  constexpr int64_t kAlign = int64_t(AttentionTileTraits<float>::kAlignment);
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

// Carves T arrays out of a workspace; the same sequence of take() sizes the workspace.
class WorkspaceCarver {
 public:
  explicit WorkspaceCarver(void* base) : base_(static_cast<char*>(base)) {}
  template <class T>
  T* take(int64_t count) {
    T* result = base_ ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += align_up(count * int64_t(sizeof(T)));
    return result;
  }
  size_t used() const { return size_t(used_); }

 private:
  char* base_;
  int64_t used_ = 0;
};

// One sample's lengths, and which keys a query row sees.
struct SampleExtent {
  int64_t lq, lk;
  bool causal;
  // Keys [0, key_end(i)) pass the length and causal rules (key_mask applies on top).
  int64_t key_end(int64_t i) const {
    if (!causal) return lk;
    const int64_t end = i + 1 + (lk - lq);
    return end < 0 ? 0 : (end > lk ? lk : end);
  }
  // First query row whose causal window reaches key j.
  int64_t first_query_seeing(int64_t j) const {
    if (!causal) return 0;
    const int64_t i = j - (lk - lq);
    return i < 0 ? 0 : i;
  }
};

inline SampleExtent sample_extent(const AttentionParams& p, int64_t b) {
  return {p.q_lens ? int64_t(p.q_lens[b]) : p.Lq, p.k_lens ? int64_t(p.k_lens[b]) : p.Lk, p.causal};
}

// Additive key-mask row (0 or -inf) for keys [j0, j0 + nc); returns how many are visible.
template <class T>
int64_t key_mask_bias(const AttentionParams& p, int64_t b, int64_t j0, int64_t nc, T* bias) {
  const uint8_t* mask = p.key_mask + b * p.Lk + j0;
  int64_t visible = 0;
  for (int64_t c = 0; c < nc; ++c) {
    bias[c] = mask[c] ? T(kNegInf) : T(0);
    visible += mask[c] ? 0 : 1;
  }
  return visible;
}

// dst[d * ld + c] = rows[c * row_stride + d]: a key tile transposed, so that products with
// it run as row-major GEMMs whose inner loop walks contiguous keys.
template <class T>
void transpose_tile(const T* rows, int64_t row_stride, int64_t nc, int64_t width, T* dst,
                    int64_t ld) {
  for (int64_t c = 0; c < nc; ++c) {
    const T* row = rows + c * row_stride;
    for (int64_t d = 0; d < width; ++d) dst[d * ld + c] = row[d];
  }
}

template <class T>
void zero_rows(T* base, int64_t row_stride, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; ++r) std::memset(base + r * row_stride, 0, width * sizeof(T));
}

// ---------------------------------------------------------------------------------------
// Forward

template <class T>
struct ForwardTiles {
  T* kt;        // D x Bc: K^T of the key block, shared by the chunk's query blocks
  T* s;         // Br x Bc: scores, then probabilities
  T* acc;       // chunk rows x Dv: unnormalised output
  T* row_max;   // chunk rows: running max m
  T* row_sum;   // chunk rows: running sum l
  T* key_bias;  // Bc: key_mask as 0 / -inf
};

template <class T>
ForwardTiles<T> carve_forward(const AttentionParams& p, WorkspaceCarver& carver) {
  using Traits = AttentionTileTraits<T>;
  constexpr int64_t kChunkRows = Traits::kForwardChunkBlocks * Traits::kForwardBlockQ;
  ForwardTiles<T> t;
  t.kt = carver.take<T>(p.D * Traits::kForwardBlockK);
  t.s = carver.take<T>(Traits::kForwardBlockQ * Traits::kForwardBlockK);
  t.acc = carver.take<T>(kChunkRows * p.Dv);
  t.row_max = carver.take<T>(kChunkRows);
  t.row_sum = carver.take<T>(kChunkRows);
  t.key_bias = carver.take<T>(Traits::kForwardBlockK);
  return t;
}

template <class T>
size_t forward_workspace_bytes(const AttentionParams& p) {
  WorkspaceCarver carver(nullptr);
  carve_forward<T>(p, carver);
  return carver.used();
}

// Online-softmax update of one score row (already masked): rescales the accumulator row and
// turns the scores into probabilities relative to the new running max.
template <class T>
void online_softmax_row(T* __restrict s, int64_t nc, T& m, T& l, T* __restrict acc_row,
                        int64_t Dv) {
  const T tile_max = row_max(s, nc);
  const T m_new = tile_max > m ? tile_max : m;
  if (m_new == T(kNegInf)) {  // nothing visible yet: keep m = -inf, l = 0, acc = 0
    for (int64_t c = 0; c < nc; ++c) s[c] = T(0);
    return;
  }
  const T alpha = m == T(kNegInf) ? T(0) : exp_scalar(m - m_new);
  l = l * alpha + exp_shifted_row(s, m_new, nc);
  m = m_new;
  if (alpha != T(1)) {
    for (int64_t d = 0; d < Dv; ++d) acc_row[d] *= alpha;
  }
}

// Query rows [i0, i0 + nr) (all real) against keys [j0, j0 + nc) packed in t.kt; `row` is the
// rows' offset in the chunk's accumulator.
template <class T>
void forward_tile(const AttentionParams& p, const SampleExtent& ext, const ForwardTiles<T>& t,
                  const T* q, const T* v, int64_t row, int64_t i0, int64_t nr, int64_t j0,
                  int64_t nc) {
  constexpr int64_t Bc = AttentionTileTraits<T>::kForwardBlockK;
  T* acc = t.acc + row * p.Dv;
  tile_gemm(
      GemmArgs<T>{nr, nc, p.D, T(p.scale), q + i0 * p.q_sl, p.q_sl, 1, t.kt, Bc, t.s, Bc, false});
  for (int64_t r = 0; r < nr; ++r) {
    T* __restrict s = t.s + r * Bc;
    if (p.key_mask) {
      for (int64_t c = 0; c < nc; ++c) s[c] += t.key_bias[c];
    }
    const int64_t visible = ext.key_end(i0 + r) - j0;
    for (int64_t c = visible < 0 ? 0 : visible; c < nc; ++c) s[c] = T(kNegInf);
    online_softmax_row(s, nc, t.row_max[row + r], t.row_sum[row + r], acc + r * p.Dv, p.Dv);
  }
  tile_gemm(GemmArgs<T>{nr, p.Dv, nc, T(1), t.s, Bc, 1, v + j0 * p.v_sl, p.v_sl, acc, p.Dv, true});
}

// Query blocks [first_block, last_block) of one (b, h): key blocks outside, so each K^T tile
// is packed once per chunk; each row still sees its key blocks in order, so results do not
// depend on the chunking.
template <class T>
void forward_chunk(const ForwardArgs<T>& a, const ForwardTiles<T>& t, int64_t b, int64_t h,
                   int64_t first_block, int64_t last_block) {
  using Traits = AttentionTileTraits<T>;
  constexpr int64_t Br = Traits::kForwardBlockQ, Bc = Traits::kForwardBlockK;
  const AttentionParams& p = *a.p;
  const SampleExtent ext = sample_extent(p, b);
  const int64_t i_begin = first_block * Br;
  const int64_t i_end = last_block * Br < p.Lq ? last_block * Br : p.Lq;
  const int64_t real_end = i_end < ext.lq ? i_end : ext.lq;  // rows >= lq are padding
  const int64_t real_rows = real_end > i_begin ? real_end - i_begin : 0;
  const T* q = a.q + b * p.q_sb + h * p.q_sh;
  const T* k = a.k + b * p.k_sb + h * p.k_sh;
  const T* v = a.v + b * p.v_sb + h * p.v_sh;

  for (int64_t r = 0; r < real_rows; ++r) {
    t.row_max[r] = T(kNegInf);
    t.row_sum[r] = T(0);
  }
  zero_rows(t.acc, p.Dv, real_rows, p.Dv);
  // key_end is nondecreasing in i, so a block's last row bounds the keys the block needs.
  const int64_t chunk_key_end = real_rows > 0 ? ext.key_end(real_end - 1) : 0;
  for (int64_t j0 = 0; j0 < chunk_key_end; j0 += Bc) {
    const int64_t nc = chunk_key_end - j0 < Bc ? chunk_key_end - j0 : Bc;
    if (p.key_mask && key_mask_bias(p, b, j0, nc, t.key_bias) == 0) continue;
    transpose_tile(k + j0 * p.k_sl, p.k_sl, nc, p.D, t.kt, Bc);
    for (int64_t i0 = i_begin; i0 < real_end; i0 += Br) {
      const int64_t nr = real_end - i0 < Br ? real_end - i0 : Br;
      const int64_t block_key_end = ext.key_end(i0 + nr - 1);
      if (block_key_end <= j0) continue;
      const int64_t block_nc = block_key_end - j0 < nc ? block_key_end - j0 : nc;
      forward_tile(p, ext, t, q, v, i0 - i_begin, i0, nr, j0, block_nc);
    }
  }

  T* o = a.o + b * p.o_sb + h * p.o_sh;
  T* lse = a.lse ? a.lse + (b * p.H + h) * p.Lq : nullptr;
  for (int64_t r = 0; r < real_rows; ++r) {
    T* __restrict out = o + (i_begin + r) * p.o_sl;
    const T* __restrict acc = t.acc + r * p.Dv;
    const T l = t.row_sum[r];
    if (l > T(0)) {
      for (int64_t d = 0; d < p.Dv; ++d) out[d] = acc[d] / l;
      if (lse) lse[i_begin + r] = t.row_max[r] + std::log(l);
    } else {
      for (int64_t d = 0; d < p.Dv; ++d) out[d] = T(0);
      if (lse) lse[i_begin + r] = T(kNegInf);
    }
  }
  const int64_t pad_begin = i_begin + real_rows;
  zero_rows(o + pad_begin * p.o_sl, p.o_sl, i_end - pad_begin, p.Dv);
  for (int64_t i = pad_begin; lse && i < i_end; ++i) lse[i] = T(kNegInf);
}

// Item -> (b, h, chunk). Causal chunks alternate light and heavy, so the contiguous item
// ranges that threads take carry similar work.
template <class T>
void forward_items(const ForwardArgs<T>& a, int64_t first, int64_t last, void* workspace) {
  const AttentionParams& p = *a.p;
  WorkspaceCarver carver(workspace);
  const ForwardTiles<T> tiles = carve_forward<T>(p, carver);
  constexpr int64_t Br = AttentionTileTraits<T>::kForwardBlockQ;
  const int64_t query_blocks = (p.Lq + Br - 1) / Br, chunks = a.chunks_per_head;
  for (int64_t item = first; item < last; ++item) {
    const int64_t bh = item / chunks, position = item % chunks;
    const int64_t chunk =
        !p.causal ? position : (position % 2 == 0 ? position / 2 : chunks - 1 - position / 2);
    forward_chunk(a, tiles, bh / p.H, bh % p.H, chunk * query_blocks / chunks,
                  (chunk + 1) * query_blocks / chunks);
  }
}

// ---------------------------------------------------------------------------------------
// Backward

template <class T>
struct BackwardTiles {
  T* kt;        // D x Bc: K^T of the key block
  T* vt;        // Dv x Bc: V^T of the key block
  T* p;         // Br x Bc: probabilities
  T* ds;        // Br x Bc: dP, then scale * dS
  T* di;        // Lq: Di = rowsum(dO * O) of the current (b, h)
  T* key_bias;  // Bc
};

template <class T>
BackwardTiles<T> carve_backward(const AttentionParams& p, WorkspaceCarver& carver) {
  using Traits = AttentionTileTraits<T>;
  BackwardTiles<T> t;
  t.kt = carver.take<T>(p.D * Traits::kBackwardBlockK);
  t.vt = carver.take<T>(p.Dv * Traits::kBackwardBlockK);
  t.p = carver.take<T>(Traits::kBackwardBlockQ * Traits::kBackwardBlockK);
  t.ds = carver.take<T>(Traits::kBackwardBlockQ * Traits::kBackwardBlockK);
  t.di = carver.take<T>(p.Lq);
  t.key_bias = carver.take<T>(Traits::kBackwardBlockK);
  return t;
}

template <class T>
size_t backward_workspace_bytes(const AttentionParams& p) {
  WorkspaceCarver carver(nullptr);
  carve_backward<T>(p, carver);
  return carver.used();
}

// Pointers of one (b, h) in every tensor of the backward.
template <class T>
struct HeadView {
  const T *q, *k, *v, *o, *dout, *lse;
  T *dq, *dk, *dv;
};

// P of one query block against one key block, recomputed from lse; invisible entries and
// rows without visible keys (lse = -inf) are 0.
template <class T>
void recompute_probabilities(const AttentionParams& p, const SampleExtent& ext,
                             const HeadView<T>& hv, const BackwardTiles<T>& t, int64_t i0,
                             int64_t nr, int64_t j0, int64_t nc) {
  constexpr int64_t Bc = AttentionTileTraits<T>::kBackwardBlockK;
  tile_gemm(GemmArgs<T>{nr, nc, p.D, T(p.scale), hv.q + i0 * p.q_sl, p.q_sl, 1, t.kt, Bc, t.p, Bc,
                        false});
  for (int64_t r = 0; r < nr; ++r) {
    T* __restrict prow = t.p + r * Bc;
    const T lse = hv.lse[i0 + r];
    const int64_t visible_end = ext.key_end(i0 + r) - j0;
    const int64_t visible = lse == T(kNegInf) ? 0 : (visible_end < 0 ? 0 : visible_end);
    const int64_t n_exp = visible < nc ? visible : nc;
    if (p.key_mask) {
      for (int64_t c = 0; c < n_exp; ++c) prow[c] += t.key_bias[c];
    }
    exp_shifted_row(prow, lse, n_exp);
    for (int64_t c = n_exp; c < nc; ++c) prow[c] = T(0);
  }
}

template <class T>
void backward_key_block(const AttentionParams& p, const SampleExtent& ext, const HeadView<T>& hv,
                        const BackwardTiles<T>& t, int64_t j0, int64_t nc) {
  using Traits = AttentionTileTraits<T>;
  constexpr int64_t Br = Traits::kBackwardBlockQ, Bc = Traits::kBackwardBlockK;
  const T scale = T(p.scale);
  transpose_tile(hv.k + j0 * p.k_sl, p.k_sl, nc, p.D, t.kt, Bc);
  transpose_tile(hv.v + j0 * p.v_sl, p.v_sl, nc, p.Dv, t.vt, Bc);
  T* dk = hv.dk + j0 * p.k_sl;
  T* dv = hv.dv + j0 * p.v_sl;
  for (int64_t i0 = ext.first_query_seeing(j0); i0 < ext.lq; i0 += Br) {
    const int64_t nr = ext.lq - i0 < Br ? ext.lq - i0 : Br;
    const T* q = hv.q + i0 * p.q_sl;
    const T* dout = hv.dout + i0 * p.o_sl;
    recompute_probabilities(p, ext, hv, t, i0, nr, j0, nc);
    // dV += P^T dO
    tile_gemm(GemmArgs<T>{nc, p.Dv, nr, T(1), t.p, 1, Bc, dout, p.o_sl, dv, p.v_sl, true});
    // dP = dO V^T, then dS = scale * P * (dP - Di), folding the scale of both products in.
    tile_gemm(GemmArgs<T>{nr, nc, p.Dv, T(1), dout, p.o_sl, 1, t.vt, Bc, t.ds, Bc, false});
    for (int64_t r = 0; r < nr; ++r) {
      const T* __restrict prow = t.p + r * Bc;
      T* __restrict dsrow = t.ds + r * Bc;
      const T di = t.di[i0 + r];
      for (int64_t c = 0; c < nc; ++c) dsrow[c] = scale * prow[c] * (dsrow[c] - di);
    }
    // dQ += dS K, dK += dS^T Q
    tile_gemm(GemmArgs<T>{nr, p.D, nc, T(1), t.ds, Bc, 1, hv.k + j0 * p.k_sl, p.k_sl,
                          hv.dq + i0 * p.q_sl, p.q_sl, true});
    tile_gemm(GemmArgs<T>{nc, p.D, nr, T(1), t.ds, 1, Bc, q, p.q_sl, dk, p.k_sl, true});
  }
}

template <class T>
void backward_head(const BackwardArgs<T>& a, const BackwardTiles<T>& t, int64_t b, int64_t h) {
  constexpr int64_t Bc = AttentionTileTraits<T>::kBackwardBlockK;
  const AttentionParams& p = *a.p;
  const SampleExtent ext = sample_extent(p, b);
  const HeadView<T> hv{a.q + b * p.q_sb + h * p.q_sh,    a.k + b * p.k_sb + h * p.k_sh,
                       a.v + b * p.v_sb + h * p.v_sh,    a.o + b * p.o_sb + h * p.o_sh,
                       a.dout + b * p.o_sb + h * p.o_sh, a.lse + (b * p.H + h) * p.Lq,
                       a.dq + b * p.q_sb + h * p.q_sh,   a.dk + b * p.k_sb + h * p.k_sh,
                       a.dv + b * p.v_sb + h * p.v_sh};
  zero_rows(hv.dq, p.q_sl, p.Lq, p.D);
  zero_rows(hv.dk, p.k_sl, p.Lk, p.D);
  zero_rows(hv.dv, p.v_sl, p.Lk, p.Dv);
  for (int64_t i = 0; i < ext.lq; ++i) {
    t.di[i] = row_dot(hv.dout + i * p.o_sl, hv.o + i * p.o_sl, p.Dv);
  }
  for (int64_t j0 = 0; j0 < ext.lk; j0 += Bc) {
    const int64_t nc = ext.lk - j0 < Bc ? ext.lk - j0 : Bc;
    if (p.key_mask && key_mask_bias(p, b, j0, nc, t.key_bias) == 0) continue;
    backward_key_block(p, ext, hv, t, j0, nc);
  }
}

template <class T>
void backward_items(const BackwardArgs<T>& a, int64_t first, int64_t last, void* workspace) {
  WorkspaceCarver carver(workspace);
  const BackwardTiles<T> tiles = carve_backward<T>(*a.p, carver);
  for (int64_t item = first; item < last; ++item) {
    backward_head(a, tiles, item / a.p->H, item % a.p->H);
  }
}

#define IRIS_ATTENTION_STRINGIFY2(x) #x
#define IRIS_ATTENTION_STRINGIFY(x) IRIS_ATTENTION_STRINGIFY2(x)

template <class T>
const AttentionKernels<T>* kernel_table() {
  static constexpr AttentionKernels<T> kTable{IRIS_ATTENTION_STRINGIFY(IRIS_ATTENTION_ISA),
                                              forward_workspace_bytes<T>, forward_items<T>,
                                              backward_workspace_bytes<T>, backward_items<T>};
  return &kTable;
}

#undef IRIS_ATTENTION_STRINGIFY
#undef IRIS_ATTENTION_STRINGIFY2

}  // namespace iris::cpu::attention_detail::IRIS_ATTENTION_ISA
