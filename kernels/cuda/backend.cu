// The CUDA device backend: a caching allocator per device over device::malloc,
// registered as the allocator of DeviceType::CUDA. Compiled with nvcc into libiris
// (real GPUs) and with g++ into the emulated backend (tests), which registers last
// and so takes the slot in the test binaries that link it.
#include <array>
#include <memory>
#include <mutex>

#include "core/allocator.h"
#include "core/caching_allocator.h"
#include "core/error.h"
#include "kernels/emu/cuda_compat.h"
#include "kernels/cuda/device_api.h"

namespace iris::IRIS_KERNEL_NS {
namespace {

#if IRIS_EMU
namespace rt = ::iris::emu;
#endif

constexpr int kMaxDevices = 16;

class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes, int index) override { return cache(index).allocate(nbytes); }
  void deallocate(void* p, size_t, int index) override { cache(index).deallocate(p); }
  void copy_to_host(void* dst, const void* src, size_t n, int index) override {
    device::copy_to_host(dst, src, n, index);
  }
  void copy_from_host(void* dst, const void* src, size_t n, int index) override {
    device::copy_from_host(dst, src, n, index);
  }
  void copy_within(void* dst, const void* src, size_t n, int index) override {
    device::copy_within(dst, src, n, index);
  }
  MemoryStats stats(int index) override { return cache(index).stats(); }
  void reset_peak(int index) override { cache(index).reset_peak(); }
  void empty_cache() override {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& c : caches_)
      if (c) c->empty_cache();
  }

 private:
  CachingAllocator& cache(int index) {
    std::lock_guard<std::mutex> lk(mu_);
    const int n = device::count();
    IRIS_CHECK(index >= 0 && index < n && index < kMaxDevices, device::name(), ": no device ",
               index, " (", n, " visible)");
    auto& c = caches_[index];
    if (!c) {
      const std::string label = std::string(device::name()) + ":" + std::to_string(index);
      c = std::make_unique<CachingAllocator>(
          CachingAllocator::Provider{[index](size_t b) { return device::malloc(b, index); },
                                     [index](void* p) { device::free(p, index); }},
          label);
    }
    return *c;
  }

  std::mutex mu_;
  std::array<std::unique_ptr<CachingAllocator>, kMaxDevices> caches_;
};

// Never destroyed: tensors in static storage may be freed after main returns.
[[maybe_unused]] const bool registered = [] {
  register_allocator(DeviceType::CUDA, new CudaAllocator);
  return true;
}();

}  // namespace

namespace device {

#if IRIS_EMU

int count() { return 1; }
void* malloc(size_t bytes, int) { return rt::malloc(bytes); }
void free(void* p, int) { rt::free(p); }
void copy_to_host(void* dst, const void* src, size_t n, int) {
  rt::memcpy(dst, src, n, rt::CopyKind::DeviceToHost);
}
void copy_from_host(void* dst, const void* src, size_t n, int) {
  rt::memcpy(dst, src, n, rt::CopyKind::HostToDevice);
}
void copy_within(void* dst, const void* src, size_t n, int) {
  rt::memcpy(dst, src, n, rt::CopyKind::DeviceToDevice);
}
void synchronize(int) { rt::synchronize(); }
const char* name() { return "cuda (emulated)"; }

#else

int count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}
void* malloc(size_t bytes, int index) {
  IRIS_CUDA_CHECK(cudaSetDevice(index));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return nullptr;
  }
  IRIS_CUDA_CHECK(err);
  return p;
}
void free(void* p, int index) {
  IRIS_CUDA_CHECK(cudaSetDevice(index));
  IRIS_CUDA_CHECK(cudaFree(p));
}
// Copies are synchronous on the default stream until streams arrive with the
// asynchronous pinned-staging path.
void copy_to_host(void* dst, const void* src, size_t n, int index) {
  IRIS_CUDA_CHECK(cudaSetDevice(index));
  IRIS_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
}
void copy_from_host(void* dst, const void* src, size_t n, int index) {
  IRIS_CUDA_CHECK(cudaSetDevice(index));
  IRIS_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
}
void copy_within(void* dst, const void* src, size_t n, int index) {
  IRIS_CUDA_CHECK(cudaSetDevice(index));
  IRIS_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice));
}
void synchronize(int index) {
  IRIS_CUDA_CHECK(cudaSetDevice(index));
  IRIS_CUDA_CHECK(cudaDeviceSynchronize());
}
const char* name() { return "cuda"; }

#endif

}  // namespace device
}  // namespace iris::IRIS_KERNEL_NS
