// softmax, log_softmax and cross_entropy with their derivatives.
#include <string>

#include "autograd/function.h"
#include "autograd/op_util.h"
#include "autograd/nn_ops.h"
#include "autograd/ops.h"
#include "kernels/softmax.h"

namespace iris {

using autograd::dense;
using autograd::view_dense;

using autograd::BackwardCtx;
using autograd::Saved;

namespace {

// These ops also take bf16/f16: the kernels keep max, sums and lse in fp32.
void check_floating_input(const char* op, const Tensor& x) {
  IRIS_CHECK(x.defined(), op, ": undefined input");
  IRIS_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 input, got ", x.desc(),
             " (bfloat16 and float16 are accepted too)");
}

Tensor softmax_op(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_floating_input(name, x);
  dim = wrap_dim(dim, x.dim(), name);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::softmax_forward_table().get(x.device())(dense(x), dim, log, out);
  if (autograd::any_requires_grad({&x}))
    autograd::record(name, {x}, {out}, [Y = Saved(out), dim, log](const BackwardCtx& c) {
      const Tensor& y = Y.get();
      Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
      kernels::softmax_backward_table().get(y.device())(dense(c.grad()), y, dim, log, dx);
      return std::vector<Tensor>{dx};
    });
  return out;
}

enum class Reduction { none, mean, sum };

Reduction parse_reduction(std::string_view r) {
  if (r == "mean") return Reduction::mean;
  if (r == "sum") return Reduction::sum;
  if (r == "none") return Reduction::none;
  IRIS_FAIL("cross_entropy: reduction must be \"mean\", \"sum\" or \"none\", got \"",
            std::string(r), "\"");
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_op(x, dim, true); }

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                     double label_smoothing, std::string_view reduction) {
  check_floating_input("cross_entropy", logits);
  IRIS_CHECK(target.defined() && target.dtype() == DType::i64,
             "cross_entropy: target must be int64 class indices, got ", target.desc());
  IRIS_CHECK(target.device() == logits.device(), "cross_entropy: target ", target.desc(),
             " is not on the device of the logits ", logits.desc());
  const Reduction red = parse_reduction(reduction);
  IRIS_CHECK(label_smoothing >= 0 && label_smoothing <= 1,
             "cross_entropy: label_smoothing must be between 0.0 and 1.0, got ", label_smoothing);
  // [C] with a 0-dim target is one sample; otherwise target is logits without dim 1.
  bool shapes_ok = false;
  if (logits.dim() == 1) {
    shapes_ok = target.dim() == 0;
  } else if (logits.dim() >= 2 && target.dim() == logits.dim() - 1) {
    shapes_ok = target.size(0) == logits.size(0);
    for (int64_t d = 1; d < target.dim(); ++d)
      shapes_ok = shapes_ok && target.size(d) == logits.size(d + 1);
  }
  IRIS_CHECK(shapes_ok, "cross_entropy: target ", target.desc(), " does not fit logits ",
             logits.desc(), " (expected logits [N, C, d1, ...] with target [N, d1, ...])");
  const int64_t N = logits.dim() == 1 ? 1 : logits.size(0);
  const int64_t C = logits.dim() == 1 ? logits.size(0) : logits.size(1);
  int64_t S = 1;
  for (int64_t d = 2; d < logits.dim(); ++d) S *= logits.size(d);
  // 16-bit logits: lse, the count and the mean's sum in float32 (a bf16 count is inexact past
  // 256); the loss itself keeps the logits' dtype.
  const bool half = logits.dtype() == DType::bf16 || logits.dtype() == DType::f16;
  const DType acc_dtype = half ? DType::f32 : logits.dtype();
  Tensor loss = Tensor::empty(target.shape(), logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({N, S}, acc_dtype, logits.device());
  const Tensor logits3 = view_dense(dense(logits), {N, C, S});
  const Tensor target2 = view_dense(dense(target), {N, S});
  kernels::cross_entropy_forward_table().get(logits.device())(
      logits3, target2, ignore_index, label_smoothing, view_dense(loss, {N, S}), lse);
  Tensor out, count;
  {
    NoGradGuard no_grad;
    if (red == Reduction::none) {
      out = loss;
    } else if (red == Reduction::sum) {
      out = sum(loss);
    } else {
      const Tensor ignore =
          Tensor::scalar(static_cast<double>(ignore_index), DType::i64, target.device());
      count = sum(ne(target, ignore).to(acc_dtype));
      // 0 / 0 = NaN when every target is ignored, as PyTorch
      out = div(sum(loss.to(acc_dtype)), count).to(logits.dtype());
    }
  }
  if (autograd::any_requires_grad({&logits}))
    autograd::record(
        "cross_entropy", {logits}, {out},
        [X = Saved(logits3), Target = Saved(target2), lse, count, red, ignore_index,
         label_smoothing, shape = logits.shape(), N, S](const BackwardCtx& c) {
          const Tensor& x = X.get();
          // Per-sample upstream gradient [N, S]: broadcast (stride 0) for the reductions.
          Tensor dloss;
          if (red == Reduction::none) {
            dloss = view_dense(dense(c.grad()), {N, S});
          } else {
            const Tensor g = red == Reduction::mean
                                 ? div(c.grad().to(count.dtype()), count).to(x.dtype())
                                 : dense(c.grad());
            dloss = g.as_strided({N, S}, {0, 0}, g.offset());
          }
          Tensor dx = Tensor::empty(shape, x.dtype(), x.device());
          kernels::cross_entropy_backward_table().get(x.device())(
              x, Target.get(), lse, dloss, ignore_index, label_smoothing, view_dense(dx, x.shape()));
          return std::vector<Tensor>{dx};
        });
  return out;
}

}  // namespace iris
