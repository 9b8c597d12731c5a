// The CUDA device backend: per device a caching allocator over device::malloc and a pinned
// staging pool, registered as the allocator of DeviceType::CUDA and as the stream backend
// of core/stream.h. Copies, allocations and (through IRIS_LAUNCH) launches go to this host
// thread's current stream. Compiled with nvcc into libiris (real GPUs) and with g++ into the
// emulated backend (tests), which registers last and so takes the slots in the test
// binaries that link it.
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/allocator.h"
#include "core/caching_allocator.h"
#include "core/error.h"
#include "core/stream_backend.h"
#include "kernels/cuda/device_api.h"
#include "kernels/cuda/staging_pool.h"
#include "kernels/emu/cuda_compat.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

constexpr int kMaxDevices = 16;

struct CurrentStream {
  void* handle = nullptr;  // nullptr: the default stream
  uint64_t id = 0;         // the allocator's key for it
};
thread_local std::array<CurrentStream, kMaxDevices> t_current;

struct DeviceState {
  DeviceState(int index, CachingAllocator::Provider provider, const std::string& label)
      : cache(std::move(provider), label), staging(index) {}
  CachingAllocator cache;
  StagingPool staging;
  std::mutex mu;                                // guards `streams`
  std::unordered_map<uint64_t, void*> streams;  // live created streams by id
};

class CudaBackend final : public Allocator, public ::iris::cuda::StreamBackend {
 public:
  // ---- Allocator ----
  void* allocate(size_t nbytes, int index) override {
    DeviceState& d = dev(index);
    return d.cache.allocate(nbytes, t_current[index].id);
  }
  void deallocate(void* p, size_t, int index) override { dev(index).cache.deallocate(p); }
  // A host value was asked for: the current stream is waited for.
  void copy_to_host(void* dst, const void* src, size_t n, int index) override {
    dev(index);
    device::copy_to_host_sync(dst, src, n, index, t_current[index].handle);
  }
  void copy_from_host(void* dst, const void* src, size_t n, int index) override {
    dev(index).staging.copy_from_host(dst, src, n, t_current[index].handle);
  }
  void copy_within(void* dst, const void* src, size_t n, int index) override {
    dev(index);
    device::copy_within_async(dst, src, n, index, t_current[index].handle);
  }
  MemoryStats stats(int index) override { return dev(index).cache.stats(); }
  void reset_peak(int index) override { dev(index).cache.reset_peak(); }
  void empty_cache() override {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& d : devices_)
      if (d) d->cache.empty_cache();
  }

  // ---- StreamBackend ----
  const char* name() override { return device::name(); }
  int device_count() override { return device::count(); }
  Handle stream_create(int index, uint64_t id) override {
    DeviceState& d = dev(index);
    void* s = device::stream_create(index);
    std::lock_guard<std::mutex> lk(d.mu);
    d.streams[id] = s;
    return s;
  }
  // The stream's work runs first, so its cached blocks can serve the default stream.
  void stream_destroy(int index, Handle s, uint64_t id) override {
    DeviceState& d = dev(index);
    {
      std::lock_guard<std::mutex> lk(d.mu);
      d.streams.erase(id);
    }
    device::stream_synchronize(index, s);
    device::stream_destroy(index, s);
    d.cache.retire_stream(id);
  }
  void stream_synchronize(int index, Handle s) override { device::stream_synchronize(index, s); }
  bool stream_query(int index, Handle s) override { return device::stream_query(index, s); }
  void stream_wait_event(int index, Handle s, Handle e) override {
    device::stream_wait_event(index, s, e);
  }
  void set_current_stream(int index, Handle s, uint64_t id) override {
    dev(index);
    t_current[index] = CurrentStream{s, id};
    device::set_launch_stream(index, s);
  }
  Handle event_create(int index) override { return device::event_create(index, true); }
  void event_destroy(int index, Handle e) override { device::event_destroy(index, e); }
  void event_record(int index, Handle e, Handle s) override { device::event_record(index, e, s); }
  void event_synchronize(int index, Handle e) override { device::event_synchronize(index, e); }
  bool event_query(int index, Handle e) override { return device::event_query(index, e); }
  float event_elapsed_ms(int index, Handle start, Handle end) override {
    return device::event_elapsed_ms(index, start, end);
  }
  void device_synchronize(int index) override { device::synchronize(index); }
  void record_stream(int index, void* block, uint64_t stream_id) override {
    dev(index).cache.record_stream(block, stream_id);
  }

 private:
  DeviceState& dev(int index) {
    std::lock_guard<std::mutex> lk(mu_);
    const int n = device::count();
    IRIS_CHECK(index >= 0 && index < n && index < kMaxDevices, device::name(), ": no device ",
               index, " (", n, " visible)");
    auto& d = devices_[index];
    if (!d) {
      const std::string label = std::string(device::name()) + ":" + std::to_string(index);
      d = std::make_unique<DeviceState>(
          index,
          CachingAllocator::Provider{[index](size_t b) { return device::malloc(b, index); },
                                     [index](void* p) { device::free(p, index); }},
          label);
      d->cache.set_stream_events(stream_events(index, *d));
    }
    return *d;
  }

  // Events for the allocator's cross-stream frees: an untimed event after the work queued
  // so far on a live stream (the default stream is id 0); a destroyed stream has none left.
  static CachingAllocator::StreamEvents stream_events(int index, DeviceState& d) {
    return {[index, &d](uint64_t id) -> void* {
              void* s = nullptr;
              if (id != 0) {
                std::lock_guard<std::mutex> lk(d.mu);
                auto it = d.streams.find(id);
                if (it == d.streams.end()) return nullptr;
                s = it->second;
              }
              void* e = device::event_create(index, /*timing=*/false);
              device::event_record(index, e, s);
              return e;
            },
            [index](void* e) { return device::event_completed(index, e); },
            [index](void* e) { device::event_synchronize(index, e); },
            [index](void* e) { device::event_destroy(index, e); }};
  }

  std::mutex mu_;
  std::array<std::unique_ptr<DeviceState>, kMaxDevices> devices_;
};

// Never destroyed: tensors in static storage may be freed after main returns.
[[maybe_unused]] const bool registered = [] {
  auto* backend = new CudaBackend;
  register_allocator(DeviceType::CUDA, backend);
  ::iris::cuda::register_stream_backend(backend);
  return true;
}();

}  // namespace
}  // namespace iris::IRIS_KERNEL_NS
