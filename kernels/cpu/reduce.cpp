// CPU reductions: rows of a [outer, R] view when the reduced dims are innermost
// (copied to that layout otherwise), and a column path when they are outermost.
#include <cmath>
#include <limits>

#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace iris::kernels {
IRIS_DEFINE_KERNEL_TABLE(reduce)
IRIS_DEFINE_KERNEL_TABLE(cumsum)

const char* reduce_name(ReduceOp op) {
  static const char* names[] = {"sum", "mean", "max", "min", "argmax", "argmin", "var"};
  return names[static_cast<int>(op)];
}
}  // namespace iris::kernels

namespace iris::cpu {
namespace {

using kernels::ReduceOp;

// Accumulator type: double for the floats, bf16/f16 included (sums of many values stay
// accurate); values are read through load_compute and written with one rounding.
template <class T>
using Acc = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;

template <class T>
bool greater(T a, T b) {  // a > b with NaN largest
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
  }
  return a > b;
}

template <class T>
void reduce_row(ReduceOp op, const T* x, int64_t R, int64_t correction, void* out) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::mean: {
      Acc<T> s = 0;
      for (int64_t i = 0; i < R; ++i) s += load_compute(x[i]);
      *static_cast<T*>(out) = op == ReduceOp::sum ? convert_value<T>(s)
                                                  : convert_value<T>(static_cast<double>(s) / R);
      return;
    }
    case ReduceOp::max:
    case ReduceOp::min:
    case ReduceOp::argmax:
    case ReduceOp::argmin: {
      const bool want_max = op == ReduceOp::max || op == ReduceOp::argmax;
      int64_t best = 0;
      for (int64_t i = 1; i < R; ++i)
        if (want_max ? greater(load_compute(x[i]), load_compute(x[best]))
                     : greater(load_compute(x[best]), load_compute(x[i])))
          best = i;
      if (!want_max) {  // NaN is also the result of min
        if constexpr (std::is_floating_point_v<compute_t<T>>)
          for (int64_t i = 0; i < R; ++i)
            if (std::isnan(load_compute(x[i]))) {
              best = i;
              break;
            }
      }
      if (op == ReduceOp::argmax || op == ReduceOp::argmin)
        *static_cast<int64_t*>(out) = best;
      else
        *static_cast<T*>(out) = x[best];
      return;
    }
    case ReduceOp::var: {
      double mean = 0;
      for (int64_t i = 0; i < R; ++i) mean += static_cast<double>(load_compute(x[i]));
      mean /= static_cast<double>(R);
      double ss = 0;
      for (int64_t i = 0; i < R; ++i) {
        const double d = static_cast<double>(load_compute(x[i])) - mean;
        ss += d * d;
      }
      const double denom = static_cast<double>(R - correction);
      *static_cast<T*>(out) =
          convert_value<T>(denom > 0 ? ss / denom : std::numeric_limits<double>::quiet_NaN());
      return;
    }
  }
}

void reduce_cpu(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, const Tensor& out,
                int64_t correction) {
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, false);
  for (int64_t d : dims) reduced[d] = true;
  int64_t R = 1;
  for (int64_t d : dims) R *= x.size(d);
  const int64_t outer = out.numel();
  const bool arg = op == ReduceOp::argmax || op == ReduceOp::argmin;
  IRIS_CHECK(R > 0 || op == ReduceOp::sum || op == ReduceOp::mean, kernels::reduce_name(op),
             ": cannot reduce an empty dimension of ", x.desc());

  if (R == 0) {  // sum of nothing is 0, mean is NaN
    kernels::fill_table().get(out.device())(
        out, op == ReduceOp::sum ? 0.0 : std::numeric_limits<double>::quiet_NaN());
    return;
  }
  dispatch_numeric_or_half(x.dtype(), kernels::reduce_name(op), [&]<class T>() {
    // Column path: x dense and the reduced dims are a leading block -> out[k] over rows.
    int64_t lead = 0;
    while (lead < nd && reduced[lead]) ++lead;
    bool leading_block = lead == static_cast<int64_t>(dims.size()) && lead > 0 && lead < nd;
    if (leading_block && x.is_contiguous() && !arg && op != ReduceOp::var) {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      const int64_t K = outer;
      parallel_for(0, K, 1024, [&](int64_t kb, int64_t ke) {
        const int64_t w = ke - kb;
        std::vector<Acc<T>> acc(w);
        std::vector<compute_t<T>> best(w);
        for (int64_t j = 0; j < w; ++j) best[j] = load_compute(px[kb + j]);
        for (int64_t r = 0; r < R; ++r) {
          const T* row = px + r * K + kb;
          if (op == ReduceOp::sum || op == ReduceOp::mean) {
            for (int64_t j = 0; j < w; ++j) acc[j] += load_compute(row[j]);
          } else {
            for (int64_t j = 0; j < w; ++j) {
              const compute_t<T> v = load_compute(row[j]);
              const bool take =
                  op == ReduceOp::max ? greater(v, best[j]) : greater(best[j], v) || v != v;
              if (take && best[j] == best[j]) best[j] = v;
            }
          }
        }
        for (int64_t j = 0; j < w; ++j) {
          if (op == ReduceOp::sum) po[kb + j] = convert_value<T>(acc[j]);
          else if (op == ReduceOp::mean)
            po[kb + j] = convert_value<T>(static_cast<double>(acc[j]) / R);
          else po[kb + j] = store_compute<T>(best[j]);
        }
      });
      return;
    }
    // Row path: permute the reduced dims last, densify if needed, reduce each row.
    Shape perm_shape, perm_strides;
    for (int64_t d = 0; d < nd; ++d)
      if (!reduced[d]) perm_shape.push_back(x.size(d)), perm_strides.push_back(x.stride(d));
    for (int64_t d : dims) perm_shape.push_back(x.size(d)), perm_strides.push_back(x.stride(d));
    Tensor v = x.as_strided(perm_shape, perm_strides, x.offset());
    if (!v.is_contiguous()) {
      Tensor dense = Tensor::empty(perm_shape, x.dtype(), x.device());
      kernels::copy_table().get(x.device())(v, dense);
      v = dense;
    }
    const T* px = v.data<T>();
    char* po = static_cast<char*>(out.raw_data());
    const size_t osz = itemsize(out.dtype());
    parallel_for(0, outer, std::max<int64_t>(1, 16384 / R), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) reduce_row<T>(op, px + i * R, R, correction, po + i * osz);
    });
  });
}

void cumsum_cpu(const Tensor& x, int64_t dim, const Tensor& out) {
  dispatch_numeric_or_half(x.dtype(), "cumsum", [&]<class T>() {
    const int64_t n = x.size(dim);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
    Tensor src = x;
    if (!x.is_contiguous()) {
      src = Tensor::empty(x.shape(), x.dtype(), x.device());
      kernels::copy_table().get(x.device())(x, src);
    }
    const T* px = src.data<T>();
    T* po = out.data<T>();
    parallel_for(0, outer, 1, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          Acc<T> s = 0;
          for (int64_t i = 0; i < n; ++i) {
            const int64_t k = (o * n + i) * inner + j;
            s += load_compute(px[k]);
            po[k] = convert_value<T>(s);
          }
        }
    });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(reduce, CPU, reduce_cpu);
IRIS_REGISTER_KERNEL(cumsum, CPU, cumsum_cpu);

}  // namespace iris::cpu
