// CPU softmax / log-softmax along any dim of a dense tensor viewed as
// [outer, D, inner]. inner == 1: each row is max, exp-and-sum, scale, with the
// row in L1. inner > 1: a strip of kColumnWidth inner positions is processed
// together so every loop runs over contiguous memory. The row primitives at the
// end are shared with the cross-entropy kernels (kernels/softmax.h).
//
// The float code is written once over explicit vectors of B bytes and compiled
// twice: B = 16 (SSE2, the baseline) and B = 32 inside target("avx2") entry
// points chosen at run time. Without FMA the element math is the same on both,
// and sums use one fixed accumulation order, so both give the same bits.
#include "kernels/softmax.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(softmax_forward)
IRIS_DEFINE_KERNEL_TABLE(softmax_backward)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct SoftmaxTraits {
  static constexpr int kBaseBytes = 16;  // SSE2 vectors
  static constexpr int kAvx2Bytes = 32;  // AVX2 vectors
  // A row sum accumulates into kAccBytes of lanes (kAccBytes / B vectors), folded in a
  // fixed tree order: the same result for either vector width.
  static constexpr int kAccBytes = 64;
  // Elements per exp-then-sum block (stays in L1; its sum is folded into a double).
  static constexpr int64_t kBlock = 512;
  // Inner positions handled together when the softmax dim is not the last one.
  static constexpr int64_t kColumnWidth = 64;
  // A parallel chunk covers at least this many elements.
  static constexpr int64_t kGrainElems = 16384;
  static_assert(kAccBytes % kAvx2Bytes == 0 && kAvx2Bytes % kBaseBytes == 0);
  static_assert(kBlock % (kAccBytes / 4) == 0, "a block is whole accumulator steps");
  static_assert(kColumnWidth > 0 && kGrainElems > 0);
};
using Tr = SoftmaxTraits;

// The vectors below never cross a non-inlined call, so GCC's note that their
// by-value ABI differs with and without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
template <class T, int B>
struct VecOf {
  typedef T type __attribute__((vector_size(B)));
};
template <class T, int B>
using Vec = typename VecOf<T, B>::type;
template <class T, int B>
constexpr int64_t kLanes = B / static_cast<int>(sizeof(T));

bool use_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

template <int B, class T>
[[gnu::always_inline]] inline Vec<T, B> load(const T* p) {
  Vec<T, B> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <int B, class T>
[[gnu::always_inline]] inline void store(T* p, const Vec<T, B>& v) {
  std::memcpy(p, &v, sizeof v);
}

// exp of float lanes: n = round(x log2(e)), r = x - n ln2 in two parts
// (Cody-Waite), Cephes' degree-6 polynomial for exp(r) (about 1 ulp), then 2^n
// applied in two halves so denormal results and 2^128 are reached without an
// out-of-range exponent. exp(-inf) = 0 exactly; NaN stays NaN.
template <int B>
[[gnu::always_inline]] inline Vec<float, B> exp_vec(const Vec<float, B>& x_in) {
  using VF = Vec<float, B>;
  using VI = Vec<int32_t, B>;
  using VU = Vec<uint32_t, B>;
  const VF lo = VF{} - 110.0f, hi = VF{} + 89.0f;  // beyond these the result is 0 or inf
  const VF round = VF{} + 12582912.0f;             // 1.5 * 2^23: adding it rounds to an integer
  VF x = lo > x_in ? lo : x_in;
  x = x > hi ? hi : x;
  const VF t = x * 1.44269504088896341f + round;
  const VF fn = t - round;
  const VI n = std::bit_cast<VI>(std::bit_cast<VU>(t) - std::bit_cast<VU>(round));
  VF r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  VF p = VF{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const VF y = p * r * r + r + 1.0f;
  const VI n1 = n >> 1, n2 = n - n1;
  const VF s1 = std::bit_cast<VF>(std::bit_cast<VU>(n1 + 127) << 23);
  const VF s2 = std::bit_cast<VF>(std::bit_cast<VU>(n2 + 127) << 23);
  return y * s1 * s2;
}

// p[i] = exp(p[i]): the polynomial for float (the tail through a padded vector), std::exp for
// double.
template <int B, class T>
[[gnu::always_inline]] inline void exp_inplace(T* p, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    constexpr int64_t L = kLanes<float, B>;
    int64_t i = 0;
    for (; i + L <= n; i += L) store<B>(p + i, exp_vec<B>(load<B>(p + i)));
    if (i < n) {
      float buf[L] = {};
      std::copy(p + i, p + n, buf);
      store<B>(buf, exp_vec<B>(load<B, float>(buf)));
      std::copy(buf, buf + (n - i), p + i);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = std::exp(p[i]);
  }
}

// One block's sum: the kAccBytes of vector lanes folded as a fixed tree
// (independent of B), then the block's scalar tail in order.
template <int B, class T, int64_t kVecs>
[[gnu::always_inline]] inline double fold_block(const Vec<T, B> (&acc)[kVecs], const T* tail,
                                                int64_t tail_len) {
  constexpr int64_t kStep = kLanes<T, B> * kVecs;
  T lanes[kStep];
  std::memcpy(lanes, acc, sizeof lanes);
  for (int64_t width = kStep / 2; width >= 1; width /= 2)
    for (int64_t l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  T s = 0;
  for (int64_t i = 0; i < tail_len; ++i) s += tail[i];
  return static_cast<double>(lanes[0] + s);
}

// sum(a[i] * b[i]) (kDot) or sum(a[i]): per block of kBlock, vector accumulators
// folded by fold_block; blocks added in double.
template <int B, bool kDot, class T>
[[gnu::always_inline]] inline double block_sum(const T* a, const T* b, int64_t n) {
  constexpr int64_t L = kLanes<T, B>, kVecs = Tr::kAccBytes / B, kStep = L * kVecs;
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += Tr::kBlock) {
    const int64_t end = std::min(n, i0 + Tr::kBlock);
    Vec<T, B> acc[kVecs] = {};
    int64_t i = i0;
    for (; i + kStep <= end; i += kStep)
      for (int64_t v = 0; v < kVecs; ++v) {
        if constexpr (kDot)
          acc[v] += load<B>(a + i + v * L) * load<B>(b + i + v * L);
        else
          acc[v] += load<B>(a + i + v * L);
      }
    if constexpr (kDot) {
      T products[kStep];
      for (int64_t k = 0; k < end - i; ++k) products[k] = a[i + k] * b[i + k];
      total += fold_block<B>(acc, products, end - i);
    } else {
      total += fold_block<B>(acc, a + i, end - i);
    }
  }
  return total;
}

template <int B, class T>
[[gnu::always_inline]] inline T row_max_impl(const T* x, int64_t n) {
  constexpr int64_t L = kLanes<T, B>;
  int64_t i = 0;
  T m = x[0];
  if (n >= L) {
    Vec<T, B> acc = load<B>(x);
    for (i = L; i + L <= n; i += L) {
      const Vec<T, B> v = load<B>(x + i);
      acc = v > acc ? v : acc;
    }
    for (int64_t l = 0; l < L; ++l) m = acc[l] > m ? acc[l] : m;
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

template <int B, class T>
[[gnu::always_inline]] inline void row_exp_impl(const T* x, T shift, int64_t n, T* e) {
  for (int64_t i = 0; i < n; ++i) e[i] = x[i] - shift;
  exp_inplace<B>(e, n);
}

// e = exp(x - shift) and its sum; for float in one pass (exp, store, accumulate),
// with the same values and summation order as row_exp_impl followed by block_sum.
template <int B, class T>
[[gnu::always_inline]] inline double row_exp_sum_impl(const T* x, T shift, int64_t n, T* e) {
  constexpr int64_t L = kLanes<T, B>, kVecs = Tr::kAccBytes / B, kStep = L * kVecs;
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += Tr::kBlock) {
    const int64_t end = std::min(n, i0 + Tr::kBlock);
    if constexpr (std::is_same_v<T, float>) {
      Vec<T, B> acc[kVecs] = {};
      int64_t i = i0;
      for (; i + kStep <= end; i += kStep)
        for (int64_t v = 0; v < kVecs; ++v) {
          const Vec<T, B> ev = exp_vec<B>(load<B>(x + i + v * L) - shift);
          store<B>(e + i + v * L, ev);
          acc[v] += ev;
        }
      row_exp_impl<B>(x + i, shift, end - i, e + i);
      total += fold_block<B>(acc, e + i, end - i);
    } else {
      row_exp_impl<B>(x + i0, shift, end - i0, e + i0);
      total += block_sum<B, false, T>(e + i0, nullptr, end - i0);
    }
  }
  return total;
}

template <int B, class T>
[[gnu::always_inline]] inline void forward_row(const T* x, int64_t D, bool log, T* y) {
  const T mx = row_max_impl<B>(x, D);
  const double sum = row_exp_sum_impl<B>(x, mx, D, y);
  if (!log) {
    const T inv = static_cast<T>(1.0 / sum);
    for (int64_t i = 0; i < D; ++i) y[i] *= inv;
  } else {
    const T log_sum = static_cast<T>(std::log(sum));
    for (int64_t i = 0; i < D; ++i) y[i] = (x[i] - mx) - log_sum;
  }
}

// A strip of W inner positions of one outer index: element (d, j) at x[d * inner + j], j < W.
template <int B, class T>
[[gnu::always_inline]] inline void forward_strip(const T* x, int64_t D, int64_t inner, int64_t W,
                                                 bool log, T* y) {
  T mx[Tr::kColumnWidth], sum[Tr::kColumnWidth];
  for (int64_t j = 0; j < W; ++j) mx[j] = x[j], sum[j] = 0;
  for (int64_t d = 1; d < D; ++d) {
    const T* xr = x + d * inner;
    for (int64_t j = 0; j < W; ++j) mx[j] = xr[j] > mx[j] ? xr[j] : mx[j];
  }
  for (int64_t d = 0; d < D; ++d) {
    const T* xr = x + d * inner;
    T* yr = y + d * inner;
    for (int64_t j = 0; j < W; ++j) yr[j] = xr[j] - mx[j];
    exp_inplace<B>(yr, W);
    for (int64_t j = 0; j < W; ++j) sum[j] += yr[j];
  }
  if (!log) {
    for (int64_t j = 0; j < W; ++j) sum[j] = T(1) / sum[j];
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < W; ++j) y[d * inner + j] *= sum[j];
  } else {
    for (int64_t j = 0; j < W; ++j) sum[j] = std::log(sum[j]);
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < W; ++j) y[d * inner + j] = (x[d * inner + j] - mx[j]) - sum[j];
  }
}

template <int B, class T>
[[gnu::always_inline]] inline void backward_row(const T* dy, const T* y, int64_t D, bool log,
                                                T* dx) {
  if (!log) {
    const T s = static_cast<T>(block_sum<B, true, T>(dy, y, D));
    for (int64_t i = 0; i < D; ++i) dx[i] = y[i] * (dy[i] - s);
  } else {
    const T s = static_cast<T>(block_sum<B, false, T>(dy, nullptr, D));
    std::copy(y, y + D, dx);
    exp_inplace<B>(dx, D);
    for (int64_t i = 0; i < D; ++i) dx[i] = dy[i] - dx[i] * s;
  }
}

template <int B, class T>
[[gnu::always_inline]] inline void backward_strip(const T* dy, const T* y, int64_t D, int64_t inner,
                                                  int64_t W, bool log, T* dx) {
  T s[Tr::kColumnWidth] = {};
  for (int64_t d = 0; d < D; ++d) {
    const T* dyr = dy + d * inner;
    const T* yr = y + d * inner;
    if (log) {
      for (int64_t j = 0; j < W; ++j) s[j] += dyr[j];
    } else {
      for (int64_t j = 0; j < W; ++j) s[j] += dyr[j] * yr[j];
    }
  }
  for (int64_t d = 0; d < D; ++d) {
    const T* dyr = dy + d * inner;
    const T* yr = y + d * inner;
    T* dxr = dx + d * inner;
    if (log) {
      std::copy(yr, yr + W, dxr);
      exp_inplace<B>(dxr, W);
      for (int64_t j = 0; j < W; ++j) dxr[j] = dyr[j] - dxr[j] * s[j];
    } else {
      for (int64_t j = 0; j < W; ++j) dxr[j] = yr[j] * (dyr[j] - s[j]);
    }
  }
}

// [outer, D, inner] split into work units: rows when inner == 1, else strips of inner positions.
struct Geometry {
  int64_t outer = 1, D = 1, inner = 1;
  Geometry(const Shape& s, int64_t dim) {
    for (int64_t d = 0; d < dim; ++d) outer *= s[d];
    D = s.empty() ? 1 : s[dim];
    for (int64_t d = dim + 1; d < static_cast<int64_t>(s.size()); ++d) inner *= s[d];
  }
  int64_t strips_per_outer() const { return (inner + Tr::kColumnWidth - 1) / Tr::kColumnWidth; }
  int64_t units() const { return inner == 1 ? outer : outer * strips_per_outer(); }
  int64_t unit_elems() const { return D * std::min(inner, Tr::kColumnWidth); }
  // First element of unit u and its width (1 for a row).
  int64_t base(int64_t u) const {
    if (inner == 1) return u * D;
    const int64_t o = u / strips_per_outer(), j0 = (u % strips_per_outer()) * Tr::kColumnWidth;
    return o * D * inner + j0;
  }
  int64_t width(int64_t u) const {
    return inner == 1
               ? 1
               : std::min(Tr::kColumnWidth, inner - (u % strips_per_outer()) * Tr::kColumnWidth);
  }
};

template <int B, class T>
[[gnu::always_inline]] inline void forward_units(const Geometry& g, const T* x, T* y, bool log,
                                                 int64_t u0, int64_t u1) {
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t k = g.base(u);
    if (g.inner == 1)
      forward_row<B>(x + k, g.D, log, y + k);
    else
      forward_strip<B>(x + k, g.D, g.inner, g.width(u), log, y + k);
  }
}

template <int B, class T>
[[gnu::always_inline]] inline void backward_units(const Geometry& g, const T* dy, const T* y,
                                                  bool log, T* dx, int64_t u0, int64_t u1) {
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t k = g.base(u);
    if (g.inner == 1)
      backward_row<B>(dy + k, y + k, g.D, log, dx + k);
    else
      backward_strip<B>(dy + k, y + k, g.D, g.inner, g.width(u), log, dx + k);
  }
}

// ---- AVX2 entry points (float): the same code with 32-byte vectors ----

[[gnu::target("avx2")]] void forward_units_avx2(const Geometry& g, const float* x, float* y,
                                                bool log, int64_t u0, int64_t u1) {
  forward_units<Tr::kAvx2Bytes>(g, x, y, log, u0, u1);
}
[[gnu::target("avx2")]] void backward_units_avx2(const Geometry& g, const float* dy, const float* y,
                                                 bool log, float* dx, int64_t u0, int64_t u1) {
  backward_units<Tr::kAvx2Bytes>(g, dy, y, log, dx, u0, u1);
}
[[gnu::target("avx2")]] float row_max_avx2(const float* x, int64_t n) {
  return row_max_impl<Tr::kAvx2Bytes>(x, n);
}
[[gnu::target("avx2")]] void row_exp_avx2(const float* x, float shift, int64_t n, float* e) {
  row_exp_impl<Tr::kAvx2Bytes>(x, shift, n, e);
}
[[gnu::target("avx2")]] double row_exp_sum_avx2(const float* x, float shift, int64_t n, float* e) {
  return row_exp_sum_impl<Tr::kAvx2Bytes>(x, shift, n, e);
}
[[gnu::target("avx2")]] double row_sum_avx2(const float* x, int64_t n) {
  return block_sum<Tr::kAvx2Bytes, false, float>(x, nullptr, n);
}

template <class T>
constexpr bool kIsFloat = std::is_same_v<T, float>;

bool is_half(DType dt) { return dt == DType::bf16 || dt == DType::f16; }

// bf16/f16 run the float kernels on float copies (fp32 max, sum and lse), rounding once at
// the store: the vectorised float code serves all three.
Tensor float_copy(const Tensor& t) {
  Tensor f = Tensor::empty(t.shape(), DType::f32, t.device());
  kernels::copy_table().get(t.device())(t, f);
  return f;
}

void softmax_forward_cpu(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  if (is_half(x.dtype())) {
    const Tensor yf = Tensor::empty(x.shape(), DType::f32, x.device());
    softmax_forward_cpu(float_copy(x), dim, log, yf);
    kernels::copy_table().get(out.device())(yf, out);
    return;
  }
  const Geometry g(x.shape(), dim);
  if (g.units() == 0 || g.D == 0) return;
  dispatch_float(x.dtype(), log ? "log_softmax" : "softmax", [&]<class T>() {
    const T* px = x.data<T>();
    T* py = out.data<T>();
    parallel_for(0, g.units(), std::max<int64_t>(1, Tr::kGrainElems / g.unit_elems()),
                 [&](int64_t u0, int64_t u1) {
                   if constexpr (kIsFloat<T>) {
                     if (use_avx2()) return forward_units_avx2(g, px, py, log, u0, u1);
                   }
                   forward_units<Tr::kBaseBytes>(g, px, py, log, u0, u1);
                 });
  });
}

void softmax_backward_cpu(const Tensor& dy, const Tensor& y, int64_t dim, bool log,
                          const Tensor& dx) {
  if (is_half(y.dtype())) {
    const Tensor dxf = Tensor::empty(y.shape(), DType::f32, y.device());
    softmax_backward_cpu(float_copy(dy), float_copy(y), dim, log, dxf);
    kernels::copy_table().get(dx.device())(dxf, dx);
    return;
  }
  const Geometry g(y.shape(), dim);
  if (g.units() == 0 || g.D == 0) return;
  dispatch_float(y.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&]<class T>() {
    const T* pdy = dy.data<T>();
    const T* py = y.data<T>();
    T* pdx = dx.data<T>();
    parallel_for(0, g.units(), std::max<int64_t>(1, Tr::kGrainElems / g.unit_elems()),
                 [&](int64_t u0, int64_t u1) {
                   if constexpr (kIsFloat<T>) {
                     if (use_avx2()) return backward_units_avx2(g, pdy, py, log, pdx, u0, u1);
                   }
                   backward_units<Tr::kBaseBytes>(g, pdy, py, log, pdx, u0, u1);
                 });
  });
}

}  // namespace

template <class T>
T row_max(const T* x, int64_t n) {
  if constexpr (kIsFloat<T>) {
    if (use_avx2()) return row_max_avx2(x, n);
  }
  return row_max_impl<Tr::kBaseBytes>(x, n);
}

template <class T>
void row_exp(const T* x, T shift, int64_t n, T* e) {
  if constexpr (kIsFloat<T>) {
    if (use_avx2()) return row_exp_avx2(x, shift, n, e);
  }
  row_exp_impl<Tr::kBaseBytes>(x, shift, n, e);
}

template <class T>
double row_exp_sum(const T* x, T shift, int64_t n, T* e) {
  if constexpr (kIsFloat<T>) {
    if (use_avx2()) return row_exp_sum_avx2(x, shift, n, e);
  }
  return row_exp_sum_impl<Tr::kBaseBytes>(x, shift, n, e);
}

template <class T>
double row_sum(const T* x, int64_t n) {
  if constexpr (kIsFloat<T>) {
    if (use_avx2()) return row_sum_avx2(x, n);
  }
  return block_sum<Tr::kBaseBytes, false, T>(x, nullptr, n);
}

template float row_max<float>(const float*, int64_t);
template double row_max<double>(const double*, int64_t);
template double row_sum<float>(const float*, int64_t);
template double row_sum<double>(const double*, int64_t);
template void row_exp<float>(const float*, float, int64_t, float*);
template void row_exp<double>(const double*, double, int64_t, double*);
template double row_exp_sum<float>(const float*, float, int64_t, float*);
template double row_exp_sum<double>(const double*, double, int64_t, double*);

IRIS_REGISTER_KERNEL(softmax_forward, CPU, softmax_forward_cpu);
IRIS_REGISTER_KERNEL(softmax_backward, CPU, softmax_backward_cpu);

}  // namespace iris::cpu
