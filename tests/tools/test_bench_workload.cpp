// `iris bench workload` with tiny configurations and one step: the result fields, the
// memory figures, and the errors for what the command refuses.
#include "nn/json_lite.h"
#include "tests/support/testing.h"
#include "tools/bench_workload.h"

namespace iris::tools {
namespace {

WorkloadOptions tiny(const std::string& name, const std::string& config) {
  WorkloadOptions o;
  o.workload = name;
  o.steps = 1;
  o.batch = 2;
  o.config = config;
  return o;
}

TEST(BenchWorkload, CaptionerTrainStepsReportTimeAndMemory) {
  const WorkloadResult vit = run_workload(
      tiny("vit-cap",
           R"({"dim": 16, "encoder_depth": 1, "decoder_depth": 1, "heads": 2, "mlp_dim": 32})"));
  EXPECT_EQ(vit.what, "train step");
  EXPECT_EQ(vit.batch, 2);
  EXPECT_EQ(vit.timed_steps, 1);
  EXPECT_GT(vit.ms, 0);
  EXPECT_GT(vit.peak_allocated_mb, 0);
  EXPECT_GE(vit.peak_rss_mb, vit.peak_allocated_mb);

  const WorkloadResult cnn =
      run_workload(tiny("cnn-rnn", R"({"emb": 16, "hidden": 16, "channels": [4, 8, 8, 8]})"));
  EXPECT_EQ(cnn.what, "train step");
  EXPECT_GT(cnn.ms, 0);
  EXPECT_GT(cnn.peak_allocated_mb, 0);
}

TEST(BenchWorkload, VitB16IsAnEvalForwardWithTorchRefsStepCount) {
  WorkloadOptions o =
      tiny("vit-b16",
           R"({"image_size": 32, "patch": 16, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32})");
  o.steps = 5;
  const WorkloadResult r = run_workload(o);
  EXPECT_EQ(r.what, "forward");
  EXPECT_EQ(r.timed_steps, 2);  // max(2, steps // 2), as torch_ref.py
  EXPECT_GT(r.ms, 0);

  const json::Value v = json::parse(workload_json(r), "workload line");
  for (const char* key : {"workload", "what", "batch", "ms", "peak_mem_mb", "peak_mem_source",
                          "alloc_peak_mb", "threads", "device", "steps"})
    EXPECT_NE(v.find(key), nullptr) << key;
  EXPECT_EQ(v.find("workload")->str, "vit-b16");
  EXPECT_NEAR(v.find("peak_mem_mb")->num, r.peak_rss_mb, 0.051);
}

TEST(BenchWorkload, RefusesWhatItCannotRun) {
  WorkloadOptions o = tiny("vit-cap", "{}");
  o.precision = "bf16";
  EXPECT_IRIS_ERROR(run_workload(o), "the CPU runs fp32 (mixed precision is CUDA-only)");
  EXPECT_IRIS_ERROR(run_workload(tiny("resnet", "{}")), "unknown workload 'resnet'");
  o = tiny("cnn-rnn", "{}");
  o.steps = 0;
  EXPECT_IRIS_ERROR(run_workload(o), "--steps must be >= 1");
}

}  // namespace
}  // namespace iris::tools
