// Block-level emulation: shared-memory reductions across barriers, dynamic
// shared memory, barrier votes, thread/block indices, seeded block order and
// thread interleaving, and the emulated device memory API.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

std::vector<float> ramp(int n, float scale) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<float>((i * 37) % 101) * scale - 1.0f;
  return v;
}

TEST(EmuBlock, SharedMemoryTreeReductionMatchesReference) {
  for (int n : {1, 255, 1000, 5003}) {
    const std::vector<float> in = ramp(n, 0.125f);
    const int blocks = 3;
    DeviceArray<float> din(in), dsums(blocks);
    block_sum(din.get(), n, dsums.get(), blocks);
    const std::vector<float> sums = dsums.host();
    const int stride = blocks * BlockTraits::kReduceThreads;
    for (int b = 0; b < blocks; ++b) {
      double ref = 0;
      for (int t = 0; t < BlockTraits::kReduceThreads; ++t)
        for (int i = b * BlockTraits::kReduceThreads + t; i < n; i += stride) ref += in[i];
      EXPECT_NEAR(sums[b], ref, 1e-5 * (1 + std::fabs(ref))) << "n=" << n << " block " << b;
    }
  }
}

TEST(EmuBlock, DynamicSharedMemoryReversesEachBlock) {
  const int n = 150, threads = 64;  // the last block is partial
  std::vector<int> in(n);
  std::iota(in.begin(), in.end(), 1000);
  DeviceArray<int> din(in), dout(n);
  block_reverse(din.get(), dout.get(), n, threads);
  const std::vector<int> out = dout.host();
  for (int base = 0; base < n; base += threads) {
    const int count = std::min(threads, n - base);
    for (int t = 0; t < count; ++t) EXPECT_EQ(out[base + t], in[base + count - 1 - t]);
  }
}

TEST(EmuBlock, DynamicSharedMemoryCarvesTwoTypes) {
  const int n = 100, threads = 32;
  std::vector<float> f(n);
  std::vector<int> k(n);
  for (int i = 0; i < n; ++i) f[i] = 0.5f * i, k[i] = 3 * i;
  DeviceArray<float> df(f), dout(n);
  DeviceArray<int> dk(k);
  dout.fill_zero();
  dynamic_carve(df.get(), dk.get(), dout.get(), n, threads);
  const std::vector<float> out = dout.host();
  for (int i = 0; i < n; ++i) {
    const int base = i / threads * threads, j = base + (i - base + 1) % threads;
    const float expect = j < n ? f[j] * 2.0f + static_cast<float>(k[j]) : 0.0f;
    EXPECT_EQ(out[i], expect) << i;
  }
}

TEST(EmuBlock, BarrierCountAndOr) {
  const int blocks = 2, threads = 70;
  DeviceArray<int> dout(3 * blocks);
  barrier_votes(dout.get(), blocks, threads);
  const std::vector<int> out = dout.host();
  for (int b = 0; b < blocks; ++b) {
    EXPECT_EQ(out[3 * b + 0], 24);  // t % 3 == 0 for t in [0, 70)
    EXPECT_EQ(out[3 * b + 1], 1);
    EXPECT_EQ(out[3 * b + 2], 1);
  }
}

TEST(EmuBlock, EveryThreadOfA3DGridRunsOnceWithItsIndices) {
  const int gx = 3, gy = 2, gz = 2, bx = 5, by = 3, bz = 2;
  const int per_block = bx * by * bz, total = gx * gy * gz * per_block;
  DeviceArray<uint32_t> dout(total);
  thread_indices(dout.get(), gx, gy, gz, bx, by, bz);
  const std::vector<uint32_t> out = dout.host();
  for (int z = 0; z < gz; ++z)
    for (int y = 0; y < gy; ++y)
      for (int x = 0; x < gx; ++x)
        for (int tz = 0; tz < bz; ++tz)
          for (int ty = 0; ty < by; ++ty)
            for (int tx = 0; tx < bx; ++tx) {
              const int block = x + gx * (y + gy * z), thread = tx + bx * (ty + by * tz);
              const uint32_t expect = tx | ty << 4 | tz << 8 | x << 12 | y << 16 | z << 20;
              EXPECT_EQ(out[block * per_block + thread], expect);
            }
}

TEST(EmuBlock, SharedScalarIsSeenByEveryThread) {
  DeviceArray<int> dout(96);
  shared_scalar(dout.get(), 96, 42);
  for (int v : dout.host()) EXPECT_EQ(v, 42);
}

TEST(EmuBlock, BlockOrderFollowsTheSeed) {
  emu::Config c = emu::config();
  c.parallel_blocks = false;  // one worker: the start order is exactly the shuffled order
  const int blocks = 24;
  std::vector<std::vector<int>> orders;
  for (uint64_t seed : {1, 2, 1}) {
    c.seed = seed;
    ScopedConfig scoped(c);
    DeviceArray<int> order(blocks), counter(1);
    counter.fill_zero();
    block_order(order.get(), counter.get(), blocks);
    orders.push_back(order.host());
    std::vector<int> sorted = orders.back();
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < blocks; ++i) EXPECT_EQ(sorted[i], i);  // every block ran once
  }
  std::vector<int> identity(blocks);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(orders[0], identity);
  EXPECT_NE(orders[0], orders[1]);
  EXPECT_EQ(orders[0], orders[2]);  // reproducible
}

TEST(EmuBlock, ThreadsInterleaveInSeededOrder) {
  const int threads = 64;
  std::vector<std::vector<int>> arrivals;
  for (uint64_t seed : {5, 6}) {
    ScopedConfig scoped(with_seed(seed));
    DeviceArray<int> arrival(threads), counter(1);
    counter.fill_zero();
    thread_arrival(arrival.get(), counter.get(), threads);
    arrivals.push_back(arrival.host());
  }
  std::vector<int> identity(threads);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(arrivals[0], identity);  // not thread 0, 1, 2, ... in lockstep order
  EXPECT_NE(arrivals[0], arrivals[1]);
}

TEST(EmuBlock, LaunchRejectsBadConfigurations) {
  DeviceArray<int> dout(2048);
  EXPECT_EMU_ERROR(shared_scalar(dout.get(), 1025, 1), "shared_scalar_kernel", "invalid block");
  EXPECT_EMU_ERROR(shared_scalar(dout.get(), 0, 1), "shared_scalar_kernel", "invalid block");
}

TEST(EmuMemory, CopiesAreCheckedAgainstAllocations) {
  const size_t before = emu::device_bytes_in_use();
  auto* d = static_cast<float*>(emu::malloc(10 * sizeof(float)));
  EXPECT_TRUE(emu::is_device_pointer(d));
  EXPECT_TRUE(emu::is_device_pointer(d + 9));
  EXPECT_EQ(emu::device_bytes_in_use(), before + 10 * sizeof(float));
  float host[12] = {};
  // Fresh allocations hold poison (NaN), like uninitialised device memory should look.
  emu::memcpy(host, d, 10 * sizeof(float), emu::CopyKind::DeviceToHost);
  EXPECT_TRUE(std::isnan(host[0]));
  EXPECT_EMU_ERROR(emu::memcpy(d, host, 12 * sizeof(float), emu::CopyKind::HostToDevice),
                   "emu::memcpy", "past the end");
  EXPECT_EMU_ERROR(emu::memcpy(host, host + 1, 4, emu::CopyKind::DeviceToHost), "emu::memcpy",
                   "host");
  EXPECT_EMU_ERROR(emu::memset(host, 0, 4), "emu::memset");
  emu::memset(d, 0, 10 * sizeof(float));
  emu::memcpy(host, d, 10 * sizeof(float));
  EXPECT_EQ(host[3], 0.0f);
  emu::Stream s = emu::stream_create();
  host[0] = 7.0f;
  emu::memcpy_async(d, host, sizeof(float), emu::CopyKind::HostToDevice, s);
  emu::stream_synchronize(s);
  emu::stream_destroy(s);
  emu::synchronize();
  float back = 0;
  emu::memcpy(&back, d, sizeof(float));
  EXPECT_EQ(back, 7.0f);
  emu::free(d);
  EXPECT_EQ(emu::device_bytes_in_use(), before);
  EXPECT_EMU_ERROR(emu::free(d), "emu::free");
  EXPECT_EQ(emu::malloc(0), nullptr);
}

}  // namespace
}  // namespace iris::emu_test
