// VQA answer normalisation and accuracy (expected strings from the VQA evaluation's own
// code, vqaEval.py), and retrieval recall@K with pessimistic ties.
#include <algorithm>
#include <cmath>

#include "models/metrics.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

TEST(VqaNormalize, MatchesVqaEval) {
  // Outputs of vqaEval.py's processPunctuation + processDigitArticle.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Two", "2"},
      {"The red one.", "red 1"},
      {"yes!", "yes"},
      {"1,000", "1000"},
      {"3.5", "3.5"},
      {"dont", "don't"},
      {"hot-dog", "hot dog"},
      {"a - b", "b"},
      {"Im here", "im here"},  // its upper-case keys never match after lower-casing
      {"  An   apple\t", "apple"},
      {"it's 2.5 m.", "it's 2.5 m"},
      {"red, blue", "red blue"},
      {"red , blue", "red blue"},
      {"(none)", "0"},
      {"x/y", "x y"},
      {"ten dollars.", "10 dollars"},
      {"e.g.", "eg"},
      {"a.b.c", "abc"},
      {"what?!", "what"},
      {"no. 5", "no 5"},
      {"10,000 and a-b", "10000 and ab"},
      {"The", ""},
      {"", ""},
      {std::string(40, '.'), std::string(8, '.')},  // re.sub's count=32 quirk
  };
  for (const auto& [in, expected] : cases) EXPECT_EQ(vqa_normalize(in), expected) << in;
}

TEST(VqaAccuracy, SingleAnswerIsExactMatchAfterNormalisation) {
  EXPECT_EQ(vqa_answer_accuracy("Two", {"2"}), 1.0);
  EXPECT_EQ(vqa_answer_accuracy("the circle.", {"circle"}), 1.0);
  EXPECT_EQ(vqa_answer_accuracy("square", {"circle"}), 0.0);
  EXPECT_EQ(vqa_answer_accuracy("square", {"circle"}, VqaScoring::simple), 0.0);
  EXPECT_EQ(vqa_answer_accuracy("circle", {"circle"}, VqaScoring::simple), 1.0);
}

TEST(VqaAccuracy, TenHumanAnswers) {
  std::vector<std::string> answers(10, "no");
  for (int i = 0; i < 3; ++i) answers[i] = "yes";
  // Official: leaving out one of the 3 "yes" leaves 2 (2/3), leaving out a "no" leaves 3 (1):
  // (3 * 2/3 + 7 * 1) / 10 = 0.9. Simple: min(3 / 3, 1) = 1.
  EXPECT_NEAR(vqa_answer_accuracy("Yes", answers), 0.9, 1e-15);
  EXPECT_EQ(vqa_answer_accuracy("yes", answers, VqaScoring::simple), 1.0);
  answers[2] = "no";
  // 2 matches: (2 * 1/3 + 8 * 2/3) / 10 = 0.6; simple 2/3.
  EXPECT_NEAR(vqa_answer_accuracy("yes", answers), 0.6, 1e-15);
  EXPECT_NEAR(vqa_answer_accuracy("yes", answers, VqaScoring::simple), 2.0 / 3, 1e-15);
  EXPECT_EQ(vqa_answer_accuracy("no", answers), 1.0);
  EXPECT_EQ(vqa_answer_accuracy("maybe", answers), 0.0);
  // Two answers, simple: min(#/min(3, 2), 1).
  EXPECT_EQ(vqa_answer_accuracy("red", {"red", "blue"}, VqaScoring::simple), 0.5);
  EXPECT_IRIS_ERROR(vqa_answer_accuracy("red", {}), "no ground-truth answer");
}

TEST(VqaAccuracy, OverallAndPerType) {
  const VqaAccuracy acc = vqa_accuracy({"red", "2", "yes", "circle", "no"},
                                       {{"red"}, {"two"}, {"no"}, {"square"}, {"no"}},
                                       {"color", "count", "yes/no", "shape", "yes/no"});
  EXPECT_EQ(acc.questions, 5);
  EXPECT_NEAR(acc.overall, 3.0 / 5, 1e-15);
  EXPECT_EQ(acc.per_type.at("color"), 1.0);
  EXPECT_EQ(acc.per_type.at("count"), 1.0);
  EXPECT_EQ(acc.per_type.at("shape"), 0.0);
  EXPECT_EQ(acc.per_type.at("yes/no"), 0.5);
  EXPECT_EQ(acc.type_count.at("yes/no"), 2);
  EXPECT_TRUE(vqa_accuracy({"a"}, {{"a"}}).per_type.empty());
  EXPECT_IRIS_ERROR(vqa_accuracy({"a", "b"}, {{"a"}}), "vqa_accuracy: 2 predictions for 1");
  EXPECT_IRIS_ERROR(vqa_accuracy({"a"}, {{"a"}}, {"x", "y"}), "2 question types for 1");
  EXPECT_IRIS_ERROR(vqa_accuracy({}, {}), "vqa_accuracy: no questions");
}

TEST(Retrieval, HandComputedWithTies) {
  // Images 0..2; texts 0, 1 describe image 0, text 2 image 1, text 3 image 2.
  const Tensor sim = Tensor::from_vector<double>(
      {0.9, 0.1, 0.9, 0.2,   // image 0: best true 0.9 ties a wrong 0.9 -> rank 1
       0.3, 0.1, 0.5, 0.1,   // image 1: rank 0
       0.8, 0.0, 0.7, 0.6},  // image 2: 0.8 and 0.7 above -> rank 2
      {3, 4});
  const RetrievalRecall r = retrieval_recall(sim, {0, 0, 1, 2}, {1, 2, 3});
  EXPECT_EQ(r.image_to_text, (std::vector<double>{1.0 / 3, 2.0 / 3, 1.0}));
  // Text ranks: 0 (0.9 top), 1 (0.1 ties image 1's 0.1), 2 (0.9, 0.7 above 0.5), 0.
  EXPECT_EQ(r.text_to_image, (std::vector<double>{0.5, 0.75, 1.0}));
  // The same from a transposed float32 view of texts x images.
  const Tensor t = sim.t().contiguous().to(DType::f32).t();
  const RetrievalRecall r32 = retrieval_recall(t, {0, 0, 1, 2}, {1, 2, 3});
  EXPECT_EQ(r32.image_to_text, r.image_to_text);
  EXPECT_EQ(r32.text_to_image, r.text_to_image);
}

// Rank by sorting: score descending, wrong candidates first among equals.
int64_t sorted_rank(const std::vector<std::pair<double, bool>>& scored) {
  std::vector<std::pair<double, bool>> s = scored;
  std::stable_sort(s.begin(), s.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : (!a.second && b.second);
  });
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i].second) return static_cast<int64_t>(i);
  return -1;
}

TEST(Retrieval, MatchesASortingReference) {
  const int64_t I = 20, T = 53;
  // Scores rounded to one decimal, so ties are common.
  std::vector<double> values = testing::randn_seeded({I, T}, 3, DType::f64).to_vector<double>();
  for (double& v : values) v = std::round(v * 5.0) / 10.0;
  const Tensor sim = Tensor::from_vector<double>(values, {I, T});
  std::vector<int64_t> text_image(T);
  for (int64_t t = 0; t < T; ++t) text_image[t] = t % I;
  const std::vector<double> s = sim.to_vector<double>();
  const std::vector<int64_t> ks = {1, 5, 10};
  std::vector<double> i2t(3, 0), t2i(3, 0);
  for (int64_t i = 0; i < I; ++i) {
    std::vector<std::pair<double, bool>> row;
    for (int64_t t = 0; t < T; ++t) row.emplace_back(s[i * T + t], text_image[t] == i);
    const int64_t rank = sorted_rank(row);
    for (int k = 0; k < 3; ++k) i2t[k] += rank < ks[k] ? 1.0 / I : 0.0;
  }
  for (int64_t t = 0; t < T; ++t) {
    std::vector<std::pair<double, bool>> col;
    for (int64_t i = 0; i < I; ++i) col.emplace_back(s[i * T + t], text_image[t] == i);
    const int64_t rank = sorted_rank(col);
    for (int k = 0; k < 3; ++k) t2i[k] += rank < ks[k] ? 1.0 / T : 0.0;
  }
  const RetrievalRecall r = retrieval_recall(sim, text_image);
  EXPECT_EQ(r.ks, ks);
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(r.image_to_text[k], i2t[k], 1e-12);
    EXPECT_NEAR(r.text_to_image[k], t2i[k], 1e-12);
  }
  // A perfect diagonal scores 1 everywhere.
  std::vector<float> eye(25, 0.0f);
  for (int i = 0; i < 5; ++i) eye[i * 6] = 1.0f;
  const RetrievalRecall perfect =
      retrieval_recall(Tensor::from_vector<float>(eye, {5, 5}), {0, 1, 2, 3, 4});
  EXPECT_EQ(perfect.image_to_text, (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(perfect.text_to_image, (std::vector<double>{1, 1, 1}));
  // All equal: every query loses its ties.
  const RetrievalRecall flat = retrieval_recall(zeros({5, 5}), {0, 1, 2, 3, 4}, {1, 4, 5});
  EXPECT_EQ(flat.text_to_image, (std::vector<double>{0, 0, 1}));
}

// With text keys, a text matches every image that any text of its key was written for.
TEST(Retrieval, SharedCaptionKeysMatchASortingReference) {
  const int64_t I = 20, T = 53;
  std::vector<double> values = testing::randn_seeded({I, T}, 4, DType::f64).to_vector<double>();
  for (double& v : values) v = std::round(v * 5.0) / 10.0;
  const Tensor sim = Tensor::from_vector<double>(values, {I, T});
  std::vector<int64_t> text_image(T), keys(T);
  for (int64_t t = 0; t < T; ++t) {
    text_image[t] = t % I;
    keys[t] = (t * 7) % 31;  // 31 keys over 53 texts: most are shared by two images
  }
  const auto match = [&](int64_t i, int64_t t) {
    for (int64_t u = 0; u < T; ++u)
      if (keys[u] == keys[t] && text_image[u] == i) return true;
    return false;
  };
  const std::vector<int64_t> ks = {1, 5, 10};
  std::vector<double> i2t(3, 0), t2i(3, 0);
  for (int64_t i = 0; i < I; ++i) {
    std::vector<std::pair<double, bool>> row;
    for (int64_t t = 0; t < T; ++t) row.emplace_back(values[i * T + t], match(i, t));
    const int64_t rank = sorted_rank(row);
    for (int k = 0; k < 3; ++k) i2t[k] += rank < ks[k] ? 1.0 / I : 0.0;
  }
  for (int64_t t = 0; t < T; ++t) {
    std::vector<std::pair<double, bool>> col;
    for (int64_t i = 0; i < I; ++i) col.emplace_back(values[i * T + t], match(i, t));
    const int64_t rank = sorted_rank(col);
    for (int k = 0; k < 3; ++k) t2i[k] += rank < ks[k] ? 1.0 / T : 0.0;
  }
  const RetrievalRecall r = retrieval_recall(sim, text_image, ks, keys);
  const RetrievalRecall pairs = retrieval_recall(sim, text_image, ks);
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(r.image_to_text[k], i2t[k], 1e-12);
    EXPECT_NEAR(r.text_to_image[k], t2i[k], 1e-12);
    EXPECT_GE(r.text_to_image[k], pairs.text_to_image[k]);
  }
  EXPECT_GT(r.text_to_image[0], pairs.text_to_image[0]);  // the keys do change the figure
  // Distinct keys are the pairwise definition.
  std::vector<int64_t> distinct(T);
  for (int64_t t = 0; t < T; ++t) distinct[t] = 1000 + t;
  const RetrievalRecall same = retrieval_recall(sim, text_image, ks, distinct);
  EXPECT_EQ(same.text_to_image, pairs.text_to_image);
  EXPECT_EQ(same.image_to_text, pairs.image_to_text);
  EXPECT_IRIS_ERROR(retrieval_recall(sim, text_image, ks, {1, 2}), "2 text keys");
}

TEST(Retrieval, BadInput) {
  EXPECT_IRIS_ERROR(retrieval_recall(zeros({2, 3}), {0, 1}), "2 text-to-image labels");
  EXPECT_IRIS_ERROR(retrieval_recall(zeros({2, 3}), {0, 0, 0}), "image 1 has no text");
  EXPECT_IRIS_ERROR(retrieval_recall(zeros({2, 3}), {0, 1, 2}), "text 2 belongs to image 2");
  EXPECT_IRIS_ERROR(retrieval_recall(zeros({6}), {0}), "expected a float similarity");
  EXPECT_IRIS_ERROR(retrieval_recall(zeros({2, 2}, DType::i64), {0, 1}), "expected a float");
  EXPECT_IRIS_ERROR(retrieval_recall(zeros({2, 2}), {0, 1}, {0}), "K must be >= 1");
  EXPECT_IRIS_ERROR(retrieval_recall(full({2, 2}, NAN), {0, 1}), "non-finite similarity");
}

}  // namespace
}  // namespace iris::models
