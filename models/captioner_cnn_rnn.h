#pragma once
// cnn-rnn of torch_ref.py (CnnRnnCaptioner, Show-Attend-Tell): a CNN of 4 stages (conv3x3
// stride 2, BN, ReLU, conv3x3, BN, ReLU; no conv bias) turns a 64x64 image into 4x4 = 16
// regions; their mean initialises an LSTM cell (tanh(init_h), tanh(init_c)) that reads
// [word embedding, attended context] per step, with additive attention
// att_v(tanh(att_f(regions) + att_h(h))) over the regions. Parameter and buffer names are
// torch's: cnn.<i>.weight / .running_mean / ..., emb.weight, cell.weight_ih, att_f.weight, ...
#include <cstdint>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "models/decode.h"
#include "nn/layers.h"

namespace iris::models {

struct CnnRnnConfig {
  int64_t vocab = 1024;
  int64_t emb = 256;
  int64_t hidden = 512;
  std::vector<int64_t> channels = {32, 64, 128, 256};  // one stage each, each halving H and W

  void validate() const;
  template <class V>
  void visit(V&& v) {
    v("vocab", vocab);
    v("emb", emb);
    v("hidden", hidden);
    v("channels", channels);
  }
};

// The conv stages of cnn-rnn: per entry c of `channels`, conv3x3 stride 2 (padding 1),
// BN, ReLU, conv3x3 (padding 1), BN, ReLU, without conv biases; children "0", "1", ...
// first_stride: the first stage's stride (1 keeps full resolution there, which small objects
// need: a few pixels wide, they are hard to learn behind an early stride).
std::shared_ptr<nn::Sequential> make_conv_stages(int64_t in_channels,
                                                 const std::vector<int64_t>& channels,
                                                 Generator* gen = nullptr,
                                                 int64_t first_stride = 2);

struct CnnRnnOutput {
  Tensor logits;     // [B, T, vocab]
  Tensor attention;  // [B, T, regions]: the attention weights of every step (when asked)
};

class CnnRnnCaptioner : public CaptionModel {
 public:
  explicit CnnRnnCaptioner(const CnnRnnConfig& config = {}, Generator* gen = nullptr);
  Tensor forward(const Tensor& images, const Tensor& tokens) override;
  using CaptionModel::forward;
  CnnRnnOutput forward_with_attention(const Tensor& images, const Tensor& tokens,
                                      bool attention = true);
  // The CNN's regions: [B, (H/16) * (W/16), channels.back()].
  Tensor features(const Tensor& images);
  std::unique_ptr<DecodeSession> start_decoding(const Tensor& images, int64_t copies,
                                                bool use_cache = true) override;
  int64_t vocab_size() const override { return config.vocab; }
  std::string extra_repr() const override;

  // One decoder step: attention over the regions, then the LSTM cell on [emb, context].
  struct StepOut {
    LstmState state;
    Tensor alpha;  // [B, R]
  };
  StepOut step(const Tensor& regions, const Tensor& projected_regions, const Tensor& word,
               const LstmState& state);
  LstmState initial_state(const Tensor& regions);

  CnnRnnConfig config;
  std::shared_ptr<nn::Sequential> cnn;
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::LSTMCell> cell;
  std::shared_ptr<nn::Linear> att_f, att_h, att_v, init_h, init_c, out;
};

}  // namespace iris::models
