// Retrieval (clip): the symmetric InfoNCE of a batch of images against all of their captions
// (each distinct caption of a record once): the image tower, the costly one, runs once per
// image while every phrasing supervises it (on the synth set five captions per image, each
// naming some of its shapes' sizes, positions or background), as VQA trains an image with all
// of its questions. Validated by text->image recall@1. A caption that is also one of another
// batch image's captions ("a small red circle" written for both) matches that image too
// rather than being its negative.
#include <algorithm>

#include "autograd/ops.h"
#include "core/error.h"
#include "models/clip.h"
#include "models/dataset.h"
#include "models/trainer.h"

namespace iris::models::train_detail {
namespace {

class RetrievalTask : public CaptionFileTask {
 public:
  RetrievalTask(const TrainOptions& o, Run* run) : CaptionFileTask(o, run, 2, 64) {}

  TaskBatch load(int64_t index, const nn::BatchRequest& request) const override {
    const CaptionRecord& r = records_[index];
    TaskBatch s;
    s.images = training_image(r.image, run_->image, options_.hflip, request, index);
    const TokenBatch t = encode_texts(run_->vocab, distinct_captions(r), true, run_->max_len);
    s.tokens = t.ids;
    s.lengths = t.lengths;
    s.samples = 1;
    s.record = index;
    return s;
  }

  TaskBatch collate(std::vector<TaskBatch>&& samples) const override {
    std::vector<Tensor> images;
    std::vector<std::vector<int64_t>> texts;
    std::vector<std::string> strings;  // text j's caption
    for (const auto& s : samples) {
      images.push_back(s.images);
      const std::vector<int64_t> ids = s.tokens.to_vector<int64_t>();
      const std::vector<int64_t> lengths = s.lengths.to_vector<int64_t>();
      const auto width = static_cast<size_t>(s.tokens.size(1));
      for (size_t k = 0; k < lengths.size(); ++k)
        texts.emplace_back(ids.begin() + k * width,
                           ids.begin() + k * width + static_cast<size_t>(lengths[k]));
      for (const std::string& c : distinct_captions(records_[s.record])) strings.push_back(c);
    }
    const nn::PaddedTokens padded = nn::pad_sequences(texts, Vocabulary::kPad);
    TaskBatch out;
    out.images = stack(images, 0);
    out.tokens = padded.ids;
    out.lengths = padded.lengths.to(DType::i64);
    out.samples = static_cast<int64_t>(samples.size());
    const int64_t B = out.samples, M = static_cast<int64_t>(strings.size());
    std::vector<float> matches(static_cast<size_t>(B * M), 0.0f);
    for (int64_t i = 0; i < B; ++i) {
      const auto& own = records_[samples[i].record].captions;
      for (int64_t j = 0; j < M; ++j)
        matches[i * M + j] = std::find(own.begin(), own.end(), strings[j]) != own.end();
    }
    out.matches = Tensor::from_vector(matches, {B, M});
    return out;
  }

  Tensor loss(nn::Module& model, const TaskBatch& batch) const override {
    return dynamic_cast<Clip&>(model).loss(batch.images, batch.tokens, batch.lengths,
                                           batch.matches);
  }

  std::string metric_name() const override { return "recall@1"; }

  // A record's captions, each string once, in order.
  static std::vector<std::string> distinct_captions(const CaptionRecord& r) {
    std::vector<std::string> out;
    for (const std::string& c : r.captions)
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
    return out;
  }

  std::string config_fields() const override {
    return "\"vocab\": " + std::to_string(run_->vocab.size()) +
           ", \"text_len\": " + std::to_string(run_->max_len) +
           ", \"image_size\": " + std::to_string(run_->image.size);
  }
};

}  // namespace

std::unique_ptr<TrainTask> make_retrieval_task(const TrainOptions& options, Run* run) {
  return std::make_unique<RetrievalTask>(options, run);
}

}  // namespace iris::models::train_detail
