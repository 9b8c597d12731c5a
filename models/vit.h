#pragma once
// The Vision Transformer of torch_ref.py (class ViT): a patch convolution, a class token,
// learned position embeddings, pre-LN Transformer blocks and a final LayerNorm; plus an
// optional classifier head on the class token. Parameter names are torch's: patch.weight,
// patch.bias, cls, pos, blocks.<i>.*, ln.*, [head.*].
// Optionally a hybrid (as the ViT paper's hybrid models): a small conv stem, stem.*, whose
// first stage keeps full resolution, ahead of the patch convolution. Small objects a few
// pixels wide are slow to learn through a linear patch projection alone; the stem learns
// them within a few epochs. Without stem_channels the model is torch_ref's ViT exactly.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "nn/layers.h"

namespace iris::models {

// Defaults: ViT-B/16 at 224x224 (torch_ref.vit_b16()).
struct VitConfig {
  int64_t image_size = 224;
  int64_t patch = 16;
  int64_t channels = 3;
  int64_t dim = 768;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp_dim = 3072;
  int64_t num_classes = 0;  // > 0 adds head = Linear(dim, num_classes) on the class token
  // Conv stem stages (models::make_conv_stages, the first with stride 1): empty for none.
  // The patch convolution then covers patch / 2^(stages - 1) stem pixels.
  std::vector<int64_t> stem_channels;

  int64_t num_patches() const { return (image_size / patch) * (image_size / patch); }
  // Throws naming `who` when the sizes do not fit together.
  void validate(const char* who) const;
  template <class V>
  void visit(V&& v) {
    v("image_size", image_size);
    v("patch", patch);
    v("channels", channels);
    v("dim", dim);
    v("depth", depth);
    v("heads", heads);
    v("mlp_dim", mlp_dim);
    v("num_classes", num_classes);
    v("stem_channels", stem_channels);
  }
};

class ViT : public nn::Module {
 public:
  explicit ViT(const VitConfig& config = {}, Generator* gen = nullptr);
  // images [B, channels, image_size, image_size] -> tokens [B, 1 + num_patches, dim], the
  // class token first, after the final LayerNorm.
  Tensor forward(const Tensor& images) override;
  // head(forward(images)[:, 0]) -> [B, num_classes]; needs num_classes > 0.
  Tensor classify(const Tensor& images);
  std::string extra_repr() const override;

  VitConfig config;
  Tensor cls, pos;  // [1, 1, dim] (zeros), [1, 1 + num_patches, dim] (N(0, 0.02^2))
  std::shared_ptr<nn::Sequential> stem;  // null without stem_channels
  std::shared_ptr<nn::PatchEmbedding> patch;
  std::shared_ptr<nn::ModuleList> blocks;  // TransformerBlock(dim, heads, mlp_dim)
  std::shared_ptr<nn::LayerNorm> ln;
  std::shared_ptr<nn::Linear> head;  // null when num_classes == 0

  nn::TransformerBlock& block(size_t i) const { return blocks->at<nn::TransformerBlock>(i); }
};

}  // namespace iris::models
