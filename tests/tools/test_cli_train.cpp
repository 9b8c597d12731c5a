// The `iris synth`, `iris train` and `iris eval` commands as the command line runs them
// (parsed by their registered CLI11 setup): files written, the printed figures, the exit
// codes, and the last line of `iris eval` as one JSON object.

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "nn/json_lite.h"
#include "tests/support/testing.h"
#include "tests/tools/cli_runner.h"

namespace iris::tools {
namespace {
namespace fs = std::filesystem;

CommandOutput run_command(const std::vector<std::string>& args) { return run_iris(args); }

std::string last_line(const std::string& text) {
  std::string s = text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

class CliTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("iris_test_cli_train");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(CliTrain, SynthTrainEvalCaptioner) {
  const std::string data = dir_ + "/synth", run = dir_ + "/run";
  const CommandOutput s =
      run_command({"synth", "--out", data, "--n", "40", "--size", "32", "--seed", "9"});
  EXPECT_EQ(s.code, 0);
  EXPECT_NE(s.out.find("40 images (train 32, val 4, test 4)"), std::string::npos) << s.out;
  for (const char* f : {"captions_train.jsonl", "captions_val.jsonl", "captions_test.jsonl",
                        "vqa_train.jsonl", "vqa_val.jsonl", "vqa_test.jsonl", "images/000000.png"})
    EXPECT_TRUE(fs::exists(fs::path(data) / f)) << f;

  const CommandOutput t = run_command({"train",
                                       "--task",
                                       "caption",
                                       "--model",
                                       "cnn-rnn",
                                       "--data",
                                       data + "/captions_train.jsonl",
                                       "--val",
                                       data + "/captions_val.jsonl",
                                       "--out",
                                       run,
                                       "--steps",
                                       "4",
                                       "--batch",
                                       "8",
                                       "--image-size",
                                       "32",
                                       "--log-every",
                                       "2",
                                       "--val-every",
                                       "2",
                                       "--config",
                                       R"({"emb": 16, "hidden": 32, "channels": [8, 16]})"});
  EXPECT_EQ(t.code, 0);
  // Not a terminal: one plain line per progress event.
  EXPECT_NE(t.out.find("step 2/4  epoch 1/1  loss "), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("step 4/4"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("validation at step 2: bleu4 "), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find('\r'), std::string::npos);
  const json::Value summary = json::parse(last_line(t.out), "train summary");
  EXPECT_EQ(summary.find("steps")->integer, 4);
  EXPECT_FALSE(summary.find("stopped")->b);
  EXPECT_TRUE(fs::exists(run + "/run.json"));

  const CommandOutput e =
      run_command({"eval", "--model", run, "--data", data + "/captions_test.jsonl", "--show", "2"});
  EXPECT_EQ(e.code, 0);
  EXPECT_NE(e.out.find("BLEU-4"), std::string::npos) << e.out;
  const json::Value figures = json::parse(last_line(e.out), "eval figures");
  EXPECT_EQ(figures.find("task")->str, "caption");
  EXPECT_EQ(figures.find("samples")->integer, 4);
  for (const char* k : {"bleu1", "bleu2", "bleu3", "bleu4", "cider_d", "rouge_l"}) {
    ASSERT_NE(figures.find(k), nullptr) << k;
    EXPECT_GE(figures.find(k)->num, 0.0) << k;
  }
}

TEST_F(CliTrain, BadInputIsAnErrorNamingIt) {
  const std::string data = dir_ + "/synth";
  run_command({"synth", "--out", data, "--n", "20", "--size", "32"});
  {
    std::ofstream f(dir_ + "/bad.jsonl");
    f << "{\"image\": \"synth/images/000000.png\", \"question\": \"what colour?\", "
         "\"answer\": \"red\"}\n";
    f << "{\"image\": \"synth/images/000001.png\", \"question\": 7}\n";
  }
  EXPECT_IRIS_ERROR(run_command({"train", "--model", "fusion-late", "--data", dir_ + "/bad.jsonl",
                                 "--out", dir_ + "/run", "--steps", "1"}),
                    "bad.jsonl:2");
  EXPECT_IRIS_ERROR(
      run_command({"eval", "--model", dir_ + "/nothing", "--data", data + "/captions_test.jsonl"}),
      "no run.json");
  EXPECT_IRIS_ERROR(run_command({"synth", "--out", dir_ + "/s2", "--size", "8"}), "size");
}

}  // namespace
}  // namespace iris::tools
