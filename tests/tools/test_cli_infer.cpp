// The inference commands (iris caption, vqa, retrieve) on tiny saved runs: what they print
// equals the library computed directly, --json parses, and bad input (a run of another task,
// a missing or corrupt image, a missing run) is an iris::Error naming it. And `iris demo
// --quick` end to end.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>

#include "autograd/ops.h"
#include "models/captioner_vit.h"
#include "models/clip.h"
#include "models/run.h"
#include "models/vqa.h"
#include "models/zoo.h"
#include "nn/json_lite.h"
#include "tests/support/testing.h"
#include "tests/tools/cli_runner.h"
#include "tools/demo.h"

namespace iris::tools {

namespace {

namespace fs = std::filesystem;
using json::Value;

// `iris ARGS...` as main() runs it; its stdout, after checking the exit code.
std::string iris_cli(const std::vector<std::string>& args) {
  const CommandOutput r = run_iris(args);
  EXPECT_EQ(r.code, 0);
  return r.out;
}

class InferCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(testing::make_temp_dir("iris_test_cli_infer"));
    fs::create_directories(*dir_ / "images");
    for (int i = 0; i < 3; ++i) {
      nn::Image8 im{16, 16, 3, {}};
      for (int k = 0; k < 16 * 16 * 3; ++k)
        im.pixels.push_back(static_cast<uint8_t>((k * (i + 3) + 40 * i) % 256));
      nn::write_image(image(i), im);
    }
    std::ofstream(*dir_ / "bad.png") << "not a png at all";
    const models::Vocabulary vocab =
        models::Vocabulary::build({"a red circle left of a blue square", "is there a star ?"});
    Generator gen(7);
    {
      models::ViTCaptionerConfig c;
      c.image_size = 16, c.patch = 4, c.dim = 16, c.encoder_depth = 1, c.decoder_depth = 1;
      c.heads = 2, c.mlp_dim = 32, c.vocab = vocab.size(), c.max_len = 8;
      save(run_of("caption", "vit-cap", models::config_to_json(c), vocab, gen));
    }
    {
      models::FusionConfig c;
      c.fusion = "late", c.image_size = 16, c.cnn_channels = {4, 8}, c.dim = 8, c.heads = 2;
      c.mlp_dim = 16, c.vocab = vocab.size(), c.max_question_len = 8, c.text_depth = 1;
      c.fusion_depth = 1, c.num_answers = 3;
      models::Run run = run_of("vqa", "fusion-late", models::config_to_json(c), vocab, gen);
      run.answers = {"red", "blue", "circle"};
      save(run);
    }
    {
      models::ClipConfig c;
      c.image_size = 16, c.patch = 8, c.vision_dim = 16, c.vision_depth = 1, c.vision_heads = 2;
      c.vision_mlp = 32, c.vocab = vocab.size(), c.text_len = 8, c.text_dim = 16;
      c.text_depth = 1, c.text_heads = 2, c.text_mlp = 32, c.embed_dim = 8;
      save(run_of("retrieval", "clip", models::config_to_json(c), vocab, gen));
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static models::Run run_of(const std::string& task, const std::string& model,
                            const std::string& config, const models::Vocabulary& vocab,
                            Generator& gen) {
    models::Run run;
    run.dir = run_dir(task);
    run.task = task;
    run.model_name = model;
    run.config = config;
    run.model = models::build_model(model, config, &gen);
    run.vocab = vocab;
    run.image.size = 16;
    run.max_len = 8;
    return run;
  }
  static void save(const models::Run& run) { models::save_run(run); }
  static std::string run_dir(const std::string& task) { return (*dir_ / task).string(); }
  static std::string image(int i) {
    return (*dir_ / "images" / ("img" + std::to_string(i) + ".png")).string();
  }
  static std::string bad_image() { return (*dir_ / "bad.png").string(); }
  static fs::path* dir_;
};
fs::path* InferCli::dir_ = nullptr;

TEST_F(InferCli, CaptionPrintsTheDecodedCaptions) {
  const models::Run run = models::load_run(run_dir("caption"));
  for (int64_t beam : {1, 3}) {
    SCOPED_TRACE(beam);
    const auto decoded =
        models::decode(run.captioner(), models::load_image_batch({image(0), image(1)}, run.image),
                       models::caption_decode_options(run, beam));
    const std::string out = iris_cli({"caption", "--model", run_dir("caption"), image(0), image(1),
                                      "--json", "--beam", std::to_string(beam), "--batch", "1"});
    const Value doc = json::parse(out, "caption --json");
    const Value* captions = doc.find("captions");
    ASSERT_TRUE(captions && captions->arr.size() == 2) << out;
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ(captions->arr[i].find("image")->str, image(static_cast<int>(i)));
      EXPECT_EQ(captions->arr[i].find("caption")->str, run.vocab.decode(decoded.sequences[i]));
      EXPECT_NEAR(captions->arr[i].find("score")->num, decoded.scores[i], 1e-5);
    }
  }
  const auto greedy =
      models::decode(run.captioner(), models::load_image_batch({image(2)}, run.image),
                     models::caption_decode_options(run));
  EXPECT_EQ(iris_cli({"caption", "--model", run_dir("caption"), image(2)}),
            image(2) + ": " + run.vocab.decode(greedy.sequences[0]) + "\n");
}

TEST_F(InferCli, VqaAnswersWithProbabilities) {
  const models::Run run = models::load_run(run_dir("vqa"));
  const std::vector<std::string> questions = {"is there a red circle ?", "a blue star"};
  Tensor probs;
  {
    NoGradGuard ng;
    const Tensor img = models::load_image_tensor(image(1), run.image).unsqueeze(0);
    const auto q = models::encode_questions(run, questions);
    probs = softmax(run.vqa().forward(cat({img, img}, 0), q.ids, q.lengths), 1).contiguous();
  }
  const std::vector<float> p = probs.to_vector<float>();
  const std::string out = iris_cli({"vqa", "--model", run_dir("vqa"), image(1), questions[0],
                                    questions[1], "--top", "3", "--json"});
  const Value doc = json::parse(out, "vqa --json");
  const Value* answers = doc.find("answers");
  ASSERT_TRUE(answers && answers->arr.size() == 2) << out;
  for (size_t i = 0; i < 2; ++i) {
    const Value& a = answers->arr[i];
    EXPECT_EQ(a.find("question")->str, questions[i]);
    const int64_t best =
        std::max_element(p.begin() + i * 3, p.begin() + i * 3 + 3) - (p.begin() + i * 3);
    EXPECT_EQ(a.find("answer")->str, run.answers[best]);
    EXPECT_NEAR(a.find("probability")->num, p[i * 3 + best], 1e-5);
    const Value* top = a.find("top");
    ASSERT_EQ(top->arr.size(), 3u);
    double total = 0;
    for (size_t k = 0; k < 3; ++k) {
      total += top->arr[k].find("probability")->num;
      if (k > 0) {
        EXPECT_GE(top->arr[k - 1].find("probability")->num, top->arr[k].find("probability")->num);
      }
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
  const std::string text = iris_cli({"vqa", "--model", run_dir("vqa"), image(1), questions[0]});
  EXPECT_EQ(text.rfind("Q: is there a red circle ?\nA: ", 0), 0u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
}

TEST_F(InferCli, RetrieveRanksBothDirections) {
  const models::Run run = models::load_run(run_dir("retrieval"));
  const std::string text = "a red circle left of a blue square";
  std::vector<float> sim;
  {
    NoGradGuard ng;
    const Tensor img = run.clip().encode_image(
        models::load_image_batch({image(0), image(1), image(2)}, run.image));
    const auto t = models::encode_retrieval_texts(run, {text});
    sim = matmul(run.clip().encode_text(t.ids, t.lengths), img.t()).contiguous().to_vector<float>();
  }
  std::vector<int> order{0, 1, 2};
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sim[a] > sim[b]; });
  const std::string out =
      iris_cli({"retrieve", "--model", run_dir("retrieval"), "--images",
                (*dir_ / "images").string(), "--text", text, "--top", "2", "--json"});
  const Value doc = json::parse(out, "retrieve --json");
  EXPECT_EQ(doc.find("direction")->str, "text->image");
  const Value& matches = *doc.find("results")->arr.at(0).find("matches");
  ASSERT_EQ(matches.arr.size(), 2u) << out;
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(matches.arr[k].find("image")->str, image(order[k]));
    EXPECT_NEAR(matches.arr[k].find("score")->num, sim[order[k]], 1e-5);
  }

  const fs::path texts = *dir_ / "texts.txt";
  std::ofstream(texts) << "is there a star ?\n\n" << text << "\nblue square\n";
  const std::string back = iris_cli({"retrieve", "--model", run_dir("retrieval"), "--image",
                                     image(2), "--texts", texts.string(), "--json"});
  const Value d2 = json::parse(back, "retrieve --json");
  EXPECT_EQ(d2.find("direction")->str, "image->text");
  const Value& m2 = *d2.find("results")->arr.at(0).find("matches");
  ASSERT_EQ(m2.arr.size(), 3u) << back;  // the blank line is not a text
  for (size_t k = 1; k < 3; ++k)
    EXPECT_GE(m2.arr[k - 1].find("score")->num, m2.arr[k].find("score")->num);
  const std::string human = iris_cli({"retrieve", "--model", run_dir("retrieval"), "--images",
                                      (*dir_ / "images").string(), "--text", text, "--top", "1"});
  EXPECT_EQ(
      human, text + "\n  1. " +
                 [&] {
                   char buf[32];
                   std::snprintf(buf, sizeof buf, "%.4f", sim[order[0]]);
                   return std::string(buf);
                 }() +
                 "  " + image(order[0]) + "\n");
}

TEST_F(InferCli, BadInputIsAnErrorNamingIt) {
  EXPECT_IRIS_ERROR(iris_cli({"vqa", "--model", run_dir("caption"), image(0), "what colour ?"}),
                    "is a caption run (model vit-cap), not a VQA run");
  EXPECT_IRIS_ERROR(iris_cli({"caption", "--model", run_dir("vqa"), image(0)}),
                    "is a vqa run (model fusion-late), not a captioning run");
  EXPECT_IRIS_ERROR(iris_cli({"retrieve", "--model", run_dir("caption"), "--images",
                              (*dir_ / "images").string(), "--text", "a"}),
                    "not a retrieval run");
  const std::string missing = (*dir_ / "images" / "nope.png").string();
  EXPECT_IRIS_ERROR(iris_cli({"caption", "--model", run_dir("caption"), image(0), missing}),
                    "nope.png");
  EXPECT_IRIS_ERROR(iris_cli({"caption", "--model", run_dir("caption"), bad_image()}), "bad.png");
  EXPECT_IRIS_ERROR(iris_cli({"vqa", "--model", run_dir("vqa"), bad_image(), "what ?"}), "bad.png");
  EXPECT_IRIS_ERROR(iris_cli({"vqa", "--model", run_dir("vqa"), image(0), " "}),
                    "an empty question");
  EXPECT_IRIS_ERROR(iris_cli({"caption", "--model", (*dir_ / "no-run").string(), image(0)}),
                    "no-run is not a run directory");
  EXPECT_IRIS_ERROR(iris_cli({"caption", "--model", run_dir("caption"), image(0), "--beam", "0"}),
                    "--beam must be >= 1");
  EXPECT_IRIS_ERROR(iris_cli({"retrieve", "--model", run_dir("retrieval"), "--images",
                              (*dir_ / "images").string(), "--text", "a", "--image", image(0)}),
                    "give either --images DIR with --text");
  EXPECT_IRIS_ERROR(iris_cli({"retrieve", "--model", run_dir("retrieval"), "--text", "a"}),
                    "text -> image needs both --images DIR and --text");
  EXPECT_IRIS_ERROR(iris_cli({"retrieve", "--model", run_dir("retrieval"), "--images",
                              (*dir_ / "nowhere").string(), "--text", "a"}),
                    "nowhere is not a folder");
  EXPECT_IRIS_ERROR(iris_cli({"retrieve", "--model", run_dir("retrieval"), "--image", image(0),
                              "--texts", (*dir_ / "none.txt").string()}),
                    "cannot open --texts");
}

TEST(DemoCli, QuickRunWritesTheReport) {
  const fs::path out = testing::make_temp_dir("iris_test_demo_quick");
  DemoOptions o;
  o.out = out.string();
  o.quick = true;
  o.samples = 3;
  std::FILE* log = std::tmpfile();
  const DemoResult r = run_demo(o, log);
  std::rewind(log);
  std::string text;
  for (int c; (c = std::fgetc(log)) != EOF;) text += static_cast<char>(c);
  std::fclose(log);
  EXPECT_EQ(r.steps, 6);
  EXPECT_GT(r.test.samples, 0);
  EXPECT_EQ(r.test.task, "caption");
  EXPECT_NE(text.find("[4/4]"), std::string::npos) << text;
  EXPECT_NE(text.find("Open the report: "), std::string::npos);
  std::ifstream f(r.report);
  const std::string html((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t images = 0;
  for (size_t p = html.find("data:image/png;base64,"); p != std::string::npos;
       p = html.find("data:image/png;base64,", p + 1))
    ++images;
  EXPECT_EQ(images, 3u);
  EXPECT_GT(std::count(text.begin(), text.end(), '\n'), 10);
  EXPECT_NE(html.find("data-series=\"loss\""), std::string::npos);
  EXPECT_NE(html.find("data-series=\"val_bleu4\""), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_TRUE(fs::exists(fs::path(r.run_dir) / "model.safetensors"));
  fs::remove_all(out);
}

}  // namespace
}  // namespace iris::tools
