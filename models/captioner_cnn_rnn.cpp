#include "models/captioner_cnn_rnn.h"

#include "autograd/ops.h"

namespace iris::models {
namespace {

void check_tokens(const Tensor& tokens, int64_t B, const char* who) {
  IRIS_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(0) == B && tokens.size(1) >= 1 &&
                 (tokens.dtype() == DType::i64 || tokens.dtype() == DType::i32),
             who, ": expected integer tokens [", B, ", T] with T >= 1, got ",
             tokens.defined() ? tokens.desc() : "undefined");
}

// The LSTM state steps one token at a time; nothing else to cache.
class StateSession : public DecodeSession {
 public:
  StateSession(CnnRnnCaptioner& m, const Tensor& images, int64_t copies)
      : m_(m), copies_(copies), N_(images.size(0) * copies) {
    regions_ = m.features(images);
    if (copies > 1)
      regions_ = index_select(regions_, 0, repeat_rows(images.size(0), copies, images.device()));
    projected_ = m.att_f->forward(regions_);
    state_ = m.initial_state(regions_);
  }

  Tensor step(const Tensor& tokens) override {
    NoGradGuard no_grad;
    IRIS_CHECK(tokens.defined() && tokens.dim() == 1 && tokens.size(0) == N_,
               "CnnRnnCaptioner decoding: expected tokens [", N_, "], got ",
               tokens.defined() ? tokens.desc() : "undefined");
    state_ = m_.step(regions_, projected_, m_.emb->forward(tokens), state_).state;
    return m_.out->forward(state_.h);
  }

  void reorder(const Tensor& rows) override {
    NoGradGuard no_grad;
    if (!check_reorder_rows(rows, N_, copies_, "CnnRnnCaptioner decoding")) return;
    state_.h = index_select(state_.h, 0, rows);
    state_.c = index_select(state_.c, 0, rows);
  }

  int64_t max_steps() const override { return int64_t{1} << 40; }

 private:
  CnnRnnCaptioner& m_;
  int64_t copies_, N_;
  Tensor regions_, projected_;
  LstmState state_;
};

// Reruns the teacher-forced forward over the whole prefix at every step (the reference).
class FullPrefixSession : public DecodeSession {
 public:
  FullPrefixSession(CnnRnnCaptioner& m, const Tensor& images, int64_t copies)
      : m_(m), copies_(copies), N_(images.size(0) * copies) {
    images_ = copies > 1
                  ? index_select(images, 0, repeat_rows(images.size(0), copies, images.device()))
                  : images;
  }

  Tensor step(const Tensor& tokens) override {
    NoGradGuard no_grad;
    IRIS_CHECK(tokens.defined() && tokens.dim() == 1 && tokens.size(0) == N_,
               "CnnRnnCaptioner decoding: expected tokens [", N_, "], got ",
               tokens.defined() ? tokens.desc() : "undefined");
    const Tensor column = tokens.to(DType::i64).view({N_, 1});
    prefix_ = prefix_.defined() ? cat({prefix_, column}, 1) : column;
    return m_.forward(images_, prefix_).select(1, prefix_.size(1) - 1);
  }

  void reorder(const Tensor& rows) override {
    NoGradGuard no_grad;
    if (!check_reorder_rows(rows, N_, copies_, "CnnRnnCaptioner decoding")) return;
    if (prefix_.defined()) prefix_ = index_select(prefix_, 0, rows);
  }

  int64_t max_steps() const override { return int64_t{1} << 40; }

 private:
  CnnRnnCaptioner& m_;
  int64_t copies_, N_;
  Tensor images_, prefix_;
};

}  // namespace

std::shared_ptr<nn::Sequential> make_conv_stages(int64_t in, const std::vector<int64_t>& channels,
                                                 Generator* gen, int64_t first_stride) {
  IRIS_CHECK(first_stride == 1 || first_stride == 2,
             "make_conv_stages: first_stride must be 1 or 2, got ", first_stride);
  std::vector<std::shared_ptr<nn::Module>> layers;
  for (int64_t c : channels) {
    const int64_t stride = layers.empty() ? first_stride : 2;
    layers.push_back(std::make_shared<nn::Conv2d>(
        in, c, 3, nn::Conv2dOptions{.stride = {stride, stride}, .padding = {1, 1}, .bias = false},
        gen));
    layers.push_back(std::make_shared<nn::BatchNorm2d>(c));
    layers.push_back(std::make_shared<nn::ReLU>());
    layers.push_back(std::make_shared<nn::Conv2d>(
        c, c, 3, nn::Conv2dOptions{.padding = {1, 1}, .bias = false}, gen));
    layers.push_back(std::make_shared<nn::BatchNorm2d>(c));
    layers.push_back(std::make_shared<nn::ReLU>());
    in = c;
  }
  return std::make_shared<nn::Sequential>(layers);
}

void CnnRnnConfig::validate() const {
  IRIS_CHECK(vocab > 0 && emb > 0 && hidden > 0 && !channels.empty(),
             "CnnRnnCaptioner: bad sizes (vocab ", vocab, ", emb ", emb, ", hidden ", hidden, ", ",
             channels.size(), " stages)");
  for (int64_t c : channels)
    IRIS_CHECK(c > 0, "CnnRnnCaptioner: stage channels must be positive, got ", c);
}

CnnRnnCaptioner::CnnRnnCaptioner(const CnnRnnConfig& cfg, Generator* gen)
    : CaptionModel("CnnRnnCaptioner"), config(cfg) {
  config.validate();
  const int64_t C = config.channels.back(), Hd = config.hidden;
  cnn = register_module("cnn", make_conv_stages(3, config.channels, gen));
  emb = register_module(
      "emb", std::make_shared<nn::Embedding>(config.vocab, config.emb, std::nullopt, gen));
  cell = register_module("cell", std::make_shared<nn::LSTMCell>(config.emb + C, Hd, true, gen));
  att_f = register_module("att_f", std::make_shared<nn::Linear>(C, Hd, true, gen));
  att_h = register_module("att_h", std::make_shared<nn::Linear>(Hd, Hd, true, gen));
  att_v = register_module("att_v", std::make_shared<nn::Linear>(Hd, 1, true, gen));
  init_h = register_module("init_h", std::make_shared<nn::Linear>(C, Hd, true, gen));
  init_c = register_module("init_c", std::make_shared<nn::Linear>(C, Hd, true, gen));
  out = register_module("out", std::make_shared<nn::Linear>(Hd, config.vocab, true, gen));
}

Tensor CnnRnnCaptioner::features(const Tensor& images) {
  IRIS_CHECK(images.defined() && images.dim() == 4 && images.size(1) == 3,
             "CnnRnnCaptioner: expected images [B, 3, H, W], got ",
             images.defined() ? images.desc() : "undefined");
  return cnn->forward(images).flatten(2).transpose(1, 2);
}

LstmState CnnRnnCaptioner::initial_state(const Tensor& regions) {
  const Tensor m = mean(regions, {1});
  return {tanh(init_h->forward(m)), tanh(init_c->forward(m))};
}

CnnRnnCaptioner::StepOut CnnRnnCaptioner::step(const Tensor& regions,
                                               const Tensor& projected_regions, const Tensor& word,
                                               const LstmState& state) {
  // e = att_v(tanh(att_f(f) + att_h(h))): [B, R, 1], softmax over the regions.
  const Tensor scores =
      att_v->forward(tanh(projected_regions + att_h->forward(state.h).unsqueeze(1)));
  const Tensor alpha = softmax(scores, 1);
  const Tensor context = sum(alpha * regions, {1});  // [B, C]
  StepOut o;
  o.state = cell->forward(cat({word, context}, 1), state);
  o.alpha = alpha.squeeze(2);
  return o;
}

CnnRnnOutput CnnRnnCaptioner::forward_with_attention(const Tensor& images, const Tensor& tokens,
                                                     bool attention) {
  const Tensor f = features(images);
  const int64_t B = f.size(0);
  check_tokens(tokens, B, "CnnRnnCaptioner");
  const Tensor pf = att_f->forward(f);
  const Tensor e = emb->forward(tokens);  // [B, T, emb]
  LstmState state = initial_state(f);
  std::vector<Tensor> hs, alphas;
  for (int64_t t = 0; t < tokens.size(1); ++t) {
    StepOut s = step(f, pf, e.select(1, t), state);
    state = s.state;
    hs.push_back(state.h);
    if (attention) alphas.push_back(s.alpha);
  }
  CnnRnnOutput o;
  // One vocabulary GEMM over every step instead of one per step.
  o.logits = out->forward(stack(hs, 1));
  if (attention) o.attention = stack(alphas, 1);
  return o;
}

Tensor CnnRnnCaptioner::forward(const Tensor& images, const Tensor& tokens) {
  return forward_with_attention(images, tokens, false).logits;
}

std::unique_ptr<DecodeSession> CnnRnnCaptioner::start_decoding(const Tensor& images, int64_t copies,
                                                               bool use_cache) {
  IRIS_CHECK(copies > 0, "CnnRnnCaptioner::start_decoding: copies must be positive, got ", copies);
  NoGradGuard no_grad;
  if (use_cache) return std::make_unique<StateSession>(*this, images, copies);
  return std::make_unique<FullPrefixSession>(*this, images, copies);
}

std::string CnnRnnCaptioner::extra_repr() const {
  std::string ch;
  for (int64_t c : config.channels) ch += (ch.empty() ? "" : "/") + std::to_string(c);
  return detail::cat("vocab=", config.vocab, ", emb=", config.emb, ", hidden=", config.hidden,
                     ", channels=", ch);
}

}  // namespace iris::models
