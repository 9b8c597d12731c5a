#pragma once
// The op API: every function here is differentiable (where that means
// anything) and records itself on the tape; its derivative sits beside it in
// the matching autograd/*.cpp. Families with more ops have headers of their own,
// all included at the end.
#include <cstdint>
#include <optional>
#include <vector>

#include "autograd/node.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace iris {

// ---- creation ----
Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
            Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
// 0, 1, ..., n-1 (int64 by default).
Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());
// Philox draws: element i of the result is a function of (generator seed, reserved offset + i).
Tensor rand(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(),
            Generator* gen = nullptr);  // uniform [0, 1)
Tensor randn(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu(),
             Generator* gen = nullptr);
Tensor uniform(const Shape& shape, double lo, double hi, DType dtype = DType::f32,
               Device device = Device::cpu(), Generator* gen = nullptr);

// ---- in-place (not recorded; refuse tensors that require grad while grad mode is on) ----
void copy_(const Tensor& dst, const Tensor& src);  // src broadcasts to dst
void fill_(const Tensor& dst, double value);
void zero_(const Tensor& dst);

// ---- elementwise, NumPy broadcasting ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// A 0-dim tensor of t's dtype and device (for scalar arithmetic).
Tensor scalar_like(const Tensor& t, double value);

Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
// approximate: false = exact erf form (PyTorch's default), true = tanh form.
Tensor gelu(const Tensor& x, bool approximate_tanh = false);
Tensor silu(const Tensor& x);
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi);

// Comparisons give bool tensors (not differentiable).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// cond ? a : b, broadcasting all three; differentiable in a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// ---- reductions (dims may be negative; empty dims = all) ----
Tensor sum(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor var(const Tensor& x, std::vector<int64_t> dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t dim);
// Sums a broadcast gradient back down to `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- operators ----
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, scalar_like(a, s)); }
inline Tensor operator-(const Tensor& a, double s) { return sub(a, scalar_like(a, s)); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, scalar_like(a, s)); }
inline Tensor operator/(const Tensor& a, double s) { return div(a, scalar_like(a, s)); }
inline Tensor operator+(double s, const Tensor& a) { return add(scalar_like(a, s), a); }
inline Tensor operator-(double s, const Tensor& a) { return sub(scalar_like(a, s), a); }
inline Tensor operator*(double s, const Tensor& a) { return mul(scalar_like(a, s), a); }
inline Tensor operator/(double s, const Tensor& a) { return div(scalar_like(a, s), a); }

}  // namespace iris

// Op families with headers of their own.
#include "autograd/autocast.h"
#include "autograd/linalg.h"
#include "autograd/attention.h"
#include "autograd/conv.h"
#include "autograd/index_ops.h"
#include "autograd/nn_ops.h"
#include "autograd/optim_ops.h"
#include "autograd/rnn_ops.h"
