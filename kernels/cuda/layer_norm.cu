// CUDA layer norm: one kernel per direction over rows of x [M, N] (dense, row-major).
// A warp per row up to width kWarpRowMax (several rows per block), a block per row
// beyond. Row sums are warp shuffles (__shfl_xor_sync, full mask), then, for a block
// per row, one shared-memory step over the warps in a fixed order. Accumulation is in
// the input's type (fp32 for float, fp64 for double); bf16/f16 rows compute in fp32, keep
// float32 statistics and partials, and round once at each 16-bit store.
// Backward: dx in one pass per row after one reduction pass; dweight/dbias as per-group
// partial rows (row group g owns rows g, g + G, ...; G fixed by M alone), then a final
// kernel sums the G partials per column in order: deterministic, no atomics.
// add_layer_norm is the same two kernels with a residual: the forward's first read of a row
// forms s = x + residual (rounded to T, as a separate add would) and stores it, the rest of
// the row works on s; the backward adds ds to dx.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"  // first: it brings in cuda_compat.h
#include "kernels/elementwise.h"
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
using ops::compute_t;
using ops::load_compute;
using ops::store_compute;

template <class A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = Tr::kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(ops::kFullMask, v, o);
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
// T is the storage type, C = compute_t<T> the type of the arithmetic and the statistics.
// res (and s) may be null: plain layer norm of x.
template <class T, int kRowThreads, class C = compute_t<T>>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    layer_norm_forward_kernel(const T* x, const T* res, const T* w, const T* b, int64_t M,
                              int64_t N, C eps, T* s, T* y, C* mean, C* rstd) {
  static_assert(Tr::kBlockThreads % kRowThreads == 0);
  constexpr int kRows = Tr::kBlockThreads / kRowThreads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / kRowThreads;
  const int t = static_cast<int>(threadIdx.x % kRowThreads);
  if (row >= M) return;  // whole warps only (a block per row: never)
  const T* xr = x + row * N;
  const T* rr = res ? res + row * N : nullptr;
  T* sr = res ? s + row * N : nullptr;
  T* yr = y + row * N;
  // Element j of the row: x_j, or s_j = x_j + res_j as stored in T.
  auto sum_at = [&](int64_t j) {
    return store_compute<T>(load_compute(xr[j]) + load_compute(rr[j]));
  };
  // The first read of element j (this thread's own): forms and stores s_j.
  auto first_at = [&](int64_t j) {
    if (!rr) return load_compute(xr[j]);
    const T v = sum_at(j);
    sr[j] = v;
    return load_compute(v);
  };
  const T* src = rr ? sr : xr;  // the row after its first read
  // A warp per row keeps its row in registers (kCache values per lane, one global
  // read); a block per row re-reads it (L1/L2-resident). each(first, f) calls f(v_j, j)
  // for this thread's elements j = t, t + kRowThreads, ... (first: the row's first read).
  constexpr bool kWarpRow = kRowThreads == Tr::kWarp;
  constexpr int kCache = kWarpRow ? static_cast<int>(Tr::kWarpRowMax / Tr::kWarp) : 1;
  static_assert(!kWarpRow || kCache * Tr::kWarp == Tr::kWarpRowMax);
  C cache[kCache];
  if constexpr (kWarpRow) {
    IRIS_LN_UNROLL
    for (int c = 0; c < kCache; ++c) {
      const int64_t j = t + static_cast<int64_t>(c) * Tr::kWarp;
      cache[c] = j < N ? first_at(j) : C(0);
    }
  }
  auto each = [&](auto first, auto&& f) {
    if constexpr (kWarpRow) {
      IRIS_LN_UNROLL
      for (int c = 0; c < kCache; ++c) {
        const int64_t j = t + static_cast<int64_t>(c) * Tr::kWarp;
        if (j < N) f(cache[c], j);
      }
    } else if constexpr (decltype(first)::value) {
      for (int64_t j = t; j < N; j += kRowThreads) f(first_at(j), j);
    } else {
      for (int64_t j = t; j < N; j += kRowThreads) f(load_compute(src[j]), j);
    }
  };
  // Shifted by the first element, so the sum grows with the spread, not the mean.
  const C shift = rr ? load_compute(sum_at(0)) : load_compute(xr[0]);
  C s_part = 0;
  each(std::true_type{}, [&](C v, int64_t) { s_part += v - shift; });
  const C mu = shift + row_sum<kRowThreads>(s_part) / static_cast<C>(N);
  // Deviations from the rounded mean, and their mean lo (the rounding residual).
  C sd = 0, ss = 0;
  each(std::false_type{}, [&](C v, int64_t) {
    const C d = v - mu;
    sd += d;
    ss += d * d;
  });
  const C lo = row_sum<kRowThreads>(sd) / static_cast<C>(N);
  const C var_raw = row_sum<kRowThreads>(ss) / static_cast<C>(N) - lo * lo;
  const C var = var_raw > C(0) ? var_raw : C(0);
  const C r = C(1) / std::sqrt(var + eps);
  each(std::false_type{}, [&](C v, int64_t j) {
    C o = ((v - mu) - lo) * r;
    if (w) o *= load_compute(w[j]);
    if (b) o += load_compute(b[j]);
    yr[j] = store_compute<T>(o);
  });
  if (t == 0) {
    mean[row] = mu + lo;
    rstd[row] = r;
  }
}

// Row group g handles rows g, g + G, ... in order. dx (may be null) per row, plus ds
// when set (add_layer_norm); when part is set, dy * xhat and dy of the group's rows are
// summed into partial rows g of part[0] and part[1] ([G, N] each).
template <class T, int kRowThreads, class C = compute_t<T>>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    layer_norm_backward_kernel(const T* dy, const T* ds, const T* x, const C* mean, const C* rstd,
                               const T* w, int64_t M, int64_t N, int64_t G, T* dx, C* dw_part,
                               C* db_part) {
  static_assert(Tr::kBlockThreads % kRowThreads == 0);
  constexpr int kRows = Tr::kBlockThreads / kRowThreads;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / kRowThreads;
  const int t = static_cast<int>(threadIdx.x % kRowThreads);
  if (g >= G) return;  // whole warps only (a block per row: never)
  C* dwp = dw_part ? dw_part + g * N : nullptr;
  C* dbp = db_part ? db_part + g * N : nullptr;
  const C inv_n = C(1) / static_cast<C>(N);
  for (int64_t row = g; row < M; row += G) {
    const T* xr = x + row * N;
    const T* dyr = dy + row * N;
    const C mu = mean[row], rs = rstd[row];
    // With g = dy * w, u = x - mean and the residual lo = mean(u) (the stored mean is
    // rounded): xhat = (u - lo) * rstd, mean(g * xhat) = rstd * (sum(g u) - lo sum(g)) / N,
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
    C sg = 0, sgu = 0, su = 0;
    for (int64_t j = t; j < N; j += kRowThreads) {
      const C u = load_compute(xr[j]) - mu;
      const C d = load_compute(dyr[j]);
      const C gj = w ? d * load_compute(w[j]) : d;
      sg += gj;
      sgu += gj * u;
      su += u;
    }
    const C sum_g = row_sum<kRowThreads>(sg);
    const C sum_gu = row_sum<kRowThreads>(sgu);
    const C lo = row_sum<kRowThreads>(su) * inv_n;
    const C mean_g = sum_g * inv_n;
    const C mean_gx = rs * (sum_gu - lo * sum_g) * inv_n;
    const bool first = row == g;
    for (int64_t j = t; j < N; j += kRowThreads) {
      const C xhat = ((load_compute(xr[j]) - mu) - lo) * rs;
      const C d = load_compute(dyr[j]);
      if (dx) {
        const C gj = w ? d * load_compute(w[j]) : d;
        const C dln = rs * ((gj - mean_g) - xhat * mean_gx);
        dx[row * N + j] = store_compute<T>(ds ? dln + load_compute(ds[row * N + j]) : dln);
      }
      if (dwp) dwp[j] = (first ? C(0) : dwp[j]) + d * xhat;
      if (dbp) dbp[j] = (first ? C(0) : dbp[j]) + d;
    }
  }
}

// Column j of dweight/dbias: the G partials summed in order.
template <class T, class C = compute_t<T>>
__global__ void __launch_bounds__(Tr::kReduceThreads)
    layer_norm_reduce_kernel(const C* dw_part, const C* db_part, int64_t G, int64_t N, T* dw,
                             T* db) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < N;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    C sw = 0, sb = 0;
    for (int64_t p = 0; p < G; ++p) {
      if (dw) sw += dw_part[p * N + j];
      if (db) sb += db_part[p * N + j];
    }
    if (dw) dw[j] = store_compute<T>(sw);
    if (db) db[j] = store_compute<T>(sb);
  }
}

using ops::ptr;

// mean and rstd are float32 for a 16-bit input, the input's dtype otherwise.
void check_stats(const char* op, const Tensor& x, const Tensor& mean, const Tensor& rstd) {
  const DType want = x.dtype() == DType::bf16 || x.dtype() == DType::f16 ? DType::f32 : x.dtype();
  IRIS_CHECK(mean.dtype() == want && rstd.dtype() == want, op, ": the statistics of ", x.desc(),
             " are ", dtype_name(want), ", got mean ", mean.desc(), ", rstd ", rstd.desc());
}

dim3 blocks_for(int64_t n, int64_t per_block) {
  return dim3(static_cast<unsigned>((n + per_block - 1) / per_block));
}

// layer_norm (res undefined) and add_layer_norm (sum = x + res, then its layer norm).
void forward_impl(const char* op, const Tensor& x, const Tensor& res, const Tensor& weight,
                  const Tensor& bias, double eps, const Tensor& sum, const Tensor& out,
                  const Tensor& mean, const Tensor& rstd) {
  IRIS_CHECK(x.dim() == 2 && x.is_contiguous(), op, ": cuda expects a dense [M, N] input, got ",
             x.desc());
  IRIS_CHECK(!res.defined() || (res.is_contiguous() && sum.is_contiguous()), op,
             ": cuda expects a dense residual and sum, got ", res.desc(), ", ", sum.desc());
  const int64_t M = x.size(0), N = x.size(1);
  if (M == 0) return;
  if (N == 0) {  // statistics of an empty row, as 0 / 0
    kernels::fill_table().get(mean.device())(mean, std::numeric_limits<double>::quiet_NaN());
    kernels::fill_table().get(rstd.device())(rstd, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  check_stats(op, x, mean, rstd);
  ops::dispatch_float_or_half(x.dtype(), op, [&]<class T>() {
    using C = compute_t<T>;
    const T* px = ptr<const T>(x);
    const T* pres = ptr<const T>(res);
    const T* pw = ptr<const T>(weight);
    const T* pb = ptr<const T>(bias);
    if (N <= Tr::kWarpRowMax) {
      constexpr int kRows = Tr::kBlockThreads / Tr::kWarp;
      IRIS_LAUNCH((layer_norm_forward_kernel<T, Tr::kWarp>), blocks_for(M, kRows),
                  dim3(Tr::kBlockThreads), 0, nullptr, px, pres, pw, pb, M, N, static_cast<C>(eps),
                  ptr<T>(sum), ptr<T>(out), ptr<C>(mean), ptr<C>(rstd));
    } else {
      IRIS_LAUNCH((layer_norm_forward_kernel<T, Tr::kBlockThreads>), blocks_for(M, 1),
                  dim3(Tr::kBlockThreads), 0, nullptr, px, pres, pw, pb, M, N, static_cast<C>(eps),
                  ptr<T>(sum), ptr<T>(out), ptr<C>(mean), ptr<C>(rstd));
    }
  });
}

// layer_norm's backward (ds undefined) and add_layer_norm's (dx = ds + the layer norm's dx).
void backward_impl(const char* op, const Tensor& dy, const Tensor& ds, const Tensor& x,
                   const Tensor& mean, const Tensor& rstd, const Tensor& weight, const Tensor& dx,
                   const Tensor& dweight, const Tensor& dbias) {
  IRIS_CHECK(x.dim() == 2 && x.is_contiguous() && dy.is_contiguous() &&
                 (!ds.defined() || ds.is_contiguous()),
             op, ": cuda expects dense [M, N] inputs, got x ", x.desc(), ", dy ", dy.desc(),
             ds.defined() ? ", ds " + ds.desc() : std::string());
  const int64_t M = x.size(0), N = x.size(1);
  if (N == 0) return;
  if (M == 0) {
    if (dweight.defined()) kernels::fill_table().get(dweight.device())(dweight, 0.0);
    if (dbias.defined()) kernels::fill_table().get(dbias.device())(dbias, 0.0);
    return;
  }
  const bool affine = dweight.defined() || dbias.defined();
  if (!affine && !dx.defined()) return;
  check_stats(op, x, mean, rstd);
  ops::dispatch_float_or_half(x.dtype(), op, [&]<class T>() {
    using C = compute_t<T>;
    const bool warp_rows = N <= Tr::kWarpRowMax;
    const int64_t G =
        affine ? std::min<int64_t>(M, warp_rows ? Tr::kMaxGroupsWarp : Tr::kMaxGroupsBlock) : M;
    Tensor part;
    C* dw_part = nullptr;
    C* db_part = nullptr;
    if (affine) {
      part = Tensor::empty({2, G, N}, dtype_v<C>, x.device());
      if (dweight.defined()) dw_part = ptr<C>(part);
      if (dbias.defined()) db_part = ptr<C>(part) + G * N;
    }
    const T* pdy = ptr<const T>(dy);
    const T* pds = ptr<const T>(ds);
    const T* px = ptr<const T>(x);
    const C* pm = ptr<const C>(mean);
    const C* pr = ptr<const C>(rstd);
    const T* pw = ptr<const T>(weight);
    if (warp_rows) {
      constexpr int kRows = Tr::kBlockThreads / Tr::kWarp;
      IRIS_LAUNCH((layer_norm_backward_kernel<T, Tr::kWarp>), blocks_for(G, kRows),
                  dim3(Tr::kBlockThreads), 0, nullptr, pdy, pds, px, pm, pr, pw, M, N, G,
                  ptr<T>(dx), dw_part, db_part);
    } else {
      IRIS_LAUNCH((layer_norm_backward_kernel<T, Tr::kBlockThreads>), blocks_for(G, 1),
                  dim3(Tr::kBlockThreads), 0, nullptr, pdy, pds, px, pm, pr, pw, M, N, G,
                  ptr<T>(dx), dw_part, db_part);
    }
    if (affine) {
      const int64_t blocks =
          std::min((N + Tr::kReduceThreads - 1) / Tr::kReduceThreads, Tr::kMaxReduceBlocks);
      IRIS_LAUNCH(layer_norm_reduce_kernel<T>, blocks_for(blocks, 1), dim3(Tr::kReduceThreads), 0,
                  nullptr, dw_part, db_part, G, N, ptr<T>(dweight), ptr<T>(dbias));
    }
  });
}

void layer_norm_forward_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                             const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  forward_impl("layer_norm", x, Tensor(), weight, bias, eps, Tensor(), out, mean, rstd);
}

void layer_norm_backward_cuda(const Tensor& dy, const Tensor& x, const Tensor& mean,
                              const Tensor& rstd, const Tensor& weight, const Tensor& dx,
                              const Tensor& dweight, const Tensor& dbias) {
  backward_impl("layer_norm_backward", dy, Tensor(), x, mean, rstd, weight, dx, dweight, dbias);
}

void add_layer_norm_forward_cuda(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                 const Tensor& bias, double eps, const Tensor& sum,
                                 const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  forward_impl("add_layer_norm", x, residual, weight, bias, eps, sum, out, mean, rstd);
}

void add_layer_norm_backward_cuda(const Tensor& dy, const Tensor& ds, const Tensor& sum,
                                  const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                  const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  if (!dy.defined()) {  // only the sum's gradient: dx = ds, no parameter gradients
    kernels::add_layer_norm_backward_without_dy(ds, dx, dweight, dbias);
    return;
  }
  backward_impl("add_layer_norm_backward", dy, ds, sum, mean, rstd, weight, dx, dweight, dbias);
}

}  // namespace

IRIS_REGISTER_KERNEL(layer_norm_forward, CUDA, layer_norm_forward_cuda);
IRIS_REGISTER_KERNEL(layer_norm_backward, CUDA, layer_norm_backward_cuda);
IRIS_REGISTER_KERNEL(add_layer_norm_forward, CUDA, add_layer_norm_forward_cuda);
IRIS_REGISTER_KERNEL(add_layer_norm_backward, CUDA, add_layer_norm_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS
