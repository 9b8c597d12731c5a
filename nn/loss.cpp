#include "nn/loss.h"

#include "autograd/ops.h"

namespace iris::nn {
namespace {

std::string describe(const Tensor& t) { return t.defined() ? t.desc() : "undefined"; }

Tensor reduce(const char* op, const Tensor& loss, std::string_view reduction) {
  if (reduction == "mean") return mean(loss);
  if (reduction == "sum") return sum(loss);
  if (reduction == "none") return loss;
  IRIS_FAIL(op, ": reduction must be 'mean', 'sum' or 'none', got '", reduction, "'");
}

void check_reduction(const char* op, std::string_view reduction) {
  IRIS_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none", op,
             ": reduction must be 'mean', 'sum' or 'none', got '", reduction, "'");
}

}  // namespace

Tensor cross_entropy_loss(const Tensor& logits, const Tensor& target,
                          const CrossEntropyOptions& opt) {
  return cross_entropy(logits, target, opt.ignore_index, opt.label_smoothing, opt.reduction);
}

Tensor mse_loss(const Tensor& input, const Tensor& target, std::string_view reduction) {
  check_reduction("mse_loss", reduction);
  IRIS_CHECK(input.defined() && target.defined() && is_floating(input.dtype()) &&
                 input.dtype() == target.dtype(),
             "mse_loss: input ", describe(input), " and target ", describe(target),
             " must be floating-point tensors of one dtype");
  return reduce("mse_loss", square(input - target), reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight, const Tensor& pos_weight,
                                        std::string_view reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  check_reduction(op, reduction);
  IRIS_CHECK(input.defined() && target.defined() && is_floating(input.dtype()) &&
                 input.dtype() == target.dtype(),
             op, ": input ", describe(input), " and target ", describe(target),
             " must be floating-point tensors of one dtype");
  IRIS_CHECK(input.shape() == target.shape(), op, ": target size ", shape_str(target.shape()),
             " must be the same as input size ", shape_str(input.shape()));
  // max(-x, 0) written as (|x| - x) / 2: at x = 0 the subgradients (abs' = 0) then give
  // the true derivative sigmoid(0) - y, which relu(-x) would not.
  const Tensor softplus_neg = log1p(exp(-abs(input))) + (abs(input) - input) * 0.5;
  Tensor loss;
  if (pos_weight.defined()) {
    const Tensor log_weight = (pos_weight - 1.0) * target + 1.0;
    loss = (1.0 - target) * input + log_weight * softplus_neg;
  } else {
    loss = (1.0 - target) * input + softplus_neg;
  }
  if (weight.defined()) loss = loss * weight;
  return reduce(op, loss, reduction);
}

Tensor clip_logits(const Tensor& image, const Tensor& text, const Tensor& logit_scale,
                   double max_scale) {
  IRIS_CHECK(image.defined() && text.defined() && image.dim() == 2 && text.dim() == 2 &&
                 image.size(1) == text.size(1),
             "clip_logits: expected image [N, D] and text [M, D], got ", describe(image), ", ",
             describe(text));
  IRIS_CHECK(logit_scale.defined() && logit_scale.numel() == 1, "clip_logits: logit_scale ",
             describe(logit_scale), " must hold one value");
  const Tensor scale = clamp(exp(logit_scale.reshape({})), std::nullopt, max_scale);
  return scale * matmul(image, text.t());
}

Tensor clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale,
                 double max_scale, const Tensor& matches) {
  IRIS_CHECK(image.defined() && text.defined() && image.dim() == 2 && text.dim() == 2 &&
                 image.size(1) == text.size(1) &&
                 (image.size(0) == text.size(0) || matches.defined()),
             "clip_loss: expected image and text embeddings [N, D] of one shape (or [N, D] and "
             "[M, D] with matches), got ",
             describe(image), ", ", describe(text));
  const Tensor logits = clip_logits(image, text, logit_scale, max_scale);
  const int64_t N = image.size(0), M = text.size(0);
  if (!matches.defined()) {
    const Tensor labels = arange(N, DType::i64, image.device());
    return (cross_entropy(logits, labels) + cross_entropy(logits.t(), labels)) * 0.5;
  }
  IRIS_CHECK(matches.shape() == Shape({N, M}) && matches.device().is_cpu(), "clip_loss: matches ",
             describe(matches), " must be [", N, ", ", M, "] on the CPU for ", N, " images and ", M,
             " texts");
  const auto values = matches.to(DType::f64).to_vector<double>();
  if (N == M) {
    for (int64_t i = 0; i < N; ++i)
      IRIS_CHECK(values[i * N + i] == 1.0, "clip_loss: matches[", i, ", ", i,
                 "] must be 1 (pair i always matches)");
  } else {
    std::vector<double> rows(N, 0.0), cols(M, 0.0);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < M; ++j) rows[i] += values[i * M + j], cols[j] += values[i * M + j];
    for (int64_t i = 0; i < N; ++i)
      IRIS_CHECK(rows[i] > 0, "clip_loss: image ", i, " matches none of the ", M, " texts");
    for (int64_t j = 0; j < M; ++j)
      IRIS_CHECK(cols[j] > 0, "clip_loss: text ", j, " matches none of the ", N, " images");
  }
  const Tensor m = matches.detach().to(logits.dtype()).to(logits.device());
  const Tensor rows = m / sum(m, {1}, true), cols = m / sum(m, {0}, true);
  const Tensor i2t = sum(rows * log_softmax(logits, 1)), t2i = sum(cols * log_softmax(logits, 0));
  return i2t * (-0.5 / static_cast<double>(N)) + t2i * (-0.5 / static_cast<double>(M));
}

}  // namespace iris::nn
