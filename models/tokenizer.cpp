#include "models/tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"

namespace iris::models {
namespace {

struct Range {
  char32_t lo, hi;
};

bool in_ranges(char32_t c, const Range* ranges, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (c >= ranges[i].lo && c <= ranges[i].hi) return true;
  return false;
}

// Unicode general category P* (BERT's _is_punctuation counts every ASCII symbol as
// punctuation too): ASCII and the common punctuation blocks.
bool is_punctuation(char32_t c) {
  if (c < 0x80)
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
  static constexpr Range kPunct[] = {
      {0xA1, 0xA1},     {0xA7, 0xA7},     {0xAB, 0xAB},     {0xB6, 0xB7},     {0xBB, 0xBB},
      {0xBF, 0xBF},     {0x37E, 0x37E},   {0x387, 0x387},   {0x55A, 0x55F},   {0x589, 0x58A},
      {0x5BE, 0x5BE},   {0x5C0, 0x5C0},   {0x5C3, 0x5C3},   {0x5C6, 0x5C6},   {0x5F3, 0x5F4},
      {0x60C, 0x60D},   {0x61B, 0x61B},   {0x61F, 0x61F},   {0x66A, 0x66D},   {0x6D4, 0x6D4},
      {0x964, 0x965},   {0x2010, 0x2027}, {0x2030, 0x2043}, {0x2045, 0x2051}, {0x2053, 0x205E},
      {0x207D, 0x207E}, {0x208D, 0x208E}, {0x2308, 0x230B}, {0x2329, 0x232A}, {0x2768, 0x2775},
      {0x27C5, 0x27C6}, {0x27E6, 0x27EF}, {0x2983, 0x2998}, {0x29D8, 0x29DB}, {0x29FC, 0x29FD},
      {0x2E00, 0x2E2E}, {0x2E30, 0x2E4F}, {0x3001, 0x3003}, {0x3008, 0x3011}, {0x3014, 0x301F},
      {0x3030, 0x3030}, {0x303D, 0x303D}, {0x30A0, 0x30A0}, {0x30FB, 0x30FB}, {0xFE10, 0xFE19},
      {0xFE30, 0xFE52}, {0xFE54, 0xFE61}, {0xFE63, 0xFE63}, {0xFE68, 0xFE68}, {0xFE6A, 0xFE6B},
      {0xFF01, 0xFF03}, {0xFF05, 0xFF0A}, {0xFF0C, 0xFF0F}, {0xFF1A, 0xFF1B}, {0xFF1F, 0xFF20},
      {0xFF3B, 0xFF3D}, {0xFF3F, 0xFF3F}, {0xFF5B, 0xFF5B}, {0xFF5D, 0xFF5D}, {0xFF5F, 0xFF65}};
  return in_ranges(c, kPunct, std::size(kPunct));
}

// White space: BERT's (\t \n \r and category Zs) plus the line/paragraph separators
// that Python's str.split() also splits on.
bool is_whitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  static constexpr Range kSpace[] = {{0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
                                     {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                     {0x3000, 0x3000}};
  return in_ranges(c, kSpace, std::size(kSpace));
}

// Categories Cc and Cf other than \t \n \r (BERT's _is_control): dropped from the text.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  static constexpr Range kControl[] = {
      {0x00, 0x1F},     {0x7F, 0x9F},     {0xAD, 0xAD},       {0x600, 0x605},
      {0x61C, 0x61C},   {0x6DD, 0x6DD},   {0x70F, 0x70F},     {0x180E, 0x180E},
      {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064},   {0x2066, 0x206F},
      {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}};
  return in_ranges(c, kControl, std::size(kControl));
}

// CJK Unified Ideographs and their extensions: each becomes a word of its own.
bool is_cjk(char32_t c) {
  static constexpr Range kCjk[] = {{0x4E00, 0x9FFF},   {0x3400, 0x4DBF},   {0x20000, 0x2A6DF},
                                   {0x2A700, 0x2B73F}, {0x2B740, 0x2B81F}, {0x2B820, 0x2CEAF},
                                   {0xF900, 0xFAFF},   {0x2F800, 0x2FA1F}};
  return in_ranges(c, kCjk, std::size(kCjk));
}

// NFD-then-drop-marks for lower-case letters: the base letter, 0 when c is dropped (a
// combining mark), c itself when it has no decomposition.
char32_t strip_accent(char32_t c) {
  if (c >= 0x300 && c <= 0x36F) return 0;
  if (c >= 0xE0 && c <= 0xFF) {
    static constexpr char kLatin1[] = "aaaaaa.ceeeeiiii.nooooo..uuuuy.y";
    static_assert(sizeof(kLatin1) == 0x20 + 1, "one entry per code point");
    const char b = kLatin1[c - 0xE0];
    return b == '.' ? c : static_cast<char32_t>(b);
  }
  if (c >= 0x100 && c <= 0x17F) {
    static constexpr char kLatinExtA[] =
        "aaaaaaccccccccdd..eeeeeeeeeegggggggghh..iiiiiiiii...jjkk.llllll."
        "...nnnnnn...oooooo..rrrrrrsssssssstttt..uuuuuuuuuuuuwwyyyzzzzzz.";
    static_assert(sizeof(kLatinExtA) == 0x80 + 1, "one entry per code point");
    const char b = kLatinExtA[c - 0x100];
    return b == '.' ? c : static_cast<char32_t>(b);
  }
  switch (c) {
    case 0x3AC:
      return 0x3B1;
    case 0x3AD:
      return 0x3B5;
    case 0x3AE:
      return 0x3B7;
    case 0x3AF:
    case 0x3CA:
    case 0x390:
      return 0x3B9;
    case 0x3CC:
      return 0x3BF;
    case 0x3CD:
    case 0x3CB:
    case 0x3B0:
      return 0x3C5;
    case 0x3CE:
      return 0x3C9;
    case 0x439:
    case 0x45D:
      return 0x438;
    case 0x450:
    case 0x451:
      return 0x435;
    case 0x453:
      return 0x433;
    case 0x457:
      return 0x456;
    case 0x45C:
      return 0x43A;
    case 0x45E:
      return 0x443;
    default:
      return c;
  }
}

bool is_special_token_text(const std::string& t) {
  return t.size() >= 3 && t.front() == '[' && t.back() == ']';
}

std::vector<std::string> read_lines(const std::string& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  if (!in) IRIS_FAIL(op, ": ", path, ": cannot open (", std::strerror(errno), ")");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  if (in.bad()) IRIS_FAIL(op, ": ", path, ": read error");
  return lines;
}

}  // namespace

// ---- UTF-8 ----

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int n = 0;
    char32_t cp = 0;
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    } else if ((b0 & 0xE0) == 0xC0) {
      n = 1, cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      n = 2, cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      n = 3, cp = b0 & 0x07;
    } else {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    bool ok = true;
    for (int k = 1; ok && k <= n; ++k) {
      if (i + k >= s.size()) {
        ok = false;
        break;
      }
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (!ok || cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += n + 1;
  }
  return out;
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

char32_t lower_code_point(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c >= 0x100 && c <= 0x17F) {
    if (c == 0x130) return 'i';  // İ: i + combining dot, whose dot accent stripping drops
    if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;  // no upper/lower pair
    if (c == 0x178) return 0xFF;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
    return (c & 1) ? c : c + 1;
  }
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 0x20;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

std::string utf8_lower(const std::string& s) {
  bool ascii = true;
  for (char ch : s) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) {
    std::string out = s;
    for (char& ch : out)
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
    return out;
  }
  std::u32string u = utf8_decode(s);
  for (char32_t& c : u) c = lower_code_point(c);
  return utf8_encode(u);
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::u32string current;
  auto flush = [&] {
    if (!current.empty()) words.push_back(utf8_encode(current));
    current.clear();
  };
  for (char32_t c : utf8_decode(text)) {
    if (is_whitespace(c) || is_control(c)) {
      flush();
    } else if (is_punctuation(c)) {
      flush();
      words.push_back(utf8_encode(std::u32string(1, c)));
    } else {
      current.push_back(lower_code_point(c));
    }
  }
  flush();
  return words;
}

// ---- Vocabulary ----

Vocabulary::Vocabulary() {
  for (const char* t : {kPadToken, kBosToken, kEosToken, kUnkToken}) add(t, "vocabulary");
}

void Vocabulary::add(const std::string& token, const std::string& where) {
  IRIS_CHECK(!token.empty(), where, ": empty token");
  for (char c : token)
    IRIS_CHECK(c != ' ' && c != '\t' && c != '\n' && c != '\r', where, ": token '", token,
               "' holds white space");
  IRIS_CHECK(ids_.emplace(token, size()).second, where, ": duplicate token '", token, "'");
  tokens_.push_back(token);
}

Vocabulary Vocabulary::build(const std::vector<std::string>& texts, int64_t min_count,
                             int64_t max_words) {
  IRIS_CHECK(min_count >= 1, "Vocabulary::build: min_count must be >= 1, got ", min_count);
  IRIS_CHECK(max_words >= 0, "Vocabulary::build: max_words must be >= 0, got ", max_words);
  std::map<std::string, int64_t> counts;
  for (const std::string& text : texts)
    for (std::string& w : split_words(text)) ++counts[std::move(w)];
  std::vector<std::pair<std::string, int64_t>> kept;
  Vocabulary v;
  for (auto& [word, n] : counts)
    if (n >= min_count && !v.contains(word)) kept.emplace_back(word, n);
  std::stable_sort(kept.begin(), kept.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (max_words > 0 && static_cast<int64_t>(kept.size()) > max_words) kept.resize(max_words);
  for (const auto& [word, n] : kept) v.add(word, "Vocabulary::build");
  return v;
}

int64_t Vocabulary::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? kUnk : it->second;
}

const std::string& Vocabulary::token(int64_t id) const {
  IRIS_CHECK(id >= 0 && id < size(), "Vocabulary: id ", id, " out of range [0, ", size(), ")");
  return tokens_[id];
}

std::vector<int64_t> Vocabulary::encode(const std::string& text, bool add_bos_eos) const {
  std::vector<int64_t> ids;
  if (add_bos_eos) ids.push_back(kBos);
  for (const std::string& w : split_words(text)) ids.push_back(id(w));
  if (add_bos_eos) ids.push_back(kEos);
  return ids;
}

std::string Vocabulary::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t i : ids) {
    const std::string& t = token(i);
    if (i == kEos) break;
    if (i == kPad || i == kBos) continue;
    const bool closing = t.find_first_not_of(",.;:!?") == std::string::npos;
    if (!out.empty() && !closing) out.push_back(' ');
    out += t;
  }
  return out;
}

std::string Vocabulary::to_text() const {
  std::string out;
  for (const std::string& t : tokens_) out += t + "\n";
  return out;
}

Vocabulary Vocabulary::from_text(const std::string& text, const std::string& source) {
  Vocabulary v;
  v.tokens_.clear();
  v.ids_.clear();
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    v.add(line, detail::cat(source, ":", line_no));
  }
  const char* specials[] = {kPadToken, kBosToken, kEosToken, kUnkToken};
  for (int64_t i = 0; i < 4; ++i)
    IRIS_CHECK(v.size() > i && v.tokens_[i] == specials[i], source, ":", i + 1, ": expected '",
               specials[i],
               "' (the special tokens come first, in the order <pad> <bos> <eos> "
               "<unk>), got '",
               v.size() > i ? v.tokens_[i] : std::string("end of file"), "'");
  return v;
}

void Vocabulary::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) IRIS_FAIL("Vocabulary::save: ", path, ": cannot create (", std::strerror(errno), ")");
  const std::string text = to_text();
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    IRIS_FAIL("Vocabulary::save: ", path, ": write failed (", std::strerror(errno), ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    IRIS_FAIL("Vocabulary::save: ", path, ": cannot rename (", std::strerror(errno), ")");
  }
}

Vocabulary Vocabulary::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) IRIS_FAIL("Vocabulary::load: ", path, ": cannot open (", std::strerror(errno), ")");
  std::ostringstream text;
  text << in.rdbuf();
  return from_text(text.str(), path);
}

// ---- WordPiece ----

WordPiece WordPiece::from_tokens(const std::vector<std::string>& tokens, bool lower_case,
                                 int64_t max_chars_per_word, const std::string& source) {
  IRIS_CHECK(max_chars_per_word >= 1, "WordPiece: max_chars_per_word must be >= 1, got ",
             max_chars_per_word);
  WordPiece wp;
  wp.tokens_ = tokens;
  wp.lower_case_ = lower_case;
  wp.max_chars_ = max_chars_per_word;
  // As HuggingFace's load_vocab: a repeated token keeps its last line's id.
  for (size_t i = 0; i < tokens.size(); ++i) wp.ids_[tokens[i]] = static_cast<int64_t>(i);
  auto find = [&](const char* t) {
    auto it = wp.ids_.find(t);
    return it == wp.ids_.end() ? int64_t{-1} : it->second;
  };
  wp.unk_ = find("[UNK]");
  wp.cls_ = find("[CLS]");
  wp.sep_ = find("[SEP]");
  wp.pad_ = find("[PAD]");
  wp.mask_ = find("[MASK]");
  for (const char* t : {"[UNK]", "[CLS]", "[SEP]"})
    IRIS_CHECK(find(t) >= 0, "WordPiece: ", source, ": the vocabulary has no ", t, " token (",
               tokens.size(), " tokens read)");
  return wp;
}

WordPiece WordPiece::load(const std::string& vocab_path, bool lower_case,
                          int64_t max_chars_per_word) {
  std::vector<std::string> lines = read_lines(vocab_path, "WordPiece::load");
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return from_tokens(lines, lower_case, max_chars_per_word, vocab_path);
}

bool WordPiece::is_special(const std::string& token) const {
  if (!is_special_token_text(token)) return false;
  auto it = ids_.find(token);
  if (it == ids_.end()) return false;
  const int64_t i = it->second;
  return i == unk_ || i == cls_ || i == sep_ || (pad_ >= 0 && i == pad_) ||
         (mask_ >= 0 && i == mask_);
}

int64_t WordPiece::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? unk_ : it->second;
}

const std::string& WordPiece::token(int64_t id) const {
  IRIS_CHECK(id >= 0 && id < size(), "WordPiece: id ", id, " out of range [0, ", size(), ")");
  return tokens_[id];
}

std::vector<std::string> WordPiece::basic_tokenize(const std::string& text) const {
  // _clean_text and _tokenize_chinese_chars, then white-space split.
  std::u32string cleaned;
  for (char32_t c : utf8_decode(text)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) {
      cleaned.push_back(' ');
    } else if (is_cjk(c)) {
      cleaned.push_back(' ');
      cleaned.push_back(c);
      cleaned.push_back(' ');
    } else {
      cleaned.push_back(c);
    }
  }
  std::vector<std::string> out;
  size_t i = 0;
  while (i < cleaned.size()) {
    while (i < cleaned.size() && cleaned[i] == ' ') ++i;
    size_t j = i;
    while (j < cleaned.size() && cleaned[j] != ' ') ++j;
    if (j == i) break;
    std::u32string word = cleaned.substr(i, j - i);
    i = j;
    if (is_special(utf8_encode(word))) {
      out.push_back(utf8_encode(word));
      continue;
    }
    if (lower_case_) {
      std::u32string stripped;
      for (char32_t c : word)
        if (char32_t s = strip_accent(lower_code_point(c)); s != 0) stripped.push_back(s);
      word = std::move(stripped);
    }
    std::u32string piece;
    for (char32_t c : word) {
      if (is_punctuation(c)) {
        if (!piece.empty()) out.push_back(utf8_encode(piece));
        piece.clear();
        out.push_back(utf8_encode(std::u32string(1, c)));
      } else {
        piece.push_back(c);
      }
    }
    if (!piece.empty()) out.push_back(utf8_encode(piece));
  }
  return out;
}

void WordPiece::wordpiece(const std::string& word, std::vector<std::string>* out) const {
  const std::u32string chars = utf8_decode(word);
  const int64_t n = static_cast<int64_t>(chars.size());
  if (n > max_chars_ || is_special(word)) {
    out->push_back(n > max_chars_ ? tokens_[unk_] : word);
    return;
  }
  std::vector<std::string> pieces;
  int64_t start = 0;
  while (start < n) {
    int64_t end = n;
    std::string found;
    while (start < end) {
      std::string sub = utf8_encode(chars.substr(start, end - start));
      if (start > 0) sub = "##" + sub;
      if (ids_.count(sub)) {
        found = std::move(sub);
        break;
      }
      --end;
    }
    if (found.empty()) {
      out->push_back(tokens_[unk_]);
      return;
    }
    pieces.push_back(std::move(found));
    start = end;
  }
  out->insert(out->end(), pieces.begin(), pieces.end());
}

std::vector<std::string> WordPiece::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (const std::string& word : basic_tokenize(text)) wordpiece(word, &out);
  return out;
}

std::vector<int64_t> WordPiece::encode(const std::string& text, bool add_special) const {
  std::vector<int64_t> ids;
  if (add_special) ids.push_back(cls_);
  for (const std::string& t : tokenize(text)) ids.push_back(id(t));
  if (add_special) ids.push_back(sep_);
  return ids;
}

std::string WordPiece::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t i : ids) {
    const std::string& t = token(i);
    if (i == cls_ || i == sep_ || (pad_ >= 0 && i == pad_)) continue;
    if (t.rfind("##", 0) == 0) {
      out += t.substr(2);
    } else {
      if (!out.empty()) out.push_back(' ');
      out += t;
    }
  }
  return out;
}

}  // namespace iris::models
