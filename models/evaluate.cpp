// `iris eval`: a run's task metrics on a test file (and the trainer's validation metric).
#include <map>
#include <sstream>

#include "autograd/ops.h"
#include "core/error.h"
#include "models/clip.h"
#include "models/dataset.h"
#include "models/trainer.h"
#include "models/vqa.h"
#include "nn/json_lite.h"

namespace iris::models {
namespace {

Device model_device(const Run& run) {
  const auto params = run.model->parameters();
  return params.empty() ? Device::cpu() : params.front().device();
}

// Images of `paths` ([B, 3, S, S] on the model's device); with skip_bad an unreadable one is
// left out (kept[i] false) and counted in `result`.
Tensor load_images(const Run& run, const std::vector<std::string>& paths, bool skip_bad,
                   std::vector<bool>* kept, EvalResult* result) {
  std::vector<Tensor> images;
  kept->assign(paths.size(), false);
  for (size_t i = 0; i < paths.size(); ++i) {
    try {
      images.push_back(load_image_tensor(paths[i], run.image));
      (*kept)[i] = true;
    } catch (const Error& e) {
      if (!skip_bad) throw;
      ++result->skipped;
      result->skip_messages.push_back(e.what());
    }
  }
  if (images.empty()) return Tensor();
  return stack(images, 0).to(model_device(run));
}

template <class Record>
void limit_records(std::vector<Record>* records, int64_t limit) {
  if (limit > 0 && static_cast<int64_t>(records->size()) > limit) records->resize(limit);
}

void evaluate_caption(const Run& run, const std::string& file, const EvalOptions& o,
                      EvalResult* r) {
  ReadReport report;
  std::vector<CaptionRecord> records = read_captions(file, {o.skip_bad}, &report);
  limit_records(&records, o.limit);
  r->skipped += report.skipped;
  r->skip_messages = report.messages;
  CaptionModel& model = run.captioner();
  const DecodeOptions d = caption_decode_options(run, o.beam);
  std::vector<std::vector<std::string>> references;
  for (size_t first = 0; first < records.size(); first += o.batch) {
    const size_t end = std::min(records.size(), first + static_cast<size_t>(o.batch));
    std::vector<std::string> paths;
    for (size_t i = first; i < end; ++i) paths.push_back(records[i].image);
    std::vector<bool> kept;
    const Tensor images = load_images(run, paths, o.skip_bad, &kept, r);
    if (!images.defined()) continue;
    const DecodeResult out = decode(model, images, d);
    size_t k = 0;
    for (size_t i = first; i < end; ++i) {
      if (!kept[i - first]) continue;
      r->predictions.push_back(run.vocab.decode(out.sequences[k++]));
      references.push_back(records[i].captions);
    }
  }
  IRIS_CHECK(!references.empty(), "eval: ", file, ": no images to caption");
  r->samples = static_cast<int64_t>(references.size());
  r->caption = caption_metrics(r->predictions, references);
}

void evaluate_vqa(const Run& run, const std::string& file, const EvalOptions& o, EvalResult* r) {
  ReadReport report;
  std::vector<VqaRecord> records = read_vqa_jsonl(file, {o.skip_bad}, &report);
  limit_records(&records, o.limit);
  r->skipped += report.skipped;
  r->skip_messages = report.messages;
  FusionVqa& model = run.vqa();
  std::vector<std::vector<std::string>> answers;
  std::vector<std::string> types;
  bool typed = true;
  for (size_t first = 0; first < records.size(); first += o.batch) {
    const size_t end = std::min(records.size(), first + static_cast<size_t>(o.batch));
    // Each image of the batch is read and encoded once for all of its questions.
    std::vector<std::string> paths, questions;
    std::map<std::string, size_t> path_row;
    std::vector<size_t> row_of;  // per record of the batch
    for (size_t i = first; i < end; ++i) {
      const auto [it, added] = path_row.emplace(records[i].image, paths.size());
      if (added) paths.push_back(records[i].image);
      row_of.push_back(it->second);
    }
    std::vector<bool> kept;
    const Tensor images = load_images(run, paths, o.skip_bad, &kept, r);
    if (!images.defined()) continue;
    std::vector<int64_t> kept_row(paths.size(), -1), image_of;
    for (size_t p = 0, n = 0; p < paths.size(); ++p)
      if (kept[p]) kept_row[p] = static_cast<int64_t>(n++);
    for (size_t i = first; i < end; ++i) {
      if (kept_row[row_of[i - first]] < 0) continue;
      questions.push_back(records[i].question);
      image_of.push_back(kept_row[row_of[i - first]]);
    }
    const TokenBatch q = encode_questions(run, questions);
    const Device dev = model_device(run);
    const Tensor rows =
        Tensor::from_vector(image_of, {static_cast<int64_t>(image_of.size())}).to(dev);
    const auto pred = argmax(model.forward(images, q.ids.to(dev), q.lengths.to(dev), rows), 1)
                          .to_vector<int64_t>();
    size_t k = 0;
    for (size_t i = first; i < end; ++i) {
      if (kept_row[row_of[i - first]] < 0) continue;
      r->predictions.push_back(run.answers.at(pred[k++]));
      answers.push_back(records[i].answers);
      types.push_back(records[i].type);
      typed = typed && !records[i].type.empty();
    }
  }
  IRIS_CHECK(!answers.empty(), "eval: ", file, ": no questions to answer");
  r->samples = static_cast<int64_t>(answers.size());
  r->vqa = vqa_accuracy(r->predictions, answers, typed ? types : std::vector<std::string>{});
}

void evaluate_retrieval(const Run& run, const std::string& file, const EvalOptions& o,
                        EvalResult* r) {
  ReadReport report;
  std::vector<CaptionRecord> records = read_captions(file, {o.skip_bad}, &report);
  limit_records(&records, o.limit);
  r->skipped += report.skipped;
  r->skip_messages = report.messages;
  Clip& clip = run.clip();
  const Device dev = model_device(run);
  std::vector<Tensor> image_emb, text_emb;
  std::vector<int64_t> text_image;
  std::vector<std::string> all_texts;  // in text_image's order
  int64_t n_images = 0;
  for (size_t first = 0; first < records.size(); first += o.batch) {
    const size_t end = std::min(records.size(), first + static_cast<size_t>(o.batch));
    std::vector<std::string> paths, texts;
    for (size_t i = first; i < end; ++i) paths.push_back(records[i].image);
    std::vector<bool> kept;
    const Tensor images = load_images(run, paths, o.skip_bad, &kept, r);
    if (!images.defined()) continue;
    image_emb.push_back(clip.encode_image(images));
    for (size_t i = first; i < end; ++i) {
      if (!kept[i - first]) continue;
      for (const auto& c : records[i].captions) {
        texts.push_back(c);
        all_texts.push_back(c);
        text_image.push_back(n_images);
      }
      ++n_images;
    }
    for (size_t t = 0; t < texts.size(); t += o.batch) {
      const size_t t_end = std::min(texts.size(), t + static_cast<size_t>(o.batch));
      const TokenBatch tb = encode_retrieval_texts(
          run, std::vector<std::string>(texts.begin() + t, texts.begin() + t_end));
      text_emb.push_back(clip.encode_text(tb.ids.to(dev), tb.lengths.to(dev)));
    }
  }
  IRIS_CHECK(n_images > 0, "eval: ", file, ": no images to retrieve");
  r->samples = n_images;
  const Tensor similarity = matmul(cat(image_emb, 0), cat(text_emb, 0).t()).to(Device::cpu());
  // Identical caption strings (a grammar writes "a small red circle" for several images) are
  // one caption that matches each of its images; retrieval_pairs counts only the writer.
  std::map<std::string, int64_t> key_of;
  std::vector<int64_t> keys;
  for (const auto& text : all_texts)
    keys.push_back(key_of.emplace(text, static_cast<int64_t>(key_of.size())).first->second);
  r->retrieval = retrieval_recall(similarity, text_image, {1, 5, 10}, keys);
  r->retrieval_pairs = retrieval_recall(similarity, text_image, {1, 5, 10});
  r->distinct_texts = static_cast<int64_t>(key_of.size());
}

std::string num(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

}  // namespace

EvalResult evaluate(const Run& run, const std::string& test_file, const EvalOptions& options) {
  IRIS_CHECK(options.batch >= 1 && options.beam >= 1 && options.limit >= 0,
             "eval: batch and beam must be >= 1 and limit >= 0");
  NoGradGuard no_grad;
  const bool was_training = run.model->is_training();
  run.model->eval();
  EvalResult r;
  r.task = run.task;
  try {
    if (run.task == "caption") evaluate_caption(run, test_file, options, &r);
    if (run.task == "vqa") evaluate_vqa(run, test_file, options, &r);
    if (run.task == "retrieval") evaluate_retrieval(run, test_file, options, &r);
  } catch (...) {
    run.model->train(was_training);
    throw;
  }
  run.model->train(was_training);
  return r;
}

std::string EvalResult::to_json() const {
  std::ostringstream os;
  os << "{\"task\": \"" << task << "\", \"samples\": " << samples << ", \"skipped\": " << skipped;
  if (task == "caption") {
    for (int n = 0; n < 4; ++n) os << ", \"bleu" << n + 1 << "\": " << num(caption.bleu[n]);
    os << ", \"cider_d\": " << num(caption.cider_d) << ", \"rouge_l\": " << num(caption.rouge_l);
  } else if (task == "vqa") {
    os << ", \"accuracy\": " << num(vqa.overall) << ", \"per_type\": {";
    bool first = true;
    for (const auto& [type, acc] : vqa.per_type) {
      os << (first ? "" : ", ") << json::quote(type) << ": " << num(acc);
      first = false;
    }
    os << "}";
  } else if (task == "retrieval") {
    for (size_t i = 0; i < retrieval.ks.size(); ++i)
      os << ", \"text_to_image_r" << retrieval.ks[i] << "\": " << num(retrieval.text_to_image[i]);
    for (size_t i = 0; i < retrieval.ks.size(); ++i)
      os << ", \"image_to_text_r" << retrieval.ks[i] << "\": " << num(retrieval.image_to_text[i]);
    for (size_t i = 0; i < retrieval_pairs.ks.size(); ++i)
      os << ", \"pair_text_to_image_r" << retrieval_pairs.ks[i]
         << "\": " << num(retrieval_pairs.text_to_image[i]);
    os << ", \"distinct_texts\": " << distinct_texts;
  }
  os << "}";
  return os.str();
}

namespace train_detail {

double validation_metric(const Run& run, const std::string& file, int64_t limit, bool skip_bad) {
  EvalOptions o;
  o.limit = limit;
  o.skip_bad = skip_bad;
  const EvalResult r = evaluate(run, file, o);
  if (run.task == "caption") return r.caption.bleu[3];
  if (run.task == "vqa") return r.vqa.overall;
  return r.retrieval.text_to_image.at(0);
}

}  // namespace train_detail
}  // namespace iris::models
