// `iris profile` on the CPU with the tiny shapes: the case list, the timing method, the
// comparison with PyTorch (bench/torch_profile.py on the same inputs), and the output formats.
#include <cmath>
#include <set>

#include "nn/json_lite.h"
#include "tests/support/testing.h"
#include "tools/profile.h"
#include "tools/profile_limits.h"

namespace iris::tools {
namespace {

ProfileOptions tiny_options(const std::string& python) {
  ProfileOptions opt;
  opt.size = CaseSize::tiny;
  opt.timing = {0, 2, 2, 0.0};
  opt.torch.python = python;
  opt.torch.script = testing::source_dir() + "/bench/torch_profile.py";
  opt.torch.threads = 1;
  opt.torch.quick = true;
  return opt;
}

ProfileRow make_row(const std::string& op, const std::string& shape, double iris_ms,
                    const std::string& baseline, double baseline_ms, bool compute_bound,
                    double rate, double pct_peak, double max_err) {
  ProfileRow r;
  r.op = op;
  r.shape = shape;
  r.dtype = "f32";
  r.device = "cpu";
  r.iris_ms = iris_ms;
  r.baseline = baseline;
  r.baseline_ms = baseline_ms;
  r.ratio = baseline_ms > 0 ? iris_ms / baseline_ms : -1;
  r.compute_bound = compute_bound;
  r.rate = rate;
  r.pct_peak = pct_peak;
  r.max_err = max_err;
  return r;
}

TEST(ProfileCases, EveryFamilyHasCasesWithAWorkCountAndASpec) {
  std::set<std::string> families_seen;
  for (const std::string& family : profile_op_families()) {
    const auto cases = profile_cases({family}, CaseSize::tiny);
    ASSERT_FALSE(cases.empty()) << family;
    for (const ProfileCase& c : cases) {
      EXPECT_EQ(c.op.rfind(family == "conv" ? "conv2d" : family, 0), 0u) << c.op;
      EXPECT_TRUE(c.flops > 0 || c.bytes > 0) << c.op << " " << c.shape;
      const json::Value spec = json::parse(c.spec, c.op);
      ASSERT_NE(spec.find("op"), nullptr);
      EXPECT_EQ(spec.find("op")->str, c.op);
      families_seen.insert(family);
    }
  }
  EXPECT_EQ(families_seen.size(), 6u);
  // The full list holds every shape of issue 6.
  const auto full = profile_cases({"attention"}, CaseSize::full);
  int cross = 0;
  for (const ProfileCase& c : full) cross += c.shape.find("cross") != std::string::npos;
  EXPECT_EQ(cross, 2 * 9);  // Lq {16, 32, 77} x Lk {64, 197, 577}, forward and backward
}

TEST(ProfileCases, UnknownFamilyIsAnError) {
  EXPECT_IRIS_ERROR(profile_cases({"conv", "matmul"}, CaseSize::tiny),
                    "unknown op family 'matmul'");
}

TEST(ProfileTiming, WarmupThenMedianOfTheRuns) {
  int calls = 0;
  const double ms = time_median_ms([&] { ++calls; }, Device::cpu(), {2, 5, 5, 0.0});
  EXPECT_EQ(calls, 7);
  EXPECT_GE(ms, 0.0);
  EXPECT_EQ(max_abs_diff({1, 2, 3}, {1, 2.5f, 2}), 1.0);
  EXPECT_EQ(max_abs_diff({1, 2}, {1, std::nanf("")}), INFINITY);
  EXPECT_EQ(max_abs_diff({1, 2}, {1}), INFINITY);
}

TEST(ProfileLimits, MeasuredPeakAndBandwidthArePositive) {
  EXPECT_GT(limits::measure_fma_peak_gflops(1, 1 << 16), 0.5);
  EXPECT_GT(limits::measure_memory_bandwidth_gbs(8 << 20, 1), 0.1);
}

TEST(Profile, CpuRowsWithoutBaselineSayWhy) {
  ProfileOptions opt = tiny_options("none");
  opt.ops = {"layer_norm", "gemm"};
  const ProfileReport r = run_profile(opt);
  EXPECT_GT(r.limits.peak_gflops, 0);
  EXPECT_GT(r.limits.bandwidth_gbs, 0);
  ASSERT_EQ(r.rows.size(), 3u);  // layer_norm fwd, bwd; gemm
  for (const ProfileRow& row : r.rows) {
    EXPECT_GT(row.iris_ms, 0) << row.op;
    EXPECT_EQ(row.baseline, "n/a (no --torch)");
    EXPECT_LT(row.baseline_ms, 0);
    EXPECT_GT(row.rate, 0) << row.op;
    EXPECT_GT(row.pct_peak, 0) << row.op;
  }
  EXPECT_TRUE(r.rows[0].op == "layer_norm_fwd" && !r.rows[0].compute_bound);
  EXPECT_TRUE(r.rows[2].op == "gemm" && r.rows[2].compute_bound);
}

TEST(Profile, EveryTinyCaseMatchesPyTorch) {
  if (testing::torch_python().empty()) GTEST_SKIP() << "no python with torch configured";
  const ProfileReport r = run_profile(tiny_options(testing::torch_python()));
  ASSERT_EQ(r.rows.size(), profile_cases({}, CaseSize::tiny).size());
  for (const ProfileRow& row : r.rows) {
    SCOPED_TRACE(row.op + " " + row.shape + " " + row.note);
    EXPECT_GT(row.iris_ms, 0);
    EXPECT_EQ(row.baseline.rfind("torch ", 0), 0u);
    EXPECT_GT(row.baseline_ms, 0);
    EXPECT_NEAR(row.ratio, row.iris_ms / row.baseline_ms, 1e-9);
    ASSERT_GE(row.max_err, 0);
    EXPECT_LT(row.max_err, 2e-5);  // fp32 on O(1) values, outputs of at most a few hundred terms
  }
}

TEST(Profile, MissingTorchIsReportedPerRow) {
  ProfileOptions opt = tiny_options("/nonexistent/python3");
  opt.ops = {"softmax"};
  const ProfileReport r = run_profile(opt);
  for (const ProfileRow& row : r.rows) {
    EXPECT_GT(row.iris_ms, 0);
    EXPECT_LT(row.baseline_ms, 0);
    EXPECT_NE(row.note.find("gave no result"), std::string::npos) << row.note;
  }
}

TEST(Profile, CudaWithoutAGpuSaysNoGpu) {
  ProfileOptions opt = tiny_options("none");
  opt.device = "cuda";
  opt.ops = {"gemm"};
  const ProfileReport r = run_profile(opt);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].baseline, "no GPU");
  EXPECT_LT(r.rows[0].iris_ms, 0);
  EXPECT_NE(format_profile_table(r).find("no GPU"), std::string::npos);
}

TEST(ProfileOutput, JsonHasExactlyTheFieldsOfTheIssue) {
  ProfileRow row =
      make_row("attention_fwd", "B1 H2", 1.5, "torch 1.13.1 cpu", 3.0, true, 0.25, 12.5, 3e-7);
  const json::Value v = json::parse(profile_row_json(row), "row");
  std::vector<std::string> keys;
  for (const auto& [k, _] : v.obj) keys.push_back(k);
  EXPECT_EQ(keys,
            (std::vector<std::string>{"op", "shape", "dtype", "device", "iris_ms", "baseline",
                                      "baseline_ms", "ratio", "tflops", "pct_peak", "max_err"}));
  EXPECT_DOUBLE_EQ(v.find("ratio")->num, 0.5);
  row.compute_bound = false;
  row.baseline_ms = -1;
  const json::Value m = json::parse(profile_row_json(row), "row");
  EXPECT_NE(m.find("gbps"), nullptr);
  EXPECT_EQ(m.find("baseline_ms")->kind, json::Value::Kind::null);
}

TEST(ProfileOutput, TableAndMarkdownListEveryRow) {
  ProfileReport r;
  r.device_description = "cpu";
  r.limits = {100, 10, "measured"};
  r.rows.push_back(
      make_row("gemm", "8 x 24 x 16", 0.01, "torch 1.13.1 cpu", 0.02, true, 0.1, 100, 1e-6));
  r.rows.push_back(
      make_row("softmax_fwd", "4 x 40", 0.002, "n/a (no --torch)", -1, false, 2.0, 20, -1));
  const std::string table = format_profile_table(r), md = format_profile_markdown(r);
  for (const std::string& s : {table, md}) {
    EXPECT_NE(s.find("gemm"), std::string::npos);
    EXPECT_NE(s.find("softmax_fwd"), std::string::npos);
    EXPECT_NE(s.find("0.50"), std::string::npos);
    EXPECT_NE(s.find("2.0 GB/s"), std::string::npos);
  }
  EXPECT_NE(md.find("|---|"), std::string::npos);
}

}  // namespace
}  // namespace iris::tools
