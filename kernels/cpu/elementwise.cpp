// CPU elementwise kernels: unary (and derivatives), binary, comparisons,
// where, copy/convert, fill, Philox random.
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "core/philox.h"
#include "kernels/cpu/loops.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_math.h"

namespace iris::kernels {

IRIS_DEFINE_KERNEL_TABLE(unary)
IRIS_DEFINE_KERNEL_TABLE(unary_backward)
IRIS_DEFINE_KERNEL_TABLE(binary)
IRIS_DEFINE_KERNEL_TABLE(compare)
IRIS_DEFINE_KERNEL_TABLE(where)
IRIS_DEFINE_KERNEL_TABLE(copy)
IRIS_DEFINE_KERNEL_TABLE(fill)
IRIS_DEFINE_KERNEL_TABLE(random)

const char* unary_name(UnaryOp op) {
  static const char* names[] = {"neg",  "abs",        "exp",     "log",       "sqrt",    "rsqrt",
                                "tanh", "sigmoid",    "relu",    "gelu",      "gelu_tanh", "silu",
                                "sign", "reciprocal", "sin",     "cos",       "square",  "log1p",
                                "expm1", "clamp",     "pow",     "leaky_relu"};
  return names[static_cast<int>(op)];
}

}  // namespace iris::kernels

namespace iris::cpu {
namespace {

using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::UnaryOp;
using kernels::UnaryParams;
using kernels::unary_derivative;
using kernels::unary_value;

template <class TO, class... TI, class F, size_t N, size_t... I>
void map_row(F& f, const std::array<char*, N>& p, const std::array<int64_t, N>& st, int64_t n,
             std::index_sequence<I...>) {
  const bool dense = st[0] == sizeof(TO) && ((st[I + 1] == sizeof(TI)) && ...);
  if (dense) {
    TO* o = reinterpret_cast<TO*>(p[0]);
    for (int64_t i = 0; i < n; ++i) o[i] = f(reinterpret_cast<const TI*>(p[I + 1])[i]...);
  } else {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<TO*>(p[0] + i * st[0]) =
          f(*reinterpret_cast<const TI*>(p[I + 1] + i * st[I + 1])...);
  }
}

// Applies f elementwise over (out, in...) with the loop's dense fast path.
template <class TO, class... TI, class F, class... Ts>
void map(const Tensor& out, F f, const Ts&... ins) {
  constexpr size_t N = 1 + sizeof...(Ts);
  strided_loop<N>(out.shape(), {&out, &ins...},
                  [&](const std::array<char*, N>& p, const std::array<int64_t, N>& st, int64_t n) {
                    map_row<TO, TI...>(f, p, st, n, std::index_sequence_for<TI...>{});
                  });
}

void unary_cpu(UnaryOp op, const UnaryParams& prm, const Tensor& x, const Tensor& out) {
  if (op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::sign || op == UnaryOp::square ||
      op == UnaryOp::clamp || op == UnaryOp::relu) {
    if (x.dtype() == DType::i32 || x.dtype() == DType::i64) {
      dispatch_numeric(x.dtype(), unary_name(op), [&]<class T>() {
        map<T, T>(out, [&](T v) { return static_cast<T>(unary_value<double>(op, prm, v)); }, x);
      });
      return;
    }
  }
  dispatch_float_or_half(x.dtype(), kernels::unary_name(op), [&]<class T>() {
    if constexpr (!is_half_v<T>) {
      switch (op) {  // the hot ones get a loop of their own so the compiler can vectorise
        case UnaryOp::neg: return map<T, T>(out, [](T v) { return -v; }, x);
        case UnaryOp::relu: return map<T, T>(out, [](T v) { return v > 0 ? v : T(0); }, x);
        case UnaryOp::square: return map<T, T>(out, [](T v) { return v * v; }, x);
        default: break;
      }
    }
    using C = compute_t<T>;
    map<T, T>(
        out, [&](T v) { return store_compute<T>(unary_value<C>(op, prm, load_compute(v))); }, x);
  });
}

void unary_backward_cpu(UnaryOp op, const UnaryParams& prm, const Tensor& x, const Tensor& y,
                        const Tensor& dy, const Tensor& dx) {
  dispatch_float_or_half(dx.dtype(), kernels::unary_name(op), [&]<class T>() {
    using C = compute_t<T>;
    map<T, T, T, T>(
        dx,
        [&](T xv, T yv, T g) {
          // A 16-bit y carries its rounding into y-based derivatives (tanh, rsqrt, ...):
          // recompute it in float from the exact input instead.
          const C xc = load_compute(xv);
          const C yc = is_half_v<T> ? unary_value<C>(op, prm, xc) : load_compute(yv);
          return store_compute<T>(load_compute(g) * unary_derivative<C>(op, prm, xc, yc));
        },
        x, y, dy);
  });
}

void binary_cpu(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_numeric_or_half(out.dtype(), "binary", [&]<class T>() {
    using C = compute_t<T>;
    auto run = [&](auto f) {  // f computes in C; 16-bit values round once, at the store
      map<T, T, T>(
          out, [f](T u, T v) { return store_compute<T>(f(load_compute(u), load_compute(v))); },
          a, b);
    };
    switch (op) {
      case BinaryOp::add: return run([](C u, C v) { return C(u + v); });
      case BinaryOp::sub: return run([](C u, C v) { return C(u - v); });
      case BinaryOp::mul: return run([](C u, C v) { return C(u * v); });
      case BinaryOp::div:
        if constexpr (std::is_integral_v<C>) {
          return run([](C u, C v) {
            if (v == 0) IRIS_FAIL("div: integer division by zero");
            return C(u / v);
          });
        } else {
          return run([](C u, C v) { return u / v; });
        }
      case BinaryOp::pow: return run([](C u, C v) { return C(std::pow(u, v)); });
      case BinaryOp::maximum: return run([](C u, C v) { return u != u ? u : (u > v ? u : v); });
      case BinaryOp::minimum: return run([](C u, C v) { return u != u ? u : (u < v ? u : v); });
    }
  });
}

void compare_cpu(CompareOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const DType dt = a.dtype() == DType::b8 ? DType::u8 : a.dtype();
  dispatch_numeric_or_half(dt, "compare", [&]<class T>() {
    using C = compute_t<T>;
    auto run = [&](auto cmp) {
      map<uint8_t, T, T>(
          out,
          [&](T u, T v) { return static_cast<uint8_t>(cmp(load_compute(u), load_compute(v))); },
          a, b);
    };
    switch (op) {
      case CompareOp::eq: return run([](C u, C v) { return u == v; });
      case CompareOp::ne: return run([](C u, C v) { return u != v; });
      case CompareOp::lt: return run([](C u, C v) { return u < v; });
      case CompareOp::le: return run([](C u, C v) { return u <= v; });
      case CompareOp::gt: return run([](C u, C v) { return u > v; });
      case CompareOp::ge: return run([](C u, C v) { return u >= v; });
    }
  });
}

void where_cpu(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_all(out.dtype(), [&]<class T>() {
    map<T, uint8_t, T, T>(out, [](uint8_t c, T u, T v) { return c ? u : v; }, cond, a, b);
  });
}

template <class T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, bf16>) return bf16_to_float(v);
  else if constexpr (std::is_same_v<T, f16>) return f16_to_float(v);
  else return static_cast<double>(v);
}

template <class T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, bf16>) return float_to_bf16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, f16>) return float_to_f16(static_cast<float>(v));
  else return static_cast<T>(v);
}

void copy_cpu(const Tensor& src, const Tensor& dst) {
  if (src.dtype() == dst.dtype() && src.shape() == dst.shape() && src.is_contiguous() &&
      dst.is_contiguous()) {
    if (src.raw_data() != dst.raw_data())
      std::memcpy(dst.raw_data(), src.raw_data(), dst.numel() * itemsize(dst.dtype()));
    return;
  }
  const bool to_bool = dst.dtype() == DType::b8;
  dispatch_all(dst.dtype(), [&]<class TD>() {
    dispatch_all(src.dtype(), [&]<class TS>() {
      if constexpr (std::is_same_v<TD, TS>) {
        if (!to_bool || src.dtype() == DType::b8) return map<TD, TS>(dst, [](TS v) { return v; }, src);
      }
      if constexpr (std::is_same_v<TD, float> && std::is_same_v<TS, bf16>) {
        return map<TD, TS>(dst, [](TS v) { return bf16_to_float(v); }, src);
      } else if constexpr (std::is_same_v<TD, bf16> && std::is_same_v<TS, float>) {
        return map<TD, TS>(dst, [](TS v) { return float_to_bf16(v); }, src);
      } else if (to_bool) {
        return map<TD, TS>(dst, [](TS v) { return static_cast<TD>(to_double(v) != 0); }, src);
      } else {
        return map<TD, TS>(dst, [](TS v) { return from_double<TD>(to_double(v)); }, src);
      }
    });
  });
}

void fill_cpu(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&]<class T>() {
    const T v = dst.dtype() == DType::b8 ? T(value != 0) : from_double<T>(value);
    map<T>(dst, [v]() { return v; });
  });
}

void random_cpu(kernels::RandomKind kind, const Tensor& dst, double a, double scale, uint64_t seed,
                uint64_t offset) {
  IRIS_CHECK(dst.is_contiguous(), "random: destination must be contiguous, got strides ",
             shape_str(dst.strides()));
  dispatch_float_or_half(dst.dtype(), "random", [&]<class T>() {
    T* p = dst.data<T>();
    parallel_for(0, dst.numel(), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const uint64_t k = offset + static_cast<uint64_t>(i);
        const double r = kind == kernels::RandomKind::uniform ? philox::uniform(seed, k)
                                                              : philox::normal(seed, k);
        p[i] = convert_value<T>(a + scale * r);
      }
    });
  });
}

}  // namespace

IRIS_REGISTER_KERNEL(unary, CPU, unary_cpu);
IRIS_REGISTER_KERNEL(unary_backward, CPU, unary_backward_cpu);
IRIS_REGISTER_KERNEL(binary, CPU, binary_cpu);
IRIS_REGISTER_KERNEL(compare, CPU, compare_cpu);
IRIS_REGISTER_KERNEL(where, CPU, where_cpu);
IRIS_REGISTER_KERNEL(copy, CPU, copy_cpu);
IRIS_REGISTER_KERNEL(fill, CPU, fill_cpu);
IRIS_REGISTER_KERNEL(random, CPU, random_cpu);

}  // namespace iris::cpu
