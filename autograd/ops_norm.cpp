// layer_norm, add_layer_norm (a residual add, then layer norm) and batch_norm with their
// derivatives (fused kernels both ways).
#include <initializer_list>
#include <optional>

#include "autograd/function.h"
#include "autograd/nn_ops.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/norm.h"

namespace iris {

using autograd::dense;
using autograd::view_dense;

using autograd::BackwardCtx;
using autograd::Saved;

namespace {

// An optional affine parameter: undefined, or `shape` with dtype `dt` (the input's unless
// given) on the input's device.
void check_param(const char* op, const char* name, const Tensor& p, const Shape& shape,
                 const Tensor& x, std::optional<DType> dt = std::nullopt) {
  if (!p.defined()) return;
  IRIS_CHECK(p.shape() == shape, op, ": ", name, " ", p.desc(), " should have shape ",
             shape_str(shape), " for input ", x.desc());
  IRIS_CHECK(p.dtype() == dt.value_or(x.dtype()) && p.device() == x.device(), op, ": ", name, " ",
             p.desc(), " does not match the input ", x.desc());
}

// layer_norm and batch_norm also take bf16/f16 inputs; their statistics are float32.
DType check_layer_norm_input(const Tensor& x, const char* op = "layer_norm") {
  IRIS_CHECK(x.defined(), op, ": undefined input");
  IRIS_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 input, got ", x.desc(),
             " (bfloat16 and float16 are accepted too)");
  return x.dtype() == DType::bf16 || x.dtype() == DType::f16 ? DType::f32 : x.dtype();
}

// The dtype batch_norm's per-channel parameters must share, as PyTorch: the input's, or
// float32 for a bf16/f16 input whose first defined parameter is float32.
DType batch_norm_param_dtype(const Tensor& x, std::initializer_list<const Tensor*> ps) {
  const bool half = x.dtype() == DType::bf16 || x.dtype() == DType::f16;
  for (const Tensor* p : ps)
    if (p->defined()) return half && p->dtype() == DType::f32 ? DType::f32 : x.dtype();
  return x.dtype();
}

// The rows [M, N] of a layer norm of x over normalized_shape, after checking the arguments.
struct LayerNormRows {
  int64_t M, N;
};
LayerNormRows check_layer_norm(const char* op, const Tensor& x, const Shape& normalized_shape,
                               const Tensor& weight, const Tensor& bias) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  IRIS_CHECK(k >= 1, op, ": normalized_shape must have at least one dim, got []");
  IRIS_CHECK(x.dim() >= k && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape, op,
             ": normalized_shape ", shape_str(normalized_shape),
             " does not match the trailing dims of the input ", x.desc());
  check_param(op, "weight", weight, normalized_shape, x);
  check_param(op, "bias", bias, normalized_shape, x);
  int64_t M = 1;
  for (int64_t d = 0; d < x.dim() - k; ++d) M *= x.size(d);
  return {M, numel_of(normalized_shape)};
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const DType stats_dtype = check_layer_norm_input(x);
  const LayerNormRows rows = check_layer_norm("layer_norm", x, normalized_shape, weight, bias);
  const int64_t M = rows.M, N = rows.N;
  const Tensor x2 = view_dense(dense(x), {M, N});
  const Tensor w1 = weight.defined() ? view_dense(dense(weight), {N}) : Tensor();
  const Tensor b1 = bias.defined() ? view_dense(dense(bias), {N}) : Tensor();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({M}, stats_dtype, x.device());
  Tensor rstd = Tensor::empty({M}, stats_dtype, x.device());
  kernels::layer_norm_forward_table().get(x.device())(x2, w1, b1, eps, view_dense(out, {M, N}),
                                                      mean, rstd);
  if (autograd::any_requires_grad({&x, &weight, &bias}))
    autograd::record("layer_norm", {x, weight, bias}, {out},
                     [X = Saved(x2), W = Saved(w1), mean, rstd, xs = x.shape(),
                      ns = normalized_shape, M, N](const BackwardCtx& c) {
                       const Tensor& x2 = X.get();
                       const Tensor dy = view_dense(dense(c.grad()), {M, N});
                       Tensor dx, dw, db;
                       if (c.need(0)) dx = Tensor::empty(xs, x2.dtype(), x2.device());
                       if (c.need(1)) dw = Tensor::empty(ns, x2.dtype(), x2.device());
                       if (c.need(2)) db = Tensor::empty(ns, x2.dtype(), x2.device());
                       kernels::layer_norm_backward_table().get(x2.device())(
                           dy, x2, mean, rstd, W.get(),
                           dx.defined() ? view_dense(dx, {M, N}) : Tensor(),
                           dw.defined() ? view_dense(dw, {N}) : Tensor(),
                           db.defined() ? view_dense(db, {N}) : Tensor());
                       return std::vector<Tensor>{dx, dw, db};
                     });
  return out;
}

AddLayerNormResult add_layer_norm(const Tensor& x, const Tensor& residual,
                                  const Shape& normalized_shape, const Tensor& weight,
                                  const Tensor& bias, double eps) {
  const char* op = "add_layer_norm";
  const DType stats_dtype = check_layer_norm_input(x, op);
  IRIS_CHECK(residual.defined(), op, ": undefined residual (input ", x.desc(), ")");
  IRIS_CHECK(residual.shape() == x.shape() && residual.dtype() == x.dtype() &&
                 residual.device() == x.device(),
             op, ": residual ", residual.desc(), " does not match the input ", x.desc());
  const LayerNormRows rows = check_layer_norm(op, x, normalized_shape, weight, bias);
  const int64_t M = rows.M, N = rows.N;
  const Tensor x2 = view_dense(dense(x), {M, N});
  const Tensor r2 = view_dense(dense(residual), {M, N});
  const Tensor w1 = weight.defined() ? view_dense(dense(weight), {N}) : Tensor();
  const Tensor b1 = bias.defined() ? view_dense(dense(bias), {N}) : Tensor();
  Tensor sum = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({M}, stats_dtype, x.device());
  Tensor rstd = Tensor::empty({M}, stats_dtype, x.device());
  const Tensor s2 = view_dense(sum, {M, N});
  kernels::add_layer_norm_forward_table().get(x.device())(x2, r2, w1, b1, eps, s2,
                                                          view_dense(out, {M, N}), mean, rstd);
  if (autograd::any_requires_grad({&x, &residual, &weight, &bias}))
    autograd::record(
        op, {x, residual, weight, bias}, {sum, out},
        [S = Saved(s2), W = Saved(w1), mean, rstd, xs = x.shape(), ns = normalized_shape, M,
         N](const BackwardCtx& c) {
          const Tensor& s2 = S.get();
          const Tensor ds = view_dense(dense(c.grad(0)), {M, N});
          const Tensor dy = view_dense(dense(c.grad(1)), {M, N});
          Tensor dx, dw, db;
          // x and residual share one gradient, ds + d layer_norm(dy).
          if (c.need(0) || c.need(1)) dx = Tensor::empty(xs, s2.dtype(), s2.device());
          if (c.need(2)) dw = Tensor::empty(ns, s2.dtype(), s2.device());
          if (c.need(3)) db = Tensor::empty(ns, s2.dtype(), s2.device());
          kernels::add_layer_norm_backward_table().get(s2.device())(
              dy, ds, s2, mean, rstd, W.get(), dx.defined() ? view_dense(dx, {M, N}) : Tensor(),
              dw.defined() ? view_dense(dw, {N}) : Tensor(),
              db.defined() ? view_dense(db, {N}) : Tensor());
          return std::vector<Tensor>{c.need(0) ? dx : Tensor(), c.need(1) ? dx : Tensor(), dw, db};
        });
  return {sum, out};
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  // bf16/f16 inputs too (float32 statistics, as layer_norm).
  const DType stats_dtype = check_layer_norm_input(x, "batch_norm");
  IRIS_CHECK(x.dim() >= 2, "batch_norm: expected an input [N, C, ...], got ", x.desc());
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t S = N * C == 0 ? 0 : x.numel() / (N * C);
  const DType param_dtype =
      batch_norm_param_dtype(x, {&weight, &bias, &running_mean, &running_var});
  check_param("batch_norm", "weight", weight, {C}, x, param_dtype);
  check_param("batch_norm", "bias", bias, {C}, x, param_dtype);
  check_param("batch_norm", "running_mean", running_mean, {C}, x, param_dtype);
  check_param("batch_norm", "running_var", running_var, {C}, x, param_dtype);
  IRIS_CHECK(training || (running_mean.defined() && running_var.defined()),
             "batch_norm: running_mean and running_var must be defined in eval mode (input ",
             x.desc(), ")");
  IRIS_CHECK(!training || N * S != 1,
             "batch_norm: expected more than 1 value per channel when training, got input ",
             x.desc());
  const Tensor x3 = view_dense(dense(x), {N, C, S});
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor save_mean = Tensor::empty({C}, stats_dtype, x.device());
  Tensor save_invstd = Tensor::empty({C}, stats_dtype, x.device());
  kernels::batch_norm_forward_table().get(x.device())(
      x3, weight, bias, running_mean, running_var, training, momentum, eps,
      view_dense(out, {N, C, S}), save_mean, save_invstd);
  if (training) {  // the running stats were written in place: invalidate saved copies of them
    if (running_mean.defined()) running_mean.bump_version();
    if (running_var.defined()) running_var.bump_version();
  }
  if (autograd::any_requires_grad({&x, &weight, &bias}))
    autograd::record("batch_norm", {x, weight, bias}, {out},
                     [X = Saved(x3), W = Saved(weight), save_mean, save_invstd, training,
                      xs = x.shape(), N, C, S, param_dtype](const BackwardCtx& c) {
                       const Tensor& x3 = X.get();
                       const Tensor dy = view_dense(dense(c.grad()), {N, C, S});
                       Tensor dx, dw, db;
                       if (c.need(0)) dx = Tensor::empty(xs, x3.dtype(), x3.device());
                       if (c.need(1)) dw = Tensor::empty({C}, param_dtype, x3.device());
                       if (c.need(2)) db = Tensor::empty({C}, param_dtype, x3.device());
                       kernels::batch_norm_backward_table().get(x3.device())(
                           dy, x3, save_mean, save_invstd, W.get(), training,
                           dx.defined() ? view_dense(dx, {N, C, S}) : Tensor(), dw, db);
                       return std::vector<Tensor>{dx, dw, db};
                     });
  return out;
}

}  // namespace iris
