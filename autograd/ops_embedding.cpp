// embedding and dropout with their derivatives.
#include "autograd/function.h"
#include "autograd/nn_ops.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"

namespace iris {

using autograd::dense;
using autograd::view_dense;

using autograd::BackwardCtx;
using autograd::Saved;

Tensor embedding(const Tensor& weight, const Tensor& ids, std::optional<int64_t> padding_idx) {
  IRIS_CHECK(weight.defined() && ids.defined(), "embedding: undefined weight or ids");
  IRIS_CHECK(weight.dim() == 2 && is_floating(weight.dtype()),
             "embedding: weight must be a floating [V, D] matrix (float32, float64, bfloat16 or "
             "float16), got ",
             weight.desc());
  IRIS_CHECK(ids.dtype() == DType::i64 || ids.dtype() == DType::i32,
             "embedding: ids must be int64 or int32, got ", ids.desc());
  IRIS_CHECK(ids.device() == weight.device(), "embedding: ids ", ids.desc(),
             " are not on the device of the weight ", weight.desc());
  const int64_t V = weight.size(0), D = weight.size(1), n = ids.numel();
  int64_t pad = -1;
  if (padding_idx) {
    IRIS_CHECK(*padding_idx >= -V && *padding_idx < V, "embedding: padding_idx ", *padding_idx,
               " must be within the ", V, " rows of the weight ", weight.desc());
    pad = *padding_idx < 0 ? *padding_idx + V : *padding_idx;
  }
  Shape out_shape = ids.shape();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape, weight.dtype(), weight.device());
  const Tensor ids_d = dense(ids);
  kernels::embedding_forward_table().get(weight.device())(dense(weight), ids_d,
                                                          view_dense(out, {n, D}));
  if (autograd::any_requires_grad({&weight}))
    autograd::record("embedding", {weight}, {out},
                     [Ids = Saved(ids_d), pad, V, D, n, dt = weight.dtype()](const BackwardCtx& c) {
                       const Tensor& ids = Ids.get();
                       Tensor dweight = Tensor::empty({V, D}, dt, ids.device());
                       kernels::embedding_backward_table().get(ids.device())(
                           view_dense(dense(c.grad()), {n, D}), ids, pad, dweight);
                       return std::vector<Tensor>{dweight};
                     });
  return out;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  IRIS_CHECK(x.defined(), "dropout: undefined input");
  IRIS_CHECK(p >= 0 && p <= 1, "dropout: probability has to be between 0 and 1, but got ", p,
             " (input ", x.desc(), ")");
  if (!training || p == 0) return x;
  Generator& g = gen ? *gen : default_generator();
  const uint64_t seed = g.seed();
  const uint64_t offset = g.reserve(static_cast<uint64_t>(x.numel()));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::dropout_apply_table().get(x.device())(dense(x), p, seed, offset, out);
  if (autograd::any_requires_grad({&x}))
    autograd::record("dropout", {x}, {out}, [p, seed, offset](const BackwardCtx& c) {
      // The same mask, regenerated from (seed, offset) rather than stored.
      const Tensor& dy = c.grad();
      Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
      kernels::dropout_apply_table().get(dy.device())(dense(dy), p, seed, offset, dx);
      return std::vector<Tensor>{dx};
    });
  return out;
}

}  // namespace iris
