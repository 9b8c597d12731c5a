// CUDA softmax / log-softmax along any dim of a dense tensor viewed as
// [outer, D, inner].
//   inner == 1: rows; a warp per row when D <= kWarpRowMax (8 rows per block), a
//               block per row otherwise. Forward: one pass for the running max and
//               sum of exponentials (online softmax, combined across lanes with
//               shuffles and across warps through shared memory), one pass to write.
//   inner > 1:  columns; a 32 x 8 block covers 32 adjacent inner positions
//               (coalesced) and splits D in 8, partials combined through shared memory.
// Backward reduces sum(dy * y) (softmax) or sum(dy) (log-softmax) the same way and
// writes dx in a second pass. Combines run in a fixed order: deterministic. bf16/f16
// rows compute in fp32 (max, sum, lse) and round once at the store.
#include <cmath>
#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"  // first: it brings in cuda_compat.h

#include "kernels/cuda/online_softmax.cuh"
#include "kernels/softmax.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct SoftmaxTraits {
  static constexpr int kThreads = 256;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int64_t kWarpRowMax = 1024;  // longer rows get a block each
  static constexpr int kColX = 32;              // column kernels: adjacent positions per block
  static constexpr int kColY = kThreads / kColX;  // ... and the splits of D
  static constexpr int64_t kMaxGrid = 65535;
  static_assert(kThreads % 32 == 0 && kColX == 32 && kColX * kColY == kThreads);
};
using Tr = SoftmaxTraits;
using ops::compute_t;
using ops::load_compute;
using ops::store_compute;
template <class T>
struct SumCombine {
  IRIS_DEV T operator()(T a, T b) const { return a + b; }
};
template <class T>
struct MaxSumCombine {
  IRIS_DEV MaxSum<T> operator()(MaxSum<T> a, MaxSum<T> b) const { return online_combine(a, b); }
};

// The combined value of the group (a warp, or the whole block), in every thread of it.
template <bool kBlock, class S, class C>
__device__ __forceinline__ S group_allreduce(S s, C combine) {
  for (int o = 16; o > 0; o >>= 1) s = combine(s, __shfl_xor_sync(kFullMask, s, o));
  s = __shfl_sync(kFullMask, s, 0);
  if constexpr (kBlock) {
    IRIS_SHARED(S, partial, [Tr::kWarps]);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = s;
    __syncthreads();
    S v = partial[0];
    for (int w = 1; w < Tr::kWarps; ++w) {
      const S u = partial[w];
      v = combine(v, u);
    }
    __syncthreads();  // partial is reused by the next call
    s = v;
  }
  return s;
}

// Row loop of a group: kBlock ? a block per row : a warp per row.
template <bool kBlock>
struct RowGroup {
  IRIS_DEV static int64_t first() {
    return kBlock ? static_cast<int64_t>(blockIdx.x)
                  : static_cast<int64_t>(blockIdx.x) * Tr::kWarps + threadIdx.x / 32;
  }
  IRIS_DEV static int64_t step() {
    return kBlock ? static_cast<int64_t>(gridDim.x)
                  : static_cast<int64_t>(gridDim.x) * Tr::kWarps;
  }
  IRIS_DEV static int lane() { return kBlock ? static_cast<int>(threadIdx.x) : threadIdx.x & 31; }
  static constexpr int kSize = kBlock ? Tr::kThreads : 32;
};

template <class T, bool kBlock>
__global__ void __launch_bounds__(Tr::kThreads)
    softmax_rows_forward_kernel(int64_t rows, int64_t D, const T* x, T* y, bool log) {
  using G = RowGroup<kBlock>;
  for (int64_t row = G::first(); row < rows; row += G::step()) {  // uniform in the group
    using C = compute_t<T>;
    const T* xr = x + row * D;
    T* yr = y + row * D;
    MaxSum<C> a{neg_inf<C>(), C(0)};
    for (int64_t i = G::lane(); i < D; i += G::kSize) online_add(a, load_compute(xr[i]));
    a = group_allreduce<kBlock>(a, MaxSumCombine<C>{});
    // One store site: the 16-bit rounding is inlined once (fewer registers).
    const C shift = log ? a.m + std::log(a.s) : a.m;
    const C inv = log ? C(1) : C(1) / a.s;
    for (int64_t i = G::lane(); i < D; i += G::kSize) {
      const C d = load_compute(xr[i]) - shift;
      yr[i] = store_compute<T>(log ? d : std::exp(d) * inv);
    }
  }
}

template <class T, bool kBlock>
__global__ void __launch_bounds__(Tr::kThreads)
    softmax_rows_backward_kernel(int64_t rows, int64_t D, const T* dy, const T* y, T* dx,
                                 bool log) {
  using G = RowGroup<kBlock>;
  for (int64_t row = G::first(); row < rows; row += G::step()) {
    using C = compute_t<T>;
    const T* dyr = dy + row * D;
    const T* yr = y + row * D;
    T* dxr = dx + row * D;
    C s = 0;
    for (int64_t i = G::lane(); i < D; i += G::kSize)
      s += log ? load_compute(dyr[i]) : load_compute(dyr[i]) * load_compute(yr[i]);
    s = group_allreduce<kBlock>(s, SumCombine<C>{});
    for (int64_t i = G::lane(); i < D; i += G::kSize) {
      const C g = load_compute(dyr[i]), v = load_compute(yr[i]);
      dxr[i] = store_compute<T>(log ? g - std::exp(v) * s : v * (g - s));
    }
  }
}

// The combined value of column threadIdx.x over the kColY row splits, in every thread.
template <class S, class C>
__device__ __forceinline__ S column_allreduce(S s, C combine) {
  IRIS_SHARED(S, partial, [Tr::kColY][Tr::kColX]);
  partial[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  S v = partial[0][threadIdx.x];
  for (int j = 1; j < Tr::kColY; ++j) {
    const S u = partial[j][threadIdx.x];
    v = combine(v, u);
  }
  __syncthreads();
  return v;
}

#define IRIS_COLUMN_LOOP(o, k)                                                           \
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y)                                \
    for (int64_t k##0 = static_cast<int64_t>(blockIdx.x) * Tr::kColX; k##0 < inner;      \
         k##0 += static_cast<int64_t>(gridDim.x) * Tr::kColX)

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    softmax_cols_forward_kernel(int64_t outer, int64_t D, int64_t inner, const T* x, T* y,
                                bool log) {
  IRIS_COLUMN_LOOP(o, k) {
    const int64_t k = k0 + threadIdx.x;
    const bool live = k < inner;
    using C = compute_t<T>;
    const int64_t base = o * D * inner + k;
    MaxSum<C> a{neg_inf<C>(), C(0)};
    if (live)
      for (int64_t i = threadIdx.y; i < D; i += Tr::kColY)
        online_add(a, load_compute(x[base + i * inner]));
    a = column_allreduce(a, MaxSumCombine<C>{});
    if (!live) continue;  // after the barriers
    const C shift = log ? a.m + std::log(a.s) : a.m;
    const C inv = log ? C(1) : C(1) / a.s;
    for (int64_t i = threadIdx.y; i < D; i += Tr::kColY) {
      const C d = load_compute(x[base + i * inner]) - shift;
      y[base + i * inner] = store_compute<T>(log ? d : std::exp(d) * inv);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kThreads)
    softmax_cols_backward_kernel(int64_t outer, int64_t D, int64_t inner, const T* dy,
                                 const T* y, T* dx, bool log) {
  IRIS_COLUMN_LOOP(o, k) {
    const int64_t k = k0 + threadIdx.x;
    const bool live = k < inner;
    using C = compute_t<T>;
    const int64_t base = o * D * inner + k;
    C s = 0;
    if (live)
      for (int64_t i = threadIdx.y; i < D; i += Tr::kColY) {
        const int64_t j = base + i * inner;
        s += log ? load_compute(dy[j]) : load_compute(dy[j]) * load_compute(y[j]);
      }
    s = column_allreduce(s, SumCombine<C>{});
    if (!live) continue;
    for (int64_t i = threadIdx.y; i < D; i += Tr::kColY) {
      const int64_t j = base + i * inner;
      const C g = load_compute(dy[j]), v = load_compute(y[j]);
      dx[j] = store_compute<T>(log ? g - std::exp(v) * s : v * (g - s));
    }
  }
}
#undef IRIS_COLUMN_LOOP

unsigned clamp_grid(int64_t n) {
  return static_cast<unsigned>(n < 1 ? 1 : (n < Tr::kMaxGrid ? n : Tr::kMaxGrid));
}

struct Geometry3 {
  int64_t outer = 1, D = 1, inner = 1;
};

Geometry3 geometry(const Tensor& x, int64_t dim) {
  Geometry3 g;
  g.D = x.size(dim);
  for (int64_t d = 0; d < dim; ++d) g.outer *= x.size(d);
  for (int64_t d = dim + 1; d < x.dim(); ++d) g.inner *= x.size(d);
  return g;
}

void check_dense(const char* op, const Tensor& t) {
  IRIS_CHECK(t.is_contiguous(), op, ": expected a dense tensor, got ", t.desc());
}

void softmax_forward_cuda(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  const char* name = log ? "log_softmax" : "softmax";
  check_dense(name, x);
  check_dense(name, out);
  if (x.numel() == 0) return;
  const Geometry3 g = geometry(x, dim);
  ops::dispatch_float_or_half(x.dtype(), name, [&]<class T>() {
    const T* px = static_cast<const T*>(x.raw_data());
    T* py = static_cast<T*>(out.raw_data());
    if (g.inner > 1) {
      const dim3 grid(clamp_grid((g.inner + Tr::kColX - 1) / Tr::kColX), clamp_grid(g.outer));
      IRIS_LAUNCH(softmax_cols_forward_kernel<T>, grid, dim3(Tr::kColX, Tr::kColY), 0, nullptr,
                  g.outer, g.D, g.inner, px, py, log);
    } else if (g.D <= Tr::kWarpRowMax) {
      IRIS_LAUNCH((softmax_rows_forward_kernel<T, false>),
                  dim3(clamp_grid((g.outer + Tr::kWarps - 1) / Tr::kWarps)), dim3(Tr::kThreads), 0,
                  nullptr, g.outer, g.D, px, py, log);
    } else {
      IRIS_LAUNCH((softmax_rows_forward_kernel<T, true>), dim3(clamp_grid(g.outer)),
                  dim3(Tr::kThreads), 0, nullptr, g.outer, g.D, px, py, log);
    }
  });
}

void softmax_backward_cuda(const Tensor& dy, const Tensor& y, int64_t dim, bool log,
                           const Tensor& dx) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  check_dense(name, dy);
  check_dense(name, y);
  check_dense(name, dx);
  if (y.numel() == 0) return;
  const Geometry3 g = geometry(y, dim);
  ops::dispatch_float_or_half(y.dtype(), name, [&]<class T>() {
    const T* pdy = static_cast<const T*>(dy.raw_data());
    const T* py = static_cast<const T*>(y.raw_data());
    T* pdx = static_cast<T*>(dx.raw_data());
    if (g.inner > 1) {
      const dim3 grid(clamp_grid((g.inner + Tr::kColX - 1) / Tr::kColX), clamp_grid(g.outer));
      IRIS_LAUNCH(softmax_cols_backward_kernel<T>, grid, dim3(Tr::kColX, Tr::kColY), 0, nullptr,
                  g.outer, g.D, g.inner, pdy, py, pdx, log);
    } else if (g.D <= Tr::kWarpRowMax) {
      IRIS_LAUNCH((softmax_rows_backward_kernel<T, false>),
                  dim3(clamp_grid((g.outer + Tr::kWarps - 1) / Tr::kWarps)), dim3(Tr::kThreads), 0,
                  nullptr, g.outer, g.D, pdy, py, pdx, log);
    } else {
      IRIS_LAUNCH((softmax_rows_backward_kernel<T, true>), dim3(clamp_grid(g.outer)),
                  dim3(Tr::kThreads), 0, nullptr, g.outer, g.D, pdy, py, pdx, log);
    }
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(softmax_forward, CUDA, softmax_forward_cuda);
IRIS_REGISTER_KERNEL(softmax_backward, CUDA, softmax_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS

#undef IRIS_DEV
