// Caption metrics against pycocoevalcap run live (tests/parity/cases_metrics.py): the Java
// PTBTokenizer's output against coco_tokenize, then Bleu, Cider and Rouge on its tokens,
// then the whole pipeline from raw captions. Skips when pycocoevalcap is not installed.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/metrics.h"
#include "nn/json_lite.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string joined(const std::vector<std::string>& tokens) {
  std::string out;
  for (const std::string& t : tokens) out += (out.empty() ? "" : " ") + t;
  return out;
}

std::vector<double> numbers(const json::Value& v) {
  std::vector<double> out;
  for (const json::Value& x : v.arr) out.push_back(x.num);
  return out;
}

class MetricsParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("iris_parity_metrics");
    const std::string out = dir_ + "/metrics.json";
    rc_ = testing::run_python(testing::source_dir() + "/tests/parity/cases_metrics.py", {out});
    if (rc_ != 0) return;
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    doc_ = new json::Value(json::parse(text.str(), out));
  }
  static void TearDownTestSuite() {
    delete doc_;
    doc_ = nullptr;
    std::filesystem::remove_all(dir_);
  }
  void SetUp() override {
    if (rc_ == 3) GTEST_SKIP() << "pycocoevalcap is not installed (pip install pycocoevalcap)";
    ASSERT_EQ(rc_, 0) << "cases_metrics.py failed";
  }
  const json::Value& at(const char* key) const { return *doc_->find(key); }

  static std::string dir_;
  static int rc_;
  static json::Value* doc_;
};
std::string MetricsParity::dir_;
int MetricsParity::rc_ = -1;
json::Value* MetricsParity::doc_ = nullptr;

TEST_F(MetricsParity, TokenizerMatchesJava) {
  if (!at("java").b) GTEST_SKIP() << "java is not installed: PTBTokenizer did not run";
  int64_t checked = 0;
  for (const json::Value& im : at("images").arr) {
    EXPECT_EQ(joined(coco_tokenize(im.find("candidate")->str)), im.find("candidate_tokens")->str)
        << im.find("candidate")->str;
    const auto& refs = im.find("references")->arr;
    const auto& toks = im.find("reference_tokens")->arr;
    for (size_t r = 0; r < refs.size(); ++r, ++checked)
      EXPECT_EQ(joined(coco_tokenize(refs[r].str)), toks[r].str) << refs[r].str;
  }
  EXPECT_GT(checked, 300);
}

TEST_F(MetricsParity, ScorersMatchOnTheSameTokens) {
  TokenizedCaptions t;
  for (const json::Value& im : at("images").arr) {
    t.candidates.push_back(split_spaces(im.find("candidate_tokens")->str));
    t.references.emplace_back();
    for (const json::Value& r : im.find("reference_tokens")->arr)
      t.references.back().push_back(split_spaces(r.str));
  }
  const BleuScore b = bleu(t);
  const std::vector<double> expected_bleu = numbers(at("bleu"));
  for (int k = 0; k < 4; ++k) {
    EXPECT_NEAR(b.score[k], expected_bleu[k], 1e-12 * expected_bleu[k]) << "BLEU-" << k + 1;
    const std::vector<double> per = numbers(at("bleu_per_image").arr[k]);
    for (size_t i = 0; i < per.size(); ++i)
      EXPECT_NEAR(b.per_image[k][i], per[i], 1e-12 * per[i] + 1e-300) << k << " " << i;
  }
  const CorpusScore c = cider_d(t);
  EXPECT_NEAR(c.score, at("cider").num, 1e-12 * at("cider").num);
  const std::vector<double> cider_per = numbers(at("cider_per_image"));
  for (size_t i = 0; i < cider_per.size(); ++i)
    EXPECT_NEAR(c.per_image[i], cider_per[i], 1e-12) << i;
  const CorpusScore r = rouge_l(t);
  EXPECT_NEAR(r.score, at("rouge").num, 1e-14);
  const std::vector<double> rouge_per = numbers(at("rouge_per_image"));
  for (size_t i = 0; i < rouge_per.size(); ++i)
    EXPECT_NEAR(r.per_image[i], rouge_per[i], 1e-14) << i;
}

TEST_F(MetricsParity, WholePipelineFromRawCaptions) {
  if (!at("java").b) GTEST_SKIP() << "java is not installed: PTBTokenizer did not run";
  std::vector<std::string> cands;
  std::vector<std::vector<std::string>> refs;
  for (const json::Value& im : at("images").arr) {
    cands.push_back(im.find("candidate")->str);
    refs.emplace_back();
    for (const json::Value& r : im.find("references")->arr) refs.back().push_back(r.str);
  }
  const CaptionMetrics m = caption_metrics(cands, refs);
  const std::vector<double> expected_bleu = numbers(at("bleu"));
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(m.bleu[k], expected_bleu[k], 1e-12 * expected_bleu[k]);
  EXPECT_NEAR(m.cider_d, at("cider").num, 1e-12 * at("cider").num);
  EXPECT_NEAR(m.rouge_l, at("rouge").num, 1e-14);
}

}  // namespace
}  // namespace iris::models
