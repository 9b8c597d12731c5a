#pragma once
// Training and evaluation of the iris models on files in the formats of models/dataset.h:
// what `iris train` and `iris eval` run, usable from code and tests as well.
//
//   TrainOptions o;
//   o.task = "caption"; o.model = "vit-cap";
//   o.data = "synth/captions_train.jsonl"; o.val = "synth/captions_val.jsonl";
//   o.out = "runs/vitcap";
//   TrainResult r = train(o);                     // writes the run directory (models/run.h)
//   Run run = load_run(o.out);
//   EvalResult e = evaluate(run, "synth/captions_test.jsonl");
//   std::puts(e.to_json().c_str());
//
// Tasks: caption (vit-cap, cnn-rnn: teacher-forced cross-entropy, validation BLEU-4 of greedy
// captions), vqa (fusion-early, fusion-late, fusion-xattn: answer classification, validation
// accuracy), retrieval (clip: symmetric InfoNCE, validation text->image recall@1).
//
// Determinism: with the same options, data and thread count a run is the same bit for bit,
// and a run stopped (TrainOptions::stop, or `steps` reached) and resumed continues exactly as
// the uninterrupted run would have (on CPU).
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/dataset.h"
#include "models/metrics.h"
#include "models/run.h"
#include "nn/data_loader.h"

namespace iris::models {

// What the trainer reports while it runs (the CLI prints it; tests usually ignore it).
struct TrainEvent {
  enum class Kind { start, progress, validation, checkpoint, skip, done } kind = Kind::progress;
  int64_t step = 0, total_steps = 0;  // optimizer steps done / planned
  int64_t epoch = 0, epochs = 0;      // current epoch (from 0) / planned
  double loss = 0;                    // smoothed training loss
  double lr = 0;
  double images_per_s = 0;  // samples per second since the start (or resume)
  double eta_s = 0;         // seconds left at that rate
  std::string metric_name;  // validation: "bleu4" | "accuracy" | "recall@1"
  double metric = 0;
  bool best = false;    // validation: a new best model was saved
  std::string message;  // start / checkpoint / skip / done: a human-readable line
};
using TrainSink = std::function<void(const TrainEvent&)>;

struct TrainOptions {
  std::string task;           // caption | vqa | retrieval; empty: the model's task
  std::string model;          // zoo name
  std::string config = "{}";  // zoo configuration overrides (JSON), over the model's defaults
  std::string data;           // training file (JSONL; COCO captions .json for captions)
  std::string val;            // validation file; empty: no validation (the last model is kept)
  std::string out;            // run directory

  // 0 = the model's default (train_defaults). steps > 0 wins over epochs.
  int64_t epochs = 0, steps = 0, batch = 0;
  double lr = 0;
  double weight_decay = -1;       // < 0: the model's default
  double warmup_fraction = 0.05;  // of the total steps, linear warm-up before the cosine
  double clip_norm = 1.0;         // global gradient-norm clipping; <= 0 off
  std::string device = "cpu";
  // fp32 | bf16 | fp16 (the last two on CUDA: autocast with fp32 master weights; fp16 with
  // dynamic loss scaling, whose scale restarts at its initial value on --resume)
  std::string precision = "fp32";
  bool resume = false;  // continue from RUN_DIR/checkpoint.safetensors
  uint64_t seed = 0;
  bool skip_bad = false;   // skip (count, report) unreadable images and malformed lines
  int64_t image_size = 0;  // 0: the model's default (64)
  bool hflip = false;      // random horizontal flips (only for text without left/right)

  int64_t log_every = 20;        // steps between progress events (and metrics.jsonl rows)
  int64_t val_every = 0;         // steps between validations; 0 = once per epoch
  int64_t val_limit = 500;       // validation samples at most (the first ones of the file)
  int64_t checkpoint_every = 0;  // steps between checkpoints; 0 = at each validation
  int workers = 2;               // data-loader threads

  std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT): checkpoint and return
  TrainSink sink;                     // progress events; null = silent
};

// Per-model defaults of `iris train` (what the quality bars of issue 5 were reached with).
struct TrainDefaults {
  int64_t epochs = 10, batch = 32;
  double lr = 1e-3, weight_decay = 0.01;
  std::string config = "{}";  // zoo configuration overrides
};
TrainDefaults train_defaults(const std::string& model);

struct TrainResult {
  int64_t steps = 0, total_steps = 0, epochs_done = 0;
  bool stopped = false;  // by TrainOptions::stop before the planned steps
  double final_loss = 0;
  std::string metric_name;
  double best_metric = -1;  // -1 without validation
  int64_t skipped = 0;      // samples left out (bad images, bad lines)
  std::vector<std::string> skip_messages;
  double seconds = 0;
};

// Trains (or resumes) and writes the run directory. Bad input throws iris::Error naming the
// file (and line), unless skip_bad; a checkpoint that does not fit the options (another model,
// configuration, vocabulary, task) throws naming what differs.
TrainResult train(const TrainOptions& options);

struct EvalOptions {
  int64_t batch = 64;
  int64_t beam = 1;   // captioning: beam width (1 = greedy)
  int64_t limit = 0;  // samples at most (0 = all)
  bool skip_bad = false;
};

struct EvalResult {
  std::string task;
  int64_t samples = 0;  // images (caption, retrieval) or questions (vqa)
  int64_t skipped = 0;
  std::vector<std::string> skip_messages;
  CaptionMetrics caption;  // task caption
  VqaAccuracy vqa;         // task vqa
  // Task retrieval: recall where a caption string written for several images ("a small red
  // circle") matches each of them (retrieval_recall's text keys), and the same counting only
  // the image each caption was written for (which such shared strings cap below 1).
  RetrievalRecall retrieval, retrieval_pairs;
  int64_t distinct_texts = 0;
  std::vector<std::string> predictions;  // generated captions / predicted answers, in order
  // One JSON object with the task's figures, e.g. {"task": "caption", "samples": 1000,
  // "bleu1": ..., "bleu4": ..., "cider_d": ..., "rouge_l": ...}.
  std::string to_json() const;
};

// Evaluates a run on a test file of its task's format.
EvalResult evaluate(const Run& run, const std::string& test_file, const EvalOptions& options = {});

// ---- plumbing shared by the trainer's files (trainer_<task>.cpp); not a user API ----
namespace train_detail {

// One training batch of any task: images [B, 3, S, S]; caption: tokens [B, T + 1] (padded
// with <pad>); vqa: questions [B, T], lengths [B], answers [B]; retrieval: tokens [B, T],
// lengths [B].
struct TaskBatch {
  Tensor images, tokens, lengths, answers;
  Tensor image_of;  // VQA: the row of `images` each question asks about
  Tensor matches;   // retrieval: [B, M] over the batch's M captions, 1 where caption j is one of
                    // image i's
  int64_t samples = 0;
  int64_t record = -1;  // retrieval: the sample's record, for collate
};

// A task's data and loss. make_*_task reads the training file, builds the vocabulary (and
// answer set) into `run` and fills run->config's data-dependent fields via `overrides`.
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual int64_t size() const = 0;  // training samples, the loader's index range
  // One sample, as the loader's workers call it (thread-safe); throws naming a bad file.
  virtual TaskBatch load(int64_t index, const nn::BatchRequest& request) const = 0;
  virtual TaskBatch collate(std::vector<TaskBatch>&& samples) const = 0;
  virtual Tensor loss(nn::Module& model, const TaskBatch& batch) const = 0;
  virtual std::string metric_name() const = 0;  // the validation metric, larger is better
  // The JSON fields (without braces) the model's configuration gets from the data.
  virtual std::string config_fields() const = 0;
  int64_t read_skipped = 0;  // records the reader left out (skip_bad)
  std::vector<std::string> read_messages;
};

// The tasks that read a caption file (captioning, retrieval): the records, the vocabulary of
// all their captions, run->max_len for the longest (<bos> words <eos>, at least min_len,
// capped at max_len: longer ones are cut), and a sample that is an image with one of its
// captions, drawn by the sample's seed.
class CaptionFileTask : public TrainTask {
 public:
  CaptionFileTask(const TrainOptions& o, Run* run, int64_t min_len, int64_t max_len);
  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  TaskBatch load(int64_t index, const nn::BatchRequest& request) const override;

 protected:
  TrainOptions options_;
  Run* run_;
  std::vector<CaptionRecord> records_;
};

std::unique_ptr<TrainTask> make_caption_task(const TrainOptions& options, Run* run);
std::unique_ptr<TrainTask> make_vqa_task(const TrainOptions& options, Run* run);
std::unique_ptr<TrainTask> make_retrieval_task(const TrainOptions& options, Run* run);

// The validation metric of the run's current model on the first `limit` samples of `file`.
double validation_metric(const Run& run, const std::string& file, int64_t limit, bool skip_bad);

// An image for training: load_image_tensor, flipped when `hflip` and the sample's draw says.
Tensor training_image(const std::string& path, const ImageSpec& spec, bool hflip,
                      const nn::BatchRequest& request, int64_t index);

}  // namespace train_detail
}  // namespace iris::models
