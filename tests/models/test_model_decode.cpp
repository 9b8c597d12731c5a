// Decoding: the key/value-cached Transformer decoder (and the stepped LSTM) give exactly the
// tokens of recomputing the whole prefix at every step; beam width 1 is greedy; beam search
// finds the exhaustive-search optimum on a tiny vocabulary, scores what teacher forcing
// scores, and does not depend on the batch; bad options are errors naming the function.
#include <cmath>
#include <functional>
#include <limits>

#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

using testing::randn_seeded;

// Random parameters of a larger spread than the initialisation, so that distributions
// over the next token are far from uniform and sequences end at different lengths.
void randomise(nn::Module& m, uint64_t seed, double scale) {
  NoGradGuard ng;
  for (const auto& [name, p] : m.named_parameters())
    copy_(p, randn_seeded(p.shape(), seed++, p.dtype()) * scale);
}

std::shared_ptr<ViTCaptioner> vit_cap(int64_t vocab, uint64_t seed) {
  ViTCaptionerConfig c;
  c.image_size = 16;
  c.patch = 4;
  c.dim = 12;
  c.encoder_depth = 1;
  c.decoder_depth = 2;
  c.heads = 3;
  c.mlp_dim = 16;
  c.vocab = vocab;
  c.max_len = 9;
  auto m = std::make_shared<ViTCaptioner>(c);
  randomise(*m, seed, 0.6);
  m->eval();
  return m;
}

std::shared_ptr<CnnRnnCaptioner> cnn_rnn(int64_t vocab, uint64_t seed) {
  CnnRnnConfig c;
  c.vocab = vocab;
  c.emb = 6;
  c.hidden = 10;
  c.channels = {4, 8};
  auto m = std::make_shared<CnnRnnCaptioner>(c);
  randomise(*m, seed, 0.6);
  // BN buffers back to a sane state (randomise only touched parameters).
  m->eval();
  return m;
}

Tensor images(int64_t B, uint64_t seed) { return randn_seeded({B, 3, 16, 16}, seed, DType::f32); }

// Sum of log p(token) along `seq` (no <bos>) under teacher forcing.
double sequence_log_prob(CaptionModel& m, const Tensor& image, const std::vector<int64_t>& seq,
                         int64_t bos) {
  NoGradGuard ng;
  std::vector<int64_t> in = {bos};
  in.insert(in.end(), seq.begin(), seq.end() - 1);
  const int64_t T = static_cast<int64_t>(in.size());
  const Tensor lp = log_softmax(m.forward(image, Tensor::from_vector(in, {1, T})), -1);
  const auto v = lp.to_vector<float>();
  const int64_t V = lp.size(2);
  double total = 0;
  for (int64_t t = 0; t < T; ++t) total += v[t * V + seq[t]];
  return total;
}

void expect_cached_equals_full_prefix(CaptionModel& m, int64_t max_len) {
  const Tensor img = images(4, 21);
  DecodeOptions opt;
  opt.max_len = max_len;
  opt.use_cache = true;
  const DecodeResult cached = greedy_decode(m, img, opt);
  opt.use_cache = false;
  const DecodeResult full = greedy_decode(m, img, opt);
  EXPECT_EQ(cached.sequences, full.sequences);
  EXPECT_CLOSE(cached.tokens, full.tokens, 0, 0);
  for (size_t b = 0; b < cached.scores.size(); ++b)
    EXPECT_NEAR(cached.scores[b], full.scores[b], 1e-4);
  // Step logits agree too, not just their argmax.
  NoGradGuard ng;
  auto a = m.start_decoding(img, 1, true), b = m.start_decoding(img, 1, false);
  std::vector<int64_t> tok(4, opt.bos);
  for (int64_t s = 0; s < max_len; ++s) {
    const Tensor la = a->step(Tensor::from_vector(tok, {4}));
    const Tensor lb = b->step(Tensor::from_vector(tok, {4}));
    EXPECT_CLOSE(la, lb, 1e-4, 1e-5);
    tok = argmax(la, 1).to_vector<int64_t>();
  }
}

TEST(Decode, CachedViTDecoderGivesTheTokensOfFullRecomputation) {
  auto m = vit_cap(13, 1);
  expect_cached_equals_full_prefix(*m, 9);  // every position of the model
}

TEST(Decode, SteppedLstmGivesTheTokensOfFullRecomputation) {
  auto m = cnn_rnn(13, 2);
  expect_cached_equals_full_prefix(*m, 12);
}

TEST(Decode, GreedyOutputLayout) {
  auto m = vit_cap(13, 3);
  DecodeOptions opt;
  opt.max_len = 9;
  const DecodeResult r = greedy_decode(*m, images(5, 22), opt);
  ASSERT_EQ(r.tokens.dim(), 2);
  EXPECT_EQ(r.tokens.size(0), 5);
  const auto t = r.tokens.to_vector<int64_t>();
  const int64_t L = r.tokens.size(1);
  for (int64_t b = 0; b < 5; ++b) {
    const auto& seq = r.sequences[b];
    for (size_t i = 0; i < seq.size(); ++i) EXPECT_EQ(t[b * L + i], seq[i]);
    // The greedy score is the teacher-forced log-probability of what was generated.
    std::vector<int64_t> gen(t.begin() + b * L, t.begin() + b * L + seq.size());
    if (static_cast<int64_t>(seq.size()) < L || (L > 0 && t[b * L + L - 1] == opt.eos))
      gen.push_back(opt.eos);
    if (static_cast<int64_t>(gen.size()) > opt.max_len) gen.resize(opt.max_len);
    EXPECT_NEAR(r.scores[b], sequence_log_prob(*m, images(5, 22).narrow(0, b, 1), gen, opt.bos),
                1e-4);
    for (int64_t i = static_cast<int64_t>(gen.size()); i < L; ++i) EXPECT_EQ(t[b * L + i], opt.pad);
  }
}

// Without a length penalty. (With one, a single beam rightly continues past an <eos> that
// greedy decoding stops at whenever a longer caption can still score higher.)
TEST(Decode, BeamWidthOneIsGreedy) {
  for (double lp : {0.0}) {
    auto v = vit_cap(13, 4);
    auto c = cnn_rnn(13, 5);
    for (CaptionModel* m :
         {static_cast<CaptionModel*>(v.get()), static_cast<CaptionModel*>(c.get())}) {
      DecodeOptions opt;
      opt.max_len = 9;
      opt.length_penalty = lp;
      const Tensor img = images(4, 23);
      const DecodeResult g = greedy_decode(*m, img, opt);
      const DecodeResult b = beam_search(*m, img, opt);
      EXPECT_EQ(g.sequences, b.sequences) << m->type_name() << " lp " << lp;
      for (size_t i = 0; i < g.scores.size(); ++i) EXPECT_NEAR(g.scores[i], b.scores[i], 1e-5);
    }
  }
}

// Every sequence up to max_len (ending at the first <eos> or at max_len), scored by teacher
// forcing and length-penalised: the best must be what a wide enough beam returns, for every
// penalty (the stopping rule is exact).
TEST(Decode, WideBeamFindsTheExhaustiveOptimum) {
  const int64_t V = 4, max_len = 3;
  auto v = vit_cap(V, 6);
  auto c = cnn_rnn(V, 7);
  for (double lp : {0.0, 0.7, 1.5})
    for (CaptionModel* m :
         {static_cast<CaptionModel*>(v.get()), static_cast<CaptionModel*>(c.get())}) {
      const Tensor img = images(2, 24);
      DecodeOptions opt;
      opt.max_len = max_len;
      opt.beam_width = 16;  // >= V^(max_len - 1): every live prefix is kept
      opt.length_penalty = lp;
      const DecodeResult r = beam_search(*m, img, opt);
      for (int64_t b = 0; b < 2; ++b) {
        const Tensor one = img.narrow(0, b, 1);
        double best = -std::numeric_limits<double>::infinity();
        std::vector<int64_t> best_seq;
        std::function<void(std::vector<int64_t>)> walk = [&](std::vector<int64_t> seq) {
          const bool ended = !seq.empty() &&
                             (seq.back() == opt.eos || static_cast<int64_t>(seq.size()) == max_len);
          if (ended) {
            const double s = sequence_log_prob(*m, one, seq, opt.bos) /
                             std::pow(static_cast<double>(seq.size()), lp);
            if (s > best) best = s, best_seq = seq;
            return;
          }
          for (int64_t tkn = 0; tkn < V; ++tkn) {
            auto next = seq;
            next.push_back(tkn);
            walk(next);
          }
        };
        walk({});
        if (!best_seq.empty() && best_seq.back() == opt.eos) best_seq.pop_back();
        EXPECT_EQ(r.sequences[b], best_seq) << m->type_name() << " image " << b << " lp " << lp;
        EXPECT_NEAR(r.scores[b], best, 1e-4);
      }
    }
}

TEST(Decode, BeamScoresAreLengthPenalisedTeacherForcedLogProbs) {
  auto m = vit_cap(13, 8);
  const Tensor img = images(3, 25);
  for (double lp : {0.0, 0.7, 1.0}) {
    DecodeOptions opt;
    opt.max_len = 8;
    opt.beam_width = 4;
    opt.length_penalty = lp;
    const DecodeResult r = beam_search(*m, img, opt);
    const auto t = r.tokens.to_vector<int64_t>();
    const int64_t L = r.tokens.size(1);
    for (int64_t b = 0; b < 3; ++b) {
      std::vector<int64_t> gen = r.sequences[b];
      if (static_cast<int64_t>(gen.size()) < L && t[b * L + gen.size()] == opt.eos)
        gen.push_back(opt.eos);
      const double raw = sequence_log_prob(*m, img.narrow(0, b, 1), gen, opt.bos);
      const double want = lp == 0 ? raw : raw / std::pow(static_cast<double>(gen.size()), lp);
      EXPECT_NEAR(r.scores[b], want, 1e-4) << "lp " << lp << " image " << b;
    }
  }
}

TEST(Decode, BeamSearchIsIndependentOfTheBatchAndOfTheCache) {
  auto v = vit_cap(13, 9);
  auto c = cnn_rnn(13, 10);
  for (CaptionModel* m :
       {static_cast<CaptionModel*>(v.get()), static_cast<CaptionModel*>(c.get())}) {
    const Tensor img = images(3, 26);
    DecodeOptions opt;
    opt.max_len = 9;
    opt.beam_width = 3;
    const DecodeResult all = beam_search(*m, img, opt);
    for (int64_t b = 0; b < 3; ++b) {
      const DecodeResult one = beam_search(*m, img.narrow(0, b, 1), opt);
      EXPECT_EQ(one.sequences[0], all.sequences[b]) << m->type_name();
      EXPECT_NEAR(one.scores[0], all.scores[b], 1e-4);
    }
    opt.use_cache = false;
    EXPECT_EQ(beam_search(*m, img, opt).sequences, all.sequences) << m->type_name();
  }
}

// A captioner whose next-token distribution depends only on the current token: from <bos>,
// <eos> and "a" (token 3) are equally likely; after "a", <eos> is almost certain.
class ScriptedCaptioner : public CaptionModel {
 public:
  static constexpr int64_t kVocab = 4;
  ScriptedCaptioner() : CaptionModel("ScriptedCaptioner") {}
  Tensor forward(const Tensor&, const Tensor&) override {
    throw Error("ScriptedCaptioner: decoding only");
  }
  int64_t vocab_size() const override { return kVocab; }
  std::unique_ptr<DecodeSession> start_decoding(const Tensor& images, int64_t copies,
                                                bool) override {
    struct Session : DecodeSession {
      int64_t n;
      Tensor step(const Tensor& tokens) override {
        std::vector<float> logits;
        for (int64_t t : tokens.to_vector<int64_t>()) {
          const std::vector<float> row = t == 1   ? std::vector<float>{-30, -30, 0, 0}
                                         : t == 3 ? std::vector<float>{-30, -30, 10, -10}
                                                  : std::vector<float>{0, 0, 0, 0};
          logits.insert(logits.end(), row.begin(), row.end());
        }
        return Tensor::from_vector(logits, {n, kVocab});
      }
      void reorder(const Tensor&) override {}  // the state is the current token only
      int64_t max_steps() const override { return 100; }
    };
    auto session = std::make_unique<Session>();
    session->n = images.size(0) * copies;
    return session;
  }
};

// With a length penalty, a live beam's normalised score can still rise; stopping when the
// finished beams beat it at its present length (a common heuristic) would return the empty
// caption (log 1/2 over length 1) instead of "a" (about log 1/2 over length 2).
TEST(Decode, BeamSearchDoesNotStopWhileALongerBeamCanStillWin) {
  ScriptedCaptioner m;
  DecodeOptions opt;
  opt.max_len = 4;
  opt.beam_width = 1;
  opt.length_penalty = 1.0;
  const DecodeResult r = beam_search(m, images(1, 3), opt);
  EXPECT_EQ(r.sequences[0], std::vector<int64_t>({3}));
  EXPECT_NEAR(r.scores[0], (std::log(0.5) + std::log1p(-std::exp(-20.0))) / 2.0, 1e-5);
  opt.length_penalty = 0.0;  // the plain sum: the empty caption is best and ends the search
  const DecodeResult plain = beam_search(m, images(1, 3), opt);
  EXPECT_TRUE(plain.sequences[0].empty());
  EXPECT_NEAR(plain.scores[0], std::log(0.5), 1e-6);
}

TEST(Decode, BadOptionsAndReordersAreErrors) {
  auto m = vit_cap(13, 11);
  const Tensor img = images(2, 27);
  DecodeOptions opt;
  opt.max_len = 10;  // the model has 9 positions
  EXPECT_IRIS_ERROR(greedy_decode(*m, img, opt), "greedy_decode");
  opt.max_len = 0;
  EXPECT_IRIS_ERROR(beam_search(*m, img, opt), "beam_search");
  opt.max_len = 4;
  opt.beam_width = 0;
  EXPECT_IRIS_ERROR(decode(*m, img, opt), "beam_width");
  EXPECT_IRIS_ERROR(greedy_decode(*m, randn_seeded({3, 16, 16}, 1, DType::f32), DecodeOptions{}),
                    "greedy_decode");
  auto s = m->start_decoding(img, 2);
  s->step(Tensor::from_vector(std::vector<int64_t>{1, 1, 1, 1}, {4}));
  // Row 2 belongs to the second image: it cannot continue from row 1 (the first image's).
  EXPECT_IRIS_ERROR(s->reorder(Tensor::from_vector(std::vector<int64_t>{0, 0, 1, 3}, {4})),
                    "another image");
  EXPECT_IRIS_ERROR(s->step(Tensor::from_vector(std::vector<int64_t>{1, 1}, {2})), "ViTCaptioner");
  auto r = cnn_rnn(13, 12)->start_decoding(img, 1);
  EXPECT_IRIS_ERROR(r->reorder(Tensor::from_vector(std::vector<int64_t>{1, 0}, {2})),
                    "another image");
}

}  // namespace
}  // namespace iris::models
