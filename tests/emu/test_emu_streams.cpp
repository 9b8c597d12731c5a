// The emulator's streams: a created stream's work runs only when the host waits for it, so
// each missing synchronisation below shows as stale data (what the real GPU may or may not
// show, depending on timing), and every documented ordering rule holds.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/emu/cuda_compat.h"
#include "tests/emu/emu_test_util.h"

namespace iris::emu_test {
namespace {

__global__ void add_kernel(float* x, int n, float v) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] += v;
}

__global__ void failing_kernel(int* out) {
  IRIS_DEVICE_CHECK(threadIdx.x != 3, "thread 3 fails");
  out[threadIdx.x] = 1;
}

constexpr int kN = 70;  // three blocks of 32, the last one partial

void add(float* x, float v, emu::Stream s) { IRIS_LAUNCH(add_kernel, 3, 32, 0, s, x, kN, v); }

// A pinned host buffer for one scope.
struct Pinned {
  explicit Pinned(size_t n) : p(static_cast<float*>(emu::host_alloc(n * sizeof(float)))) {}
  ~Pinned() { emu::host_free(p); }
  float* p;
};

TEST(EmuStreams, CreatedStreamsDeferUntilTheHostWaits) {
  DeviceArray<float> x(std::vector<float>(kN, 1.0f));
  emu::Stream s = emu::stream_create();
  add(x.get(), 2.0f, s);
  add(x.get(), 3.0f, s);
  EXPECT_EQ(emu::pending_operations(), 2u);
  std::vector<float> before(kN);
  std::memcpy(before.data(), x.get(), kN * sizeof(float));  // a host peek at device memory
  EXPECT_EQ(before[0], 1.0f);                               // nothing ran
  emu::stream_synchronize(s);
  EXPECT_EQ(emu::pending_operations(), 0u);
  EXPECT_EQ(x.host(), std::vector<float>(kN, 6.0f));
  emu::stream_destroy(s);
}

TEST(EmuStreams, LaunchesWithoutAStreamGoToTheCurrentOne) {
  DeviceArray<float> x(std::vector<float>(kN, 0.0f));
  emu::Stream s = emu::stream_create();
  emu::set_current_stream(s);
  add(x.get(), 1.0f, nullptr);
  emu::set_current_stream(nullptr);
  EXPECT_EQ(emu::pending_operations(), 1u);
  add(x.get(), 1.0f, nullptr);  // the legacy stream: runs s's work first, then its own
  EXPECT_EQ(emu::pending_operations(), 0u);
  EXPECT_EQ(x.host(), std::vector<float>(kN, 2.0f));
  emu::stream_destroy(s);
}

TEST(EmuStreams, PageableAndPinnedCopiesFollowCuda) {
  DeviceArray<float> x(kN);
  emu::Stream s = emu::stream_create();
  std::vector<float> pageable(kN, 5.0f);
  emu::memcpy_async(x.get(), pageable.data(), kN * sizeof(float), emu::CopyKind::HostToDevice, s);
  pageable.assign(kN, -1.0f);  // read at the call: the device still gets 5
  Pinned pinned(kN);
  std::fill(pinned.p, pinned.p + kN, 7.0f);
  DeviceArray<float> y(kN);
  emu::memcpy_async(y.get(), pinned.p, kN * sizeof(float), emu::CopyKind::HostToDevice, s);
  std::fill(pinned.p, pinned.p + kN, 8.0f);  // read when the copy runs: a race, shown
  add(x.get(), 1.0f, s);
  // Device-to-pinned stays queued: the host buffer is stale until the stream is waited for.
  Pinned back(kN);
  std::fill(back.p, back.p + kN, 0.0f);
  emu::memcpy_async(back.p, x.get(), kN * sizeof(float), emu::CopyKind::DeviceToHost, s);
  EXPECT_EQ(back.p[0], 0.0f);
  // Device-to-pageable returns with the copy done, so it runs the stream first.
  std::vector<float> host(kN, 0.0f);
  emu::memcpy_async(host.data(), x.get(), kN * sizeof(float), emu::CopyKind::DeviceToHost, s);
  EXPECT_EQ(host, std::vector<float>(kN, 6.0f));
  EXPECT_EQ(back.p[kN - 1], 6.0f);
  EXPECT_EQ(y.host(), std::vector<float>(kN, 8.0f));
  emu::stream_destroy(s);
}

TEST(EmuStreams, AnEventWaitRunsTheProducerUpToTheEvent) {
  DeviceArray<float> x(std::vector<float>(kN, 0.0f));
  emu::Stream a = emu::stream_create(), b = emu::stream_create();
  emu::Event e = emu::event_create();
  add(x.get(), 1.0f, a);
  emu::event_record(e, a);
  add(x.get(), 10.0f, a);  // after the event: b does not wait for it
  EXPECT_FALSE(emu::event_completed(e));
  emu::stream_wait_event(b, e);
  Pinned out(kN);
  emu::memcpy_async(out.p, x.get(), kN * sizeof(float), emu::CopyKind::DeviceToHost, b);
  emu::stream_synchronize(b);
  EXPECT_EQ(out.p[0], 1.0f);
  EXPECT_TRUE(emu::event_completed(e));
  EXPECT_EQ(emu::pending_operations(), 1u);  // a's second add
  emu::synchronize();
  EXPECT_EQ(x.host()[0], 11.0f);
  emu::event_destroy(e);
  emu::stream_destroy(a);
  emu::stream_destroy(b);
}

TEST(EmuStreams, WithoutTheWaitTheConsumerSeesOldData) {
  DeviceArray<float> x(std::vector<float>(kN, 0.0f));
  emu::Stream a = emu::stream_create(), b = emu::stream_create();
  add(x.get(), 1.0f, a);
  Pinned out(kN);
  emu::memcpy_async(out.p, x.get(), kN * sizeof(float), emu::CopyKind::DeviceToHost, b);
  emu::stream_synchronize(b);
  EXPECT_EQ(out.p[0], 0.0f);
  emu::stream_destroy(a);  // runs a's work
  EXPECT_EQ(x.host()[0], 1.0f);
  emu::stream_destroy(b);
}

TEST(EmuStreams, DeviceSynchronizeRunsNewestStreamFirst) {
  DeviceArray<float> x(kN);
  emu::Stream older = emu::stream_create(), newer = emu::stream_create();
  Pinned one(kN), two(kN);
  std::fill(one.p, one.p + kN, 1.0f);
  std::fill(two.p, two.p + kN, 2.0f);
  emu::memcpy_async(x.get(), one.p, kN * sizeof(float), emu::CopyKind::HostToDevice, older);
  emu::memcpy_async(x.get(), two.p, kN * sizeof(float), emu::CopyKind::HostToDevice, newer);
  emu::synchronize();
  EXPECT_EQ(x.host()[0], 1.0f);  // unordered writes: creation order does not win
  emu::stream_destroy(older);
  emu::stream_destroy(newer);
}

TEST(EmuStreams, PollingMakesProgressAndEventsTime) {
  DeviceArray<float> x(std::vector<float>(kN, 0.0f));
  emu::Stream s = emu::stream_create();
  emu::Event start = emu::event_create(), end = emu::event_create();
  emu::event_record(start, s);
  for (int i = 0; i < 5; ++i) add(x.get(), 1.0f, s);
  emu::event_record(end, s);
  EXPECT_EMU_ERROR(emu::event_elapsed_ms(start, end), "not completed");
  int polls = 1;
  while (!emu::event_query(end)) ++polls;
  EXPECT_EQ(polls, 7);  // one operation per poll: start, five launches, end
  EXPECT_TRUE(emu::stream_query(s));
  EXPECT_GE(emu::event_elapsed_ms(start, end), 0.0f);
  EXPECT_EQ(x.host()[0], 5.0f);
  emu::event_destroy(start);
  emu::event_destroy(end);
  emu::stream_destroy(s);
}

TEST(EmuStreams, AFailedOperationThrowsAtTheWaitAndDropsTheRest) {
  DeviceArray<int> out(std::vector<int>(32, 0));
  DeviceArray<float> x(std::vector<float>(kN, 0.0f));
  emu::Stream s = emu::stream_create();
  IRIS_LAUNCH(failing_kernel, 1, 32, 0, s, out.get());  // queued: no error yet
  add(x.get(), 1.0f, s);
  EXPECT_EMU_ERROR(emu::stream_synchronize(s), "failing_kernel", "thread 3 fails");
  EXPECT_EQ(emu::pending_operations(), 0u);
  EXPECT_EQ(x.host()[0], 0.0f);  // dropped
  add(x.get(), 1.0f, s);         // the stream stays usable
  emu::stream_synchronize(s);
  EXPECT_EQ(x.host()[0], 1.0f);
  emu::stream_destroy(s);
}

TEST(EmuStreams, MisuseIsAnError) {
  emu::Stream s = emu::stream_create();
  emu::stream_destroy(s);
  EXPECT_EMU_ERROR(emu::stream_synchronize(s), "not a live stream");
  EXPECT_EMU_ERROR(emu::set_current_stream(s), "not a live stream");
  emu::Event e = emu::event_create();
  EXPECT_EMU_ERROR(emu::event_elapsed_ms(e, e), "never recorded");
  emu::event_destroy(e);
  EXPECT_EMU_ERROR(emu::event_query(e), "not a live event");
  std::vector<float> host(4);
  EXPECT_EMU_ERROR(emu::host_free(host.data()), "not the start of a live pinned");
  emu::Stream live = emu::stream_create();
  EXPECT_EMU_ERROR(
      emu::memcpy_async(host.data(), host.data() + 1, 4, emu::CopyKind::DeviceToHost, live),
      "emu::memcpy", "host");
  emu::stream_destroy(live);
}

}  // namespace
}  // namespace iris::emu_test
