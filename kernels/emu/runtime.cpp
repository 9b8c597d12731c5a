// The emulated device runtime: configuration, registered device and pinned host
// memory, and the grid launch (blocks in a seeded shuffled order, handed to the
// iris thread pool one block per OS thread at a time); streams.cpp queues work.
#include "kernels/emu/runtime.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/emu/block_state.h"
#include "kernels/emu/scheduler.h"
#include "kernels/emu/stream_queue.h"

namespace iris::emu {
namespace {

Config read_env() {
  Config c;
  if (const char* s = std::getenv("IRIS_EMU_SEED")) c.seed = std::strtoull(s, nullptr, 0);
  if (const char* s = std::getenv("IRIS_EMU_RACECHECK")) c.race_check = std::strcmp(s, "0") != 0;
  if (const char* s = std::getenv("IRIS_EMU_SERIAL")) c.parallel_blocks = std::strcmp(s, "1") != 0;
  if (const char* s = std::getenv("IRIS_EMU_STACK_KB")) {
    const unsigned long long kb = std::strtoull(s, nullptr, 10);
    if (kb >= 16) c.stack_bytes = static_cast<size_t>(kb) << 10;
  }
  return c;
}

Config& config_storage() {
  static Config c = read_env();
  return c;
}

// ---- device allocations: base -> size, checked by every copy ----
constexpr size_t kDeviceAlign = 256;  // cudaMalloc's alignment

struct Registry {
  std::mutex mu;
  std::map<uintptr_t, size_t> allocs;
  size_t bytes = 0;
  std::map<uintptr_t, size_t> pinned;  // host_alloc'd ranges
};
Registry& registry() {
  static Registry r;
  return r;
}

bool inside(const std::map<uintptr_t, size_t>& m, const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second && a + n >= a;
}

// True when [p, p+n) lies inside one live allocation (the caller holds the lock).
bool inside_allocation(Registry& r, const void* p, size_t n) { return inside(r.allocs, p, n); }

bool overlaps_allocation(Registry& r, const void* p) { return inside_allocation(r, p, 1); }

const char* kind_name(CopyKind k) {
  switch (k) {
    case CopyKind::HostToHost:
      return "host-to-host";
    case CopyKind::HostToDevice:
      return "host-to-device";
    case CopyKind::DeviceToHost:
      return "device-to-host";
    case CopyKind::DeviceToDevice:
      return "device-to-device";
    case CopyKind::Default:
      return "default";
  }
  return "?";
}

}  // namespace

const Config& config() { return config_storage(); }

void set_config(const Config& c) {
  IRIS_CHECK(!detail::inside_kernel(), "emu::set_config: called from a kernel");
  IRIS_CHECK(c.stack_bytes >= (16u << 10), "emu::set_config: stack_bytes ", c.stack_bytes,
             " is below 16 KiB");
  config_storage() = c;
}

void* malloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  // Exactly `bytes`, so that AddressSanitizer builds catch a kernel reading past the end.
  void* p = ::operator new(bytes, std::align_val_t(kDeviceAlign), std::nothrow);
  IRIS_CHECK(p != nullptr, "emu::malloc: out of memory allocating ", bytes, " bytes");
  std::memset(p, detail::EmuTraits::kPoison, bytes);
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  r.allocs[reinterpret_cast<uintptr_t>(p)] = bytes;
  r.bytes += bytes;
  return p;
}

void free(void* ptr) {
  if (!ptr) return;
  detail::run_all_pending();  // cudaFree synchronises the device
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lk(r.mu);
    auto it = r.allocs.find(reinterpret_cast<uintptr_t>(ptr));
    IRIS_CHECK(it != r.allocs.end(), "emu::free: ", ptr,
               " is not the start of a live device allocation (double free or host pointer?)");
    r.bytes -= it->second;
    r.allocs.erase(it);
  }
  ::operator delete(ptr, std::align_val_t(kDeviceAlign));
}

bool is_device_pointer(const void* ptr) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  return overlaps_allocation(r, ptr);
}

size_t device_bytes_in_use() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  return r.bytes;
}

namespace detail {

void check_copy(void* dst, const void* src, size_t bytes, CopyKind kind, bool* dst_device,
                bool* src_device) {
  IRIS_CHECK(dst && src, "emu::memcpy: null pointer (dst ", dst, ", src ", src, ")");
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  const bool dst_dev = overlaps_allocation(r, dst), src_dev = overlaps_allocation(r, src);
  bool want_dst_dev = dst_dev, want_src_dev = src_dev;
  switch (kind) {
    case CopyKind::HostToHost:
      want_dst_dev = want_src_dev = false;
      break;
    case CopyKind::HostToDevice:
      want_dst_dev = true, want_src_dev = false;
      break;
    case CopyKind::DeviceToHost:
      want_dst_dev = false, want_src_dev = true;
      break;
    case CopyKind::DeviceToDevice:
      want_dst_dev = want_src_dev = true;
      break;
    case CopyKind::Default:
      break;
  }
  IRIS_CHECK(want_dst_dev == dst_dev && want_src_dev == src_dev, "emu::memcpy (", kind_name(kind),
             "): destination is ", dst_dev ? "device" : "host", " memory and source is ",
             src_dev ? "device" : "host", " memory");
  IRIS_CHECK(!dst_dev || inside_allocation(r, dst, bytes), "emu::memcpy: destination range [", dst,
             ", +", bytes, ") runs past the end of its device allocation");
  IRIS_CHECK(!src_dev || inside_allocation(r, src, bytes), "emu::memcpy: source range [", src,
             ", +", bytes, ") runs past the end of its device allocation");
  *dst_device = dst_dev;
  *src_device = src_dev;
}

}  // namespace detail

void memcpy(void* dst, const void* src, size_t bytes, CopyKind kind) {
  if (bytes == 0) return;
  bool dst_dev = false, src_dev = false;
  detail::check_copy(dst, src, bytes, kind, &dst_dev, &src_dev);
  detail::run_all_pending();
  std::memmove(dst, src, bytes);
}

void memset(void* dst, int value, size_t bytes) {
  if (bytes == 0) return;
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lk(r.mu);
    IRIS_CHECK(inside_allocation(r, dst, bytes), "emu::memset: [", dst, ", +", bytes,
               ") is not inside one device allocation");
  }
  detail::run_all_pending();
  std::memset(dst, value, bytes);
}

void synchronize() { detail::run_all_pending(); }

void* host_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = ::operator new(bytes, std::align_val_t(kDeviceAlign), std::nothrow);
  IRIS_CHECK(p != nullptr, "emu::host_alloc: out of memory allocating ", bytes, " bytes");
  std::memset(p, detail::EmuTraits::kPoison, bytes);
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  r.pinned[reinterpret_cast<uintptr_t>(p)] = bytes;
  return p;
}

void host_free(void* ptr) {
  if (!ptr) return;
  detail::run_all_pending();
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lk(r.mu);
    IRIS_CHECK(r.pinned.erase(reinterpret_cast<uintptr_t>(ptr)) == 1, "emu::host_free: ", ptr,
               " is not the start of a live pinned allocation");
  }
  ::operator delete(ptr, std::align_val_t(kDeviceAlign));
}

bool is_pinned_pointer(const void* ptr) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lk(r.mu);
  return inside(r.pinned, ptr, 1);
}

namespace detail {

namespace {

void check_launch(const KernelCall& call, dim3 grid, dim3 block, size_t dynamic_shared_bytes) {
  using T = EmuTraits;
  IRIS_CHECK(!inside_kernel(), "emu: kernel '", call.name,
             "' launched from device code (dynamic parallelism is not emulated)");
  const uint64_t nthreads = static_cast<uint64_t>(block.x) * block.y * block.z;
  IRIS_CHECK(nthreads >= 1 && nthreads <= T::kMaxThreadsPerBlock && block.z <= T::kMaxBlockDimZ,
             "emu: kernel '", call.name, "': invalid block (", block.x, ",", block.y, ",", block.z,
             "): 1 to ", T::kMaxThreadsPerBlock, " threads, z at most ", T::kMaxBlockDimZ);
  IRIS_CHECK(grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.y <= T::kMaxGridDimYZ &&
                 grid.z <= T::kMaxGridDimYZ && grid.x <= 0x7fffffffu,
             "emu: kernel '", call.name, "': invalid grid (", grid.x, ",", grid.y, ",", grid.z,
             ")");
  IRIS_CHECK(dynamic_shared_bytes <= T::kMaxSharedPerBlock, "emu: kernel '", call.name,
             "': ", dynamic_shared_bytes, " bytes of dynamic shared memory exceed the ",
             T::kMaxSharedPerBlock, "-byte limit per block");
}

void run_grid(const KernelCall& call, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
              const Config& cfg) {
  const uint64_t nblocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  std::vector<uint64_t> order(nblocks);
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::mt19937_64 rng(cfg.seed);
  std::shuffle(order.begin(), order.end(), rng);

  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      const uint64_t i = next.fetch_add(1);
      if (i >= nblocks) return;
      const uint64_t id = order[i];
      const uint3 idx{static_cast<unsigned>(id % grid.x),
                      static_cast<unsigned>((id / grid.x) % grid.y),
                      static_cast<unsigned>(id / (static_cast<uint64_t>(grid.x) * grid.y))};
      try {
        run_block(call, idx, grid, block, dynamic_shared_bytes, cfg);
      } catch (...) {
        failed = true;
        throw;
      }
    }
  };
  const int64_t workers =
      cfg.parallel_blocks ? std::min<int64_t>(num_threads(), static_cast<int64_t>(nblocks)) : 1;
  if (workers <= 1) {
    work();
  } else {
    parallel_for(0, workers, 1, [&](int64_t b, int64_t e) {
      for (int64_t w = b; w < e; ++w) work();
    });
  }
}

}  // namespace

void submit_grid(const KernelCall& call, std::shared_ptr<const void> keep, dim3 grid, dim3 block,
                 size_t dynamic_shared_bytes, Stream stream) {
  check_launch(call, grid, block, dynamic_shared_bytes);
  const Stream s = stream ? stream : current_stream();
  if (!s) {  // the legacy stream: as before streams existed, the launch runs now
    run_all_pending();
    return run_grid(call, grid, block, dynamic_shared_bytes, config());
  }
  submit(s, [call, keep = std::move(keep), grid, block, dynamic_shared_bytes, cfg = config()] {
    run_grid(call, grid, block, dynamic_shared_bytes, cfg);
  });
}

}  // namespace detail
}  // namespace iris::emu
