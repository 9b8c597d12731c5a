#pragma once
// Layer norm and batch norm kernels (any device). Inputs arrive dense and
// row-major from the op layer; statistics are kept in the input's dtype
// (float32 for bf16/fp16 inputs).
#include <cstdint>
#include <initializer_list>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

// x [M, N]; weight, bias [N] or undefined; writes out [M, N] and the per-row
// statistics mean [M] and rstd [M] = 1 / sqrt(biased var + eps).
IRIS_DECLARE_KERNEL(layer_norm_forward,
                    void(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                         const Tensor& out, const Tensor& mean, const Tensor& rstd));
// dy, x [M, N]; mean, rstd [M] from the forward; weight [N] or undefined.
// dx [M, N], dweight [N], dbias [N] are outputs, each undefined when not wanted.
// dweight/dbias are reduced in a fixed order: the result does not depend on the thread count.
IRIS_DECLARE_KERNEL(layer_norm_backward,
                    void(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias));
// The fused pre-LN residual step: s = x + residual (x, residual, s [M, N]; s rounded to the
// dtype, as a separate add would) and out = layer_norm(s), in one pass set per row.
IRIS_DECLARE_KERNEL(add_layer_norm_forward,
                    void(const Tensor& x, const Tensor& residual, const Tensor& weight,
                         const Tensor& bias, double eps, const Tensor& sum, const Tensor& out,
                         const Tensor& mean, const Tensor& rstd));
// Its backward: s [M, N] and mean, rstd from the forward; dy (of out) and ds (of sum) [M, N],
// each undefined when absent. dx = ds + d layer_norm(dy) serves x and residual alike;
// dweight/dbias as layer_norm_backward. dx, dweight, dbias undefined when not wanted.
IRIS_DECLARE_KERNEL(add_layer_norm_backward,
                    void(const Tensor& dy, const Tensor& ds, const Tensor& sum, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight, const Tensor& dx,
                         const Tensor& dweight, const Tensor& dbias));
// add_layer_norm_backward when dy is absent, for every backend: dx = ds (zeros when ds is
// absent too), dweight = dbias = 0.
void add_layer_norm_backward_without_dy(const Tensor& ds, const Tensor& dx, const Tensor& dweight,
                                        const Tensor& dbias);

// x [N, C, S] (S: the spatial dims flattened, 1 for [N, C] inputs); weight, bias,
// running_mean, running_var [C] or undefined (running stats may be strided).
// training: normalises with the batch mean and biased variance and, when the
// running stats are defined, blends them in place (PyTorch's rule: running =
// momentum * batch + (1 - momentum) * running, with the unbiased variance).
// eval: normalises with the running stats. Either way save_mean and
// save_invstd [C] receive the mean and 1 / sqrt(var + eps) that were used.
IRIS_DECLARE_KERNEL(batch_norm_forward,
                    void(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& running_mean, const Tensor& running_var, bool training,
                         double momentum, double eps, const Tensor& out, const Tensor& save_mean,
                         const Tensor& save_invstd));
// dy, x [N, C, S]; save_mean, save_invstd [C] from the forward; weight [C] or
// undefined. training: the batch statistics are functions of x (full
// derivative); eval: they are constants. dx, dweight, dbias undefined when not wanted.
IRIS_DECLARE_KERNEL(batch_norm_backward,
                    void(const Tensor& dy, const Tensor& x, const Tensor& save_mean,
                         const Tensor& save_invstd, const Tensor& weight, bool training,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias));
// The dtype of batch norm's per-channel tensors (weight, bias, running stats and their
// gradients), for both backends: every defined one shares it (float32 for a bf16/f16 input
// in PyTorch's mixed case); the input's when none is defined.
inline DType batch_norm_param_dtype(const char* op, DType x_dt,
                                    std::initializer_list<const Tensor*> ps) {
  const Tensor* first = nullptr;
  for (const Tensor* p : ps) {
    if (!p->defined()) continue;
    if (!first) first = p;
    IRIS_CHECK(p->dtype() == first->dtype(), op, ": parameters ", first->desc(), " and ", p->desc(),
               " differ in dtype");
  }
  return first ? first->dtype() : x_dt;
}

}  // namespace iris::kernels
