// CPU batch norm over x [N, C, S]. Statistics are two-stage and deterministic:
// each (n, c) row gets its own sums (parallel over rows), then each channel
// combines its N rows in order (Chan's formula for the variance), all in double.
// bf16/f16 inputs normalise in float with float save_mean/save_invstd and round once at the
// store; their weight, bias and running statistics are float32 or the input's dtype.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/norm.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(batch_norm_forward)
IRIS_DEFINE_KERNEL_TABLE(batch_norm_backward)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct BatchNormTraits {
  // A parallel chunk of (n, c) rows covers at least this many elements.
  static constexpr int64_t kGrainElems = 16384;
  // Channels per parallel chunk in the per-channel combine.
  static constexpr int64_t kChannelGrain = 16;
  static_assert(kGrainElems >= 1 && kChannelGrain >= 1);
};
using Tr = BatchNormTraits;

struct Geometry {
  int64_t N, C, S;
  int64_t rows() const { return N * C; }
  int64_t row_grain() const {
    return std::max<int64_t>(1, Tr::kGrainElems / std::max<int64_t>(1, S));
  }
};

// A double mean split as hi + lo in T: (x - hi) - lo keeps the double's precision for x near hi.
template <class T>
struct SplitMean {
  T hi, lo;
  explicit SplitMean(double m) : hi(static_cast<T>(m)), lo(static_cast<T>(m - double(hi))) {}
};

// save_mean/save_invstd hold the compute type: float for bf16/f16 inputs.
template <class T>
void check_stats(const char* op, const Tensor& save_mean, const Tensor& save_invstd) {
  const DType want = dtype_v<compute_t<T>>;
  IRIS_CHECK(save_mean.dtype() == want && save_invstd.dtype() == want, op,
             ": saved statistics must be ", dtype_name(want), " for a ", dtype_name(dtype_v<T>),
             " input, got ", save_mean.desc(), " and ", save_invstd.desc());
}

// Element c of a [C] tensor with any stride.
template <class T>
T& at(const Tensor& t, int64_t c) {
  return t.data<T>()[c * t.stride(0)];
}

// Runs fn.template operator()<T, P>() for input type T and parameter type P: P is T, or
// float for a bf16/f16 input (PyTorch's mixed batch norm).
template <class Fn>
void dispatch_bn(const char* op, DType x_dt, DType p_dt, Fn&& fn) {
  dispatch_float_or_half(x_dt, op, [&]<class T>() {
    if constexpr (is_half_v<T>) {
      if (p_dt == DType::f32) return fn.template operator()<T, float>();
    }
    IRIS_CHECK(p_dt == x_dt, op, ": parameters of dtype ", dtype_name(p_dt), " for an input of ",
               dtype_name(x_dt), " (expected the input's dtype",
               is_half_v<T> ? " or float32)" : ")");
    fn.template operator()<T, T>();
  });
}

template <class T, class P>
void batch_norm_forward_impl(const Geometry& g, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             const Tensor& out, const Tensor& save_mean,
                             const Tensor& save_invstd) {
  using A = compute_t<T>;
  const auto [N, C, S] = g;
  const T* px = x.data<T>();
  std::vector<double> mean(C), invstd(C);
  if (training) {
    // Stage 1: mean and sum of squared deviations of each (n, c) row.
    std::vector<double> row_mean(g.rows()), row_m2(g.rows());
    parallel_for(0, g.rows(), g.row_grain(), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = px + r * S;
        double s = 0;
        for (int64_t i = 0; i < S; ++i) s += convert_value<double>(row[i]);
        const double m = S > 0 ? s / static_cast<double>(S) : 0.0;
        double m2 = 0;
        for (int64_t i = 0; i < S; ++i) {
          const double d = convert_value<double>(row[i]) - m;
          m2 += d * d;
        }
        row_mean[r] = m;
        row_m2[r] = m2;
      }
    });
    // Stage 2: channels combine their rows (equal counts S) in order of n.
    const double count = static_cast<double>(N * S);
    parallel_for(0, C, Tr::kChannelGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
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
        mean[c] = m;
        invstd[c] = 1.0 / std::sqrt(m2 / count + eps);
        if (running_mean.defined()) {
          P& rm = at<P>(running_mean, c);
          rm = convert_value<P>(momentum * m + (1 - momentum) * convert_value<double>(rm));
        }
        if (running_var.defined()) {
          P& rv = at<P>(running_var, c);
          rv = convert_value<P>(momentum * (m2 / (count - 1)) +
                                (1 - momentum) * convert_value<double>(rv));
        }
      }
    });
  } else {
    for (int64_t c = 0; c < C; ++c) {
      mean[c] = convert_value<double>(at<P>(running_mean, c));
      invstd[c] = 1.0 / std::sqrt(convert_value<double>(at<P>(running_var, c)) + eps);
    }
  }
  A* psm = save_mean.data<A>();
  A* psi = save_invstd.data<A>();
  for (int64_t c = 0; c < C; ++c) {
    psm[c] = static_cast<A>(mean[c]);
    psi[c] = static_cast<A>(invstd[c]);
  }
  T* py = out.data<T>();
  parallel_for(0, g.rows(), g.row_grain(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      const SplitMean<A> m(mean[c]);
      const double w = weight.defined() ? convert_value<double>(at<P>(weight, c)) : 1.0;
      const A scale = static_cast<A>(invstd[c] * w);
      const A shift = bias.defined() ? convert_value<A>(at<P>(bias, c)) : A(0);
      const T* row = px + r * S;
      T* yrow = py + r * S;
      for (int64_t i = 0; i < S; ++i)
        yrow[i] = store_compute<T>(((load_compute(row[i]) - m.hi) - m.lo) * scale + shift);
    }
  });
}

void batch_norm_forward_cpu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var, bool training,
                            double momentum, double eps, const Tensor& out, const Tensor& save_mean,
                            const Tensor& save_invstd) {
  const Geometry g{x.size(0), x.size(1), x.size(2)};
  const DType p_dt = kernels::batch_norm_param_dtype("batch_norm", x.dtype(),
                                                     {&weight, &bias, &running_mean, &running_var});
  dispatch_bn("batch_norm", x.dtype(), p_dt, [&]<class T, class P>() {
    check_stats<T>("batch_norm", save_mean, save_invstd);
    batch_norm_forward_impl<T, P>(g, x, weight, bias, running_mean, running_var, training, momentum,
                                  eps, out, save_mean, save_invstd);
  });
}

// Per channel: sum(dy) = A, sum(dy * u) = B and sum(u) = U with u = x - mean_hi.
// In training the batch mean is mean_hi + U / count (the residual the rounded
// saved mean lost); in eval the saved mean is the running mean itself.
template <class T, class P>
void batch_norm_backward_impl(const Geometry& g, const Tensor& dy, const Tensor& x,
                              const Tensor& save_mean, const Tensor& save_invstd,
                              const Tensor& weight, bool training, const Tensor& dx,
                              const Tensor& dweight, const Tensor& dbias) {
  using A = compute_t<T>;
  const auto [N, C, S] = g;
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  const A* pm = save_mean.data<A>();
  const A* pi = save_invstd.data<A>();
  const bool need_sums = training || dweight.defined() || dbias.defined();
  std::vector<double> sumdy(C, 0.0), sumdyu(C, 0.0), sumu(C, 0.0);
  if (need_sums) {
    std::vector<double> rA(g.rows()), rB(g.rows()), rU(g.rows());
    parallel_for(0, g.rows(), g.row_grain(), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const A hi = pm[r % C];
        const T* xr = px + r * S;
        const T* dr = pdy + r * S;
        double a = 0, b = 0, u = 0;
        for (int64_t i = 0; i < S; ++i) {
          const double d = static_cast<double>(load_compute(xr[i]) - hi);
          const double gi = convert_value<double>(dr[i]);
          a += gi;
          b += gi * d;
          u += d;
        }
        rA[r] = a;
        rB[r] = b;
        rU[r] = u;
      }
    });
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        sumdy[c] += rA[n * C + c];
        sumdyu[c] += rB[n * C + c];
        sumu[c] += rU[n * C + c];
      }
  }
  const double count = static_cast<double>(N * S);
  std::vector<double> lo(C), sum_dy_xhat(C);
  for (int64_t c = 0; c < C; ++c) {
    lo[c] = training ? sumu[c] / count : 0.0;
    sum_dy_xhat[c] = static_cast<double>(pi[c]) * (sumdyu[c] - lo[c] * sumdy[c]);
  }
  if (dweight.defined())
    for (int64_t c = 0; c < C; ++c) at<P>(dweight, c) = convert_value<P>(sum_dy_xhat[c]);
  if (dbias.defined())
    for (int64_t c = 0; c < C; ++c) at<P>(dbias, c) = convert_value<P>(sumdy[c]);
  if (!dx.defined()) return;
  T* pdx = dx.data<T>();
  parallel_for(0, g.rows(), g.row_grain(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      const double w = weight.defined() ? convert_value<double>(at<P>(weight, c)) : 1.0;
      const double invstd = static_cast<double>(pi[c]);
      const A k = static_cast<A>(w * invstd);
      const T* xr = px + r * S;
      const T* dr = pdy + r * S;
      T* out = pdx + r * S;
      if (!training) {
        for (int64_t i = 0; i < S; ++i) out[i] = store_compute<T>(load_compute(dr[i]) * k);
        continue;
      }
      // dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = ((x - hi) - lo) * invstd.
      const A hi = pm[c];
      const A lo_t = static_cast<A>(lo[c]);
      const A mean_dy = static_cast<A>(sumdy[c] / count);
      const A coef = static_cast<A>(invstd * sum_dy_xhat[c] / count);
      for (int64_t i = 0; i < S; ++i)
        out[i] = store_compute<T>(
            k * ((load_compute(dr[i]) - mean_dy) - ((load_compute(xr[i]) - hi) - lo_t) * coef));
    }
  });
}

void batch_norm_backward_cpu(const Tensor& dy, const Tensor& x, const Tensor& save_mean,
                             const Tensor& save_invstd, const Tensor& weight, bool training,
                             const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  const Geometry g{x.size(0), x.size(1), x.size(2)};
  const DType p_dt = kernels::batch_norm_param_dtype("batch_norm_backward", x.dtype(),
                                                     {&weight, &dweight, &dbias});
  dispatch_bn("batch_norm_backward", x.dtype(), p_dt, [&]<class T, class P>() {
    check_stats<T>("batch_norm_backward", save_mean, save_invstd);
    batch_norm_backward_impl<T, P>(g, dy, x, save_mean, save_invstd, weight, training, dx, dweight,
                                   dbias);
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(batch_norm_forward, CPU, batch_norm_forward_cpu);
IRIS_REGISTER_KERNEL(batch_norm_backward, CPU, batch_norm_backward_cpu);

}  // namespace iris::cpu
