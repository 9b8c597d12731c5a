// VQA accuracy (the VQA evaluation's vqaEval.py) and retrieval recall@K.
#include "models/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <string_view>
#include <unordered_map>

#include "core/error.h"
#include "models/tokenizer.h"

namespace iris::models {
namespace {

// vqaEval.py's tables (its upper-case keys never match after lower-casing; kept as it has
// them).
const std::unordered_map<std::string, std::string>& contractions() {
  static const std::unordered_map<std::string, std::string> kMap = {
      {"aint", "ain't"},
      {"arent", "aren't"},
      {"cant", "can't"},
      {"couldve", "could've"},
      {"couldnt", "couldn't"},
      {"couldn'tve", "couldn't've"},
      {"couldnt've", "couldn't've"},
      {"didnt", "didn't"},
      {"doesnt", "doesn't"},
      {"dont", "don't"},
      {"hadnt", "hadn't"},
      {"hadnt've", "hadn't've"},
      {"hadn'tve", "hadn't've"},
      {"hasnt", "hasn't"},
      {"havent", "haven't"},
      {"hed", "he'd"},
      {"hed've", "he'd've"},
      {"he'dve", "he'd've"},
      {"hes", "he's"},
      {"howd", "how'd"},
      {"howll", "how'll"},
      {"hows", "how's"},
      {"Id've", "I'd've"},
      {"I'dve", "I'd've"},
      {"Im", "I'm"},
      {"Ive", "I've"},
      {"isnt", "isn't"},
      {"itd", "it'd"},
      {"itd've", "it'd've"},
      {"it'dve", "it'd've"},
      {"itll", "it'll"},
      {"let's", "let's"},
      {"maam", "ma'am"},
      {"mightnt", "mightn't"},
      {"mightnt've", "mightn't've"},
      {"mightn'tve", "mightn't've"},
      {"mightve", "might've"},
      {"mustnt", "mustn't"},
      {"mustve", "must've"},
      {"neednt", "needn't"},
      {"notve", "not've"},
      {"oclock", "o'clock"},
      {"oughtnt", "oughtn't"},
      {"ow's'at", "'ow's'at"},
      {"'ows'at", "'ow's'at"},
      {"'ow'sat", "'ow's'at"},
      {"shant", "shan't"},
      {"shed've", "she'd've"},
      {"she'dve", "she'd've"},
      {"she's", "she's"},
      {"shouldve", "should've"},
      {"shouldnt", "shouldn't"},
      {"shouldnt've", "shouldn't've"},
      {"shouldn'tve", "shouldn't've"},
      {"somebody'd", "somebodyd"},
      {"somebodyd've", "somebody'd've"},
      {"somebody'dve", "somebody'd've"},
      {"somebodyll", "somebody'll"},
      {"somebodys", "somebody's"},
      {"someoned", "someone'd"},
      {"someoned've", "someone'd've"},
      {"someone'dve", "someone'd've"},
      {"someonell", "someone'll"},
      {"someones", "someone's"},
      {"somethingd", "something'd"},
      {"somethingd've", "something'd've"},
      {"something'dve", "something'd've"},
      {"somethingll", "something'll"},
      {"thats", "that's"},
      {"thered", "there'd"},
      {"thered've", "there'd've"},
      {"there'dve", "there'd've"},
      {"therere", "there're"},
      {"theres", "there's"},
      {"theyd", "they'd"},
      {"theyd've", "they'd've"},
      {"they'dve", "they'd've"},
      {"theyll", "they'll"},
      {"theyre", "they're"},
      {"theyve", "they've"},
      {"twas", "'twas"},
      {"wasnt", "wasn't"},
      {"wed've", "we'd've"},
      {"we'dve", "we'd've"},
      {"weve", "we've"},
      {"werent", "weren't"},
      {"whatll", "what'll"},
      {"whatre", "what're"},
      {"whats", "what's"},
      {"whatve", "what've"},
      {"whens", "when's"},
      {"whered", "where'd"},
      {"wheres", "where's"},
      {"whereve", "where've"},
      {"whod", "who'd"},
      {"whod've", "who'd've"},
      {"who'dve", "who'd've"},
      {"wholl", "who'll"},
      {"whos", "who's"},
      {"whove", "who've"},
      {"whyll", "why'll"},
      {"whyre", "why're"},
      {"whys", "why's"},
      {"wont", "won't"},
      {"wouldve", "would've"},
      {"wouldnt", "wouldn't"},
      {"wouldnt've", "wouldn't've"},
      {"wouldn'tve", "wouldn't've"},
      {"yall", "y'all"},
      {"yall'll", "y'all'll"},
      {"y'allll", "y'all'll"},
      {"yall'd've", "y'all'd've"},
      {"y'alld've", "y'all'd've"},
      {"y'all'dve", "y'all'd've"},
      {"youd", "you'd"},
      {"youd've", "you'd've"},
      {"you'dve", "you'd've"},
      {"youll", "you'll"},
      {"youre", "you're"},
      {"youve", "you've"}};
  return kMap;
}

const std::unordered_map<std::string, std::string>& number_words() {
  static const std::unordered_map<std::string, std::string> kMap = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"},   {"two", "2"},   {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"},  {"ten", "10"}};
  return kMap;
}

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

void replace_all(std::string* s, char from, std::string_view to) {
  std::string out;
  for (char c : *s) {
    if (c == from)
      out += to;
    else
      out.push_back(c);
  }
  *s = std::move(out);
}

// processPunctuation. The conditions look at the original text, as the reference does.
std::string process_punctuation(const std::string& in) {
  static constexpr char kPunct[] = {';',  '/', '[', ']', '"', '{', '}', '(', ')', '=', '+',
                                    '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'};
  bool comma_between_digits = false;
  for (size_t i = 1; i + 1 < in.size(); ++i)
    comma_between_digits |= in[i] == ',' && is_digit(in[i - 1]) && is_digit(in[i + 1]);
  std::string out = in;
  for (char p : kPunct) {
    const bool remove = in.find(std::string{p, ' '}) != std::string::npos ||
                        in.find(std::string{' ', p}) != std::string::npos || comma_between_digits;
    replace_all(&out, p, remove ? "" : " ");
  }
  // periodStrip.sub("", out, re.UNICODE): a period not followed by a digit goes, and the
  // flag lands in sub's `count` argument, so at most 32 of them.
  std::string stripped;
  int removed = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '.' && removed < 32 && !(i + 1 < out.size() && is_digit(out[i + 1]))) {
      ++removed;
      continue;
    }
    stripped.push_back(out[i]);
  }
  return stripped;
}

// processDigitArticle
std::string process_digit_article(const std::string& in) {
  const std::string lower = utf8_lower(in);
  std::vector<std::string> words;
  size_t i = 0;
  while (i < lower.size()) {
    while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
    size_t j = i;
    while (j < lower.size() && !std::isspace(static_cast<unsigned char>(lower[j]))) ++j;
    if (j > i) {
      std::string w = lower.substr(i, j - i);
      if (auto it = number_words().find(w); it != number_words().end()) w = it->second;
      if (w != "a" && w != "an" && w != "the") words.push_back(std::move(w));
    }
    i = j;
  }
  std::string out;
  for (std::string& w : words) {
    if (auto it = contractions().find(w); it != contractions().end()) w = it->second;
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

}  // namespace

std::string vqa_normalize(const std::string& answer) {
  std::string s = answer;
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  const size_t b = s.find_first_not_of(' ');
  s = b == std::string::npos ? "" : s.substr(b, s.find_last_not_of(' ') - b + 1);
  return process_digit_article(process_punctuation(s));
}

double vqa_answer_accuracy(const std::string& prediction, const std::vector<std::string>& answers,
                           VqaScoring scoring) {
  IRIS_CHECK(!answers.empty(), "vqa_answer_accuracy: no ground-truth answer for prediction '",
             prediction, "'");
  const std::string pred = vqa_normalize(prediction);
  std::vector<bool> match;
  int64_t matches = 0;
  for (const std::string& a : answers) {
    match.push_back(vqa_normalize(a) == pred);
    matches += match.back();
  }
  const auto n = static_cast<int64_t>(answers.size());
  if (n == 1) return static_cast<double>(matches);
  if (scoring == VqaScoring::simple)
    return std::min(1.0,
                    static_cast<double>(matches) / static_cast<double>(std::min<int64_t>(3, n)));
  double sum = 0;  // each human left out in turn
  for (int64_t i = 0; i < n; ++i)
    sum += std::min(1.0, static_cast<double>(matches - match[i]) / 3.0);
  return sum / static_cast<double>(n);
}

VqaAccuracy vqa_accuracy(const std::vector<std::string>& predictions,
                         const std::vector<std::vector<std::string>>& answers,
                         const std::vector<std::string>& question_types, VqaScoring scoring) {
  IRIS_CHECK(predictions.size() == answers.size(), "vqa_accuracy: ", predictions.size(),
             " predictions for ", answers.size(), " questions");
  IRIS_CHECK(question_types.empty() || question_types.size() == predictions.size(),
             "vqa_accuracy: ", question_types.size(), " question types for ", predictions.size(),
             " questions");
  IRIS_CHECK(!predictions.empty(), "vqa_accuracy: no questions");
  VqaAccuracy out;
  double total = 0;
  std::map<std::string, double> type_sum;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const double acc = vqa_answer_accuracy(predictions[i], answers[i], scoring);
    total += acc;
    if (!question_types.empty()) {
      type_sum[question_types[i]] += acc;
      ++out.type_count[question_types[i]];
    }
  }
  out.questions = static_cast<int64_t>(predictions.size());
  out.overall = total / static_cast<double>(out.questions);
  for (const auto& [type, sum] : type_sum)
    out.per_type[type] = sum / static_cast<double>(out.type_count[type]);
  return out;
}

RetrievalRecall retrieval_recall(const Tensor& similarity, const std::vector<int64_t>& text_image,
                                 const std::vector<int64_t>& ks,
                                 const std::vector<int64_t>& text_keys) {
  IRIS_CHECK(similarity.defined() && similarity.dim() == 2 && is_floating(similarity.dtype()),
             "retrieval_recall: expected a float similarity [N_images, N_texts], got ",
             similarity.defined() ? similarity.desc() : std::string("an undefined tensor"));
  const int64_t I = similarity.size(0), T = similarity.size(1);
  IRIS_CHECK(I > 0 && T > 0, "retrieval_recall: empty similarity ", similarity.desc());
  IRIS_CHECK(static_cast<int64_t>(text_image.size()) == T, "retrieval_recall: ", text_image.size(),
             " text-to-image labels for similarity ", similarity.desc());
  IRIS_CHECK(text_keys.empty() || static_cast<int64_t>(text_keys.size()) == T,
             "retrieval_recall: ", text_keys.size(), " text keys for similarity ",
             similarity.desc());
  IRIS_CHECK(!ks.empty(), "retrieval_recall: no K given");
  for (int64_t k : ks) IRIS_CHECK(k >= 1, "retrieval_recall: K must be >= 1, got ", k);
  std::vector<int64_t> texts_of_image(I, 0);
  for (int64_t t = 0; t < T; ++t) {
    IRIS_CHECK(text_image[t] >= 0 && text_image[t] < I, "retrieval_recall: text ", t,
               " belongs to image ", text_image[t], ", outside [0, ", I, ")");
    ++texts_of_image[text_image[t]];
  }
  for (int64_t i = 0; i < I; ++i)
    IRIS_CHECK(texts_of_image[i] > 0, "retrieval_recall: image ", i, " has no text");
  const std::vector<double> s = similarity.to_vector<double>();
  for (double v : s)
    IRIS_CHECK(std::isfinite(v), "retrieval_recall: a non-finite similarity (", v, ") in ",
               similarity.desc());

  // Which (image, text) pairs match: the text was written for the image, or (with keys) a
  // text of the same key was. images_of[g] lists (sorted) the images of text group g.
  std::vector<int64_t> group(T);
  std::vector<std::vector<int64_t>> images_of;
  std::map<int64_t, int64_t> group_of_key;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t key = text_keys.empty() ? t : text_keys[t];
    const auto [it, added] = group_of_key.emplace(key, static_cast<int64_t>(images_of.size()));
    if (added) images_of.emplace_back();
    group[t] = it->second;
    images_of[it->second].push_back(text_image[t]);
  }
  for (auto& images : images_of) std::sort(images.begin(), images.end());
  const auto match = [&](int64_t i, int64_t t) {
    return std::binary_search(images_of[group[t]].begin(), images_of[group[t]].end(), i);
  };
  // Rank (from 0) of the first match when ties put matches last.
  std::vector<int64_t> i2t_rank(I), t2i_rank(T);
  for (int64_t i = 0; i < I; ++i) {
    double best = -INFINITY;
    for (int64_t t = 0; t < T; ++t)
      if (match(i, t)) best = std::max(best, s[i * T + t]);
    int64_t rank = 0;
    for (int64_t t = 0; t < T; ++t) rank += !match(i, t) && s[i * T + t] >= best;
    i2t_rank[i] = rank;
  }
  for (int64_t t = 0; t < T; ++t) {
    double best = -INFINITY;
    for (int64_t i = 0; i < I; ++i)
      if (match(i, t)) best = std::max(best, s[i * T + t]);
    int64_t rank = 0;
    for (int64_t i = 0; i < I; ++i) rank += !match(i, t) && s[i * T + t] >= best;
    t2i_rank[t] = rank;
  }
  RetrievalRecall out;
  out.ks = ks;
  for (int64_t k : ks) {
    const auto hits = [k](const std::vector<int64_t>& ranks) {
      return static_cast<double>(
                 std::count_if(ranks.begin(), ranks.end(), [k](int64_t r) { return r < k; })) /
             static_cast<double>(ranks.size());
    };
    out.image_to_text.push_back(hits(i2t_rank));
    out.text_to_image.push_back(hits(t2i_rank));
  }
  return out;
}

}  // namespace iris::models
