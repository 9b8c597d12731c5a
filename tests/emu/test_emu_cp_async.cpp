// cp.async: a double-buffered global -> shared pipeline whose result is exact,
// the 4/8-byte forms, and the emulation rule that data lands only at the wait.
#include <cmath>
#include <vector>

#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

void check_pipeline(int n, int blocks) {
  std::vector<float> in(n);
  for (int i = 0; i < n; ++i) in[i] = 0.5f * static_cast<float>(i % 97) - 3.0f;
  DeviceArray<float> din(in), dout(n);
  pipelined_copy(din.get(), dout.get(), n, blocks);
  const std::vector<float> out = dout.host();
  for (int i = 0; i < n; ++i) ASSERT_EQ(out[i], 2.0f * in[i] + 1.0f) << "n=" << n << " i=" << i;
}

TEST(EmuCpAsync, DoubleBufferedPipelineCopiesExactly) {
  check_pipeline(CopyTraits::kTileFloats * 5, 2);  // several tiles per block
  check_pipeline(1001, 3);                         // a ragged tail, zero-filled
  check_pipeline(3, 1);
}

TEST(EmuCpAsync, FourAndEightByteCopies) {
  const int threads = 96;
  std::vector<float> in(3 * threads);
  for (int i = 0; i < 3 * threads; ++i) in[i] = static_cast<float>(i) - 7.5f;
  DeviceArray<float> din(in), dout(3 * threads);
  small_async_copy(din.get(), dout.get(), threads);
  EXPECT_EQ(dout.host(), in);
}

TEST(EmuCpAsync, MissingWaitReadsPoisonWhenTheDetectorIsOff) {
  emu::Config c = emu::config();
  c.race_check = false;
  ScopedConfig scoped(c);
  std::vector<float> in(128, 1.0f);
  DeviceArray<float> din(in), dout(32);
  bug_missing_cp_async_wait(din.get(), dout.get());
  for (float v : dout.host()) EXPECT_TRUE(std::isnan(v)) << "the copy landed before any wait";
}

}  // namespace
}  // namespace iris::emu_test
