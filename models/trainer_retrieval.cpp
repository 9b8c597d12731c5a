// Retrieval (clip): the symmetric InfoNCE of image-caption pairs, one of an image's captions
// per visit (drawn by the sample's seed); validated by text->image recall@1. A caption that
// is also one of another batch image's captions ("a small red circle" written for both)
// matches that image too rather than being its negative.
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

  TaskBatch collate(std::vector<TaskBatch>&& samples) const override {
    std::vector<Tensor> images;
    std::vector<std::vector<int64_t>> texts;
    for (const auto& s : samples) {
      images.push_back(s.images);
      texts.push_back(s.tokens.to_vector<int64_t>());
    }
    const nn::PaddedTokens padded = nn::pad_sequences(texts, Vocabulary::kPad);
    TaskBatch out;
    out.images = stack(images, 0);
    out.tokens = padded.ids;
    out.lengths = padded.lengths.to(DType::i64);
    out.samples = static_cast<int64_t>(samples.size());
    const int64_t B = out.samples;
    std::vector<float> matches(static_cast<size_t>(B * B), 0.0f);
    for (int64_t i = 0; i < B; ++i) {
      const auto& own = records_[samples[i].record].captions;
      for (int64_t j = 0; j < B; ++j) {
        const std::string& text = records_[samples[j].record].captions[samples[j].caption];
        matches[i * B + j] = i == j || std::find(own.begin(), own.end(), text) != own.end();
      }
    }
    out.matches = Tensor::from_vector(matches, {B, B});
    return out;
  }

  Tensor loss(nn::Module& model, const TaskBatch& batch) const override {
    return dynamic_cast<Clip&>(model).loss(batch.images, batch.tokens, batch.lengths,
                                           batch.matches);
  }

  std::string metric_name() const override { return "recall@1"; }

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
