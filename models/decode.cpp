#include "models/decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/ops.h"

namespace iris::models {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

void check_images(const Tensor& images, const DecodeOptions& opt, const char* who) {
  IRIS_CHECK(images.defined() && images.dim() == 4 && images.size(0) > 0, who,
             ": expected images [B, C, H, W] with B > 0, got ",
             images.defined() ? images.desc() : "undefined");
  IRIS_CHECK(opt.max_len > 0 && opt.beam_width > 0, who, ": max_len (", opt.max_len,
             ") and beam_width (", opt.beam_width, ") must be positive");
}

// log_softmax of logits [N, V] on the host, row-major.
std::vector<float> host_log_probs(const Tensor& logits) {
  return log_softmax(logits.to(DType::f32), -1).to_vector<float>();
}

DecodeResult finish(const std::vector<std::vector<int64_t>>& generated, std::vector<double> scores,
                    const DecodeOptions& opt) {
  const int64_t B = static_cast<int64_t>(generated.size());
  size_t L = 0;
  for (const auto& g : generated) L = std::max(L, g.size());
  std::vector<int64_t> flat(B * L, opt.pad);
  DecodeResult r;
  for (int64_t b = 0; b < B; ++b) {
    std::copy(generated[b].begin(), generated[b].end(), flat.begin() + b * L);
    std::vector<int64_t> words = generated[b];
    if (!words.empty() && words.back() == opt.eos) words.pop_back();
    r.sequences.push_back(std::move(words));
  }
  r.tokens = Tensor::from_vector(flat, {B, static_cast<int64_t>(L)});
  r.scores = std::move(scores);
  return r;
}

}  // namespace

Tensor repeat_rows(int64_t B, int64_t copies, Device device) {
  std::vector<int64_t> idx(B * copies);
  for (int64_t i = 0; i < B * copies; ++i) idx[i] = i / copies;
  return Tensor::from_vector(idx, {B * copies}).to(device);
}

bool check_reorder_rows(const Tensor& rows, int64_t N, int64_t copies, const char* who) {
  IRIS_CHECK(rows.defined() && rows.dim() == 1 && rows.size(0) == N && rows.dtype() == DType::i64,
             who, ": reorder expects int64 rows [", N, "], got ",
             rows.defined() ? rows.desc() : "undefined");
  const std::vector<int64_t> r = rows.to_vector<int64_t>();
  bool identity = true;
  for (int64_t i = 0; i < N; ++i) {
    IRIS_CHECK(r[i] >= 0 && r[i] < N && r[i] / copies == i / copies, who, ": row ", i,
               " cannot continue from row ", r[i], " (another image; ", copies, " rows per image)");
    identity = identity && r[i] == i;
  }
  return !identity;
}

CaptionLoss caption_loss(CaptionModel& model, const Tensor& images, const Tensor& tokens,
                         int64_t ignore_index) {
  IRIS_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(1) >= 2 &&
                 (tokens.dtype() == DType::i64 || tokens.dtype() == DType::i32),
             "caption_loss: expected integer tokens [B, T + 1] with T >= 1, got ",
             tokens.defined() ? tokens.desc() : "undefined");
  const int64_t B = tokens.size(0), T = tokens.size(1) - 1;
  const Tensor ids = tokens.to(DType::i64);
  CaptionLoss out;
  out.logits = model.forward(images, ids.narrow(1, 0, T));
  const int64_t V = out.logits.size(2);
  out.loss = cross_entropy(out.logits.reshape({B * T, V}), ids.narrow(1, 1, T).reshape({B * T}),
                           ignore_index);
  return out;
}

std::vector<std::pair<std::string, Tensor>> caption_forward_outputs(CaptionModel& model,
                                                                    const Tensor& images,
                                                                    const Tensor& tokens,
                                                                    bool grads) {
  std::vector<std::pair<std::string, Tensor>> out;
  if (!grads) {
    NoGradGuard no_grad;
    IRIS_CHECK(tokens.defined() && tokens.dim() == 2 && tokens.size(1) >= 2,
               "caption_forward_outputs: expected tokens [B, T + 1] with T >= 1, got ",
               tokens.defined() ? tokens.desc() : "undefined");
    const int64_t T = tokens.size(1) - 1;
    out.emplace_back("logits", model.forward(images, tokens.to(DType::i64).narrow(1, 0, T)));
    return out;
  }
  model.zero_grad();
  const CaptionLoss cl = caption_loss(model, images, tokens);
  cl.loss.backward();
  out.emplace_back("logits", cl.logits.detach());
  out.emplace_back("loss", cl.loss.detach().reshape({1}));
  for (const auto& [name, p] : model.named_parameters()) {
    const Tensor g = p.grad();
    out.emplace_back("grad." + name, g.defined() ? g : zeros_like(p));
  }
  return out;
}

DecodeResult greedy_decode(CaptionModel& model, const Tensor& images, const DecodeOptions& opt) {
  check_images(images, opt, "greedy_decode");
  NoGradGuard no_grad;
  const int64_t B = images.size(0);
  std::unique_ptr<DecodeSession> session = model.start_decoding(images, 1, opt.use_cache);
  IRIS_CHECK(opt.max_len <= session->max_steps(), "greedy_decode: max_len ", opt.max_len,
             " exceeds the model's ", session->max_steps(), " positions");
  std::vector<std::vector<int64_t>> generated(B);
  std::vector<double> scores(B, 0.0);
  std::vector<bool> done(B, false);
  std::vector<int64_t> current(B, opt.bos);
  for (int64_t s = 0; s < opt.max_len; ++s) {
    const std::vector<float> logp =
        host_log_probs(session->step(Tensor::from_vector(current, {B}).to(images.device())));
    const int64_t V = static_cast<int64_t>(logp.size()) / B;
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) {
        current[b] = opt.pad;
        continue;
      }
      const float* row = logp.data() + b * V;
      const int64_t best = std::max_element(row, row + V) - row;  // the first maximum
      generated[b].push_back(best);
      scores[b] += row[best];
      current[b] = best;
      done[b] = best == opt.eos;
      all_done = all_done && done[b];
    }
    if (all_done) break;
  }
  return finish(generated, std::move(scores), opt);
}

DecodeResult beam_search(CaptionModel& model, const Tensor& images, const DecodeOptions& opt) {
  check_images(images, opt, "beam_search");
  NoGradGuard no_grad;
  const int64_t B = images.size(0), K = opt.beam_width, N = B * K;
  std::unique_ptr<DecodeSession> session = model.start_decoding(images, K, opt.use_cache);
  IRIS_CHECK(opt.max_len <= session->max_steps(), "beam_search: max_len ", opt.max_len,
             " exceeds the model's ", session->max_steps(), " positions");
  auto normalised = [&](double score, int64_t length) {
    return opt.length_penalty == 0.0
               ? score
               : score / std::pow(static_cast<double>(length), opt.length_penalty);
  };
  struct Hypothesis {
    double score;  // length-penalised
    std::vector<int64_t> tokens;
  };
  std::vector<std::vector<Hypothesis>> finished(B);  // best first, at most K each
  std::vector<bool> done(B, false);
  // Only the first beam of each image starts live, so the first expansion is not K copies.
  std::vector<double> beam_score(N, kNegInf);
  for (int64_t b = 0; b < B; ++b) beam_score[b * K] = 0.0;
  std::vector<std::vector<int64_t>> history(N);
  std::vector<int64_t> current(N, opt.bos), rows(N);
  std::vector<int64_t> order;
  for (int64_t s = 0; s < opt.max_len; ++s) {
    const std::vector<float> logp =
        host_log_probs(session->step(Tensor::from_vector(current, {N}).to(images.device())));
    const int64_t V = static_cast<int64_t>(logp.size()) / N;
    std::vector<double> next_score(N, kNegInf);
    std::vector<std::vector<int64_t>> next_history(N);
    std::vector<int64_t> next_token(N, opt.pad);
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t k = 0; k < K; ++k) rows[b * K + k] = b * K + k;
      if (done[b]) continue;
      auto candidate = [&](int64_t i) { return beam_score[b * K + i / V] + logp[b * K * V + i]; };
      // The best 2K continuations over all beams of this image (ties: lower index first).
      order.resize(K * V);
      std::iota(order.begin(), order.end(), 0);
      const int64_t keep = std::min<int64_t>(2 * K, K * V);
      std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                        [&](int64_t x, int64_t y) {
                          const double cx = candidate(x), cy = candidate(y);
                          return cx > cy || (cx == cy && x < y);
                        });
      int64_t live = 0;
      for (int64_t r = 0; r < keep && live < K; ++r) {
        const int64_t parent = b * K + order[r] / V, token = order[r] % V;
        const double score = candidate(order[r]);
        if (score == kNegInf) break;
        if (token == opt.eos) {
          if (r >= K) continue;  // an <eos> below the top K does not count (as in HF)
          std::vector<int64_t> seq = history[parent];
          seq.push_back(token);
          auto& fin = finished[b];
          fin.push_back({normalised(score, s + 1), std::move(seq)});
          std::stable_sort(fin.begin(), fin.end(), [](const Hypothesis& x, const Hypothesis& y) {
            return x.score > y.score;
          });
          if (static_cast<int64_t>(fin.size()) > K) fin.pop_back();
          continue;
        }
        const int64_t row = b * K + live++;
        rows[row] = parent;
        next_score[row] = score;
        next_token[row] = token;
        next_history[row] = history[parent];
        next_history[row].push_back(token);
      }
      // Stop when no live beam can still beat the K-th finished one. Log-probs are <= 0, so
      // a beam's raw score only falls; its best normalised score is at the longest length
      // it can reach (max_len) for a positive penalty, at its present length otherwise.
      const auto& fin = finished[b];
      const double best_reachable = opt.length_penalty > 0.0
                                        ? normalised(next_score[b * K], opt.max_len)
                                        : normalised(next_score[b * K], s + 1);
      done[b] = live == 0 ||
                (static_cast<int64_t>(fin.size()) >= K && fin.back().score >= best_reachable);
      all_done = all_done && done[b];
    }
    beam_score = std::move(next_score);
    history = std::move(next_history);
    current = next_token;
    if (all_done) break;
    session->reorder(Tensor::from_vector(rows, {N}).to(images.device()));
  }
  // Images still searching at max_len rank their live beams with the finished ones.
  std::vector<std::vector<int64_t>> generated(B);
  std::vector<double> scores(B, kNegInf);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<Hypothesis> all = finished[b];
    if (!done[b])
      for (int64_t k = 0; k < K; ++k)
        if (beam_score[b * K + k] > kNegInf)
          all.push_back(
              {normalised(beam_score[b * K + k], static_cast<int64_t>(history[b * K + k].size())),
               history[b * K + k]});
    std::stable_sort(all.begin(), all.end(),
                     [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
    if (!all.empty()) {
      generated[b] = all.front().tokens;
      scores[b] = all.front().score;
    }
  }
  return finish(generated, std::move(scores), opt);
}

DecodeResult decode(CaptionModel& model, const Tensor& images, const DecodeOptions& opt) {
  return opt.beam_width == 1 ? greedy_decode(model, images, opt) : beam_search(model, images, opt);
}

}  // namespace iris::models
