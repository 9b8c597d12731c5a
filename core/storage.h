#pragma once
// A block of device memory shared by a tensor and its views. The version
// counter is shared too: in-place writes bump it so autograd can tell when a
// tensor it saved for backward was modified.
#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/device.h"

namespace iris {

class Storage {
 public:
  // Allocates nbytes on `device` through its allocator.
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (an mmap'd file, a user buffer); `release` runs on destruction.
  Storage(void* data, size_t nbytes, Device device, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint32_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void()> release_;  // empty: memory belongs to the allocator
  uint32_t version_ = 0;
};

}  // namespace iris
