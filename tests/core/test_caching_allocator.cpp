// The device caching allocator over a fake provider that counts what it hands out.
#include <cstdlib>
#include <set>

#include "core/caching_allocator.h"
#include "tests/support/testing.h"

namespace iris {
namespace {

struct FakeDevice {
  size_t capacity = size_t(64) << 20;
  size_t used = 0;
  int allocs = 0, frees = 0;
  std::map<void*, size_t> live;
  CachingAllocator::Provider provider() {
    return {[this](size_t n) -> void* {
              if (used + n > capacity) return nullptr;
              void* p = std::malloc(n);
              used += n, ++allocs, live[p] = n;
              return p;
            },
            [this](void* p) {
              used -= live.at(p), ++frees, live.erase(p);
              std::free(p);
            }};
  }
};

TEST(CachingAllocator, ReusesFreedBlocksWithoutTheDriver) {
  FakeDevice dev;
  CachingAllocator a(dev.provider(), "fake:0");
  void* p = a.allocate(1000);
  void* q = a.allocate(3000);
  EXPECT_EQ(dev.allocs, 1);  // both from one 2 MiB small segment
  EXPECT_EQ(static_cast<char*>(q) - static_cast<char*>(p), 1024);
  a.deallocate(p);
  void* r = a.allocate(900);  // best fit: the freed 1024-byte block
  EXPECT_EQ(r, p);
  EXPECT_EQ(dev.allocs, 1);
  EXPECT_EQ(a.stats().allocated, 1024 + 3072);
  EXPECT_EQ(a.stats().reserved, 2 << 20);
  a.deallocate(q);
  a.deallocate(r);
  EXPECT_EQ(a.stats().allocated, 0);
  EXPECT_EQ(a.stats().peak_allocated, 1024 + 3072);
  a.empty_cache();  // the segment merged back to one free block and is released
  EXPECT_EQ(dev.frees, 1);
  EXPECT_EQ(a.stats().reserved, 0);
  EXPECT_EQ(a.segment_count(), 0u);
}

TEST(CachingAllocator, LargeBlocksSplitAndMerge) {
  FakeDevice dev;
  CachingAllocator a(dev.provider(), "fake:0");
  void* big = a.allocate(10 << 20);  // its own 10 MiB segment
  a.deallocate(big);
  void* x = a.allocate(3 << 20);  // split: 3 MiB used, 7 MiB free tail
  void* y = a.allocate(5 << 20);  // from the tail
  EXPECT_EQ(dev.allocs, 1);
  EXPECT_EQ(static_cast<char*>(y) - static_cast<char*>(x), 3 << 20);
  a.deallocate(x);
  a.deallocate(y);
  void* z = a.allocate(10 << 20);  // neighbours merged back into the whole segment
  EXPECT_EQ(z, big);
  EXPECT_EQ(dev.allocs, 1);
  a.deallocate(z);
}

TEST(CachingAllocator, StreamsDoNotShareFreedBlocks) {
  FakeDevice dev;
  CachingAllocator a(dev.provider(), "fake:0");
  void* p = a.allocate(4 << 20, /*stream=*/1);
  a.deallocate(p);
  void* q = a.allocate(4 << 20, /*stream=*/2);
  EXPECT_NE(p, q);
  EXPECT_EQ(dev.allocs, 2);
  void* r = a.allocate(4 << 20, /*stream=*/1);
  EXPECT_EQ(r, p);
  a.deallocate(q);
  a.deallocate(r);
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheThenReportsClearly) {
  FakeDevice dev;
  dev.capacity = 24 << 20;
  CachingAllocator a(dev.provider(), "fake:0");
  void* p = a.allocate(16 << 20);
  a.deallocate(p);  // cached, not returned
  void* q = a.allocate(20 << 20, /*stream=*/3);  // needs the cache emptied first
  EXPECT_NE(q, nullptr);
  EXPECT_EQ(dev.frees, 1);
  EXPECT_IRIS_ERROR(a.allocate(8 << 20), "fake:0: out of memory allocating 8388608 bytes");
  EXPECT_IRIS_ERROR(a.deallocate(reinterpret_cast<void*>(0x1234)), "does not own");
  a.deallocate(q);
}

TEST(CachingAllocator, ManyRandomAllocationsKeepTheBooksStraight) {
  FakeDevice dev;
  dev.capacity = size_t(1) << 30;
  CachingAllocator a(dev.provider(), "fake:0");
  std::vector<std::pair<void*, size_t>> live;
  uint64_t s = 42;
  for (int i = 0; i < 5000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    if (!live.empty() && (s >> 60) < 9) {
      const size_t k = (s >> 20) % live.size();
      a.deallocate(live[k].first);
      live.erase(live.begin() + static_cast<int64_t>(k));
    } else {
      const size_t n = 1 + (s >> 33) % (3 << 20);
      void* p = a.allocate(n);
      for (auto& [q, m] : live)  // no overlap with any live block
        ASSERT_TRUE(static_cast<char*>(p) + n <= q || static_cast<char*>(q) + m <= p);
      live.push_back({p, n});
    }
  }
  for (auto& [p, n] : live) a.deallocate(p);
  EXPECT_EQ(a.stats().allocated, 0);
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0);
  EXPECT_EQ(dev.used, 0u);
}

}  // namespace
}  // namespace iris
