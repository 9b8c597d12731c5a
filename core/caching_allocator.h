#pragma once
// A caching allocator for device memory: segments obtained from a provider
// (cudaMalloc on a GPU, the emulator's heap under emulation) are split into
// blocks, freed blocks go back to size-ordered free lists per stream and merge
// with free neighbours, so steady-state training allocates nothing from the
// driver. Small requests (<= 1 MiB) share 2 MiB segments; large ones get
// segments of their own rounded to 2 MiB. Thread-safe.
// Streams: a segment serves the stream it was made for, so a freed block is reused only by
// work queued after its last use on that stream. A block also used on other streams
// (record_stream) waits, after its free, for events on those streams before it is reused.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"

namespace iris {

struct CachingAllocatorTraits {
  static constexpr size_t kMinBlock = 512;                // every size is a multiple of this
  static constexpr size_t kSmallLimit = size_t(1) << 20;  // <= 1 MiB: the small pool
  static constexpr size_t kSmallSegment = size_t(2) << 20;
  static constexpr size_t kLargeRound = size_t(2) << 20;  // large segments: multiples of 2 MiB
  static_assert(kSmallSegment % kMinBlock == 0 && kLargeRound % kMinBlock == 0);
  static_assert(kSmallLimit <= kSmallSegment);
};

class CachingAllocator {
 public:
  struct Provider {
    std::function<void*(size_t)> alloc;  // nullptr when out of memory
    std::function<void(void*)> free;
  };
  // How the allocator learns that a stream got past a point (unset: no cross-stream use).
  struct StreamEvents {
    std::function<void*(uint64_t stream)> record;  // nullptr: nothing to wait for
    std::function<bool(void*)> completed;
    std::function<void(void*)> synchronize;
    std::function<void(void*)> release;
  };
  explicit CachingAllocator(Provider provider, std::string device_name);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Blocks freed on one stream are reused only by allocations on the same stream
  // (a block may still be in use by that stream's queued kernels).
  void* allocate(size_t nbytes, uint64_t stream = 0);
  void deallocate(void* p);
  // Marks the live block at p as used by work queued on `stream` (see the top).
  void record_stream(void* p, uint64_t stream);
  void set_stream_events(StreamEvents events);
  // The stream is gone and its work has run: its segments serve stream 0 from now on.
  void retire_stream(uint64_t stream);
  // Returns every wholly free segment to the provider.
  void empty_cache();
  MemoryStats stats() const;
  void reset_peak();
  size_t segment_count() const;
  // Freed blocks still waiting for other streams' events.
  size_t pending_frees() const;

 private:
  struct Block {
    char* ptr;
    size_t size;
    uint64_t stream;
    bool small;
    bool allocated = false;
    std::vector<uint64_t> used_on = {};  // other streams (record_stream)
    Block* prev = nullptr;               // neighbours within the segment
    Block* next = nullptr;
  };
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using FreeList = std::set<Block*, BlockOrder>;

  static size_t round_size(size_t n);
  Block* find_free(FreeList& pool, size_t size, uint64_t stream);
  Block* new_segment(size_t size, uint64_t stream, bool small);
  void release_free_segments();
  void free_block(Block* b);
  // Frees the pending blocks whose events completed (all of them, waiting, if `wait`).
  void process_pending(bool wait);

  struct PendingFree {
    Block* block;
    std::vector<void*> events;
  };

  Provider provider_;
  std::string device_name_;
  mutable std::mutex mu_;
  FreeList small_free_, large_free_;
  std::unordered_map<char*, Block*> live_;  // allocated blocks by pointer
  std::set<Block*> segments_;               // first block of each segment
  StreamEvents events_;
  std::vector<PendingFree> pending_;
  MemoryStats stats_;
};

}  // namespace iris
