// CUDA 2-D convolution (the conv2d_* tables) as implicit GEMM: no column matrix in global
// memory. One main loop (the shared-memory tiled GEMM of gemm.cu: register-prefetched,
// double-buffered K slabs, a kTM x kTN register tile per thread) serves all three
// directions; each direction is a Problem that says how to gather an A(m, k) and a B(k, n)
// element straight from the NCHW tensors (the im2col index computed on the fly, zero in the
// padding) and where C(m, n) goes. Per group g (blockIdx.z):
//   forward      C[co, q]    = sum_k  W[co, k]        * col[k, q]       q = (n, oh, ow)
//   backward-data C[ci, q']  = sum_k' W[co, ci, kh, kw] * dY[n, co, oh, ow]  q' = (n, ih, iw),
//                k' = (co, kh, kw), oh = (ih + pad - kh dil) / stride where that divides;
//                one launch per stride phase ((ih + pad) % sh, (iw + pad) % sw), each a dense
//                GEMM over only the taps that divide, 16-row tiles when Cin per group <= 16,
//                split-K (fixed-order sum) when a phase has few blocks and a long K
// Backward-data work, fp32, GFLOP useful / issued before -> after the phases, the 16-row tile
// and split-K (H200 timings before: bench notes; after: not measured yet):
//   N8 C3 224^2 K64 7x7 s2:    1.86 / 161 -> 10.1 (6272 -> 3136 blocks, 196 -> <=64 slabs)
//   N32 C3 64^2 K32 3x3 s2:    0.055 / 4.8 -> 0.30
//   N32 C64 16^2 K128 3x3 s2:  0.28 / 1.21 -> 0.30 (4 launches x 32 blocks x 4 splits)
//   N32 C256 4^2 K256 3x3 s1:  0.42 / 0.60 -> 0.60 (32 blocks x 144 slabs -> 288 x 16)
//   N8 C512 7^2 K512 3x3 s1:   1.51 / 2.11 -> 2.11 (56 blocks x 288 slabs -> 280 x 58)
//   backward-weight C[co, k] = sum_q  dY[n, co, oh, ow] * col[k, q], split over q into
//                partial sums that a second kernel adds in a fixed order (no atomics)
// Accumulation is in T (float or double). bf16 / fp16 run on tensor cores with the tile
// code of mma_tile.cuh and fp32 accumulation: the forward stages the weight slab by cp.async
// and gathers the column slab (register-prefetched a slab ahead), bias added in fp32; the
// two backward passes (conv_backward_mma_kernel) gather both operands into the free slab
// buffer while the other one computes, and the weight gradient's split partial sums stay
// fp32 until the fixed-order second stage rounds them once.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "kernels/conv.h"
#include "kernels/cuda/conv_problems.cuh"
#include "kernels/cuda/mma_tile.cuh"
#include "kernels/emu/cuda_compat.h"

// Gathers a few elements at a time: loads in flight together without every address of the
// slab held in registers.
#if defined(__CUDACC__)
#define IRIS_CONV_GATHER_UNROLL _Pragma("unroll 4")
#else
#define IRIS_CONV_GATHER_UNROLL
#endif

namespace iris::IRIS_KERNEL_NS {
namespace {

using namespace conv_gemm;

// C tile (blockIdx.x over n, blockIdx.y over m) of group blockIdx.z % groups, reduction
// split blockIdx.z / groups covering k in [split * k_per_split, + k_per_split).
template <class T, class Tr, class P>
__global__ void __launch_bounds__(Tr::kThreads)
    implicit_gemm_kernel(P prob, int groups, int k_per_split) {
  IRIS_SHARED(T, As, [2][Tr::kBK][Tr::kBM + Tr::kPad]);  // A slab, k-major
  IRIS_SHARED(T, Bs, [2][Tr::kBK][Tr::kBN + Tr::kPad]);  // B slab, k-major

  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % Tr::kThreadsN, ty = tid / Tr::kThreadsN;
  const int grp = static_cast<int>(blockIdx.z) % groups;
  const int split = static_cast<int>(blockIdx.z) / groups;
  const int m0 = static_cast<int>(blockIdx.y) * Tr::kBM;
  const int n0 = static_cast<int>(blockIdx.x) * Tr::kBN;
  const int M = prob.M(), N = prob.Ncols();
  const int k_begin = split * k_per_split;
  const int k_end = min(prob.K(), k_begin + k_per_split);

  // A is staged k-fastest (kk = e % kBK); B n-fastest or, for kBKFastest, k-fastest. Either
  // way a thread's m (A) and n (B) are the same in every slab: gather their bases once.
  static_assert(P::kAKFastest, "A is gathered along k");
  typename P::Row rows[Tr::kALoads] = {};
  typename P::Col cols[Tr::kBLoads] = {};
  bool row_in[Tr::kALoads], col_in[Tr::kBLoads];
  auto a_coord = [&](int i, int& mm, int& kk) {
    const int e = tid + i * Tr::kThreads;
    kk = e % Tr::kBK, mm = e / Tr::kBK;
  };
  auto b_coord = [&](int i, int& kk, int& nn) {
    const int e = tid + i * Tr::kThreads;
    if (P::kBKFastest)
      kk = e % Tr::kBK, nn = e / Tr::kBK;
    else
      nn = e % Tr::kBN, kk = e / Tr::kBN;
  };
  for (int i = 0; i < Tr::kALoads; ++i) {
    int mm, kk;
    a_coord(i, mm, kk);
    row_in[i] = m0 + mm < M;
    if (row_in[i]) rows[i] = prob.row(grp, m0 + mm);
  }
  for (int i = 0; i < Tr::kBLoads; ++i) {
    int kk, nn;
    b_coord(i, kk, nn);
    col_in[i] = n0 + nn < N;
    if (col_in[i]) cols[i] = prob.col(grp, n0 + nn);
  }

  T ra[Tr::kALoads], rb[Tr::kBLoads];
  auto load_global = [&](int k0) {
    for (int i = 0; i < Tr::kALoads; ++i) {
      int mm, kk;
      a_coord(i, mm, kk);
      ra[i] = row_in[i] && k0 + kk < k_end ? prob.a(rows[i], k0 + kk) : T(0);
    }
    for (int i = 0; i < Tr::kBLoads; ++i) {
      int kk, nn;
      b_coord(i, kk, nn);
      rb[i] = col_in[i] && k0 + kk < k_end ? prob.b(cols[i], k0 + kk) : T(0);
    }
  };
  auto store_shared = [&](int buf) {
    for (int i = 0; i < Tr::kALoads; ++i) {
      int mm, kk;
      a_coord(i, mm, kk);
      As[buf][kk][mm] = ra[i];
    }
    for (int i = 0; i < Tr::kBLoads; ++i) {
      int kk, nn;
      b_coord(i, kk, nn);
      Bs[buf][kk][nn] = rb[i];
    }
  };

  T acc[Tr::kTM][Tr::kTN];
  for (int i = 0; i < Tr::kTM; ++i)
    for (int j = 0; j < Tr::kTN; ++j) acc[i][j] = T(0);

  const int slabs = k_end > k_begin ? (k_end - k_begin + Tr::kBK - 1) / Tr::kBK : 0;
  if (slabs > 0) {
    load_global(k_begin);
    store_shared(0);
  }
  __syncthreads();
  for (int s = 0; s < slabs; ++s) {
    const int cur = s & 1;
    const bool more = s + 1 < slabs;
    if (more) load_global(k_begin + (s + 1) * Tr::kBK);  // in flight during this slab
    for (int kk = 0; kk < Tr::kBK; ++kk) {
      T av[Tr::kTM], bv[Tr::kTN];
      for (int i = 0; i < Tr::kTM; ++i) av[i] = As[cur][kk][ty + i * Tr::kThreadsM];
      for (int j = 0; j < Tr::kTN; ++j) bv[j] = Bs[cur][kk][tx + j * Tr::kThreadsN];
      for (int i = 0; i < Tr::kTM; ++i)
        for (int j = 0; j < Tr::kTN; ++j) acc[i][j] += av[i] * bv[j];
    }
    // The other buffer was last read before the previous barrier: safe to overwrite.
    if (more) store_shared(cur ^ 1);
    __syncthreads();
  }

  for (int j = 0; j < Tr::kTN; ++j) {
    const int n = n0 + tx + j * Tr::kThreadsN;
    if (n >= N) continue;
    const typename P::Col c = prob.col(grp, n);
    for (int i = 0; i < Tr::kTM; ++i) {
      const int m = m0 + ty + i * Tr::kThreadsM;
      if (m < M) prob.store(grp, split, m, c, acc[i][j]);
    }
  }
}

// Forward on tensor cores: C[co, q] of group blockIdx.z from a weight slab [co][k] (cp.async
// where w_async) and a column slab [k][q] gathered like ForwardProblem, on raw 16-bit values.
template <mma::Half H>
__global__ void __launch_bounds__(mma::TileTraits::kThreads)
    conv_forward_mma_kernel(ForwardProblem<uint16_t> prob, bool w_async) {
  using Tr = mma::TileTraits;
  constexpr int kGathers = Tr::kBK * Tr::kBN / Tr::kThreads;
  static_assert(Tr::kBK * Tr::kBN % Tr::kThreads == 0 && Tr::kThreads % Tr::kBN == 0,
                "a thread gathers the same column in every slab");
  static_assert(ForwardProblem<uint16_t>::kAKFastest && !ForwardProblem<uint16_t>::kBKFastest,
                "weight rows are staged [co][k] by cp.async, the column slab [k][q]");
  IRIS_SHARED(uint16_t, As, [2][Tr::kSlabElems]);
  IRIS_SHARED(uint16_t, Bs, [2][Tr::kSlabElems]);
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int warp_m0 = (warp / Tr::kWarpsN) * Tr::kWarpM;
  const int warp_n0 = (warp % Tr::kWarpsN) * Tr::kWarpN;
  const int grp = static_cast<int>(blockIdx.z);
  const int m0 = static_cast<int>(blockIdx.y) * Tr::kBM;
  const int n0 = static_cast<int>(blockIdx.x) * Tr::kBN;
  const int M = prob.M(), N = prob.Ncols(), K = prob.K();
  const uint16_t* wg = prob.w + static_cast<int64_t>(grp) * M * K;
  const mma::SlabLayout al{true, Tr::kBK + Tr::kPad};   // [co][k]
  const mma::SlabLayout bl{false, Tr::kBN + Tr::kPad};  // [k][q]

  const int nn = tid % Tr::kBN, kk0 = tid / Tr::kBN, kk_step = Tr::kThreads / Tr::kBN;
  const bool col_in = n0 + nn < N;
  typename ForwardProblem<uint16_t>::Col col = {};
  if (col_in) col = prob.col(grp, n0 + nn);
  uint16_t gathered[kGathers];
  auto gather = [&](int k0) {
    IRIS_MMA_UNROLL
    for (int i = 0; i < kGathers; ++i) {
      const int k = k0 + kk0 + i * kk_step;
      gathered[i] = col_in && k < K ? prob.b(col, k) : uint16_t{0};
    }
  };
  auto store_gathered = [&](int buf) {
    IRIS_MMA_UNROLL
    for (int i = 0; i < kGathers; ++i) {
      Bs[buf][(kk0 + i * kk_step) * bl.pitch + nn] = gathered[i];
    }
  };
  auto stage_weights = [&](int buf, int k0) {
    mma::stage_slab(As[buf], al.pitch, Tr::kBM, Tr::kBK, wg, K, m0, M, k0, K, w_async, tid);
  };

  mma::Accumulators<Tr> acc;
  acc.zero();
  const int slabs = (K + Tr::kBK - 1) / Tr::kBK;
  stage_weights(0, 0);
  iris::ptx::cp_async_commit();
  gather(0);
  store_gathered(0);
  for (int s = 0; s < slabs; ++s) {
    const int cur = s & 1;
    const bool more = s + 1 < slabs;
    if (more) {
      stage_weights(cur ^ 1, (s + 1) * Tr::kBK);
      gather((s + 1) * Tr::kBK);  // in flight while this slab computes
    }
    iris::ptx::cp_async_commit();
    iris::ptx::cp_async_wait<1>();
    __syncthreads();
    mma::warp_mma_slab<H, Tr>(acc, As[cur], al, Bs[cur], bl, warp_m0, warp_n0, lane);
    if (more) store_gathered(cur ^ 1);  // last read before the previous barrier
    __syncthreads();
  }
  iris::ptx::cp_async_wait_all();

  IRIS_MMA_UNROLL
  for (int j = 0; j < Tr::kFragsN; ++j) {
    IRIS_MMA_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int q = n0 + mma::Accumulators<Tr>::col(warp_n0, j, r, lane);
      if (q >= N) continue;
      const typename ForwardProblem<uint16_t>::Col c = prob.col(grp, q);
      IRIS_MMA_UNROLL
      for (int i = 0; i < Tr::kFragsM; ++i) {
        const int m = m0 + mma::Accumulators<Tr>::row(warp_m0, i, r, lane);
        if (m >= M) continue;
        float v = acc.c[i][j][r];
        if (prob.bias) v += mma::half_to_float<H>(prob.bias[grp * M + m]);
        prob.y[c.out + static_cast<int64_t>(m) * prob.g.OH * prob.g.OW] = mma::float_to_half<H>(v);
      }
    }
  }
}

// Where the elements of one operand's slab go when every thread gathers kCount of them per
// slab: along k (stored [outer][k]) where the operand's unit stride is k, so consecutive
// threads read consecutive addresses; else along the outer index (stored [k][outer]), where a
// thread keeps one row / column in every slab and finds its base once.
template <class Tr, int kOuter, bool kKFastest>
struct GatherMap {
  static constexpr int kCount = kOuter * Tr::kBK / Tr::kThreads;
  static constexpr int kPitch = kKFastest ? Tr::kBK + Tr::kPad : kOuter + Tr::kPad;
  static_assert(kOuter * Tr::kBK % Tr::kThreads == 0, "every thread gathers the same count");
  static_assert(kKFastest ? Tr::kThreads % Tr::kBK == 0 : Tr::kThreads % kOuter == 0,
                "a thread keeps its k (or its row / column) in every slab");
  static_assert((kKFastest ? kOuter * kPitch : Tr::kBK * kPitch) <= Tr::kSlabElems,
                "the slab fits its buffer");
  IRIS_DEV static int outer(int tid, int i) {
    const int e = tid + i * Tr::kThreads;
    return kKFastest ? e / Tr::kBK : e % kOuter;
  }
  IRIS_DEV static int inner(int tid, int i) {
    const int e = tid + i * Tr::kThreads;
    return kKFastest ? e % Tr::kBK : e / kOuter;
  }
  IRIS_DEV static int at(int o, int k) { return kKFastest ? o * kPitch + k : k * kPitch + o; }
};

// Backward-data and backward-weight on tensor cores: C tile (blockIdx.x over n, blockIdx.y
// over m) of group blockIdx.z % groups, reduction split blockIdx.z / groups, both operands
// gathered through the Problem on raw 16-bit values (the next slab while this one computes),
// fp32 accumulators stored as P::Out (16 bits, or fp32 partial sums).
template <mma::Half H, class P>
__global__ void __launch_bounds__(mma::TileTraits::kThreads)
    conv_backward_mma_kernel(P prob, int groups, int k_per_split) {
  using Tr = mma::TileTraits;
  using AMap = GatherMap<Tr, Tr::kBM, P::kAKFastest>;
  using BMap = GatherMap<Tr, Tr::kBN, P::kBKFastest>;
  IRIS_SHARED(uint16_t, As, [2][Tr::kSlabElems]);
  IRIS_SHARED(uint16_t, Bs, [2][Tr::kSlabElems]);
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int warp_m0 = (warp / Tr::kWarpsN) * Tr::kWarpM;
  const int warp_n0 = (warp % Tr::kWarpsN) * Tr::kWarpN;
  const int grp = static_cast<int>(blockIdx.z) % groups;
  const int split = static_cast<int>(blockIdx.z) / groups;
  const int m0 = static_cast<int>(blockIdx.y) * Tr::kBM;
  const int n0 = static_cast<int>(blockIdx.x) * Tr::kBN;
  const int M = prob.M(), N = prob.Ncols();
  const int k_begin = split * k_per_split;
  const int k_end = min(prob.K(), k_begin + k_per_split);
  const mma::SlabLayout al{P::kAKFastest, AMap::kPitch}, bl{P::kBKFastest, BMap::kPitch};

  // Outer-major operands: the thread's one row (A) / column (B), found once.
  typename P::Row row = {};
  typename P::Col col = {};
  if (!P::kAKFastest && m0 + AMap::outer(tid, 0) < M) row = prob.row(grp, m0 + AMap::outer(tid, 0));
  if (!P::kBKFastest && n0 + BMap::outer(tid, 0) < N) col = prob.col(grp, n0 + BMap::outer(tid, 0));
  // Gathers go straight into the free buffer, not through registers held across the slab's
  // mma: two 16-element prefetches (and their addresses) took ~245 registers, this ~70.
  auto stage = [&](int buf, int k0) {
    IRIS_CONV_GATHER_UNROLL
    for (int i = 0; i < AMap::kCount; ++i) {
      const int o = AMap::outer(tid, i), kk = AMap::inner(tid, i);
      const int m = m0 + o, k = k0 + kk;
      As[buf][AMap::at(o, kk)] =
          m < M && k < k_end ? prob.a(P::kAKFastest ? prob.row(grp, m) : row, k) : uint16_t{0};
    }
    IRIS_CONV_GATHER_UNROLL
    for (int i = 0; i < BMap::kCount; ++i) {
      const int o = BMap::outer(tid, i), kk = BMap::inner(tid, i);
      const int n = n0 + o, k = k0 + kk;
      Bs[buf][BMap::at(o, kk)] =
          n < N && k < k_end ? prob.b(P::kBKFastest ? prob.col(grp, n) : col, k) : uint16_t{0};
    }
  };

  mma::Accumulators<Tr> acc;
  acc.zero();
  const int slabs = k_end > k_begin ? (k_end - k_begin + Tr::kBK - 1) / Tr::kBK : 0;
  if (slabs > 0) stage(0, k_begin);
  for (int s = 0; s < slabs; ++s) {
    const int cur = s & 1;
    // One barrier a slab: buffer cur was staged before it, and cur ^ 1 was last read before
    // it (in the previous slab).
    __syncthreads();
    if (s + 1 < slabs) stage(cur ^ 1, k_begin + (s + 1) * Tr::kBK);
    mma::warp_mma_slab<H, Tr>(acc, As[cur], al, Bs[cur], bl, warp_m0, warp_n0, lane);
  }

  IRIS_MMA_UNROLL
  for (int j = 0; j < Tr::kFragsN; ++j) {
    IRIS_MMA_UNROLL
    for (int r = 0; r < 4; ++r) {
      const int n = n0 + mma::Accumulators<Tr>::col(warp_n0, j, r, lane);
      if (n >= N) continue;
      const typename P::Col c = prob.col(grp, n);
      IRIS_MMA_UNROLL
      for (int i = 0; i < Tr::kFragsM; ++i) {
        const int m = m0 + mma::Accumulators<Tr>::row(warp_m0, i, r, lane);
        if (m >= M) continue;
        if constexpr (std::is_same_v<typename P::Out, float>)
          prob.store(grp, split, m, c, acc.c[i][j][r]);
        else
          prob.store(grp, split, m, c, mma::float_to_half<H>(acc.c[i][j][r]));
      }
    }
  }
}

// How the reduction kernels read and write elements: float / double accumulate in their own
// type; bf16 / fp16 (raw bits) accumulate in fp32 and round once on the way out.
template <class T>
struct PlainElem {
  using Stored = T;
  using Acc = T;
  IRIS_DEV static Acc load(T v) { return v; }
  IRIS_DEV static T store(Acc v) { return v; }
};
template <mma::Half H>
struct HalfElem {
  using Stored = uint16_t;
  using Acc = float;
  IRIS_DEV static float load(uint16_t v) { return mma::half_to_float<H>(v); }
  IRIS_DEV static uint16_t store(float v) { return mma::float_to_half<H>(v); }
};

// dweight[i] = sum over s of partial[s][i], in split order.
template <class E>
__global__ void sum_splits_kernel(const typename E::Acc* __restrict__ partial, int splits,
                                  int64_t n, typename E::Stored* __restrict__ out) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    typename E::Acc s = 0;
    for (int k = 0; k < splits; ++k) s += partial[k * n + i];
    out[i] = E::store(s);
  }
}

// dbias[c] = sum of dY[:, c, :, :]; one block per channel, a fixed-order tree in shared
// memory.
template <class E>
__global__ void __launch_bounds__(ReduceTraits::kReduceThreads)
    bias_grad_kernel(const typename E::Stored* __restrict__ dy, int N, int C, int plane,
                     typename E::Stored* __restrict__ dbias) {
  using Acc = typename E::Acc;
  constexpr int kThreads = ReduceTraits::kReduceThreads;
  IRIS_SHARED(Acc, part, [kThreads]);
  const int c = static_cast<int>(blockIdx.x), tid = static_cast<int>(threadIdx.x);
  Acc s = 0;
  for (int n = 0; n < N; ++n) {
    const typename E::Stored* row = dy + (static_cast<int64_t>(n) * C + c) * plane;
    for (int p = tid; p < plane; p += kThreads) s += E::load(row[p]);
  }
  part[tid] = s;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (tid < half) {
      const Acc other = part[tid + half];
      const Acc mine = part[tid];
      part[tid] = mine + other;
    }
    __syncthreads();
  }
  if (tid == 0) dbias[c] = E::store(part[0]);
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

constexpr int64_t kIntMax = 0x7fffffff;
constexpr int64_t kMaxGridYZ = 65535;

// Geometry from input [N, Cin, H, W], weight and the output's spatial size; checks that
// every index the kernels form fits an int (window offsets with a margin for their sums).
ConvGeom make_geom(const char* op, const Tensor& input, const Tensor& weight, int64_t OH,
                   int64_t OW, const kernels::Conv2dParams& p) {
  const int64_t N = input.size(0), Cin = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t Cout = weight.size(0), kH = weight.size(2), kW = weight.size(3);
  const int64_t big = std::max({N * Cin * H * W, N * Cout * OH * OW,
                                Cout * weight.size(1) * kH * kW, N * std::max(H * W, OH * OW)});
  IRIS_CHECK(big <= kIntMax &&
                 std::max({p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dilation_h, p.dilation_w}) *
                         std::max({H, W, kH, kW}) <=
                     kIntMax / 4,
             op, ": tensor too large for the cuda kernel's 32-bit indices: input ", input.desc(),
             ", weight ", weight.desc());
  auto i = [](int64_t v) { return static_cast<int>(v); };
  ConvGeom g;
  g.N = i(N), g.Cin = i(Cin), g.H = i(H), g.W = i(W), g.Cout = i(Cout), g.kH = i(kH);
  g.kW = i(kW), g.OH = i(OH), g.OW = i(OW), g.sh = i(p.stride_h), g.sw = i(p.stride_w);
  g.ph = i(p.pad_h), g.pw = i(p.pad_w), g.dh = i(p.dilation_h), g.dw = i(p.dilation_w);
  g.G = i(p.groups), g.Cin_g = i(Cin / p.groups), g.Cout_g = i(Cout / p.groups);
  g.kk = i(kH * kW);
  return g;
}

// The grid of an implicit GEMM with kBM x kBN tiles over (groups x splits) in z; a zero
// extent when there is nothing to compute.
template <int kBM, int kBN, class P>
dim3 gemm_grid(const char* op, const P& prob, int groups, int splits) {
  const int64_t gx = (static_cast<int64_t>(prob.Ncols()) + kBN - 1) / kBN;
  const int64_t gy = (static_cast<int64_t>(prob.M()) + kBM - 1) / kBM;
  const int64_t gz = static_cast<int64_t>(groups) * splits;
  IRIS_CHECK(gy <= kMaxGridYZ && gz <= kMaxGridYZ, op, ": ", prob.M(), " channels per group x ",
             groups, " groups exceed the cuda grid limits");
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(gz));
}

bool empty_grid(const dim3& grid) { return grid.x == 0 || grid.y == 0 || grid.z == 0; }

template <class T, class Tr = ConvTraits<T>, class P>
void launch_implicit_gemm(const char* op, const P& prob, int groups, int splits, int k_per_split) {
  const dim3 grid = gemm_grid<Tr::kBM, Tr::kBN>(op, prob, groups, splits);
  if (empty_grid(grid)) return;
  IRIS_LAUNCH((implicit_gemm_kernel<T, Tr, P>), grid, dim3(Tr::kThreads), 0, nullptr, prob, groups,
              k_per_split);
}

template <mma::Half H, class P>
void launch_backward_mma(const char* op, const P& prob, int groups, int splits, int k_per_split) {
  using Tr = mma::TileTraits;
  const dim3 grid = gemm_grid<Tr::kBM, Tr::kBN>(op, prob, groups, splits);
  if (empty_grid(grid)) return;
  IRIS_LAUNCH((conv_backward_mma_kernel<H, P>), grid, dim3(Tr::kThreads), 0, nullptr, prob, groups,
              k_per_split);
}

// Runs fn.template operator()<H>() for bf16 / fp16 and returns true; false for other dtypes.
template <class Fn>
bool with_half(DType dt, Fn&& fn) {
  if (dt == DType::bf16)
    fn.template operator()<mma::Half::kBf16>();
  else if (dt == DType::f16)
    fn.template operator()<mma::Half::kF16>();
  else
    return false;
  return true;
}

uint16_t* bits(const Tensor& t) {
  return t.defined() ? static_cast<uint16_t*>(t.raw_data()) : nullptr;
}

template <mma::Half H>
void launch_forward_mma(const ConvGeom& g, const Tensor& input, const Tensor& weight,
                        const Tensor& bias, const Tensor& out) {
  using Tr = mma::TileTraits;
  const ForwardProblem<uint16_t> prob{g, bits(input), bits(weight), bits(bias), bits(out)};
  // cp.async moves 16-byte chunks of weight rows: K and the base must keep them aligned.
  const bool w_async =
      prob.K() % Tr::kChunk == 0 && reinterpret_cast<uintptr_t>(weight.raw_data()) % 16 == 0;
  const dim3 grid = gemm_grid<Tr::kBM, Tr::kBN>("conv2d", prob, g.G, 1);
  if (empty_grid(grid)) return;
  IRIS_LAUNCH(conv_forward_mma_kernel<H>, grid, dim3(Tr::kThreads), 0, nullptr, prob, w_async);
}

void conv2d_forward_cuda(const Tensor& input, const Tensor& weight, const Tensor& bias,
                         const kernels::Conv2dParams& p, const Tensor& out) {
  const char* op = "conv2d";
  if (out.numel() == 0) return;
  const ConvGeom g = make_geom(op, input, weight, out.size(2), out.size(3), p);
  if (with_half(out.dtype(),
                [&]<mma::Half H>() { launch_forward_mma<H>(g, input, weight, bias, out); }))
    return;
  dispatch_float(out.dtype(), op, [&]<class T>() {
    ForwardProblem<T> prob{g, input.data<T>(), weight.data<T>(),
                           bias.defined() ? bias.data<T>() : nullptr, out.data<T>()};
    launch_implicit_gemm<T>(op, prob, g.G, 1, prob.K());
  });
}

// out = the splits' partial sums added in split order (E says how to read and write).
template <class E>
void launch_sum_splits(const typename E::Acc* partial, int splits, int64_t n,
                       typename E::Stored* out) {
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  IRIS_LAUNCH(sum_splits_kernel<E>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, nullptr,
              partial, splits, n, out);
}

// Backward-data as sh * sw stride phases, one launch each: every phase is a dense GEMM over
// only its taps, so no gather is spent on the (1 - 1 / (sh sw)) of taps that miss dY.
std::vector<BackwardDataProblem<uint16_t>> backward_data_phases(const ConvGeom& g) {
  std::vector<BackwardDataProblem<uint16_t>> phases;
  for (int rh = 0; rh < g.sh; ++rh)
    for (int rw = 0; rw < g.sw; ++rw)
      phases.push_back({g, nullptr, nullptr, nullptr, phase_axis(rh, g.sh, g.ph, g.dh, g.kH, g.H),
                        phase_axis(rw, g.sw, g.pw, g.dw, g.kW, g.W), 0});
  return phases;
}

// fp32 / fp64 backward-data with the tile Tr: split K in a fixed order (partial sums added
// split by split) when the phases give too few blocks for the GPU.
template <class T, class Tr>
void backward_data_float(const char* op, const ConvGeom& g, const Tensor& dout,
                         const Tensor& weight, const Tensor& dinp) {
  using St = BackwardDataSplitTraits;
  std::vector<BackwardDataProblem<T>> phases;
  int64_t blocks = 0, slabs = 0;  // of the phase with the most taps: the longest launch
  for (const BackwardDataProblem<uint16_t>& ph : backward_data_phases(g)) {
    phases.push_back({g, dout.data<T>(), weight.data<T>(), dinp.data<T>(), ph.ph_h, ph.ph_w, 0});
    const BackwardDataProblem<T>& pr = phases.back();
    const int64_t pr_slabs = (pr.K() + Tr::kBK - 1) / Tr::kBK;
    if (pr_slabs <= slabs) continue;
    slabs = pr_slabs;
    blocks = (static_cast<int64_t>(pr.Ncols()) + Tr::kBN - 1) / Tr::kBN *
             ((pr.M() + Tr::kBM - 1) / Tr::kBM) * g.G;
  }
  // Every phase is launched with the same splits (the partial sums' layout); a phase with
  // fewer slabs leaves its last splits empty, which store zeros.
  int64_t splits = 1;
  if (blocks > 0 && blocks < St::kTargetBlocks)
    splits = std::clamp<int64_t>(
        std::min((St::kTargetBlocks + blocks - 1) / blocks, slabs / St::kMinSlabs), 1,
        St::kMaxSplits);
  const int64_t n = dinp.numel();
  const Tensor partial =
      splits == 1 ? dinp : Tensor::empty({splits, n}, dinp.dtype(), dinp.device());
  for (BackwardDataProblem<T>& pr : phases) {
    pr.dx = partial.data<T>(), pr.split_stride = n;
    const int64_t per_split =
        std::max<int64_t>((pr.K() + splits * Tr::kBK - 1) / (splits * Tr::kBK) * Tr::kBK, Tr::kBK);
    launch_implicit_gemm<T, Tr>(op, pr, g.G, static_cast<int>(splits), static_cast<int>(per_split));
  }
  if (splits > 1)
    launch_sum_splits<PlainElem<T>>(partial.data<T>(), static_cast<int>(splits), n, dinp.data<T>());
}

void conv2d_backward_data_cuda(const Tensor& dout, const Tensor& weight,
                               const kernels::Conv2dParams& p, const Tensor& dinp) {
  const char* op = "conv2d_backward_data";
  if (dinp.numel() == 0) return;
  const ConvGeom g = make_geom(op, dinp, weight, dout.size(2), dout.size(3), p);
  if (with_half(dinp.dtype(), [&]<mma::Half H>() {
        for (BackwardDataProblem<uint16_t> prob : backward_data_phases(g)) {
          prob.dy = bits(dout), prob.w = bits(weight), prob.dx = bits(dinp);
          launch_backward_mma<H>(op, prob, g.G, 1, prob.K());
        }
      }))
    return;
  dispatch_float(dinp.dtype(), op, [&]<class T>() {
    if (g.Cin_g <= SmallMTraits<T>::kBM)
      backward_data_float<T, SmallMTraits<T>>(op, g, dout, weight, dinp);
    else
      backward_data_float<T, ConvTraits<T>>(op, g, dout, weight, dinp);
  });
}

// The weight gradient's reduction over Q = N OH OW columns in splits of whole slabs.
struct SplitPlan {
  int splits, per_split;
};
SplitPlan split_reduction(int64_t Q, int slab) {
  using Tr = ReduceTraits;
  const int64_t want =
      std::clamp<int64_t>((Q + Tr::kSplitColumns - 1) / Tr::kSplitColumns, 1, Tr::kMaxSplits);
  const int64_t per_split = std::max<int64_t>((Q + want * slab - 1) / (want * slab) * slab, slab);
  const int64_t used = (Q + per_split - 1) / per_split;
  return {static_cast<int>(std::max<int64_t>(used, 1)), static_cast<int>(per_split)};
}

template <class E>
void launch_bias_grad(const ConvGeom& g, const typename E::Stored* dy, typename E::Stored* dbias) {
  IRIS_LAUNCH(bias_grad_kernel<E>, dim3(static_cast<unsigned>(g.Cout)),
              dim3(ReduceTraits::kReduceThreads), 0, nullptr, dy, g.N, g.Cout, g.OH * g.OW, dbias);
}

void conv2d_backward_weight_cuda(const Tensor& dout, const Tensor& input,
                                 const kernels::Conv2dParams& p, const Tensor& dweight,
                                 const Tensor& dbias) {
  const char* op = "conv2d_backward_weight";
  if (dweight.numel() == 0) return;
  const ConvGeom g = make_geom(op, input, dweight, dout.size(2), dout.size(3), p);
  const int64_t Q = static_cast<int64_t>(g.N) * g.OH * g.OW, n = dweight.numel();
  // 16 bits: fp32 partial sums (even for one split), rounded once by the second stage.
  if (with_half(dweight.dtype(), [&]<mma::Half H>() {
        const SplitPlan sp = split_reduction(Q, mma::TileTraits::kBK);
        const Tensor partial = Tensor::empty({sp.splits, n}, DType::f32, dweight.device());
        const BackwardWeightProblem<uint16_t, float> prob{g, bits(dout), bits(input),
                                                          partial.data<float>()};
        launch_backward_mma<H>(op, prob, g.G, sp.splits, sp.per_split);
        launch_sum_splits<HalfElem<H>>(partial.data<float>(), sp.splits, n, bits(dweight));
        if (dbias.defined()) launch_bias_grad<HalfElem<H>>(g, bits(dout), bits(dbias));
      }))
    return;
  dispatch_float(dweight.dtype(), op, [&]<class T>() {
    const SplitPlan sp = split_reduction(Q, ConvTraits<T>::kBK);
    Tensor partial = sp.splits == 1 ? dweight
                                    : Tensor::empty({static_cast<int64_t>(sp.splits), n},
                                                    dweight.dtype(), dweight.device());
    BackwardWeightProblem<T> prob{g, dout.data<T>(), input.data<T>(), partial.data<T>()};
    launch_implicit_gemm<T>(op, prob, g.G, sp.splits, sp.per_split);
    if (sp.splits > 1)
      launch_sum_splits<PlainElem<T>>(partial.data<T>(), sp.splits, n, dweight.data<T>());
    if (dbias.defined()) launch_bias_grad<PlainElem<T>>(g, dout.data<T>(), dbias.data<T>());
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(conv2d_forward, CUDA, conv2d_forward_cuda);
IRIS_REGISTER_KERNEL(conv2d_backward_data, CUDA, conv2d_backward_data_cuda);
IRIS_REGISTER_KERNEL(conv2d_backward_weight, CUDA, conv2d_backward_weight_cuda);

}  // namespace iris::IRIS_KERNEL_NS
