// The trainer (models/trainer.h) on a tiny synthetic set: the run directory it writes, resume
// that continues bit for bit, the errors for bad input (images, lines, checkpoints that do not
// fit), a failed checkpoint write that keeps the previous one, and evaluation of each task.
#include <sys/resource.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/synth.h"
#include "models/trainer.h"
#include "models/zoo.h"
#include "nn/json_lite.h"
#include "nn/safetensors.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {
namespace fs = std::filesystem;

const char* kTinyVitCap = R"({"dim": 16, "encoder_depth": 1, "decoder_depth": 1, "heads": 2,
                             "mlp_dim": 32})";

class Trainer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = testing::make_temp_dir("iris_test_trainer");
    SynthOptions s;
    s.n = 60;
    s.size = 32;
    s.seed = 3;
    write_synth(data_, s);  // 48 train, 6 val, 6 test images
  }
  static void TearDownTestSuite() { fs::remove_all(data_); }
  void SetUp() override {
    out_ = data_ + "/run_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(out_);
  }

  TrainOptions caption_options() const {
    TrainOptions o;
    o.model = "vit-cap";
    o.config = kTinyVitCap;
    o.data = data_ + "/captions_train.jsonl";
    o.out = out_;
    o.image_size = 32;
    o.batch = 8;
    o.steps = 9;  // 6 batches an epoch: crosses an epoch boundary
    o.log_every = 1;
    o.workers = 2;
    return o;
  }

  static std::map<std::string, Tensor> tensors(const std::string& path) {
    return load_safetensors(path).tensors;
  }
  static void expect_same_tensors(const std::string& a, const std::string& b) {
    const auto ta = tensors(a), tb = tensors(b);
    ASSERT_EQ(ta.size(), tb.size());
    for (const auto& [name, t] : ta) {
      ASSERT_TRUE(tb.count(name)) << name;
      EXPECT_EQ(t.shape(), tb.at(name).shape()) << name;
      if (t.dtype() == DType::f32) {
        EXPECT_EQ(t.to_vector<float>(), tb.at(name).to_vector<float>()) << name;
      }
    }
  }

  static std::string data_;
  std::string out_;
};
std::string Trainer::data_;

std::vector<json::Value> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json::Value> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(json::parse(line, path));
  return rows;
}

TEST_F(Trainer, CaptionRunDirectoryMetricsAndEvaluation) {
  TrainOptions o = caption_options();
  o.val = data_ + "/captions_val.jsonl";
  o.val_every = 3;
  int64_t progress = 0, validations = 0, last_step = 0;
  o.sink = [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::progress) {
      ++progress;
      EXPECT_EQ(e.step, last_step + 1);
      last_step = e.step;
      EXPECT_EQ(e.total_steps, 9);
      EXPECT_GT(e.images_per_s, 0);
      EXPECT_TRUE(std::isfinite(e.loss));
    }
    if (e.kind == TrainEvent::Kind::validation) {
      ++validations;
      EXPECT_EQ(e.metric_name, "bleu4");
      EXPECT_GE(e.metric, 0.0);
      EXPECT_LE(e.metric, 1.0);
    }
  };
  const TrainResult r = train(o);
  EXPECT_EQ(r.steps, 9);
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(progress, 9);
  EXPECT_EQ(validations, 3);
  EXPECT_EQ(r.metric_name, "bleu4");
  for (const char* f : {"run.json", "model.safetensors", "vocab.txt", "checkpoint.safetensors",
                        "metrics.jsonl", "config.json"})
    EXPECT_TRUE(fs::exists(fs::path(out_) / f)) << f;
  const auto rows = read_jsonl(out_ + "/metrics.jsonl");
  int64_t loss_rows = 0, val_rows = 0;
  for (const auto& row : rows) {
    loss_rows += row.find("loss") != nullptr;
    val_rows += row.find("val_bleu4") != nullptr;
  }
  EXPECT_EQ(loss_rows, 9);
  EXPECT_EQ(val_rows, 3);
  EXPECT_EQ(json::parse(read_file(out_ + "/config.json"), "config.json").find("batch")->integer, 8);

  const models::Run run = load_run(out_);
  EXPECT_EQ(run.task, "caption");
  EXPECT_EQ(run.image.size, 32);
  const EvalResult e = evaluate(run, data_ + "/captions_test.jsonl");
  EXPECT_EQ(e.samples, 6);
  EXPECT_EQ(e.predictions.size(), 6u);
  const json::Value j = json::parse(e.to_json(), "eval json");
  for (const char* k : {"bleu1", "bleu2", "bleu3", "bleu4", "cider_d", "rouge_l"})
    ASSERT_NE(j.find(k), nullptr) << k;
  EXPECT_NEAR(j.find("bleu1")->num, e.caption.bleu[0], 1e-5);
}

TEST_F(Trainer, ResumeContinuesBitForBit) {
  TrainOptions o = caption_options();
  const std::string full = out_ + "_full";
  fs::remove_all(full);
  o.out = full;
  train(o);

  std::atomic<bool> stop{false};
  TrainOptions a = caption_options();
  a.stop = &stop;
  a.sink = [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::progress && e.step == 4) stop = true;
  };
  const TrainResult first = train(a);
  EXPECT_TRUE(first.stopped);
  EXPECT_EQ(first.steps, 4);
  TrainOptions b = caption_options();
  b.resume = true;
  const TrainResult second = train(b);
  EXPECT_FALSE(second.stopped);
  EXPECT_EQ(second.steps, 9);
  expect_same_tensors(full + "/model.safetensors", out_ + "/model.safetensors");
  expect_same_tensors(full + "/checkpoint.safetensors", out_ + "/checkpoint.safetensors");
  // metrics.jsonl has each step once.
  EXPECT_EQ(read_jsonl(out_ + "/metrics.jsonl").size(), 9u);
  fs::remove_all(full);
}

TEST_F(Trainer, ResumeThatDoesNotFitNamesTheDifference) {
  TrainOptions o = caption_options();
  o.steps = 2;
  train(o);
  TrainOptions c = o;
  c.resume = true;
  c.config = R"({"dim": 24, "encoder_depth": 1, "decoder_depth": 1, "heads": 2, "mlp_dim": 32})";
  EXPECT_IRIS_ERROR(train(c), "config mismatch");
  TrainOptions m = o;
  m.resume = true;
  m.model = "cnn-rnn";
  m.config = "{}";
  EXPECT_IRIS_ERROR(train(m), "model mismatch");
  // Other captions: another vocabulary.
  const std::string other = data_ + "/other_captions.jsonl";
  {
    std::ofstream f(other);
    for (int i = 0; i < 8; ++i)
      f << "{\"image\": \"images/00000" << i << ".png\", \"captions\": [\"a zebra\"]}\n";
  }
  TrainOptions v = o;
  v.resume = true;
  v.data = other;
  EXPECT_IRIS_ERROR(train(v), "vocabulary mismatch");
  TrainOptions none = o;
  none.resume = true;
  none.out = out_ + "_missing";
  EXPECT_IRIS_ERROR(train(none), "does not exist");
}

TEST_F(Trainer, BadImageStopsOrIsSkipped) {
  const std::string file = data_ + "/captions_bad_image.jsonl";
  std::ofstream(data_ + "/broken.png") << "\x89PNG but not really";
  {
    std::ofstream f(file);
    for (int i = 0; i < 7; ++i)
      f << "{\"image\": \"images/00000" << i << ".png\", \"captions\": [\"a red circle\"]}\n";
    f << "{\"image\": \"broken.png\", \"captions\": [\"a blue square\"]}\n";
  }
  TrainOptions o = caption_options();
  o.data = file;
  o.batch = 4;
  o.steps = 2;  // one epoch: every image is read
  EXPECT_IRIS_ERROR(train(o), "broken.png");
  o.skip_bad = true;
  fs::remove_all(out_);
  const TrainResult r = train(o);
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(r.skipped, 1);
  ASSERT_EQ(r.skip_messages.size(), 1u);
  EXPECT_NE(r.skip_messages[0].find("broken.png"), std::string::npos);
  // Evaluation stops at it too, or skips it when asked.
  const models::Run run = load_run(out_);
  EXPECT_IRIS_ERROR(evaluate(run, file), "broken.png");
  EvalOptions eo;
  eo.skip_bad = true;
  const EvalResult e = evaluate(run, file, eo);
  EXPECT_EQ(e.samples, 7);
  EXPECT_EQ(e.skipped, 1);
}

TEST_F(Trainer, MalformedLineNamesFileAndLine) {
  const std::string file = data_ + "/captions_bad_line.jsonl";
  {
    std::ofstream f(file);
    for (int i = 0; i < 4; ++i)
      f << "{\"image\": \"images/00000" << i << ".png\", \"captions\": [\"a red circle\"]}\n";
    f << "{\"image\": \"images/000005.png\", \"captions\": [\"a red\n";
  }
  TrainOptions o = caption_options();
  o.data = file;
  o.batch = 2;
  o.steps = 2;
  EXPECT_IRIS_ERROR(train(o), "captions_bad_line.jsonl:5");
  o.skip_bad = true;
  const TrainResult r = train(o);
  EXPECT_EQ(r.skipped, 1);
  ASSERT_EQ(r.skip_messages.size(), 1u);
  EXPECT_NE(r.skip_messages[0].find("captions_bad_line.jsonl:5"), std::string::npos);
}

TEST_F(Trainer, FailedCheckpointWriteKeepsThePreviousOne) {
  std::atomic<bool> stop{false};
  TrainOptions o = caption_options();
  o.steps = 4;
  o.stop = &stop;
  o.sink = [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::progress && e.step == 2) stop = true;
  };
  ASSERT_TRUE(train(o).stopped);
  const std::string ckpt = out_ + "/checkpoint.safetensors";
  const auto size = fs::file_size(ckpt);
  // The resumed run reaches step 4, and its checkpoint write fails (EFBIG under a file-size
  // limit, as ENOSPC on a full disk).
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = size / 2;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  TrainOptions r = caption_options();
  r.steps = 4;
  r.resume = true;
  bool threw = false;
  try {
    train(r);
  } catch (const Error& e) {
    threw = std::string(e.what()).find("checkpoint.safetensors") != std::string::npos;
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  // The step-2 checkpoint is intact and resumes.
  EXPECT_EQ(load_safetensors(ckpt).metadata.at("step"), "2");
  const TrainResult done = train(r);
  EXPECT_EQ(done.steps, 4);
}

TEST_F(Trainer, VqaTrainsAndEvaluatesPerType) {
  TrainOptions o;
  o.model = "fusion-xattn";
  o.config = R"({"cnn_channels": [8, 16], "dim": 16, "heads": 2, "mlp_dim": 32,
                 "text_depth": 1, "fusion_depth": 1})";
  o.data = data_ + "/vqa_train.jsonl";
  o.val = data_ + "/vqa_val.jsonl";
  o.out = out_;
  o.image_size = 32;
  o.batch = 16;
  o.steps = 3;
  const TrainResult r = train(o);
  EXPECT_EQ(r.metric_name, "accuracy");
  EXPECT_GE(r.best_metric, 0.0);
  const models::Run run = load_run(out_);
  EXPECT_EQ(run.task, "vqa");
  EXPECT_FALSE(run.answers.empty());
  EXPECT_TRUE(fs::exists(out_ + "/answers.txt"));
  const EvalResult e = evaluate(run, data_ + "/vqa_test.jsonl");
  EXPECT_EQ(e.samples, 24);  // 6 images, 4 questions each
  EXPECT_GE(e.vqa.per_type.size(), 4u);
  EXPECT_GE(e.vqa.overall, 0.0);
  EXPECT_LE(e.vqa.overall, 1.0);
  const json::Value j = json::parse(e.to_json(), "eval json");
  ASSERT_NE(j.find("accuracy"), nullptr);
  ASSERT_NE(j.find("per_type"), nullptr);
  EXPECT_EQ(j.find("per_type")->obj.size(), e.vqa.per_type.size());
}

TEST_F(Trainer, RetrievalTrainsAndEvaluatesBothDirections) {
  TrainOptions o;
  o.model = "clip";
  o.config = R"({"patch": 8, "vision_dim": 16, "vision_depth": 1, "vision_heads": 2,
                 "vision_mlp": 32, "text_dim": 16, "text_depth": 1, "text_heads": 2,
                 "text_mlp": 32, "embed_dim": 16})";
  o.data = data_ + "/captions_train.jsonl";
  o.val = data_ + "/captions_val.jsonl";
  o.out = out_;
  o.image_size = 32;
  o.batch = 16;
  o.steps = 3;
  const TrainResult r = train(o);
  EXPECT_EQ(r.metric_name, "recall@1");
  const models::Run run = load_run(out_);
  EXPECT_EQ(run.task, "retrieval");
  const EvalResult e = evaluate(run, data_ + "/captions_test.jsonl");
  EXPECT_EQ(e.samples, 6);
  ASSERT_EQ(e.retrieval.ks, (std::vector<int64_t>{1, 5, 10}));
  EXPECT_DOUBLE_EQ(e.retrieval.text_to_image[2], 1.0);  // 6 images: every rank is < 10
  EXPECT_GE(e.retrieval.image_to_text[2], e.retrieval.image_to_text[0]);
  const json::Value j = json::parse(e.to_json(), "eval json");
  for (const char* k :
       {"text_to_image_r1", "text_to_image_r5", "text_to_image_r10", "image_to_text_r1",
        "image_to_text_r5", "image_to_text_r10", "pair_text_to_image_r1", "distinct_texts"})
    ASSERT_NE(j.find(k), nullptr) << k;
  // Counting shared strings as one caption can only find more.
  EXPECT_GE(e.retrieval.text_to_image[0], e.retrieval_pairs.text_to_image[0]);
  // Two images with one caption text: per pair, at most one of the two identical queries
  // can rank its own image first; as one caption, both find an image it describes.
  const std::string shared = data_ + "/shared_caption.jsonl";
  {
    std::ofstream f(shared);
    f << "{\"image\": \"images/000000.png\", \"captions\": [\"a red circle\"]}\n";
    f << "{\"image\": \"images/000001.png\", \"captions\": [\"a red circle\"]}\n";
  }
  const EvalResult two = evaluate(run, shared);
  EXPECT_EQ(two.distinct_texts, 1);
  EXPECT_LE(two.retrieval_pairs.text_to_image[0], 0.5);
  EXPECT_DOUBLE_EQ(two.retrieval.text_to_image[0], 1.0);
  EXPECT_DOUBLE_EQ(two.retrieval.image_to_text[0], 1.0);
}

// A retrieval batch holds every image once and each of its distinct captions: matches [B, M]
// marks the captions of each image, a string written for two images marking both.
TEST_F(Trainer, RetrievalBatchPairsEachImageWithAllItsCaptions) {
  const std::string file = data_ + "/three_records.jsonl";
  {
    std::ofstream f(file);
    f << R"({"image": "images/000000.png", "captions": ["a red circle", "a red circle", "one red circle"]})"
      << "\n"
      << R"({"image": "images/000001.png", "captions": ["a blue square", "a red circle"]})"
      << "\n"
      << R"({"image": "images/000002.png", "captions": ["a green star"]})"
      << "\n";
  }
  TrainOptions o;
  o.model = "clip";
  o.data = file;
  models::Run run;
  run.image.size = 32;
  const auto task = train_detail::make_retrieval_task(o, &run);
  nn::BatchRequest request;
  request.indices = {0, 1, 2};
  std::vector<train_detail::TaskBatch> samples;
  for (int64_t i : request.indices) samples.push_back(task->load(i, request));
  EXPECT_EQ(samples[0].tokens.size(0), 2);  // the repeated string once
  const train_detail::TaskBatch b = task->collate(std::move(samples));
  EXPECT_EQ(b.samples, 3);
  EXPECT_EQ(b.images.shape(), Shape({3, 3, 32, 32}));
  // Texts in order: a red circle, one red circle | a blue square, a red circle | a green star.
  ASSERT_EQ(b.tokens.size(0), 5);
  const auto ids = b.tokens.to_vector<int64_t>();
  const auto lengths = b.lengths.to_vector<int64_t>();
  const int64_t width = b.tokens.size(1);
  auto text = [&](int64_t j) {
    return std::vector<int64_t>(ids.begin() + j * width, ids.begin() + j * width + lengths[j]);
  };
  const TokenBatch expect = encode_texts(
      run.vocab,
      {"a red circle", "one red circle", "a blue square", "a red circle", "a green star"}, true,
      run.max_len);
  const auto want_ids = expect.ids.to_vector<int64_t>();
  const auto want_len = expect.lengths.to_vector<int64_t>();
  for (int64_t j = 0; j < 5; ++j) {
    EXPECT_EQ(lengths[j], want_len[j]) << j;
    EXPECT_EQ(text(j),
              std::vector<int64_t>(want_ids.begin() + j * expect.ids.size(1),
                                   want_ids.begin() + j * expect.ids.size(1) + want_len[j]))
        << j;
  }
  EXPECT_EQ(b.matches.shape(), Shape({3, 5}));
  EXPECT_EQ(b.matches.to_vector<float>(), (std::vector<float>{1, 1, 0, 1, 0,  //
                                                              1, 0, 1, 1, 0,  //
                                                              0, 0, 0, 0, 1}));
  Generator gen(3);
  auto model = build_model("clip",
                           R"({"image_size": 32, "patch": 8, "vision_dim": 16,
      "vision_depth": 1, "vision_heads": 2, "vision_mlp": 32, "text_dim": 16, "text_depth": 1,
      "text_heads": 2, "text_mlp": 32, "embed_dim": 8, "vocab": )" +
                               std::to_string(run.vocab.size()) +
                               ", \"text_len\": " + std::to_string(run.max_len) + "}",
                           &gen);
  const Tensor loss = task->loss(*model, b);
  EXPECT_TRUE(std::isfinite(loss.item()));
}

TEST_F(Trainer, OptionsAreChecked) {
  TrainOptions o = caption_options();
  o.precision = "bf16";
  EXPECT_IRIS_ERROR(train(o), "--precision bf16");
  o = caption_options();
  o.task = "vqa";
  EXPECT_IRIS_ERROR(train(o), "trained for task 'caption'");
  o = caption_options();
  o.model = "vit-b16";
  EXPECT_IRIS_ERROR(train(o), "vit-b16");
}

}  // namespace
}  // namespace iris::models
