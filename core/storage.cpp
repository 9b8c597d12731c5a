#include "core/storage.h"

#include "core/allocator.h"

namespace iris {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes_ > 0) data_ = allocator_for(device.type).allocate(nbytes_, device.index);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void()> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) {
    release_();
  } else if (data_) {
    allocator_for(device_.type).deallocate(data_, nbytes_, device_.index);
  }
}

}  // namespace iris
