#pragma once
// Readers for the data formats of `iris train` / `iris eval`:
//
//   captioning / retrieval JSONL, one object per image:
//     {"image": "relative/or/absolute/path.png", "captions": ["...", "..."]}
//   COCO captions JSON: {"images": [{"id", "file_name"}], "annotations": [{"image_id",
//     "caption"}]}
//   VQA JSONL, one object per question:
//     {"image": "path", "question": "...", "answer": "..."}
//     optional: "answers": ["...", ...] (the human answers VQA accuracy counts; "answer"
//     may then be left out), "type": "color" (the question type accuracy is broken down by)
//
// Relative image paths are resolved against the folder of the JSONL/JSON file. Blank lines
// are ignored. A malformed line (bad JSON, a missing or mistyped field) throws iris::Error
// naming "file:line"; so does an empty caption, question or answer. With skip_bad, such
// records are left out instead, counted, and described in ReadReport (an empty caption
// is dropped from its record; a record left without captions is dropped).
#include <cstdint>
#include <string>
#include <vector>

namespace iris::models {

struct CaptionRecord {
  std::string image;  // resolved path
  std::vector<std::string> captions;
  int64_t image_id = -1;  // COCO's id; the line number for JSONL
  std::string source;     // "file:line" for messages
};

struct VqaRecord {
  std::string image;
  std::string question;
  std::string answer;                // the training target: "answer", else the most
                                     // frequent of "answers" (the first on a tie)
  std::vector<std::string> answers;  // for scoring: "answers" when given, else {answer}
  std::string type;                  // empty when the file has none
  std::string source;
};

struct ReadOptions {
  bool skip_bad = false;
};

struct ReadReport {
  int64_t skipped = 0;                // records (or captions) left out
  std::vector<std::string> messages;  // one per skip: "file:line: why"
};

std::vector<CaptionRecord> read_caption_jsonl(const std::string& path,
                                              const ReadOptions& options = {},
                                              ReadReport* report = nullptr);
// Captions grouped per image, in the order of `images`; images without annotations are
// kept with no captions only if keep_uncaptioned (else counted as skipped when skip_bad,
// an error otherwise). image_root defaults to the JSON file's folder.
std::vector<CaptionRecord> read_coco_captions(const std::string& path,
                                              const std::string& image_root = "",
                                              const ReadOptions& options = {},
                                              ReadReport* report = nullptr,
                                              bool keep_uncaptioned = false);
// By extension: ".json" is COCO captions, anything else JSONL.
std::vector<CaptionRecord> read_captions(const std::string& path, const ReadOptions& options = {},
                                         ReadReport* report = nullptr);
std::vector<VqaRecord> read_vqa_jsonl(const std::string& path, const ReadOptions& options = {},
                                      ReadReport* report = nullptr);

// Writers of the same formats (atomic: temporary file, rename), used by `iris synth`.
// Image paths are written as given.
void write_caption_jsonl(const std::string& path, const std::vector<CaptionRecord>& records);
void write_vqa_jsonl(const std::string& path, const std::vector<VqaRecord>& records);

// `relative` resolved against the folder holding `file` (unchanged when absolute).
std::string resolve_path(const std::string& file, const std::string& relative);

}  // namespace iris::models
