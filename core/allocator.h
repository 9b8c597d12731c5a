#pragma once
// Memory per device type. The CPU allocator caches freed 64-byte-aligned blocks
// by size class; another backend (CUDA) registers its own allocator here.
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace iris {

struct MemoryStats {
  int64_t allocated = 0;       // bytes held by live tensors
  int64_t reserved = 0;        // bytes obtained from the system (allocated + cached)
  int64_t peak_allocated = 0;  // high-water mark of `allocated` since the last reset
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* p, size_t nbytes, int device_index) = 0;
  // Copies between this device and the host (or within the device).
  virtual void copy_to_host(void* dst, const void* src, size_t n, int device_index) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t n, int device_index) = 0;
  virtual void copy_within(void* dst, const void* src, size_t n, int device_index) = 0;
  virtual MemoryStats stats(int device_index) = 0;
  virtual void reset_peak(int device_index) = 0;
  virtual void empty_cache() = 0;
};

// The allocator of a device type; throws iris::Error when the backend is absent.
Allocator& allocator_for(DeviceType t);
void register_allocator(DeviceType t, Allocator* a);
bool has_allocator(DeviceType t);

inline MemoryStats memory_stats(Device d) { return allocator_for(d.type).stats(d.index); }

}  // namespace iris
