// CPU cross-entropy fused with log-softmax over logits [N, C, S]. Forward keeps
// only the per-sample log-sum-exp (no probabilities are stored); backward
// recomputes softmax = exp(x - lse) and subtracts the smoothed one-hot in one pass.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"
#include "kernels/softmax.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(cross_entropy_forward)
IRIS_DEFINE_KERNEL_TABLE(cross_entropy_backward)
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

struct CrossEntropyTraits {
  // Scratch for exp values of a row (on the stack): the row is summed in chunks of this.
  static constexpr int64_t kExpChunk = 512;
  // Spatial positions handled together for [N, C, S] inputs with S > 1.
  static constexpr int64_t kColumnWidth = 64;
  // A parallel chunk covers at least this many logits.
  static constexpr int64_t kGrainElems = 16384;
  static_assert(kExpChunk > 0 && kColumnWidth > 0 && kGrainElems > 0);
};
using Tr = CrossEntropyTraits;

struct Params {
  int64_t N, C, S;
  int64_t ignore_index;
  double smoothing;
};

void check_target(const Params& p, int64_t t, int64_t n, int64_t s) {
  IRIS_CHECK(t >= 0 && t<p.C, "cross_entropy: target ", t, " is out of bounds for ", p.C,
                         " classes (sample ", n, p.S> 1
                 ? ", position "
                 : "",
             p.S > 1 ? std::to_string(s) : "", ")");
}

// The loss of one sample from its log-sum-exp, target logit and logit sum.
double sample_loss(const Params& p, double lse, double x_target, double x_sum) {
  const double nll = lse - x_target;
  if (p.smoothing == 0) return nll;  // also keeps 0 * inf out when a logit is -inf
  const double C = static_cast<double>(p.C);
  return (1 - p.smoothing) * nll + p.smoothing / C * (C * lse - x_sum);
}

template <class T>
void forward_row(const Params& p, const T* x, int64_t t, int64_t n, T* loss, T* lse_out) {
  const T mx = row_max<T>(x, p.C);
  T scratch[Tr::kExpChunk];
  double sum = 0;
  for (int64_t c0 = 0; c0 < p.C; c0 += Tr::kExpChunk)
    sum += row_exp_sum<T>(x + c0, mx, std::min(Tr::kExpChunk, p.C - c0), scratch);
  const double lse = static_cast<double>(mx) + std::log(sum);
  *lse_out = static_cast<T>(lse);
  if (t == p.ignore_index) {
    *loss = 0;
    return;
  }
  check_target(p, t, n, 0);
  const double x_sum = p.smoothing != 0 ? row_sum<T>(x, p.C) : 0.0;
  *loss = static_cast<T>(sample_loss(p, lse, static_cast<double>(x[t]), x_sum));
}

// W spatial positions of sample n: logit (c, j) at x[c * S + j].
template <class T>
void forward_strip(const Params& p, const T* x, const int64_t* t, int64_t n, int64_t s0, int64_t W,
                   T* loss, T* lse_out) {
  T mx[Tr::kColumnWidth], sum[Tr::kColumnWidth], xsum[Tr::kColumnWidth];
  for (int64_t j = 0; j < W; ++j) mx[j] = x[j], sum[j] = 0, xsum[j] = 0;
  for (int64_t c = 1; c < p.C; ++c)
    for (int64_t j = 0; j < W; ++j) mx[j] = x[c * p.S + j] > mx[j] ? x[c * p.S + j] : mx[j];
  T e[Tr::kColumnWidth];
  for (int64_t c = 0; c < p.C; ++c) {
    const T* xc = x + c * p.S;
    for (int64_t j = 0; j < W; ++j) e[j] = xc[j] - mx[j];
    row_exp<T>(e, T(0), W, e);
    for (int64_t j = 0; j < W; ++j) sum[j] += e[j], xsum[j] += xc[j];
  }
  for (int64_t j = 0; j < W; ++j) {
    const double lse = static_cast<double>(mx[j]) + std::log(static_cast<double>(sum[j]));
    lse_out[j] = static_cast<T>(lse);
    if (t[j] == p.ignore_index) {
      loss[j] = 0;
      continue;
    }
    check_target(p, t[j], n, s0 + j);
    loss[j] = static_cast<T>(
        sample_loss(p, lse, static_cast<double>(x[t[j] * p.S + j]), static_cast<double>(xsum[j])));
  }
}

// Calls row(n) for each sample (S == 1) or strip(n, s0, W) for strips of positions.
template <class Row, class Strip>
void for_each_slice(const Params& p, Row row, Strip strip) {
  if (p.N == 0 || p.S == 0) return;
  if (p.S == 1) {
    parallel_for(0, p.N, std::max<int64_t>(1, Tr::kGrainElems / std::max<int64_t>(1, p.C)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t n = b; n < e; ++n) row(n);
                 });
    return;
  }
  const int64_t per_sample = (p.S + Tr::kColumnWidth - 1) / Tr::kColumnWidth;
  const int64_t strip_elems = std::max<int64_t>(1, p.C * std::min(p.S, Tr::kColumnWidth));
  parallel_for(0, p.N * per_sample, std::max<int64_t>(1, Tr::kGrainElems / strip_elems),
               [&](int64_t b, int64_t e) {
                 for (int64_t u = b; u < e; ++u) {
                   const int64_t n = u / per_sample, s0 = (u % per_sample) * Tr::kColumnWidth;
                   strip(n, s0, std::min(Tr::kColumnWidth, p.S - s0));
                 }
               });
}

bool is_half(DType dt) { return dt == DType::bf16 || dt == DType::f16; }

// bf16/f16 logits run the float kernels on float copies (lse is a float32 tensor), rounding
// once at the store of the 16-bit loss and dlogits.
Tensor float_copy(const Tensor& t) {
  Tensor f = Tensor::empty(t.shape(), DType::f32, t.device());
  kernels::copy_table().get(t.device())(t, f);
  return f;
}

void cross_entropy_forward_cpu(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                               double label_smoothing, const Tensor& loss, const Tensor& lse) {
  if (is_half(logits.dtype())) {
    IRIS_CHECK(lse.dtype() == DType::f32, "cross_entropy: lse of ", logits.desc(),
               " is float32, got ", lse.desc());
    const Tensor loss_f = Tensor::empty(loss.shape(), DType::f32, loss.device());
    cross_entropy_forward_cpu(float_copy(logits), target, ignore_index, label_smoothing, loss_f,
                              lse);
    kernels::copy_table().get(loss.device())(loss_f, loss);
    return;
  }
  const Params p{logits.size(0), logits.size(1), logits.size(2), ignore_index, label_smoothing};
  IRIS_CHECK(p.C > 0 || p.N * p.S == 0, "cross_entropy: no classes in logits ", logits.desc());
  dispatch_float(logits.dtype(), "cross_entropy", [&]<class T>() {
    const T* px = logits.data<T>();
    const int64_t* pt = target.data<int64_t>();
    T* pl = loss.data<T>();
    T* pe = lse.data<T>();
    for_each_slice(
        p, [&](int64_t n) { forward_row<T>(p, px + n * p.C, pt[n], n, pl + n, pe + n); },
        [&](int64_t n, int64_t s0, int64_t W) {
          const int64_t k = n * p.S + s0;
          forward_strip<T>(p, px + n * p.C * p.S + s0, pt + k, n, s0, W, pl + k, pe + k);
        });
  });
}

// dx = g * (exp(x - lse) - ls / C - (1 - ls) * [c == t]); zero for an ignored sample.
template <class T>
void backward_row(const Params& p, const T* x, int64_t t, int64_t n, T lse, double g, T* dx) {
  if (t == p.ignore_index) {
    std::fill(dx, dx + p.C, T(0));
    return;
  }
  check_target(p, t, n, 0);
  const T a = static_cast<T>(g);
  const T b = static_cast<T>(g * p.smoothing / static_cast<double>(p.C));
  row_exp<T>(x, lse, p.C, dx);  // softmax, written straight into dx
  for (int64_t c = 0; c < p.C; ++c) dx[c] = a * dx[c] - b;
  dx[t] -= static_cast<T>(g * (1 - p.smoothing));
}

template <class T>
void backward_strip(const Params& p, const T* x, const int64_t* t, int64_t n, int64_t s0,
                    const T* lse, const T* dloss, int64_t dloss_stride, int64_t W, T* dx) {
  T a[Tr::kColumnWidth], b[Tr::kColumnWidth];
  for (int64_t j = 0; j < W; ++j) {
    const bool ignored = t[j] == p.ignore_index;
    if (!ignored) check_target(p, t[j], n, s0 + j);
    const double g = ignored ? 0.0 : static_cast<double>(dloss[j * dloss_stride]);
    a[j] = static_cast<T>(g);
    b[j] = static_cast<T>(g * p.smoothing / static_cast<double>(p.C));
  }
  T e[Tr::kColumnWidth];
  for (int64_t c = 0; c < p.C; ++c) {
    for (int64_t j = 0; j < W; ++j) e[j] = x[c * p.S + j] - lse[j];
    row_exp<T>(e, T(0), W, e);
    for (int64_t j = 0; j < W; ++j) dx[c * p.S + j] = a[j] * e[j] - b[j];
  }
  for (int64_t j = 0; j < W; ++j)
    if (t[j] != p.ignore_index)
      dx[t[j] * p.S + j] -= static_cast<T>(static_cast<double>(a[j]) * (1 - p.smoothing));
}

void cross_entropy_backward_cpu(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                const Tensor& dloss, int64_t ignore_index, double label_smoothing,
                                const Tensor& dlogits) {
  if (is_half(logits.dtype())) {
    const Tensor dx_f = Tensor::empty(dlogits.shape(), DType::f32, dlogits.device());
    cross_entropy_backward_cpu(float_copy(logits), target, lse, float_copy(dloss), ignore_index,
                               label_smoothing, dx_f);
    kernels::copy_table().get(dlogits.device())(dx_f, dlogits);
    return;
  }
  const Params p{logits.size(0), logits.size(1), logits.size(2), ignore_index, label_smoothing};
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    const T* px = logits.data<T>();
    const int64_t* pt = target.data<int64_t>();
    const T* pe = lse.data<T>();
    const T* pg = dloss.data<T>();
    const int64_t gs0 = dloss.stride(0), gs1 = dloss.stride(1);
    T* pdx = dlogits.data<T>();
    for_each_slice(
        p,
        [&](int64_t n) {
          backward_row<T>(p, px + n * p.C, pt[n], n, pe[n], static_cast<double>(pg[n * gs0]),
                          pdx + n * p.C);
        },
        [&](int64_t n, int64_t s0, int64_t W) {
          const int64_t k = n * p.S + s0, base = n * p.C * p.S + s0;
          backward_strip<T>(p, px + base, pt + k, n, s0, pe + k, pg + n * gs0 + s0 * gs1, gs1, W,
                            pdx + base);
        });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(cross_entropy_forward, CPU, cross_entropy_forward_cpu);
IRIS_REGISTER_KERNEL(cross_entropy_backward, CPU, cross_entropy_backward_cpu);

}  // namespace iris::cpu
