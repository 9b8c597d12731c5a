#pragma once
// Captioners and their decoding. A CaptionModel computes teacher-forced logits for
// training and opens DecodeSessions for generation: a session holds the per-sequence state
// (a Transformer decoder's key/value cache, an LSTM's h and c) and runs one token per call.
// greedy_decode and beam_search drive sessions for a batch of images.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.h"

namespace iris::models {

// Runs generation one token at a time for N = B * copies rows (row r decodes image r / copies).
// Everything runs without recording gradients.
class DecodeSession {
 public:
  virtual ~DecodeSession() = default;
  // tokens int64 [N] (on the model's device): the token at the current position of each row
  // -> logits [N, vocab] for the next one.
  virtual Tensor step(const Tensor& tokens) = 0;
  // Row i continues from the state row rows[i] had (int64 [N]; each rows[i] must decode the
  // same image as row i, as beams of one image do).
  virtual void reorder(const Tensor& rows) = 0;
  // How many step() calls the model's positions allow (a large number when unbounded).
  virtual int64_t max_steps() const = 0;
};

// For sessions: int64 [B * copies] holding b `copies` times (rows of the repeated images), on
// `device` (the images' device).
Tensor repeat_rows(int64_t B, int64_t copies, Device device = Device::cpu());
// Validates reorder's rows (int64 [N], each within its own image's `copies` rows); returns
// false when they are the identity (nothing to move).
bool check_reorder_rows(const Tensor& rows, int64_t N, int64_t copies, const char* who);

class CaptionModel : public nn::Module {
 public:
  using nn::Module::Module;
  // images [B, 3, H, W], tokens int64 [B, T] -> logits [B, T, vocab] (teacher forcing).
  virtual Tensor forward(const Tensor& images, const Tensor& tokens) = 0;
  Tensor forward(const Tensor& x) override { return nn::Module::forward(x); }
  // use_cache = false recomputes the whole prefix at every step (the reference the cache is
  // tested against); models without a cache ignore it.
  virtual std::unique_ptr<DecodeSession> start_decoding(const Tensor& images, int64_t copies,
                                                        bool use_cache = true) = 0;
  virtual int64_t vocab_size() const = 0;
};

// torch_ref.caption_loss: logits of tokens[:, :T] and the mean cross-entropy against
// tokens[:, 1:] (tokens int64 [B, T + 1]). ignore_index: padding targets to leave out.
struct CaptionLoss {
  Tensor logits;  // [B, T, vocab]
  Tensor loss;    // 0-dim
};
CaptionLoss caption_loss(CaptionModel& model, const Tensor& images, const Tensor& tokens,
                         int64_t ignore_index = -100);

// What `iris forward` and torch_ref.py export write: "logits"; with grads also "loss" ([1])
// and "grad.<name>" for every parameter (zeros where backward did not reach one). Runs in
// the model's current mode and clears its gradients first.
std::vector<std::pair<std::string, Tensor>> caption_forward_outputs(CaptionModel& model,
                                                                    const Tensor& images,
                                                                    const Tensor& tokens,
                                                                    bool grads);

struct DecodeOptions {
  int64_t max_len = 20;  // generated tokens at most, <eos> included
  int64_t bos = 1, eos = 2, pad = 0;
  int64_t beam_width = 1;
  // Beam hypotheses are ranked by sum(log p) / length^length_penalty (length: generated tokens,
  // <eos> included); 0 ranks by the plain sum. The search stops only when no live beam can
  // beat the finished ones at any length up to max_len (exact, for every penalty).
  double length_penalty = 1.0;
  bool use_cache = true;
};

struct DecodeResult {
  Tensor tokens;  // int64 [B, L]: generated ids (no <bos>), <eos> where reached, then pad
  std::vector<std::vector<int64_t>> sequences;  // per image, without <bos> and <eos>
  std::vector<double> scores;  // sum of log-probabilities (beam: the length-penalised score)
};

DecodeResult greedy_decode(CaptionModel& model, const Tensor& images,
                           const DecodeOptions& opt = {});
// Batched beam search. An image's search ends once it has beam_width finished hypotheses
// and its best live beam, scored at the current length, ranks no higher than the worst of
// them (Hugging Face's rule), or at max_len; so beam_width 1 gives greedy_decode's tokens.
DecodeResult beam_search(CaptionModel& model, const Tensor& images, const DecodeOptions& opt = {});
// beam_width == 1 ? greedy_decode : beam_search.
DecodeResult decode(CaptionModel& model, const Tensor& images, const DecodeOptions& opt = {});

}  // namespace iris::models
