// Learning: vit-cap and cnn-rnn, at small sizes, learn to caption single-shape scenes of the
// synthetic set ("a small green star": size, colour and shape read off a 32x32 image). Each
// trains 1000 AdamW steps of 32 on 1920 images (~10-20 s on two cores); the caption loss on
// them must fall below a stated bound, and on 96 held-out images the words and the greedy
// captions must beat chance by the stated margins.
#include <chrono>
#include <cstdio>

#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "models/synth.h"
#include "models/tokenizer.h"
#include "nn/image.h"
#include "nn/optim.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

struct CaptionSet {
  Tensor images;  // [N, 3, 32, 32], roughly zero-mean
  Tensor tokens;  // [N, L]: <bos> words <eos> <pad>...
  std::vector<std::string> captions;
};

struct CaptionData {
  Vocabulary vocab;
  CaptionSet train, test;
};

// The first n_train + n_test single-shape scenes of the synthetic set with their first
// caption, split in that order; one vocabulary over both.
CaptionData single_shape_captions(int64_t n_train, int64_t n_test) {
  const int64_t n = n_train + n_test;
  SynthOptions o;
  o.n = 4 * n + 64;
  o.size = 32;
  o.captions_per_image = 1;
  o.questions_per_image = 1;
  std::vector<Tensor> images;
  std::vector<std::string> captions;
  for (int64_t i = 0; static_cast<int64_t>(images.size()) < n && i < o.n; ++i) {
    if (synth_scene(o, i).shapes.size() != 1) continue;
    const SynthSample s = synth_sample(o, i);
    images.push_back((nn::to_tensor(s.image) - 0.5) * 4.0);
    captions.push_back(s.captions[0]);
  }
  IRIS_CHECK(static_cast<int64_t>(images.size()) == n, "too few single-shape scenes");
  CaptionData data;
  data.vocab = Vocabulary::build(captions);
  size_t L = 0;
  for (const auto& c : captions) L = std::max(L, data.vocab.encode(c).size());
  auto make = [&](int64_t first, int64_t count) {
    CaptionSet set;
    std::vector<int64_t> flat(count * L, Vocabulary::kPad);
    for (int64_t i = 0; i < count; ++i) {
      const auto ids = data.vocab.encode(captions[first + i]);
      std::copy(ids.begin(), ids.end(), flat.begin() + i * L);
      set.captions.push_back(captions[first + i]);
    }
    set.images =
        stack(std::vector<Tensor>(images.begin() + first, images.begin() + first + count), 0);
    set.tokens = Tensor::from_vector(flat, {count, static_cast<int64_t>(L)});
    return set;
  };
  data.train = make(0, n_train);
  data.test = make(n_train, n_test);
  return data;
}

struct TrainResult {
  double train_loss = 0, seconds = 0, test_exact = 0;
  double word_accuracy[3] = {0, 0, 0};  // size, colour, shape (held-out, teacher forced)
};

// AdamW over minibatches; the loss ignores padding targets.
TrainResult train_captioner(CaptionModel& model, const CaptionData& data, int64_t steps,
                            int64_t batch, double lr) {
  nn::AdamWOptions ao;
  ao.lr = lr;
  ao.weight_decay = 0.0;
  nn::AdamW opt(model, ao);
  const CaptionSet& train = data.train;
  const int64_t N = train.images.size(0);
  const auto t0 = std::chrono::steady_clock::now();
  double running = 0;
  model.train();
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> idx(batch);
    for (int64_t i = 0; i < batch; ++i) idx[i] = (step * batch + i * 7) % N;
    const Tensor rows = Tensor::from_vector(idx, {batch});
    const CaptionLoss cl = caption_loss(model, index_select(train.images, 0, rows),
                                        index_select(train.tokens, 0, rows), Vocabulary::kPad);
    opt.zero_grad();
    cl.loss.backward();
    opt.step();
    running = step == 0 ? cl.loss.item() : 0.9 * running + 0.1 * cl.loss.item();
    if (step % 100 == 0)
      std::printf("  step %3lld  loss %.4f\n", static_cast<long long>(step), running);
  }
  TrainResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  model.eval();
  {
    NoGradGuard ng;
    r.train_loss = caption_loss(model, train.images, train.tokens, Vocabulary::kPad).loss.item();
  }
  DecodeOptions d;
  d.max_len = data.test.tokens.size(1) - 1;
  d.bos = Vocabulary::kBos;
  d.eos = Vocabulary::kEos;
  d.pad = Vocabulary::kPad;
  const DecodeResult out = greedy_decode(model, data.test.images, d);
  int64_t exact = 0;
  const auto& caps = data.test.captions;
  for (size_t i = 0; i < caps.size(); ++i)
    exact += data.vocab.decode(out.sequences[i]) == data.vocab.decode(data.vocab.encode(caps[i]));
  r.test_exact = static_cast<double>(exact) / static_cast<double>(caps.size());
  {
    // Teacher-forced accuracy at the words "a <size> <colour> <shape>".
    NoGradGuard ng;
    const Tensor tok = data.test.tokens;
    const int64_t T = tok.size(1) - 1;
    const auto pred =
        argmax(model.forward(data.test.images, tok.narrow(1, 0, T)), -1).to_vector<int64_t>();
    const auto want = tok.narrow(1, 1, T).contiguous().to_vector<int64_t>();
    for (int64_t t = 0; t < 3; ++t) {
      int64_t hit = 0;
      for (size_t i = 0; i < caps.size(); ++i) hit += pred[i * T + t + 1] == want[i * T + t + 1];
      r.word_accuracy[t] = static_cast<double>(hit) / static_cast<double>(caps.size());
    }
  }
  std::printf("  held-out word accuracy: size %.3f, colour %.3f, shape %.3f\n", r.word_accuracy[0],
              r.word_accuracy[1], r.word_accuracy[2]);
  std::printf("  %s: training loss %.4f (eval mode), held-out exact captions %.3f, %.1f s\n",
              model.type_name().c_str(), r.train_loss, r.test_exact, r.seconds);
  std::printf("  e.g. \"%s\" -> \"%s\"\n", caps[0].c_str(),
              data.vocab.decode(out.sequences[0]).c_str());
  return r;
}

// From ~3 nats per word at the start; chance is 1/2 for the size, 1/6 for the colour and the
// shape, 1/72 for a whole caption. Shapes are the hard part at 32x32 within the budget.
void expect_learned(const TrainResult& r) {
  EXPECT_LT(r.train_loss, 0.45);
  EXPECT_GE(r.word_accuracy[0], 0.8);
  EXPECT_GE(r.word_accuracy[1], 0.9);
  EXPECT_GE(r.word_accuracy[2], 0.25);
  EXPECT_GE(r.test_exact, 0.15);
}

TEST(TrainCaptioners, VitCapLearnsSingleShapeCaptions) {
  const CaptionData data = single_shape_captions(1920, 96);
  ViTCaptionerConfig c;
  c.image_size = 32;
  c.patch = 8;
  c.dim = 64;
  c.encoder_depth = 2;
  c.decoder_depth = 2;
  c.heads = 4;
  c.mlp_dim = 128;
  c.vocab = data.vocab.size();
  c.max_len = data.train.tokens.size(1);
  Generator g(1);
  ViTCaptioner model(c, &g);
  const TrainResult r = train_captioner(model, data, 1000, 32, 2e-3);
  expect_learned(r);
}

TEST(TrainCaptioners, CnnRnnLearnsSingleShapeCaptions) {
  const CaptionData data = single_shape_captions(1920, 96);
  CnnRnnConfig c;
  c.vocab = data.vocab.size();
  c.emb = 32;
  c.hidden = 64;
  c.channels = {16, 32, 64};
  Generator g(2);
  CnnRnnCaptioner model(c, &g);
  const TrainResult r = train_captioner(model, data, 1000, 32, 3e-3);
  expect_learned(r);
}

}  // namespace
}  // namespace iris::models
