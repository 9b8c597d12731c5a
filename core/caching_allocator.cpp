#include "core/caching_allocator.h"

#include <algorithm>
#include <tuple>

#include "core/error.h"

namespace iris {

using T = CachingAllocatorTraits;

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  return std::tie(a->stream, a->size, a->ptr) < std::tie(b->stream, b->size, b->ptr);
}

CachingAllocator::CachingAllocator(Provider provider, std::string device_name)
    : provider_(std::move(provider)), device_name_(std::move(device_name)) {}

CachingAllocator::~CachingAllocator() {
  for (PendingFree& pf : pending_)
    for (void* e : pf.events) events_.release(e);
  // Live blocks at destruction belong to tensors that outlive the backend (process exit):
  // their segments are released with the rest.
  for (Block* seg : segments_) {
    provider_.free(seg->ptr);
    for (Block* b = seg; b;) {
      Block* n = b->next;
      delete b;
      b = n;
    }
  }
}

size_t CachingAllocator::round_size(size_t n) {
  if (n == 0) n = 1;
  return (n + T::kMinBlock - 1) / T::kMinBlock * T::kMinBlock;
}

CachingAllocator::Block* CachingAllocator::find_free(FreeList& pool, size_t size, uint64_t stream) {
  Block key{nullptr, size, stream, false};
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

CachingAllocator::Block* CachingAllocator::new_segment(size_t size, uint64_t stream, bool small) {
  const size_t seg =
      small ? T::kSmallSegment : (size + T::kLargeRound - 1) / T::kLargeRound * T::kLargeRound;
  void* p = provider_.alloc(seg);
  if (!p) {  // give back what the cache holds, then try once more
    process_pending(/*wait=*/true);
    release_free_segments();
    p = provider_.alloc(seg);
  }
  IRIS_CHECK(p, device_name_, ": out of memory allocating ", size, " bytes (a segment of ", seg,
             "); ", stats_.allocated, " bytes allocated, ", stats_.reserved, " reserved");
  stats_.reserved += static_cast<int64_t>(seg);
  Block* b = new Block{static_cast<char*>(p), seg, stream, small};
  segments_.insert(b);
  return b;
}

void* CachingAllocator::allocate(size_t nbytes, uint64_t stream) {
  const size_t size = round_size(nbytes);
  const bool small = size <= T::kSmallLimit;
  std::lock_guard<std::mutex> lk(mu_);
  if (!pending_.empty()) process_pending(/*wait=*/false);
  FreeList& pool = small ? small_free_ : large_free_;
  Block* b = find_free(pool, size, stream);
  if (!b) b = new_segment(size, stream, small);
  // Split off the tail when the rest is worth keeping (large: more than 1 MiB spare).
  const size_t rest = b->size - size;
  if (small ? rest >= T::kMinBlock : rest > T::kSmallLimit) {
    Block* tail = new Block{b->ptr + size, rest, stream, small};
    tail->prev = b;
    tail->next = b->next;
    if (b->next) b->next->prev = tail;
    b->next = tail;
    b->size = size;
    pool.insert(tail);
  }
  b->allocated = true;
  live_[b->ptr] = b;
  stats_.allocated += static_cast<int64_t>(b->size);
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return b->ptr;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = live_.find(static_cast<char*>(p));
  IRIS_CHECK(it != live_.end(), device_name_, ": free of a pointer this allocator does not own");
  Block* b = it->second;
  live_.erase(it);
  if (!b->used_on.empty()) {
    PendingFree pf{b, {}};
    for (uint64_t s : b->used_on)
      if (void* e = events_.record(s)) pf.events.push_back(e);
    b->used_on.clear();
    if (!pf.events.empty()) {
      pending_.push_back(std::move(pf));
      return;
    }
  }
  free_block(b);
}

void CachingAllocator::free_block(Block* b) {
  b->allocated = false;
  stats_.allocated -= static_cast<int64_t>(b->size);
  FreeList& pool = b->small ? small_free_ : large_free_;
  // Merge with free neighbours of the same segment.
  if (b->prev && !b->prev->allocated) {
    Block* prev = b->prev;
    pool.erase(prev);
    prev->size += b->size;
    prev->next = b->next;
    if (b->next) b->next->prev = prev;
    delete b;
    b = prev;
  }
  if (b->next && !b->next->allocated) {
    Block* next = b->next;
    pool.erase(next);
    b->size += next->size;
    b->next = next->next;
    if (next->next) next->next->prev = b;
    delete next;
  }
  pool.insert(b);
}

void CachingAllocator::process_pending(bool wait) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    const bool done = std::all_of(it->events.begin(), it->events.end(), [&](void* e) {
      if (wait) events_.synchronize(e);
      return wait || events_.completed(e);
    });
    if (!done) {
      ++it;
      continue;
    }
    for (void* e : it->events) events_.release(e);
    free_block(it->block);
    it = pending_.erase(it);
  }
}

void CachingAllocator::record_stream(void* p, uint64_t stream) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = live_.find(static_cast<char*>(p));
  IRIS_CHECK(it != live_.end(), device_name_,
             ": record_stream of memory this allocator does not own (a view of a foreign "
             "buffer, or freed)");
  Block* b = it->second;
  IRIS_CHECK(events_.record || stream == b->stream, device_name_,
             ": record_stream without stream events");
  if (stream != b->stream &&
      std::find(b->used_on.begin(), b->used_on.end(), stream) == b->used_on.end())
    b->used_on.push_back(stream);
}

void CachingAllocator::set_stream_events(StreamEvents events) {
  std::lock_guard<std::mutex> lk(mu_);
  events_ = std::move(events);
}

void CachingAllocator::retire_stream(uint64_t stream) {
  std::lock_guard<std::mutex> lk(mu_);
  for (Block* seg : segments_) {
    if (seg->stream != stream) continue;
    for (Block* b = seg; b; b = b->next) {
      FreeList& pool = b->small ? small_free_ : large_free_;
      const bool cached = !b->allocated && pool.erase(b) == 1;
      b->stream = 0;
      if (cached) pool.insert(b);
    }
  }
}

size_t CachingAllocator::pending_frees() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pending_.size();
}

void CachingAllocator::release_free_segments() {
  for (auto it = segments_.begin(); it != segments_.end();) {
    Block* seg = *it;
    if (!seg->allocated && !seg->next) {  // one free block spanning the whole segment
      (seg->small ? small_free_ : large_free_).erase(seg);
      stats_.reserved -= static_cast<int64_t>(seg->size);
      provider_.free(seg->ptr);
      delete seg;
      it = segments_.erase(it);
    } else {
      ++it;
    }
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lk(mu_);
  process_pending(/*wait=*/true);
  release_free_segments();
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lk(mu_);
  stats_.peak_allocated = stats_.allocated;
}

size_t CachingAllocator::segment_count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return segments_.size();
}

}  // namespace iris
