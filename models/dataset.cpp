#include "models/dataset.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "nn/json_lite.h"

namespace iris::models {
namespace {

using json::Value;

std::string read_text(const std::string& path, const char* op) {
  std::ifstream in(path, std::ios::binary);
  if (!in) IRIS_FAIL(op, ": ", path, ": cannot open (", std::strerror(errno), ")");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) IRIS_FAIL(op, ": ", path, ": read error");
  return s.str();
}

void write_text(const std::string& path, const std::string& text, const char* op) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) IRIS_FAIL(op, ": ", path, ": cannot create (", std::strerror(errno), ")");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    IRIS_FAIL(op, ": ", path, ": write failed (", std::strerror(errno), ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    IRIS_FAIL(op, ": ", path, ": cannot rename (", std::strerror(errno), ")");
  }
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

// A malformed record: the message (with "file:line") that throws, or is logged with skip_bad.
struct BadRecord {
  std::string message;
};

const Value& field(const Value& obj, const char* key, Value::Kind kind, const char* kind_name,
                   const std::string& where) {
  const Value* v = obj.find(key);
  if (v == nullptr) throw BadRecord{detail::cat(where, ": missing \"", key, "\"")};
  if (v->kind != kind) throw BadRecord{detail::cat(where, ": \"", key, "\" must be ", kind_name)};
  return *v;
}

std::string text_field(const Value& obj, const char* key, const std::string& where) {
  const std::string& s = field(obj, key, Value::Kind::string, "a string", where).str;
  if (blank(s)) throw BadRecord{detail::cat(where, ": empty ", key)};
  return s;
}

std::vector<std::string> string_list(const Value& v, const char* key, const std::string& where) {
  if (v.kind != Value::Kind::array)
    throw BadRecord{detail::cat(where, ": \"", key, "\" must be a list of strings")};
  std::vector<std::string> out;
  for (const Value& e : v.arr) {
    if (e.kind != Value::Kind::string)
      throw BadRecord{detail::cat(where, ": \"", key, "\" must be a list of strings")};
    out.push_back(e.str);
  }
  return out;
}

void skip_or_throw(const std::string& message, const ReadOptions& options, ReadReport* report) {
  if (!options.skip_bad) throw Error(message);
  if (report != nullptr) {
    ++report->skipped;
    report->messages.push_back(message);
  }
}

// Calls fn(object, "file:line", line number) for each non-blank line, parsed.
template <class Fn>
void for_each_jsonl(const std::string& path, const char* op, const ReadOptions& options,
                    ReadReport* report, Fn&& fn) {
  const std::string text = read_text(path, op);
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (blank(line)) continue;
    const std::string where = detail::cat(path, ":", line_no);
    try {
      Value v;
      try {
        v = json::parse(line, where);
      } catch (const Error& e) {
        throw BadRecord{e.what()};
      }
      if (v.kind != Value::Kind::object) throw BadRecord{where + ": expected a JSON object"};
      fn(v, where, line_no);
    } catch (const BadRecord& bad) {
      skip_or_throw(detail::cat(op, ": ", bad.message), options, report);
    }
  }
}

// Drops empty captions (skip_bad) or throws naming the first one.
std::vector<std::string> checked_captions(const std::vector<std::string>& captions,
                                          const std::string& where, const char* op,
                                          const ReadOptions& options, ReadReport* report) {
  std::vector<std::string> kept;
  for (size_t i = 0; i < captions.size(); ++i) {
    if (!blank(captions[i])) {
      kept.push_back(captions[i]);
      continue;
    }
    skip_or_throw(detail::cat(op, ": ", where, ": empty caption (captions[", i, "])"), options,
                  report);
  }
  if (kept.empty() && !captions.empty()) throw BadRecord{detail::cat(where, ": no caption left")};
  if (captions.empty()) throw BadRecord{detail::cat(where, ": no captions")};
  return kept;
}

std::string most_frequent(const std::vector<std::string>& answers) {
  std::map<std::string, int64_t> counts;
  for (const std::string& a : answers) ++counts[a];
  std::string best = answers[0];
  for (const std::string& a : answers)
    if (counts[a] > counts[best]) best = a;
  return best;
}

}  // namespace

std::string resolve_path(const std::string& file, const std::string& relative) {
  if (!relative.empty() && relative[0] == '/') return relative;
  const size_t slash = file.find_last_of('/');
  if (slash == std::string::npos) return relative;
  return file.substr(0, slash + 1) + relative;
}

std::vector<CaptionRecord> read_caption_jsonl(const std::string& path, const ReadOptions& options,
                                              ReadReport* report) {
  const char* op = "read_caption_jsonl";
  std::vector<CaptionRecord> records;
  for_each_jsonl(path, op, options, report,
                 [&](const Value& v, const std::string& where, int64_t line_no) {
                   CaptionRecord r;
                   r.image = resolve_path(path, text_field(v, "image", where));
                   std::vector<std::string> captions;
                   if (const Value* c = v.find("captions"); c != nullptr) {
                     captions = string_list(*c, "captions", where);
                   } else if (const Value* c1 = v.find("caption"); c1 != nullptr) {
                     if (c1->kind != Value::Kind::string)
                       throw BadRecord{where + ": \"caption\" must be a string"};
                     captions = {c1->str};
                   } else {
                     throw BadRecord{where + ": missing \"captions\""};
                   }
                   r.captions = checked_captions(captions, where, op, options, report);
                   r.image_id = line_no;
                   r.source = where;
                   records.push_back(std::move(r));
                 });
  return records;
}

std::vector<VqaRecord> read_vqa_jsonl(const std::string& path, const ReadOptions& options,
                                      ReadReport* report) {
  std::vector<VqaRecord> records;
  for_each_jsonl(path, "read_vqa_jsonl", options, report,
                 [&](const Value& v, const std::string& where, int64_t) {
                   VqaRecord r;
                   r.image = resolve_path(path, text_field(v, "image", where));
                   r.question = text_field(v, "question", where);
                   if (v.find("answer") != nullptr) r.answer = text_field(v, "answer", where);
                   if (const Value* a = v.find("answers"); a != nullptr) {
                     r.answers = string_list(*a, "answers", where);
                     for (size_t i = 0; i < r.answers.size(); ++i)
                       if (blank(r.answers[i]))
                         throw BadRecord{detail::cat(where, ": empty answer (answers[", i, "])")};
                     if (r.answers.empty()) throw BadRecord{where + ": empty \"answers\" list"};
                     if (r.answer.empty()) r.answer = most_frequent(r.answers);
                   }
                   if (r.answer.empty()) throw BadRecord{where + ": missing \"answer\""};
                   if (r.answers.empty()) r.answers = {r.answer};
                   if (const Value* t = v.find("type"); t != nullptr) {
                     if (t->kind != Value::Kind::string)
                       throw BadRecord{where + ": \"type\" must be a string"};
                     r.type = t->str;
                   }
                   r.source = where;
                   records.push_back(std::move(r));
                 });
  return records;
}

std::vector<CaptionRecord> read_coco_captions(const std::string& path,
                                              const std::string& image_root,
                                              const ReadOptions& options, ReadReport* report,
                                              bool keep_uncaptioned) {
  const char* op = "read_coco_captions";
  const Value doc = json::parse(read_text(path, op), detail::cat(op, ": ", path));
  auto top = [&](const char* key) -> const Value& {
    const Value* v = doc.kind == Value::Kind::object ? doc.find(key) : nullptr;
    IRIS_CHECK(v != nullptr && v->kind == Value::Kind::array, op, ": ", path,
               ": expected a top-level \"", key, "\" list (COCO captions format)");
    return *v;
  };
  const Value& images = top("images");
  const Value& annotations = top("annotations");
  std::vector<CaptionRecord> records;
  std::map<int64_t, size_t> by_id;
  auto integer_field = [&](const Value& obj, const char* key, const std::string& where) {
    const Value& v = field(obj, key, Value::Kind::number, "an integer", where);
    if (!v.is_integer) throw BadRecord{detail::cat(where, ": \"", key, "\" must be an integer")};
    return v.integer;
  };
  for (size_t i = 0; i < images.arr.size(); ++i) {
    const std::string where = detail::cat(path, ": images[", i, "]");
    try {
      const Value& im = images.arr[i];
      if (im.kind != Value::Kind::object) throw BadRecord{where + ": expected an object"};
      CaptionRecord r;
      r.image_id = integer_field(im, "id", where);
      const std::string file = text_field(im, "file_name", where);
      r.image =
          image_root.empty() ? resolve_path(path, file) : resolve_path(image_root + "/", file);
      r.source = where;
      if (!by_id.emplace(r.image_id, records.size()).second)
        throw BadRecord{detail::cat(where, ": duplicate image id ", r.image_id)};
      records.push_back(std::move(r));
    } catch (const BadRecord& bad) {
      skip_or_throw(detail::cat(op, ": ", bad.message), options, report);
    }
  }
  for (size_t i = 0; i < annotations.arr.size(); ++i) {
    const std::string where = detail::cat(path, ": annotations[", i, "]");
    try {
      const Value& a = annotations.arr[i];
      if (a.kind != Value::Kind::object) throw BadRecord{where + ": expected an object"};
      const int64_t id = integer_field(a, "image_id", where);
      const std::string caption = text_field(a, "caption", where);
      auto it = by_id.find(id);
      if (it == by_id.end()) throw BadRecord{detail::cat(where, ": unknown image_id ", id)};
      records[it->second].captions.push_back(caption);
    } catch (const BadRecord& bad) {
      skip_or_throw(detail::cat(op, ": ", bad.message), options, report);
    }
  }
  if (keep_uncaptioned) return records;
  std::vector<CaptionRecord> kept;
  for (CaptionRecord& r : records) {
    if (!r.captions.empty()) {
      kept.push_back(std::move(r));
    } else {
      skip_or_throw(detail::cat(op, ": ", r.source, ": image ", r.image_id, " has no caption"),
                    options, report);
    }
  }
  return kept;
}

std::vector<CaptionRecord> read_captions(const std::string& path, const ReadOptions& options,
                                         ReadReport* report) {
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  return json ? read_coco_captions(path, "", options, report)
              : read_caption_jsonl(path, options, report);
}

void write_caption_jsonl(const std::string& path, const std::vector<CaptionRecord>& records) {
  std::string out;
  for (const CaptionRecord& r : records) {
    out += "{\"image\": " + json::quote(r.image) + ", \"captions\": [";
    for (size_t i = 0; i < r.captions.size(); ++i)
      out += (i ? ", " : "") + json::quote(r.captions[i]);
    out += "]}\n";
  }
  write_text(path, out, "write_caption_jsonl");
}

void write_vqa_jsonl(const std::string& path, const std::vector<VqaRecord>& records) {
  std::string out;
  for (const VqaRecord& r : records) {
    IRIS_CHECK(!r.answer.empty(), "write_vqa_jsonl: ", path,
               ": a question without an answer: ", r.question);
    out += "{\"image\": " + json::quote(r.image) + ", \"question\": " + json::quote(r.question) +
           ", \"answer\": " + json::quote(r.answer);
    if (!r.answers.empty() && r.answers != std::vector<std::string>{r.answer}) {
      out += ", \"answers\": [";
      for (size_t i = 0; i < r.answers.size(); ++i)
        out += (i ? ", " : "") + json::quote(r.answers[i]);
      out += "]";
    }
    if (!r.type.empty()) out += ", \"type\": " + json::quote(r.type);
    out += "}\n";
  }
  write_text(path, out, "write_vqa_jsonl");
}

}  // namespace iris::models
