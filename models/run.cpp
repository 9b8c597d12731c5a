#include "models/run.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/ops.h"
#include "core/error.h"
#include "models/clip.h"
#include "models/vqa.h"
#include "models/zoo.h"
#include "nn/checkpoint.h"
#include "nn/data_loader.h"
#include "nn/json_lite.h"
#include "nn/safetensors.h"

namespace iris::models {
namespace fs = std::filesystem;

namespace {

std::string doubles_json(const std::vector<double>& v) {
  std::ostringstream os;
  os.precision(17);
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

std::vector<double> doubles_of(const json::Value* v, const std::string& who) {
  IRIS_CHECK(v != nullptr && v->kind == json::Value::Kind::array && v->arr.size() == 3, who,
             ": expected an array of 3 numbers");
  std::vector<double> out;
  for (const auto& x : v->arr) {
    IRIS_CHECK(x.kind == json::Value::Kind::number, who, ": expected numbers");
    out.push_back(x.num);
  }
  return out;
}

const json::Value& field(const json::Value& obj, const char* key, json::Value::Kind kind,
                         const std::string& file) {
  const json::Value* v = obj.find(key);
  IRIS_CHECK(v != nullptr && v->kind == kind, "load_run: ", file, ": missing or mistyped '", key,
             "'");
  return *v;
}

// A JSON value back to text (for the "best" object kept verbatim).
std::string to_json_text(const json::Value& v) {
  std::ostringstream os;
  os.precision(17);
  switch (v.kind) {
    case json::Value::Kind::null:
      return "null";
    case json::Value::Kind::boolean:
      return v.b ? "true" : "false";
    case json::Value::Kind::number:
      if (v.is_integer) return std::to_string(v.integer);
      os << v.num;
      return os.str();
    case json::Value::Kind::string:
      return json::quote(v.str);
    case json::Value::Kind::array:
      os << "[";
      for (size_t i = 0; i < v.arr.size(); ++i) os << (i ? ", " : "") << to_json_text(v.arr[i]);
      os << "]";
      return os.str();
    case json::Value::Kind::object:
      os << "{";
      for (size_t i = 0; i < v.obj.size(); ++i)
        os << (i ? ", " : "") << json::quote(v.obj[i].first) << ": "
           << to_json_text(v.obj[i].second);
      os << "}";
      return os.str();
  }
  return "null";
}

}  // namespace

std::vector<std::string> task_names() { return {"caption", "vqa", "retrieval"}; }

std::string task_of_model(const std::string& model) {
  if (model == "vit-cap" || model == "cnn-rnn") return "caption";
  if (model == "clip") return "retrieval";
  if (model == "fusion-early" || model == "fusion-late" || model == "fusion-xattn" ||
      model == "image-only" || model == "text-only")
    return "vqa";
  IRIS_FAIL("model '", model,
            "' has no training task (vit-cap, cnn-rnn: caption; fusion-early, fusion-late, "
            "fusion-xattn, image-only, text-only: vqa; clip: retrieval)");
}

CaptionModel& Run::captioner() const {
  auto* m = dynamic_cast<CaptionModel*>(model.get());
  IRIS_CHECK(m != nullptr, "run ", dir, ": model '", model_name, "' is not a captioner");
  return *m;
}
Clip& Run::clip() const {
  auto* m = dynamic_cast<Clip*>(model.get());
  IRIS_CHECK(m != nullptr, "run ", dir, ": model '", model_name, "' is not clip");
  return *m;
}
FusionVqa& Run::vqa() const {
  auto* m = dynamic_cast<FusionVqa*>(model.get());
  IRIS_CHECK(m != nullptr, "run ", dir, ": model '", model_name, "' is not a fusion VQA model");
  return *m;
}

bool is_run_dir(const std::string& dir) { return fs::exists(fs::path(dir) / "run.json"); }

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  IRIS_CHECK(fd >= 0, path, ": cannot create ", tmp, ": ", std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = n < 0 ? std::strerror(errno) : "short write";
      ::close(fd);
      ::unlink(tmp.c_str());
      IRIS_FAIL(path, ": write failed: ", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    IRIS_FAIL(path, ": fsync/close failed: ", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    IRIS_FAIL(path, ": rename from ", tmp, " failed: ", err);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  IRIS_CHECK(in.good(), path, ": cannot open: ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void save_run(const Run& run) {
  IRIS_CHECK(run.model != nullptr, "save_run: ", run.dir, ": no model");
  fs::create_directories(run.dir);
  const fs::path dir(run.dir);
  nn::save_state_dict(
      *run.model, (dir / "model.safetensors").string(),
      {{"iris.model", run.model_name}, {"iris.config", run.config}, {"iris.task", run.task}});
  run.vocab.save((dir / "vocab.txt").string());
  if (run.task == "vqa") {
    std::string text;
    for (const auto& a : run.answers) text += a + "\n";
    write_file_atomic((dir / "answers.txt").string(), text);
  }
  std::ostringstream os;
  os << "{\n  \"task\": " << json::quote(run.task)
     << ",\n  \"model\": " << json::quote(run.model_name) << ",\n  \"config\": " << run.config
     << ",\n  \"image\": {\"size\": " << run.image.size
     << ", \"mean\": " << doubles_json(run.image.mean)
     << ", \"std\": " << doubles_json(run.image.std) << "},\n  \"max_len\": " << run.max_len
     << ",\n  \"vocab\": \"vocab.txt\",\n  \"vocab_size\": " << run.vocab.size()
     << ",\n  \"answers\": " << (run.task == "vqa" ? "\"answers.txt\"" : "null")
     << ",\n  \"weights\": \"model.safetensors\",\n  \"step\": " << run.step
     << ",\n  \"best\": " << run.best_json << "\n}\n";
  write_file_atomic((dir / "run.json").string(), os.str());
}

Run load_run(const std::string& dir_name, Device device) {
  const fs::path dir(dir_name);
  const std::string run_json = (dir / "run.json").string();
  IRIS_CHECK(fs::exists(run_json), "load_run: ", dir_name,
             " is not a run directory of `iris train` (no run.json)");
  const json::Value doc = json::parse(read_file(run_json), run_json);
  IRIS_CHECK(doc.kind == json::Value::Kind::object, "load_run: ", run_json, ": not an object");
  Run run;
  run.dir = dir_name;
  run.task = field(doc, "task", json::Value::Kind::string, run_json).str;
  run.model_name = field(doc, "model", json::Value::Kind::string, run_json).str;
  run.max_len = field(doc, "max_len", json::Value::Kind::number, run_json).integer;
  run.step = field(doc, "step", json::Value::Kind::number, run_json).integer;
  if (const json::Value* best = doc.find("best")) run.best_json = to_json_text(*best);
  const json::Value& image = field(doc, "image", json::Value::Kind::object, run_json);
  run.image.size = field(image, "size", json::Value::Kind::number, run_json).integer;
  run.image.mean = doubles_of(image.find("mean"), run_json + ": image.mean");
  run.image.std = doubles_of(image.find("std"), run_json + ": image.std");
  IRIS_CHECK(task_of_model(run.model_name) == run.task, "load_run: ", run_json, ": task '",
             run.task, "' does not fit model '", run.model_name, "'");

  const std::string weights = (dir / "model.safetensors").string();
  LoadedModel loaded = load_model(weights);
  IRIS_CHECK(loaded.name == run.model_name, "load_run: ", weights, " holds model '", loaded.name,
             "' but ", run_json, " says '", run.model_name, "'");
  run.config = loaded.config;
  run.model = loaded.model;
  run.vocab = Vocabulary::load((dir / "vocab.txt").string());
  int64_t model_vocab = 0;
  if (run.task == "caption") model_vocab = run.captioner().vocab_size();
  if (run.task == "retrieval") model_vocab = run.clip().config.vocab;
  if (run.task == "vqa") model_vocab = run.vqa().config.vocab;
  IRIS_CHECK(model_vocab == run.vocab.size(), "load_run: ", (dir / "vocab.txt").string(), " has ",
             run.vocab.size(), " tokens but the model's vocabulary has ", model_vocab);
  if (run.task == "vqa") {
    std::istringstream in(read_file((dir / "answers.txt").string()));
    for (std::string line; std::getline(in, line);) run.answers.push_back(line);
    IRIS_CHECK(static_cast<int64_t>(run.answers.size()) == run.vqa().config.num_answers,
               "load_run: ", (dir / "answers.txt").string(), " has ", run.answers.size(),
               " answers but the model has ", run.vqa().config.num_answers, " classes");
  }
  run.model->to(device);
  run.model->eval();
  return run;
}

Tensor prepare_image(const Tensor& chw, const ImageSpec& spec) {
  IRIS_CHECK(chw.dim() == 3 && chw.size(0) == 3, "prepare_image: expected [3, H, W], got ",
             chw.desc());
  Tensor x = chw;
  if (x.size(1) != spec.size || x.size(2) != spec.size) {
    x = nn::resize_shorter(x, spec.size);
    x = nn::center_crop(x, spec.size, spec.size);
  }
  return nn::normalize(x, spec.mean, spec.std).contiguous();
}

Tensor load_image_tensor(const std::string& path, const ImageSpec& spec) {
  return prepare_image(nn::read_image(path, 3), spec);
}

Tensor load_image_batch(const std::vector<std::string>& paths, const ImageSpec& spec) {
  IRIS_CHECK(!paths.empty(), "load_image_batch: no images");
  std::vector<Tensor> images;
  for (const auto& p : paths) images.push_back(load_image_tensor(p, spec));
  return stack(images, 0);
}

TokenBatch encode_texts(const Vocabulary& vocab, const std::vector<std::string>& texts,
                        bool bos_eos, int64_t max_len) {
  IRIS_CHECK(max_len >= (bos_eos ? 2 : 1), "encode_texts: max_len ", max_len, " is too small");
  std::vector<std::vector<int64_t>> seqs;
  seqs.reserve(texts.size());
  for (const auto& t : texts) {
    std::vector<int64_t> ids = vocab.encode(t, bos_eos);
    if (static_cast<int64_t>(ids.size()) > max_len) {
      ids.resize(max_len);
      if (bos_eos) ids.back() = Vocabulary::kEos;
    }
    if (ids.empty()) ids.push_back(Vocabulary::kUnk);  // an empty question still has a token
    seqs.push_back(std::move(ids));
  }
  const nn::PaddedTokens padded = nn::pad_sequences(seqs, Vocabulary::kPad);
  return {padded.ids, padded.lengths.to(DType::i64)};
}

TokenBatch encode_questions(const Run& run, const std::vector<std::string>& questions) {
  return encode_texts(run.vocab, questions, false, run.max_len);
}
TokenBatch encode_retrieval_texts(const Run& run, const std::vector<std::string>& texts) {
  return encode_texts(run.vocab, texts, true, run.max_len);
}

DecodeOptions caption_decode_options(const Run& run, int64_t beam) {
  DecodeOptions d;
  d.max_len = std::max<int64_t>(1, run.max_len - 1);
  d.bos = Vocabulary::kBos;
  d.eos = Vocabulary::kEos;
  d.pad = Vocabulary::kPad;
  d.beam_width = beam;
  return d;
}

}  // namespace iris::models
