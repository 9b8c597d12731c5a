#pragma once
// The evaluation metrics of `iris eval`, computed as the reference implementations do:
//
// * captioning: BLEU-1..4, CIDEr-D and ROUGE-L of the COCO caption evaluation
//   (pycocoevalcap 1.2: its Bleu, Cider and Rouge scorers, number for number, on the
//   captions as its PTBTokenizer leaves them);
// * VQA: the VQA evaluation's accuracy and answer normalisation, overall and per type;
// * retrieval: recall@K in both directions from a similarity matrix.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace iris::models {

// ---- caption tokenisation ----
// pycocoevalcap's PTBTokenizer: Stanford's PTBTokenizer (-lowerCase) then the tokens
// '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; removed. The Java tokenizer is
// reimplemented by rules covering what captions contain (clitics 's n't 're 've 'll 'd 'm,
// cannot / gonna / wanna, quotes, brackets as -lrb- -lsb- -lcb- (kept, as pycocoevalcap
// compares the upper-case forms after lower-casing), sentence periods versus
// abbreviations "mr." "u.s." "c.", $ # % * split off, typographic quotes, dashes and
// ellipses); tests/parity compares it with the Java tokenizer.
std::vector<std::string> coco_tokenize(const std::string& caption);

// One candidate per image and its references (>= 1), each a list of tokens (what
// pycocoevalcap's scorers get as space-separated strings).
struct TokenizedCaptions {
  std::vector<std::vector<std::string>> candidates;
  std::vector<std::vector<std::vector<std::string>>> references;
};
// coco_tokenize on every caption; throws unless the sizes agree and every image has a
// reference.
TokenizedCaptions tokenize_captions(const std::vector<std::string>& candidates,
                                    const std::vector<std::vector<std::string>>& references);

struct BleuScore {
  std::array<double, 4> score{};                 // corpus BLEU-1..4
  std::array<std::vector<double>, 4> per_image;  // sentence BLEU-n of each image
  double test_length = 0, reference_length = 0;  // corpus totals (closest reference)
};
// Corpus BLEU-1..4 with the "closest" reference length and the brevity penalty over the
// corpus, including pycocoevalcap's 1e-15 / 1e-9 smoothing of the precisions.
BleuScore bleu(const TokenizedCaptions& captions);

struct CorpusScore {
  double score = 0;
  std::vector<double> per_image;
};
// CIDEr-D (pycocoevalcap's Cider): n = 1..4, tf-idf with document frequencies from the
// references of this set, clipped n-gram weights, the Gaussian length penalty (sigma, on
// the bigram counts, as the reference code does), averaged over references and n, x10.
CorpusScore cider_d(const TokenizedCaptions& captions, double sigma = 6.0);
// ROUGE-L: LCS precision and recall, each maximised over the references, F-measure with
// beta = 1.2; the mean over images.
CorpusScore rouge_l(const TokenizedCaptions& captions, double beta = 1.2);

struct CaptionMetrics {
  std::array<double, 4> bleu{};
  double cider_d = 0, rouge_l = 0;
};
CaptionMetrics caption_metrics(const std::vector<std::string>& candidates,
                               const std::vector<std::vector<std::string>>& references);

// ---- VQA ----
// The VQA evaluation's normalisation (vqaEval.py processPunctuation then
// processDigitArticle): punctuation removed or spaced, periods not before a digit dropped,
// lower case, number words to digits, articles dropped, contractions restored:
// "Two dogs." -> "2 dogs", "The Red Ball!" -> "red ball".
std::string vqa_normalize(const std::string& answer);

enum class VqaScoring {
  // The VQA evaluation: mean over the leave-one-out subsets of the human answers of
  // min(#matches / 3, 1); with a single answer, exact match.
  official,
  // min(#humans who gave the prediction / min(3, #answers), 1).
  simple,
};
// Both prediction and answers are normalised (the official code normalises the
// ground truth only by punctuation, as VQA's annotations come normalised already).
double vqa_answer_accuracy(const std::string& prediction, const std::vector<std::string>& answers,
                           VqaScoring scoring = VqaScoring::official);

struct VqaAccuracy {
  double overall = 0;  // mean over questions, in [0, 1]
  int64_t questions = 0;
  std::map<std::string, double> per_type;  // by question type, when types are given
  std::map<std::string, int64_t> type_count;
};
// question_types: empty, or one per question.
VqaAccuracy vqa_accuracy(const std::vector<std::string>& predictions,
                         const std::vector<std::vector<std::string>>& answers,
                         const std::vector<std::string>& question_types = {},
                         VqaScoring scoring = VqaScoring::official);

// ---- retrieval ----
struct RetrievalRecall {
  std::vector<int64_t> ks;
  std::vector<double> image_to_text;  // recall@ks[i]: an image's best caption ranks < K
  std::vector<double> text_to_image;  // a caption's image ranks < K
};
// similarity [N_images, N_texts] (any float dtype); text_image[t] is the image of text t,
// and every image needs at least one text. Ties count against the query: a true match
// ranks after every wrong candidate with an equal score.
// text_keys (empty, or one per text): texts with equal keys are the same caption (e.g. the
// same string written for two images by a caption grammar). A caption then matches every
// image it was written for, and an image every copy of its captions: identical strings
// have identical embeddings, so no model could tell which copy was meant.
RetrievalRecall retrieval_recall(const Tensor& similarity, const std::vector<int64_t>& text_image,
                                 const std::vector<int64_t>& ks = {1, 5, 10},
                                 const std::vector<int64_t>& text_keys = {});

}  // namespace iris::models
