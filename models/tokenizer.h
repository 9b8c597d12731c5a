#pragma once
// Text tokenizers: a word-level Vocabulary built from training text (what the iris
// captioners and VQA models use; saved with the model) and WordPiece over a BERT
// vocab.txt (for BERT-style text encoders).
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace iris::models {

// Lower-cases (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic), splits on white space
// and makes every punctuation character a token of its own:
// "A red circle, left." -> {"a", "red", "circle", ",", "left", "."}.
std::vector<std::string> split_words(const std::string& text);

// Word-level vocabulary. Ids 0..3 are the special tokens; the rest are the words seen at
// least min_count times, most frequent first (ties in byte order), so building is
// deterministic.
class Vocabulary {
 public:
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;
  static constexpr const char* kPadToken = "<pad>";
  static constexpr const char* kBosToken = "<bos>";
  static constexpr const char* kEosToken = "<eos>";
  static constexpr const char* kUnkToken = "<unk>";

  Vocabulary();  // the four special tokens only
  // max_words > 0 keeps only the most frequent max_words words (specials not counted).
  static Vocabulary build(const std::vector<std::string>& texts, int64_t min_count = 1,
                          int64_t max_words = 0);

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  // The id of a word (kUnk when unknown) and the token of an id (throws when out of range).
  int64_t id(const std::string& token) const;
  bool contains(const std::string& token) const { return ids_.count(token) > 0; }
  const std::string& token(int64_t id) const;
  const std::vector<std::string>& tokens() const { return tokens_; }

  // split_words(text) as ids, unknown words as kUnk, between <bos> and <eos> when asked.
  std::vector<int64_t> encode(const std::string& text, bool add_bos_eos = true) const;
  // Tokens joined by spaces, stopping at <eos>, leaving out <pad> and <bos>, with no space
  // before , . ; : ! ? so that decode(encode(s)) reads like s (lower-cased). Ids out of
  // range throw.
  std::string decode(const std::vector<int64_t>& ids) const;

  // One token per line, in id order.
  std::string to_text() const;
  // Inverse of to_text; `source` names the origin in errors ("vocab.txt:7: ...").
  static Vocabulary from_text(const std::string& text, const std::string& source);
  void save(const std::string& path) const;  // atomic (temporary file, rename)
  static Vocabulary load(const std::string& path);

  bool operator==(const Vocabulary& o) const { return tokens_ == o.tokens_; }

 private:
  void add(const std::string& token, const std::string& where);
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> ids_;
};

// BERT's tokenizer (BertTokenizer with do_lower_case): the basic tokenizer (clean control
// characters, split CJK ideographs, white space and punctuation, lower-case and strip
// accents), then greedy longest-match-first WordPiece with "##" continuations; a word of
// more than max_chars_per_word characters, or one no pieces cover, becomes [UNK].
// Lower-casing and accent stripping cover Latin-1, Latin Extended-A, Greek and Cyrillic;
// other scripts pass unchanged (BERT applies full Unicode NFD). Special tokens of the
// vocabulary written in the text ("[SEP]") are kept whole.
class WordPiece {
 public:
  // vocab.txt: one token per line, the id is the line number from 0. It must hold [UNK],
  // [CLS] and [SEP]; [PAD] and [MASK] are optional.
  static WordPiece load(const std::string& vocab_path, bool lower_case = true,
                        int64_t max_chars_per_word = 100);
  static WordPiece from_tokens(const std::vector<std::string>& tokens, bool lower_case = true,
                               int64_t max_chars_per_word = 100,
                               const std::string& source = "vocabulary");

  std::vector<std::string> tokenize(const std::string& text) const;
  // [CLS] pieces [SEP] when add_special.
  std::vector<int64_t> encode(const std::string& text, bool add_special = true) const;
  // Pieces joined, "##" continuations glued to the previous piece, specials left out.
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t id(const std::string& token) const;  // unk_id() when unknown
  const std::string& token(int64_t id) const;
  int64_t unk_id() const { return unk_; }
  int64_t cls_id() const { return cls_; }
  int64_t sep_id() const { return sep_; }
  int64_t pad_id() const { return pad_; }  // -1 when the vocabulary has no [PAD]

 private:
  std::vector<std::string> basic_tokenize(const std::string& text) const;
  void wordpiece(const std::string& word, std::vector<std::string>* out) const;
  bool is_special(const std::string& token) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> ids_;
  bool lower_case_ = true;
  int64_t max_chars_ = 100;
  int64_t unk_ = -1, cls_ = -1, sep_ = -1, pad_ = -1, mask_ = -1;
};

// ---- UTF-8 helpers shared by the tokenizers and the metrics ----
// Code points of a UTF-8 string; invalid bytes become U+FFFD.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);
// Lower case for the scripts listed above (other code points unchanged).
char32_t lower_code_point(char32_t c);
std::string utf8_lower(const std::string& s);

}  // namespace iris::models
