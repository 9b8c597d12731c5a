// The profile harness on the CUDA device with the tiny shapes: on the emulator (test_*_emu)
// iris's CUDA kernels are timed and checked against its CPU kernels, and vendor baselines say
// n/a; on a real GPU the cuDNN / cuBLASLt baselines run and are compared too.
#include "tests/support/testing.h"
#include "tools/profile.h"

namespace iris::tools {
namespace {

TEST(ProfileHarnessCuda, TinyCasesMatchTheCpuKernels) {
  IRIS_REQUIRE_CUDA();
  ProfileOptions opt;
  opt.device = "cuda";
  opt.size = CaseSize::tiny;
  opt.timing = {0, 1, 1, 0.0};
  opt.check_against_cpu = true;
  opt.torch.python = "none";
  const ProfileReport r = run_profile(opt);
  ASSERT_EQ(r.rows.size(), profile_cases({}, CaseSize::tiny).size());
  int checked = 0;
  for (const ProfileRow& row : r.rows) {
    SCOPED_TRACE(row.op + " " + row.shape + ": " + row.note);
    EXPECT_EQ(row.device, "cuda");
    if (row.iris_ms < 0) {
      // Only an op without a CUDA kernel may fail, and the row says so.
      EXPECT_NE(row.note.find("no kernel for device"), std::string::npos);
      continue;
    }
    ++checked;
    ASSERT_GE(row.cpu_err, 0);
    EXPECT_LT(row.cpu_err, 2e-5);
    EXPECT_GT(row.rate, 0);
    if (row.baseline_ms > 0) {  // a real GPU: cuDNN / cuBLASLt
      EXPECT_GE(row.max_err, 0);
      EXPECT_LT(row.max_err, 1e-4);
    } else if (!is_real_gpu_tensor(Tensor::empty({1}, DType::f32, testing::kCuda))) {
      EXPECT_EQ(row.baseline, "n/a (emulated device)");
    }
  }
  // attention (2 shapes x 2), layer norm (2), softmax (2), cross-entropy (2), GEMM (1).
  EXPECT_GE(checked, 11);
}

}  // namespace
}  // namespace iris::tools
