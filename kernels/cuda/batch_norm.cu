// CUDA batch norm over x [N, C, S] (dense), the CPU backend's algorithm on the GPU.
// Statistics are two-stage and deterministic, in double: stage 1 reduces each (n, c) row
// (a thread, a warp or a block per row by S; warp shuffles, then one shared-memory step
// over the warps in a fixed order); stage 2, a thread per channel, combines the N rows
// in order of n (Chan's formula for the variance), updates the running statistics and
// writes per-channel coefficients; a coalesced grid-stride pass then applies them.
// Backward has the same shape: row sums of dy, dy * (x - mean) and x - mean, a channel
// pass that writes dweight/dbias and the dx coefficients, then the dx pass. No atomics.
// bf16/f16 inputs: float coefficients and saved statistics, float math, one rounding at the
// store; weight, bias and running statistics float32 or the input's dtype (as on the CPU).
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "core/tensor.h"
#include "kernels/cuda/ops_launch.cuh"
#include "kernels/emu/cuda_compat.h"
#include "kernels/norm.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

struct BatchNormTraits {
  static constexpr int kWarp = 32;
  static constexpr int kBlockThreads = 256;  // every kernel
  // Row reductions: a thread per row below kThreadRowMax elements, a warp per row up to
  // kWarpRowMax, a block per row beyond.
  static constexpr int64_t kThreadRowMax = 8;
  static constexpr int64_t kWarpRowMax = 1024;
  static constexpr int64_t kMaxRowBlocks = 65535;  // grid-stride over rows beyond
  static_assert(kBlockThreads % kWarp == 0 && kThreadRowMax <= kWarpRowMax);
};
using Tr = BatchNormTraits;

// Sum over the kRowThreads threads of one row; every thread gets the total, summed in a
// fixed order (xor butterfly, then the warps' partials in order).
template <int kRowThreads>
__device__ __forceinline__ double row_sum(double v) {
  if constexpr (kRowThreads > 1) {
    constexpr int kLanes = kRowThreads < Tr::kWarp ? kRowThreads : Tr::kWarp;
    for (int o = kLanes / 2; o > 0; o /= 2) v += __shfl_xor_sync(ops::kFullMask, v, o);
  }
  if constexpr (kRowThreads > Tr::kWarp) {
    constexpr int kWarps = kRowThreads / Tr::kWarp;
    IRIS_SHARED(double, part, [kWarps]);
    const int warp = static_cast<int>(threadIdx.x) / Tr::kWarp;
    if (threadIdx.x % Tr::kWarp == 0) part[warp] = v;
    __syncthreads();
    double s = 0;
    for (int w = 0; w < kWarps; ++w) {
      const double pw = part[w];
      s += pw;
    }
    __syncthreads();  // part is reused by the next call
    v = s;
  }
  return v;
}

// Rows of kRowThreads threads, kRows per block, grid-stride over R rows (uniform per row
// group, so every thread of a block-wide row reaches the same barriers).
template <int kRowThreads>
struct RowGrid {
  static_assert(Tr::kBlockThreads % kRowThreads == 0);
  static constexpr int kRows = Tr::kBlockThreads / kRowThreads;
  __device__ static int64_t first() {
    return static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / kRowThreads;
  }
  __device__ static int64_t step() { return static_cast<int64_t>(gridDim.x) * kRows; }
  __device__ static int lane() { return static_cast<int>(threadIdx.x % kRowThreads); }
};

// Forward stage 1: mean and sum of squared deviations of each row, in double.
template <class T, int kRowThreads>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    bn_row_stats_kernel(const T* x, int64_t R, int64_t S, double* row_mean, double* row_m2) {
  using G = RowGrid<kRowThreads>;
  const int t = G::lane();
  for (int64_t r = G::first(); r < R; r += G::step()) {
    const T* row = x + r * S;
    double s = 0;
    for (int64_t i = t; i < S; i += kRowThreads) s += convert_value<double>(row[i]);
    s = row_sum<kRowThreads>(s);
    const double m = S > 0 ? s / static_cast<double>(S) : 0.0;
    double m2 = 0;
    for (int64_t i = t; i < S; i += kRowThreads) {
      const double d = convert_value<double>(row[i]) - m;
      m2 += d * d;
    }
    m2 = row_sum<kRowThreads>(m2);
    if (t == 0) row_mean[r] = m, row_m2[r] = m2;
  }
}

// Per-channel [C] tensors of any stride (weight, bias, running statistics).
template <class T>
struct Strided {
  T* p;
  int64_t stride;
  __device__ T& operator[](int64_t c) const { return p[c * stride]; }
  __device__ explicit operator bool() const { return p != nullptr; }
};

template <class T>
Strided<T> strided(const Tensor& t) {
  return {ops::ptr<T>(t), t.defined() ? t.stride(0) : 0};
}

// Forward coefficients of channel c, in the compute type: y = ((x - hi) - lo) * scale + shift.
template <class A>
struct BnCoef {
  A* hi;
  A* lo;
  A* scale;
  A* shift;
};

// Forward stage 2, a thread per channel: batch statistics (training, rows combined in
// order of n) or the running ones, running-stat update, saved statistics, coefficients.
template <class A, class P>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    bn_channel_kernel(const double* row_mean, const double* row_m2, int64_t N, int64_t C, int64_t S,
                      bool training, double momentum, double eps, Strided<const P> w,
                      Strided<const P> b, Strided<P> running_mean, Strided<P> running_var,
                      A* save_mean, A* save_invstd, BnCoef<A> coef) {
  IRIS_OPS_GRID_STRIDE(c, C) {
    double mean, invstd;
    if (training) {
      double sm = 0;
      for (int64_t n = 0; n < N; ++n) sm += row_mean[n * C + c];
      const double m = sm / static_cast<double>(N);
      double m2 = 0, spread = 0;
      for (int64_t n = 0; n < N; ++n) {
        const double d = row_mean[n * C + c] - m;
        m2 += row_m2[n * C + c];
        spread += d * d;
      }
      m2 += static_cast<double>(S) * spread;
      const double count = static_cast<double>(N * S);
      mean = m;
      invstd = 1.0 / std::sqrt(m2 / count + eps);
      if (running_mean) {
        P& rm = running_mean[c];
        rm = convert_value<P>(momentum * m + (1 - momentum) * convert_value<double>(rm));
      }
      if (running_var) {
        P& rv = running_var[c];
        rv = convert_value<P>(momentum * (m2 / (count - 1)) +
                              (1 - momentum) * convert_value<double>(rv));
      }
    } else {
      mean = convert_value<double>(running_mean[c]);
      invstd = 1.0 / std::sqrt(convert_value<double>(running_var[c]) + eps);
    }
    save_mean[c] = static_cast<A>(mean);
    save_invstd[c] = static_cast<A>(invstd);
    // The mean split as hi + lo in A keeps the double's precision for x near hi.
    const A hi = static_cast<A>(mean);
    coef.hi[c] = hi;
    coef.lo[c] = static_cast<A>(mean - static_cast<double>(hi));
    const double wc = w ? convert_value<double>(w[c]) : 1.0;
    coef.scale[c] = static_cast<A>(invstd * wc);
    coef.shift[c] = b ? convert_value<A>(b[c]) : A(0);
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    bn_normalize_kernel(const T* x, int64_t total, int64_t C, int64_t S,
                        BnCoef<ops::compute_t<T>> coef, T* y) {
  IRIS_OPS_GRID_STRIDE(i, total) {
    const int64_t c = (i / S) % C;
    y[i] = ops::store_compute<T>(
        ((ops::load_compute(x[i]) - coef.hi[c]) - coef.lo[c]) * coef.scale[c] + coef.shift[c]);
  }
}

// Backward stage 1, per row with u = x - mean_hi: sums of dy, dy * u and u, in double.
template <class T, int kRowThreads>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    bn_row_grad_kernel(const T* dy, const T* x, const ops::compute_t<T>* save_mean, int64_t R,
                       int64_t C, int64_t S, double* row_a, double* row_b, double* row_u) {
  using G = RowGrid<kRowThreads>;
  const int t = G::lane();
  for (int64_t r = G::first(); r < R; r += G::step()) {
    const ops::compute_t<T> hi = save_mean[r % C];
    const T* xr = x + r * S;
    const T* dr = dy + r * S;
    double a = 0, b = 0, u = 0;
    for (int64_t i = t; i < S; i += kRowThreads) {
      const double d = static_cast<double>(ops::load_compute(xr[i]) - hi);
      const double g = convert_value<double>(dr[i]);
      a += g;
      b += g * d;
      u += d;
    }
    a = row_sum<kRowThreads>(a);
    b = row_sum<kRowThreads>(b);
    u = row_sum<kRowThreads>(u);
    if (t == 0) row_a[r] = a, row_b[r] = b, row_u[r] = u;
  }
}

// dx coefficients of channel c: training dx = k * ((dy - mean_dy) - ((x - hi) - lo) * coef),
// eval dx = k * dy.
template <class A>
struct BnGradCoef {
  A* k;
  A* hi;
  A* lo;
  A* mean_dy;
  A* coef;
};

// Backward stage 2, a thread per channel: rows combined in order of n; with the
// batch mean hi + U / count in training, sum(dy * xhat) = invstd * (B - lo * A).
template <class A, class P>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    bn_channel_grad_kernel(const double* row_a, const double* row_b, const double* row_u, int64_t N,
                           int64_t C, int64_t S, bool training, const A* save_mean,
                           const A* save_invstd, Strided<const P> w, Strided<P> dweight,
                           Strided<P> dbias, BnGradCoef<A> gc) {
  IRIS_OPS_GRID_STRIDE(c, C) {
    double sum_dy = 0, sum_dyu = 0, sum_u = 0;
    if (row_a) {
      for (int64_t n = 0; n < N; ++n) {
        sum_dy += row_a[n * C + c];
        sum_dyu += row_b[n * C + c];
        sum_u += row_u[n * C + c];
      }
    }
    const double count = static_cast<double>(N * S);
    const double invstd = static_cast<double>(save_invstd[c]);
    const double lo = training ? sum_u / count : 0.0;
    const double sum_dy_xhat = invstd * (sum_dyu - lo * sum_dy);
    if (dweight) dweight[c] = convert_value<P>(sum_dy_xhat);
    if (dbias) dbias[c] = convert_value<P>(sum_dy);
    const double wc = w ? convert_value<double>(w[c]) : 1.0;
    gc.k[c] = static_cast<A>(wc * invstd);
    gc.hi[c] = save_mean[c];
    gc.lo[c] = static_cast<A>(lo);
    gc.mean_dy[c] = static_cast<A>(sum_dy / count);
    gc.coef[c] = static_cast<A>(invstd * sum_dy_xhat / count);
  }
}

template <class T>
__global__ void __launch_bounds__(Tr::kBlockThreads)
    bn_dx_kernel(const T* dy, const T* x, int64_t total, int64_t C, int64_t S, bool training,
                 BnGradCoef<ops::compute_t<T>> gc, T* dx) {
  using A = ops::compute_t<T>;
  IRIS_OPS_GRID_STRIDE(i, total) {
    const int64_t c = (i / S) % C;
    const A k = gc.k[c];
    const A g = ops::load_compute(dy[i]);
    if (!training) {
      dx[i] = ops::store_compute<T>(g * k);
      continue;
    }
    dx[i] = ops::store_compute<T>(
        k * ((g - gc.mean_dy[c]) - ((ops::load_compute(x[i]) - gc.hi[c]) - gc.lo[c]) * gc.coef[c]));
  }
}

dim3 row_grid(int64_t R, int64_t rows_per_block) {
  const int64_t want = (R + rows_per_block - 1) / rows_per_block;
  return dim3(static_cast<unsigned>(std::clamp<int64_t>(want, 1, Tr::kMaxRowBlocks)));
}

// Launches kernel<T, kRowThreads> with the row mapping that fits rows of S elements.
#define IRIS_BN_LAUNCH_ROWS(kernel, T, R, S, ...)                                             \
  do {                                                                                        \
    if ((S) < Tr::kThreadRowMax)                                                              \
      IRIS_LAUNCH((kernel<T, 1>), row_grid(R, Tr::kBlockThreads), dim3(Tr::kBlockThreads), 0, \
                  nullptr, __VA_ARGS__);                                                      \
    else if ((S) <= Tr::kWarpRowMax)                                                          \
      IRIS_LAUNCH((kernel<T, Tr::kWarp>), row_grid(R, Tr::kBlockThreads / Tr::kWarp),         \
                  dim3(Tr::kBlockThreads), 0, nullptr, __VA_ARGS__);                          \
    else                                                                                      \
      IRIS_LAUNCH((kernel<T, Tr::kBlockThreads>), row_grid(R, 1), dim3(Tr::kBlockThreads), 0, \
                  nullptr, __VA_ARGS__);                                                      \
  } while (0)

void check_x(const char* op, const Tensor& x) {
  IRIS_CHECK(x.dim() == 3 && x.is_contiguous(), op, ": cuda expects a dense [N, C, S] input, got ",
             x.desc());
}

// Runs fn.template operator()<T, P>() for input type T and parameter type P: P is T, or
// float for a bf16/f16 input (PyTorch's mixed batch norm). The saved statistics are checked
// to be of the compute type.
template <class Fn>
void dispatch_bn(const char* op, const Tensor& x, DType p_dt, const Tensor& save_mean,
                 const Tensor& save_invstd, Fn&& fn) {
  const DType x_dt = x.dtype();
  ops::dispatch_float_or_half(x_dt, op, [&]<class T>() {
    const DType want = dtype_v<ops::compute_t<T>>;
    IRIS_CHECK(save_mean.dtype() == want && save_invstd.dtype() == want, op,
               ": saved statistics must be ", dtype_name(want), " for a ", dtype_name(x_dt),
               " input, got ", save_mean.desc(), " and ", save_invstd.desc());
    if constexpr (ops::is_half_v<T>) {
      if (p_dt == DType::f32) return fn.template operator()<T, float>();
    }
    IRIS_CHECK(p_dt == x_dt, op, ": parameters of dtype ", dtype_name(p_dt), " for an input of ",
               dtype_name(x_dt), " (expected the input's dtype",
               ops::is_half_v<T> ? " or float32)" : ")");
    fn.template operator()<T, T>();
  });
}

void batch_norm_forward_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const Tensor& running_mean, const Tensor& running_var, bool training,
                             double momentum, double eps, const Tensor& out,
                             const Tensor& save_mean, const Tensor& save_invstd) {
  check_x("batch_norm", x);
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), R = N * C;
  if (C == 0) return;
  const DType p_dt = kernels::batch_norm_param_dtype("batch_norm", x.dtype(),
                                                     {&weight, &bias, &running_mean, &running_var});
  dispatch_bn("batch_norm", x, p_dt, save_mean, save_invstd, [&]<class T, class P>() {
    using A = ops::compute_t<T>;
    Tensor rows;
    double* row_mean = nullptr;
    double* row_m2 = nullptr;
    if (training && R > 0) {
      rows = Tensor::empty({2, R}, DType::f64, x.device());
      row_mean = ops::ptr<double>(rows);
      row_m2 = row_mean + R;
      IRIS_BN_LAUNCH_ROWS(bn_row_stats_kernel, T, R, S, ops::ptr<const T>(x), R, S, row_mean,
                          row_m2);
    }
    const Tensor coef_t = Tensor::empty({4, C}, dtype_v<A>, x.device());
    A* cp = ops::ptr<A>(coef_t);
    const BnCoef<A> coef{cp, cp + C, cp + 2 * C, cp + 3 * C};
    IRIS_LAUNCH((bn_channel_kernel<A, P>), ops::flat_grid(C, Tr::kBlockThreads),
                dim3(Tr::kBlockThreads), 0, nullptr, row_mean, row_m2, N, C, S, training, momentum,
                eps, strided<const P>(weight), strided<const P>(bias), strided<P>(running_mean),
                strided<P>(running_var), ops::ptr<A>(save_mean), ops::ptr<A>(save_invstd), coef);
    const int64_t total = R * S;
    if (total == 0) return;
    IRIS_LAUNCH(bn_normalize_kernel<T>, ops::flat_grid(total, Tr::kBlockThreads),
                dim3(Tr::kBlockThreads), 0, nullptr, ops::ptr<const T>(x), total, C, S, coef,
                ops::ptr<T>(out));
  });
}

void batch_norm_backward_cuda(const Tensor& dy, const Tensor& x, const Tensor& save_mean,
                              const Tensor& save_invstd, const Tensor& weight, bool training,
                              const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  check_x("batch_norm_backward", x);
  IRIS_CHECK(dy.shape() == x.shape() && dy.is_contiguous(),
             "batch_norm_backward: cuda expects a dense dy like x ", x.desc(), ", got ", dy.desc());
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), R = N * C;
  if (C == 0) return;
  const bool need_sums = training || dweight.defined() || dbias.defined();
  if (!need_sums && !dx.defined()) return;
  const DType p_dt = kernels::batch_norm_param_dtype("batch_norm_backward", x.dtype(),
                                                     {&weight, &dweight, &dbias});
  dispatch_bn("batch_norm_backward", x, p_dt, save_mean, save_invstd, [&]<class T, class P>() {
    using A = ops::compute_t<T>;
    Tensor rows;
    double* row_a = nullptr;
    if (need_sums && R > 0) {
      rows = Tensor::empty({3, R}, DType::f64, x.device());
      row_a = ops::ptr<double>(rows);
      IRIS_BN_LAUNCH_ROWS(bn_row_grad_kernel, T, R, S, ops::ptr<const T>(dy), ops::ptr<const T>(x),
                          ops::ptr<const A>(save_mean), R, C, S, row_a, row_a + R, row_a + 2 * R);
    }
    const Tensor coef_t = Tensor::empty({5, C}, dtype_v<A>, x.device());
    A* cp = ops::ptr<A>(coef_t);
    const BnGradCoef<A> gc{cp, cp + C, cp + 2 * C, cp + 3 * C, cp + 4 * C};
    IRIS_LAUNCH((bn_channel_grad_kernel<A, P>), ops::flat_grid(C, Tr::kBlockThreads),
                dim3(Tr::kBlockThreads), 0, nullptr, row_a, row_a ? row_a + R : nullptr,
                row_a ? row_a + 2 * R : nullptr, N, C, S, training, ops::ptr<const A>(save_mean),
                ops::ptr<const A>(save_invstd), strided<const P>(weight), strided<P>(dweight),
                strided<P>(dbias), gc);
    const int64_t total = R * S;
    if (!dx.defined() || total == 0) return;
    IRIS_LAUNCH(bn_dx_kernel<T>, ops::flat_grid(total, Tr::kBlockThreads), dim3(Tr::kBlockThreads),
                0, nullptr, ops::ptr<const T>(dy), ops::ptr<const T>(x), total, C, S, training, gc,
                ops::ptr<T>(dx));
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(batch_norm_forward, CUDA, batch_norm_forward_cuda);
IRIS_REGISTER_KERNEL(batch_norm_backward, CUDA, batch_norm_backward_cuda);

}  // namespace iris::IRIS_KERNEL_NS
