// The run directory (models/run.h): save_run / load_run round trips, errors that name the
// inconsistent file, image preparation as training does it, text encoding, atomic writes.
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "models/captioner_vit.h"
#include "models/run.h"
#include "models/zoo.h"
#include "nn/image.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {
namespace fs = std::filesystem;

class RunDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("iris_test_run_dir");
  }
  void TearDown() override { fs::remove_all(dir_); }

  models::Run tiny_caption_run() {
    models::Run run;
    run.dir = dir_ + "/run";
    run.task = "caption";
    run.model_name = "vit-cap";
    run.vocab = Vocabulary::build({"a red circle", "a blue square left of a green star"});
    run.max_len = 10;
    run.image.size = 32;
    run.config = zoo_config("vit-cap", R"({"image_size": 32, "dim": 16, "encoder_depth": 1,
        "decoder_depth": 1, "heads": 2, "mlp_dim": 32, "max_len": 10, "vocab": )" +
                                           std::to_string(run.vocab.size()) + "}");
    Generator g(5);
    run.model = build_model("vit-cap", run.config, &g);
    run.step = 17;
    run.best_json = R"({"step": 17, "val_bleu4": 0.25})";
    return run;
  }

  std::string dir_;
};

TEST_F(RunDir, SaveLoadRoundTrip) {
  const models::Run saved = tiny_caption_run();
  save_run(saved);
  for (const char* f : {"run.json", "model.safetensors", "vocab.txt"})
    EXPECT_TRUE(fs::exists(fs::path(saved.dir) / f)) << f;
  EXPECT_FALSE(fs::exists(fs::path(saved.dir) / "answers.txt"));
  EXPECT_TRUE(is_run_dir(saved.dir));
  EXPECT_FALSE(is_run_dir(dir_));

  const models::Run loaded = load_run(saved.dir);
  EXPECT_EQ(loaded.task, "caption");
  EXPECT_EQ(loaded.model_name, "vit-cap");
  EXPECT_EQ(loaded.config, saved.config);
  EXPECT_EQ(loaded.vocab, saved.vocab);
  EXPECT_EQ(loaded.max_len, 10);
  EXPECT_EQ(loaded.step, 17);
  EXPECT_EQ(loaded.image.size, 32);
  EXPECT_EQ(loaded.image.mean, saved.image.mean);
  EXPECT_EQ(loaded.image.std, saved.image.std);
  EXPECT_EQ(loaded.best_json, saved.best_json);
  EXPECT_FALSE(loaded.model->is_training());
  const auto a = saved.model->state_dict(), b = loaded.model->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.to_vector<float>(), b[i].second.to_vector<float>()) << a[i].first;
  }
  // The loaded captioner decodes with the run's options.
  const DecodeOptions d = caption_decode_options(loaded, 3);
  EXPECT_EQ(d.max_len, 9);
  EXPECT_EQ(d.beam_width, 3);
  EXPECT_EQ(d.eos, Vocabulary::kEos);
  EXPECT_NO_THROW(loaded.captioner());
  EXPECT_THROW(loaded.clip(), Error);
}

TEST_F(RunDir, InconsistentFilesAreNamed) {
  EXPECT_IRIS_ERROR(load_run(dir_), "no run.json");
  const models::Run saved = tiny_caption_run();
  save_run(saved);
  // A vocabulary of another size than the model's.
  Vocabulary::build({"just two"}).save(saved.dir + "/vocab.txt");
  EXPECT_IRIS_ERROR(load_run(saved.dir), "vocab.txt has 6 tokens but the model's");
  fs::remove(saved.dir + "/model.safetensors");
  EXPECT_IRIS_ERROR(load_run(saved.dir), "model.safetensors");
}

TEST_F(RunDir, ImagesArePreparedAsInTraining) {
  // A 48 x 64 (H x W) image: resize the shorter side to 32 -> 32 x 42, center crop 32 x 32.
  nn::Image8 img;
  img.height = 48;
  img.width = 64;
  img.channels = 3;
  for (int64_t y = 0; y < 48; ++y)
    for (int64_t x = 0; x < 64; ++x)
      for (int64_t c = 0; c < 3; ++c)
        img.pixels.push_back(static_cast<uint8_t>((x * 3 + y + 40 * c) % 256));
  const std::string path = dir_ + "/img.png";
  nn::write_image(path, img);
  ImageSpec spec;
  spec.size = 32;
  const Tensor x = load_image_tensor(path, spec);
  ASSERT_EQ(x.shape(), Shape({3, 32, 32}));
  const Tensor want = nn::normalize(
      nn::center_crop(nn::resize_shorter(nn::to_tensor(img), 32), 32, 32), spec.mean, spec.std);
  EXPECT_EQ(x.contiguous().to_vector<float>(), want.contiguous().to_vector<float>());
  // (v - 0.5) / 0.25 maps [0, 1] to [-2, 2].
  const auto v = x.to_vector<float>();
  EXPECT_GE(*std::min_element(v.begin(), v.end()), -2.0f - 1e-6f);
  EXPECT_LE(*std::max_element(v.begin(), v.end()), 2.0f + 1e-6f);
  const Tensor batch = load_image_batch({path, path}, spec);
  EXPECT_EQ(batch.shape(), Shape({2, 3, 32, 32}));
  std::ofstream(dir_ + "/bad.png") << "not a png";
  EXPECT_IRIS_ERROR(load_image_tensor(dir_ + "/bad.png", spec), "bad.png");
}

TEST_F(RunDir, TextsAreEncodedWithLengths) {
  const Vocabulary v = Vocabulary::build({"a red circle above a blue square"});
  const TokenBatch t =
      encode_texts(v, {"a red circle", "a red circle above a blue square"}, true, 5);
  ASSERT_EQ(t.ids.shape(), Shape({2, 5}));
  EXPECT_EQ(t.lengths.to_vector<int64_t>(), (std::vector<int64_t>{5, 5}));
  const auto ids = t.ids.to_vector<int64_t>();
  EXPECT_EQ(ids[0], Vocabulary::kBos);
  EXPECT_EQ(ids[4], Vocabulary::kEos);  // "<bos> a red circle <eos>"
  EXPECT_EQ(ids[9], Vocabulary::kEos);  // cut to 5, the last kept token stays <eos>
  const TokenBatch q = encode_texts(v, {"red", "a blue square"}, false, 8);
  EXPECT_EQ(q.lengths.to_vector<int64_t>(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(q.ids.to_vector<int64_t>()[1], Vocabulary::kPad);
}

TEST_F(RunDir, FailedWriteKeepsThePreviousFile) {
  const std::string path = dir_ + "/f.txt";
  write_file_atomic(path, "old contents\n");
  // A file-size limit makes the write fail with EFBIG, as a full disk fails it with ENOSPC.
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  try {
    write_file_atomic(path, std::string(4096, 'x'));
  } catch (const Error& e) {
    threw = std::string(e.what()).find("f.txt") != std::string::npos;
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_EQ(read_file(path), "old contents\n");
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(RunTasks, ModelsMapToTasks) {
  EXPECT_EQ(task_of_model("vit-cap"), "caption");
  EXPECT_EQ(task_of_model("cnn-rnn"), "caption");
  EXPECT_EQ(task_of_model("clip"), "retrieval");
  EXPECT_EQ(task_of_model("fusion-xattn"), "vqa");
  EXPECT_IRIS_ERROR(task_of_model("vit-b16"), "vit-b16");
}

}  // namespace
}  // namespace iris::models
