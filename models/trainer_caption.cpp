// Captioning (vit-cap, cnn-rnn): teacher-forced cross-entropy over the caption words, one
// of an image's captions per visit (drawn by the sample's seed); validated by BLEU-4 of
// greedy captions.
#include <algorithm>

#include "autograd/ops.h"
#include "core/error.h"
#include "models/dataset.h"
#include "models/trainer.h"

namespace iris::models::train_detail {
namespace {

class CaptionTask : public CaptionFileTask {
 public:
  CaptionTask(const TrainOptions& o, Run* run) : CaptionFileTask(o, run, 0, 48) {}

  TaskBatch collate(std::vector<TaskBatch>&& samples) const override {
    std::vector<Tensor> images;
    int64_t L = 0;
    for (const auto& s : samples) {
      images.push_back(s.images);
      L = std::max(L, s.tokens.size(1));
    }
    const int64_t B = static_cast<int64_t>(samples.size());
    std::vector<int64_t> ids(B * L, Vocabulary::kPad);
    for (int64_t b = 0; b < B; ++b) {
      const auto row = samples[b].tokens.to_vector<int64_t>();
      std::copy(row.begin(), row.end(), ids.begin() + b * L);
    }
    TaskBatch out;
    out.images = stack(images, 0);
    out.tokens = Tensor::from_vector(ids, {B, L});
    out.samples = B;
    return out;
  }

  Tensor loss(nn::Module& model, const TaskBatch& batch) const override {
    auto& captioner = dynamic_cast<CaptionModel&>(model);
    return caption_loss(captioner, batch.images, batch.tokens, Vocabulary::kPad).loss;
  }

  std::string metric_name() const override { return "bleu4"; }

  std::string config_fields() const override {
    std::string f = "\"vocab\": " + std::to_string(run_->vocab.size());
    if (run_->model_name == "vit-cap")
      f += ", \"max_len\": " + std::to_string(run_->max_len) +
           ", \"image_size\": " + std::to_string(run_->image.size);
    return f;
  }
};

}  // namespace

CaptionFileTask::CaptionFileTask(const TrainOptions& o, Run* run, int64_t min_len, int64_t max_len)
    : options_(o), run_(run) {
  ReadReport report;
  records_ = read_captions(o.data, {o.skip_bad}, &report);
  read_skipped = report.skipped;
  read_messages = report.messages;
  std::vector<std::string> texts;
  for (const auto& r : records_)
    for (const auto& c : r.captions) texts.push_back(c);
  IRIS_CHECK(!texts.empty(), "train: ", o.data, ": no captions");
  run->vocab = Vocabulary::build(texts);
  int64_t longest = min_len;
  for (const auto& t : texts)
    longest = std::max<int64_t>(longest, static_cast<int64_t>(run->vocab.encode(t).size()));
  run->max_len = std::min<int64_t>(longest, max_len);
}

TaskBatch CaptionFileTask::load(int64_t index, const nn::BatchRequest& request) const {
  const CaptionRecord& r = records_[index];
  TaskBatch s;
  s.images = training_image(r.image, run_->image, options_.hflip, request, index);
  const uint64_t pick = request.sample_seed(index) % r.captions.size();
  s.tokens = encode_texts(run_->vocab, {r.captions[pick]}, true, run_->max_len).ids;
  s.samples = 1;
  return s;
}

std::unique_ptr<TrainTask> make_caption_task(const TrainOptions& options, Run* run) {
  return std::make_unique<CaptionTask>(options, run);
}

}  // namespace iris::models::train_detail
