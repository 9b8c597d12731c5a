#include "nn/layers_norm.h"

#include "autograd/ops.h"
#include "nn/init.h"

namespace iris::nn {

BatchNorm2d::BatchNorm2d(int64_t n, BatchNormOptions opt)
    : Module("BatchNorm2d"), num_features(n), options(opt) {
  IRIS_CHECK(n > 0, "BatchNorm2d: num_features must be positive, got ", n);
  IRIS_CHECK(opt.eps > 0, "BatchNorm2d: eps must be positive, got ", opt.eps);
  IRIS_CHECK(!opt.momentum || (*opt.momentum >= 0 && *opt.momentum <= 1),
             "BatchNorm2d: momentum must be in [0, 1], got ", opt.momentum.value_or(0));
  if (opt.affine) {
    weight = register_parameter("weight", ones({n}));
    bias = register_parameter("bias", zeros({n}));
  }
  if (opt.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({n}));
    running_var = register_buffer("running_var", ones({n}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  IRIS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == num_features, repr(),
             ": expected 4D input [N, ", num_features, ", H, W], got ",
             x.defined() ? x.desc() : "undefined");
  double factor = options.momentum.value_or(0.0);
  if (is_training() && options.track_running_stats) {
    NoGradGuard no_grad;
    const double tracked = num_batches_tracked.item() + 1;
    fill_(num_batches_tracked, tracked);
    if (!options.momentum) factor = 1.0 / tracked;
  }
  const bool batch_stats = is_training() || !options.track_running_stats;
  return batch_norm(x, running_mean, running_var, weight, bias, batch_stats, factor, options.eps);
}

std::string BatchNorm2d::extra_repr() const {
  return detail::cat(num_features, ", eps=", options.eps, ", momentum=",
                     options.momentum ? std::to_string(*options.momentum) : std::string("None"),
                     ", affine=", options.affine ? "true" : "false",
                     ", track_running_stats=", options.track_running_stats ? "true" : "false");
}

LayerNorm::LayerNorm(Shape shape, double e, bool affine, bool with_bias)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), eps(e) {
  IRIS_CHECK(!normalized_shape.empty() && numel_of(normalized_shape) > 0,
             "LayerNorm: normalized_shape ", shape_str(normalized_shape), " must be non-empty");
  if (affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    if (with_bias) bias = register_parameter("bias", zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return detail::cat(shape_str(normalized_shape), ", eps=", eps,
                     ", elementwise_affine=", weight.defined() ? "true" : "false");
}

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad, Generator* gen)
    : Module("Embedding"), num_embeddings(num), embedding_dim(dim) {
  IRIS_CHECK(num > 0 && dim > 0, "Embedding: num_embeddings ", num, " and embedding_dim ", dim,
             " must be positive");
  if (pad) {
    IRIS_CHECK(*pad >= -num && *pad < num, "Embedding: padding_idx ", *pad,
               " must be within num_embeddings ", num);
    padding_idx = *pad < 0 ? *pad + num : *pad;
  }
  weight = register_parameter("weight", empty({num, dim}));
  init::normal_(weight, 0.0, 1.0, gen);
  if (padding_idx) {
    NoGradGuard no_grad;
    zero_(weight.select(0, *padding_idx));
  }
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight, ids, padding_idx); }

std::string Embedding::extra_repr() const {
  std::string s = detail::cat(num_embeddings, ", ", embedding_dim);
  if (padding_idx) s += detail::cat(", padding_idx=", *padding_idx);
  return s;
}

}  // namespace iris::nn
