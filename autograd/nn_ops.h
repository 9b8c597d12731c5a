#pragma once
// Neural-network ops with PyTorch's semantics and argument conventions:
// normalisation, softmax, cross-entropy, embedding, dropout. Each records its
// derivative; undefined (default-constructed) tensors stand for PyTorch's None.
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/rng.h"
#include "core/tensor.h"

namespace iris {

// F.layer_norm: normalises over the trailing dims `normalized_shape` with the
// biased variance; weight and bias (normalized_shape each) may be undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// The pre-LN residual step, fused (one kernel each way): sum = x + residual (same shape,
// dtype and device; no broadcasting) and out = layer_norm(sum, normalized_shape, weight,
// bias, eps). sum is the new residual stream; both are differentiable.
struct AddLayerNormResult {
  Tensor sum, out;
};
AddLayerNormResult add_layer_norm(const Tensor& x, const Tensor& residual,
                                  const Shape& normalized_shape, const Tensor& weight = Tensor(),
                                  const Tensor& bias = Tensor(), double eps = 1e-5);

// F.batch_norm on x [N, C, ...]. training: batch statistics (biased variance),
// and running_mean / running_var (when defined) are updated in place, not on
// the tape: running = (1 - momentum) * running + momentum * batch stat (unbiased
// variance). eval: normalises with the running stats (which must be defined).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  bool training = false, double momentum = 0.1, double eps = 1e-5);

// F.softmax / F.log_softmax along dim (negative dims count from the end).
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// F.cross_entropy with class-index targets: logits [N, C] or [N, C, d1, ...] (or
// [C] with a 0-dim target), target int64 [N] or [N, d1, ...]. Targets equal to
// ignore_index contribute nothing; "mean" divides by the number of the others
// (NaN when there are none, as PyTorch); label_smoothing mixes in the uniform
// distribution over the C classes. reduction: "mean", "sum" or "none".
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, std::string_view reduction = "mean");

// F.embedding: rows of weight [V, D] for ids (int64 or int32, any shape) ->
// [*ids.shape, D]. padding_idx (negative counts from the end, as PyTorch; none
// by default) gets no gradient.
Tensor embedding(const Tensor& weight, const Tensor& ids,
                 std::optional<int64_t> padding_idx = std::nullopt);

// F.dropout: in training, zeroes each element with probability p and scales the
// rest by 1 / (1 - p); the mask comes from Philox with an offset reserved from
// `gen` (the default generator when null), see kernels/dropout.h. Identity when
// !training or p == 0.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* gen = nullptr);

}  // namespace iris
