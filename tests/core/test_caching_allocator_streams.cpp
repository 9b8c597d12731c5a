// The caching allocator's stream rules over a fake device whose events complete when the
// test says so: per-stream reuse, record_stream's deferred frees, retired streams.
#include <cstdlib>
#include <map>
#include <set>

#include "core/caching_allocator.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

struct FakeStreams {
  std::map<void*, size_t> segments;
  std::set<int*> events;                // live events; *e != 0 once complete
  std::map<uint64_t, int> recorded_on;  // events recorded per stream
  CachingAllocator::Provider provider() {
    return {[this](size_t n) {
              void* p = std::malloc(n);
              segments[p] = n;
              return p;
            },
            [this](void* p) {
              segments.erase(p);
              std::free(p);
            }};
  }
  CachingAllocator::StreamEvents stream_events() {
    return {[this](uint64_t stream) -> void* {
              ++recorded_on[stream];
              int* e = new int(0);
              events.insert(e);
              return e;
            },
            [](void* e) { return *static_cast<int*>(e) != 0; },
            [](void* e) { *static_cast<int*>(e) = 1; },
            [this](void* e) {
              events.erase(static_cast<int*>(e));
              delete static_cast<int*>(e);
            }};
  }
  void complete_all() {
    for (int* e : events) *e = 1;
  }
};

TEST(CachingAllocatorStreams, RecordedStreamsDelayReuseUntilTheirEvents) {
  FakeStreams dev;
  CachingAllocator a(dev.provider(), "fake:0");
  a.set_stream_events(dev.stream_events());
  void* p = a.allocate(3000, /*stream=*/1);
  a.record_stream(p, 2);
  a.record_stream(p, 2);  // once per stream
  a.record_stream(p, 1);  // its own stream: nothing to record
  a.deallocate(p);
  EXPECT_EQ(dev.recorded_on[2], 1);
  EXPECT_EQ(dev.recorded_on.count(1), 0u);
  EXPECT_EQ(a.pending_frees(), 1u);
  EXPECT_EQ(a.stats().allocated, 3072);  // still held until stream 2 gets past it
  void* q = a.allocate(3000, 1);
  EXPECT_NE(q, p);
  dev.complete_all();
  void* r = a.allocate(3000, 1);  // the pending block is back and fits best
  EXPECT_EQ(r, p);
  EXPECT_EQ(a.pending_frees(), 0u);
  EXPECT_TRUE(dev.events.empty());
  a.deallocate(q);
  a.deallocate(r);
  EXPECT_EQ(a.stats().allocated, 0);
}

TEST(CachingAllocatorStreams, EmptyCacheWaitsForPendingFrees) {
  FakeStreams dev;
  CachingAllocator a(dev.provider(), "fake:0");
  a.set_stream_events(dev.stream_events());
  void* p = a.allocate(4 << 20, 1);
  a.record_stream(p, 3);
  a.deallocate(p);
  EXPECT_EQ(a.pending_frees(), 1u);
  a.empty_cache();  // synchronizes the event, then releases the whole segment
  EXPECT_EQ(a.pending_frees(), 0u);
  EXPECT_TRUE(dev.segments.empty());
  EXPECT_EQ(a.stats().reserved, 0);
}

TEST(CachingAllocatorStreams, RetiredStreamsServeTheDefaultStream) {
  FakeStreams dev;
  CachingAllocator a(dev.provider(), "fake:0");
  void* p = a.allocate(5 << 20, 7);
  a.deallocate(p);
  EXPECT_NE(a.allocate(5 << 20, 0), p);  // stream 7's block is not for stream 0
  a.retire_stream(7);
  void* q = a.allocate(5 << 20, 0);
  EXPECT_EQ(q, p);
  EXPECT_EQ(dev.segments.size(), 2u);
}

TEST(CachingAllocatorStreams, MisuseIsAnError) {
  FakeStreams dev;
  CachingAllocator a(dev.provider(), "fake:0");
  void* p = a.allocate(100, 1);
  EXPECT_IRIS_ERROR(a.record_stream(p, 2), "without stream events");
  int local = 0;
  a.set_stream_events(dev.stream_events());
  EXPECT_IRIS_ERROR(a.record_stream(&local, 2), "does not own");
  a.deallocate(p);
  EXPECT_IRIS_ERROR(a.record_stream(p, 2), "does not own");
}

}  // namespace
}  // namespace iris
