#pragma once
// The value and derivative of every unary op, written once for all backends
// (CPU, nvcc device code, the SIMT emulator).
#include <cmath>

#include "core/hd.h"
#include "kernels/elementwise.h"

namespace iris::kernels {

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <class T>
IRIS_HD T sigmoid_value(T x) {
  return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

template <class T>
IRIS_HD T unary_value(UnaryOp op, const UnaryParams& p, T x) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::abs: return x < 0 ? -x : x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return sigmoid_value(x);
    case UnaryOp::relu: return x > 0 ? x : T(0);
    case UnaryOp::gelu: return T(0.5) * x * (T(1) + std::erf(x * T(kSqrt1_2)));
    case UnaryOp::gelu_tanh: {
      const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
      return T(0.5) * x * (T(1) + std::tanh(u));
    }
    case UnaryOp::silu: return x * sigmoid_value(x);
    case UnaryOp::sign: return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
    case UnaryOp::reciprocal: return T(1) / x;
    case UnaryOp::sin: return std::sin(x);
    case UnaryOp::cos: return std::cos(x);
    case UnaryOp::square: return x * x;
    case UnaryOp::log1p: return std::log1p(x);
    case UnaryOp::expm1: return std::expm1(x);
    case UnaryOp::clamp:  // NaN passes through
      return x != x ? x : (x < T(p.a) ? T(p.a) : (x > T(p.b) ? T(p.b) : x));
    case UnaryOp::pow_scalar: return std::pow(x, T(p.a));
    case UnaryOp::leaky_relu: return x > 0 ? x : x * T(p.a);
  }
  return x;
}

// d op(x) / dx given x and y = op(x).
template <class T>
IRIS_HD T unary_derivative(UnaryOp op, const UnaryParams& p, T x, T y) {
  switch (op) {
    case UnaryOp::neg: return T(-1);
    case UnaryOp::abs: return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
    case UnaryOp::exp: return y;
    case UnaryOp::log: return T(1) / x;
    case UnaryOp::sqrt: return T(0.5) / y;
    case UnaryOp::rsqrt: return T(-0.5) * y * y * y;
    case UnaryOp::tanh: return T(1) - y * y;
    case UnaryOp::sigmoid: return y * (T(1) - y);
    case UnaryOp::relu: return x > 0 ? T(1) : T(0);
    case UnaryOp::gelu: {
      const T cdf = T(0.5) * (T(1) + std::erf(x * T(kSqrt1_2)));
      return cdf + x * T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
    }
    case UnaryOp::gelu_tanh: {
      const T x2 = x * x;
      const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x2 * x);
      const T th = std::tanh(u);
      const T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x2);
      return T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
    }
    case UnaryOp::silu: {
      const T s = sigmoid_value(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::sign: return T(0);
    case UnaryOp::reciprocal: return -y * y;
    case UnaryOp::sin: return std::cos(x);
    case UnaryOp::cos: return -std::sin(x);
    case UnaryOp::square: return T(2) * x;
    case UnaryOp::log1p: return T(1) / (T(1) + x);
    case UnaryOp::expm1: return y + T(1);
    case UnaryOp::clamp: return (x >= T(p.a) && x <= T(p.b)) ? T(1) : T(0);
    case UnaryOp::pow_scalar: return p.a == 0 ? T(0) : T(p.a) * std::pow(x, T(p.a - 1));
    case UnaryOp::leaky_relu: return x > 0 ? T(1) : T(p.a);
  }
  return T(0);
}

}  // namespace iris::kernels
