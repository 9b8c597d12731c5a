#pragma once
// Losses with torch.nn.functional's semantics, composed from differentiable ops.
// reduction: "mean", "sum" or "none".
#include <cstdint>
#include <string_view>

#include "core/tensor.h"

namespace iris::nn {

struct CrossEntropyOptions {
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  std::string_view reduction = "mean";
};
// F.cross_entropy with class-index targets (see iris::cross_entropy for the shapes).
Tensor cross_entropy_loss(const Tensor& logits, const Tensor& target,
                          const CrossEntropyOptions& opt = {});

// F.mse_loss: (input - target)^2, target broadcast to the input.
Tensor mse_loss(const Tensor& input, const Tensor& target, std::string_view reduction = "mean");

// F.binary_cross_entropy_with_logits in its stable form:
// (1 - y) x + w_pos (log1p(exp(-|x|)) + max(-x, 0)), w_pos = 1 + (pos_weight - 1) y, times
// weight. weight broadcasts to the input; pos_weight to its last dim. Undefined = none.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = Tensor(),
                                        const Tensor& pos_weight = Tensor(),
                                        std::string_view reduction = "mean");

// CLIP's logits: scale * image @ text^T with scale = min(exp(logit_scale), max_scale);
// image [N, D], text [N, D] (normalise them first, as CLIP does), logit_scale a 0-dim or
// [1] learnable log-temperature (CLIP starts it at log(1 / 0.07)). Returns [N, N].
Tensor clip_logits(const Tensor& image, const Tensor& text, const Tensor& logit_scale,
                   double max_scale = 100.0);
// Symmetric InfoNCE: the mean of cross-entropy over rows (image -> text) and over columns
// (text -> image), pair i matching pair i.
// matches (optional, on the CPU: labels the host builds, checked there without a device
// sync; [N, N] of 0/1 with ones on the diagonal): 1 where text j also describes
// image i (a caption written for several images of the batch). Each row's and column's
// target then spreads evenly over its matches instead of pushing them apart as negatives.
// With matches, text may hold M != N captions ([M, D], e.g. all captions of each image):
// matches is then [N, M] and every image and every text needs at least one match; the loss
// is the mean over the N rows and the mean over the M columns, halved.
Tensor clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale,
                 double max_scale = 100.0, const Tensor& matches = Tensor());

}  // namespace iris::nn
