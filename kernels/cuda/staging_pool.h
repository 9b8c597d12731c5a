#pragma once
// Host-to-device copies from pageable memory without waiting for the device: the bytes go
// into page-locked buffers at once (the caller may reuse its memory when the call returns)
// and the device copies queue on the stream. A buffer is reused only once the event
// recorded after its copy has completed. Included by backend.cu after device_api.h.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "kernels/cuda/device_api.h"

namespace iris::IRIS_KERNEL_NS {

struct StagingTraits {
  static constexpr size_t kMinBuffer = size_t(64) << 10;
  static constexpr size_t kMaxBuffer = size_t(8) << 20;   // larger copies go in pieces
  static constexpr size_t kMaxPooled = size_t(64) << 20;  // beyond: wait for a buffer
  static_assert(std::has_single_bit(kMinBuffer) && std::has_single_bit(kMaxBuffer));
  static_assert(kMinBuffer <= kMaxBuffer && kMaxBuffer <= kMaxPooled);
};

class StagingPool {
 public:
  explicit StagingPool(int device) : device_(device) {}
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;
  // Lives as long as the backend (the process): buffers are not returned at exit.

  void copy_from_host(void* dst, const void* src, size_t n, void* stream) {
    using Tr = StagingTraits;
    std::lock_guard<std::mutex> lk(mu_);
    for (size_t off = 0; off < n; off += Tr::kMaxBuffer) {
      const size_t piece = std::min(n - off, Tr::kMaxBuffer);
      Buffer& b = acquire(piece);
      std::memcpy(b.host, static_cast<const char*>(src) + off, piece);
      device::copy_from_pinned_async(static_cast<char*>(dst) + off, b.host, piece, device_, stream);
      device::event_record(device_, b.event, stream);
      b.recorded = true;
      b.last_use = ++uses_;
    }
  }

  size_t pooled_bytes() const {
    std::lock_guard<std::mutex> lk(mu_);
    return pooled_;
  }

 private:
  struct Buffer {
    void* host;
    size_t size;
    void* event;
    bool recorded = false;
    uint64_t last_use = 0;
  };

  bool idle(const Buffer& b) const {
    return !b.recorded || device::event_completed(device_, b.event);
  }

  Buffer& acquire(size_t n) {
    using Tr = StagingTraits;
    const size_t size = std::max(Tr::kMinBuffer, std::bit_ceil(n));
    for (Buffer& b : buffers_)
      if (b.size == size && idle(b)) return b;
    // Make room: idle buffers of other sizes go first, then the least recently used waits.
    for (size_t i = buffers_.size(); i-- > 0 && pooled_ + size > Tr::kMaxPooled;)
      if (idle(buffers_[i])) release(i);
    while (pooled_ + size > Tr::kMaxPooled && !buffers_.empty()) {
      const size_t lru = static_cast<size_t>(std::min_element(buffers_.begin(), buffers_.end(),
                                                              [](const Buffer& a, const Buffer& b) {
                                                                return a.last_use < b.last_use;
                                                              }) -
                                             buffers_.begin());
      device::event_synchronize(device_, buffers_[lru].event);
      if (buffers_[lru].size == size) return buffers_[lru];
      release(lru);
    }
    void* host = device::host_alloc(size);
    void* event = nullptr;
    try {
      event = device::event_create(device_, /*timing=*/false);
    } catch (...) {
      device::host_free(host);
      throw;
    }
    buffers_.push_back(Buffer{host, size, event});
    pooled_ += size;
    return buffers_.back();
  }

  void release(size_t i) {
    device::event_destroy(device_, buffers_[i].event);
    device::host_free(buffers_[i].host);
    pooled_ -= buffers_[i].size;
    buffers_.erase(buffers_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  const int device_;
  mutable std::mutex mu_;
  std::vector<Buffer> buffers_;
  size_t pooled_ = 0;
  uint64_t uses_ = 0;
};

}  // namespace iris::IRIS_KERNEL_NS
