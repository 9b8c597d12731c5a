#pragma once
// BatchNorm2d, LayerNorm and Embedding (torch.nn semantics, parameter and buffer names).
#include <cstdint>
#include <optional>

#include "core/rng.h"
#include "nn/module.h"

namespace iris::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  // Running-stat update factor; nullopt = cumulative average (1 / num_batches_tracked).
  std::optional<double> momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

// Parameters weight (ones) and bias (zeros) when affine; buffers running_mean (zeros),
// running_var (ones) and num_batches_tracked (int64, 0-dim) when tracking. Training mode
// normalises with batch statistics and updates the running ones; eval mode uses the
// running ones (batch statistics when not tracking).
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions opt = {});
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t num_features;
  BatchNormOptions options;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};

// Normalises over the trailing dims `normalized_shape`; weight ones, bias zeros.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     bool bias = true);
  explicit LayerNorm(int64_t dim, double eps = 1e-5) : LayerNorm(Shape{dim}, eps) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  Shape normalized_shape;
  double eps;
  Tensor weight, bias;
};

// Rows of weight [num_embeddings, embedding_dim] ~ N(0, 1); the padding_idx row (negative
// counts from the end) starts at zero and gets no gradient.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim,
            std::optional<int64_t> padding_idx = std::nullopt, Generator* gen = nullptr);
  Tensor forward(const Tensor& ids) override;
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;  // stored non-negative
  Tensor weight;
};

}  // namespace iris::nn
