#pragma once
// The run directory of `iris train`: everything inference and evaluation need to use a
// trained model, plus what training needs to continue.
//
//   RUN_DIR/
//     run.json                 what the run is: {"task", "model", "image": {"size", "mean",
//                              "std"}, "max_len", "vocab", "answers", "step", "best": {...}}
//     model.safetensors        the best model so far (by the validation metric; the last one
//                              when there is no validation set): zoo save_model format, i.e.
//                              weights + metadata "iris.model", "iris.config", plus
//                              "iris.task"; models::load_model reads it
//     vocab.txt                the word vocabulary (caption words, VQA question words, CLIP
//                              text), Vocabulary::save format
//     answers.txt              VQA only: the answer set, one per line, in class-id order
//     checkpoint.safetensors   the latest training checkpoint (model, optimizer, schedule,
//                              RNG, step, loader position) that --resume continues from
//     metrics.jsonl            one JSON object per logged step / validation
//     config.json              the run's options, for people (not read back)
//
// Every file is written atomically (temporary file, rename), so an interrupted or failed
// write (a full disk) leaves the previous version in place.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "models/decode.h"
#include "models/tokenizer.h"
#include "nn/image.h"
#include "nn/module.h"

namespace iris::models {

// How an image file becomes a model input: decode to RGB, resize the shorter side to `size`
// (antialiased), center crop size x size, scale to [0, 1], then (x - mean) / std per channel.
struct ImageSpec {
  int64_t size = 64;
  std::vector<double> mean = {0.5, 0.5, 0.5};
  std::vector<double> std = {0.25, 0.25, 0.25};
};

// "caption" | "vqa" | "retrieval"
std::vector<std::string> task_names();
// The task a zoo model trains for: vit-cap, cnn-rnn -> caption; clip -> retrieval;
// fusion-* -> vqa. Throws naming the model otherwise.
std::string task_of_model(const std::string& model);

struct Run {
  std::string dir;
  std::string task;                   // caption | vqa | retrieval
  std::string model_name;             // zoo name: vit-cap, cnn-rnn, clip, fusion-early, ...
  std::string config;                 // the zoo configuration JSON the model was built from
  std::shared_ptr<nn::Module> model;  // in eval mode, on the device load_run was given
  Vocabulary vocab;                   // captions / questions / CLIP text
  std::vector<std::string> answers;   // VQA: class id -> answer
  ImageSpec image;
  int64_t max_len = 0;           // text tokens the model takes at most (<bos>/<eos> included)
  int64_t step = 0;              // the training step the saved model comes from
  std::string best_json = "{}";  // the validation figures of the saved model (JSON object)

  // The model as what its task uses (throws naming the model when it is not that kind).
  CaptionModel& captioner() const;
  class Clip& clip() const;
  class FusionVqa& vqa() const;
};

// Reads RUN_DIR (run.json, model.safetensors, vocab.txt, answers.txt) and moves the model to
// `device`. A missing or inconsistent file throws naming it (e.g. a vocabulary whose size is
// not the model's).
Run load_run(const std::string& dir, Device device = Device::cpu());
// Writes run.json, model.safetensors, vocab.txt and (for VQA) answers.txt into run.dir
// (created if needed), each atomically.
void save_run(const Run& run);
// True when `dir` holds a run.json.
bool is_run_dir(const std::string& dir);

// ---- inputs as training made them ----
// An image file -> float32 [3, size, size], normalised (read_image's errors name the file).
Tensor load_image_tensor(const std::string& path, const ImageSpec& spec);
// A decoded image (float32 [C, H, W] in [0, 1], C = 3) -> the model input.
Tensor prepare_image(const Tensor& chw, const ImageSpec& spec);
// Several files -> [B, 3, size, size].
Tensor load_image_batch(const std::vector<std::string>& paths, const ImageSpec& spec);

// Texts as token ids padded with <pad> to the longest (int64 [B, L]) with lengths (int64 [B]);
// each text is split_words + vocabulary ids, <bos>/<eos> around it when bos_eos, cut to
// max_len tokens (the last kept token stays <eos> when bos_eos).
struct TokenBatch {
  Tensor ids, lengths;
};
TokenBatch encode_texts(const Vocabulary& vocab, const std::vector<std::string>& texts,
                        bool bos_eos, int64_t max_len);
// The question / CLIP text encodings of a run (its vocabulary, conventions and max_len).
TokenBatch encode_questions(const Run& run, const std::vector<std::string>& questions);
TokenBatch encode_retrieval_texts(const Run& run, const std::vector<std::string>& texts);

// Decoding options matching the run's vocabulary and positions (greedy unless beam > 1).
DecodeOptions caption_decode_options(const Run& run, int64_t beam = 1);

// ---- small file helpers shared by the trainer ----
// Writes `text` to `path` atomically (temporary file, fsync, rename); throws naming the file
// (and leaves any previous file untouched) when a write fails.
void write_file_atomic(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

}  // namespace iris::models
