#include "models/text_encoder.h"

#include "autograd/ops.h"

namespace iris::models {
namespace {

std::vector<int64_t> check_lengths(const Tensor& lengths, int64_t B, int64_t T, const char* who) {
  if (!lengths.defined()) return std::vector<int64_t>(B, T);
  IRIS_CHECK(lengths.dim() == 1 && lengths.size(0) == B &&
                 (lengths.dtype() == DType::i64 || lengths.dtype() == DType::i32),
             who, ": expected integer lengths [", B, "], got ", lengths.desc());
  std::vector<int64_t> l = lengths.to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    IRIS_CHECK(l[b] >= 1 && l[b] <= T, who, ": length ", l[b], " of sample ", b, " outside [1, ", T,
               "]");
  return l;
}

}  // namespace

void TextEncoderConfig::validate(const char* who) const {
  IRIS_CHECK(vocab > 0 && max_len > 0 && depth >= 0 && mlp_dim > 0, who, ": bad sizes (vocab ",
             vocab, ", max_len ", max_len, ", depth ", depth, ", mlp_dim ", mlp_dim, ")");
  IRIS_CHECK(dim > 0 && heads > 0 && dim % heads == 0, who, ": dim ", dim,
             " must be a positive multiple of heads ", heads);
  IRIS_CHECK(pool == "mean" || pool == "first" || pool == "last", who,
             ": pool must be mean, "
             "first or last, got '",
             pool, "'");
}

Tensor valid_mask(const Tensor& lengths, int64_t B, int64_t T, DType dtype) {
  const std::vector<int64_t> l = check_lengths(lengths, B, T, "valid_mask");
  std::vector<double> m(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) m[b * T + t] = t < l[b] ? 1.0 : 0.0;
  return Tensor::from_vector(m, {B, T, 1}).to(dtype);
}

Tensor pool_tokens(const Tensor& x, const Tensor& lengths, const std::string& how) {
  IRIS_CHECK(x.defined() && x.dim() == 3, "pool_tokens: expected x [B, T, D], got ",
             x.defined() ? x.desc() : "undefined");
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  const std::vector<int64_t> l = check_lengths(lengths, B, T, "pool_tokens");
  if (how == "first") return x.select(1, 0);
  if (how == "last") {
    std::vector<int64_t> rows(B);
    for (int64_t b = 0; b < B; ++b) rows[b] = b * T + l[b] - 1;
    return index_select(x.reshape({B * T, D}), 0, Tensor::from_vector(rows, {B}).to(x.device()));
  }
  IRIS_CHECK(how == "mean", "pool_tokens: unknown pooling '", how, "' (mean, first, last)");
  if (!lengths.defined()) return mean(x, {1});
  std::vector<double> inv(B);
  for (int64_t b = 0; b < B; ++b) inv[b] = 1.0 / static_cast<double>(l[b]);
  const Tensor scale = Tensor::from_vector(inv, {B, 1}).to(x.dtype()).to(x.device());
  return sum(x * valid_mask(lengths, B, T, x.dtype()).to(x.device()), {1}) * scale;
}

TextEncoder::TextEncoder(const TextEncoderConfig& cfg, Generator* gen)
    : Module("TextEncoder"), config(cfg) {
  config.validate("TextEncoder");
  const int64_t D = config.dim;
  pos = register_parameter("pos",
                           randn({1, config.max_len, D}, DType::f32, Device::cpu(), gen) * 0.02);
  tok = register_module("tok", std::make_shared<nn::Embedding>(config.vocab, D, std::nullopt, gen));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < config.depth; ++i)
    blocks->push_back(std::make_shared<nn::TransformerBlock>(D, config.heads, config.mlp_dim, false,
                                                             config.causal, gen));
  ln = register_module("ln", std::make_shared<nn::LayerNorm>(D));
}

Tensor TextEncoder::forward(const Tensor& tokens, const Tensor& lengths) {
  IRIS_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(1) >= 1 &&
                 tokens.size(1) <= config.max_len &&
                 (tokens.dtype() == DType::i64 || tokens.dtype() == DType::i32),
             "TextEncoder: expected integer tokens [B, T] with 1 <= T <= ", config.max_len,
             ", got ", tokens.defined() ? tokens.desc() : "undefined");
  check_lengths(lengths, tokens.size(0), tokens.size(1), "TextEncoder");
  nn::BlockOptions opt;
  opt.lengths = lengths;
  Tensor x = tok->forward(tokens) + pos.narrow(1, 0, tokens.size(1));
  for (size_t i = 0; i < blocks->size(); ++i)
    x = blocks->at<nn::TransformerBlock>(i).forward(x, Tensor(), opt);
  return ln->forward(x);
}

Tensor TextEncoder::encode(const Tensor& tokens, const Tensor& lengths) {
  return pool_tokens(forward(tokens, lengths), lengths, config.pool);
}

std::string TextEncoder::extra_repr() const {
  return detail::cat("vocab=", config.vocab, ", max_len=", config.max_len, ", dim=", config.dim,
                     ", depth=", config.depth, ", heads=", config.heads,
                     ", mlp_dim=", config.mlp_dim, ", causal=", config.causal ? "true" : "false",
                     ", pool=", config.pool);
}

}  // namespace iris::models
