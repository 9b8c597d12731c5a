// Whole models on the CUDA backend: each model of the zoo, at a tiny size, built once and
// copied to the device, gives the CPU's loss, outputs and every parameter gradient (one
// training-mode forward and backward; dropout is off in these configurations). This is the
// check that every op a model uses has a CUDA kernel and that they compose.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "autograd/ops.h"
#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "models/clip.h"
#include "models/synth.h"
#include "models/trainer.h"
#include "models/vqa.h"
#include "tests/support/testing.h"
#include "tests/support/tiny_models.h"

namespace iris::models {
namespace {

using testing::kCuda;
using testing::randn_seeded;

// Runs `loss_of(model)` (a 0-dim loss) on a CPU model and on its copy on the device and
// compares the losses and every parameter gradient.
template <class M, class LossFn>
void expect_same_training_step(M& cpu, M& gpu, LossFn loss_of, double rtol, double atol) {
  const Tensor loss_cpu = loss_of(cpu, Device::cpu());
  const Tensor loss_gpu = loss_of(gpu, kCuda);
  EXPECT_TRUE(loss_gpu.device().is_cuda());
  EXPECT_CLOSE(loss_gpu, loss_cpu, rtol, atol) << "loss";
  loss_cpu.backward();
  loss_gpu.backward();
  const auto gpu_params = gpu.named_parameters();
  std::map<std::string, Tensor> by_name(gpu_params.begin(), gpu_params.end());
  int compared = 0;
  for (const auto& [name, p] : cpu.named_parameters()) {
    const Tensor gc = p.grad(), gg = by_name.at(name).grad();
    ASSERT_EQ(gc.defined(), gg.defined()) << name;
    if (!gc.defined()) continue;
    EXPECT_CLOSE(gg, gc, rtol, atol) << "grad." << name;
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

template <class M, class Config>
std::pair<std::unique_ptr<M>, std::unique_ptr<M>> twins(const Config& config) {
  Generator g1(5), g2(5);
  auto cpu = std::make_unique<M>(config, &g1);
  auto gpu = std::make_unique<M>(config, &g2);
  gpu->to(kCuda);
  return {std::move(cpu), std::move(gpu)};
}

Tensor caption_tokens() {
  return Tensor::from_vector(std::vector<int64_t>{1, 5, 7, 9, 3, 2, 0, 1, 4, 4, 8, 6, 2, 0},
                             {2, 7});
}

TEST(BackendModels, VitCaptionerTrainingStepMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  ViTCaptionerConfig c;
  c.image_size = 16;
  c.patch = 4;
  c.dim = 16;
  c.encoder_depth = 1;
  c.decoder_depth = 1;
  c.heads = 2;
  c.mlp_dim = 24;
  c.vocab = 11;
  c.max_len = 8;
  auto [cpu, gpu] = twins<ViTCaptioner>(c);
  const Tensor img = randn_seeded({2, 3, 16, 16}, 1, DType::f32);
  expect_same_training_step(
      *cpu, *gpu,
      [&](ViTCaptioner& m, Device d) {
        return caption_loss(m, img.to(d), caption_tokens().to(d), 0).loss;
      },
      2e-4, 2e-5);
}

TEST(BackendModels, CnnRnnCaptionerTrainingStepMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  CnnRnnConfig c;
  c.vocab = 11;
  c.emb = 8;
  c.hidden = 12;
  c.channels = {4, 8};
  auto [cpu, gpu] = twins<CnnRnnCaptioner>(c);
  const Tensor img = randn_seeded({2, 3, 16, 16}, 2, DType::f32);
  expect_same_training_step(
      *cpu, *gpu,
      [&](CnnRnnCaptioner& m, Device d) {
        return caption_loss(m, img.to(d), caption_tokens().to(d), 0).loss;
      },
      2e-4, 2e-5);
}

// Greedy and beam decoding with the models on the device give the CPU's captions.
TEST(BackendModels, CaptionersDecodeOnTheDeviceAsOnTheCpu) {
  IRIS_REQUIRE_CUDA();
  ViTCaptionerConfig vc;
  vc.image_size = 16, vc.patch = 4, vc.dim = 16, vc.encoder_depth = 1, vc.decoder_depth = 1;
  vc.heads = 2, vc.mlp_dim = 24, vc.vocab = 11, vc.max_len = 8;
  CnnRnnConfig cc;
  cc.vocab = 11, cc.emb = 8, cc.hidden = 12, cc.channels = {4, 8};
  auto [vit_cpu, vit_gpu] = twins<ViTCaptioner>(vc);
  auto [rnn_cpu, rnn_gpu] = twins<CnnRnnCaptioner>(cc);
  const Tensor img = randn_seeded({3, 3, 16, 16}, 7, DType::f32);
  const std::pair<CaptionModel*, CaptionModel*> pairs[] = {{vit_cpu.get(), vit_gpu.get()},
                                                           {rnn_cpu.get(), rnn_gpu.get()}};
  for (auto [cpu, gpu] : pairs) {
    cpu->eval(), gpu->eval();
    for (int64_t beam : {1, 3}) {
      DecodeOptions opt;
      opt.max_len = 7;
      opt.beam_width = beam;
      const DecodeResult want = decode(*cpu, img, opt), got = decode(*gpu, img.to(kCuda), opt);
      EXPECT_EQ(got.sequences, want.sequences) << cpu->type_name() << " beam " << beam;
      for (size_t b = 0; b < want.scores.size(); ++b)
        EXPECT_NEAR(got.scores[b], want.scores[b], 1e-4);
    }
  }
}

TEST(BackendModels, ClipTrainingStepMatchesCpu) {
  IRIS_REQUIRE_CUDA();
  ClipConfig c;
  c.image_size = 16;
  c.patch = 8;
  c.vision_dim = 16;
  c.vision_depth = 1;
  c.vision_heads = 2;
  c.vision_mlp = 20;
  c.vocab = 13;
  c.text_len = 6;
  c.text_dim = 16;
  c.text_depth = 1;
  c.text_heads = 2;
  c.text_mlp = 20;
  c.embed_dim = 8;
  auto [cpu, gpu] = twins<Clip>(c);
  const Tensor img = randn_seeded({3, 3, 16, 16}, 3, DType::f32);
  const Tensor tok = Tensor::from_vector(
      std::vector<int64_t>{1, 4, 5, 2, 0, 0, 1, 7, 8, 9, 2, 0, 1, 3, 2, 0, 0, 0}, {3, 6});
  const Tensor len = Tensor::from_vector(std::vector<int64_t>{4, 5, 3}, {3});
  expect_same_training_step(
      *cpu, *gpu, [&](Clip& m, Device d) { return m.loss(img.to(d), tok.to(d), len.to(d)); }, 2e-4,
      2e-5);
}

TEST(BackendModels, FusionVqaTrainingStepsMatchCpu) {
  IRIS_REQUIRE_CUDA();
  for (const char* fusion : {"early", "late", "xattn"}) {
    SCOPED_TRACE(fusion);
    const FusionConfig c =
        testing::tiny_fusion(fusion, std::string(fusion) == "late" ? "vit" : "cnn",
                             std::string(fusion) == "xattn" ? "lstm" : "transformer");
    auto [cpu, gpu] = twins<FusionVqa>(c);
    const Tensor img = randn_seeded({2, 3, 8, 8}, 4, DType::f32);
    const Tensor q =
        Tensor::from_vector(std::vector<int64_t>{1, 4, 5, 9, 2, 3, 7, 7, 6, 5}, {2, 5});
    const Tensor len = Tensor::from_vector(std::vector<int64_t>{3, 5}, {2});
    const Tensor answers = Tensor::from_vector(std::vector<int64_t>{1, 3}, {2});
    expect_same_training_step(
        *cpu, *gpu,
        [&](FusionVqa& m, Device d) {
          return cross_entropy(m.forward(img.to(d), q.to(d), len.to(d)), answers.to(d));
        },
        2e-4, 2e-5);
  }
}

// The trainer on the device: a VQA batch shares its images through image_of, a retrieval
// batch carries its caption matches; both must reach the device's loss.
TEST(BackendModels, TrainerStepsOnTheDeviceForVqaAndRetrieval) {
  IRIS_REQUIRE_CUDA();
  const std::string dir = testing::make_temp_dir("iris_test_backend_trainer");
  SynthOptions s;
  s.n = 20;
  s.size = 32;
  write_synth(dir + "/data", s);
  TrainOptions o;
  o.device = "cuda";
  o.image_size = 32;
  o.batch = 4;
  o.steps = 2;
  o.model = "fusion-xattn";
  o.config = R"({"cnn_channels": [4, 8], "dim": 8, "heads": 2, "mlp_dim": 16, "text_depth": 1,
                 "fusion_depth": 1})";
  o.data = dir + "/data/vqa_train.jsonl";
  o.out = dir + "/vqa";
  const TrainResult vqa = train(o);
  EXPECT_EQ(vqa.steps, 2);
  EXPECT_TRUE(std::isfinite(vqa.final_loss));
  o.model = "clip";
  o.config = R"({"patch": 8, "vision_dim": 8, "vision_depth": 1, "vision_heads": 2,
                 "vision_mlp": 16, "text_dim": 8, "text_depth": 1, "text_heads": 2,
                 "text_mlp": 16, "embed_dim": 8})";
  o.data = dir + "/data/captions_train.jsonl";
  o.out = dir + "/clip";
  const TrainResult clip = train(o);
  EXPECT_EQ(clip.steps, 2);
  EXPECT_TRUE(std::isfinite(clip.final_loss));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace iris::models
