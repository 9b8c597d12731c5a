#include "models/vqa.h"

#include "autograd/ops.h"
#include "models/captioner_cnn_rnn.h"

namespace iris::models {
namespace {

// lengths + offset, as int64 [B] (undefined stays undefined).
Tensor shifted(const Tensor& lengths, int64_t offset) {
  if (!lengths.defined()) return lengths;
  std::vector<int64_t> l = lengths.to_vector<int64_t>();
  for (int64_t& v : l) v += offset;
  return Tensor::from_vector(l, {static_cast<int64_t>(l.size())});
}

}  // namespace

int64_t FusionConfig::image_tokens() const {
  if (image_encoder == "vit") return (image_size / patch) * (image_size / patch) + 1;
  int64_t side = image_size;
  for (size_t i = 0; i < cnn_channels.size(); ++i)
    if (i > 0 || cnn_first_stride == 2) side = (side + 1) / 2;  // conv s2, pad 1
  return side * side;
}

void FusionConfig::validate() const {
  IRIS_CHECK(fusion == "early" || fusion == "late" || fusion == "xattn" || fusion == "image-only" ||
                 fusion == "text-only",
             "FusionVqa: fusion must be early, late, xattn, image-only or text-only, got '", fusion,
             "'");
  IRIS_CHECK(image_encoder == "cnn" || image_encoder == "vit",
             "FusionVqa: image_encoder must be cnn or vit, got '", image_encoder, "'");
  IRIS_CHECK(text_encoder == "lstm" || text_encoder == "transformer",
             "FusionVqa: text_encoder must be lstm or transformer, got '", text_encoder, "'");
  IRIS_CHECK(image_size > 0 && dim > 0 && heads > 0 && dim % heads == 0 && mlp_dim > 0 &&
                 vocab > 0 && max_question_len > 0 && text_depth >= 1 && fusion_depth >= 0 &&
                 num_answers > 0,
             "FusionVqa: bad sizes (image_size ", image_size, ", dim ", dim, ", heads ", heads,
             ", mlp_dim ", mlp_dim, ", vocab ", vocab, ", max_question_len ", max_question_len,
             ", text_depth ", text_depth, ", fusion_depth ", fusion_depth, ", num_answers ",
             num_answers, ")");
  if (image_encoder == "cnn")
    IRIS_CHECK(!cnn_channels.empty() && (cnn_first_stride == 1 || cnn_first_stride == 2),
               "FusionVqa: the cnn image encoder needs cnn_channels and cnn_first_stride 1 or 2, "
               "got ",
               cnn_channels.size(), " stages and stride ", cnn_first_stride);
}

FusionVqa::FusionVqa(const FusionConfig& cfg, Generator* gen) : Module("FusionVqa"), config(cfg) {
  config.validate();
  const int64_t D = config.dim, M = config.image_tokens();
  if (config.uses_image() && config.image_encoder == "cnn") {
    img_pos =
        register_parameter("img_pos", randn({1, M, D}, DType::f32, Device::cpu(), gen) * 0.02);
    cnn = register_module("cnn",
                          make_conv_stages(3, config.cnn_channels, gen, config.cnn_first_stride));
    img_proj = register_module(
        "img_proj", std::make_shared<nn::Linear>(config.cnn_channels.back(), D, true, gen));
  } else if (config.uses_image()) {
    VitConfig v;
    v.image_size = config.image_size;
    v.patch = config.patch;
    v.dim = D;
    v.depth = config.vit_depth;
    v.stem_channels = config.vit_stem_channels;
    v.heads = config.heads;
    v.mlp_dim = config.mlp_dim;
    vit = register_module("vit", std::make_shared<ViT>(v, gen));
  }
  if (config.uses_text() && config.text_encoder == "lstm") {
    emb =
        register_module("emb", std::make_shared<nn::Embedding>(config.vocab, D, std::nullopt, gen));
    nn::RnnOptions ro;
    ro.num_layers = config.text_depth;
    ro.batch_first = true;
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(D, D, ro, gen));
  } else if (config.uses_text()) {
    TextEncoderConfig t;
    t.vocab = config.vocab;
    t.max_len = config.max_question_len;
    t.dim = D;
    t.depth = config.text_depth;
    t.heads = config.heads;
    t.mlp_dim = config.mlp_dim;
    t.pool = "mean";
    text = register_module("text", std::make_shared<TextEncoder>(t, gen));
  }
  if (config.fusion == "early")
    type_emb = register_parameter("type_emb", randn({2, D}, DType::f32, Device::cpu(), gen) * 0.02);
  if (config.fusion != "late") {
    blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < config.fusion_depth; ++i)
      blocks->push_back(std::make_shared<nn::TransformerBlock>(
          D, config.heads, config.mlp_dim, config.fusion == "xattn", false, gen));
    ln = register_module("ln", std::make_shared<nn::LayerNorm>(D));
  }
  const int64_t F = config.fusion == "late" ? 3 * D : D;
  classifier = register_module(
      "classifier",
      std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
          std::make_shared<nn::Linear>(F, config.mlp_dim, true, gen), std::make_shared<nn::GELU>(),
          std::make_shared<nn::Linear>(config.mlp_dim, config.num_answers, true, gen)}));
}

Tensor FusionVqa::image_tokens(const Tensor& images) {
  IRIS_CHECK(config.uses_image(), "FusionVqa: the ", config.fusion, " model has no image encoder");
  if (vit) return vit->forward(images);
  IRIS_CHECK(images.defined() && images.dim() == 4 && images.size(1) == 3 &&
                 images.size(2) == config.image_size && images.size(3) == config.image_size,
             "FusionVqa: expected images [B, 3, ", config.image_size, ", ", config.image_size,
             "], got ", images.defined() ? images.desc() : "undefined");
  return img_proj->forward(cnn->forward(images).flatten(2).transpose(1, 2)) + img_pos;
}

std::pair<Tensor, Tensor> FusionVqa::question(const Tensor& questions, const Tensor& lengths) {
  IRIS_CHECK(config.uses_text(), "FusionVqa: the ", config.fusion, " model has no text encoder");
  IRIS_CHECK(
      questions.defined() && questions.dim() == 2 && questions.size(1) >= 1 &&
          questions.size(1) <= config.max_question_len &&
          (questions.dtype() == DType::i64 || questions.dtype() == DType::i32),
      "FusionVqa: expected integer questions [B, T] with 1 <= T <= ", config.max_question_len,
      ", got ", questions.defined() ? questions.desc() : "undefined");
  if (text) {
    const Tensor x = text->forward(questions, lengths);
    return {x, pool_tokens(x, lengths, "mean")};
  }
  // Validates the lengths as the text encoder does.
  if (lengths.defined()) valid_mask(lengths, questions.size(0), questions.size(1), DType::f32);
  const nn::LstmOutput o = lstm->forward(emb->forward(questions), LstmState{}, lengths);
  return {o.output, o.h_n.select(0, config.text_depth - 1)};
}

Tensor FusionVqa::per_question(const Tensor& rows, const Tensor& image_of,
                               int64_t questions) const {
  if (!image_of.defined()) {
    IRIS_CHECK(rows.size(0) == questions, "FusionVqa(", config.fusion, "): ", rows.size(0),
               " images but ", questions, " questions (pass image_of to share images)");
    return rows;
  }
  IRIS_CHECK(image_of.dim() == 1 && image_of.size(0) == questions && image_of.dtype() == DType::i64,
             "FusionVqa(", config.fusion, "): image_of must be int64 [", questions, "], got ",
             image_of.desc());
  return index_select(rows, 0, image_of);  // checks each index against the images
}

Tensor FusionVqa::forward(const Tensor& images, const Tensor& questions, const Tensor& lengths,
                          const Tensor& image_of) {
  if (!config.uses_image() || !config.uses_text())
    return unimodal_forward(images, questions, lengths, image_of);
  IRIS_CHECK(questions.defined() && questions.dim() == 2,
             "FusionVqa: expected questions [B, T], got ",
             questions.defined() ? questions.desc() : "undefined");
  const Tensor img = per_question(image_tokens(images), image_of, questions.size(0));
  const auto [q_tokens, q_pooled] = question(questions, lengths);
  Tensor fused;
  if (config.fusion == "late") {
    const Tensor i = mean(img, {1});
    fused = cat({i, q_pooled, i * q_pooled}, 1);
  } else if (config.fusion == "early") {
    const int64_t M = img.size(1);
    Tensor x = cat({img + type_emb.select(0, 0), q_tokens + type_emb.select(0, 1)}, 1);
    nn::BlockOptions opt;
    opt.lengths = shifted(lengths, M);  // image tokens first: valid tokens stay a prefix
    for (size_t i = 0; i < blocks->size(); ++i)
      x = blocks->at<nn::TransformerBlock>(i).forward(x, Tensor(), opt);
    fused = pool_tokens(ln->forward(x), opt.lengths, "mean");
  } else {
    Tensor x = q_tokens;
    nn::BlockOptions opt;
    opt.lengths = lengths;
    for (size_t i = 0; i < blocks->size(); ++i)
      x = blocks->at<nn::TransformerBlock>(i).forward(x, img, opt);
    fused = pool_tokens(ln->forward(x), lengths, "mean");
  }
  return classifier->forward(fused);
}

Tensor FusionVqa::unimodal_forward(const Tensor& images, const Tensor& questions,
                                   const Tensor& lengths, const Tensor& image_of) {
  // The ignored modality, when given, must still describe the same batch.
  if (images.defined() && questions.defined() && images.dim() >= 1 && questions.dim() >= 1 &&
      !image_of.defined())
    IRIS_CHECK(images.size(0) == questions.size(0), "FusionVqa(", config.fusion,
               "): ", images.size(0), " images but questions ", questions.desc());
  Tensor x;
  nn::BlockOptions opt;
  if (config.uses_image()) {
    x = image_tokens(images);
  } else {
    x = question(questions, lengths).first;
    opt.lengths = lengths;
  }
  for (size_t i = 0; i < blocks->size(); ++i)
    x = blocks->at<nn::TransformerBlock>(i).forward(x, Tensor(), opt);
  const Tensor logits = classifier->forward(pool_tokens(ln->forward(x), opt.lengths, "mean"));
  if (!config.uses_image() || !image_of.defined()) return logits;
  // One answer per image, repeated for each of its questions (which the model does not read).
  return per_question(logits, image_of, image_of.size(0));
}

std::string FusionVqa::extra_repr() const {
  return detail::cat("fusion=", config.fusion, ", image_encoder=", config.image_encoder,
                     ", text_encoder=", config.text_encoder, ", dim=", config.dim,
                     ", num_answers=", config.num_answers);
}

}  // namespace iris::models
