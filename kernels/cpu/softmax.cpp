// CPU softmax / log-softmax along any dim of a dense tensor viewed as
// [outer, D, inner]. inner == 1: each row is max, exp-and-sum, scale, with the
// row in L1. inner > 1: a strip of kColumnWidth inner positions is processed
// together so every loop runs over contiguous memory. The row primitives at the
// end are shared with the cross-entropy kernels (kernels/softmax.h).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/loops.h"
#include "kernels/softmax.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(softmax_forward)
IRIS_DEFINE_KERNEL_TABLE(softmax_backward)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct SoftmaxTraits {
  // Bytes per explicit vector (GCC vector extension): one AVX register, two SSE ones.
  static constexpr int kVecBytes = 16;
  // Elements per exp-then-sum block (stays in L1; its sum is folded into a double).
  static constexpr int64_t kBlock = 512;
  // Inner positions handled together when the softmax dim is not the last one.
  static constexpr int64_t kColumnWidth = 64;
  // A parallel chunk covers at least this many elements.
  static constexpr int64_t kGrainElems = 16384;
  static_assert(kVecBytes % 16 == 0 && kBlock % (kVecBytes / 4) == 0);
  static_assert(kColumnWidth > 0 && kGrainElems > 0);
};
using Tr = SoftmaxTraits;

// The explicit vectors live only inside this file's inlined helpers, so the
// note that their by-value ABI differs with and without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
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
template <>
struct VecOf<int32_t> {
  using type [[gnu::vector_size(Tr::kVecBytes)]] = int32_t;
};
template <>
struct VecOf<uint32_t> {
  using type [[gnu::vector_size(Tr::kVecBytes)]] = uint32_t;
};
template <class T>
using Vec = typename VecOf<T>::type;
template <class T>
constexpr int64_t kLanes = Tr::kVecBytes / sizeof(T);
using VecF = Vec<float>;
using VecU = Vec<uint32_t>;
using VecI = Vec<int32_t>;

template <class T>
Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void store(T* p, Vec<T> v) {
  std::memcpy(p, &v, sizeof v);
}
template <class T>
Vec<T> splat(T s) {
  return Vec<T>{} + s;
}
template <class T>
T lane_total(Vec<T> v) {
  T s = 0;
  for (int64_t l = 0; l < kLanes<T>; ++l) s += v[l];
  return s;
}

// exp for float vectors: n = round(x log2(e)), r = x - n ln2 in two parts
// (Cody-Waite), Cephes' degree-6 polynomial for exp(r) (about 1 ulp), then 2^n
// applied in two halves so denormal results and 2^128 are reached without an
// out-of-range exponent. exp(-inf) = 0 exactly; NaN stays NaN.
VecF exp_vec(VecF x) {
  const VecF lo = splat(-110.0f), hi = splat(89.0f);  // beyond these the result is 0 or inf
  const VecF round = splat(12582912.0f);              // 1.5 * 2^23: adding it rounds to an integer
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const VecF t = x * 1.44269504088896341f + round;
  const VecF fn = t - round;
  const VecI n = std::bit_cast<VecI>(std::bit_cast<VecU>(t) - std::bit_cast<VecU>(round));
  VecF r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  VecF p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const VecF y = p * r * r + r + 1.0f;
  const VecI n1 = n >> 1, n2 = n - n1;
  const VecF s1 = std::bit_cast<VecF>(std::bit_cast<VecU>(n1 + 127) << 23);
  const VecF s2 = std::bit_cast<VecF>(std::bit_cast<VecU>(n2 + 127) << 23);
  return y * s1 * s2;
}

// p[i] = exp(p[i]): the polynomial for float (the tail through a padded vector), std::exp for double.
template <class T>
void exp_inplace(T* p, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    int64_t i = 0;
    for (; i + kLanes<float> <= n; i += kLanes<float>) store(p + i, exp_vec(load(p + i)));
    if (i < n) {
      float buf[kLanes<float>] = {};
      std::copy(p + i, p + n, buf);
      store(buf, exp_vec(load<float>(buf)));
      std::copy(buf, buf + (n - i), p + i);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = std::exp(p[i]);
  }
}

// sum(a[i] * b[i]) (kDot) or sum(a[i]): vector accumulators per block, blocks folded in double.
template <bool kDot, class T>
double block_sum(const T* a, const T* b, int64_t n) {
  constexpr int64_t L = kLanes<T>;
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += Tr::kBlock) {
    const int64_t end = std::min(n, i0 + Tr::kBlock);
    Vec<T> acc0{}, acc1{};
    int64_t i = i0;
    for (; i + 2 * L <= end; i += 2 * L) {
      if constexpr (kDot) {
        acc0 += load(a + i) * load(b + i);
        acc1 += load(a + i + L) * load(b + i + L);
      } else {
        acc0 += load(a + i);
        acc1 += load(a + i + L);
      }
    }
    T tail = 0;
    for (; i < end; ++i) tail += kDot ? a[i] * b[i] : a[i];
    total += static_cast<double>(lane_total<T>(acc0 + acc1) + tail);
  }
  return total;
}

template <class T>
void forward_row(const T* x, int64_t D, bool log, T* y) {
  const T mx = row_max<T>(x, D);
  const double sum = row_exp_sum<T>(x, mx, D, y);
  if (!log) {
    const T inv = static_cast<T>(1.0 / sum);
    for (int64_t i = 0; i < D; ++i) y[i] *= inv;
  } else {
    const T log_sum = static_cast<T>(std::log(sum));
    for (int64_t i = 0; i < D; ++i) y[i] = (x[i] - mx) - log_sum;
  }
}

// A strip of W inner positions of one outer index: element (d, j) at x[d * inner + j], j < W.
template <class T>
void forward_strip(const T* x, int64_t D, int64_t inner, int64_t W, bool log, T* y) {
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
    exp_inplace(yr, W);
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

template <class T>
void backward_row(const T* dy, const T* y, int64_t D, bool log, T* dx) {
  if (!log) {
    const T s = static_cast<T>(block_sum<true, T>(dy, y, D));
    for (int64_t i = 0; i < D; ++i) dx[i] = y[i] * (dy[i] - s);
  } else {
    const T s = static_cast<T>(block_sum<false, T>(dy, nullptr, D));
    std::copy(y, y + D, dx);
    exp_inplace(dx, D);
    for (int64_t i = 0; i < D; ++i) dx[i] = dy[i] - dx[i] * s;
  }
}

template <class T>
void backward_strip(const T* dy, const T* y, int64_t D, int64_t inner, int64_t W, bool log,
                    T* dx) {
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
      exp_inplace(dxr, W);
      for (int64_t j = 0; j < W; ++j) dxr[j] = dyr[j] - dxr[j] * s[j];
    } else {
      for (int64_t j = 0; j < W; ++j) dxr[j] = yr[j] * (dyr[j] - s[j]);
    }
  }
}

struct Geometry {
  int64_t outer = 1, D = 1, inner = 1;
  Geometry(const Shape& s, int64_t dim) {
    for (int64_t d = 0; d < dim; ++d) outer *= s[d];
    D = s.empty() ? 1 : s[dim];
    for (int64_t d = dim + 1; d < static_cast<int64_t>(s.size()); ++d) inner *= s[d];
  }
  int64_t strips() const { return (inner + Tr::kColumnWidth - 1) / Tr::kColumnWidth; }
};

// Calls row(offset) for each outer index (inner == 1) or strip(offset, W) for each strip.
template <class Row, class Strip>
void for_each_slice(const Geometry& g, Row row, Strip strip) {
  if (g.outer == 0 || g.D == 0 || g.inner == 0) return;
  if (g.inner == 1) {
    parallel_for(0, g.outer, std::max<int64_t>(1, Tr::kGrainElems / g.D),
                 [&](int64_t b, int64_t e) {
                   for (int64_t o = b; o < e; ++o) row(o * g.D);
                 });
    return;
  }
  const int64_t per_outer = g.strips();
  const int64_t strip_elems = g.D * std::min(g.inner, Tr::kColumnWidth);
  parallel_for(0, g.outer * per_outer, std::max<int64_t>(1, Tr::kGrainElems / strip_elems),
               [&](int64_t b, int64_t e) {
                 for (int64_t u = b; u < e; ++u) {
                   const int64_t o = u / per_outer, j0 = (u % per_outer) * Tr::kColumnWidth;
                   strip(o * g.D * g.inner + j0, std::min(Tr::kColumnWidth, g.inner - j0));
                 }
               });
}

void softmax_forward_cpu(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  const Geometry g(x.shape(), dim);
  dispatch_float(x.dtype(), log ? "log_softmax" : "softmax", [&]<class T>() {
    const T* px = x.data<T>();
    T* py = out.data<T>();
    for_each_slice(
        g, [&](int64_t base) { forward_row<T>(px + base, g.D, log, py + base); },
        [&](int64_t base, int64_t W) {
          forward_strip<T>(px + base, g.D, g.inner, W, log, py + base);
        });
  });
}

void softmax_backward_cpu(const Tensor& dy, const Tensor& y, int64_t dim, bool log,
                          const Tensor& dx) {
  const Geometry g(y.shape(), dim);
  dispatch_float(y.dtype(), log ? "log_softmax_backward" : "softmax_backward", [&]<class T>() {
    const T* pdy = dy.data<T>();
    const T* py = y.data<T>();
    T* pdx = dx.data<T>();
    for_each_slice(
        g, [&](int64_t base) { backward_row<T>(pdy + base, py + base, g.D, log, pdx + base); },
        [&](int64_t base, int64_t W) {
          backward_strip<T>(pdy + base, py + base, g.D, g.inner, W, log, pdx + base);
        });
  });
}

}  // namespace

template <class T>
T row_max(const T* x, int64_t n) {
  constexpr int64_t L = kLanes<T>;
  int64_t i = 0;
  T m = x[0];
  if (n >= L) {
    Vec<T> acc = load(x);
    for (i = L; i + L <= n; i += L) {
      const Vec<T> v = load(x + i);
      acc = v > acc ? v : acc;
    }
    for (int64_t l = 0; l < L; ++l) m = acc[l] > m ? acc[l] : m;
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

template <class T>
void row_exp(const T* x, T shift, int64_t n, T* e) {
  for (int64_t i = 0; i < n; ++i) e[i] = x[i] - shift;
  exp_inplace(e, n);
}

template <class T>
double row_exp_sum(const T* x, T shift, int64_t n, T* e) {
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += Tr::kBlock) {
    const int64_t len = std::min(Tr::kBlock, n - i0);
    row_exp<T>(x + i0, shift, len, e + i0);
    total += block_sum<false, T>(e + i0, nullptr, len);
  }
  return total;
}

template <class T>
double row_sum(const T* x, int64_t n) {
  return block_sum<false, T>(x, nullptr, n);
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
