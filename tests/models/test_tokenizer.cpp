// Word-level vocabulary (build, encode/decode, save/load and its errors) and WordPiece on
// the small vocabularies of HuggingFace's BertTokenizer tests, whose expected outputs are
// copied here.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "models/tokenizer.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

using Words = std::vector<std::string>;
using Ids = std::vector<int64_t>;

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("iris_test_tokenizer");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << text;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

TEST(SplitWords, LowerCasesAndSplitsPunctuation) {
  EXPECT_EQ(split_words("A red Circle, LEFT of\tthe  square."),
            (Words{"a", "red", "circle", ",", "left", "of", "the", "square", "."}));
  EXPECT_EQ(split_words("man's  hat!?"), (Words{"man", "'", "s", "hat", "!", "?"}));
  EXPECT_EQ(split_words("Ébène ÀÖ Straße ΣΟΦΙΑ Москва"),
            (Words{"ébène", "àö", "straße", "σοφια", "москва"}));
  EXPECT_EQ(split_words("  \n "), Words{});
  EXPECT_EQ(split_words("a\xe2\x80\x94"
                        "b"),
            (Words{"a", "\xe2\x80\x94", "b"}));  // em dash
}

TEST(Utf8, DecodeEncodeAndInvalidBytes) {
  const std::string s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";  // a é € 😀
  EXPECT_EQ(utf8_decode(s), (std::u32string{U'a', 0xE9, 0x20AC, 0x1F600}));
  EXPECT_EQ(utf8_encode(utf8_decode(s)), s);
  EXPECT_EQ(utf8_decode("\xff"
                        "a\xc3"),
            (std::u32string{0xFFFD, U'a', 0xFFFD}));
  EXPECT_EQ(utf8_decode("\xc0\xaf"), (std::u32string{0xFFFD, 0xFFFD}));  // overlong '/'
  EXPECT_EQ(utf8_lower("ÀÉÎÕÜ ŁŃŚŹŻ ĲŸ Ω Ж"), "àéîõü łńśźż ĳÿ ω ж");
}

TEST(Vocabulary, BuildOrdersByCountThenBytes) {
  const Vocabulary v = Vocabulary::build({"the cat", "The dog.", "a cat", "the bird"}, 1);
  EXPECT_EQ(v.tokens(),
            (Words{"<pad>", "<bos>", "<eos>", "<unk>", "the", "cat", ".", "a", "bird", "dog"}));
  EXPECT_EQ(v.id("the"), 4);
  EXPECT_EQ(v.id("zebra"), Vocabulary::kUnk);
  const Vocabulary frequent = Vocabulary::build({"the cat", "The dog.", "a cat", "the bird"}, 2);
  EXPECT_EQ(frequent.tokens(), (Words{"<pad>", "<bos>", "<eos>", "<unk>", "the", "cat"}));
  const Vocabulary capped = Vocabulary::build({"the cat", "The dog.", "a cat", "the bird"}, 1, 3);
  EXPECT_EQ(capped.size(), 7);
  EXPECT_EQ(capped.token(6), ".");
  // Text cannot produce a special token: "<unk>" splits at its brackets.
  EXPECT_EQ(Vocabulary::build({"<unk> x"}).tokens(),
            (Words{"<pad>", "<bos>", "<eos>", "<unk>", "<", ">", "unk", "x"}));
  EXPECT_IRIS_ERROR(Vocabulary::build({"a"}, 0), "min_count must be >= 1");
}

TEST(Vocabulary, EncodeDecodeRoundTrip) {
  const Vocabulary v =
      Vocabulary::build({"a red circle left of a blue square.", "two shapes: a, b"});
  const Ids ids = v.encode("A red circle left of a blue square.");
  EXPECT_EQ(ids.front(), Vocabulary::kBos);
  EXPECT_EQ(ids.back(), Vocabulary::kEos);
  EXPECT_EQ(ids.size(), 11u);
  EXPECT_EQ(v.decode(ids), "a red circle left of a blue square.");
  EXPECT_EQ(v.decode(v.encode("two shapes: a, b", false)), "two shapes: a, b");
  const Ids unknown = v.encode("a green circle", false);
  EXPECT_EQ(unknown[1], Vocabulary::kUnk);
  EXPECT_EQ(v.decode(unknown), "a <unk> circle");
  // Decoding stops at <eos> and leaves out <pad> and <bos>.
  EXPECT_EQ(v.decode({Vocabulary::kBos, v.id("red"), Vocabulary::kPad, v.id("circle"),
                      Vocabulary::kEos, v.id("square")}),
            "red circle");
  EXPECT_IRIS_ERROR(v.decode({v.size()}), "Vocabulary: id ");
  EXPECT_IRIS_ERROR(v.token(-1), "out of range");
}

TEST_F(TempDir, VocabularySaveLoad) {
  const Vocabulary v = Vocabulary::build({"a red circle", "a blue square", "the end."});
  v.save(dir_ + "/vocab.txt");
  EXPECT_EQ(Vocabulary::load(dir_ + "/vocab.txt"), v);
  EXPECT_EQ(Vocabulary::from_text(v.to_text(), "x"), v);
  // CRLF line ends are accepted.
  EXPECT_EQ(
      Vocabulary::load(write("crlf.txt", "<pad>\r\n<bos>\r\n<eos>\r\n<unk>\r\nhi\r\n")).size(), 5);
}

TEST_F(TempDir, VocabularyLoadErrorsNameFileAndLine) {
  EXPECT_IRIS_ERROR(Vocabulary::load(dir_ + "/none.txt"), "none.txt: cannot open");
  const std::string specials = "<pad>\n<bos>\n<eos>\n<unk>\n";
  EXPECT_IRIS_ERROR(Vocabulary::load(write("dup.txt", specials + "a\nb\na\n")),
                    "dup.txt:7: duplicate token 'a'");
  EXPECT_IRIS_ERROR(Vocabulary::load(write("blank.txt", specials + "a\n\nb\n")),
                    "blank.txt:6: empty token");
  EXPECT_IRIS_ERROR(Vocabulary::load(write("space.txt", specials + "a b\n")),
                    "space.txt:5: token 'a b' holds white space");
  EXPECT_IRIS_ERROR(Vocabulary::load(write("order.txt", "<bos>\n<pad>\n<eos>\n<unk>\n")),
                    "order.txt:1: expected '<pad>'");
  EXPECT_IRIS_ERROR(Vocabulary::load(write("short.txt", "<pad>\n<bos>\n")),
                    "short.txt:3: expected '<eos>'");
}

// ---- WordPiece: HuggingFace's tests/models/bert/test_tokenization_bert.py ----

WordPiece hf_vocab(bool lower = true) {
  return WordPiece::from_tokens({"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", "want", "##want",
                                 "##ed", "wa", "un", "runn", "##ing", ",", "low", "lowest"},
                                lower);
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  const WordPiece wp = WordPiece::from_tokens(
      {"[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing"});
  EXPECT_EQ(wp.tokenize(""), Words{});
  EXPECT_EQ(wp.tokenize("unwanted running"), (Words{"un", "##want", "##ed", "runn", "##ing"}));
  EXPECT_EQ(wp.tokenize("unwantedX running"), (Words{"[UNK]", "runn", "##ing"}));
  EXPECT_EQ(wp.pad_id(), -1);
}

TEST(WordPiece, FullTokenizerIds) {
  const WordPiece wp = hf_vocab();
  EXPECT_EQ(wp.tokenize("UNwant\u00E9d,running"),
            (Words{"un", "##want", "##ed", ",", "runn", "##ing"}));
  EXPECT_EQ(wp.encode("UNwant\u00E9d,running", false), (Ids{9, 6, 7, 12, 10, 11}));
  EXPECT_EQ(wp.encode("UNwant\u00E9d,running"), (Ids{1, 9, 6, 7, 12, 10, 11, 2}));
  EXPECT_EQ(wp.decode({1, 9, 6, 7, 12, 10, 11, 2, 3, 3}), "unwanted , running");
  EXPECT_EQ(wp.cls_id(), 1);
  EXPECT_EQ(wp.sep_id(), 2);
  EXPECT_EQ(wp.pad_id(), 3);
  EXPECT_EQ(wp.unk_id(), 0);
  EXPECT_EQ(wp.id("zzz"), 0);
}

TEST(WordPiece, BasicTokenizer) {
  const WordPiece wp = WordPiece::from_tokens({"[UNK]", "[CLS]", "[SEP]"});
  // Every word is unknown in this vocabulary: tokenize() shows the basic tokenizer's split
  // through the [UNK]s, so the checks use a vocabulary holding the expected words.
  auto basic = [](const Words& expected, const std::string& text, bool lower) {
    Words vocab = {"[UNK]", "[CLS]", "[SEP]"};
    vocab.insert(vocab.end(), expected.begin(), expected.end());
    return WordPiece::from_tokens(vocab, lower).tokenize(text) == expected;
  };
  EXPECT_TRUE(basic({"hello", "!", "how", "are", "you", "?"}, " \tHeLLo!how  \n Are yoU?  ", true));
  EXPECT_TRUE(basic({"hello"}, "H\u00E9llo", true));
  EXPECT_TRUE(
      basic({"hallo", "!", "how", "are", "you", "?"}, " \tH\u00E4LLo!how  \n Are yoU?  ", true));
  EXPECT_TRUE(
      basic({"HeLLo", "!", "how", "Are", "yoU", "?"}, " \tHeLLo!how  \n Are yoU?  ", false));
  EXPECT_TRUE(basic({"H\u00E4LLo", "!"}, "H\u00E4LLo!", false));
  EXPECT_TRUE(basic({"ah", "\u535A", "\u63A8", "zz"}, "ah\u535A\u63A8zz", true));
  // Control characters vanish (not white space), white space of any kind splits.
  EXPECT_TRUE(basic({"ab", "cd"},
                    "a\x01"
                    "b\xc2\xa0"
                    "c\x7f"
                    "d",
                    true));
  // Special tokens written in the text stay whole.
  EXPECT_TRUE(basic({"[CLS]", "hi", "[SEP]"}, "[CLS] hi [SEP]", true));
  EXPECT_TRUE(basic({"[", "x", "]"}, "[X]", true));
  // Accents of other Latin letters, Greek and Cyrillic are stripped too.
  EXPECT_TRUE(basic({"cafe", "łodz", "αθηνα", "иошкар"}, "Café Łódź Αθήνα Йошкар", true));
  EXPECT_EQ(wp.tokenize("hello"), Words{"[UNK]"});
}

TEST(WordPiece, LongWordsBecomeUnknown) {
  const WordPiece wp = WordPiece::from_tokens({"[UNK]", "[CLS]", "[SEP]", "a", "##a"});
  EXPECT_EQ(wp.tokenize(std::string(100, 'a')).size(), 100u);
  EXPECT_EQ(wp.tokenize(std::string(101, 'a')), Words{"[UNK]"});
  const WordPiece short_words =
      WordPiece::from_tokens({"[UNK]", "[CLS]", "[SEP]", "a", "##a"}, true, 3);
  EXPECT_EQ(short_words.tokenize("aaa aaaa"), (Words{"a", "##a", "##a", "[UNK]"}));
  // Characters, not bytes: three two-byte letters are three characters.
  const WordPiece accents =
      WordPiece::from_tokens({"[UNK]", "[CLS]", "[SEP]", "é", "##é"}, false, 3);
  EXPECT_EQ(accents.tokenize("ééé"), (Words{"é", "##é", "##é"}));
}

TEST_F(TempDir, WordPieceLoadsVocabTxt) {
  const std::string path =
      write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nred\n##dish\ncircle\n");
  const WordPiece wp = WordPiece::load(path);
  EXPECT_EQ(wp.size(), 9);
  EXPECT_EQ(wp.encode("The reddish circle!"), (Ids{2, 5, 6, 7, 8, 1, 3}));
  EXPECT_IRIS_ERROR(WordPiece::load(write("bad.txt", "[PAD]\n[CLS]\n[SEP]\n")),
                    "bad.txt: the vocabulary has no [UNK] token");
  EXPECT_IRIS_ERROR(WordPiece::load(dir_ + "/none.txt"), "none.txt: cannot open");
  EXPECT_IRIS_ERROR(wp.decode({9}), "WordPiece: id 9 out of range");
}

}  // namespace
}  // namespace iris::models
