#pragma once
// The implicit-GEMM convolution's shapes (kernels/cuda/conv.cu, its only includer): the tile
// traits, the convolution's geometry, and one Problem per direction that says how to gather
// an A(m, k) and a B(k, n) element straight from the NCHW tensors and where C(m, n) goes.
// conv.cu's header comment has the three directions' index maps.
#include <cstdint>

#include "kernels/emu/cuda_compat.h"
// (IRIS_DEV; needs cuda_compat.h first)
#include "kernels/cuda/online_softmax.cuh"

namespace iris::IRIS_KERNEL_NS::conv_gemm {

// kBM x kBN block tile of C, kBK K slab per pipeline stage, kTM x kTN register tile.
template <class T, int kBM_ = 64, int kBN_ = 64, int kTM_ = 4, int kTN_ = 4>
struct ConvTraits {
  static constexpr int kBM = kBM_, kBN = kBN_;
  static constexpr int kBK = 16;
  static constexpr int kTM = kTM_, kTN = kTN_;
  static constexpr int kThreadsM = kBM / kTM, kThreadsN = kBN / kTN;
  static constexpr int kThreads = kThreadsM * kThreadsN;
  static constexpr int kPad = 4;
  static constexpr int kALoads = kBM * kBK / kThreads;  // A elements each thread stages
  static constexpr int kBLoads = kBK * kBN / kThreads;
  static_assert(kBM % kTM == 0 && kBN % kTN == 0, "register tile must divide the block tile");
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, one block");
  static_assert(kBM * kBK % kThreads == 0 && kBK * kBN % kThreads == 0,
                "every thread stages the same number of elements");
  static_assert(kThreads % kBK == 0 && kThreads % kBN == 0,
                "a thread stages the same row (A) and column (B) in every slab");
  static_assert(2 * kBK * (kBM + kBN + 2 * kPad) * sizeof(T) <= 48 * 1024,
                "static shared memory limit");
};
// Few rows (backward-data with Cin per group <= 16, e.g. an RGB input's gradient): a 64-row
// tile would leave 95% of its rows idle; 16 rows with wider columns keep the same 256 threads.
template <class T>
using SmallMTraits = ConvTraits<T, 16, 128, 2, 4>;

// Backward-data's split-K (fp32 / fp64): split K when a phase's launch has fewer blocks than
// about two waves of an H100 / H200 (132 SMs), keeping at least kMinSlabs slabs a split.
struct BackwardDataSplitTraits {
  static constexpr int64_t kTargetBlocks = 264;
  static constexpr int64_t kMinSlabs = 8;
  static constexpr int64_t kMaxSplits = 16;
  static_assert(kMinSlabs >= 1 && kMaxSplits >= 1, "at least one slab and one split");
};

// The reductions of every dtype: backward-weight's reduction columns (n, oh, ow) per split
// and the most splits; the bias-gradient block.
struct ReduceTraits {
  static constexpr int64_t kSplitColumns = 512;
  static constexpr int64_t kMaxSplits = 64;
  static constexpr int kReduceThreads = 256;
  static_assert((kReduceThreads & (kReduceThreads - 1)) == 0, "tree reduction needs 2^k");
};

// The convolution's sizes, narrowed to int where the host checked they fit.
struct ConvGeom {
  int N, Cin, H, W, Cout, kH, kW, OH, OW;
  int sh, sw, ph, pw, dh, dw;
  int G, Cin_g, Cout_g, kk;  // kk = kH * kW
};

// Splits a linear index r into (image, row, column) of an [.., rows, cols] plane.
struct Pixel {
  int n, y, x;
};
IRIS_DEV Pixel split_pixel(int r, int rows, int cols) {
  const int plane = rows * cols;
  const int n = r / plane, p = r - n * plane;
  const int y = p / cols;
  return {n, y, p - y * cols};
}

// forward: m = co, k = (ci, kh, kw), n = (n, oh, ow).
template <class T>
struct ForwardProblem {
  static constexpr bool kAKFastest = true;   // A's unit-stride index is k (weight rows)
  static constexpr bool kBKFastest = false;  // B's unit-stride index is n (ow)
  ConvGeom g;
  const T* x;
  const T* w;
  const T* bias;  // null: none
  T* y;
  __host__ __device__ int M() const { return g.Cout_g; }
  __host__ __device__ int Ncols() const { return g.N * g.OH * g.OW; }
  __host__ __device__ int K() const { return g.Cin_g * g.kk; }

  struct Row {
    const T* w;
  };
  struct Col {
    int64_t base;  // x offset of (n, group's first channel)
    int ih0, iw0;
    int64_t out;  // y offset of (n, group's first channel, oh, ow)
  };
  IRIS_DEV Row row(int grp, int m) const {
    return {w + (static_cast<int64_t>(grp) * g.Cout_g + m) * K()};
  }
  IRIS_DEV T a(const Row& r, int k) const { return r.w[k]; }
  IRIS_DEV Col col(int grp, int q) const {
    const Pixel p = split_pixel(q, g.OH, g.OW);
    const int64_t c0 = static_cast<int64_t>(p.n) * g.Cin + static_cast<int64_t>(grp) * g.Cin_g;
    const int64_t o0 = static_cast<int64_t>(p.n) * g.Cout + static_cast<int64_t>(grp) * g.Cout_g;
    return {c0 * g.H * g.W, p.y * g.sh - g.ph, p.x * g.sw - g.pw, (o0 * g.OH + p.y) * g.OW + p.x};
  }
  IRIS_DEV T b(const Col& c, int k) const {
    const int ci = k / g.kk, r = k - ci * g.kk;
    const int kh = r / g.kW, kw = r - kh * g.kW;
    const int ih = c.ih0 + kh * g.dh, iw = c.iw0 + kw * g.dw;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return T(0);
    return x[c.base + (static_cast<int64_t>(ci) * g.H + ih) * g.W + iw];
  }
  IRIS_DEV void store(int grp, int, int m, const Col& c, T v) const {
    if (bias) v += bias[grp * g.Cout_g + m];
    y[c.out + static_cast<int64_t>(m) * g.OH * g.OW] = v;
  }
};

// One axis (rows or columns) of a backward-data stride phase: the input positions i with
// (i + pad) % stride == residue, and the taps t with t * dil % stride == residue, the only
// taps that reach an output position from them. Tap j of the phase is tap0 + j * tap_step and
// input position first + p * stride meets output out0 + p - j * out_step.
struct PhaseAxis {
  int first, count;  // first input position, positions in the phase
  int tap0, tap_step, taps;
  int out0, out_step;
};
inline int gcd_int(int a, int b) { return b == 0 ? a : gcd_int(b, a % b); }
inline PhaseAxis phase_axis(int residue, int stride, int pad, int dil, int kernel, int in) {
  PhaseAxis a{};
  a.first = ((residue - pad) % stride + stride) % stride;
  a.count = a.first < in ? (in - a.first + stride - 1) / stride : 0;
  const int g = gcd_int(stride, dil);
  a.tap_step = stride / g, a.out_step = dil / g;
  a.tap0 = 0;
  while (a.tap0 < a.tap_step && a.tap0 * dil % stride != residue) ++a.tap0;
  if (a.tap0 >= a.tap_step || a.tap0 >= kernel) {  // no taps: the phase's dx is zero
    a.tap0 = 0;
    return a;
  }
  a.taps = (kernel - a.tap0 + a.tap_step - 1) / a.tap_step;
  a.out0 = (a.first + pad - a.tap0 * dil) / stride;  // exact: both terms are == residue
  return a;
}

// backward-data, one stride phase (ph_h, ph_w) at a time: m = ci, k = (co, jh, jw) over the
// phase's taps, n = (n, ih, iw) over its pixels; a dense GEMM whose only zero taps are at the
// borders. Split s (split-K) writes dx + s * split_stride.
template <class T>
struct BackwardDataProblem {
  static constexpr bool kAKFastest = true;   // A's (jh, jw) runs are short strided rows
  static constexpr bool kBKFastest = false;  // B's unit-stride index is n (iw)
  using Out = T;
  ConvGeom g;
  const T* dy;
  const T* w;
  T* dx;
  PhaseAxis ph_h, ph_w;
  int64_t split_stride;
  __host__ __device__ int M() const { return g.Cin_g; }
  __host__ __device__ int Ncols() const { return g.N * ph_h.count * ph_w.count; }
  __host__ __device__ int K() const { return g.Cout_g * ph_h.taps * ph_w.taps; }

  struct Row {
    const T* w;  // W[group's first co, ci, tap0_h, tap0_w]
  };
  struct Col {
    int64_t base;  // dy offset of (n, group's first channel)
    int oh0, ow0;  // output position of tap (0, 0)
    int64_t out;   // dx offset of (n, group's first channel, ih, iw)
  };
  IRIS_DEV Row row(int grp, int m) const {
    return {w + (static_cast<int64_t>(grp) * g.Cout_g * g.Cin_g + m) * g.kk + ph_h.tap0 * g.kW +
            ph_w.tap0};
  }
  IRIS_DEV T a(const Row& r, int k) const {
    const int taps = ph_h.taps * ph_w.taps;
    const int co = k / taps, rest = k - co * taps;
    const int jh = rest / ph_w.taps, jw = rest - jh * ph_w.taps;
    return r.w[static_cast<int64_t>(co) * g.Cin_g * g.kk + jh * ph_h.tap_step * g.kW +
               jw * ph_w.tap_step];
  }
  IRIS_DEV Col col(int grp, int q) const {
    const Pixel p = split_pixel(q, ph_h.count, ph_w.count);
    const int ih = ph_h.first + p.y * g.sh, iw = ph_w.first + p.x * g.sw;
    const int64_t c0 = static_cast<int64_t>(p.n) * g.Cout + static_cast<int64_t>(grp) * g.Cout_g;
    const int64_t i0 = static_cast<int64_t>(p.n) * g.Cin + static_cast<int64_t>(grp) * g.Cin_g;
    return {c0 * g.OH * g.OW, ph_h.out0 + p.y, ph_w.out0 + p.x, (i0 * g.H + ih) * g.W + iw};
  }
  IRIS_DEV T b(const Col& c, int k) const {
    const int taps = ph_h.taps * ph_w.taps;
    const int co = k / taps, rest = k - co * taps;
    const int jh = rest / ph_w.taps, jw = rest - jh * ph_w.taps;
    const int oh = c.oh0 - jh * ph_h.out_step, ow = c.ow0 - jw * ph_w.out_step;
    if (oh < 0 || oh >= g.OH || ow < 0 || ow >= g.OW) return T(0);
    return dy[c.base + (static_cast<int64_t>(co) * g.OH + oh) * g.OW + ow];
  }
  IRIS_DEV void store(int, int split, int m, const Col& c, T v) const {
    dx[split * split_stride + c.out + static_cast<int64_t>(m) * g.H * g.W] = v;
  }
};

// backward-weight: m = co, k = (n, oh, ow) (the reduction), n = (ci, kh, kw). Split s of
// the reduction writes partial[s][group * Cout_g + co][n], in Acc (fp32 for 16-bit T).
template <class T, class Acc = T>
struct BackwardWeightProblem {
  static constexpr bool kAKFastest = true;  // A's unit-stride index is k (ow)
  static constexpr bool kBKFastest = true;  // B's unit-stride index is k (ow)
  using Out = Acc;
  ConvGeom g;
  const T* dy;
  const T* x;
  Acc* partial;
  __host__ __device__ int M() const { return g.Cout_g; }
  __host__ __device__ int Ncols() const { return g.Cin_g * g.kk; }
  __host__ __device__ int K() const { return g.N * g.OH * g.OW; }

  struct Row {
    const T* dy;  // dY[0, group * Cout_g + co]
  };
  struct Col {
    const T* x;  // x[0, group * Cin_g + ci]
    int kh_off, kw_off;
    int n;
  };
  IRIS_DEV Row row(int grp, int m) const {
    return {dy + (static_cast<int64_t>(grp) * g.Cout_g + m) * g.OH * g.OW};
  }
  IRIS_DEV T a(const Row& r, int k) const {
    const int plane = g.OH * g.OW;
    const int n = k / plane;
    return r.dy[static_cast<int64_t>(n) * g.Cout * plane + (k - n * plane)];
  }
  IRIS_DEV Col col(int grp, int q) const {
    const int ci = q / g.kk, r = q - ci * g.kk;
    const int kh = r / g.kW, kw = r - kh * g.kW;
    return {x + (static_cast<int64_t>(grp) * g.Cin_g + ci) * g.H * g.W, kh * g.dh - g.ph,
            kw * g.dw - g.pw, q};
  }
  IRIS_DEV T b(const Col& c, int k) const {
    const Pixel p = split_pixel(k, g.OH, g.OW);
    const int ih = p.y * g.sh + c.kh_off, iw = p.x * g.sw + c.kw_off;
    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return T(0);
    return c.x[static_cast<int64_t>(p.n) * g.Cin * g.H * g.W + static_cast<int64_t>(ih) * g.W + iw];
  }
  IRIS_DEV void store(int grp, int split, int m, const Col& c, Acc v) const {
    const int64_t rows = static_cast<int64_t>(g.G) * g.Cout_g;
    partial[((split * rows) + static_cast<int64_t>(grp) * g.Cout_g + m) * Ncols() + c.n] = v;
  }
};

}  // namespace iris::IRIS_KERNEL_NS::conv_gemm
