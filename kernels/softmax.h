#pragma once
// Softmax, log-softmax and the fused cross-entropy (log-softmax + NLL with
// label smoothing) kernels (any device). Inputs arrive dense from the op layer.
#include <cstdint>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

// out = softmax(x) or log_softmax(x) along `dim` (x and out dense, same shape).
IRIS_DECLARE_KERNEL(softmax_forward,
                    void(const Tensor& x, int64_t dim, bool log, const Tensor& out));
// dx from the forward's output y: softmax: y * (dy - sum(dy * y)); log_softmax:
// dy - exp(y) * sum(dy). dy, y, dx dense, same shape.
IRIS_DECLARE_KERNEL(softmax_backward, void(const Tensor& dy, const Tensor& y, int64_t dim, bool log,
                                           const Tensor& dx));

// logits [N, C, S] (S = 1 for [N, C]), target int64 [N, S]. Writes loss [N, S]:
// (1 - ls) * (lse - x[t]) + ls / C * (C * lse - sum_c x[c]) and 0 where target ==
// ignore_index, and lse [N, S] = logsumexp over C (saved for backward). A
// target outside [0, C) that is not ignore_index throws, naming the index.
IRIS_DECLARE_KERNEL(cross_entropy_forward,
                    void(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                         double label_smoothing, const Tensor& loss, const Tensor& lse));
// dlogits[n, c, s] = dloss[n, s] * (softmax - (1 - ls) * onehot(t) - ls / C), 0
// where ignored. dloss [N, S] may have any strides (0 for a broadcast scalar).
IRIS_DECLARE_KERNEL(cross_entropy_backward,
                    void(const Tensor& logits, const Tensor& target, const Tensor& lse,
                         const Tensor& dloss, int64_t ignore_index, double label_smoothing,
                         const Tensor& dlogits));

}  // namespace iris::kernels

namespace iris::cpu {

// Row primitives of kernels/cpu/softmax.cpp that the CPU cross-entropy shares
// (float and double instantiations). exp is a vectorisable polynomial for float
// (about 1 ulp) and std::exp for double.
template <class T>
T row_max(const T* x, int64_t n);
template <class T>
double row_sum(const T* x, int64_t n);
// Writes e[i] = exp(x[i] - shift) (e may alias x).
template <class T>
void row_exp(const T* x, T shift, int64_t n, T* e);
// Writes e[i] = exp(x[i] - shift) (e may alias x) and returns their sum.
template <class T>
double row_exp_sum(const T* x, T shift, int64_t n, T* e);

}  // namespace iris::cpu
