#pragma once
// Elementwise kernels (any device). Operands share the output's shape: inputs
// may be strided or broadcast (stride 0), outputs are dense and freshly made.
#include <cstdint>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

enum class UnaryOp : uint8_t {
  neg, abs, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, gelu, gelu_tanh, silu, sign,
  reciprocal, sin, cos, square, log1p, expm1,
  clamp,      // a = lo, b = hi (use +-inf for one-sided)
  pow_scalar, // a = exponent
  leaky_relu, // a = negative slope
};
struct UnaryParams {
  double a = 0, b = 0;
};
const char* unary_name(UnaryOp op);

enum class BinaryOp : uint8_t { add, sub, mul, div, pow, maximum, minimum };
enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge };
enum class RandomKind : uint8_t { uniform, normal };

// out = op(x)
IRIS_DECLARE_KERNEL(unary, void(UnaryOp, const UnaryParams&, const Tensor& x, const Tensor& out));
// dx = dy * op'(x), using y = op(x) where that is cheaper.
IRIS_DECLARE_KERNEL(unary_backward, void(UnaryOp, const UnaryParams&, const Tensor& x,
                                         const Tensor& y, const Tensor& dy, const Tensor& dx));
// out = a op b
IRIS_DECLARE_KERNEL(binary, void(BinaryOp, const Tensor& a, const Tensor& b, const Tensor& out));
// out (bool) = a op b
IRIS_DECLARE_KERNEL(compare, void(CompareOp, const Tensor& a, const Tensor& b, const Tensor& out));
// out = cond ? a : b (cond bool)
IRIS_DECLARE_KERNEL(where, void(const Tensor& cond, const Tensor& a, const Tensor& b,
                                const Tensor& out));
// dst = src with dtype conversion (dst may be any strided view; src broadcastable)
IRIS_DECLARE_KERNEL(copy, void(const Tensor& src, const Tensor& dst));
IRIS_DECLARE_KERNEL(fill, void(const Tensor& dst, double value));
// dst = a + scale * (uniform [0,1) or standard normal) with element i drawn from
// Philox (seed, offset + i): the same numbers on every backend.
IRIS_DECLARE_KERNEL(random, void(RandomKind, const Tensor& dst, double a, double scale,
                                 uint64_t seed, uint64_t offset));

}  // namespace iris::kernels
