#include "models/vit.h"

#include "autograd/ops.h"
#include "models/captioner_cnn_rnn.h"
#include "nn/init.h"

namespace iris::models {

void VitConfig::validate(const char* who) const {
  IRIS_CHECK(image_size > 0 && patch > 0 && image_size % patch == 0, who, ": image_size ",
             image_size, " must be a positive multiple of patch ", patch);
  IRIS_CHECK(channels > 0 && depth >= 0 && mlp_dim > 0 && num_classes >= 0, who,
             ": bad sizes (channels ", channels, ", depth ", depth, ", mlp_dim ", mlp_dim,
             ", num_classes ", num_classes, ")");
  IRIS_CHECK(dim > 0 && heads > 0 && dim % heads == 0, who, ": dim ", dim,
             " must be a positive multiple of heads ", heads);
  const int64_t reduce = stem_channels.empty() ? 1 : int64_t{1} << (stem_channels.size() - 1);
  IRIS_CHECK(patch % reduce == 0, who, ": patch ", patch, " must be a multiple of ", reduce,
             " for a stem of ", stem_channels.size(), " stages");
  for (int64_t c : stem_channels)
    IRIS_CHECK(c > 0, who, ": stem channels must be positive, got ", c);
}

ViT::ViT(const VitConfig& cfg, Generator* gen) : Module("ViT"), config(cfg) {
  config.validate("ViT");
  const int64_t D = config.dim;
  // torch registers patch before cls/pos; state_dict lists own parameters first either way.
  cls = register_parameter("cls", zeros({1, 1, D}));
  pos = register_parameter(
      "pos", randn({1, config.num_patches() + 1, D}, DType::f32, Device::cpu(), gen) * 0.02);
  int64_t patch_in = config.channels, patch_size = config.patch;
  if (!config.stem_channels.empty()) {
    stem = register_module("stem", make_conv_stages(config.channels, config.stem_channels, gen, 1));
    patch_in = config.stem_channels.back();
    patch_size = config.patch >> (config.stem_channels.size() - 1);
  }
  patch =
      register_module("patch", std::make_shared<nn::PatchEmbedding>(patch_in, D, patch_size, gen));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < config.depth; ++i)
    blocks->push_back(
        std::make_shared<nn::TransformerBlock>(D, config.heads, config.mlp_dim, false, false, gen));
  ln = register_module("ln", std::make_shared<nn::LayerNorm>(D));
  if (config.num_classes > 0)
    head = register_module("head", std::make_shared<nn::Linear>(D, config.num_classes, true, gen));
}

Tensor ViT::forward(const Tensor& images) {
  IRIS_CHECK(images.defined() && images.dim() == 4 && images.size(1) == config.channels &&
                 images.size(2) == config.image_size && images.size(3) == config.image_size,
             "ViT: expected images [B, ", config.channels, ", ", config.image_size, ", ",
             config.image_size, "], got ", images.defined() ? images.desc() : "undefined");
  const int64_t B = images.size(0), D = config.dim;
  Tensor x = patch->forward(stem ? stem->forward(images) : images);  // [B, N, D]
  x = cat({cls.expand({B, 1, D}), x}, 1) + pos;
  for (size_t i = 0; i < blocks->size(); ++i) x = block(i).forward(x);
  return ln->forward(x);
}

Tensor ViT::classify(const Tensor& images) {
  IRIS_CHECK(head != nullptr, "ViT::classify: this ViT has no classifier head (num_classes = 0)");
  return head->forward(forward(images).select(1, 0));
}

std::string ViT::extra_repr() const {
  return detail::cat("image_size=", config.image_size, ", patch=", config.patch,
                     ", dim=", config.dim, ", depth=", config.depth, ", heads=", config.heads,
                     ", mlp_dim=", config.mlp_dim, ", num_classes=", config.num_classes,
                     ", stem_stages=", config.stem_channels.size());
}

}  // namespace iris::models
