// CPU batch norm over x [N, C, S]. Statistics are two-stage and deterministic:
// each (n, c) row gets its own sums (parallel over rows), then each channel
// combines its N rows in order (Chan's formula for the variance), all in double.
#include <algorithm>
#include <cmath>
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

// Element c of a [C] tensor with any stride.
template <class T>
T& at(const Tensor& t, int64_t c) {
  return t.data<T>()[c * t.stride(0)];
}

template <class T>
void batch_norm_forward_impl(const Geometry& g, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             const Tensor& out, const Tensor& save_mean,
                             const Tensor& save_invstd) {
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
        for (int64_t i = 0; i < S; ++i) s += static_cast<double>(row[i]);
        const double m = S > 0 ? s / static_cast<double>(S) : 0.0;
        double m2 = 0;
        for (int64_t i = 0; i < S; ++i) {
          const double d = static_cast<double>(row[i]) - m;
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
          T& rm = at<T>(running_mean, c);
          rm = static_cast<T>(momentum * m + (1 - momentum) * static_cast<double>(rm));
        }
        if (running_var.defined()) {
          T& rv = at<T>(running_var, c);
          rv = static_cast<T>(momentum * (m2 / (count - 1)) +
                              (1 - momentum) * static_cast<double>(rv));
        }
      }
    });
  } else {
    for (int64_t c = 0; c < C; ++c) {
      mean[c] = static_cast<double>(at<T>(running_mean, c));
      invstd[c] = 1.0 / std::sqrt(static_cast<double>(at<T>(running_var, c)) + eps);
    }
  }
  T* psm = save_mean.data<T>();
  T* psi = save_invstd.data<T>();
  for (int64_t c = 0; c < C; ++c) {
    psm[c] = static_cast<T>(mean[c]);
    psi[c] = static_cast<T>(invstd[c]);
  }
  T* py = out.data<T>();
  parallel_for(0, g.rows(), g.row_grain(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      const SplitMean<T> m(mean[c]);
      const double w = weight.defined() ? static_cast<double>(at<T>(weight, c)) : 1.0;
      const T scale = static_cast<T>(invstd[c] * w);
      const T shift = bias.defined() ? at<T>(bias, c) : T(0);
      const T* row = px + r * S;
      T* yrow = py + r * S;
      for (int64_t i = 0; i < S; ++i) yrow[i] = ((row[i] - m.hi) - m.lo) * scale + shift;
    }
  });
}

void batch_norm_forward_cpu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& running_mean, const Tensor& running_var, bool training,
                            double momentum, double eps, const Tensor& out, const Tensor& save_mean,
                            const Tensor& save_invstd) {
  const Geometry g{x.size(0), x.size(1), x.size(2)};
  dispatch_float(x.dtype(), "batch_norm", [&]<class T>() {
    batch_norm_forward_impl<T>(g, x, weight, bias, running_mean, running_var, training, momentum,
                               eps, out, save_mean, save_invstd);
  });
}

// Per channel: sum(dy) = A, sum(dy * u) = B and sum(u) = U with u = x - mean_hi.
// In training the batch mean is mean_hi + U / count (the residual the rounded
// saved mean lost); in eval the saved mean is the running mean itself.
template <class T>
void batch_norm_backward_impl(const Geometry& g, const Tensor& dy, const Tensor& x,
                              const Tensor& save_mean, const Tensor& save_invstd,
                              const Tensor& weight, bool training, const Tensor& dx,
                              const Tensor& dweight, const Tensor& dbias) {
  const auto [N, C, S] = g;
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  const T* pm = save_mean.data<T>();
  const T* pi = save_invstd.data<T>();
  const bool need_sums = training || dweight.defined() || dbias.defined();
  std::vector<double> A(C, 0.0), B(C, 0.0), U(C, 0.0);
  if (need_sums) {
    std::vector<double> rA(g.rows()), rB(g.rows()), rU(g.rows());
    parallel_for(0, g.rows(), g.row_grain(), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T hi = pm[r % C];
        const T* xr = px + r * S;
        const T* dr = pdy + r * S;
        double a = 0, b = 0, u = 0;
        for (int64_t i = 0; i < S; ++i) {
          const double d = static_cast<double>(xr[i] - hi);
          a += static_cast<double>(dr[i]);
          b += static_cast<double>(dr[i]) * d;
          u += d;
        }
        rA[r] = a;
        rB[r] = b;
        rU[r] = u;
      }
    });
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        A[c] += rA[n * C + c];
        B[c] += rB[n * C + c];
        U[c] += rU[n * C + c];
      }
  }
  const double count = static_cast<double>(N * S);
  std::vector<double> lo(C), sum_dy_xhat(C);
  for (int64_t c = 0; c < C; ++c) {
    lo[c] = training ? U[c] / count : 0.0;
    sum_dy_xhat[c] = static_cast<double>(pi[c]) * (B[c] - lo[c] * A[c]);
  }
  if (dweight.defined())
    for (int64_t c = 0; c < C; ++c) at<T>(dweight, c) = static_cast<T>(sum_dy_xhat[c]);
  if (dbias.defined())
    for (int64_t c = 0; c < C; ++c) at<T>(dbias, c) = static_cast<T>(A[c]);
  if (!dx.defined()) return;
  T* pdx = dx.data<T>();
  parallel_for(0, g.rows(), g.row_grain(), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      const double w = weight.defined() ? static_cast<double>(at<T>(weight, c)) : 1.0;
      const double invstd = static_cast<double>(pi[c]);
      const T k = static_cast<T>(w * invstd);
      const T* xr = px + r * S;
      const T* dr = pdy + r * S;
      T* out = pdx + r * S;
      if (!training) {
        for (int64_t i = 0; i < S; ++i) out[i] = dr[i] * k;
        continue;
      }
      // dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = ((x - hi) - lo) * invstd.
      const T hi = pm[c];
      const T lo_t = static_cast<T>(lo[c]);
      const T mean_dy = static_cast<T>(A[c] / count);
      const T coef = static_cast<T>(invstd * sum_dy_xhat[c] / count);
      for (int64_t i = 0; i < S; ++i)
        out[i] = k * ((dr[i] - mean_dy) - ((xr[i] - hi) - lo_t) * coef);
    }
  });
}

void batch_norm_backward_cpu(const Tensor& dy, const Tensor& x, const Tensor& save_mean,
                             const Tensor& save_invstd, const Tensor& weight, bool training,
                             const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  const Geometry g{x.size(0), x.size(1), x.size(2)};
  dispatch_float(x.dtype(), "batch_norm_backward", [&]<class T>() {
    batch_norm_backward_impl<T>(g, dy, x, save_mean, save_invstd, weight, training, dx, dweight,
                                dbias);
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(batch_norm_forward, CPU, batch_norm_forward_cpu);
IRIS_REGISTER_KERNEL(batch_norm_backward, CPU, batch_norm_backward_cpu);

}  // namespace iris::cpu
