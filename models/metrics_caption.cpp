// BLEU, CIDEr-D and ROUGE-L as pycocoevalcap 1.2 computes them (bleu_scorer.py,
// cider_scorer.py, rouge.py), including their quirks, so the figures match the field's.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "models/metrics.h"

namespace iris::models {
namespace {

constexpr int kMaxN = 4;
using Tokens = std::vector<std::string>;
using NgramCounts = std::unordered_map<std::string, int64_t>;

// n-grams of length 1..4 (keys: the words joined by spaces; tokens hold no spaces), with
// the order n of each key recoverable from its space count.
NgramCounts count_ngrams(const Tokens& words) {
  NgramCounts counts;
  const int64_t len = static_cast<int64_t>(words.size());
  for (int64_t k = 1; k <= kMaxN; ++k) {
    for (int64_t i = 0; i + k <= len; ++i) {
      std::string key = words[i];
      for (int64_t j = 1; j < k; ++j) key += " " + words[i + j];
      ++counts[key];
    }
  }
  return counts;
}

int ngram_order(const std::string& key) {
  return 1 + static_cast<int>(std::count(key.begin(), key.end(), ' '));
}

void check_captions(const TokenizedCaptions& c, const char* op) {
  IRIS_CHECK(c.candidates.size() == c.references.size(), op, ": ", c.candidates.size(),
             " candidates for ", c.references.size(), " reference sets");
  IRIS_CHECK(!c.candidates.empty(), op, ": no captions to score");
  for (size_t i = 0; i < c.references.size(); ++i)
    IRIS_CHECK(!c.references[i].empty(), op, ": image ", i, " has no reference caption");
}

// ---- CIDEr-D ----

struct TfIdf {
  std::array<std::unordered_map<std::string, double>, kMaxN> vec;
  std::array<double, kMaxN> norm{};
  int64_t length = 0;  // the reference code counts bigrams here (its `if n == 1`)
};

TfIdf tf_idf(const NgramCounts& counts, const std::unordered_map<std::string, double>& df,
             double log_images) {
  TfIdf out;
  for (const auto& [ngram, tf] : counts) {
    const int n = ngram_order(ngram) - 1;
    auto it = df.find(ngram);
    const double log_df = std::log(std::max(1.0, it == df.end() ? 0.0 : it->second));
    const double w = static_cast<double>(tf) * (log_images - log_df);
    out.vec[n][ngram] = w;
    out.norm[n] += w * w;
    if (n == 1) out.length += tf;
  }
  for (double& v : out.norm) v = std::sqrt(v);
  return out;
}

std::array<double, kMaxN> cider_similarity(const TfIdf& hyp, const TfIdf& ref, double sigma) {
  const double delta = static_cast<double>(hyp.length - ref.length);
  std::array<double, kMaxN> val{};
  for (int n = 0; n < kMaxN; ++n) {
    for (const auto& [ngram, w] : hyp.vec[n]) {
      auto it = ref.vec[n].find(ngram);
      const double wr = it == ref.vec[n].end() ? 0.0 : it->second;
      val[n] += std::min(w, wr) * wr;  // CIDEr-D's clipping
    }
    if (hyp.norm[n] != 0 && ref.norm[n] != 0) val[n] /= hyp.norm[n] * ref.norm[n];
    val[n] *= std::exp(-(delta * delta) / (2 * sigma * sigma));
  }
  return val;
}

// ---- ROUGE-L ----

int64_t lcs_length(const Tokens& a, const Tokens& b) {
  std::vector<int64_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// rouge.py splits the joined caption on " ": an empty caption is one empty token.
Tokens rouge_tokens(const Tokens& t) { return t.empty() ? Tokens{""} : t; }

}  // namespace

TokenizedCaptions tokenize_captions(const std::vector<std::string>& candidates,
                                    const std::vector<std::vector<std::string>>& references) {
  IRIS_CHECK(candidates.size() == references.size(), "tokenize_captions: ", candidates.size(),
             " candidates for ", references.size(), " reference sets");
  TokenizedCaptions out;
  for (size_t i = 0; i < candidates.size(); ++i) {
    IRIS_CHECK(!references[i].empty(), "tokenize_captions: image ", i, " has no reference caption");
    out.candidates.push_back(coco_tokenize(candidates[i]));
    out.references.emplace_back();
    for (const std::string& r : references[i]) out.references.back().push_back(coco_tokenize(r));
  }
  return out;
}

BleuScore bleu(const TokenizedCaptions& captions) {
  check_captions(captions, "bleu");
  constexpr double kSmall = 1e-9, kTiny = 1e-15;
  BleuScore out;
  std::array<double, kMaxN> total_guess{}, total_correct{};
  for (size_t i = 0; i < captions.candidates.size(); ++i) {
    // cook_refs: the largest count of each n-gram over the references.
    NgramCounts max_counts;
    std::vector<int64_t> ref_lengths;
    for (const Tokens& ref : captions.references[i]) {
      ref_lengths.push_back(static_cast<int64_t>(ref.size()));
      for (const auto& [ngram, n] : count_ngrams(ref))
        max_counts[ngram] = std::max(max_counts[ngram], n);
    }
    // cook_test
    const Tokens& test = captions.candidates[i];
    const int64_t test_len = static_cast<int64_t>(test.size());
    std::array<double, kMaxN> guess{}, correct{};
    for (int k = 0; k < kMaxN; ++k)
      guess[k] = static_cast<double>(std::max<int64_t>(0, test_len - k));
    for (const auto& [ngram, n] : count_ngrams(test)) {
      auto it = max_counts.find(ngram);
      correct[ngram_order(ngram) - 1] +=
          static_cast<double>(std::min(it == max_counts.end() ? 0 : it->second, n));
    }
    // "closest": the reference length nearest the candidate's, the shorter on a tie.
    int64_t ref_len = ref_lengths[0];
    for (int64_t l : ref_lengths) {
      const int64_t d = std::llabs(l - test_len), best = std::llabs(ref_len - test_len);
      if (d < best || (d == best && l < ref_len)) ref_len = l;
    }
    out.test_length += static_cast<double>(test_len);
    out.reference_length += static_cast<double>(ref_len);
    double b = 1.0;
    for (int k = 0; k < kMaxN; ++k) {
      total_guess[k] += guess[k];
      total_correct[k] += correct[k];
      b *= (correct[k] + kTiny) / (guess[k] + kSmall);
      out.per_image[k].push_back(std::pow(b, 1.0 / (k + 1)));
    }
    const double ratio =
        (static_cast<double>(test_len) + kTiny) / (static_cast<double>(ref_len) + kSmall);
    if (ratio < 1)
      for (int k = 0; k < kMaxN; ++k) out.per_image[k].back() *= std::exp(1 - 1 / ratio);
  }
  double b = 1.0;
  for (int k = 0; k < kMaxN; ++k) {
    b *= (total_correct[k] + kTiny) / (total_guess[k] + kSmall);
    out.score[k] = std::pow(b, 1.0 / (k + 1));
  }
  const double ratio = (out.test_length + kTiny) / (out.reference_length + kSmall);
  if (ratio < 1)
    for (double& s : out.score) s *= std::exp(1 - 1 / ratio);
  return out;
}

CorpusScore cider_d(const TokenizedCaptions& captions, double sigma) {
  check_captions(captions, "cider_d");
  IRIS_CHECK(sigma > 0, "cider_d: sigma must be positive, got ", sigma);
  const size_t images = captions.candidates.size();
  std::vector<std::vector<NgramCounts>> ref_counts(images);
  std::unordered_map<std::string, double> df;  // images whose references hold the n-gram
  for (size_t i = 0; i < images; ++i) {
    std::unordered_set<std::string> seen;
    for (const Tokens& ref : captions.references[i]) {
      ref_counts[i].push_back(count_ngrams(ref));
      for (const auto& [ngram, n] : ref_counts[i].back()) seen.insert(ngram);
    }
    for (const std::string& ngram : seen) df[ngram] += 1.0;
  }
  const double log_images = std::log(static_cast<double>(images));
  CorpusScore out;
  double sum = 0;
  for (size_t i = 0; i < images; ++i) {
    const TfIdf hyp = tf_idf(count_ngrams(captions.candidates[i]), df, log_images);
    std::array<double, kMaxN> score{};
    for (const NgramCounts& ref : ref_counts[i]) {
      const std::array<double, kMaxN> s = cider_similarity(hyp, tf_idf(ref, df, log_images), sigma);
      for (int n = 0; n < kMaxN; ++n) score[n] += s[n];
    }
    double mean = 0;
    for (double s : score) mean += s;
    mean /= kMaxN;
    mean /= static_cast<double>(ref_counts[i].size());
    mean *= 10.0;
    out.per_image.push_back(mean);
    sum += mean;
  }
  out.score = sum / static_cast<double>(images);
  return out;
}

CorpusScore rouge_l(const TokenizedCaptions& captions, double beta) {
  check_captions(captions, "rouge_l");
  IRIS_CHECK(beta > 0, "rouge_l: beta must be positive, got ", beta);
  CorpusScore out;
  double sum = 0;
  for (size_t i = 0; i < captions.candidates.size(); ++i) {
    const Tokens cand = rouge_tokens(captions.candidates[i]);
    double prec_max = 0, rec_max = 0;
    for (const Tokens& r : captions.references[i]) {
      const Tokens ref = rouge_tokens(r);
      const auto lcs = static_cast<double>(lcs_length(ref, cand));
      prec_max = std::max(prec_max, lcs / static_cast<double>(cand.size()));
      rec_max = std::max(rec_max, lcs / static_cast<double>(ref.size()));
    }
    double score = 0;
    if (prec_max != 0 && rec_max != 0)
      score = ((1 + beta * beta) * prec_max * rec_max) / (rec_max + beta * beta * prec_max);
    out.per_image.push_back(score);
    sum += score;
  }
  out.score = sum / static_cast<double>(out.per_image.size());
  return out;
}

CaptionMetrics caption_metrics(const std::vector<std::string>& candidates,
                               const std::vector<std::vector<std::string>>& references) {
  const TokenizedCaptions t = tokenize_captions(candidates, references);
  CaptionMetrics m;
  m.bleu = bleu(t).score;
  m.cider_d = cider_d(t).score;
  m.rouge_l = rouge_l(t).score;
  return m;
}

}  // namespace iris::models
