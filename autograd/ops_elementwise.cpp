// Creation, in-place writes and elementwise ops, each with its derivative.
#include <cmath>
#include <limits>

#include "autograd/function.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/elementwise.h"

namespace iris {

using autograd::broadcast_raw;

using autograd::BackwardCtx;
using autograd::Saved;
using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::UnaryOp;
using kernels::UnaryParams;

namespace {

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  IRIS_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  IRIS_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.desc(), " and ", b.desc());
  IRIS_CHECK(a.device() == b.device(), op, ": device mismatch: ", a.desc(), " and ", b.desc());
}

Tensor binary_forward(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_pair(name, a, b);
  const Shape s = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  kernels::binary_table().get(a.device())(op, broadcast_raw(a, s), broadcast_raw(b, s), out);
  return out;
}

Tensor unary_forward(UnaryOp op, const UnaryParams& p, const Tensor& x) {
  IRIS_CHECK(x.defined(), kernels::unary_name(op), ": undefined operand");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::unary_table().get(x.device())(op, p, x, out);
  if (autograd::any_requires_grad({&x})) {
    autograd::record(kernels::unary_name(op), {x}, {out},
                     [op, p, sx = Saved(x), sy = Saved(out)](const BackwardCtx& c) {
                       const Tensor& x = sx.get();
                       Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
                       kernels::unary_backward_table().get(x.device())(op, p, x, sy.get(),
                                                                       c.grad(), dx);
                       return std::vector<Tensor>{dx};
                     });
  }
  return out;
}

Tensor compare_forward(CompareOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_pair(name, a, b);
  const Shape s = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(s, DType::b8, a.device());
  kernels::compare_table().get(a.device())(op, broadcast_raw(a, s), broadcast_raw(b, s), out);
  return out;
}

Tensor maybe_sum_to(const BackwardCtx& c, size_t i, const Tensor& g, const Shape& shape) {
  return c.need(i) ? sum_to(g, shape) : Tensor();
}

void check_inplace(const char* op, const Tensor& dst) {
  IRIS_CHECK(dst.defined(), op, ": undefined tensor");
  IRIS_CHECK(!(grad_mode_enabled() && dst.requires_grad()), op, ": in-place write to ", dst.desc(),
             ", which requires grad; do it under NoGradGuard");
}

}  // namespace

// ---- creation ----

Tensor empty(const Shape& shape, DType dtype, Device device) {
  return Tensor::empty(shape, dtype, device);
}
Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  kernels::fill_table().get(device)(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) {
  return full(t.shape(), value, t.dtype(), t.device());
}
Tensor scalar_like(const Tensor& t, double value) {
  return Tensor::scalar(value, t.dtype(), t.device());
}

Tensor arange(int64_t n, DType dtype, Device device) {
  IRIS_CHECK(n >= 0, "arange: negative length ", n);
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>(i);
  Tensor host = Tensor::from_vector(v, {n});
  Tensor out = Tensor::empty({n}, dtype, Device::cpu());
  kernels::copy_table().get(Device::cpu())(host, out);
  return device.is_cpu() ? out : out.to(device);
}

namespace {
Tensor random_tensor(kernels::RandomKind kind, const Shape& shape, double a, double scale,
                     DType dtype, Device device, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = Tensor::empty(shape, dtype, device);
  const uint64_t offset = g.reserve(static_cast<uint64_t>(t.numel()));
  kernels::random_table().get(device)(kind, t, a, scale, g.seed(), offset);
  return t;
}
}  // namespace

Tensor rand(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return random_tensor(kernels::RandomKind::uniform, shape, 0, 1, dtype, device, gen);
}
Tensor randn(const Shape& shape, DType dtype, Device device, Generator* gen) {
  return random_tensor(kernels::RandomKind::normal, shape, 0, 1, dtype, device, gen);
}
Tensor uniform(const Shape& shape, double lo, double hi, DType dtype, Device device,
               Generator* gen) {
  return random_tensor(kernels::RandomKind::uniform, shape, lo, hi - lo, dtype, device, gen);
}

// ---- in-place ----

void copy_(const Tensor& dst, const Tensor& src) {
  check_inplace("copy_", dst);
  IRIS_CHECK(src.defined(), "copy_: undefined source");
  IRIS_CHECK(src.device() == dst.device(), "copy_: device mismatch: ", src.desc(), " -> ",
             dst.desc(), " (use .to(device))");
  const Shape s = broadcast_shapes(src.shape(), dst.shape(), "copy_");
  IRIS_CHECK(s == dst.shape(), "copy_: source ", src.desc(), " does not broadcast to ",
             dst.desc());
  kernels::copy_table().get(dst.device())(broadcast_raw(src, s), dst);
  dst.bump_version();
}

void fill_(const Tensor& dst, double value) {
  check_inplace("fill_", dst);
  kernels::fill_table().get(dst.device())(dst, value);
  dst.bump_version();
}

void zero_(const Tensor& dst) { fill_(dst, 0.0); }

// ---- binary ----

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::add, "add", a, b);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record("add", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](const BackwardCtx& c) {
      return std::vector<Tensor>{maybe_sum_to(c, 0, c.grad(), sa), maybe_sum_to(c, 1, c.grad(), sb)};
    });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::sub, "sub", a, b);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record("sub", {a, b}, {out}, [sa = a.shape(), sb = b.shape()](const BackwardCtx& c) {
      return std::vector<Tensor>{maybe_sum_to(c, 0, c.grad(), sa),
                                 c.need(1) ? sum_to(neg(c.grad()), sb) : Tensor()};
    });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::mul, "mul", a, b);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record("mul", {a, b}, {out}, [A = Saved(a), B = Saved(b)](const BackwardCtx& c) {
      const Tensor& a = A.get();
      const Tensor& b = B.get();
      return std::vector<Tensor>{c.need(0) ? sum_to(mul(c.grad(), b), a.shape()) : Tensor(),
                                 c.need(1) ? sum_to(mul(c.grad(), a), b.shape()) : Tensor()};
    });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::div, "div", a, b);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record("div", {a, b}, {out},
                     [A = Saved(a), B = Saved(b), O = Saved(out)](const BackwardCtx& c) {
                       const Tensor& b = B.get();
                       const Tensor ga = div(c.grad(), b);
                       return std::vector<Tensor>{
                           c.need(0) ? sum_to(ga, A.get().shape()) : Tensor(),
                           c.need(1) ? sum_to(neg(mul(ga, O.get())), b.shape()) : Tensor()};
                     });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::pow, "pow", a, b);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record("pow", {a, b}, {out},
                     [A = Saved(a), B = Saved(b), O = Saved(out)](const BackwardCtx& c) {
                       const Tensor& a = A.get();
                       const Tensor& b = B.get();
                       Tensor ga, gb;
                       if (c.need(0))
                         ga = sum_to(mul(c.grad(), mul(b, pow(a, sub(b, scalar_like(b, 1))))),
                                     a.shape());
                       if (c.need(1)) gb = sum_to(mul(c.grad(), mul(O.get(), log(a))), b.shape());
                       return std::vector<Tensor>{ga, gb};
                     });
  return out;
}

Tensor pow(const Tensor& a, double exponent) {
  return unary_forward(UnaryOp::pow_scalar, {exponent, 0}, a);
}

namespace {
// max/min: the gradient goes to the larger (smaller) input, split evenly on ties.
Tensor extremum(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(op, name, a, b);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record(name, {a, b}, {out}, [op, A = Saved(a), B = Saved(b)](const BackwardCtx& c) {
      const Tensor& a = A.get();
      const Tensor& b = B.get();
      const Tensor& g = c.grad();
      const Tensor a_wins = op == BinaryOp::maximum ? gt(a, b) : lt(a, b);
      const Tensor tie = eq(a, b);
      const Tensor zero = scalar_like(g, 0);
      const Tensor half = mul(g, scalar_like(g, 0.5));
      Tensor ga, gb;
      if (c.need(0)) ga = sum_to(where(a_wins, g, where(tie, half, zero)), a.shape());
      if (c.need(1))
        gb = sum_to(where(a_wins, zero, where(tie, half, g)), b.shape());
      return std::vector<Tensor>{ga, gb};
    });
  return out;
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum(BinaryOp::maximum, "maximum", a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum(BinaryOp::minimum, "minimum", a, b);
}

// ---- unary ----

Tensor neg(const Tensor& x) { return unary_forward(UnaryOp::neg, {}, x); }
Tensor abs(const Tensor& x) { return unary_forward(UnaryOp::abs, {}, x); }
Tensor exp(const Tensor& x) { return unary_forward(UnaryOp::exp, {}, x); }
Tensor log(const Tensor& x) { return unary_forward(UnaryOp::log, {}, x); }
Tensor log1p(const Tensor& x) { return unary_forward(UnaryOp::log1p, {}, x); }
Tensor expm1(const Tensor& x) { return unary_forward(UnaryOp::expm1, {}, x); }
Tensor sqrt(const Tensor& x) { return unary_forward(UnaryOp::sqrt, {}, x); }
Tensor rsqrt(const Tensor& x) { return unary_forward(UnaryOp::rsqrt, {}, x); }
Tensor square(const Tensor& x) { return unary_forward(UnaryOp::square, {}, x); }
Tensor reciprocal(const Tensor& x) { return unary_forward(UnaryOp::reciprocal, {}, x); }
Tensor sin(const Tensor& x) { return unary_forward(UnaryOp::sin, {}, x); }
Tensor cos(const Tensor& x) { return unary_forward(UnaryOp::cos, {}, x); }
Tensor sign(const Tensor& x) { return unary_forward(UnaryOp::sign, {}, x); }
Tensor tanh(const Tensor& x) { return unary_forward(UnaryOp::tanh, {}, x); }
Tensor sigmoid(const Tensor& x) { return unary_forward(UnaryOp::sigmoid, {}, x); }
Tensor relu(const Tensor& x) { return unary_forward(UnaryOp::relu, {}, x); }
Tensor leaky_relu(const Tensor& x, double slope) {
  return unary_forward(UnaryOp::leaky_relu, {slope, 0}, x);
}
Tensor gelu(const Tensor& x, bool approximate_tanh) {
  return unary_forward(approximate_tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu, {}, x);
}
Tensor silu(const Tensor& x) { return unary_forward(UnaryOp::silu, {}, x); }
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  const double inf = std::numeric_limits<double>::infinity();
  return unary_forward(UnaryOp::clamp, {lo.value_or(-inf), hi.value_or(inf)}, x);
}

// ---- comparisons, where ----

Tensor eq(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::ge, "ge", a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_pair("where", a, b);
  IRIS_CHECK(cond.dtype() == DType::b8, "where: condition must be bool, got ", cond.desc());
  IRIS_CHECK(cond.device() == a.device(), "where: device mismatch: ", cond.desc(), " and ",
             a.desc());
  const Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(),
                                   "where");
  Tensor out = Tensor::empty(s, a.dtype(), a.device());
  kernels::where_table().get(a.device())(broadcast_raw(cond, s), broadcast_raw(a, s),
                                         broadcast_raw(b, s), out);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::record("where", {a, b}, {out},
                     [C = Saved(cond), sa = a.shape(), sb = b.shape()](const BackwardCtx& c) {
                       const Tensor zero = scalar_like(c.grad(), 0);
                       return std::vector<Tensor>{
                           c.need(0) ? sum_to(where(C.get(), c.grad(), zero), sa) : Tensor(),
                           c.need(1) ? sum_to(where(C.get(), zero, c.grad()), sb) : Tensor()};
                     });
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  return where(mask, scalar_like(x, value), x);
}

}  // namespace iris
