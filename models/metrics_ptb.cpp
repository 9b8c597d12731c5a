// coco_tokenize: the rules of Stanford's PTBTokenizer that captions meet, then the
// punctuation filter of pycocoevalcap's ptbtokenizer.py.
#include <algorithm>
#include <cctype>
#include <string_view>

#include "models/metrics.h"
#include "models/tokenizer.h"

namespace iris::models {
namespace {

bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Typographic characters Stanford's tokenizer maps to ASCII quotes, dashes and ellipses.
std::string ascii_punctuation(const std::string& text) {
  std::u32string out;
  for (char32_t c : utf8_decode(text)) {
    switch (c) {
      case 0x2018:
      case 0x2019:
      case 0x201B:
        out += U"'";
        break;
      case 0x201C:
      case 0x201D:
      case 0x201F:
        out += U"\"";
        break;
      case 0x2013:
      case 0x2014:
      case 0x2015:
        out += U" -- ";
        break;
      case 0x2026:
        out += U" ... ";
        break;
      case 0xA0:
        out += U" ";
        break;
      default:
        out.push_back(c);
    }
  }
  return utf8_encode(out);
}

// "u.s.", "a.m.", "c." and a few common abbreviations keep their final period.
bool keeps_period(std::string_view core) {
  if (core.size() == 1 && is_letter(core[0])) return true;
  if (core.find('.') != std::string_view::npos) {
    return std::all_of(core.begin(), core.end(), [](char c) { return is_letter(c) || c == '.'; });
  }
  static constexpr std::string_view kAbbreviations[] = {
      "mr",  "mrs",  "ms",  "dr",  "st",  "jr",  "sr",  "vs",  "etc", "prof", "mt",  "inc",  "ltd",
      "co",  "corp", "ave", "jan", "feb", "mar", "apr", "jun", "jul", "aug",  "sep", "sept", "oct",
      "nov", "dec",  "gen", "gov", "sen", "rep", "rev", "col", "lt",  "sgt",  "capt"};
  return std::find(std::begin(kAbbreviations), std::end(kAbbreviations), core) !=
         std::end(kAbbreviations);
}

// Words with a leading apostrophe that are words, not quotes.
bool apostrophe_word(std::string_view w) {
  static constexpr std::string_view kWords[] = {"'em", "'n'", "'cause", "'til", "'s",
                                                "'m",  "'d",  "'re",    "'ve",  "'ll"};
  if (std::find(std::begin(kWords), std::end(kWords), w) != std::end(kWords)) return true;
  return w.size() >= 2 && w[0] == '\'' && is_digit(w[1]);  // '90s
}

// The longest prefix of letters, digits and apostrophes: "'em," -> "'em".
std::string_view leading_word(std::string_view w) {
  size_t n = 0;
  while (n < w.size() && (is_letter(w[n]) || is_digit(w[n]) || w[n] == '\'')) ++n;
  return w.substr(0, n);
}

// The core of a chunk, its affixes gone: clitics and inner separators.
void split_core(std::string core, std::vector<std::string>* out) {
  if (core.empty()) return;
  static constexpr std::pair<std::string_view, std::string_view> kSplitWords[] = {
      {"cannot", "can not"}, {"gonna", "gon na"}, {"gotta", "got ta"}, {"wanna", "wan na"},
      {"lemme", "lem me"},   {"gimme", "gim me"}, {"'tis", "'t is"},   {"'twas", "'t was"}};
  for (const auto& [word, parts] : kSplitWords) {
    if (core == word) {
      const size_t space = parts.find(' ');
      out->emplace_back(parts.substr(0, space));
      out->emplace_back(parts.substr(space + 1));
      return;
    }
  }
  // Inner separators: "wait--what", "hello...there", "a+b", "x=y", "x,y" (not "1,000"),
  // "rock'n'roll".
  for (std::string_view sep : {"--", "...", "+", "=", ",", "'n'"}) {
    const size_t at = core.find(sep);
    if (at == std::string::npos || at == 0 || at + sep.size() >= core.size()) continue;
    if (sep == "," && is_digit(core[at - 1]) && is_digit(core[at + 1])) continue;
    split_core(core.substr(0, at), out);
    out->emplace_back(sep);
    split_core(core.substr(at + sep.size()), out);
    return;
  }
  // Clitics from the right: "i'd've" -> i 'd 've, "can't" -> ca n't.
  std::vector<std::string> clitics;
  while (true) {
    if (core.size() > 3 && ends_with(core, "n't")) {
      clitics.push_back("n't");
      core.resize(core.size() - 3);
      continue;
    }
    bool split = false;
    for (std::string_view c : {"'s", "'m", "'d", "'re", "'ve", "'ll"}) {
      if (core.size() > c.size() && ends_with(core, c)) {
        clitics.emplace_back(c);
        core.resize(core.size() - c.size());
        split = true;
        break;
      }
    }
    if (!split) break;
  }
  out->push_back(core);
  out->insert(out->end(), clitics.rbegin(), clitics.rend());
}

void tokenize_chunk(std::string_view w, std::vector<std::string>* out) {
  if (apostrophe_word(w) || w == "n't") {
    out->emplace_back(w);
    return;
  }
  // Opening affixes.
  while (!w.empty()) {
    if (w[0] == '"') {
      out->push_back("``");
      w.remove_prefix(1);
    } else if (starts_with(w, "``")) {
      out->push_back("``");
      w.remove_prefix(2);
    } else if (starts_with(w, "...")) {
      out->push_back("...");
      w.remove_prefix(3);
    } else if (starts_with(w, "--")) {
      out->push_back("--");
      w.remove_prefix(2);
    } else if (w[0] == '(' || w[0] == '[' || w[0] == '{') {
      out->push_back(w[0] == '(' ? "-lrb-" : w[0] == '[' ? "-lsb-" : "-lcb-");
      w.remove_prefix(1);
    } else if (w.size() > 1 && (w[0] == '$' || w[0] == '#' || w[0] == '~' || w[0] == '^' ||
                                w[0] == '|' || w[0] == '*')) {
      out->emplace_back(1, w[0]);
      w.remove_prefix(1);
    } else if (w.size() > 1 && w[0] == '-' && !is_digit(w[1])) {
      out->push_back("-");
      w.remove_prefix(1);
    } else if (w.size() > 1 && w[0] == '\'' && !apostrophe_word(leading_word(w)) &&
               leading_word(w) != "'tis" && leading_word(w) != "'twas") {
      out->push_back("`");
      w.remove_prefix(1);
    } else {
      break;
    }
  }
  // Closing affixes, collected right to left.
  std::vector<std::string> closing;
  while (!w.empty()) {
    const char last = w.back();
    if (w == "'n'" || apostrophe_word(w)) break;
    if (last == '"') {
      closing.push_back("''");
      w.remove_suffix(1);
    } else if (last == ')' || last == ']' || last == '}') {
      closing.push_back(last == ')' ? "-rrb-" : last == ']' ? "-rsb-" : "-rcb-");
      w.remove_suffix(1);
    } else if (ends_with(w, "...")) {
      closing.push_back("...");
      w.remove_suffix(3);
    } else if (ends_with(w, "--")) {
      closing.push_back("--");
      w.remove_suffix(2);
    } else if (last == '?' || last == '!') {
      size_t start = w.size();
      while (start > 0 && (w[start - 1] == '?' || w[start - 1] == '!')) --start;
      closing.emplace_back(w.substr(start));
      w.remove_suffix(w.size() - start);
    } else if (last == ',' || last == ';' || last == ':' || last == '%' || last == '*' ||
               (last == '-' && w.size() > 1)) {
      closing.emplace_back(1, last);
      w.remove_suffix(1);
    } else if (last == '\'' && w.size() > 1) {
      closing.push_back("'");
      w.remove_suffix(1);
    } else if (last == '.' && !(w.size() > 1 && keeps_period(w.substr(0, w.size() - 1)))) {
      closing.push_back(".");
      w.remove_suffix(1);
    } else {
      break;
    }
  }
  split_core(std::string(w), out);
  out->insert(out->end(), closing.rbegin(), closing.rend());
}

bool removed_punctuation(const std::string& t) {
  static constexpr std::string_view kRemoved[] = {"''",    "'",     "``", "`",   "-LRB-", "-RRB-",
                                                  "-LCB-", "-RCB-", ".",  "?",   "!",     ",",
                                                  ":",     "-",     "--", "...", ";"};
  return std::find(std::begin(kRemoved), std::end(kRemoved), t) != std::end(kRemoved);
}

}  // namespace

std::vector<std::string> coco_tokenize(const std::string& caption) {
  const std::string text = utf8_lower(ascii_punctuation(caption));
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    if (j > i) tokenize_chunk(std::string_view(text).substr(i, j - i), &tokens);
    i = j;
  }
  std::vector<std::string> kept;
  for (std::string& t : tokens)
    if (!t.empty() && !removed_punctuation(t)) kept.push_back(std::move(t));
  return kept;
}

}  // namespace iris::models
