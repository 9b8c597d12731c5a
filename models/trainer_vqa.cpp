// VQA (fusion-early, fusion-late, fusion-xattn): answer classification over the answers of
// the training set (most frequent first), cross-entropy; validated by VQA accuracy.
// A training sample is an image with all of its questions (in file order): the image is
// decoded and encoded once per step for all of them, which makes a step over a set with
// four questions per image about three times cheaper than one image per question.
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
    std::map<std::string, size_t> image_sample;
    for (size_t i = 0; i < records_.size(); ++i) {
      const VqaRecord& r = records_[i];
      questions.push_back(r.question);
      ++count[r.answer];
      const auto [it, added] = image_sample.emplace(r.image, samples_.size());
      if (added) samples_.emplace_back();
      samples_[it->second].push_back(i);
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

  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }

  TaskBatch load(int64_t index, const nn::BatchRequest& request) const override {
    const std::vector<size_t>& asked = samples_[index];
    std::vector<std::string> questions;
    std::vector<int64_t> answers;
    for (size_t i : asked) {
      questions.push_back(records_[i].question);
      answers.push_back(answer_id_.at(records_[i].answer));
    }
    TaskBatch s;
    s.images =
        training_image(records_[asked.front()].image, run_->image, options_.hflip, request, index);
    const TokenBatch tb = encode_texts(run_->vocab, questions, false, run_->max_len);
    s.tokens = tb.ids;
    s.lengths = tb.lengths;
    s.answers = Tensor::from_vector(answers, {static_cast<int64_t>(answers.size())});
    s.samples = 1;
    return s;
  }

  TaskBatch collate(std::vector<TaskBatch>&& samples) const override {
    std::vector<Tensor> images, answers;
    std::vector<std::vector<int64_t>> questions;
    std::vector<int64_t> image_of;
    for (size_t i = 0; i < samples.size(); ++i) {
      const TaskBatch& s = samples[i];
      images.push_back(s.images);
      answers.push_back(s.answers);
      const int64_t len = s.tokens.size(1);
      const std::vector<int64_t> ids = s.tokens.to_vector<int64_t>();
      const std::vector<int64_t> lengths = s.lengths.to(DType::i64).to_vector<int64_t>();
      for (size_t q = 0; q < lengths.size(); ++q) {
        const auto row = ids.begin() + static_cast<int64_t>(q) * len;
        questions.emplace_back(row, row + lengths[q]);
        image_of.push_back(static_cast<int64_t>(i));
      }
    }
    const nn::PaddedTokens padded = nn::pad_sequences(questions, Vocabulary::kPad);
    TaskBatch out;
    out.images = stack(images, 0);
    out.tokens = padded.ids;
    out.lengths = padded.lengths.to(DType::i64);
    out.answers = cat(answers, 0);
    out.image_of = Tensor::from_vector(image_of, {static_cast<int64_t>(image_of.size())});
    out.samples = static_cast<int64_t>(samples.size());
    return out;
  }

  Tensor loss(nn::Module& model, const TaskBatch& batch) const override {
    auto& vqa = dynamic_cast<FusionVqa&>(model);
    return cross_entropy(vqa.forward(batch.images, batch.tokens, batch.lengths, batch.image_of),
                         batch.answers);
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
  std::vector<std::vector<size_t>> samples_;  // per image: its questions' records
  std::map<std::string, int64_t> answer_id_;
};

}  // namespace

std::unique_ptr<TrainTask> make_vqa_task(const TrainOptions& options, Run* run) {
  return std::make_unique<VqaTask>(options, run);
}

}  // namespace iris::models::train_detail
