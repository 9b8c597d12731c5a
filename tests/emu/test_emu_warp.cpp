// Warp collectives: every shuffle mode and width against the CUDA
// programming guide's rules (written out here independently of the
// emulator's PTX formulas), 64-bit and struct payloads, shuffles in divergent
// code, votes, __activemask, matches, reductions and __syncwarp ordering.
#include <numeric>
#include <vector>

#include "tests/emu/emu_test_util.h"
#include "tests/emu/kernels/emu_test_kernels.h"

namespace iris::emu_test {
namespace {

constexpr int kThreads = 64;

int value_of(int thread) { return thread * 10 + 7; }

// The CUDA C++ Programming Guide, "Warp Shuffle Functions".
int expected_shuffle(ShuffleMode mode, int thread, int arg, int width) {
  const int lane = thread % 32, warp_base = thread - lane;
  const int seg_base = lane / width * width, seg_lane = lane % width;
  int src = lane;
  switch (mode) {
    case ShuffleMode::Idx:
      src = seg_base + (lane * 7 + arg) % width;
      break;
    case ShuffleMode::Up:
      src = seg_lane >= arg ? lane - arg : lane;
      break;
    case ShuffleMode::Down:
      src = seg_lane + arg < width ? lane + arg : lane;
      break;
    case ShuffleMode::Xor: {
      const int x = lane ^ arg;  // later groups are out of reach, earlier ones are not
      src = x >= seg_base + width ? lane : x;
      break;
    }
  }
  return value_of(warp_base + src);
}

void check_shuffle(ShuffleMode mode, int arg, int width) {
  DeviceArray<int> dout(kThreads);
  shuffle_probe(dout.get(), kThreads, mode, arg, width);
  const std::vector<int> out = dout.host();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(out[t], expected_shuffle(mode, t, arg, width))
        << "mode " << static_cast<int>(mode) << " arg " << arg << " width " << width << " thread "
        << t;
  }
}

TEST(EmuWarp, ShuffleIdxWrapsTheSourceLaneIntoItsSegment) {
  for (int width : {1, 2, 8, 16, 32})
    for (int arg : {0, 3, 13}) check_shuffle(ShuffleMode::Idx, arg, width);
}

TEST(EmuWarp, ShuffleUpKeepsOwnValueBelowTheSegmentStart) {
  for (int width : {8, 16, 32})
    for (int delta : {0, 1, 3, 8, 16}) check_shuffle(ShuffleMode::Up, delta, width);
}

TEST(EmuWarp, ShuffleDownKeepsOwnValuePastTheSegmentEnd) {
  for (int width : {8, 16, 32})
    for (int delta : {0, 1, 5, 8, 16}) check_shuffle(ShuffleMode::Down, delta, width);
}

TEST(EmuWarp, ShuffleXorReachesEarlierSegmentsOnly) {
  for (int width : {8, 16, 32})
    for (int mask : {1, 5, 8, 16, 31}) check_shuffle(ShuffleMode::Xor, mask, width);
}

TEST(EmuWarp, SixtyFourBitButterflySums) {
  std::vector<double> d(kThreads);
  std::vector<long long> ll(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    d[t] = 0.25 * t - 3.0;                        // exact in any order
    ll[t] = (1LL << 40) * (t % 7) + 12345LL * t;  // needs the upper 32 bits
  }
  DeviceArray<double> din(d), dout(kThreads / 32);
  DeviceArray<long long> lin(ll), lout(kThreads / 32);
  shuffle_wide(din.get(), lin.get(), dout.get(), lout.get(), kThreads);
  const std::vector<double> od = dout.host();
  const std::vector<long long> ol = lout.host();
  for (int w = 0; w < kThreads / 32; ++w) {
    EXPECT_EQ(od[w], std::accumulate(d.begin() + 32 * w, d.begin() + 32 * w + 32, 0.0));
    EXPECT_EQ(ol[w], std::accumulate(ll.begin() + 32 * w, ll.begin() + 32 * w + 32, 0LL));
  }
}

TEST(EmuWarp, StructPayloadShufflesWhole) {
  std::vector<ShufflePayload> in(kThreads);
  for (int t = 0; t < kThreads; ++t) in[t] = {0.5f * t, -t, 1e10 + t};
  DeviceArray<ShufflePayload> din(in), dout(kThreads);
  shuffle_struct(din.get(), dout.get(), kThreads);
  const std::vector<ShufflePayload> out = dout.host();
  for (int t = 0; t < kThreads; ++t) {
    const ShufflePayload& src = in[t / 32 * 32 + (t % 32 + 5) % 32];
    EXPECT_EQ(out[t].a, src.a);
    EXPECT_EQ(out[t].b, src.b);
    EXPECT_EQ(out[t].c, src.c);
  }
}

TEST(EmuWarp, ShufflesInsideDivergentCodeAndPartialMasks) {
  const int n = 200;  // of 256 threads: the last warps read zeros
  std::vector<float> in(n);
  for (int i = 0; i < n; ++i) in[i] = static_cast<float>(i % 13) - 4.0f;
  DeviceArray<float> din(in), total(1), halves(8);
  warp_block_sum(din.get(), n, total.get(), halves.get());
  EXPECT_EQ(total.host()[0], std::accumulate(in.begin(), in.end(), 0.0f));
  const std::vector<float> h = halves.host();
  for (int w = 0; w < 8; ++w) {
    float ref = 0;
    for (int l = 0; l < 16; ++l) ref += 32 * w + l < n ? in[32 * w + l] : 0.0f;
    EXPECT_EQ(h[w], ref) << "warp " << w;
  }
}

void check_votes(int threads) {
  const int warps = (threads + 31) / 32;
  DeviceArray<unsigned> dout(8 * warps);
  warp_votes(dout.get(), threads);
  const std::vector<unsigned> out = dout.host();
  for (int w = 0; w < warps; ++w) {
    const int lanes = std::min(32, threads - 32 * w);
    const unsigned active = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
    unsigned ballot = 0, sum = 0, mx = 0, match = 0;
    for (int l = 0; l < lanes; ++l) {
      if (l % 3 == 0) ballot |= 1u << l;
      if (l % 4 == 6 % 4) match |= 1u << l;
      sum += l;
      mx = std::max(mx, static_cast<unsigned>(l * 3 % 7));
    }
    const unsigned* o = &out[8 * w];
    EXPECT_EQ(o[0], ballot) << "warp " << w;
    EXPECT_EQ(o[1], 1u);
    EXPECT_EQ(o[2], lanes > 17 ? 1u : 0u);
    EXPECT_EQ(o[3], active);
    EXPECT_EQ(o[4], std::min(lanes, 20) == 32 ? 0xffffffffu : (1u << std::min(lanes, 20)) - 1u);
    EXPECT_EQ(o[5], match);
    EXPECT_EQ(o[6], sum);
    EXPECT_EQ(o[7], mx);
  }
}

TEST(EmuWarp, VotesMatchesReductionsAndActiveMask) { check_votes(64); }

TEST(EmuWarp, ActiveMaskOfAPartialWarpNamesItsLanes) { check_votes(48); }

TEST(EmuWarp, SyncwarpOrdersWarpSynchronousSharedMemory) {
  std::vector<int> in(64);
  std::iota(in.begin(), in.end(), -20);
  DeviceArray<int> din(in), dout(1);
  for (uint64_t seed : {1, 2, 3}) {
    ScopedConfig scoped(with_seed(seed));
    warp_sync_reduce(din.get(), dout.get());  // the race detector must stay quiet
    EXPECT_EQ(dout.host()[0], std::accumulate(in.begin(), in.end(), 0));
  }
}

}  // namespace
}  // namespace iris::emu_test
