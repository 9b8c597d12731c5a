// CUDA layer norm: one kernel per direction over rows of x [M, N] (dense, row-major).
// A warp per row up to width kWarpRowMax (several rows per block), a block per row
// beyond. Row sums are warp shuffles (__shfl_xor_sync, full mask), then, for a block
// per row, one shared-memory step over the warps in a fixed order. Accumulation is in
// the input's type (fp32 for float, fp64 for double).
// Backward: dx in one pass per row after one reduction pass; dweight/dbias as per-group
// partial rows (row group g owns rows g, g + G, ...; G fixed by M alone), then a final
// kernel sums the G partials per column in order: deterministic, no atomics.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/tensor.h"
#include "kernels/elementwise.h"
#include "kernels/emu/cuda_compat.h"
#include "kernels/cuda/online_softmax.cuh"
#include "kernels/norm.h"

#if defined(__CUDACC__)
#define IRIS_LN_UNROLL _Pragma("unroll")
#else
#define IRIS_LN_UNROLL _Pragma("GCC unroll 32")
#endif

namespace iris::IRIS_KERNEL_NS {
namespace {

struct LayerNormTraits {
  static constexpr int kWarp = 32;
  static constexpr int kBlockThreads = 256;     // threads per block, both modes
  static constexpr int64_t kWarpRowMax = 1024;  // widest row a single warp handles
  // dweight/dbias partial rows: at most this many row groups (fixed, not per GPU).
  static constexpr int64_t kMaxGroupsWarp = 1024;
  static constexpr int64_t kMaxGroupsBlock = 256;
  static constexpr int kReduceThreads = 256;  // final column sums
  static constexpr int64_t kMaxReduceBlocks = 1024;
  static_assert(kBlockThreads % kWarp == 0 && kBlockThreads / kWarp >= 1);
  static_assert(kReduceThreads % kWarp == 0);
  static_assert(kMaxGroupsWarp >= 1 && kMaxGroupsBlock >= 1);
};
using Tr = LayerNormTraits;

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = Tr::kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// Sum over the kRowThreads threads of one row; every thread gets the total.
template <int kRowThreads, class A>
__device__ __forceinline__ A row_sum(A v) {
  v = warp_sum(v);
  if constexpr (kRowThreads > Tr::kWarp) {
    constexpr int kWarps = kRowThreads / Tr::kWarp;
    IRIS_SHARED(A, part, [kWarps]);
    const int warp = static_cast<int>(threadIdx.x) / Tr::kWarp;
    if (threadIdx.x % Tr::kWarp == 0) part[warp] = v;
    __syncthreads();
    A s = 0;
    for (int w = 0; w < kWarps; ++w) {
      const A pw = part[w];
      s += pw;
    }
    __syncthreads();  // part is reused by the next call
    v = s;
  }
  return v;
}

// kRowThreads threads per row: kWarp (warp per row) or kBlockThreads (block per row).
template <class T, int kRowThreads>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    layer_norm_forward_kernel(const T* x, const T* w, const T* b, int64_t M, int64_t N, T eps,
                              T* y, T* mean, T* rstd) {
  static_assert(Tr::kBlockThreads % kRowThreads == 0);
  constexpr int kRows = Tr::kBlockThreads / kRowThreads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / kRowThreads;
  const int t = static_cast<int>(threadIdx.x % kRowThreads);
  if (row >= M) return;  // whole warps only (a block per row: never)
  const T* xr = x + row * N;
  T* yr = y + row * N;
  // A warp per row keeps its row in registers (kCache values per lane, one global
  // read); a block per row re-reads it (L1/L2-resident). each(f) calls f(x_j, j) for
  // this thread's elements j = t, t + kRowThreads, ...
  constexpr bool kWarpRow = kRowThreads == Tr::kWarp;
  constexpr int kCache = kWarpRow ? static_cast<int>(Tr::kWarpRowMax / Tr::kWarp) : 1;
  static_assert(!kWarpRow || kCache * Tr::kWarp == Tr::kWarpRowMax);
  T cache[kCache];
  if constexpr (kWarpRow) {
    IRIS_LN_UNROLL
    for (int c = 0; c < kCache; ++c) {
      const int64_t j = t + static_cast<int64_t>(c) * Tr::kWarp;
      cache[c] = j < N ? xr[j] : T(0);
    }
  }
  auto each = [&](auto&& f) {
    if constexpr (kWarpRow) {
      IRIS_LN_UNROLL
      for (int c = 0; c < kCache; ++c) {
        const int64_t j = t + static_cast<int64_t>(c) * Tr::kWarp;
        if (j < N) f(cache[c], j);
      }
    } else {
      for (int64_t j = t; j < N; j += kRowThreads) f(xr[j], j);
    }
  };
  // Shifted by the first element, so the sum grows with the spread, not the mean.
  const T shift = xr[0];
  T s = 0;
  each([&](T v, int64_t) { s += v - shift; });
  const T mu = shift + row_sum<kRowThreads>(s) / static_cast<T>(N);
  // Deviations from the rounded mean, and their mean lo (the rounding residual).
  T sd = 0, ss = 0;
  each([&](T v, int64_t) {
    const T d = v - mu;
    sd += d;
    ss += d * d;
  });
  const T lo = row_sum<kRowThreads>(sd) / static_cast<T>(N);
  const T var_raw = row_sum<kRowThreads>(ss) / static_cast<T>(N) - lo * lo;
  const T var = var_raw > T(0) ? var_raw : T(0);
  const T r = T(1) / std::sqrt(var + eps);
  each([&](T v, int64_t j) {
    T o = ((v - mu) - lo) * r;
    if (w) o *= w[j];
    if (b) o += b[j];
    yr[j] = o;
  });
  if (t == 0) {
    mean[row] = mu + lo;
    rstd[row] = r;
  }
}

// Row group g handles rows g, g + G, ... in order. dx (may be null) per row; when part
// is set, dy * xhat and dy of the group's rows are summed into partial rows g of
// part[0] and part[1] ([G, N] each).
template <class T, int kRowThreads>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    layer_norm_backward_kernel(const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                               int64_t M, int64_t N, int64_t G, T* dx, T* dw_part, T* db_part) {
  static_assert(Tr::kBlockThreads % kRowThreads == 0);
  constexpr int kRows = Tr::kBlockThreads / kRowThreads;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / kRowThreads;
  const int t = static_cast<int>(threadIdx.x % kRowThreads);
  if (g >= G) return;  // whole warps only (a block per row: never)
  T* dwp = dw_part ? dw_part + g * N : nullptr;
  T* dbp = db_part ? db_part + g * N : nullptr;
  const T inv_n = T(1) / static_cast<T>(N);
  for (int64_t row = g; row < M; row += G) {
    const T* xr = x + row * N;
    const T* dyr = dy + row * N;
    const T mu = mean[row], rs = rstd[row];
    // With g = dy * w, u = x - mean and the residual lo = mean(u) (the stored mean is
    // rounded): xhat = (u - lo) * rstd, mean(g * xhat) = rstd * (sum(g u) - lo sum(g)) / N,
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
    T sg = 0, sgu = 0, su = 0;
    for (int64_t j = t; j < N; j += kRowThreads) {
      const T u = xr[j] - mu;
      const T gj = w ? dyr[j] * w[j] : dyr[j];
      sg += gj;
      sgu += gj * u;
      su += u;
    }
    const T sum_g = row_sum<kRowThreads>(sg);
    const T sum_gu = row_sum<kRowThreads>(sgu);
    const T lo = row_sum<kRowThreads>(su) * inv_n;
    const T mean_g = sum_g * inv_n;
    const T mean_gx = rs * (sum_gu - lo * sum_g) * inv_n;
    const bool first = row == g;
    for (int64_t j = t; j < N; j += kRowThreads) {
      const T xhat = ((xr[j] - mu) - lo) * rs;
      const T d = dyr[j];
      if (dx) {
        const T gj = w ? d * w[j] : d;
        dx[row * N + j] = rs * ((gj - mean_g) - xhat * mean_gx);
      }
      if (dwp) dwp[j] = (first ? T(0) : dwp[j]) + d * xhat;
      if (dbp) dbp[j] = (first ? T(0) : dbp[j]) + d;
    }
  }
}

// Column j of dweight/dbias: the G partials summed in order.
template <class T>
__global__ void __launch_bounds__(Tr::kReduceThreads)
    layer_norm_reduce_kernel(const T* dw_part, const T* db_part, int64_t G, int64_t N, T* dw,
                             T* db) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < N;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T sw = 0, sb = 0;
    for (int64_t p = 0; p < G; ++p) {
      if (dw) sw += dw_part[p * N + j];
      if (db) sb += db_part[p * N + j];
    }
    if (dw) dw[j] = sw;
    if (db) db[j] = sb;
  }
}

template <class Fn>
void dispatch_float(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    default: IRIS_FAIL(op, ": unsupported dtype ", dtype_name(dt), " on cuda (float32/float64)");
  }
}

template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

dim3 blocks_for(int64_t n, int64_t per_block) {
  return dim3(static_cast<unsigned>((n + per_block - 1) / per_block));
}

void layer_norm_forward_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             double eps, const Tensor& out, const Tensor& mean,
                             const Tensor& rstd) {
  IRIS_CHECK(x.dim() == 2 && x.is_contiguous(), "layer_norm: cuda expects a dense [M, N] input, got ",
             x.desc());
  const int64_t M = x.size(0), N = x.size(1);
  if (M == 0) return;
  if (N == 0) {  // statistics of an empty row, as 0 / 0
    kernels::fill_table().get(mean.device())(mean, std::numeric_limits<double>::quiet_NaN());
    kernels::fill_table().get(rstd.device())(rstd, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  dispatch_float(x.dtype(), "layer_norm", [&]<class T>() {
    const T* px = ptr<const T>(x);
    const T* pw = ptr<const T>(weight);
    const T* pb = ptr<const T>(bias);
    if (N <= Tr::kWarpRowMax) {
      constexpr int kRows = Tr::kBlockThreads / Tr::kWarp;
      IRIS_LAUNCH((layer_norm_forward_kernel<T, Tr::kWarp>), blocks_for(M, kRows),
                  dim3(Tr::kBlockThreads), 0, nullptr, px, pw, pb, M, N, static_cast<T>(eps),
                  ptr<T>(out), ptr<T>(mean), ptr<T>(rstd));
    } else {
      IRIS_LAUNCH((layer_norm_forward_kernel<T, Tr::kBlockThreads>), blocks_for(M, 1),
                  dim3(Tr::kBlockThreads), 0, nullptr, px, pw, pb, M, N, static_cast<T>(eps),
                  ptr<T>(out), ptr<T>(mean), ptr<T>(rstd));
    }
  });
}

void layer_norm_backward_cuda(const Tensor& dy, const Tensor& x, const Tensor& mean,
                              const Tensor& rstd, const Tensor& weight, const Tensor& dx,
                              const Tensor& dweight, const Tensor& dbias) {
  IRIS_CHECK(x.dim() == 2 && x.is_contiguous() && dy.is_contiguous(),
             "layer_norm_backward: cuda expects dense [M, N] inputs, got x ", x.desc(), ", dy ",
             dy.desc());
  const int64_t M = x.size(0), N = x.size(1);
  if (N == 0) return;
  if (M == 0) {
    if (dweight.defined()) kernels::fill_table().get(dweight.device())(dweight, 0.0);
    if (dbias.defined()) kernels::fill_table().get(dbias.device())(dbias, 0.0);
    return;
  }
  const bool affine = dweight.defined() || dbias.defined();
  if (!affine && !dx.defined()) return;
  dispatch_float(x.dtype(), "layer_norm_backward", [&]<class T>() {
    const bool warp_rows = N <= Tr::kWarpRowMax;
    const int64_t G =
        affine ? std::min<int64_t>(M, warp_rows ? Tr::kMaxGroupsWarp : Tr::kMaxGroupsBlock) : M;
    Tensor part;
    T* dw_part = nullptr;
    T* db_part = nullptr;
    if (affine) {
      part = Tensor::empty({2, G, N}, x.dtype(), x.device());
      if (dweight.defined()) dw_part = ptr<T>(part);
      if (dbias.defined()) db_part = ptr<T>(part) + G * N;
    }
    const T* pdy = ptr<const T>(dy);
    const T* px = ptr<const T>(x);
    const T* pm = ptr<const T>(mean);
    const T* pr = ptr<const T>(rstd);
    const T* pw = ptr<const T>(weight);
    if (warp_rows) {
      constexpr int kRows = Tr::kBlockThreads / Tr::kWarp;
      IRIS_LAUNCH((layer_norm_backward_kernel<T, Tr::kWarp>), blocks_for(G, kRows),
                  dim3(Tr::kBlockThreads), 0, nullptr, pdy, px, pm, pr, pw, M, N, G, ptr<T>(dx),
                  dw_part, db_part);
    } else {
      IRIS_LAUNCH((layer_norm_backward_kernel<T, Tr::kBlockThreads>), blocks_for(G, 1),
                  dim3(Tr::kBlockThreads), 0, nullptr, pdy, px, pm, pr, pw, M, N, G, ptr<T>(dx),
                  dw_part, db_part);
    }
    if (affine) {
      const int64_t blocks =
          std::min((N + Tr::kReduceThreads - 1) / Tr::kReduceThreads, Tr::kMaxReduceBlocks);
      IRIS_LAUNCH(layer_norm_reduce_kernel<T>, blocks_for(blocks, 1), dim3(Tr::kReduceThreads), 0, nullptr,
                  dw_part, db_part, G, N, ptr<T>(dweight), ptr<T>(dbias));
    }
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(layer_norm_forward, CUDA, layer_norm_forward_cuda);
IRIS_REGISTER_KERNEL(layer_norm_backward, CUDA, layer_norm_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS
