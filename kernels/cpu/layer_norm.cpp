// CPU layer norm. Forward: one fused pass set per row (shifted sum for the
// mean, sum of squared deviations, normalise), all while the row sits in L1/L2.
// Backward: dx in one pass per row after one reduction pass; dweight/dbias as
// per-row-group partial sums, then a final sum in a fixed order (no atomics).
// add_layer_norm runs the same rows on s = x + residual, formed (and stored) by the row's
// first pass, and adds ds to the row's dx.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"
#include "kernels/norm.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(layer_norm_forward)
IRIS_DEFINE_KERNEL_TABLE(layer_norm_backward)
IRIS_DEFINE_KERNEL_TABLE(add_layer_norm_forward)
IRIS_DEFINE_KERNEL_TABLE(add_layer_norm_backward)

void add_layer_norm_backward_without_dy(const Tensor& ds, const Tensor& dx, const Tensor& dweight,
                                        const Tensor& dbias) {
  if (dx.defined()) {
    if (ds.defined()) {
      copy_table().get(dx.device())(ds, dx);
    } else {
      fill_table().get(dx.device())(dx, 0.0);
    }
  }
  if (dweight.defined()) fill_table().get(dweight.device())(dweight, 0.0);
  if (dbias.defined()) fill_table().get(dbias.device())(dbias, 0.0);
}
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct LayerNormTraits {
  // Bytes per explicit vector (GCC vector extension; an SSE register).
  static constexpr int kVecBytes = 16;
  // Elements summed in the input dtype before the block is folded into a double.
  static constexpr int64_t kBlock = 256;
  // dweight/dbias partial sums: row groups of at least kRowsPerPartial rows, at most
  // kMaxPartials groups (fixed by M, not by the thread count, so results are too).
  static constexpr int64_t kRowsPerPartial = 8;
  static constexpr int64_t kMaxPartials = 64;
  // A parallel chunk covers at least this many elements.
  static constexpr int64_t kGrainElems = 16384;
  static_assert(kVecBytes % 16 == 0 && kBlock % (2 * kVecBytes / 4) == 0,
                "a block is whole pairs of float vectors");
  static_assert(kRowsPerPartial >= 1 && kMaxPartials >= 1 && kGrainElems >= 1);
};
using Tr = LayerNormTraits;

template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  using type [[gnu::vector_size(Tr::kVecBytes)]] = float;
};
template <>
struct VecOf<double> {
  using type [[gnu::vector_size(Tr::kVecBytes)]] = double;
};
template <class T>
using Vec = typename VecOf<T>::type;
template <class T>
constexpr int64_t kLanes = Tr::kVecBytes / sizeof(T);

// Sums of K row quantities. q(at) returns std::array<V, K> for the elements that
// at(p) reads from a row pointer p: a vector of them, or one (the tail). Two
// vector accumulators per quantity within a block; blocks are folded in double.
template <class T, int K, class Q>
std::array<double, K> cascade_sums(int64_t n, Q q) {
  constexpr int64_t L = kLanes<T>;
  std::array<double, K> total{};
  for (int64_t i0 = 0; i0 < n; i0 += Tr::kBlock) {
    const int64_t end = std::min(n, i0 + Tr::kBlock);
    std::array<Vec<T>, K> acc0{}, acc1{};
    std::array<T, K> tail{};
    int64_t i = i0;
    auto vec_at = [&i](int64_t shift) {
      return [j = i + shift](const T* p) {
        Vec<T> v;
        std::memcpy(&v, p + j, sizeof v);
        return v;
      };
    };
    for (; i + 2 * L <= end; i += 2 * L) {
      const std::array<Vec<T>, K> v0 = q(vec_at(0)), v1 = q(vec_at(L));
      for (int k = 0; k < K; ++k) acc0[k] += v0[k], acc1[k] += v1[k];
    }
    for (; i < end; ++i) {
      const std::array<T, K> v = q([j = i](const T* p) { return p[j]; });
      for (int k = 0; k < K; ++k) tail[k] += v[k];
    }
    for (int k = 0; k < K; ++k) {
      const Vec<T> a = acc0[k] + acc1[k];
      T s = tail[k];
      for (int64_t l = 0; l < L; ++l) s += a[l];
      total[k] += static_cast<double>(s);
    }
  }
  return total;
}

// A double mean split as hi + lo in T, so (x - hi) - lo keeps the precision of
// the double for inputs far from zero (x - hi is exact when x is near hi).
template <class T>
struct SplitMean {
  T hi, lo;
  explicit SplitMean(double m) : hi(static_cast<T>(m)), lo(static_cast<T>(m - double(hi))) {}
};

// How s = x + residual is kept: as computed, or (the float path of a bf16/f16 input) rounded
// to the 16-bit dtype, so that the row normalised is the s that is stored and saved.
struct Exact {
  template <class T>
  T operator()(T v) const {
    return v;
  }
};
template <class H>
struct RoundTo {
  float operator()(float v) const { return convert_value<float>(convert_value<H>(v)); }
};

// One row; with res, the row is round(x + res), written to sum first (it stays in L1/L2).
template <class T, class Round>
void forward_row(const T* x, const T* res, const T* w, const T* b, int64_t N, double eps,
                 Round round, T* sum, T* y, T* mean_out, T* rstd_out) {
  if (res) {
    for (int64_t i = 0; i < N; ++i) sum[i] = round(x[i] + res[i]);
    x = sum;
  }
  // Shifted by the first element: the sum then grows with the spread, not the mean.
  const T shift = x[0];
  const double s = cascade_sums<T, 1>(N, [&](auto at) { return std::array{at(x) - shift}; })[0];
  const SplitMean<T> m(static_cast<double>(shift) + s / static_cast<double>(N));
  const double ss = cascade_sums<T, 1>(N, [&](auto at) {
    const auto d = (at(x) - m.hi) - m.lo;
    return std::array{d * d};
  })[0];
  const T r = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(N) + eps));
  if (w && b) {
    for (int64_t i = 0; i < N; ++i) y[i] = ((x[i] - m.hi) - m.lo) * r * w[i] + b[i];
  } else if (w) {
    for (int64_t i = 0; i < N; ++i) y[i] = ((x[i] - m.hi) - m.lo) * r * w[i];
  } else if (b) {
    for (int64_t i = 0; i < N; ++i) y[i] = ((x[i] - m.hi) - m.lo) * r + b[i];
  } else {
    for (int64_t i = 0; i < N; ++i) y[i] = ((x[i] - m.hi) - m.lo) * r;
  }
  *mean_out = m.hi;
  *rstd_out = r;
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

bool is_half(DType dt) { return dt == DType::bf16 || dt == DType::f16; }

// bf16/f16 run the float kernels on float copies: statistics (mean, rstd: float32 tensors)
// and sums in fp32 or better, one rounding at the store of each 16-bit output.
Tensor float_copy(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor f = Tensor::empty(t.shape(), DType::f32, t.device());
  kernels::copy_table().get(t.device())(t, f);
  return f;
}
Tensor float_like(const Tensor& t) {
  return t.defined() ? Tensor::empty(t.shape(), DType::f32, t.device()) : t;
}
void store_to(const Tensor& f, const Tensor& dst) {
  if (dst.defined()) kernels::copy_table().get(dst.device())(f, dst);
}

// layer_norm (res undefined) and add_layer_norm (sum = x + res, then its layer norm).
// sum_dtype: the dtype sum is stored in (a 16-bit one when x is the float copy of it).
void forward_impl(const char* op, const Tensor& x, const Tensor& res, const Tensor& weight,
                  const Tensor& bias, double eps, const Tensor& sum, const Tensor& out,
                  const Tensor& mean, const Tensor& rstd, DType sum_dtype) {
  const int64_t M = x.size(0), N = x.size(1);
  if (M == 0) return;
  if (is_half(x.dtype())) {
    IRIS_CHECK(mean.dtype() == DType::f32 && rstd.dtype() == DType::f32, op,
               ": the statistics of a ", dtype_name(x.dtype()), " input are float32, got mean ",
               mean.desc(), ", rstd ", rstd.desc());
    const Tensor yf = float_like(out), sf = float_like(sum);
    forward_impl(op, float_copy(x), float_copy(res), float_copy(weight), float_copy(bias), eps, sf,
                 yf, mean, rstd, x.dtype());
    store_to(yf, out);
    store_to(sf, sum);
    return;
  }
  dispatch_float(x.dtype(), op, [&]<class T>() {
    const T* px = x.data<T>();
    const T* pres = ptr_or_null<T>(res);
    const T* pw = ptr_or_null<T>(weight);
    const T* pb = ptr_or_null<T>(bias);
    T* ps = ptr_or_null<T>(sum);
    T* py = out.data<T>();
    T* pm = mean.data<T>();
    T* pr = rstd.data<T>();
    if (N == 0) {  // statistics of an empty row, as 0 / 0
      for (int64_t r = 0; r < M; ++r) pm[r] = pr[r] = std::numeric_limits<T>::quiet_NaN();
      return;
    }
    const int64_t grain = std::max<int64_t>(1, Tr::kGrainElems / N);
    auto rows = [&](auto round) {
      parallel_for(0, M, grain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          forward_row<T>(px + r * N, pres ? pres + r * N : nullptr, pw, pb, N, eps, round,
                         ps ? ps + r * N : nullptr, py + r * N, pm + r, pr + r);
      });
    };
    if constexpr (std::is_same_v<T, float>) {
      if (sum_dtype == DType::bf16) return rows(RoundTo<bf16>{});
      if (sum_dtype == DType::f16) return rows(RoundTo<f16>{});
    }
    rows(Exact{});
  });
}

void layer_norm_forward_cpu(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                            const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  forward_impl("layer_norm", x, Tensor(), weight, bias, eps, Tensor(), out, mean, rstd, x.dtype());
}

void add_layer_norm_forward_cpu(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                const Tensor& bias, double eps, const Tensor& sum,
                                const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  forward_impl("add_layer_norm", x, residual, weight, bias, eps, sum, out, mean, rstd, x.dtype());
}

// One row of the backward. With g = dy * w, u = x - mean_hi (exact near the mean)
// and the residual lo = mean(u), xhat = (u - lo) * rstd and
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
//   mean(g * xhat) = rstd * (sum(g u) - lo sum(g)) / N.
// The residual recovers the precision the stored (rounded) mean lost. kAccumulate
// also adds dy * xhat and dy into the row group's dweight / dbias partials; kAddDs adds
// ds (the gradient of add_layer_norm's sum) into dx.
template <class T, bool kAccumulate, bool kAddDs>
void backward_row(const T* __restrict dy, const T* __restrict ds, const T* __restrict x, T mean_hi,
                  T rstd, const T* __restrict w, int64_t N, T* __restrict dx, T* __restrict dw_acc,
                  T* __restrict db_acc) {
  const std::array<double, 3> sums = cascade_sums<T, 3>(N, [&](auto at) {
    const auto g = at(dy) * at(w);
    const auto u = at(x) - mean_hi;
    return std::array{g, g * u, u};
  });
  const double inv_n = 1.0 / static_cast<double>(N);
  const double lo_d = sums[2] * inv_n;
  const T lo = static_cast<T>(lo_d);
  const T mean_g = static_cast<T>(sums[0] * inv_n);
  const T mean_gxhat =
      static_cast<T>(static_cast<double>(rstd) * (sums[1] - lo_d * sums[0]) * inv_n);
  for (int64_t i = 0; i < N; ++i) {
    const T xhat = ((x[i] - mean_hi) - lo) * rstd;
    const T dln = rstd * ((dy[i] * w[i] - mean_g) - xhat * mean_gxhat);
    if constexpr (kAddDs) {
      dx[i] = dln + ds[i];
    } else {
      dx[i] = dln;
    }
    if constexpr (kAccumulate) {
      dw_acc[i] += dy[i] * xhat;
      db_acc[i] += dy[i];
    }
  }
}

// layer_norm's backward (ds undefined) and add_layer_norm's (dx = ds + the layer norm's dx).
void backward_impl(const char* op, const Tensor& dy, const Tensor& ds, const Tensor& x,
                   const Tensor& mean, const Tensor& rstd, const Tensor& weight, const Tensor& dx,
                   const Tensor& dweight, const Tensor& dbias) {
  const int64_t M = x.size(0), N = x.size(1);
  if (is_half(x.dtype())) {
    const Tensor dxf = float_like(dx), dwf = float_like(dweight), dbf = float_like(dbias);
    backward_impl(op, float_copy(dy), float_copy(ds), float_copy(x), mean, rstd, float_copy(weight),
                  dxf, dwf, dbf);
    store_to(dxf, dx);
    store_to(dwf, dweight);
    store_to(dbf, dbias);
    return;
  }
  dispatch_float(x.dtype(), op, [&]<class T>() {
    if (N == 0) return;
    const bool want_affine = dweight.defined() || dbias.defined();
    if (M == 0) {
      if (dweight.defined()) kernels::fill_table().get(dweight.device())(dweight, 0.0);
      if (dbias.defined()) kernels::fill_table().get(dbias.device())(dbias, 0.0);
      return;
    }
    const T* pdy = dy.data<T>();
    const T* px = x.data<T>();
    const T* pm = mean.data<T>();
    const T* pr = rstd.data<T>();
    // No weight is a weight of ones; an unwanted dx goes to a per-chunk scratch row.
    std::vector<T> ones(weight.defined() ? 0 : N, T(1));
    const T* pw = weight.defined() ? weight.data<T>() : ones.data();
    T* pdx = ptr_or_null<T>(dx);
    const T* pds = pdx ? ptr_or_null<T>(ds) : nullptr;
    auto rows = [&](auto accumulate, int64_t r0, int64_t r1, T* dw_acc, T* db_acc) {
      std::vector<T> scratch(pdx ? 0 : N);
      auto run = [&](auto add_ds) {
        for (int64_t r = r0; r < r1; ++r)
          backward_row<T, decltype(accumulate)::value, decltype(add_ds)::value>(
              pdy + r * N, pds ? pds + r * N : nullptr, px + r * N, pm[r], pr[r], pw, N,
              pdx ? pdx + r * N : scratch.data(), dw_acc, db_acc);
      };
      if (pds) {
        run(std::true_type{});
      } else {
        run(std::false_type{});
      }
    };
    if (!want_affine) {
      parallel_for(0, M, std::max<int64_t>(1, Tr::kGrainElems / N), [&](int64_t r0, int64_t r1) {
        rows(std::false_type{}, r0, r1, nullptr, nullptr);
      });
      return;
    }
    // Stage 1: row group p (rows [p*M/P, (p+1)*M/P)) sums into its own partial rows.
    const int64_t P = std::clamp<int64_t>(M / Tr::kRowsPerPartial, 1, Tr::kMaxPartials);
    std::vector<T> dw_part(P * N, T(0)), db_part(P * N, T(0));
    parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        rows(std::true_type{}, p * M / P, (p + 1) * M / P, dw_part.data() + p * N,
             db_part.data() + p * N);
    });
    // Stage 2: each column sums its P partials in order, in double.
    T* pdw = ptr_or_null<T>(dweight);
    T* pdb = ptr_or_null<T>(dbias);
    parallel_for(0, N, std::max<int64_t>(1, Tr::kGrainElems / P), [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        double sw = 0, sb = 0;
        for (int64_t p = 0; p < P; ++p) {
          sw += static_cast<double>(dw_part[p * N + j]);
          sb += static_cast<double>(db_part[p * N + j]);
        }
        if (pdw) pdw[j] = static_cast<T>(sw);
        if (pdb) pdb[j] = static_cast<T>(sb);
      }
    });
  });
}

void layer_norm_backward_cpu(const Tensor& dy, const Tensor& x, const Tensor& mean,
                             const Tensor& rstd, const Tensor& weight, const Tensor& dx,
                             const Tensor& dweight, const Tensor& dbias) {
  backward_impl("layer_norm_backward", dy, Tensor(), x, mean, rstd, weight, dx, dweight, dbias);
}

void add_layer_norm_backward_cpu(const Tensor& dy, const Tensor& ds, const Tensor& sum,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                 const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  if (!dy.defined()) {  // only the sum's gradient: dx = ds, no parameter gradients
    kernels::add_layer_norm_backward_without_dy(ds, dx, dweight, dbias);
    return;
  }
  backward_impl("add_layer_norm_backward", dy, ds, sum, mean, rstd, weight, dx, dweight, dbias);
}

}  // namespace

IRIS_REGISTER_KERNEL(layer_norm_forward, CPU, layer_norm_forward_cpu);
IRIS_REGISTER_KERNEL(layer_norm_backward, CPU, layer_norm_backward_cpu);
IRIS_REGISTER_KERNEL(add_layer_norm_forward, CPU, add_layer_norm_forward_cpu);
IRIS_REGISTER_KERNEL(add_layer_norm_backward, CPU, add_layer_norm_backward_cpu);

}  // namespace iris::cpu
