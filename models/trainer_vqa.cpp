// VQA (fusion-early, fusion-late, fusion-xattn): answer classification over the answers of
// the training set (most frequent first), cross-entropy; validated by VQA accuracy.
#include <algorithm>
#include <map>

#include "autograd/ops.h"
#include "core/error.h"
#include "models/dataset.h"
#include "models/trainer.h"
#include "models/vqa.h"

namespace iris::models::train_detail {
namespace {

class VqaTask : public TrainTask {
 public:
  VqaTask(const TrainOptions& o, Run* run) : options_(o), run_(run) {
    ReadReport report;
    records_ = read_vqa_jsonl(o.data, {o.skip_bad}, &report);
    read_skipped = report.skipped;
    read_messages = report.messages;
    IRIS_CHECK(!records_.empty(), "train: ", o.data, ": no questions");
    std::vector<std::string> questions;
    std::map<std::string, int64_t> count;
    for (const auto& r : records_) {
      questions.push_back(r.question);
      ++count[r.answer];
    }
    run->vocab = Vocabulary::build(questions);
    std::vector<std::pair<std::string, int64_t>> by_count(count.begin(), count.end());
    std::stable_sort(by_count.begin(), by_count.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    for (const auto& [answer, n] : by_count) {
      answer_id_[answer] = static_cast<int64_t>(run->answers.size());
      run->answers.push_back(answer);
    }
    int64_t longest = 1;
    for (const auto& q : questions)
      longest =
          std::max<int64_t>(longest, static_cast<int64_t>(run->vocab.encode(q, false).size()));
    run->max_len = std::min<int64_t>(longest, 48);
  }

  int64_t size() const override { return static_cast<int64_t>(records_.size()); }

  TaskBatch load(int64_t index, const nn::BatchRequest& request) const override {
    const VqaRecord& r = records_[index];
    TaskBatch s;
    s.images = training_image(r.image, run_->image, options_.hflip, request, index);
    s.tokens = encode_texts(run_->vocab, {r.question}, false, run_->max_len).ids;
    s.answers = Tensor::from_vector(std::vector<int64_t>{answer_id_.at(r.answer)}, {1});
    s.samples = 1;
    return s;
  }

  TaskBatch collate(std::vector<TaskBatch>&& samples) const override {
    std::vector<Tensor> images, answers;
    std::vector<std::vector<int64_t>> questions;
    for (const auto& s : samples) {
      images.push_back(s.images);
      answers.push_back(s.answers);
      questions.push_back(s.tokens.to_vector<int64_t>());
    }
    const nn::PaddedTokens padded = nn::pad_sequences(questions, Vocabulary::kPad);
    TaskBatch out;
    out.images = stack(images, 0);
    out.tokens = padded.ids;
    out.lengths = padded.lengths.to(DType::i64);
    out.answers = cat(answers, 0);
    out.samples = static_cast<int64_t>(samples.size());
    return out;
  }

  Tensor loss(nn::Module& model, const TaskBatch& batch) const override {
    auto& vqa = dynamic_cast<FusionVqa&>(model);
    return cross_entropy(vqa.forward(batch.images, batch.tokens, batch.lengths), batch.answers);
  }

  std::string metric_name() const override { return "accuracy"; }

  std::string config_fields() const override {
    return "\"vocab\": " + std::to_string(run_->vocab.size()) +
           ", \"num_answers\": " + std::to_string(run_->answers.size()) +
           ", \"max_question_len\": " + std::to_string(run_->max_len) +
           ", \"image_size\": " + std::to_string(run_->image.size);
  }

 private:
  TrainOptions options_;
  Run* run_;
  std::vector<VqaRecord> records_;
  std::map<std::string, int64_t> answer_id_;
};

}  // namespace

std::unique_ptr<TrainTask> make_vqa_task(const TrainOptions& options, Run* run) {
  return std::make_unique<VqaTask>(options, run);
}

}  // namespace iris::models::train_detail
