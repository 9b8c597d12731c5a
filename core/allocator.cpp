#include "core/allocator.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.h"

namespace iris {
namespace {

constexpr size_t kAlign = 64;
// Blocks up to this size are cached after free; larger ones go back to the system.
constexpr size_t kMaxCachedBlock = size_t(1) << 30;
// Total bytes kept in the cache before the oldest-size buckets are trimmed.
constexpr size_t kMaxCachedBytes = size_t(4) << 30;

// Size classes: multiples of 64 B up to 4 KiB, then four steps per power of two,
// so a reused block wastes at most ~25%.
size_t size_class(size_t n) {
  if (n <= 4096) return (std::max<size_t>(n, 1) + kAlign - 1) / kAlign * kAlign;
  size_t p = size_t(1) << (63 - __builtin_clzll(n - 1));  // largest power of two < n
  const size_t step = p / 4;
  return (n + step - 1) / step * step;
}

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes, int) override {
    const size_t cls = size_class(nbytes);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
      }
      if (p) {
        note_alloc(cls, false);
        return p;
      }
    }
    p = std::aligned_alloc(kAlign, cls);
    if (!p) {
      empty_cache();
      p = std::aligned_alloc(kAlign, cls);
    }
    IRIS_CHECK(p, "cpu allocator: out of memory allocating ", nbytes, " bytes");
    std::lock_guard<std::mutex> lk(mu_);
    note_alloc(cls, true);
    return p;
  }

  void deallocate(void* p, size_t nbytes, int) override {
    if (!p) return;
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lk(mu_);
    stats_.allocated -= static_cast<int64_t>(cls);
    if (cls <= kMaxCachedBlock && cached_ + cls <= kMaxCachedBytes) {
      free_[cls].push_back(p);
      cached_ += cls;
    } else {
      std::free(p);
      stats_.reserved -= static_cast<int64_t>(cls);
    }
  }

  void copy_to_host(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  void copy_from_host(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  void copy_within(void* dst, const void* src, size_t n, int) override { std::memmove(dst, src, n); }

  MemoryStats stats(int) override {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }
  void reset_peak(int) override {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.peak_allocated = stats_.allocated;
  }
  void empty_cache() override {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) std::free(p);
      stats_.reserved -= static_cast<int64_t>(cls * blocks.size());
    }
    free_.clear();
    cached_ = 0;
  }

 private:
  void note_alloc(size_t cls, bool fresh) {
    stats_.allocated += static_cast<int64_t>(cls);
    if (fresh) stats_.reserved += static_cast<int64_t>(cls);
    stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  }

  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  MemoryStats stats_;
};

struct Registry {
  std::array<Allocator*, kNumDeviceTypes> table{};
  Registry() {
    // Never destroyed: tensors in static storage may be freed after main returns.
    static CpuAllocator* cpu = new CpuAllocator;
    table[static_cast<int>(DeviceType::CPU)] = cpu;
  }
};

Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

Allocator& allocator_for(DeviceType t) {
  Allocator* a = registry().table[static_cast<int>(t)];
  IRIS_CHECK(a, "allocator: no backend for device type ",
             t == DeviceType::CUDA ? "cuda (iris was built without CUDA or no device is present)"
                                   : "unknown");
  return *a;
}

void register_allocator(DeviceType t, Allocator* a) { registry().table[static_cast<int>(t)] = a; }

bool has_allocator(DeviceType t) { return registry().table[static_cast<int>(t)] != nullptr; }

}  // namespace iris
