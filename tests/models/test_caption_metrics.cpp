// Caption metrics: the COCO tokenisation against outputs of the Java PTBTokenizer, BLEU
// and ROUGE-L on hand-computed cases, and BLEU / CIDEr-D / ROUGE-L against figures of
// pycocoevalcap 1.2 (recorded below; tests/parity re-runs it live when installed).
#include <cmath>

#include "models/metrics.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

std::string joined(const std::vector<std::string>& tokens) {
  std::string out;
  for (const std::string& t : tokens) out += (out.empty() ? "" : " ") + t;
  return out;
}

// Input and output of pycocoevalcap's PTBTokenizer (Stanford CoreNLP 3.4.1, -lowerCase,
// punctuation tokens removed), recorded.
TEST(CocoTokenize, MatchesTheJavaTokenizer) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"A man riding a bike down the street.", "a man riding a bike down the street"},
      {"Mr. Smith went to the U.S. yesterday.", "mr. smith went to the u.s. yesterday"},
      {"He lives in the U.S.", "he lives in the u.s."},
      {"It's 3.5 miles away, isn't it?", "it 's 3.5 miles away is n't it"},
      {"The dog's toys and the dogs' bowls.", "the dog 's toys and the dogs bowls"},
      {"She said \"hello\" and 'goodbye'.", "she said hello and goodbye"},
      {"A cat (black) sits [on] {the} mat.",
       "a cat -lrb- black -rrb- sits -lsb- on -rsb- -lcb- the -rcb- mat"},
      {"Prices: $5, 50% off & AT&T and/or more*", "prices $ 5 50 % off & at&t and/or more *"},
      {"well-known - dash -- double ... ellipsis", "well-known dash double ellipsis"},
      {"I'm you're we've they'll he'd can't won't cannot gonna gotta wanna",
       "i 'm you 're we 've they 'll he 'd ca n't wo n't can not gon na got ta wan na"},
      {"rock 'n' roll 'tis the season", "rock 'n' roll 't is the season"},
      {"A       man   with  spaces.", "a man with spaces"},
      {"Hello!!! What?! Yes; no: maybe.", "hello !!! what ?! yes no maybe"},
      {"1,000 people at 10:30 on 1/2/2020", "1,000 people at 10:30 on 1/2/2020"},
      {"e-mail me@example.com http://x.com", "e-mail me@example.com http://x.com"},
      {"Two dogs play. A cat sleeps.", "two dogs play a cat sleeps"},
      {"D'Angelo O'Neil rock'n'roll", "d'angelo o'neil rock 'n' roll"},
      {"ok. OK .", "ok ok"},
      {"caf\u00e9 na\u00efve r\u00e9sum\u00e9", "caf\u00e9 na\u00efve r\u00e9sum\u00e9"},
      {"They sell fruit, vegetables, etc.", "they sell fruit vegetables etc."},
      {"He lives on Main St. now", "he lives on main st. now"},
      {"There is no. Really no.", "there is no really no"},
      {"A sign at 10 a.m. or p.m. i.e. e.g. today", "a sign at 10 a.m. or p.m. i.e. e.g. today"},
      {"hello... wait--what? U.S.A. is big", "hello wait what u.s.a. is big"},
      {"a b c.", "a b c."},
      {"a man on a skateboard . ", "a man on a skateboard"},
      {"\"A quoted sentence.\"", "a quoted sentence"},
      {"The men's room; the children's toys: nice!", "the men 's room the children 's toys nice"},
      {"two  boys' bikes", "two boys bikes"},
      {"what's that? who's there? let's go", "what 's that who 's there let 's go"},
      {"I'd've gone", "i 'd 've gone"},
      {"3-4 people in the 1990's", "3-4 people in the 1990 's"},
      {"a 12-year-old boy", "a 12-year-old boy"},
      {"The man\u2019s hat \u201cquoted\u201d dash\u2014here and \u2026 there",
       "the man 's hat quoted dash here and there"},
      {"a-b -leading trailing- 'cause 'til", "a-b leading trailing 'cause 'til"},
      {"the '90s and 'em", "the '90s and 'em"},
      {"x,y and 1,2", "x y and 1,2"},
      {"A ~tilde ^caret |pipe", "a ~ tilde ^ caret | pipe"},
      {"DON'T ain't", "do n't ai n't"},
      {"#1 a+b x=y", "# 1 a + b x = y"},
      {"What's up?Nothing.", "what 's up?nothing"},
      {"", ""},
      {" . , ! ", ""},
  };
  for (const auto& [in, expected] : cases) EXPECT_EQ(joined(coco_tokenize(in)), expected) << in;
}

// A 5-image corpus (one candidate each, 1-3 references; the last candidate empty).
TokenizedCaptions corpus() {
  const std::vector<std::string> cands = {"a man riding a horse on a beach",
                                          "a cat sitting on a couch",
                                          "two dogs playing in the snow", "a plate of food", ""};
  const std::vector<std::vector<std::string>> refs = {
      {"a man rides a horse along the beach", "a person on a horse at the beach",
       "a man is riding a brown horse on the sand"},
      {"a cat is sitting on a red couch", "a black cat lying on a sofa"},
      {"two dogs play in the snow", "a pair of dogs running through snow",
       "dogs playing in a snowy field"},
      {"a plate with food on a table", "a white plate of pasta and vegetables"},
      {"a red bus on the street"}};
  return tokenize_captions(cands, refs);
}

TEST(Bleu, HandComputed) {
  // "the cat sat on the mat" vs "the cat is on the mat": 5/6 unigrams, 3/5 bigrams, 1/4
  // trigrams, 0/3 4-grams match; equal lengths, so no brevity penalty. BLEU-n is the
  // geometric mean of the first n precisions; pycocoevalcap's 1e-15 keeps BLEU-4 off zero.
  const TokenizedCaptions c =
      tokenize_captions({"the cat sat on the mat"}, {{"the cat is on the mat"}});
  const BleuScore b = bleu(c);
  EXPECT_NEAR(b.score[0], 5.0 / 6, 1e-9);
  EXPECT_NEAR(b.score[1], std::sqrt(5.0 / 6 * 3 / 5), 1e-9);
  EXPECT_NEAR(b.score[2], 0.5, 1e-9);
  EXPECT_NEAR(b.score[3], std::pow(0.125 * 1e-15 / 3, 0.25), 1e-9);
  // pycocoevalcap's figures for this case.
  EXPECT_NEAR(b.score[0], 0.8333333330555557, 1e-15);
  EXPECT_NEAR(b.score[1], 0.7071067809390603, 1e-15);
  EXPECT_NEAR(b.score[2], 0.49999999981388915, 1e-15);
  EXPECT_NEAR(b.score[3], 8.034284186199331e-05, 1e-17);
}

TEST(Bleu, ClosestReferenceLengthAndBrevityPenalty) {
  // Candidate of 3 words, references of 2 and 4 words: both 1 away, the shorter (2) wins,
  // so no penalty; against a single 6-word reference the penalty is exp(1 - 6/3).
  const TokenizedCaptions tie = tokenize_captions({"a b c"}, {{"a b", "a b c d"}});
  EXPECT_DOUBLE_EQ(bleu(tie).reference_length, 2.0);
  EXPECT_NEAR(bleu(tie).score[0], 1.0, 1e-9);
  const TokenizedCaptions brief = tokenize_captions({"a b c"}, {{"a b c d e f"}});
  EXPECT_NEAR(bleu(brief).score[0], std::exp(1 - 6.0 / 3), 1e-9);
}

TEST(Bleu, MatchesPycocoevalcap) {
  const BleuScore b = bleu(corpus());
  const std::array<double, 4> expected = {0.63177227055611096, 0.55889843648895488,
                                          0.33798986350675386, 3.8163081671546323e-05};
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(b.score[k], expected[k], 1e-13 * expected[k]) << k;
  const std::vector<std::vector<double>> per_image = {
      {0.87499999978125031, 0.84648172460845361, 0.99999999966666675, 0.47236655250483173, 0},
      {0.79056941483739407, 0.65568192444456685, 0.99999999965000008, 0.38568567504874207, 0},
      {4.7051801431354956e-06, 0.44976052913833375, 0.793700525688667, 3.2752067476897517e-06, 0},
      {1.2014057067266216e-08, 7.1180344775061141e-05, 0.00011362193660082777,
       1.1350077437066955e-08, 0}};
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 5; ++i)
      EXPECT_NEAR(b.per_image[k][i], per_image[k][i], 1e-13 * per_image[k][i]) << k << " " << i;
}

TEST(CiderD, MatchesPycocoevalcap) {
  const CorpusScore c = cider_d(corpus());
  EXPECT_NEAR(c.score, 1.769991328120156, 1e-13);
  const std::vector<double> per_image = {2.211713853112883, 2.2287316314880683, 2.7304066503526947,
                                         1.6791045056471336, 0};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(c.per_image[i], per_image[i], 1e-13) << i;
  // One image: every n-gram has document frequency 1 = the image count, so idf is 0.
  EXPECT_EQ(cider_d(tokenize_captions({"a cat"}, {{"a cat"}})).score, 0.0);
}

TEST(CiderD, IdenticalCaptionsScoreHighestAndLengthIsPenalised) {
  const std::vector<std::vector<std::string>> refs = {
      {"a red circle left of a blue square"}, {"a green star"}, {"two yellow crosses"}};
  const double exact = cider_d(tokenize_captions({"a red circle left of a blue square",
                                                  "a green star", "two yellow crosses"},
                                                 refs))
                           .per_image[0];
  const double longer = cider_d(tokenize_captions({"a red circle left of a blue square and more "
                                                   "words here",
                                                   "a green star", "two yellow crosses"},
                                                  refs))
                            .per_image[0];
  EXPECT_GT(exact, longer);
  EXPECT_NEAR(exact, 10.0, 1e-12);  // cosine 1 for every n, x10
}

TEST(RougeL, HandComputedAndPycocoevalcap) {
  // "a b c d" vs "a c d e f": LCS "a c d" = 3, P = 3/4, R = 3/5,
  // F = (1 + 1.2^2) P R / (R + 1.2^2 P).
  const double P = 0.75, R = 0.6, expected = (1 + 1.44) * P * R / (R + 1.44 * P);
  EXPECT_NEAR(rouge_l(tokenize_captions({"a b c d"}, {{"a c d e f", "x y"}})).score, expected,
              1e-15);
  const CorpusScore r = rouge_l(corpus());
  EXPECT_NEAR(r.score, 0.57193144993907252, 1e-15);
  const std::vector<double> per_image = {0.67082111436950143, 0.83561643835616439,
                                         0.83333333333333337, 0.51988636363636354, 0};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(r.per_image[i], per_image[i], 1e-15) << i;
}

TEST(CaptionMetrics, TokenisesRawCaptionsFirst) {
  const std::vector<std::string> cands = {"A man riding a horse on a beach.",
                                          "A cat, sitting on a couch!",
                                          "Two dogs playing in the snow", "a plate of food", ""};
  const std::vector<std::vector<std::string>> refs = {
      {"A man rides a horse along the beach.", "A person on a horse at the beach",
       "A man is riding a brown horse on the sand."},
      {"A cat is sitting on a red couch.", "A black cat lying on a sofa."},
      {"Two dogs play in the snow.", "A pair of dogs running through snow.",
       "Dogs playing in a snowy field"},
      {"A plate with food on a table", "A white plate of pasta and vegetables."},
      {"A red bus on the street."}};
  const CaptionMetrics m = caption_metrics(cands, refs);
  EXPECT_NEAR(m.bleu[3], 3.8163081671546323e-05, 1e-17);
  EXPECT_NEAR(m.cider_d, 1.769991328120156, 1e-13);
  EXPECT_NEAR(m.rouge_l, 0.57193144993907252, 1e-15);
}

TEST(CaptionMetrics, BadInput) {
  EXPECT_IRIS_ERROR(tokenize_captions({"a", "b"}, {{"a"}}),
                    "tokenize_captions: 2 candidates for 1");
  EXPECT_IRIS_ERROR(tokenize_captions({"a"}, {{}}), "image 0 has no reference caption");
  EXPECT_IRIS_ERROR(bleu(TokenizedCaptions{}), "bleu: no captions to score");
  TokenizedCaptions bad;
  bad.candidates = {{"a"}};
  bad.references = {{}};
  EXPECT_IRIS_ERROR(cider_d(bad), "cider_d: image 0 has no reference caption");
  EXPECT_IRIS_ERROR(rouge_l(corpus(), 0), "rouge_l: beta must be positive");
  EXPECT_IRIS_ERROR(cider_d(corpus(), -1), "cider_d: sigma must be positive");
}

}  // namespace
}  // namespace iris::models
